"""spark-submit entry point for full-video frames (scene detection).

    spark-submit --master spark://host:7077 jobs/video_frames.py --input IN --output OUT \
        [--output-hw 27x48] [--decoder-mode pynvc|ffmpeg_gpu|ffmpeg_cpu] [--batch-size 64]

Same flags as ``sparkframes video-frames``. For GPU decoding, see conf/spark-defaults-gpu.conf.
"""

import sys

from sparkframes.cli import main

if __name__ == "__main__":
    sys.exit(main(["video-frames", *sys.argv[1:]]))
