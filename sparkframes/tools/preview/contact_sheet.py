"""Contact sheets: one row per clip, its sampled frames left to right, as PNG/JPEG or HTML.

Why: before training on a frames table one wants to *see* what was sampled (a wrong rotation,
black frames, clips cut in the wrong place). A sheet shows that at a glance, and reading it
must not cost a scan of the whole table: the clips and frames to show are chosen from the
metadata columns alone, and only those rows' pixels are read.
"""

from __future__ import annotations

import base64
import html
import io
import os
import posixpath
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from PIL import Image, ImageDraw, ImageFont

from sparkframes.table.encodings import decode_frame
from sparkframes.table.reader import read_table

#: Default thumbnail height in pixels; widths follow each frame's aspect ratio.
THUMB_HEIGHT = 96
#: Gap between cells and around the sheet, in pixels.
PAD = 6
#: A thumbnail is at most this many times as wide as it is high (panoramas are fit into it).
MAX_ASPECT = 4
#: Sheet background and text colours (dark, so black and white frames both stand out).
BACKGROUND = (30, 30, 30)
TEXT = (232, 232, 232)
#: Widest sheet a long row label may force (labels longer than that are cut with "...").
MAX_LABEL_WIDTH = 640

_META_COLUMNS = [
    "video_path",
    "clip_id",
    "clip_start_s",
    "clip_end_s",
    "policy",
    "target_fps",
    "frame_index",
    "pts_s",
]
_CLIP_KEYS = ["video_path", "clip_id", "clip_start_s", "clip_end_s"]


@dataclass
class Thumb:
    """One thumbnail: the frame's time and its pixels, already at thumbnail size."""

    pts_s: float
    image: np.ndarray  # (h, w, 3) uint8 RGB
    frame_index: int | None = None

    @property
    def caption(self) -> str:
        return f"{self.pts_s:.2f} s"


@dataclass
class SheetRow:
    """One row of the sheet: a clip (or a whole video) and its thumbnails in time order."""

    label: str
    thumbs: list[Thumb]
    video_path: str = ""
    clip_id: str = ""
    target_fps: float | None = None


@dataclass
class Layout:
    """Where everything lies on a raster sheet (pixels, ``(left, top, right, bottom)`` boxes).

    Rows are ``row_height`` apart: a label line, the thumbnails' band, a caption line. Columns
    are ``cell_width + PAD`` apart; each thumbnail is centred in its cell.
    """

    width: int
    height: int
    cell_width: int
    row_height: int
    line_height: int
    boxes: list[list[tuple[int, int, int, int]]] = field(default_factory=list)


@dataclass
class ContactSheet:
    """A written sheet: its path, its rows, and (for PNG/JPEG) where each thumbnail lies."""

    path: Path
    rows: list[SheetRow]
    layout: Layout | None = None


# --------------------------------------------------------------------------------------------
# From the frames table
# --------------------------------------------------------------------------------------------


def contact_sheet(
    table_path: str | os.PathLike[str],
    purpose: str,
    videos: Sequence[str | os.PathLike[str]] | None = None,
    output: str | os.PathLike[str] = "preview.png",
    max_clips: int = 20,
    max_frames_per_clip: int = 12,
    thumb_height: int = THUMB_HEIGHT,
) -> ContactSheet:
    """Write a contact sheet of ``purpose``'s rows: one row per clip, frames in index order.

    Clips come in (video path, start, clip id) order, at most ``max_clips``. A clip sampled at
    several rates shows its lowest rate (or its policy frame); when it has more than
    ``max_frames_per_clip`` frames, that many are taken evenly over the clip, first and last
    included. ``videos`` keeps only rows whose ``video_path`` equals an entry or ends with
    ``/entry`` (so a basename works). The output kind follows the suffix: ``.png``, ``.jpg``,
    ``.html`` (one self-contained file). Frames of any shape may be mixed.
    """
    _check_output(output)
    if max_clips < 1 or max_frames_per_clip < 1 or thumb_height < 1:
        raise ValueError("max_clips, max_frames_per_clip and thumb_height must be >= 1")
    table = str(table_path)
    meta = read_table(table, purpose, _video_filter(videos), columns=_META_COLUMNS)
    if meta.num_rows == 0:
        which = f" of videos {', '.join(map(os.fspath, videos))}" if videos else ""
        raise ValueError(f"{table}: no frames of purpose {purpose!r}{which}")
    picks = _pick_frames(meta, max_clips, max_frames_per_clip)
    rows = _load_rows(table, purpose, picks, thumb_height)
    title = f"{table} - purpose {purpose}"
    return write_sheet(rows, output, title=title)


