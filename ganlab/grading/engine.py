"""Grade one submission: intake -> notebooks -> execute -> verify, in its own sandboxes.

Layout of one submission's work folder (``work_root/sNNNN``)::

    sandbox/    the kernel's world: ganlab/ (instructor's + student's modules), NN_*.ipynb, home/, tmp/, runs/
    verify/     a fresh copy of the same for the verifier (the kernel may have changed sandbox/)
    private/    the grader's: the logs of both runs (never mounted in a sandbox)

With bubblewrap each of the two runs sees its own folder as ``/sandbox`` and nothing
of the others (``sandbox``); without it, the paths are the real ones and only the audit
hook of ``kernel.py`` keeps the student's code in its folder.
"""

from __future__ import annotations

import functools
import json
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from . import assemble, deps, intake, sandbox, verify
from .execute import AT_START

PACKAGE = Path(__file__).resolve().parent.parent
KEEP_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "SYSTEMROOT")
MAX_LOG_BYTES = 4 * 2**20  # what the grader reads of a run's log (the rest is ignored)

_STOP = threading.Event()  # set on Ctrl-C: start nothing new
_ACTIVE = {}  # marker -> the Popen objects of the submissions being graded


def stop_everything():
    """Kill every process of every submission being graded (they run in sessions of their own)."""
    _STOP.set()
    for marker in list(_ACTIVE):
        _kill_submission(marker)


def _kill_submission(marker):
    """Kill every process of the submission graded under ``marker``."""
    for proc in list(_ACTIVE.get(marker, [])):
        _kill_group(proc)
    _kill_marked(marker)


@dataclass
class Options:
    timeout_cell: float = 120.0
    timeout_total: float = 900.0
    memory_mb: int = 4096
    disk_mb: int = 1024
    threads: int = 1
    all_cells: bool = False  # run every cell, not just those the checks need
    startup: float = 120.0  # seconds for a kernel or verifier to import torch and answer


@dataclass
class CheckResult:
    check: assemble.Check
    passed: bool
    hint: str = ""

    @property
    def earned(self):
        return self.check.points if self.passed else 0


@dataclass
class Result:
    name: str
    checks: list = field(default_factory=list)
    notes: list = field(default_factory=list)
    flags: list = field(default_factory=list)  # for a human: red flags, crashes, timeouts

    @property
    def total(self):
        return sum(r.earned for r in self.checks)


def limits_for(options):
    """The sandbox limits of one submission's runs, from the command line's options."""
    return sandbox.Limits(
        memory_mb=options.memory_mb,
        cpu_seconds=int(2 * options.timeout_total + 4 * options.startup),
        disk_mb=options.disk_mb,
    )


def _kernel_hint(record, options):
    """The feedback line for a check whose cell failed in the kernel."""
    if record is None:
        return "not run (the notebook could not be run; see the notes)"
    outcome = record.get("outcome")
    if outcome == "skipped":
        return f"not run: {record.get('reason') or 'skipped'}"
    if outcome == "died":
        return "kernel died (a crash, os._exit, or running out of memory)"
    ename, evalue = record.get("ename", ""), record.get("evalue", "")
    if outcome == "timeout" or ename == "KeyboardInterrupt":
        return f"timed out (the limit is {options.timeout_cell:g} s per cell)"
    if ename == "CheckFailed":
        return evalue
    if ename == "NotImplementedError":
        return f"not implemented yet: {evalue}"
    if ename == "MemoryError":
        return f"ran out of memory (the limit is {options.memory_mb} MB above what torch needs)"
    return f"{ename}: {evalue}" if ename else "failed"


def _explain(check, record, nb, cells, options):
    """The hint of a failed check, with the earlier cell it needed that failed first, if any."""
    hint = _kernel_hint(record, options)
    if record is None or record.get("outcome") != "failed":
        return hint
    code = [c for c in nb.cells if c.cell_type == "code"]
    index = next(i for i, c in enumerate(code) if c.get("id") == check.cell_id)
    for i in deps.needed_cells([c.source for c in code[: index + 1]], {index})[:-1]:
        earlier = cells.get((check.notebook, code[i].get("id")))
        graded = "graded" in code[i].metadata.get("tags", [])
        if earlier is not None and earlier.get("outcome") != "passed" and not graded:
            return f"{hint} (cell {code[i].id} failed before it: {_kernel_hint(earlier, options)})"
    if record.get("crashed_before"):
        hint += (
            f" (the kernel died in cell {', '.join(map(str, record['crashed_before']))} "
            "and was restarted without it)"
        )
    return hint


def _environment(extra):
    env = {k: v for k, v in os.environ.items() if k in KEEP_ENV}
    env.update(extra)
    return env


