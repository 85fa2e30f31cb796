"""``sparkframes demo``: make a sample video, run clip-frames on local Spark, show the result.

The sample is encoded here with PyAV's libx264 (nothing to download): 12 s of moving shapes at
30 fps with B-frames, so a fresh install can see the whole path from video to table in a minute.
"""

from __future__ import annotations

import math
from fractions import Fraction
from pathlib import Path

import av
import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq


def make_sample_video(
    path: Path, seconds: int = 12, fps: int = 30, size: tuple[int, int] = (360, 640)
) -> Path:
    """A small H.264 mp4 with motion and a visible frame counter bar."""
    height, width = size
    path.parent.mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:height, 0:width]
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.options = {"crf": "23", "preset": "veryfast", "bf": "3", "g": str(fps * 4)}
        for i in range(seconds * fps):
            t = i / fps
            img = np.empty((height, width, 3), np.uint8)
            img[..., 0] = (xx + 40 * t * 10) % 256
            img[..., 1] = (yy * 255 // height).astype(np.uint8)
            img[..., 2] = int(128 + 127 * math.sin(t))
            cx = int((width - 80) * (0.5 + 0.5 * math.sin(t * 1.3))) + 40
            cy = int((height - 80) * (0.5 + 0.5 * math.cos(t * 0.9))) + 40
            img[(yy - cy) ** 2 + (xx - cx) ** 2 < 35**2] = (255, 255, 255)
            img[height - 12 :, : int(width * (i + 1) / (seconds * fps))] = (255, 40, 40)
            frame = av.VideoFrame.from_ndarray(img, format="rgb24")
            frame.pts, frame.time_base = i, Fraction(1, fps)
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def run_demo(workdir: str, master: str | None = None, log_level: str = "ERROR") -> int:
    """Sample video -> input table -> clip-frames job (2 fps, 224x224) -> summary + read back."""
    from sparkframes.options import ClipFramesOptions, build_options
    from sparkframes.spark.job import write_table
    from sparkframes.spark.session import get_session
    from sparkframes.table.reader import frames_to_numpy, read_frames

    root = Path(workdir).resolve()
    video = make_sample_video(root / "sample.mp4")
    pq.write_table(pa.table({"video_path": [str(video)]}), root / "input.parquet")
    out = root / "frames"
    config = build_options(
        ClipFramesOptions,
        {
            "input": str(root / "input.parquet"),
            "output": str(out),
            "purpose": "embeddings,aesthetics",
            "target_res": "224x224",
            "clip_len_s": "4",
            "master": master,
        },
    )
    spark = get_session(master, "sparkframes demo", log_level=log_level)
    summary = write_table(spark, config)
    print(summary.line())
    table = read_frames(str(out), purpose="embeddings")
    frames = frames_to_numpy(table)
    print(f"read back: {table.num_rows} embeddings frames as {table.schema.field('frame').type}")
    print(f"numpy: {frames.shape} {frames.dtype}; table at {out}")
    from sparkframes.tools.preview.contact_sheet import contact_sheet

    sheet = contact_sheet(str(out), "embeddings", output=str(root / "contact_sheet.png"))
    print(f"contact sheet: {sheet.path}")
    return 0
