"""I/O side of extraction: opening a video (``source``), decoding chosen frames
(``pyav_decoder``) and turning a decoded frame into RGB at the target size (``resize``)."""
