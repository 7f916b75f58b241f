"""Grade one submission: build its sandbox, run nbval on it, verify what passed.

Layout of one submission's work folder (``work_root/sNNNN``)::

    sandbox/    the kernel's world: ganlab/ (instructor's + student's modules), NN_*.ipynb, home/, tmp/, runs/
    verify/     a fresh copy of the same for the verifier (the kernel may have changed sandbox/)
    private/    the grader's: launcher configs, kernelspec, connection files, per-cell records, logs

Student code can write only inside its sandbox; the kernelspec and the records it
could otherwise rewrite live in ``private/``.
"""

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

from . import assemble, deps, verify

KERNEL_NAME = "ganlab-grader"
LAUNCHER = Path(__file__).resolve().with_name("kernel.py")
PACKAGE = Path(__file__).resolve().parent.parent
KEEP_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ", "SYSTEMROOT")
# nbformat -> jsonschema imports rfc3987_syntax if it is installed, which compiles a grammar
# at import: 3.7 s of CPU per pytest process here, for a format notebooks do not use.
PYTEST = (
    "import sys; sys.modules.setdefault('rfc3987_syntax', None); import pytest; "
    "sys.exit(pytest.main(sys.argv[1:]))"
)


_STOP = threading.Event()  # set on Ctrl-C: start nothing new
_ACTIVE = set()  # the markers of the submissions being graded


def stop_everything():
    """Kill every process of every submission being graded (they run in sessions of their own)."""
    _STOP.set()
    for marker in list(_ACTIVE):
        _kill_marked(marker)


@dataclass
class Options:
    timeout_cell: float = 120.0
    timeout_total: float = 900.0
    memory_mb: int = 4096
    threads: int = 1
    all_cells: bool = False  # run every cell, not just those the checks need


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

    @property
    def total(self):
        return sum(r.earned for r in self.checks)


def _kernel_hint(record, options):
    """The feedback line for a check whose cell failed in the kernel."""
    if record is None:
        return "not run (the notebook could not be run; see the notes)"
    if record["outcome"] == "skipped":
        return f"not run: {record['skip_reason'] or 'skipped'}".replace("Skipped: ", "")
    if record["died"] or record["dead_before"]:
        return "kernel died (a crash, os._exit, or running out of memory)"
    ename, evalue = record["ename"], record["evalue"]
    if record["timeout"] or ename == "KeyboardInterrupt":
        return f"timed out (the limit is {options.timeout_cell:g} s per cell)"
    if ename == "CheckFailed":
        return evalue
    if ename == "NotImplementedError":
        return f"not implemented yet: {evalue}"
    if ename == "MemoryError":
        return f"ran out of memory (the limit is {options.memory_mb} MB above what torch needs)"
    if ename:
        return f"{ename}: {evalue}"
    lines = [line for line in record["message"].splitlines() if line.strip()]
    return lines[-1][:500] if lines else "failed"


def _explain(check, record, nb, cells, options):
    """The hint of a failed check, with the earlier cell it needed that failed first, if any."""
    hint = _kernel_hint(record, options)
    if record is None or record["outcome"] != "failed" or record["died"]:
        return hint
    code = [c for c in nb.cells if c.cell_type == "code"]
    index = next(i for i, c in enumerate(code) if c.get("id") == check.cell_id)
    for i in deps.needed_cells([c.source for c in code[: index + 1]], {index})[:-1]:
        earlier = cells.get((check.notebook, code[i].get("id")))
        graded = "graded" in code[i].metadata.get(
            "tags", []
        )  # checks.check_x(...) "changes" checks
        if earlier is not None and earlier["outcome"] == "failed" and not graded:
            return f"{hint} (cell {code[i].id} failed before it: {_kernel_hint(earlier, options)})"
    if record.get("crashed_before"):
        hint += f" (the kernel died in cell {', '.join(record['crashed_before'])} and was restarted without it)"
    return hint


def _environment(extra):
    env = {k: v for k, v in os.environ.items() if k in KEEP_ENV}
    env.update(extra)
    return env


def _kill_marked(marker):
    """Kill every process still carrying this submission's marker (a kernel, its children)."""
    needle = f"GANLAB_GRADE_SANDBOX={marker}".encode()
    if not os.path.isdir(
        "/proc"
    ):  # not Linux: the kernels were stopped by nbval, the verifier killed
        return
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/environ", "rb") as f:
                marked = needle in f.read().split(b"\0")
        except OSError:
            continue
        if marked and int(pid) != os.getpid():
            try:
                os.kill(int(pid), signal.SIGKILL)
            except OSError:
                pass


def _launcher_config(path, sandbox, refused, work_root, options, env):
    config = {
        "sandbox": str(sandbox),
        "refused": [str(p) for p in refused],
        "work_root": str(work_root),
        "memory_mb": options.memory_mb,
        "threads": options.threads,
        "env": env,
    }
    Path(path).write_text(json.dumps(config, indent=1))
    # -E: PYTHONPATH and friends from the environment do not count; the launcher sets sys.path.
    return [sys.executable, "-E", "-B", str(LAUNCHER), str(path)]


def _sandbox_env(sandbox, marker, backend):
    return {
        "HOME": f"{sandbox}/home",
        "TMPDIR": f"{sandbox}/tmp",
        "PYTHONPATH": str(sandbox),
        "MPLCONFIGDIR": f"{sandbox}/home/.matplotlib",
        "IPYTHONDIR": f"{sandbox}/home/.ipython",
        "MPLBACKEND": backend,
        "GANLAB_QUICK": "1",
        "GANLAB_RUNS_DIR": f"{sandbox}/runs",
        "OMP_NUM_THREADS": "1",
        "MKL_NUM_THREADS": "1",
        "OPENBLAS_NUM_THREADS": "1",
        "MALLOC_ARENA_MAX": "2",
        "PYTHONDONTWRITEBYTECODE": "1",
        "GANLAB_GRADE_SANDBOX": marker,
    }


