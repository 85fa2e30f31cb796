"""Benchmarks for sparkframes (run as modules: ``python -m bench.decode_bench``)."""
