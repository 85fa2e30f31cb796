"""spark-submit entry point for clip frames.

    spark-submit --master spark://host:7077 jobs/clip_frames.py --input IN --output OUT [flags]

Same flags as ``sparkframes clip-frames``; the master comes from spark-submit. Executors need
sparkframes importable (installed in their Python, or shipped with ``--py-files``).
"""

import sys

from sparkframes.cli import main

if __name__ == "__main__":
    sys.exit(main(["clip-frames", *sys.argv[1:]]))
