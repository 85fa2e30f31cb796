"""``sparkframes`` command line: the same jobs as ``jobs/*.py`` under spark-submit.

Flags and config-file keys are the same names (see CONTRACT.md and conf/). Command-line flags win
over the config file.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import sys
from collections.abc import Sequence
from typing import Any

from sparkframes import __version__
from sparkframes.options import (
    ClipFramesOptions,
    CommonOptions,
    VideoFramesOptions,
    build_options,
    flags,
    load_toml,
)
from sparkframes.table.maintenance import DEFAULT_RETENTION_HOURS


def _run_flags(p: argparse.ArgumentParser, cls: type) -> None:
    """A run command's flags: the run's own (config file, Spark settings, logging, summary),
    then one per option of ``cls``, made from the options' own declarations (``options.flag``)."""
    p.add_argument("--config", help="TOML file whose keys are these flags' names (default: none)")
    p.add_argument(
        "--conf",
        action="append",
        metavar="KEY=VALUE",
        help="a Spark setting for the session, e.g. spark.executor.memory=4g; repeatable "
        "(default: none)",
    )
    _log_flags(p)
    p.add_argument(
        "--summary-json",
        metavar="PATH",
        help="also write the run summary as JSON to PATH, or to stdout with - (the summary "
        "line then goes to stderr) (default: none)",
    )
    for name, kind, text, choices in flags(cls):
        how: dict[str, Any] = {"help": text}
        if kind is bool:
            how.update(action="store_true", default=None)
        elif choices:
            how["choices"] = choices
        elif kind in (int, float):
            how["type"] = kind
        p.add_argument(f"--{name.replace('_', '-')}", **how)


def _log_flags(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--log-level",
        choices=LOG_LEVELS,
        help="Spark's log level on the console (default: ERROR, so that Spark's own messages "
        "stay out of the way; -v is INFO)",
    )
    p.add_argument(
        "-v", "--verbose", action="store_true", help="Spark's INFO messages too (default: off)"
    )


def _log_level(args: argparse.Namespace) -> str:
    return args.log_level or ("INFO" if args.verbose else "ERROR")