def _kill_group(proc):
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except OSError:
        pass


def _marked(needle):
    """The processes, this one aside, whose environment holds ``needle``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                if needle in f.read(2**20).split(b"\0") and int(pid) != os.getpid():
                    found.append(int(pid))
        except OSError:  # gone, or not ours to read
            pass
    return found


def _kill_marked(marker):
    """Without bubblewrap: kill every process still carrying this submission's marker."""
    needle = f"GANLAB_GRADE_SANDBOX={marker}".encode()
    if not os.path.isdir("/proc"):  # not Linux: the runs were killed by process group only
        return
    for _ in range(5):  # again while one is found: it may have forked during the scan
        pids = _marked(needle)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


@dataclass
class Run:
    """Where one run of one submission happens, as the grader and as its processes see it."""

    host: Path  # the sandbox folder on this machine
    isolation: sandbox.Isolation
    uid: int | None
    marker: str
    limits: sandbox.Limits
    refused: tuple = ()  # the folders of the submissions and the grader's outputs: never mounted

    @property
    def inside(self):  # the sandbox folder as the student's processes see it
        return sandbox.MOUNT if self.isolation.isolated else str(self.host)

    @property
    def package(self):  # the grader's own ganlab, as they see it
        return f"{sandbox.GRADER}/ganlab" if self.isolation.isolated else str(PACKAGE)

    @property
    def python(self):
        return sandbox.sandbox_python() if self.isolation.isolated else sys.executable

    def env(self, backend):
        sb = self.inside
        return {
            "PATH": "/usr/bin:/bin",
            "LANG": "C.UTF-8",
            "HOME": f"{sb}/home",
            "TMPDIR": f"{sb}/tmp",
            "MPLCONFIGDIR": f"{sb}/home/.matplotlib",
            "IPYTHONDIR": f"{sb}/home/.ipython",
            "JUPYTER_RUNTIME_DIR": f"{sb}/home/.jupyter-runtime",
            "JUPYTER_CONFIG_DIR": f"{sb}/home/.jupyter",
            "JUPYTER_DATA_DIR": f"{sb}/home/.jupyter-data",
            "MPLBACKEND": backend,
            "GANLAB_QUICK": "1",
            "GANLAB_RUNS_DIR": f"{sb}/runs",
            "OMP_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MALLOC_ARENA_MAX": "2",
            "PYTHONDONTWRITEBYTECODE": "1",
            "GANLAB_GRADE_SANDBOX": self.marker,
        }

    def launcher(self, refused, work_root, options, env):
        """``kernel.py CONFIG`` as argv; CONFIG is inline JSON (no file the student could edit)."""
        config = {
            "sandbox": self.inside,
            "refused": [] if self.isolation.isolated else [str(p) for p in refused],
            "work_root": "/nonexistent" if self.isolation.isolated else str(work_root),
            "memory_mb": options.memory_mb,
            "threads": options.threads,
            "env": env,
            "path": sandbox.python_path(),  # the grader's PYTHONPATH, mounted at the same paths
        }
        # -E: PYTHONPATH and friends from the environment do not count; the launcher sets sys.path.
        return [self.python, "-E", "-B", f"{self.package}/grading/kernel.py", json.dumps(config)]

    def wrap(self, argv, env):
        cmd = sandbox.wrap(
            argv,
            self.isolation,
            self.host,
            PACKAGE,
            self.uid,
            self.limits,
            env,
            self.cgroup,
            refused=self.refused,
        )
        return cmd, (_environment({}) if self.isolation.isolated else _environment(env))

    cgroup = None


def _start(run, argv, env, **popen):
    cmd, host_env = run.wrap(argv, env)
    proc = subprocess.Popen(cmd, env=host_env, start_new_session=True, **popen)
    _ACTIVE.setdefault(run.marker, []).append(proc)
    return proc


