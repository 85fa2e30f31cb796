"""The benchmarks' test videos: synthetic, made with PyAV's own encoders, cached.

The content moves (a panning textured background, a travelling gradient, film grain, moving
shapes and two scene cuts) so that bitrates, motion vectors and GOP decisions look like real
footage rather than a flat frame the decoder gets through for free; PyAV's encoders mean the
benchmarks need nothing but the venv. Videos are cached in ``bench/.cache/`` (git-ignored).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from dataclasses import asdict, dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av
import numpy as np

from bench.harness import CACHE_DIR, ffmpeg_exe


def ffmpeg_cmd(path: str, *args: str, threads: int | None = None) -> list[str]:
    """A quiet ffmpeg command line reading ``path``; ``threads`` (before ``-i``) sets the
    decoder's threads, None leaves ffmpeg's default."""
    cmd = [ffmpeg_exe(), "-nostdin", "-hide_banner", "-loglevel", "error"]
    if threads is not None:
        cmd += ["-threads", str(threads)]
    return [*cmd, "-i", path, *args]


# --------------------------------------------------------------------------------------------
# Synthetic content
# --------------------------------------------------------------------------------------------


def _smooth_noise(rng: np.random.Generator, height: int, width: int, cell: int) -> np.ndarray:
    """Random values on a ``cell``-pixel lattice, bicubically upscaled: texture at one scale."""
    low = rng.integers(0, 256, size=(height // cell + 2, width // cell + 2), dtype=np.uint8)
    frame = av.VideoFrame.from_ndarray(low, format="gray")
    return frame.reformat(width=width, height=height, interpolation="BICUBIC").to_ndarray()


def _texture(rng: np.random.Generator, height: int, width: int, sharp: int) -> np.ndarray:
    """A tileable-enough uint8 texture: three noise scales plus hard-edged blocks (detail)."""
    tex = (
        0.25 * _smooth_noise(rng, height, width, 5).astype(np.float32)
        + 0.35 * _smooth_noise(rng, height, width, 28)
        + 0.40 * _smooth_noise(rng, height, width, 140)
    )
    for _ in range(sharp):  # edges that motion compensation has to track
        h, w = rng.integers(4, height // 6), rng.integers(4, width // 6)
        y, x = rng.integers(0, height - h), rng.integers(0, width - w)
        tex[y : y + h, x : x + w] = rng.integers(0, 256)
    tex = (tex - tex.mean()) * 1.8 + 128  # stretch the contrast
    return np.clip(tex, 0, 255).astype(np.uint8)


@dataclass
class _Shape:
    x: float
    y: float
    vx: float
    vy: float
    w: int
    h: int
    yuv: tuple[int, int, int]


class MotionScene:
    """Frame ``i`` of a moving synthetic scene as yuv420p planes (no RGB round trip).

    Background: one of two textures (a scene cut every ``cut_every`` frames) panning at a few
    pixels per frame with a wobble; on top a travelling luma gradient, temporal grain, and
    rectangles that bounce around the frame in colour.
    """

    def __init__(self, width: int, height: int, cut_every: int, seed: int = 7) -> None:
        rng = np.random.default_rng(seed)
        self.w, self.h, self.cut_every = width, height, cut_every
        cw, ch = width // 2, height // 2
        # Textures tiled 2x2 so any pan offset is a view, never a copy.
        self.luma = [np.tile(_texture(rng, height, width, 30), (2, 2)) for _ in range(2)]
        self.chroma = [
            (
                np.tile(_texture(rng, ch, cw, 10) // 5 + 102, (2, 2)),
                np.tile(_texture(rng, ch, cw, 10) // 5 + 102, (2, 2)),
            )
            for _ in range(2)
        ]
        self.grain = rng.integers(-6, 7, size=(height + 64, width + 64), dtype=np.int16)
        self.xs = np.arange(width, dtype=np.float32)
        self.ys = np.arange(height, dtype=np.float32)
        self.shapes = [
            _Shape(
                x=float(rng.uniform(0, width - width // 6)),
                y=float(rng.uniform(0, height - height // 6)),
                vx=float(rng.uniform(-9, 9)),
                vy=float(rng.uniform(-6, 6)),
                w=int(rng.integers(width // 20, width // 6)),
                h=int(rng.integers(height // 20, height // 6)),
                yuv=(
                    int(rng.integers(30, 225)),
                    int(rng.integers(40, 216)),
                    int(rng.integers(40, 216)),
                ),
            )
            for _ in range(7)
        ]
        self._rng = rng

    def yuv420p(self, i: int) -> np.ndarray:
        """The ``(H * 3 / 2, W)`` uint8 array PyAV takes for a yuv420p frame."""
        w, h = self.w, self.h
        scene = (i // self.cut_every) % 2
        dx = int(3.0 * i + 25 * np.sin(i / 37)) % w
        dy = int(1.0 * i + 12 * np.sin(i / 53)) % h
        y = self.luma[scene][dy : dy + h, dx : dx + w].astype(np.int16)
        # A soft gradient band sweeping across: brightness changes that are not pure motion.
        gx = (22 * np.sin(2 * np.pi * (self.xs - 7 * i) / (w * 0.8))).astype(np.int16)
        gy = (14 * np.sin(2 * np.pi * (self.ys + 3 * i) / (h * 1.3))).astype(np.int16)
        y += gx[None, :]
        y += gy[:, None]
        oy, ox = (int(v) for v in self._rng.integers(0, 64, size=2))
        y += self.grain[oy : oy + h, ox : ox + w]
        cdx, cdy = (dx // 2) % (w // 2), (dy // 2) % (h // 2)
        u_tex, v_tex = self.chroma[scene]
        u = u_tex[cdy : cdy + h // 2, cdx : cdx + w // 2].copy()
        v = v_tex[cdy : cdy + h // 2, cdx : cdx + w // 2].copy()
        for s in self.shapes:
            x0 = int(s.x + s.vx * i) % (2 * (w - s.w))
            y0 = int(s.y + s.vy * i) % (2 * (h - s.h))
            x0 = x0 if x0 < w - s.w else 2 * (w - s.w) - x0  # bounce off the edges
            y0 = y0 if y0 < h - s.h else 2 * (h - s.h) - y0
            y[y0 : y0 + s.h, x0 : x0 + s.w] = s.yuv[0]
            u[y0 // 2 : (y0 + s.h) // 2, x0 // 2 : (x0 + s.w) // 2] = s.yuv[1]
            v[y0 // 2 : (y0 + s.h) // 2, x0 // 2 : (x0 + s.w) // 2] = s.yuv[2]
        luma = np.clip(y, 16, 235).astype(np.uint8)
        return np.concatenate([luma, u.reshape(h // 4, w), v.reshape(h // 4, w)])


# --------------------------------------------------------------------------------------------
# Test videos
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class VideoRecipe:
    """How one benchmark video is encoded."""

    name: str
    codec: str  # PyAV encoder name
    suffix: str  # container by file suffix
    width: int
    height: int
    fps: int
    seconds: int
    options: tuple[tuple[str, str], ...]
    note: str  # said in the results: preset and structure
    gop: int = 250
    bit_rate: int | None = None


@dataclass
class VideoInfo:
    """A generated video and what it turned out to be."""

    name: str
    path: str
    codec: str
    width: int
    height: int
    fps: int
    frames: int
    seconds: float
    size_bytes: int
    mbps: float
    keyframes: int
    encoder_settings: str
    note: str
    generation_s: float
    generated_now: bool = False


def x264(name: str, width: int, height: int, seconds: int) -> VideoRecipe:
    """H.264 at 30 fps, libx264 preset veryfast (crf 23, x264's default structure: keyint 250,
    3 B-frames, scene cuts on): the library's common case."""
    note = "libx264 preset veryfast, crf 23, x264 default GOP structure (keyint 250, bframes 3)"
    return VideoRecipe(
        name, "libx264", ".mp4", width, height, 30, seconds, (("preset", "veryfast"),), note
    )


