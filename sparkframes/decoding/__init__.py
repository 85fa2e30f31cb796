"""Stop 2 of a frame's way: opening a video (``source``, ``references`` for files that point at
others, ``remote`` for object stores), choosing a decoder (``backends``) and decoding the chosen
frames through one interface (``protocol``): FFmpeg on the CPU or CUDA (``pyav_decoder``) or
NVDEC (``pynvc_decoder``)."""
