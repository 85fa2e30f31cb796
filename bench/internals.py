"""The sparkframes internals a few benchmarks need, named in this one place.

Benchmarks use the public names (``sparkframes.extract_clip_frames``, ``read_frames``,
``sparkframes.spark.write_clip_frames``, the CLI) wherever those measure the thing. Some
measure a piece below that surface: the index pass, the table's stored form, a commit,
planning alone, the decode loop without conversion. The package's modules are being moved, so
where those names live is said here only: when a module moves, this map changes and no
benchmark does. A name is imported on first use (``from bench.internals import open_video``),
so a benchmark loads only the modules it needs.
"""

from __future__ import annotations

import importlib
from typing import Any

_WHERE = {
    # decoding: the index pass, the decode loop and the conversion alone (decode, keyframe, scene)
    "open_video": "sparkframes.decoding.source",
    "PyAVDecoder": "sparkframes.decoding.pyav_decoder",
    "DecodeStats": "sparkframes.decoding.protocol",
    "to_rgb": "sparkframes.convert.resize",
    "DEFAULT_BATCH_BYTES": "sparkframes.extraction.base",
    "SCENE_BATCH_BYTES": "sparkframes.extraction.video",
    # previews (keyframe)
    "keyframe_thumbnails": "sparkframes.tools.preview",
    "exact_thumbnails": "sparkframes.tools.preview",
    "target_times": "sparkframes.tools.preview.keyframes",
    # the table's stored form and its commit (table, encoding, commit, planning, scene)
    "FRAMES_SCHEMA": "sparkframes.table.schema",
    "FrameBatches": "sparkframes.convert.columns",
    "FRAMES_PARQUET_OPTIONS": "sparkframes.table.files",
    "ROW_GROUP_BYTES": "sparkframes.table.files",
    "AttemptWriter": "sparkframes.table.files",
    "binary_to_tensor": "sparkframes.table.tensor",
    "tensor_to_numpy": "sparkframes.table.tensor",
    "FrameEncoding": "sparkframes.convert.encode",
    "AttemptResult": "sparkframes.table.commit",
    "commit_run": "sparkframes.table.commit",
    "TableLocation": "sparkframes.table.delta",
    "ensure_table": "sparkframes.table.delta",
    "FRAMES": "sparkframes.table.delta",
    "ERRORS": "sparkframes.table.delta",
    "STATE": "sparkframes.table.delta",
    "UnitState": "sparkframes.table.state",
    "read_state_table": "sparkframes.table.state",
    "state_files": "sparkframes.table.state",
    # planning a run without running it (planning)
    "planning": "sparkframes.spark.planning",
    "read_input": "sparkframes.spark.inputs",
    "unit_keys_of": "sparkframes.spark.request_keys",
    "default_parallelism": "sparkframes.spark.resources",
    "file_states": "sparkframes.filesystems",
    "ClipFramesOptions": "sparkframes.options",
    "build_options": "sparkframes.options",
}


def __getattr__(name: str) -> Any:
    if name not in _WHERE:
        raise AttributeError(f"bench.internals has no {name!r}: add it to _WHERE")
    module = importlib.import_module(_WHERE[name])
    return module if _WHERE[name].endswith(f".{name}") else getattr(module, name)


def stage(output: str, batches: list[tuple[str, Any, str]]) -> tuple[Any, list, list]:
    """Frames (``(purpose, record batch, video)``, one video after another) written as a task
    writes them: (table location, frame files, error files), not committed yet."""
    loc = __getattr__("TableLocation").of(output)
    errors_root = loc.root_of(__getattr__("ERRORS"))
    writer = __getattr__("AttemptWriter")(loc.fs, loc.root, errors_root, "part-bench")
    for purpose, batch, video in batches:
        writer.write_frames(purpose, batch, video)
    return (loc, *writer.close())


def commit(loc: Any, frame_files: list, error_files: list, units: list, overwrite: bool) -> None:
    """Commit staged files and the units' state as one run, the job's way."""
    attempt = __getattr__("AttemptResult")(frame_files, error_files, units)
    __getattr__("commit_run")(loc, "bench", [attempt], overwrite=overwrite, metadata={})


def frames_to_batch(rows: list, decoder: str = "ffmpeg_cpu", encoding: Any = None) -> Any:
    """``ExtractedFrame`` rows of one purpose as one record batch of the frames table, built as
    an extraction builds them (``convert.columns.FrameBatches``)."""
    encoding = encoding if encoding is not None else __getattr__("FrameEncoding")()
    size = sum(row.image.nbytes for row in rows) + 1  # one batch: never full before the end
    batches = __getattr__("FrameBatches")(decoder, encoding, max_bytes=size)
    for row in rows:
        batches.add(row, row.image)
    ((_, batch),) = batches.flush()
    return batch


def rows_to_batches(rows: list, decoder: str = "ffmpeg_cpu") -> list[tuple[str, Any]]:
    """``ExtractedFrame`` rows of any purposes as one record batch per purpose."""
    by_purpose: dict[str, list] = {}
    for row in rows:
        by_purpose.setdefault(row.purpose, []).append(row)
    return [(p, frames_to_batch(r, decoder)) for p, r in by_purpose.items()]
