"""``python -m ganlab.grading grade ...`` / ``python -m ganlab.grading check ...``."""

import sys

from .commands import main

sys.exit(main())
