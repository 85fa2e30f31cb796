"""A run's commit: its frames, then its errors and state, each one Delta commit.

Task attempts write their files straight into the tables (``files.py``); only the attempts Spark
reports as successful, one per task, reach ``commit_run``, so a retried or speculative attempt's
files are never listed in any version. The order of the three commits is what makes a killed
driver harmless:

1. frames: the run's units get exactly the run's frame files (``delta.replace_units``);
2. errors: their error rows are replaced by the run's;
3. state: their state rows, last, so a unit is recorded as up to date only once its rows are in.

A driver killed before 1 leaves every table as it was; one killed after 1 leaves units whose
state still says "out of date", which the next run redoes (replacing, never doubling, the rows).

Overlapping runs: the commits to each table are serialised (``delta.replace_units``). Two runs
that both extracted a unit both pass step 1, the later one replacing the earlier one's rows.
Steps 2 and 3 then write a unit only for a run whose rows it is in the newest frames version:
the files holding it came from the run's own, as written or as rewritten by a later commit
that replaced other videos sharing a file with it (``delta.origin_of``), checked on every try
after reading the table's newest version. The run whose frames came last
therefore writes the unit's errors and state last: any other run's later try sees its files and
leaves the unit alone, so a unit's errors and state describe the frames that are there.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field

from sparkframes.table.delta import (
    ERRORS,
    FRAMES,
    STATE,
    FileHit,
    TableLocation,
    ensure_table,
    files_holding,
    origin_of,
    replace_units,
    rewrite_without,
)
from sparkframes.table.files import SMALL_PARQUET_OPTIONS, DataFile, Unit, write_file
from sparkframes.table.state import UnitState, state_rows


@dataclass
class AttemptResult:
    """What one successful task attempt hands the driver (small: no pixels)."""

    frame_files: list[DataFile] = field(default_factory=list)
    error_files: list[DataFile] = field(default_factory=list)
    units: list[UnitState] = field(default_factory=list)


@dataclass(frozen=True)
class RunCommit:
    """What a run's commits did."""

    version: int | None  # the frames table's version this run made (None: no frames changed)
    units_lost: int  # units an overlapping run committed after this one: theirs are kept
    tries: int  # of the frames commit; more than 1: other writers committed meanwhile


def commit_run(
    loc: TableLocation,
    run_id: str,
    attempts: list[AttemptResult],
    *,
    overwrite: bool,
    metadata: dict,
) -> RunCommit:
    """Commit the successful attempts of run ``run_id`` (see the module docstring)."""
    units = {u.unit for a in attempts for u in a.units}
    frame_files = [f for a in attempts for f in a.frame_files]
    error_files = [f for a in attempts for f in a.error_files]
    states = [u for a in attempts for u in a.units]
    common = {"run_id": run_id, "overwrite": overwrite, "metadata": metadata}
    version, tries = replace_units(loc, FRAMES, lambda: (units, frame_files), **common)

    def error_files_of(owned: frozenset[Unit]) -> list[DataFile]:
        return _only_units(loc, error_files, owned)

    def state_files_of(owned: frozenset[Unit]) -> list[DataFile]:
        return [_state_file(loc, [s for s in states if s.unit in owned], run_id)] if owned else []

    # Both commit whenever this run owns units, also with nothing to add or remove: an empty
    # commit still makes a concurrent commit built on the version before it conflict, and so
    # check its ownership again (a run whose units have no error rows must still stop an
    # earlier run's late errors commit from landing them).
    owned = {**common, "commit_when_owned": True}
    error_change = _OwnedUnits(loc, units, frame_files, error_files_of)
    replace_units(loc, ERRORS, error_change, **owned)
    state_change = _OwnedUnits(loc, units, frame_files, state_files_of)
    replace_units(loc, STATE, state_change, **owned)
    return RunCommit(version, len(units - state_change.owned), tries)


class _OwnedUnits:
    """The change of an errors or state commit: the units this run still owns, and their files.

    Ownership is checked against the newest frames version on every try, after the table being
    committed to was read (see the module docstring for why that order matters); the files for
    an owned set are built once.
    """

    def __init__(
        self,
        loc: TableLocation,
        units: set[Unit],
        frame_files: list[DataFile],
        files_of: Callable[[frozenset[Unit]], list[DataFile]],
    ) -> None:
        self.loc, self.units, self.frame_files, self.files_of = loc, units, frame_files, files_of
        self.owned: frozenset[Unit] = frozenset()
        self._built: dict[frozenset[Unit], list[DataFile]] = {}

    def __call__(self) -> tuple[set[Unit], list[DataFile]]:
        self.owned = frozenset(_units_still_ours(self.loc, self.units, self.frame_files))
        if self.owned not in self._built:
            self._built[self.owned] = self.files_of(self.owned)
        return set(self.owned), self._built[self.owned]


def _units_still_ours(loc: TableLocation, units: set[Unit], our_files: list[DataFile]) -> set[Unit]:
    """The units whose rows in the newest frames version are exactly the rows this run wrote:
    the files holding them came from this run's files, as written or as rewritten by a later
    commit that replaced other videos sharing a file with them (``delta.origin_of``)."""
    ours: dict[Unit, set[str]] = {u: set() for u in units}
    for f in our_files:
        for unit in f.rows:
            ours.setdefault(unit, set()).add(origin_of(f.path))
    held: dict[Unit, set[str]] = {u: set() for u in units}
    for hit in files_holding(ensure_table(loc, FRAMES), loc, FRAMES, units):
        for unit in hit.units:
            held[unit].add(origin_of(hit.path))
    return {u for u in units if held[u] == ours[u]}


def _only_units(
    loc: TableLocation, files: list[DataFile], units: frozenset[Unit]
) -> list[DataFile]:
    """``files`` (error files of this run) with the rows of units other than ``units`` taken
    out: those units' rows belong to the run that won them."""
    kept = []
    for f in files:
        lost = frozenset(u for u in f.rows if u not in units)
        if not lost:
            kept.append(f)
            continue
        hit = FileHit(f.path, f.size, f.partition_values, lost, False)
        rewritten = rewrite_without(loc, ERRORS, hit)
        if rewritten is not None:
            kept.append(rewritten)
    return kept


def _state_file(loc: TableLocation, states: list[UnitState], run_id: str) -> DataFile:
    table = state_rows(states, run_id)
    rows = {u.unit: 1 for u in states}
    name = f"part-{run_id}-{random.getrandbits(48):012x}.parquet"
    return write_file(
        loc.fs,
        loc.root_of(STATE),
        name,
        table.to_batches(),
        STATE.file_schema,
        rows,
        options=SMALL_PARQUET_OPTIONS,
    )
