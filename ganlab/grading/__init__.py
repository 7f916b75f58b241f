"""Grading a whole class in one command, and the same pipeline for a student's self-check.

    ganlab grade SUBMISSIONS_DIR --out grades.csv [--gradebook moodle.csv] [--feedback-dir DIR]
                 [--isolation auto|bwrap|none] [--jobs N] [--timeout-cell S] [--timeout-total S]
                 [--memory-mb M] [--notebooks 02,04] [--force]
    ganlab check [PATH] [--notebooks DIR] [--notebook NN]

(options: ``ganlab/cli.py``; ``python -m ganlab.grading grade|check ...`` is the same).
The pipeline, one small module per step, for each submission in parallel:

1. ``intake``: each entry of SUBMISSIONS_DIR is a student: a folder (names starting with
   "." too, with a note), or a zip from ``ganlab submit`` (``ganlab.submission.unpack``:
   bounded, name-checked); links, FIFOs, devices and other files are listed, not opened;
2. ``assemble`` (the notebooks): the instructor's notebooks with the student's exercise
   cells spliced in, found by cell id, else by the ``# ganlab:ex-N-M`` line the kit writes
   into each exercise cell, else reported missing; saved outputs are never read; a
   sandbox folder with the instructor's ``ganlab`` and the student's four modules;
3. ``execute``: the notebooks run in a kernel in the submission's sandbox (``sandbox``:
   bubblewrap), driven by nbclient's public interface (``NotebookClient.execute_cell``,
   its ``on_cell_executed`` hook and its ``output`` method, a ``KernelSpecManager``);
   cells no check needs are left out (``deps``). nbval is not used by the grader (it
   stays the tool of the kit's own notebook tests), so ``ganlab check`` needs no nbval;
4. ``verify``: every check that passed is run again in a fresh process in a fresh
   sandbox, with a private copy of the instructor's checks loaded before student code;
   a check earns its ``points-K`` only if it passed both times;
5. ``report``: the per-check CSV, a Moodle gradebook CSV, the feedback, and a list at
   the end of the run of every row to review (red flags, crashes, timeouts).

What is defended, with bubblewrap (``--isolation bwrap``, or ``auto`` where it works)
------------------------------------------------------------------------------------
Each run (kernel, verifier) of a submission is its own set of namespaces, as its own
uid when the grader runs as root (``sandbox``):

* Reading what is not theirs: the mount namespace holds the Python installation, the
  grader's venv and ``ganlab`` package (read-only) and that run's sandbox folder; the
  instructor's ``solutions/`` and ``.git``, the other submissions, the grades CSV and the
  feedback folder do not exist there, for Python's file APIs and native code alike
  (``torch.from_file``, a C extension). ``/proc`` shows only the sandbox's own processes:
  the grader's environment and paths are not there to read.
* Writing outside: only the sandbox folder is writable (a FIFO, device node or SQLite
  file made there stays there: device nodes cannot be opened, the grader never opens
  special files, and the sandbox is deleted); the CSV and the feedback are written by
  the grader after every student process has ended.
* Processes: any way of starting one (``os.posix_spawn``, ctypes, ``subprocess``) works
  inside, and they all die with the sandbox (PID namespace, ``--die-with-parent``): no
  detached child outlives the submission to rewrite ``grades.csv``; no process can
  see, signal or ``pidfd_open`` another submission's. No network.
* Resources: per-cell and total timeouts, a dead kernel replaced by one that replays
  the passed cells; memory, tasks and one CPU limited by a cgroup v2 where the machine
  delegates one (memfd and tmpfs pages count there), else rlimits, and the summary
  then names what is not limited (memfd memory beyond the address space limit, the CPU
  share of threads); ``/tmp`` and ``/dev/shm`` are 64 MB tmpfs either way. The sandbox
  folder is on the host's disk: the grader watches its size (``--disk-mb``, 1024 by
  default) and file count and stops a submission that goes past them, so no loop of
  writes fills the disk the CSV needs.
* The grader's own reads: every file a submission wrote is read with a size limit and
  only if it is a regular file; the notebooks' JSON, cell sources and module files
  have size and count limits; the runs' output is read to a bounded length; hints and
  notes are cut and the grader's paths redacted; a broken canonical notebook is one
  ``error:`` line.

Without bubblewrap (``--isolation none``, or ``auto`` where it is missing, e.g. macOS)
----------------------------------------------------------------------------------
The summary says "NOT ISOLATED". What remains is a deterrent, not a boundary: the audit
hook of ``kernel.py`` refuses, through Python's own APIs, opening the instructor's paths
and other submissions, writes outside the sandbox, subprocesses, signals, ctypes calls,
``gc`` walks; rlimits bound the address space and file sizes; processes are killed by
an environment marker. Native code (``torch.from_file``, ctypes that got past the hook
by writing the process's memory) can read any file this user can, start processes
the marker does not find, and signal this user's processes. Grade untrusted work with
bubblewrap, or in a container or VM per submission.

What is not defended, with or without bubblewrap
------------------------------------------------
* A submission's own results: the checks call the student's code in the same process,
  so code that reaches into that process (its memory through ctypes or
  ``/proc/self/mem``, the key the verifier signs results with, stack frames of the
  check, ``gc``) can make its own checks report a pass. Nothing a process can read or
  compute is a secret from code running in it; the signature only proves that a line
  came from that submission's verifier, not that its checks ran honestly. Such code
  cannot change another student's grade, and the grader flags it for review (in the
  row's notes and in the end-of-run list: frames, ``gc``, ctypes and its aliases,
  ``/proc``, process creation, dynamic code); it is a case for a human, as plagiarism is.
* Lying objects and patched libraries: the checks call student code and use torch; a
  student who patches torch or returns tensor subclasses whose comparisons lie can fool
  both runs (also flagged when it uses the introspection above, not otherwise).
* Static red flags can be evaded by code obfuscated in ways the patterns miss.
"""

import sys

# nbformat -> jsonschema imports rfc3987_syntax when it is installed, which compiles a grammar
# at import: 3.7 s of CPU here, for an IRI string format that notebooks never use. Skip it.
# (The one copy of this guard: every grading process, the runner included, imports this package.)
sys.modules.setdefault("rfc3987_syntax", None)

from .commands import run_check, run_grade  # noqa: E402 (after the rfc3987_syntax guard)

__all__ = ["run_grade", "run_check"]
