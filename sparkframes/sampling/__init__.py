"""Pure sampling math: which times to sample (``time_grid``) and which frame serves each
(``frame_choice``). No I/O here, so it can be property-tested in isolation."""
