"""How a frame is stored: raw RGB bytes (the default), JPEG or PNG.

Raw is exact and free to read (``read_frames`` turns it into a tensor without a copy), but large:
about 1.1 GB per hour of video at 2 fps and 224x224. JPEG is several times smaller for a small
error; PNG is exact and smaller, but slow to write. Encoding runs where the frames are made, in
the extraction task (``columns.py`` calls it as it builds the frame column).

JPEG and PNG go through Pillow (libjpeg-turbo and zlib in its wheels): JPEG at the chosen
quality with 4:2:0 chroma subsampling (Pillow's default) and optimised Huffman tables (about 7 %
smaller for 5 % more time, same pixels), PNG at zlib level 1, which on video frames is as small
as the default level 6 in about half the time.
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import numpy as np

RAW, JPEG, PNG = "raw", "jpeg", "png"
FRAME_ENCODINGS = (RAW, JPEG, PNG)
DEFAULT_JPEG_QUALITY = 95
PNG_COMPRESS_LEVEL = 1


@dataclass(frozen=True)
class FrameEncoding:
    """The stored form of frames: ``name`` is one of ``FRAME_ENCODINGS``."""

    name: str = RAW
    jpeg_quality: int = DEFAULT_JPEG_QUALITY

    def __post_init__(self) -> None:
        if self.name not in FRAME_ENCODINGS:
            raise ValueError(f"frame encoding must be one of {FRAME_ENCODINGS}, not {self.name!r}")
        if isinstance(self.jpeg_quality, bool) or not 1 <= self.jpeg_quality <= 100:
            raise ValueError(f"JPEG quality must be within [1, 100], not {self.jpeg_quality!r}")

    def key(self) -> dict | None:
        """What the request key records (None for raw, so raw keys stay as they were)."""
        if self.name == RAW:
            return None
        return {"frame_encoding": self.name, "jpeg_quality": self.jpeg_quality}

    def encode(self, image: np.ndarray) -> bytes:
        """One (H, W, 3) uint8 image in this encoding (raw: its bytes, row-major)."""
        if self.name == RAW:
            return np.ascontiguousarray(image).tobytes()
        from PIL import Image

        out = io.BytesIO()
        if self.name == JPEG:
            Image.fromarray(image).save(
                out, format="JPEG", quality=self.jpeg_quality, optimize=True
            )
        else:
            Image.fromarray(image).save(out, format="PNG", compress_level=PNG_COMPRESS_LEVEL)
        return out.getvalue()


#: Raw frames, the default.
RAW_FRAMES = FrameEncoding()
