"""Test-wide set-up.

The in-process tests exercise the *reference* solutions: the switch must be on
before ``ganlab`` is first imported (it decides the package path at import time).
Everything that must see the student stubs runs in a subprocess without it
(see tests/nbrun.py and tests/test_stubs.py).
"""

import os
import sys
from pathlib import Path

os.environ["GANLAB_SOLUTIONS"] = "1"
os.environ.setdefault("MPLBACKEND", "Agg")

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(Path(__file__).resolve().parent))  # tests/ helpers such as nbrun
SHARED_DATA = REPO.parent / "shared" / "data"
