"""Grading a whole class in one command, and the same pipeline for a student's self-check.

    ganlab grade SUBMISSIONS_DIR --out grades.csv [--gradebook moodle.csv] [--feedback-dir DIR]
                 [--isolation auto|bwrap|none] [--jobs N] [--timeout-cell S] [--timeout-total S]
                 [--memory-mb M] [--notebooks 02,04] [--force]
    ganlab check [PATH] [--notebooks DIR] [--notebook NN]

(options: ``ganlab/cli.py``; ``python -m ganlab.grading grade|check ...`` is the same).
The pipeline, one small module per step, for each submission in parallel:

1. ``intake``: each entry of SUBMISSIONS_DIR is a student: a folder (names starting with
   "." too, with a note), or a zip from ``ganlab submit`` (``ganlab.submission.unpack``:
   bounded, name-checked), alone or in a folder of its own; links, FIFOs, devices and other
   files are listed, not opened; a zip that cannot be unpacked, or holds nothing to grade, is
   flagged, costing no other row. A row is named after its entry; Moodle's folder names are
   cut to the student's name and participant id (``intake.row_name``);
2. ``assemble`` (the notebooks): the instructor's notebooks with the student's exercise
   cells spliced in, found by cell id, else by the ``# ganlab:ex-N-M`` line the kit writes
   into each exercise cell, else reported missing; saved outputs are never read; a
   sandbox folder with the instructor's ``ganlab`` and the student's four modules;
3. ``execute``: the notebooks run in a kernel in the submission's sandbox (``sandbox``:
   bubblewrap), driven by nbclient's public interface (``NotebookClient.execute_cell``,
   its ``on_cell_executed`` hook and its ``output`` method, a ``KernelSpecManager``);
   cells no check needs are left out (``deps``). nbval is not used by the grader (it
   stays the tool of the kit's own notebook tests), so ``ganlab check`` needs no nbval;
4. ``verify`` and ``judge``: every check that passed is run again by a judge process
   (the grader's own code, outside the sandbox) that runs the instructor's check and
   never the student's code: that runs in a fresh sandbox and answers the judge's calls
   with data (``remote``); a check earns its ``points-K`` only if it passed both times;
5. ``report``: the per-check CSV, Moodle's grading worksheet, the feedback, and a list at
   the end of the run of every row to review (red flags, crashes, timeouts).

What is defended, with bubblewrap (``--isolation bwrap``, or ``auto`` where it works)
------------------------------------------------------------------------------------
Each run (kernel, the re-run's process) of a submission is its own set of namespaces, as its own
uid when the grader runs as root (``sandbox``):

* Reading what is not theirs: the mount namespace holds the Python installation, the
  grader's venv and ``ganlab`` package (read-only) and that run's sandbox folder; the
  instructor's ``solutions/`` and ``.git``, the other submissions, the grades CSV and the
  feedback folder do not exist there, for Python's file APIs and native code alike
  (``torch.from_file``, a C extension). ``/proc`` shows only the sandbox's own processes:
  the grader's environment and paths are not there to read.
* The checks' answers: the network, step and slerp checks use the grader's
  ``checks/_reference.py`` (init, upsample_block, the losses, lerp), so that a bug in one
  exercise costs only its own check. No sandbox holds that file: every copy of the package
  it shows (its own, the grader's, an installed one) has the student copy's, which calls the
  student's functions. A run is handed a reference, as source, only once the check that
  grades that exercise has run in it (``assemble.graded_references``): the runner defines it
  in the kernel after that check cell, and the judge sends it with a later check's call.
  The runner gets them on stdin and makes itself non-dumpable, so the kernel (same uid)
  cannot read them from its command line, its memory or its descriptors.
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

Forged results, with or without bubblewrap
------------------------------------------
The notebook run happens in the student's kernel, where their code can patch a check
into passing; so every check that passed is re-run by the judge (``judge.py``), a
process that runs the instructor's checks and no student code. The student's code runs
in the submission's process (``verify.Server``, sandboxed) and answers the judge's calls
over a pipe with data only (``remote``): numbers, strings, tensors, and each module it
builds as its tree of standard ``torch.nn`` layers, its weights and the ``torch.fx``
graph of its ``forward``, whose steps may call only torch functions, tensor methods and
operators on an allow-list, and give only tensors and data (never a function or a module).
The judge rebuilds the module and runs, inspects and differentiates its own copy; a
function's tensors come back with their gradients. The judge never unpickles, evaluates
or imports what it receives, so code in the student's processes (patched checks or torch,
frames, ``gc``, ctypes, process memory, a forged reply) changes only what the student's
code answers, never a check or its verdict; a broken reply fails that check and the next
one gets a fresh process. Such code is still flagged for review (frames, ``gc``, ctypes
and its aliases, ``/proc``, process creation, dynamic code).

What is not defended, with or without bubblewrap
------------------------------------------------
* Copying: code that answers like a correct solution earns the points of one, as a
  copied solution does; it is a case for a human, as plagiarism is.
* A ``forward`` that ``torch.fx`` cannot trace (a Python branch on a tensor's value)
  cannot be rebuilt by the judge: its checks fail in the re-run with a hint that says so.
* The judge runs outside the sandbox, as the grader's user, on data from the
  submission: it is bounded (message sizes, nesting, the address space of ``--memory-mb``
  above torch's) and the grader's timeouts stop it, but it is the grader's code and
  torch's parsing of tensors it trusts.
* Static red flags can be evaded by code obfuscated in ways the patterns miss.
"""

import sys

# nbformat -> jsonschema imports rfc3987_syntax when it is installed, which compiles a grammar
# at import: 3.7 s of CPU here, for an IRI string format that notebooks never use. Skip it.
# (The one copy of this guard: every grading process, the runner included, imports this package.)
sys.modules.setdefault("rfc3987_syntax", None)

from .commands import run_check, run_grade  # noqa: E402 (after the rfc3987_syntax guard)

__all__ = ["run_grade", "run_check"]