def recipes(quick: bool) -> list[VideoRecipe]:
    """H.264 1080p30 (x264 default structure, preset veryfast), HEVC and VP9 at 720p30."""
    long_s, short_s = (12, 6) if quick else (36, 24)
    hevc = (("preset", "veryfast"), ("x265-params", "log-level=error"))
    vp9 = (("deadline", "good"), ("cpu-used", "5"), ("row-mt", "1"), ("crf", "32"))
    return [
        x264("h264_1080p", 1920, 1080, long_s),
        VideoRecipe(
            "hevc_720p",
            "libx265",
            ".mp4",
            1280,
            720,
            30,
            short_s,
            hevc,
            "libx265 preset veryfast, crf 28, x265 default structure "
            "(keyint 250, bframes 4, b-pyramid, open GOP)",
        ),
        VideoRecipe(
            "vp9_720p",
            "libvpx-vp9",
            ".webm",
            1280,
            720,
            30,
            short_s,
            vp9,
            "libvpx-vp9 good/cpu-used 5, crf 32, keyframe every 250, "
            "libvpx default alt-ref (hidden) frames",
            bit_rate=0,
        ),
    ]


def facts(video: VideoInfo) -> dict[str, Any]:
    """A video as a row of a results table."""
    keep = ("name", "note", "encoder_settings", "width", "height", "fps", "seconds", "frames")
    row = {k: getattr(video, k) for k in keep}
    return {**row, "Mbit/s": video.mbps, "keyframes": video.keyframes}


