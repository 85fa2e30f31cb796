"""The ``frame`` column as an Arrow tensor: binary values to ``arrow.fixed_shape_tensor``.

All values of one shape group are equally long and, as Parquet hands them back, contiguous in
one buffer: that buffer *is* a FixedSizeList<uint8> of H*W*3, so the tensor view costs no copy.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa


def tensor_type(height: int, width: int) -> pa.FixedShapeTensorType:
    return pa.fixed_shape_tensor(pa.uint8(), [height, width, 3])


def binary_to_tensor(frames: pa.Array | pa.ChunkedArray, height: int, width: int) -> pa.Array:
    """Binary frames of one shape to a ``fixed_shape_tensor`` array (zero-copy per chunk)."""
    chunks = frames.chunks if isinstance(frames, pa.ChunkedArray) else [frames]
    ext = tensor_type(height, width)
    size = height * width * 3
    out = [_chunk_to_tensor(c, ext, size) for c in chunks if len(c)]
    if not out:
        return pa.ExtensionArray.from_storage(ext, pa.array([], pa.list_(pa.uint8(), size)))
    return pa.chunked_array(out, type=ext) if len(out) > 1 else out[0]


def _chunk_to_tensor(chunk: pa.Array, ext: pa.ExtensionType, size: int) -> pa.Array:
    if chunk.null_count:
        raise ValueError("frame column holds nulls")
    if pa.types.is_large_binary(chunk.type):
        offset_type = np.int64
    elif pa.types.is_binary(chunk.type):
        offset_type = np.int32
    else:
        raise TypeError(f"frame column must be binary, got {chunk.type}")
    _, offsets_buf, data_buf = chunk.buffers()
    all_offsets = np.frombuffer(offsets_buf, dtype=offset_type)
    offsets = all_offsets[chunk.offset : chunk.offset + len(chunk) + 1]
    lengths = np.diff(offsets)
    if len(lengths) and (lengths.min() != size or lengths.max() != size):
        raise ValueError(f"frames of different sizes in one shape group (expected {size} bytes)")
    start = int(offsets[0])
    values = pa.Array.from_buffers(
        pa.uint8(), len(chunk) * size, [None, data_buf.slice(start, len(chunk) * size)]
    )
    storage = pa.FixedSizeListArray.from_arrays(values, size)
    return pa.ExtensionArray.from_storage(ext, storage)


def tensor_to_numpy(tensor: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """``(N, H, W, 3)`` uint8; zero-copy for a single chunk."""
    if isinstance(tensor, pa.ChunkedArray):
        if tensor.num_chunks == 1:
            return tensor.chunk(0).to_numpy_ndarray()
        return np.concatenate([c.to_numpy_ndarray() for c in tensor.chunks if len(c)])
    return tensor.to_numpy_ndarray()