@dataclass
class _ClipPick:
    video_path: str
    clip_id: str
    start_s: float
    end_s: float
    policy: str | None  # set for policy frames (no rate)
    target_fps: float | None
    frames: list[tuple[int, float]]  # (frame_index, pts_s) in index order


def _video_filter(videos: Sequence[str | os.PathLike[str]] | None) -> Any:
    """A pyarrow expression keeping rows of the named videos (full path or path suffix)."""
    if not videos:
        return None
    names = [os.fspath(v) for v in videos]
    path = pc.field("video_path")
    expr = path.isin(names)
    for name in names:
        expr = expr | pc.ends_with(path, pattern="/" + name.lstrip("/"))
    return expr


def _pick_frames(meta: pa.Table, max_clips: int, max_frames: int) -> list[_ClipPick]:
    """The clips and frames to show, chosen from the metadata columns alone."""
    clips = meta.group_by(_CLIP_KEYS).aggregate([("target_fps", "min")])
    clips = clips.sort_by(
        [("video_path", "ascending"), ("clip_start_s", "ascending"), ("clip_id", "ascending")]
    ).slice(0, max_clips)
    rows = meta.join(clips, keys=_CLIP_KEYS, join_type="inner")
    lowest = rows["target_fps_min"]
    at_lowest = pc.if_else(
        pc.is_null(lowest), pc.is_null(rows["target_fps"]), pc.equal(rows["target_fps"], lowest)
    )
    rows = rows.filter(pc.fill_null(at_lowest, False))
    by_clip: dict[tuple, list[dict]] = {}
    for row in rows.to_pylist():
        key = tuple(row[k] for k in _CLIP_KEYS)
        by_clip.setdefault(key, []).append(row)
    picks = []
    for clip in clips.to_pylist():
        key = tuple(clip[k] for k in _CLIP_KEYS)
        members = sorted(by_clip.get(key, []), key=lambda r: (r["frame_index"], r["pts_s"]))
        rate = clip["target_fps_min"]
        policies = sorted({r["policy"] for r in members})
        picks.append(
            _ClipPick(
                video_path=key[0],
                clip_id=key[1],
                start_s=key[2],
                end_s=key[3],
                policy=", ".join(policies) if rate is None else None,
                target_fps=rate,
                frames=[
                    (r["frame_index"], r["pts_s"])
                    for r in evenly(members, max_frames)  # type: ignore[type-var]
                ],
            )
        )
    return picks


def evenly(items: Sequence[Any], count: int) -> list[Any]:
    """At most ``count`` of ``items``, evenly spread, first and last kept when count >= 2."""
    n = len(items)
    if n <= count:
        return list(items)
    if count == 1:
        return [items[0]]
    return [items[round(i * (n - 1) / (count - 1))] for i in range(count)]


