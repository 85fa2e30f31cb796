"""Stop 1 of a frame's way, pure logic with no I/O: the video's exact timeline (``timeline``),
clip spans and fixed stride (``spans``), what each purpose asks for (``specs``), the sample grid
(``time_grid``), which frame serves a sample (``frame_choice``) and, from all of these, one
video's plan: which decoded frame serves which output row (``plan``)."""
