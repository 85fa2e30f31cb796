"""Reading the ``frame`` column back as pixels, whatever it stores: raw RGB bytes (the default),
JPEG or PNG (``convert/encode.py`` makes them).

Every reader the project ships decodes through here, so callers always get pixels; a raw frame
comes back as a view of the column's bytes, without a copy.
"""

from __future__ import annotations

import io
from collections.abc import Sequence

import numpy as np
import pyarrow as pa

from sparkframes.convert.encode import FRAME_ENCODINGS, RAW


def decode_frame(data: bytes | memoryview, encoding: str, height: int, width: int) -> np.ndarray:
    """A stored ``frame`` value as an (height, width, 3) uint8 array, whatever its encoding.

    For rows read by any engine: ``decode_frame(row["frame"], row["frame_encoding"],
    row["height"], row["width"])``. A raw frame is a view of ``data``, not a copy.
    """
    if encoding == RAW:
        array = np.frombuffer(data, dtype=np.uint8)
        if array.size != height * width * 3:
            raise ValueError(f"raw frame holds {array.size} bytes, not {height}x{width}x3")
        return array.reshape(height, width, 3)
    if encoding not in FRAME_ENCODINGS:
        raise ValueError(f"unknown frame encoding {encoding!r}")
    from PIL import Image

    with Image.open(io.BytesIO(data)) as img:
        image = np.asarray(img.convert("RGB"))
    if image.shape != (height, width, 3):
        raise ValueError(
            f"{encoding} frame is {image.shape[1]}x{image.shape[0]}, not {width}x{height}"
        )
    return image


def decode_column(
    frames: pa.Array | pa.ChunkedArray, encodings: Sequence[str], height: int, width: int
) -> np.ndarray:
    """(N, height, width, 3) uint8 from a ``frame`` column of one shape (any mix of encodings)."""
    out = np.empty((len(frames), height, width, 3), dtype=np.uint8)
    chunks = frames.chunks if isinstance(frames, pa.ChunkedArray) else [frames]
    i = 0
    for chunk in chunks:
        for value in chunk:
            out[i] = decode_frame(value.as_buffer(), encodings[i], height, width)
            i += 1
    return out
