"""The solutions switch: ``GANLAB_SOLUTIONS=1`` makes ``ganlab.models`` & co. the reference solutions.

The reference solution of each exercise module lives in exactly one file,
``solutions/ganlab/<module>.py``; the student stub in ``ganlab/<module>.py`` is
derived from it (``python -m ganlab.instructor stubs``). With the switch on, we put
``solutions/ganlab`` first on the package's ``__path__``: Python then finds
``ganlab.models`` there, while non-exercise modules (data, checks, ...) exist only
in ``ganlab/`` and are found as usual. Nothing is copied, so nothing can drift.
"""

import os
import sys
from pathlib import Path

# The files students complete: each has a reference in solutions/ganlab/ and a derived stub in
# ganlab/. Everything that needs the list (the switch, the stubs, grading, the CLI) reads it here.
EXERCISE_MODULES = ("models.py", "losses.py", "training.py", "latent.py")
ENV_SWITCH = "GANLAB_SOLUTIONS"
ENV_DIR = "GANLAB_SOLUTIONS_DIR"
_TRUE = {"1", "true", "yes", "on"}


class SolutionsUnavailable(ImportError):
    """The switch is on but this copy of the kit has no solutions."""


def solutions_requested():
    return os.environ.get(ENV_SWITCH, "").strip().lower() in _TRUE


def solutions_dir():
    """Where the reference exercise modules live (override with GANLAB_SOLUTIONS_DIR)."""
    if os.environ.get(ENV_DIR):
        return Path(os.environ[ENV_DIR]).expanduser().resolve()
    return Path(__file__).resolve().parent.parent / "solutions" / "ganlab"


class _Refuse:
    """An import hook that fails every import of an exercise module with ``error``.

    Raising while ``ganlab`` itself is imported would stop the ``ganlab`` command before it can
    print one line (the console script imports ``ganlab.cli``, hence the package, first); the
    student's own files must never be used in place of the solutions asked for either."""

    def __init__(self, error):
        self.error = error
        self.refused = {f"ganlab.{name.removesuffix('.py')}" for name in EXERCISE_MODULES}

    def find_spec(self, fullname, path=None, target=None):
        if fullname in self.refused:  # asked of every import in the process: a set lookup
            raise self.error
        return None  # anything else: the usual finders


def activate_solutions_if_requested(package_path):
    """Prepend the solutions folder to ``package_path`` when the switch is on; return whether it is.

    Switched on where there are no solutions (a student copy), ``import ganlab`` still works, but
    importing an exercise module raises SolutionsUnavailable, saying what to do."""
    if not solutions_requested():
        return False
    folder = solutions_dir()
    if not (folder / "models.py").is_file():
        error = SolutionsUnavailable(
            f"{ENV_SWITCH}=1 is set, but there are no reference solutions at {folder}. "
            "Student copies of ganlab do not ship them: unset the variable "
            f"(e.g. `unset {ENV_SWITCH}` or `%env {ENV_SWITCH}=0` in a notebook) to use your own code, "
            f"or point {ENV_DIR} at an instructor copy's solutions/ganlab folder."
        )
        sys.meta_path.insert(0, _Refuse(error))
        return False
    package_path.insert(0, str(folder))
    return True
