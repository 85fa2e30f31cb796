"""A notebook-style tour of a frames table: DuckDB, Polars, Spark SQL, numpy, a contact sheet.

    python examples/explore_frames.py [TABLE]     # default: the demo's table (demo_out/frames)

Run ``sparkframes demo`` first if you have no table yet. Each cell is a plain block of code you
can paste into a notebook.
"""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import numpy as np
import polars as pl
from deltalake import DeltaTable

from sparkframes import frames_to_numpy, read_errors, read_frames
from sparkframes.notebook import clip_array
from sparkframes.tools.preview.contact_sheet import contact_sheet


def main(table: str) -> None:
    # --- The table's history: one version per run ------------------------------------------
    dt = DeltaTable(table)
    for entry in dt.history():
        run = entry.get("sparkframes", {})
        print(entry["version"], run.get("command", entry["operation"]), run.get("summary", ""))

    # --- DuckDB, on the Arrow dataset of the latest version ---------------------------------
    frames = dt.to_pyarrow_dataset()
    print(
        duckdb.sql("""
        SELECT purpose, target_fps, count(*) AS frames, count(DISTINCT clip_id) AS clips,
               any_value(height) || 'x' || any_value(width) AS size
        FROM frames GROUP BY ALL ORDER BY ALL""")
    )

    # --- Polars: per-clip frame times ----------------------------------------------------
    df = pl.scan_delta(table).select("clip_id", "pts_s", "purpose").collect()
    print(df.group_by("purpose", "clip_id").agg(pl.col("pts_s").sort()).head())

    # --- Spark SQL (without the Delta connector: the latest version's files) -----------------
    from sparkframes.spark.session import get_session

    spark = get_session("local[2]", "explore")
    spark.read.option("basePath", table).parquet(*dt.file_uris()).createOrReplaceTempView("frames")
    spark.sql("SELECT purpose, count(*) AS n FROM frames GROUP BY purpose").show()

    # --- pyarrow + numpy: tensors without copies ------------------------------------------
    emb = read_frames(table, purpose="embeddings")
    frames = frames_to_numpy(emb)
    print("embeddings:", frames.shape, frames.dtype, "mean pixel", float(np.mean(frames)))
    first_clip = emb["clip_id"][0].as_py()
    print("first clip as (T, H, W, 3):", clip_array(emb, first_clip).shape)
    print("errors:", read_errors(table).num_rows)

    # --- A contact sheet to look at ---------------------------------------------------------
    sheet = contact_sheet(table, "embeddings", output=str(Path(table).parent / "sheet.png"))
    print("contact sheet:", sheet.path)


if __name__ == "__main__":
    main(sys.argv[1] if len(sys.argv) > 1 else "demo_out/frames")
