"""``python -m sparkframes``: the same as the ``sparkframes`` command."""

import sys

from sparkframes.cli import main

sys.exit(main())
