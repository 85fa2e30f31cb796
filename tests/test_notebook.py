"""Notebook helpers: a clip as a (T, H, W, 3) array (and a torch tensor when torch is present)."""

from __future__ import annotations

from fractions import Fraction as F

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from sparkframes import frames_to_numpy, read_frames
from sparkframes.notebook import clip_array, clip_tensor
from sparkframes.options import ClipFramesOptions, build_options
from sparkframes.spark.job import write_table
from tests.conftest import oracle_for
from tests.videos import oracle_select, read_frame_number


@pytest.fixture(scope="module")
def table_dir(spark, tmp_path_factory, catalog):
    tmp = tmp_path_factory.mktemp("nb")
    rows = [
        {"video_path": str(catalog["h264_mp4"]), "clip_id": "intro", "start_s": 0.0, "end_s": 2.0}
    ]
    pq.write_table(pa.Table.from_pylist(rows), tmp / "in.parquet")
    config = build_options(
        ClipFramesOptions,
        {
            "input": str(tmp / "in.parquet"),
            "output": str(tmp / "out"),
            "target_fps": "1,4",
            "target_res": "48x64",
        },
    )
    write_table(spark, config)
    return tmp / "out"


def test_clip_array_is_the_clip_in_order(table_dir, catalog):
    table = read_frames(str(table_dir), purpose="embeddings")
    oracle = oracle_for(catalog["h264_mp4"])
    for rate in (1, 4):
        frames = clip_array(table, "intro", target_fps=rate)
        want = [f.number for f in oracle_select(oracle, 0, 2, F(rate))]
        assert frames.shape == (len(want), 48, 64, 3) and frames.dtype == np.uint8
        assert [read_frame_number(f) for f in frames] == want
    assert len(clip_array(table, "intro")) == 2  # the lowest rate when none is named
    with pytest.raises(KeyError, match="rates"):
        clip_array(table, "intro", target_fps=3)


def test_whole_column_to_numpy_shares_memory_with_arrow(table_dir):
    table = read_frames(str(table_dir))
    frames = frames_to_numpy(table)
    chunk = table["frame"].chunk(0).storage.values
    assert frames.ctypes.data == chunk.buffers()[1].address + chunk.offset


def test_clip_tensor_through_dlpack(table_dir):
    torch = pytest.importorskip("torch", reason="PyTorch is optional; clip_tensor needs it")
    table = read_frames(str(table_dir))
    tensor = clip_tensor(table, "intro", target_fps=4)
    assert tensor.dtype == torch.uint8 and tuple(tensor.shape) == (8, 48, 64, 3)
