"""Stop 3 of a frame's way: a decoded picture to the stored form. ``resize`` makes the RGB array
at the target size (swscale), ``encode`` turns it into raw bytes, JPEG or PNG, and ``columns``
builds the frames table's Arrow record batches, column by column."""
