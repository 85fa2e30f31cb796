"""Stops 4 and 5 of a frame's way: the Delta tables under ``OUT``. Tasks write Parquet files
(``files``) with the columns of ``schema``; the driver commits the successful attempts once
(``commit``, on ``delta``); ``state`` is what incremental runs compare; ``reader``,
``tensor`` and ``encodings`` give the frames back as arrays."""
