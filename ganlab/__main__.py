"""``python -m ganlab ...`` is the ``ganlab`` command (also how ``torchrun -m ganlab train ...`` starts it)."""

from .cli import main

raise SystemExit(main())
