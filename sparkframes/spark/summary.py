"""What a run did: the counts the CLI prints, schedulers read as JSON, and the exit code."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from sparkframes.extraction.base import ExtractionReport


@dataclass
class RunSummary:
    """What a run did; printed at the end and used for the exit code."""

    run_id: str
    videos_in_input: int = 0
    videos_processed: int = 0
    videos_skipped: int = 0
    videos_failed: int = 0
    clips: int = 0
    frames_by_purpose: dict[str, int] = field(default_factory=dict)
    errors: int = 0
    seconds: float = 0.0
    frames_decoded: int = 0
    decoders: dict[str, int] = field(default_factory=dict)  # decoder used -> videos
    gpu_addresses: set[str] = field(default_factory=set)  # what Spark assigned the tasks
    table_version: int | None = None  # the frames table's version this run committed
    units_lost: int = 0  # units an overlapping run committed after this one (theirs stay)

    @property
    def frames(self) -> int:
        return sum(self.frames_by_purpose.values())

    @property
    def error_rate(self) -> float:
        return self.videos_failed / self.videos_processed if self.videos_processed else 0.0

    def line(self) -> str:
        per_purpose = ", ".join(f"{p}={n}" for p, n in sorted(self.frames_by_purpose.items()))
        fps = self.frames / self.seconds if self.seconds else 0.0
        return (
            f"sparkframes run {self.run_id}: {self.videos_processed} videos processed, "
            f"{self.videos_skipped} up to date, {self.videos_failed} failed; "
            f"{self.clips} clips; frames {per_purpose or 'none'}; {self.errors} error rows; "
            f"{self.seconds:.1f} s ({fps:.1f} frames/s)"
            + (f"; table version {self.table_version}" if self.table_version is not None else "")
            + (f"; {self.units_lost} units kept from an overlapping run" if self.units_lost else "")
            + (f"; decoders {_counts(self.decoders)}" if self.decoders else "")
            + (
                f"; GPUs assigned {','.join(sorted(self.gpu_addresses))}"
                if self.gpu_addresses
                else ""
            )
        )

    def as_dict(self) -> dict:
        """The summary as JSON-able values (``--summary-json``)."""
        return {
            "run_id": self.run_id,
            "videos_in_input": self.videos_in_input,
            "videos_processed": self.videos_processed,
            "videos_skipped": self.videos_skipped,
            "videos_failed": self.videos_failed,
            "clips": self.clips,
            "frames": self.frames,
            "frames_by_purpose": dict(sorted(self.frames_by_purpose.items())),
            "errors": self.errors,
            "error_rate": self.error_rate,
            "seconds": round(self.seconds, 3),
            "frames_decoded": self.frames_decoded,
            "decoders": dict(sorted(self.decoders.items())),
            "gpu_addresses": sorted(self.gpu_addresses),
            "table_version": self.table_version,
            "units_lost": self.units_lost,
        }

    def add(self, reports: list[ExtractionReport]) -> None:
        """Count the reports of one task's videos."""
        for o in reports:
            self.videos_processed += 1
            self.videos_failed += int(o.failed)
            self.clips += o.clips
            self.errors += len(o.errors)
            self.frames_decoded += o.decode.frames_decoded
            self.decoders[o.decoder] = self.decoders.get(o.decoder, 0) + 1
            if o.gpu_address is not None:
                self.gpu_addresses.add(o.gpu_address)
            for purpose, n in o.frames_by_purpose.items():
                self.frames_by_purpose[purpose] = self.frames_by_purpose.get(purpose, 0) + n


def exit_code(summary: RunSummary, max_error_rate: float) -> int:
    """0 unless failed videos exceed ``max_error_rate`` of those processed (then 3)."""
    if summary.videos_processed and summary.error_rate > max_error_rate:
        print(
            f"sparkframes: {summary.videos_failed}/{summary.videos_processed} videos failed "
            f"({summary.error_rate:.0%}), above --max-error-rate {max_error_rate:.0%}",
            file=sys.stderr,
        )
        return 3
    return 0


def _counts(counts: dict[str, int]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(counts.items()))
