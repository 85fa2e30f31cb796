"""Spark side: the driver's job (``job``), the executor's per-partition work (``tasks``),
the session (``session``) and stage resource requests (``resources``)."""