def _load_rows(
    table: str, purpose: str, picks: list[_ClipPick], thumb_height: int
) -> list[SheetRow]:
    """Read the picked frames' pixels (one read per video) and shrink them to thumbnails."""
    wanted: dict[tuple, tuple[int, int]] = {}  # row key -> (clip number, slot)
    for n, pick in enumerate(picks):
        for slot, (index, pts) in enumerate(pick.frames):
            key = (pick.video_path, pick.clip_id, pick.start_s, pick.end_s, pick.target_fps)
            wanted.setdefault((*key, index, pts), (n, slot))
    images: dict[tuple[int, int], np.ndarray] = {}
    max_width = MAX_ASPECT * thumb_height
    for video in dict.fromkeys(p.video_path for p in picks):
        mine = [p for p in picks if p.video_path == video]
        expr = (
            (pc.field("video_path") == video)
            & pc.field("clip_id").isin(sorted({p.clip_id for p in mine}))
            & pc.field("frame_index").isin(sorted({i for p in mine for i, _ in p.frames}))
        )
        columns = [*_META_COLUMNS, "height", "width", "frame", "frame_encoding"]
        part = read_table(table, purpose, expr, columns=columns)
        for batch in part.to_batches():
            for i, row in enumerate(batch.drop_columns(["frame"]).to_pylist()):
                key = (
                    row["video_path"],
                    row["clip_id"],
                    row["clip_start_s"],
                    row["clip_end_s"],
                    row["target_fps"],
                    row["frame_index"],
                    row["pts_s"],
                )
                place = wanted.get(key)
                if place is None or place in images:
                    continue
                rgb = decode_frame(
                    batch.column("frame")[i].as_buffer(),
                    row["frame_encoding"],
                    row["height"],
                    row["width"],
                )
                images[place] = thumbnail(rgb, thumb_height, max_width)
    rows = []
    for n, pick in enumerate(picks):
        thumbs = [
            Thumb(pts, images[(n, slot)], index)
            for slot, (index, pts) in enumerate(pick.frames)
            if (n, slot) in images
        ]
        rows.append(
            SheetRow(_clip_label(pick), thumbs, pick.video_path, pick.clip_id, pick.target_fps)
        )
    return rows


def _clip_label(pick: _ClipPick) -> str:
    what = f"{pick.target_fps:.4g} fps" if pick.target_fps is not None else f"{pick.policy}"
    name = posixpath.basename(pick.video_path) or pick.video_path
    return f"{name} | {pick.clip_id} | {pick.start_s:.2f}-{pick.end_s:.2f} s | {what}"


def thumbnail(rgb: np.ndarray, height: int, max_width: int | None = None) -> np.ndarray:
    """``rgb`` scaled to ``height`` rows keeping its aspect (fit into ``max_width`` if wider).

    Bicubic, antialiased when shrinking (Pillow widens the filter), so large frames average.
    """
    h, w = rgb.shape[:2]
    tw, th = max(1, round(w * height / h)), height
    if max_width is not None and tw > max_width:
        tw, th = max_width, max(1, round(h * max_width / w))
    if (th, tw) == (h, w):
        return np.ascontiguousarray(rgb)
    image = Image.fromarray(np.ascontiguousarray(rgb))
    small = image.resize((tw, th), Image.Resampling.BICUBIC, reducing_gap=3.0)
    return np.asarray(small)


# --------------------------------------------------------------------------------------------
# Rendering
# --------------------------------------------------------------------------------------------

_RASTER = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
_HTML = {".html", ".htm"}


def _check_output(output: str | os.PathLike[str]) -> str:
    suffix = Path(output).suffix.lower()
    if suffix not in _RASTER and suffix not in _HTML:
        raise ValueError(f"{output}: output must end in .png, .jpg, .jpeg, .html or .htm")
    return suffix


def write_sheet(
    rows: Sequence[SheetRow], output: str | os.PathLike[str], title: str = "contact sheet"
) -> ContactSheet:
    """Render ``rows`` to ``output`` (kind by suffix); the file appears whole or not at all."""
    suffix = _check_output(output)
    path = Path(output)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.partial")
    layout = None
    if suffix in _HTML:
        partial.write_text(render_html(rows, title), encoding="utf-8")
    else:
        image, layout = render_image(rows)
        image.save(partial, format=_RASTER[suffix], **({"quality": 90} if suffix != ".png" else {}))
    os.replace(partial, path)
    return ContactSheet(path, list(rows), layout)


def _font() -> ImageFont.ImageFont | ImageFont.FreeTypeFont:
    return ImageFont.load_default()


