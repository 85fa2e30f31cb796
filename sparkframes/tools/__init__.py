"""Commands around the jobs, each usable without Spark: ``demo`` (the README's first run),
``inspection`` (what the decoder sees in one video) and ``preview`` (contact sheets)."""