def execute(run, names, refused, work_root, private, options, releases=None):
    """Step 3: the notebooks in a kernel (``execute.py`` in the sandbox); ``{(nb, id): record}``.

    ``releases``: ``{check cell id: source}``, the references each check frees once it has run."""
    env = run.env("module://matplotlib_inline.backend_inline")
    kernel = run.launcher(refused, work_root, options, env) + ["kernel"]
    config = {
        "kernel_argv": kernel,
        "cwd": run.inside,
        "env": env,
        "timeout_cell": options.timeout_cell,
        "timeout_total": options.timeout_total,
        "startup": options.startup,
    }
    path = [str(Path(run.package).parent), *sandbox.python_path()]
    runner_env = dict(env, PYTHONPATH=os.pathsep.join(path))
    argv = [run.python, "-B", "-m", "ganlab.grading.execute", json.dumps(config)]
    argv += [f"{run.inside}/{n}" for n in names]
    log_path = private / "execute.log"
    with open(log_path, "wb") as log:
        proc = _start(
            run,
            argv,
            runner_env,
            stdin=subprocess.PIPE,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=private,
        )
    try:  # on stdin, not in argv: the kernel may read the runner's command line (/proc)
        proc.stdin.write(json.dumps(releases or {}).encode())
        proc.stdin.close()
    except OSError:  # the runner died at once: its log says so
        pass
    deadline = time.monotonic() + options.timeout_total + 2 * options.startup
    while proc.poll() is None:  # poll, not wait: a Ctrl-C may come after this run started
        if _STOP.is_set() or time.monotonic() > deadline:
            _kill_group(proc)
            proc.wait()
            break
        time.sleep(0.1)
    _kill_group(proc)  # nothing of it may outlive the run (bwrap: the namespace goes with it)
    _kill_marked(run.marker)
    return _records(intake.read_bounded(log_path, MAX_LOG_BYTES) or b"", names)


def run_flags(cells, options):
    """What the kernel run leaves for a person to review: crashes, time-outs, no kernel."""
    from .execute import START_TRIES

    flags = []
    for record in cells.values():
        if record.get("outcome") == "nostart":  # the grader's side, not the notebook's
            flags.append(
                f"{record['notebook']}: no kernel answered within {options.startup:g} s "
                f"({START_TRIES} tries), so its cells did not run; grade again (--students)"
            )
        if record.get("outcome") in ("died", "timeout"):
            what = "crashed" if record["outcome"] == "died" else "timed out"
            flags.append(f"{record['notebook']} cell {record['cell_id']} {what}")
    return flags


def _records(text, names):
    """The runner's per-cell lines (untrusted: the kernel shares its sandbox)."""
    from .execute import TAG

    cells = {}
    for line in text.decode("utf-8", "replace").splitlines():
        if not line.startswith(TAG + " ") or len(line) > 20000:
            continue
        try:
            entry = json.loads(line[len(TAG) + 1 :])
            key = (str(entry["notebook"]), str(entry["cell_id"]))
        except (ValueError, KeyError, TypeError):
            continue
        if key[0] in names and isinstance(entry, dict):
            cells[key] = entry
    return cells


def _exercises():
    """The names of ``checks/_reference.py`` that are exercises (``bce`` is a helper): those the
    answer-free version (a student copy's ``_reference.py``) points at the student's own."""
    try:
        from ..checks import _answer_free as free
    except ImportError:  # a student copy: its _reference.py is the answer-free one
        from ..checks import _reference as free
    return {n for n, f in vars(free).items() if getattr(f, "students_own", False)}


@functools.cache
def _graded_in_course():
    """``{reference name: the notebook whose check grades it}`` over the course's notebooks."""
    found = {}
    try:
        course = assemble.canonical_notebooks(PACKAGE.parent)
    except assemble.GradingError:  # an installed package (``ganlab check``): no answers in it
        return found
    for notebook, nb in course:
        for names in assemble.graded_references(nb).values():
            for name in names:
                found.setdefault(name, notebook)
    return found


def references(canonical, checks):
    """What the runs learn of ``checks/_reference.py``, from the check cells that grade each name
    (``assemble.graded_references``): ``{check cell id: source}`` for the notebook run, and per
    check the names freed before it (by a check in an earlier cell) for the judge's re-run.

    An exercise graded in an earlier notebook than this run's last (``--notebooks 05``: the
    losses, graded in 04) has no points at stake here: its reference is free from the start
    (``execute.AT_START``), so a bug there still costs the step checks nothing. One graded in a
    later notebook (``--notebooks 02``: the losses again) is not: its answer, once in the
    kernel, could be printed into this run's feedback before its own check ever ran."""
    from ..checks import _core, _reference

    graded = {}
    for _, nb in canonical:
        graded.update(assemble.graded_references(nb))
    sources = {
        cell_id: _core.definitions(getattr(_reference, name) for name in names)
        for cell_id, names in graded.items()
    }
    here = {name for names in graded.values() for name in names}
    last, graded_in = max(name for name, _ in canonical), _graded_in_course()
    at_start = [
        n
        for n in _core.answers(_reference)
        if n in _exercises() and n not in here and graded_in.get(n, "") < last
    ]
    if at_start:
        sources[AT_START] = _core.definitions(getattr(_reference, n) for n in at_start)
    freed, before = list(at_start), {}
    for check in checks:  # the notebooks' order, the order both runs grade in
        before[check.cell_id] = list(freed)
        freed += graded.get(check.cell_id, [])
    return sources, before