def run_kernel(sandbox, private, names, launcher, marker, options):
    """nbval over the sandbox's notebooks; returns ``{cell id: record}`` (see nbplugin)."""
    spec = private / "jupyter" / "kernels" / KERNEL_NAME
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(
        json.dumps(
            {
                "argv": launcher + ["kernel", "-f", "{connection_file}"],
                "display_name": "ganlab grader",
                "language": "python",
            }
        )
    )
    for folder in ("runtime", "home", "config", "data"):
        (private / folder).mkdir(exist_ok=True)
    record = private / "cells.jsonl"
    env = _environment(
        {
            "JUPYTER_PATH": str(private / "jupyter"),
            "JUPYTER_RUNTIME_DIR": str(private / "runtime"),
            "JUPYTER_CONFIG_DIR": str(private / "config"),
            "JUPYTER_DATA_DIR": str(private / "data"),
            "HOME": str(private / "home"),
            "PYTEST_DISABLE_PLUGIN_AUTOLOAD": "1",
            "PYTHONPATH": str(PACKAGE.parent),
            "PYTHONDONTWRITEBYTECODE": "1",
            "GANLAB_GRADE_SANDBOX": marker,
        }
    )
    cmd = [
        sys.executable,
        "-c",
        PYTEST,
        "-p",
        "no:cacheprovider",
        "-p",
        "nbval.plugin",
        "-p",
        "ganlab.grading.nbplugin",
        "--noconftest",
        "-c",
        os.devnull,
        "--rootdir",
        str(private),
        "--nbval-lax",
        "--nbval-kernel-name",
        KERNEL_NAME,
        "--nbval-cell-timeout",
        f"{options.timeout_cell:g}",
        "--nbval-kernel-startup-timeout",
        "120",
        "--ganlab-record",
        str(record),
        "--ganlab-total-timeout",
        f"{options.timeout_total:g}",
        "-q",
        *[str(sandbox / n) for n in names],
    ]
    with open(private / "nbval.log", "wb") as log:
        proc = subprocess.Popen(
            cmd, cwd=private, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        deadline = time.monotonic() + options.timeout_total + 180
        while proc.poll() is None:  # poll, not wait: a Ctrl-C may come after this kernel started
            if _STOP.is_set() or time.monotonic() > deadline:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                break
            time.sleep(0.1)
    _kill_marked(marker)
    cells = {}
    if record.exists():
        for line in record.read_text().splitlines():
            entry = json.loads(line)
            cells[(entry["notebook"], entry["cell_id"])] = entry
    return cells


def grade_submission(folder, canonical, checks, work, refused, options):
    """Grade one student folder; ``canonical``: ``[(name, notebook)]``; never raises for a bad submission."""
    names = [name for name, _ in canonical]
    sub = assemble.load_submission(folder, names)
    result = Result(sub.name, notes=list(sub.notes))
    spliced = {}
    for name, nb in canonical:
        nb, notes = assemble.splice(nb, sub.notebooks.get(name), name)
        nb = assemble.split_check_cells(nb)
        spliced[name] = nb if options.all_cells else assemble.prune(nb)
        result.notes += notes
    result.notes += assemble.red_flags(sub, spliced)
    work_root = Path(work).parent.resolve()
    sandbox, private, vsandbox = (Path(work, d).resolve() for d in ("sandbox", "private", "verify"))
    private.mkdir(parents=True)
    marker, start, verified = uuid.uuid4().hex, time.monotonic(), {}
    _ACTIVE.add(marker)
    try:
        if _STOP.is_set():
            raise KeyboardInterrupt
        assemble.build_sandbox(sandbox, PACKAGE, sub, spliced)
        launcher = _launcher_config(
            private / "kernel-config.json",
            sandbox,
            refused,
            work_root,
            options,
            _sandbox_env(sandbox, marker, "module://matplotlib_inline.backend_inline"),
        )
        cells = run_kernel(sandbox, private, names, launcher, marker, options)
        passed = [
            c
            for c in checks
            if (cells.get((c.notebook, c.cell_id)) or {}).get("outcome") == "passed"
        ]
        if passed and not _STOP.is_set():
            # A fresh copy: the kernel may have rewritten its sandbox (and is dead by now).
            assemble.build_sandbox(vsandbox, PACKAGE, sub, spliced)
            env = _sandbox_env(vsandbox, marker, "Agg")
            launcher = _launcher_config(
                private / "verify-config.json", vsandbox, refused, work_root, options, env
            )
            jobs = [
                (
                    name,
                    verify.plan(spliced[name], {c.cell_id for c in passed if c.notebook == name}),
                )
                for name in names
            ]
            deadline = start + 2 * options.timeout_total  # the kernel run had its own total
            verified = verify.verify(
                launcher + ["verify"],
                _environment(env),
                vsandbox,
                [job for job in jobs if job[1]["checks"]],
                options.timeout_cell,
                deadline,
                private / "verify.log",
                stop=_STOP,
            )
            _kill_marked(marker)
    finally:
        _ACTIVE.discard(marker)
    for check in checks:
        record = cells.get((check.notebook, check.cell_id))
        if check not in passed:
            result.checks.append(
                CheckResult(
                    check, False, _explain(check, record, spliced[check.notebook], cells, options)
                )
            )
            continue
        ok, hint = verified.get(check.cell_id, (False, "the grader could not re-run this check"))
        if not ok:
            hint = f"passed in the notebook, but not when the grader re-ran it: {hint}"
        result.checks.append(CheckResult(check, ok, hint))
    return result
