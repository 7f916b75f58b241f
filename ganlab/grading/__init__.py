"""Grading a whole class in one command, and the same pipeline for a student's self-check.

    ganlab grade SUBMISSIONS_DIR --out grades.csv [--jobs N] [--timeout-cell S] [--timeout-total S]
                 [--memory-mb M] [--feedback-dir DIR] [--notebooks 02,04] [--force]
    ganlab check [--notebook NN] [PATH]

(or ``python -m ganlab.grading grade|check ...``). Each sub-folder of SUBMISSIONS_DIR is
one student's copy of the kit. For each one, in parallel (``commands.py``, ``engine.py``):

1. ``assemble``: the instructor's notebooks with the student's exercise cells (``ex-N-M``,
   by cell id) spliced in, and a sandbox folder holding the instructor's ``ganlab``
   package with the student's four exercise modules dropped in;
2. a kernel run: nbval (pytest) runs the notebooks in a kernel started by our launcher
   (``kernel.py``: rlimits, audit hook, clean environment), cells no check needs left out
   (``deps``); ``nbplugin`` records each cell's outcome outside the sandbox;
3. verification (``verify``): every check that passed is run again in a fresh sandboxed
   process with a private copy of the instructor's checks. A check earns its ``points-K``
   only if it passed both times; ``report`` writes the CSV and the feedback.

What this defends against
-------------------------
* Editing or deleting check cells: only the exercise cells come from the student.
* Replacing the checks: patching ``ganlab.checks`` (a check, or a helper such as
  ``fail_unless``) from a cell or a module, rewriting the sandbox's ``ganlab/checks``
  files, patching ``builtins``, swallowing exceptions in the kernel: the private copy
  (loaded from the grader's own package, under a random name, with its own builtins,
  before student code runs) does not see any of it.
* Forging results: the per-cell records and the kernelspec live outside the sandbox;
  the verifier's results are MAC'd with a key read from stdin before student code
  runs, so printing "passed" lines gets nothing.
* Writing the grades: the CSV and the feedback are written by the grader after every
  student process has ended (stragglers are killed by an environment marker); and the
  audit hook refuses, through Python's file APIs (``open``, ``os.*``, ``torch.save``,
  ``sqlite3``), any write outside the sandbox and any read of ``solutions/``, ``.git``
  (the solutions branch), the submissions, the other sandboxes and the outputs.
* Escapes: subprocesses, fork/exec, signals to other processes, raising rlimits, sockets,
  ctypes calls, ``gc`` object walks and tracing are refused.
* Hangs, crashes (segfault, ``os._exit``) and memory hogs: per-cell and total timeouts,
  an address-space limit, a dead kernel replaced by one that replays the passed cells:
  they cost the cell and the checks that depend on it, nothing else.

What it does not defend against
-------------------------------
* Native code doing its own I/O: a compiled extension, or a library that opens files
  in C/C++ (``torch.from_file`` reads any file) is invisible to audit hooks. The grades
  stay safe (written last, by the grader), but ``solutions/`` could be read: grade
  from a copy without it (``python -m ganlab.instructor export-student``; the grader
  needs only ``notebooks/`` and ``ganlab/``), or run it in a container or VM per
  submission, as another user, without network, when the stakes are high.
* Deliberate introspection in the verifier: student code shares the interpreter with
  the private checks, so code that walks stack frames (``sys._getframe().f_back``) to
  reach them, or the signing function, can still rewrite them. Such code is flagged
  for review in the notes, not stopped.
* Lying objects and patched libraries: the checks call student code and use torch. A
  student who patches torch, or returns tensor subclasses whose comparisons lie, fools
  both runs; check 5.4 grades a history made by ``ganlab.trainer``, which a student's
  ``training.py`` could patch at import.
* Races between the hook's path check and the open (threads swapping files): the
  hook refuses to create links, which closes the easy ones.
"""

import sys

# nbformat -> jsonschema imports rfc3987_syntax when it is installed, which compiles a grammar
# at import: 3.7 s of CPU here, for an IRI string format that notebooks never use. Skip it.
sys.modules.setdefault("rfc3987_syntax", None)

from .commands import (  # noqa: E402 (after the rfc3987_syntax guard)
    CHECK_HELP,
    GRADE_HELP,
    add_check_arguments,
    add_grade_arguments,  # noqa: E402
    run_check,
    run_grade,
)

__all__ = [
    "add_grade_arguments",
    "run_grade",
    "add_check_arguments",
    "run_check",
    "GRADE_HELP",
    "CHECK_HELP",
]