def _allow_playlists(p: argparse.ArgumentParser) -> None:
    """``--allow-playlists`` for the commands that open videos without a run (inspect,
    preview), with the run's help text."""
    (text,) = [t for name, _, t, _ in flags(CommonOptions) if name == "allow_playlists"]
    p.add_argument("--allow-playlists", action="store_true", default=None, help=text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="sparkframes", description="Spark-native video frame extraction for ML curation."
    )
    parser.add_argument("--version", action="version", version=f"sparkframes {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    clip = sub.add_parser("clip-frames", help="frames sampled from clips at given rates")
    _run_flags(clip, ClipFramesOptions)
    video = sub.add_parser("video-frames", help="every frame at a small size (scene detection)")
    _run_flags(video, VideoFramesOptions)
    demo = sub.add_parser("demo", help="make a sample video and run clip-frames on it locally")
    demo.add_argument("--workdir", default="demo_out", help="where the video and table go")
    demo.add_argument("--master", help="Spark master URL (default: local)")
    _log_flags(demo)
    _preview_parser(sub)
    vacuum = sub.add_parser(
        "vacuum",
        help="delete files of a frames table that no version kept for the retention period reads",
    )
    vacuum.add_argument("table", help="frames table folder (or URI)")
    vacuum.add_argument(
        "--retention-hours",
        type=int,
        default=DEFAULT_RETENTION_HOURS,
        help=f"keep what versions of the last N hours read (default {DEFAULT_RETENTION_HOURS}, "
        "Delta's own default); "
        "must be longer than any run or reader in progress",
    )
    vacuum.add_argument("--dry-run", action="store_true", help="list the files, delete nothing")
    optimize = sub.add_parser(
        "optimize", help="compact a frames table's small files (refreshes stay exact after it)"
    )
    optimize.add_argument("table", help="frames table folder (or URI)")
    optimize.add_argument(
        "--z-order",
        action="store_true",
        help="also cluster the frames by video_path (a rewrite of the whole table)",
    )
    inspect = sub.add_parser("inspect", help="what the decoder sees in one video (no Spark)")
    inspect.add_argument("video", help="video file")
    inspect.add_argument("--json", action="store_true", help="print the report as JSON")
    _allow_playlists(inspect)
    for command in (clip, video):
        _say_defaults(command, ClipFramesOptions if command is clip else VideoFramesOptions)
    return parser


def _say_defaults(parser: argparse.ArgumentParser, cls: type) -> None:
    """Append each flag's default, from the options class itself, to its help where the help
    does not say it already: one source for the defaults, in the help and in the code."""
    defaults = {f.name: f.default for f in dataclasses.fields(cls)}
    for action in parser._actions:
        if action.help is None or "default" in action.help or action.dest not in defaults:
            continue
        value = defaults[action.dest]
        if isinstance(value, bool):
            value = "on" if value else "off"
        elif value == (-1, -1):
            value = "native"
        elif isinstance(value, tuple) and all(isinstance(v, str) for v in value):
            value = ",".join(value)
        elif isinstance(value, tuple) and len(value) == 2:
            value = "x".join(map(str, value))
        elif isinstance(value, float) and value.is_integer():
            value = int(value)
        action.help += f" (default: {value})"


def _preview_parser(sub: Any) -> None:
    preview = sub.add_parser(
        "preview",
        help="contact sheet (PNG/JPEG/HTML) of a frames table, or straight from videos",
    )
    preview.add_argument("table", nargs="?", help="frames table folder (or URI)")
    preview.add_argument(
        "--purpose",
        help="the purpose to show (default: the table's only purpose; needed when it has several)",
    )
    preview.add_argument("--videos", help="comma-separated video paths or basenames to show")
    preview.add_argument(
        "--from-videos",
        help="comma-separated video files: a sheet straight from them, no table or Spark",
    )
    preview.add_argument(
        "--exact",
        action="store_true",
        help="with --from-videos: exact nearest frames (full decode), not keyframes",
    )
    preview.add_argument(
        "--output", default="preview.png", help=".png, .jpg or .html (default: preview.png)"
    )
    preview.add_argument("--max-clips", type=int, default=20, help="rows of a table sheet")
    preview.add_argument("--max-frames", type=int, default=12, help="thumbnails per row")
    preview.add_argument("--thumb-height", type=int, default=96, help="thumbnail height (px)")
    _allow_playlists(preview)


#: Flags about the run itself, not options of the extraction: they never reach the config.
_NOT_CONFIG = {"command", "config", "conf", "log_level", "verbose", "summary_json"}
LOG_LEVELS = ["ERROR", "WARN", "INFO", "DEBUG"]

#: Flags whose value is a size. ``-1x-1`` (NeMo's ``(-1, -1)``) starts with a dash, and argparse
#: takes any such word that is not a plain negative number for a flag of its own.
_SIZE_FLAGS = frozenset({"--target-res", "--output-hw"})
_SIZE = re.compile(r"-\d+x-?\d+", re.IGNORECASE)


def _attach_size_values(argv: Sequence[str]) -> list[str]:
    """``--target-res -1x-1`` as ``--target-res=-1x-1``, which argparse reads as a value."""
    out: list[str] = []
    for arg in argv:
        if out and out[-1] in _SIZE_FLAGS and _SIZE.fullmatch(arg):
            out[-1] = f"{out[-1]}={arg}"
        else:
            out.append(arg)
    return out


def parse_run(argv: Sequence[str]) -> tuple[str, Any, argparse.Namespace]:
    """(command, validated config, the parsed flags) from the command line and an optional
    TOML file; the flags carry the run's own settings (``--conf``, ``--log-level``…)."""
    args = build_parser().parse_args(_attach_size_values(argv))
    file_values = load_toml(args.config, args.command) if args.config else {}
    values = {k: v for k, v in vars(args).items() if k not in _NOT_CONFIG and v is not None}
    cls = ClipFramesOptions if args.command == "clip-frames" else VideoFramesOptions
    config = build_options(cls, values, file_values, args.config)
    if not config.input or not config.output:
        raise ValueError("--input and --output are required")
    spark_conf(args.conf)  # refuses a malformed --conf now, before Spark starts
    return args.command, config, args


def spark_conf(pairs: list[str] | None) -> dict[str, str]:
    """``["k=v", …]`` from ``--conf`` as a dict; a pair without ``=`` is refused."""
    conf = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"--conf {pair!r}: must look like key=value")
        conf[key.strip()] = value
    return conf


