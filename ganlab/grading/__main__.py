"""``python -m ganlab.grading grade ...`` / ``check ...``: the same as ``ganlab grade|check``."""

import sys

from ..cli import main

sys.exit(main(sys.argv[1:]))
