"""The frames table: its schema (``schema``), the tensor view of the ``frame`` column
(``tensor``), Parquet files (``writer``), the atomic commit (``commit``) and reading
(``reader``)."""