def output_problem(output: str) -> str | None:
    """Why the table at ``output`` cannot be written (bad URI, a file in the way, no
    permission), found before Spark starts; None when it looks writable. Remote stores get one
    metadata call, which also surfaces missing credentials or buckets."""
    import os
    import posixpath

    import pyarrow.fs as pafs

    from sparkframes.filesystems import resolve

    try:
        fs, root = resolve(output)
        info = fs.get_file_info(root)
        if info.type == pafs.FileType.File:
            return "is a file, not a folder"
        if not isinstance(fs, pafs.LocalFileSystem):
            return None
        path = root  # the table's folder, or the nearest folder above it that exists
        while info.type == pafs.FileType.NotFound and posixpath.dirname(path) != path:
            path = posixpath.dirname(path)
            info = fs.get_file_info(path)
        if info.type != pafs.FileType.Directory:
            return f"{path} is not a folder"
        if not os.access(path, os.W_OK | os.X_OK):
            return f"permission denied: cannot write in {path}"
    except (ValueError, OSError) as exc:  # pyarrow: unknown scheme, unreachable store, denied
        return str(exc) or type(exc).__name__
    return None


def java_problem(exc: BaseException) -> str | None:
    """What to tell a user whose Spark could not start its JVM (no or broken Java), or None
    when ``exc`` is something else."""
    import os
    import shutil

    from pyspark.errors import PySparkRuntimeError

    if not isinstance(exc, PySparkRuntimeError) or exc.getCondition() != "JAVA_GATEWAY_EXITED":
        return None
    text = str(exc)
    java = shutil.which("java")
    home = os.environ.get("JAVA_HOME")
    on_path = f"java on PATH is {java}" if java else "java not found on PATH"
    java_home = f"JAVA_HOME={home}" if home else "JAVA_HOME unset"
    return f"Spark needs Java 17 or 21 ({on_path} / {java_home}): {text.strip()}"