def grade_submission(entry, canonical, checks, work, refused, options, isolation, index=0):
    """Grade one intake entry; ``canonical``: ``[(name, notebook)]``; never raises for a bad one."""
    names = [name for name, _ in canonical]
    sub = assemble.load_submission(entry.folder, names, entry.name)
    result = Result(entry.name, notes=[*entry.notes, *sub.notes], flags=list(entry.flags))
    spliced = {}
    for name, nb in canonical:
        nb, notes = assemble.splice(nb, sub.notebooks.get(name), name)
        spliced[name] = nb if options.all_cells else assemble.prune(nb)
        result.notes += notes
    result.flags += assemble.red_flags(sub, spliced)
    work_root = Path(work).parent.resolve()
    private = Path(work, "private").resolve()
    private.mkdir(parents=True)
    limits = limits_for(options)
    uid = sandbox.uid_for(index) if isolation.isolated else None
    marker = uuid.uuid4().hex
    refused = tuple(refused)
    sources, freed_before = references(canonical, checks)
    cells, verified, passed = {}, {}, []
    start = time.monotonic()
    sandboxes = [Path(work, "sandbox"), Path(work, "verify")]
    watch = sandbox.DiskWatch(  # past the disk quota: this submission's processes end at once
        lambda: [p for p in sandboxes if p.exists()], limits, lambda: _kill_submission(marker)
    )
    try:
        if _STOP.is_set():
            raise KeyboardInterrupt
        watch.__enter__()
        run = Run(Path(work, "sandbox").resolve(), isolation, uid, marker, limits, refused)
        run.cgroup = sandbox.make_cgroup(isolation, limits)
        try:
            assemble.build_sandbox(run.host, PACKAGE, sub, spliced)
            sandbox.prepare_writable(run.host, uid)
            cells = execute(run, names, refused, work_root, private, options, sources)
        finally:
            sandbox.remove_cgroup(run.cgroup)
        passed = [
            c
            for c in checks
            if (cells.get((c.notebook, c.cell_id)) or {}).get("outcome") == "passed"
        ]
        if passed and not _STOP.is_set() and watch.breach is None:
            # A fresh sandbox: the kernel may have rewritten its own (and is dead by now).
            vrun = Run(Path(work, "verify").resolve(), isolation, uid, marker, limits, refused)
            vrun.cgroup = sandbox.make_cgroup(isolation, limits)
            try:
                assemble.build_sandbox(vrun.host, PACKAGE, sub, spliced)
                sandbox.prepare_writable(vrun.host, uid)
                env = vrun.env("Agg")
                jobs = [
                    (
                        name,
                        verify.plan(
                            spliced[name], {c.cell_id for c in passed if c.notebook == name}
                        ),
                    )
                    for name in names
                ]
                for _, job in jobs:  # the judge substitutes only the references freed before
                    for check in job["checks"]:
                        check["released"] = freed_before[check["id"]]
                argv = vrun.launcher(refused, work_root, options, env) + ["verify"]
                cmd, host_env = vrun.wrap(argv, env)
                verified = verify.verify(
                    cmd,
                    host_env,
                    private,
                    [job for job in jobs if job[1]["checks"]],
                    limits.memory_mb,
                    options.timeout_cell,
                    start + 2 * options.timeout_total,  # the kernel run had its own total
                    private / "verify.log",
                    startup=options.startup,
                    stop=_STOP,
                    started=lambda proc: _ACTIVE.setdefault(marker, []).append(proc),
                )
            finally:
                _kill_marked(marker)
                sandbox.remove_cgroup(vrun.cgroup)
    finally:
        watch.__exit__(None, None, None)
        for proc in _ACTIVE.pop(marker, []):
            _kill_group(proc)
    if watch.breach is not None:
        result.flags.append(watch.breach)
    result.flags += run_flags(cells, options)
    for check in checks:
        record = cells.get((check.notebook, check.cell_id))
        if watch.breach is not None:  # a half-run is not graded
            result.checks.append(CheckResult(check, False, watch.breach))
            continue
        if check not in passed:
            hint = _explain(check, record, spliced[check.notebook], cells, options)
            result.checks.append(CheckResult(check, False, hint))
            continue
        ok, hint = verified.get(check.cell_id, (False, "the grader could not re-run this check"))
        if not ok:
            hint = f"passed in the notebook, but not when the grader re-ran it: {hint}"
            if "timed out" in hint or "died" in hint:
                result.flags.append(f"verifying {check.cell_id}: {hint.split(': ', 1)[1]}")
        result.checks.append(CheckResult(check, ok, hint))
    return result
