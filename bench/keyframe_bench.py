"""Keyframe previews: what decoding only keyframes saves over exact thumbnails, and its price.

For a long-GOP H.264 video (x264 keyint 250, B-frames, scene cuts, moving textured content),
12 thumbnails 96 px high by

* keyframe mode (``keyframe_thumbnails``): the index pass, then only the keyframes nearest the
  12 target times are decoded, seeking between them;
* exact mode (``exact_thumbnails``): the same target times, each served by its exact nearest
  frame through the library's planned one-pass decode;
* the index pass alone (``open_video``), the fixed cost both modes share.

Both with 2 decoder threads. The price of keyframe mode, thumbnails snapped to keyframes, is
measured beside its speed: how far each sits from its target time.
Run: ``python -m bench.keyframe_bench [--quick] [--reps N]``.
"""

from __future__ import annotations

from typing import Any

from bench.harness import Run, interleaved, median, ratio, times
from bench.internals import (
    DecodeStats,
    exact_thumbnails,
    keyframe_thumbnails,
    open_video,
    target_times,
)
from bench.videos import VideoRecipe, ensure_video, facts, x264

THREADS = 2
THUMBS = 12
HEIGHT = 96


def recipe(quick: bool) -> VideoRecipe:
    """720p30 H.264 with x264's default 250-frame GOP."""
    return x264("h264_720p_gop250", 1280, 720, 12 if quick else 24)


def price(path: str, keyframe_times: list[float]) -> dict[str, Any]:
    """How far the keyframe thumbnails sit from the target times, and how many there are."""
    with open_video(path) as source:
        timeline = source.timeline
        targets = [float(t) for t in target_times(timeline.end_s, THUMBS)]
        keys = sum(1 for p in timeline.packets if p.is_keyframe and p.is_frame)
    offsets = [min(abs(k - t) for k in keyframe_times) for t in targets]
    return {
        "keyframes in video": keys,
        "distinct keyframe thumbnails": len(keyframe_times),
        "mean offset from target s": sum(offsets) / len(offsets),
        "max offset from target s": max(offsets),
    }


def main(argv: list[str] | None = None) -> int:
    run = Run(__file__, __doc__, reps=5, argv=argv)
    video = ensure_video(recipe(run.quick))
    stats: dict[str, Any] = {}

    def thumbnails(make: Any, name: str) -> Any:
        stats[name] = DecodeStats()
        return make(video.path, THUMBS, HEIGHT, threads=THREADS, stats=stats[name])

    def index() -> int:
        with open_video(video.path, threads=THREADS) as source:
            return len(source.timeline or ())

    methods = {
        "keyframe mode": lambda rep: thumbnails(keyframe_thumbnails, "keyframe mode"),
        "exact mode": lambda rep: thumbnails(exact_thumbnails, "exact mode"),
        "index pass alone": lambda rep: index(),
    }
    for method in methods.values():  # warm the page cache and imports, outside the timings
        method(0)
    runs = interleaved(methods, run.reps, label=video.name)
    key, exact = runs["keyframe mode"], runs["exact mode"]
    rows = []
    for name, ts in runs.items():
        s = stats.get(name)
        counts = {"packets read": s.packets_read, "packets sent": s.packets_sent} if s else {}
        counts |= {"frames decoded": s.frames_decoded} if s else {}
        thumbs = len(ts[0].value) if isinstance(ts[0].value, list) else None
        rows.append({"method": name, **times(ts), "thumbnails": thumbs, **counts})
    key_times = [float(t.pts_s) for t in key[0].value]
    headline = {
        "keyframe mode faster, wall": ratio(exact, key),
        "keyframe mode faster, CPU": ratio(exact, key, cpu=True),
        "10x target met": median(e.wall / k.wall for e, k in zip(exact, key, strict=True)) >= 10,
    }
    snapped = {
        **price(video.path, key_times),
        "keyframe mode times s": key_times,
        "exact mode times s": [float(t.pts_s) for t in exact[0].value],
    }
    parameters = {"thumbnails": THUMBS, "height px": HEIGHT, "decoder threads": THREADS}
    measurements = {"videos": [facts(video)], "methods": rows, "headline": [headline]}
    run.save(parameters, {**measurements, "price": [snapped]})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