def main(argv: Sequence[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["demo"]:
        from sparkframes.tools.demo import run_demo

        args = build_parser().parse_args(argv)
        return run_demo(args.workdir, args.master, _log_level(args))
    if argv[:1] == ["preview"]:
        return _preview(build_parser().parse_args(argv))
    if argv[:1] == ["inspect"]:
        return _inspect(build_parser().parse_args(argv))
    if argv[:1] == ["vacuum"]:
        return _vacuum(build_parser().parse_args(argv))
    if argv[:1] == ["optimize"]:
        return _optimize(build_parser().parse_args(argv))
    try:
        command, config, args = parse_run(argv)
    except ValueError as exc:
        print(f"sparkframes: {exc}", file=sys.stderr)
        return 2
    problem = output_problem(config.output)
    if problem is not None:
        print(f"sparkframes: --output {config.output}: {problem}", file=sys.stderr)
        return 2
    from sparkframes.decoding.backends import DecoderUnavailableError
    from sparkframes.spark.inputs import InputSchemaError
    from sparkframes.spark.job import write_table
    from sparkframes.spark.session import get_session
    from sparkframes.spark.summary import exit_code

    level = _log_level(args)
    try:
        spark = get_session(
            config.master, f"sparkframes {command}", spark_conf(args.conf), log_level=level
        )
    except Exception as exc:  # PySpark raises a bare runtime error when its JVM will not start
        message = java_problem(exc)
        if message is None:
            raise
        print(f"sparkframes: {message}", file=sys.stderr)
        return 2
    try:
        summary = write_table(spark, config)
    except InputSchemaError as exc:
        print(f"sparkframes: {exc}", file=sys.stderr)
        return 2
    except DecoderUnavailableError as exc:  # --no-fallback, and a task's GPU could not decode
        print(f"sparkframes: {exc}", file=sys.stderr)
        return 4
    _report(summary, args.summary_json)
    return exit_code(summary, config.max_error_rate)


def _report(summary: Any, json_path: str | None) -> None:
    """The summary line, and the JSON summary where asked (``-``: stdout, the line to stderr)."""
    doc = json.dumps(summary.as_dict(), indent=2)
    print(summary.line(), file=sys.stderr if json_path == "-" else sys.stdout)
    if json_path == "-":
        print(doc)
    elif json_path:
        from pathlib import Path

        Path(json_path).write_text(doc + "\n")


def _split(values: str | None) -> list[str]:
    return [v.strip() for v in (values or "").split(",") if v.strip()]


def _preview(args: argparse.Namespace) -> int:
    """A contact sheet from a table or from videos; prints the path written. No Spark."""
    from sparkframes.errors import FrameExtractionError
    from sparkframes.tools.preview import contact_sheet, video_contact_sheet

    if (args.table is None) == (args.from_videos is None):
        message = "preview needs a table folder or --from-videos (not both)"
        print(f"sparkframes: {message}", file=sys.stderr)
        return 2
    try:
        if args.from_videos is not None:
            videos = _split(args.from_videos)
            if not videos:
                raise ValueError("--from-videos names no video")
            if args.purpose or args.videos:
                raise ValueError("--purpose and --videos apply to a table, not --from-videos")
            sheet = video_contact_sheet(
                videos,
                args.output,
                exact=args.exact,
                max_frames=args.max_frames,
                thumb_height=args.thumb_height,
                allow_playlists=bool(args.allow_playlists),
            )
        else:
            args.purpose = _preview_purpose(args.table, args.purpose)
            if args.exact:
                raise ValueError("--exact applies to --from-videos (a table's frames are exact)")
            if args.allow_playlists:
                raise ValueError("--allow-playlists applies to --from-videos (a table has frames)")
            sheet = contact_sheet(
                args.table,
                args.purpose,
                _split(args.videos) or None,
                output=args.output,
                max_clips=args.max_clips,
                max_frames_per_clip=args.max_frames,
                thumb_height=args.thumb_height,
            )
    except (FrameExtractionError, ValueError, FileNotFoundError) as exc:
        print(f"sparkframes: {exc}", file=sys.stderr)
        return 2
    print(sheet.path)
    return 0


def _preview_purpose(table: str, purpose: str | None) -> str:
    """The purpose to show: the one asked for, or the table's only one; the error lists the
    table's purposes when one is needed (or the one asked for has no rows)."""
    from sparkframes.table.reader import table_purposes

    purposes = table_purposes(table)
    if purpose is None and len(purposes) == 1:
        return purposes[0]
    if purpose is not None and purpose in purposes:
        return purpose
    have = ", ".join(purposes) if purposes else "none yet"
    if purpose is None:
        raise ValueError(f"{table} has several purposes ({have}): choose one with --purpose")
    raise ValueError(f"{table} has no rows of purpose {purpose!r} (its purposes: {have})")


def _vacuum(args: argparse.Namespace) -> int:
    """Delete (or list) the files no retained version of the three tables reads."""
    from deltalake.exceptions import DeltaError

    from sparkframes.table.delta import TableLocation
    from sparkframes.table.maintenance import vacuum

    if args.retention_hours < 0:
        print("sparkframes: --retention-hours must be >= 0", file=sys.stderr)
        return 2
    try:
        loc = TableLocation.of(args.table)
        removed = vacuum(loc, args.retention_hours, dry_run=args.dry_run)
    except (ValueError, OSError, DeltaError) as exc:
        print(f"sparkframes: {args.table}: {exc}", file=sys.stderr)
        return 2
    if not removed:
        print(f"sparkframes: {args.table}: no frames table here", file=sys.stderr)
        return 2
    verb = "would delete" if args.dry_run else "deleted"
    for table, files in removed.items():
        print(f"{table}: {verb} {len(files)} files")
        for f in files if args.dry_run else []:
            print(f"  {f}")
    return 0


def _optimize(args: argparse.Namespace) -> int:
    """Compact the three tables; one line per table that changed."""
    from deltalake.exceptions import DeltaError

    from sparkframes.table.maintenance import optimize

    try:
        metrics = optimize(args.table, z_order=args.z_order)
    except (ValueError, OSError, DeltaError) as exc:
        print(f"sparkframes: {args.table}: {exc}", file=sys.stderr)
        return 2
    if not metrics:
        print(f"sparkframes: {args.table}: no frames table here", file=sys.stderr)
        return 2
    for table, m in metrics.items():
        print(f"{table}: {m['numFilesRemoved']} files compacted into {m['numFilesAdded']}")
    return 0


def _inspect(args: argparse.Namespace) -> int:
    """Print ``inspect_video``'s report (text or JSON); a file that will not open exits 2."""
    import json

    from sparkframes.errors import FrameExtractionError
    from sparkframes.tools.inspection import format_inspection, inspect_video

    try:
        info = inspect_video(args.video, allow_playlists=bool(args.allow_playlists))
    except FrameExtractionError as exc:
        print(f"sparkframes: {type(exc).__name__}: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(info, indent=2) if args.json else format_inspection(info))
    return 0


if __name__ == "__main__":
    sys.exit(main())