def _encoder_settings(path: Path) -> str:
    """The structure-relevant options the encoder wrote into its SEI string (x264 / x265)."""
    with open(path, "rb") as f:
        head = f.read(4 << 20)
    match = re.search(rb"(x264 - core|x265 \(build)[^\x00]{0,4000}", head)
    if not match:
        return ""
    text = match.group(0).decode("ascii", "replace")
    wanted = (
        "bframes=",
        "b_pyramid=",
        "b-pyramid",
        "keyint=",
        "keyint_min=",
        "min-keyint=",
        "open_gop=",
        "open-gop",
        "scenecut=",
        "ref=",
        "crf=",
        "b_adapt=",
        "b-adapt=",
    )
    tokens = [
        t for t in text.split() if t.startswith(wanted) or t.removeprefix("no-").startswith(wanted)
    ]
    return " ".join(dict.fromkeys(tokens))


def _count(path: Path) -> tuple[int, int, float]:
    """(frames, keyframes, seconds) from a demux pass (packets with data)."""
    with av.open(str(path)) as c:
        st = c.streams.video[0]
        pts: list[int] = []
        keys = 0
        last_dur = 0
        for p in c.demux(st):
            if p.size and p.pts is not None:
                pts.append(p.pts)
                keys += int(p.is_keyframe)
                last_dur = p.duration or last_dur
        pts.sort()
        seconds = float((pts[-1] - pts[0] + last_dur) * st.time_base) if pts else 0.0
    return len(pts), keys, seconds


def ensure_video(recipe: VideoRecipe) -> VideoInfo:
    """The cached video for ``recipe``, encoding it first if it is not there yet."""
    CACHE_DIR.mkdir(parents=True, exist_ok=True)
    stem = f"{recipe.name}_{recipe.seconds}s"
    path = CACHE_DIR / f"{stem}{recipe.suffix}"
    meta = CACHE_DIR / f"{stem}.json"
    if path.exists() and meta.exists():
        return VideoInfo(**json.loads(meta.read_text()))
    started = time.perf_counter()
    scene = MotionScene(recipe.width, recipe.height, cut_every=recipe.fps * 11)
    part = CACHE_DIR / f"{stem}.part{recipe.suffix}"
    with av.open(str(part), "w") as out:
        stream = out.add_stream(recipe.codec, rate=recipe.fps, options=dict(recipe.options))
        stream.width, stream.height, stream.pix_fmt = recipe.width, recipe.height, "yuv420p"
        stream.codec_context.gop_size = recipe.gop
        stream.codec_context.thread_count = os.cpu_count() or 1
        if recipe.bit_rate is not None:
            stream.codec_context.bit_rate = recipe.bit_rate
        for i in range(recipe.fps * recipe.seconds):
            frame = av.VideoFrame.from_ndarray(scene.yuv420p(i), format="yuv420p")
            frame.pts, frame.time_base = i, Fraction(1, recipe.fps)
            out.mux(stream.encode(frame))
        out.mux(stream.encode(None))
    part.rename(path)
    elapsed = time.perf_counter() - started
    frames, keys, seconds = _count(path)
    size = path.stat().st_size
    info = VideoInfo(
        name=recipe.name,
        path=str(path),
        codec=recipe.codec,
        width=recipe.width,
        height=recipe.height,
        fps=recipe.fps,
        frames=frames,
        seconds=round(seconds, 3),
        size_bytes=size,
        mbps=round(size * 8 / seconds / 1e6, 2),
        keyframes=keys,
        encoder_settings=_encoder_settings(path),
        note=recipe.note,
        generation_s=round(elapsed, 1),
    )
    meta.write_text(json.dumps(asdict(info), indent=1))
    info.generated_now = True
    return info


def tiny_video() -> Path:
    """A 3-frame 64x48 H.264 video: the cost of a video is then all per-video overhead."""
    path = CACHE_DIR / "tiny_3frames.mp4"
    if path.exists():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        for i in range(3):
            image = np.full((48, 64, 3), 40 * i, np.uint8)
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    return path


#: Hard links per copy of the source: filesystems cap a file's links (ext4 at 65,000).
LINKS_PER_FILE = 50_000


def tiny_videos_input(work: Path, rows: int) -> Path:
    """``rows`` hard links of a few copies of one tiny video, and an input table naming them."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    folder = work / "videos"
    folder.mkdir(parents=True, exist_ok=True)
    sources = []
    for k in range(-(-rows // LINKS_PER_FILE)):
        copy = work / f"source_{k}.mp4"
        if not copy.exists():
            shutil.copyfile(tiny_video(), copy)
        sources.append(copy)
    paths = []
    for i in range(rows):
        link = folder / f"v{i:06d}.mp4"
        if not link.exists():
            os.link(sources[i // LINKS_PER_FILE], link)
        paths.append(str(link))
    table = work / f"input_{rows}.parquet"
    pq.write_table(pa.table({"video_path": paths}), table)
    return table


def copies(video: VideoInfo, count: int) -> list[str]:
    """``count`` byte-identical copies of ``video`` under distinct names (cached): many videos
    of one known cost."""
    folder = CACHE_DIR / f"copies_{Path(video.path).stem}"
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"video_{i:03d}{Path(video.path).suffix}"
        if not path.exists() or path.stat().st_size != video.size_bytes:
            shutil.copyfile(video.path, path)
        paths.append(str(path))
    return paths
