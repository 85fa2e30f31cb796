"""Notebook helpers on top of ``read_frames``: a clip as a (T, H, W, 3) array or torch tensor."""

from __future__ import annotations

from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from sparkframes.table.tensor import tensor_to_numpy


def clip_array(
    table: pa.Table, clip_id: str, target_fps: float | None = None, purpose: str | None = None
) -> np.ndarray:
    """The frames of one clip from a ``read_frames`` table, in ``frame_index`` order.

    With several rates in the table, pass ``target_fps`` (the lowest rate is taken otherwise).
    """
    mask = pc.equal(table["clip_id"], clip_id)
    if purpose is not None and "purpose" in table.column_names:
        mask = pc.and_(mask, pc.equal(table["purpose"], purpose))
    rows = table.filter(mask)
    if rows.num_rows == 0:
        raise KeyError(f"no rows for clip {clip_id!r}")
    rates = [r for r in rows["target_fps"].unique().to_pylist() if r is not None]
    if rates:
        rate = target_fps if target_fps is not None else min(rates)
        rows = rows.filter(pc.equal(rows["target_fps"], rate))
        if rows.num_rows == 0:
            raise KeyError(f"clip {clip_id!r} has no rows at {rate} fps (rates: {sorted(rates)})")
    rows = rows.sort_by("frame_index")
    return tensor_to_numpy(rows["frame"])


def clip_tensor(table: pa.Table, clip_id: str, **kwargs: Any) -> Any:
    """``clip_array`` as a torch uint8 tensor (T, H, W, 3), shared through DLPack, no copy."""
    try:
        import torch
    except ImportError as exc:  # torch is optional
        raise ImportError("clip_tensor needs PyTorch: pip install torch") from exc
    return torch.from_dlpack(clip_array(table, clip_id, **kwargs))
