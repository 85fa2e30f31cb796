"""The Python API on a Spark Connect session, in a process of its own (a Connect session and a
classic one cannot share a Python process).

    python -m tests.connect_run VIDEOS_PARQUET OUT_FOLDER

Starts a local Connect server (``SparkSession.builder.remote("local[2]")``), then writes to
OUT_FOLDER: ``lazy.parquet``, the rows of ``clip_frames`` (chained with a filter and a column),
``table/`` through ``write_clip_frames`` (twice: the second run must do nothing) and
``summary.json``, the two runs' summaries.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

#: The settings both session kinds are compared on.
OPTIONS = {"purpose": ["embeddings", "aesthetics"], "target_res": (24, 32), "target_fps": [1, 2]}


def main(videos_parquet: str, out: str) -> int:
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F

    from sparkframes.spark import clip_frames, write_clip_frames
    from sparkframes.spark.session import is_connect

    spark = SparkSession.builder.remote("local[2]").getOrCreate()
    assert is_connect(spark), type(spark)
    paths = pq.read_table(videos_parquet)["video_path"].to_pylist()
    videos = spark.createDataFrame([(p,) for p in paths], "video_path string")
    frames = clip_frames(videos, **OPTIONS)
    chained = frames.where(F.col("frame_index") < 100).withColumn("nbytes", F.length("frame"))
    table = pa.Table.from_pylist([r.asDict() for r in chained.collect()])
    pq.write_table(table, Path(out) / "lazy.parquet")
    first = write_clip_frames(videos, str(Path(out) / "table"), **OPTIONS)
    again = write_clip_frames(videos, str(Path(out) / "table"), **OPTIONS)
    (Path(out) / "summary.json").write_text(json.dumps([first.as_dict(), again.as_dict()]))
    spark.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
