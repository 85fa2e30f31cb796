"""Stop 2 and 3 of a frame's way, for one video: open it, decode the chosen frames (``decoding``),
convert them (``convert``) and hand them out as Arrow record batches.

``clip`` (frames sampled from clips) and ``video`` (every frame, small) share ``base`` (the
report, bounded batches, the one place a GPU decoder falls back to the CPU); ``worker`` runs an
extraction in a decode worker process under a per-video time limit. No Spark here.
"""
