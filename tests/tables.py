"""Reading the tables' state the way tests compare it: one ``UnitState`` per unit."""

from __future__ import annotations

from sparkframes.table.delta import TableLocation
from sparkframes.table.files import Unit
from sparkframes.table.schema import STATE_SCHEMA
from sparkframes.table.state import UnitState, read_state_table


def read_state(loc: TableLocation, version: int | None = None) -> dict[Unit, UnitState]:
    """The committed state of every unit, as objects."""
    table = read_state_table(loc, version)
    fields = [f.name for f in STATE_SCHEMA if f.name not in ("status", "run_id")]
    return {
        (row["video_path"], row["purpose"]): UnitState(**{k: row[k] for k in fields})
        for row in table.select(fields).to_pylist()
    }