def layout_sheet(rows: Sequence[SheetRow]) -> Layout:
    """Cell sizes and thumbnail boxes: one grid for all rows, as wide as the widest cell."""
    font = _font()
    probe = ImageDraw.Draw(Image.new("RGB", (1, 1)))
    line = int(font.getbbox("Ag0|")[3]) + 3
    thumb_h = max((t.image.shape[0] for r in rows for t in r.thumbs), default=0)
    cell = max(
        [t.image.shape[1] for r in rows for t in r.thumbs]
        + [int(probe.textlength(t.caption, font=font)) + 2 for r in rows for t in r.thumbs],
        default=1,
    )
    cols = max((len(r.thumbs) for r in rows), default=0)
    grid_width = PAD + cols * (cell + PAD)
    label_width = max((int(probe.textlength(r.label, font=font)) for r in rows), default=0)
    width = max(grid_width, min(label_width + 2 * PAD, MAX_LABEL_WIDTH), 1)
    row_height = line + thumb_h + line + PAD
    layout = Layout(width, PAD + len(rows) * row_height, cell, row_height, line)
    for r, row in enumerate(rows):
        top = PAD + r * row_height + line
        boxes = []
        for c, thumb in enumerate(row.thumbs):
            h, w = thumb.image.shape[:2]
            left = PAD + c * (cell + PAD) + (cell - w) // 2
            y = top + (thumb_h - h) // 2
            boxes.append((left, y, left + w, y + h))
        layout.boxes.append(boxes)
    return layout


def _fit_text(draw: ImageDraw.ImageDraw, text: str, width: int, font: Any) -> str:
    """``text`` cut (with "...") to fit ``width`` pixels."""
    if draw.textlength(text, font=font) <= width:
        return text
    while text and draw.textlength(text + "...", font=font) > width:
        text = text[:-1]
    return text + "..."


def render_image(rows: Sequence[SheetRow]) -> tuple[Image.Image, Layout]:
    """The sheet as one RGB image, and where each thumbnail was put."""
    layout = layout_sheet(rows)
    font = _font()
    sheet = Image.new("RGB", (layout.width, layout.height), BACKGROUND)
    draw = ImageDraw.Draw(sheet)
    for r, row in enumerate(rows):
        top = PAD + r * layout.row_height
        label = _fit_text(draw, row.label, layout.width - 2 * PAD, font)
        draw.text((PAD, top), label, fill=TEXT, font=font)
        caption_y = top + layout.row_height - PAD - layout.line_height + 1
        for c, (thumb, box) in enumerate(zip(row.thumbs, layout.boxes[r], strict=True)):
            sheet.paste(Image.fromarray(np.ascontiguousarray(thumb.image)), box[:2])
            cell_left = PAD + c * (layout.cell_width + PAD)
            text_w = draw.textlength(thumb.caption, font=font)
            x = cell_left + (layout.cell_width - text_w) / 2
            draw.text((x, caption_y), thumb.caption, fill=TEXT, font=font)
    return sheet, layout


_CSS = """
body { background: #1e1e1e; color: #e8e8e8; font: 13px system-ui, sans-serif; margin: 12px; }
h1 { font-size: 15px; font-weight: 600; }
section { margin: 0 0 14px; }
h2 { font-size: 13px; font-weight: 500; margin: 0 0 4px; font-family: monospace; }
.frames { display: flex; flex-wrap: wrap; gap: 6px; }
figure { margin: 0; text-align: center; }
figcaption { font-size: 11px; color: #bbb; }
img { display: block; image-rendering: auto; }
"""


def render_html(rows: Sequence[SheetRow], title: str = "contact sheet") -> str:
    """One self-contained HTML page: thumbnails embedded as base64 JPEG, every text escaped."""
    esc = html.escape
    out = [
        "<!doctype html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{esc(title)}</title><style>{_CSS}</style></head><body>",
        f"<h1>{esc(title)}</h1>",
    ]
    for row in rows:
        attrs = f' data-video="{esc(row.video_path)}" data-clip="{esc(row.clip_id)}"'
        out.append(f'<section{attrs}><h2>{esc(row.label)}</h2><div class="frames">')
        for thumb in row.thumbs:
            h, w = thumb.image.shape[:2]
            data = base64.b64encode(_jpeg(thumb.image)).decode("ascii")
            out.append(
                f'<figure><img src="data:image/jpeg;base64,{data}" width="{w}" height="{h}" '
                f'alt="{esc(row.clip_id)} at {esc(thumb.caption)}">'
                f"<figcaption>{esc(thumb.caption)}</figcaption></figure>"
            )
        out.append("</div></section>")
    out.append("</body></html>")
    return "\n".join(out) + "\n"


def _jpeg(rgb: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(rgb)).save(buffer, format="JPEG", quality=88)
    return buffer.getvalue()
