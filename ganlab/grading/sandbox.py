"""Operating-system isolation for one submission: bubblewrap, limits, an unprivileged user.

Every process that runs a student's code starts through :func:`wrap`. With bubblewrap
(``bwrap``, Debian package ``bubblewrap``) the command runs in new mount, PID, network,
IPC, UTS and cgroup namespaces (and a user namespace when the grader is not root: that
is what lets bwrap make the others unprivileged) where

* the file system is the Python installation and the grader's virtual environment and
  ``ganlab`` package, and the other folders the grader's interpreter imports from (user
  site, ``.pth`` folders, PYTHONPATH), all read-only, plus the submission's own sandbox
  folder, the only writable place (mounted at ``/sandbox``). The instructor's ``solutions/``
  and ``.git``, the other submissions, the grades CSV and the feedback folder are simply not
  there; every copy of ``ganlab/checks/_reference.py`` it shows (the grader's package, an
  installed one) is the student copy's, without the checks' answers (``assemble.ANSWER_FREE``);
* ``/proc`` shows only the sandbox's own processes (a fresh PID namespace), ``/dev`` holds
  only null, zero, random and friends, ``/tmp`` and ``/dev/shm`` are private tmpfs of
  ``TMPFS_BYTES`` each;
* there is no network (only a private loopback, for the kernel's own sockets);
* the grader kills its direct child's process group, which holds bubblewrap's child, the
  PID namespace's first process, whose end ends every process in the namespace: nothing
  outlives the submission, nothing can signal another one. (Not ``--new-session``: its
  ``setsid`` takes that child out of the group, and ``--die-with-parent`` alone misses a
  parent killed before its child has asked for the signal, so a Ctrl-C just after a start
  could leave a sandbox running.) ``--die-with-parent`` stays, for a grader that dies
  without killing;
* the grader starts every sandbox in a session of its own (``start_new_session``): there is
  no controlling terminal to inject keystrokes into.

As root, bwrap makes the mounts and then ``setpriv`` drops to an unprivileged uid of the
submission's own (``UID_BASE`` + its index) with no capabilities, so file permissions and
``RLIMIT_NPROC`` apply per submission too. Not as root, the sandbox's processes are the
grader's uid outside the namespaces (with no capabilities inside).

Limits come from cgroups v2 where this machine delegates a writable cgroup with the
memory controller (``memory.max`` counts memfd and tmpfs pages and every thread, ``pids.max``,
``cpu.max`` one CPU), otherwise from rlimits (``prlimit``: CPU seconds, processes for the
uid, open files, file size, no core dumps; the kernel launcher adds the address space).
:func:`describe` says which, and what is then not limited; the grade summary prints it.

Before a class is graded, :func:`choose` starts the sandboxed Python once and imports what
the kernels need: an environment the sandbox cannot see is one clear error, not a class of
checks that read "not run".
"""

from __future__ import annotations

import functools
import importlib.util
import os
import shutil
import site
import subprocess
import sys
import tempfile
import uuid
from dataclasses import dataclass, field
from pathlib import Path

MOUNT = "/sandbox"  # where the submission's writable folder appears inside
GRADER = "/grader"  # the grader's ganlab package (read-only): launcher, runner, private checks
VENV = "/venv"  # the grader's virtual environment, when it runs in one (read-only)
UID_BASE = 200000  # as root: the sandbox of submission i runs as uid UID_BASE + i
FILE_LIMIT = 2**30  # bytes per file written (also bounds what a process can print to a log)
OPEN_FILES = 256
PROCESSES = 256  # threads count too (per uid)
TMPFS_BYTES = 64 * 2**20  # /tmp and /dev/shm inside (TMPDIR is the sandbox folder, on disk)
SYSTEM = ("/usr", "/lib", "/lib64", "/lib32", "/bin", "/sbin")  # mounted read-only at their paths
# What the sandboxed processes import before any student code: the runner (execute.py, nbclient)
# and the launcher's kernel (kernel.PRELOAD, PRELOAD_KERNEL). Checked once by :func:`choose`.
NEEDED = ("torch", "IPython", "ipykernel.kernelapp", "nbclient", "ganlab.grading")
_CGROUP_ROOT = Path("/sys/fs/cgroup")


DISK_ENTRIES = 20_000  # files and folders in one sandbox: more is an attack on the disk or its walk


@dataclass
class Limits:
    memory_mb: int = 4096
    cpu_seconds: int = 1800
    processes: int = PROCESSES
    disk_mb: int = 1024  # what a submission may keep in its sandbox folder (on the host's disk)


def disk_use(folder, max_entries=DISK_ENTRIES):
    """``(bytes on disk, entries)`` under ``folder``, links not followed; the walk stops past
    ``max_entries`` (the count then says so)."""
    used, entries, todo = 0, 0, [str(folder)]
    while todo and entries <= max_entries:
        try:
            with os.scandir(todo.pop()) as listing:
                for entry in listing:
                    entries += 1
                    try:
                        info = entry.stat(follow_symlinks=False)
                    except OSError:
                        continue
                    used += getattr(info, "st_blocks", 0) * 512 or info.st_size
                    if entry.is_dir(follow_symlinks=False):
                        todo.append(entry.path)
        except OSError:  # gone, or not readable by the grader: nothing of it counts
            continue
    return used, entries


class DiskWatch:
    """Watch a sandbox folder while a submission runs; past the quota, call ``stop()`` once.

    Bubblewrap bounds what a submission may *read*, rlimits the size of one file; neither bounds
    how much it keeps on the host's disk, so a loop of writes could fill it and cost the whole
    class its grades.csv. A thread measures the folder every ``interval`` seconds; a breach ends
    the submission's processes (``stop``) and is kept in ``breach`` for its row. What can be
    written between two looks (at most a few hundred MB at disk speed) is the margin.
    """

    def __init__(self, folders, limits, stop, interval=0.25):
        import threading

        self.folders, self.limit, self.stop, self.interval = folders, limits.disk_mb, stop, interval
        self.breach = None
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._done.set()
        if self._thread.ident is not None:  # started
            self._thread.join()

    def _watch(self):
        while not self._done.wait(self.interval) and self.breach is None:
            used, entries = 0, 0
            for folder in self.folders():
                u, e = disk_use(folder)
                used, entries = used + u, entries + e
            if used > self.limit * 2**20:
                self.breach = f"wrote more than {self.limit} MB to its sandbox folder: stopped"
            elif entries > DISK_ENTRIES:
                self.breach = f"made more than {DISK_ENTRIES:,} files in its sandbox: stopped"
            if self.breach is not None:
                self.stop()


@dataclass
class Isolation:
    """How submissions are run: ``mode`` is ``"bwrap"`` or ``"none"``."""

    mode: str
    cgroup_parent: Path | None = None
    notes: list = field(default_factory=list)

    @property
    def isolated(self):
        return self.mode == "bwrap"


def _bwrap_works():
    """Whether ``bwrap`` exists and can make its namespaces here (containers may forbid it)."""
    exe = shutil.which("bwrap")
    if exe is None:
        return False, "bubblewrap (bwrap) is not installed"
    probe = [exe, "--unshare-all", "--die-with-parent", "--ro-bind", "/", "/", "true"]
    try:
        done = subprocess.run(probe, capture_output=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as err:
        return False, f"bwrap does not run here ({err})"
    if done.returncode != 0:
        return False, f"bwrap cannot create namespaces here: {done.stderr.decode()[:200].strip()}"
    return True, ""


def _cgroup_parent():
    """A cgroup v2 folder we may create children in, with the memory controller, or None."""
    if sys.platform != "linux" or not (_CGROUP_ROOT / "cgroup.controllers").is_file():
        return None  # cgroups v1 or hybrid (memory is then v1 only): not used
    try:
        own = next(
            line.split("::", 1)[1].strip()
            for line in Path("/proc/self/cgroup").read_text().splitlines()
            if line.startswith("0::")
        )
    except (OSError, StopIteration):
        return None
    for parent in (_CGROUP_ROOT / own.lstrip("/"), _CGROUP_ROOT):
        try:
            enabled = (parent / "cgroup.subtree_control").read_text().split()
        except OSError:
            continue
        if {"memory", "pids"} <= set(enabled) and os.access(parent, os.W_OK):
            return parent
    return None


def choose(requested):
    """The :class:`Isolation` for ``--isolation auto|bwrap|none``; raises ValueError for bwrap
    where it cannot run, and where it runs but its Python cannot import what kernels need."""
    if requested == "none":
        return Isolation("none", notes=["isolation off (--isolation none)"])
    works, why = _bwrap_works() if sys.platform == "linux" else (False, "not Linux")
    if not works:
        if requested == "bwrap":
            raise ValueError(f"--isolation bwrap: {why}")
        return Isolation("none", notes=[f"not isolated: {why}"])
    problem = _cannot_import(NEEDED)
    if problem:  # every kernel would fail to start: one error now, not a class graded 0
        raise ValueError(problem)
    return Isolation("bwrap", cgroup_parent=_cgroup_parent())


def python_path():
    """The grader's PYTHONPATH entries (absolute folders): kernels run ``python -E``, so the
    launcher puts them on ``sys.path`` itself; with bubblewrap :func:`_library_mounts` shows them
    at the same paths, unless they hold secrets or the submissions."""
    entries = os.environ.get("PYTHONPATH", "").split(os.pathsep)
    return [os.path.abspath(p) for p in entries if p and os.path.isdir(p)]


_PREFLIGHT = """
import sys
sys.path[:0] = sys.argv[1].split(":")  # the grader's ganlab and PYTHONPATH, as the runner finds them
for name in sys.argv[2:]:
    try:
        __import__(name)
    except BaseException as err:  # the module that is missing, which may be one it imports
        missing = getattr(err, "name", None) or name
        print(missing, f"{type(err).__name__}: {err}"[:300], sep="\\t")
"""


@functools.cache
def _cannot_import(modules):
    """Start the sandboxed Python as a kernel is started (``-E``, the same mounts, as the first
    submission's uid) and import ``modules``: ``""`` if it can, else the error to print."""
    writable = Path(tempfile.mkdtemp(prefix="ganlab-preflight-"))
    try:
        uid = uid_for(0)
        prepare_writable(writable, uid)
        env = {"PATH": "/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": MOUNT, "TMPDIR": MOUNT}
        path = ":".join([GRADER, *python_path()])
        argv = [sandbox_python(), "-E", "-B", "-c", _PREFLIGHT, path, *modules]
        cmd = wrap(argv, Isolation("bwrap"), writable, Path(__file__).parent.parent, uid, env=env)
        done = subprocess.run(
            cmd, capture_output=True, text=True, timeout=300, start_new_session=True
        )
    except subprocess.TimeoutExpired:
        return f"the grading sandbox's Python did not import {', '.join(modules)} in 300 s"
    finally:
        shutil.rmtree(writable, ignore_errors=True)
    failed = [line.split("\t", 1) for line in done.stdout.splitlines() if "\t" in line]
    if done.returncode != 0:  # it did not get through: bwrap's or the interpreter's own words
        return (
            f"the grading sandbox's Python failed (exit {done.returncode}): "
            f"{done.stderr.strip()[-500:]}; grade without the sandbox with --isolation none"
        )
    if not failed:
        return ""
    name, why = failed[0]
    return (
        f"the grading sandbox cannot import {name} ({why}), so no notebook could run: "
        + _advice(name.partition(".")[0])
    )


def _advice(name):
    """Where the grader's own Python finds the top-level module ``name``, and what to do."""
    install = f"{sys.executable} -m pip install {name}"
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        spec = None
    if spec is None:
        return f"this Python cannot import it either; install it ({install})"
    where = spec.origin or ", ".join(spec.submodule_search_locations or [])
    if any(Path(where).is_relative_to(p) for p in python_path()):
        return (  # the launcher passes PYTHONPATH on, but the sandbox shows no folder of secrets
            f"it comes from PYTHONPATH ({where}), a folder the sandbox does not show (it holds "
            f"the kit's solutions/ or .git, the submissions, or your home folder); install it "
            f"into {sys.prefix} ({install}), or move it to a folder of its own"
        )
    return (
        f"this Python imports it from {where}, which the sandbox does not show; install it "
        f"into {sys.prefix} ({install}), or grade without the sandbox: --isolation none"
    )


def describe(isolation, limits):
    """What the summary says about the isolation of this run (one line each)."""
    disk = (
        f"disk: at most {limits.disk_mb} MB and {DISK_ENTRIES:,} files in a submission's sandbox "
        "(watched 4 times a second; a breach stops it)"
    )
    if not isolation.isolated:
        return [
            *isolation.notes,
            "NOT ISOLATED: student code ran as this user, with this user's files and network; "
            "only the audit hook, rlimits and the grader's own checks stood in its way "
            "(see ganlab/grading/__init__.py)",
            disk,
        ]
    lines = ["isolation: bubblewrap (own mount, PID, network, IPC and user namespaces)", disk]
    if isolation.cgroup_parent is not None:
        lines.append(
            f"limits: cgroup v2 per submission: memory {limits.memory_mb} MB (memfd and tmpfs "
            f"included), {limits.processes} tasks, one CPU; tmpfs {TMPFS_BYTES // 2**20} MB"
        )
    else:
        lines.append(
            "limits: rlimits only (no writable cgroup v2 with the memory controller here): "
            f"address space {limits.memory_mb} MB beyond torch's, {limits.cpu_seconds} CPU s a "
            f"process, {OPEN_FILES} open files, {FILE_LIMIT // 2**20} MB a file; NOT limited: "
            "memory held in memfd files (up to open files x file size), total CPU "
            "share (threads may use every core until the CPU seconds run out)"
            + ("" if os.geteuid() == 0 else ", processes (the grader's uid is shared)")
        )
    return lines


def _python_mounts():
    """``[(host path, sandbox path)]`` for the interpreter, its libraries and the venv."""
    mounts = []
    prefix, base = Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()
    if prefix != base:  # a virtual environment: mounted at /venv, its path is the grader's
        mounts.append((prefix, Path(VENV)))
    mounts.append((base, base))
    if Path(sys.base_prefix) != base:  # reached through a link: the venv's python names that path
        mounts.append((base, Path(sys.base_prefix)))
    return mounts


def _library_mounts(writable, package, refused=()):
    """``[(host path, same path)]``: the folders on the grader's import path that no other
    mount shows at their own path: the user site, folders added by ``.pth`` files (editable
    installs, ``conda develop``), PYTHONPATH entries. The sandboxed interpreter reads the same
    ``.pth`` files and (through PYTHONUSERBASE, set by :func:`wrap`) the same user site, and
    they name these paths: without them no kernel starts and every check reads "not run".

    Never the folder the grader was started from (``sys.path[0]``: a class folder, say), nor
    one that holds secrets or the sandboxes: the kit's ``solutions/`` and ``.git``, the
    sandbox folder (the work folder holds the other submissions' ones), the home folder,
    ``refused`` (the submissions, the grader's outputs).
    """
    kit = Path(package).resolve().parent
    secrets = [kit / "solutions", kit / ".git", Path(writable)]
    if os.environ.get("GANLAB_SOLUTIONS_DIR"):
        secrets.append(Path(os.environ["GANLAB_SOLUTIONS_DIR"]))
    # ``refused`` whether it exists yet or not: the grades CSV is written last.
    secrets = [p.resolve() for p in secrets if p.exists()] + [Path(p).resolve() for p in refused]
    home = Path.home().resolve()
    # Shown already: the interpreter's folders (the venv's as /venv, where the sandboxed
    # interpreter finds its site-packages) and the system's.
    seen = [Path(sys.prefix), Path(sys.base_prefix), *(host for host, _ in _python_mounts())]
    seen += [Path(p) for p in SYSTEM]
    script_first = not (sys.flags.isolated or getattr(sys.flags, "safe_path", False))
    mounts = []
    for entry in sorted(map(str, sys.path[1:] if script_first else sys.path), key=len):
        path = Path(os.path.abspath(entry or "."))
        if not path.is_dir() or any(path.is_relative_to(p) for p in seen):
            continue
        real = path.resolve()
        if home.is_relative_to(real) or any(
            real.is_relative_to(s) or s.is_relative_to(real) for s in secrets
        ):
            continue
        mounts.append((real, path))
        seen.append(path)  # what lies inside is mounted with it
    return mounts


def sandbox_python():
    """The interpreter's path inside the sandbox."""
    prefix, base = Path(sys.prefix).resolve(), Path(sys.base_prefix).resolve()
    exe = Path(sys.executable)
    if prefix != base and exe.is_relative_to(Path(sys.prefix)):
        return str(Path(VENV) / exe.relative_to(Path(sys.prefix)))
    return str(exe)


def uid_for(index):
    return UID_BASE + index if os.geteuid() == 0 else None


def prepare_writable(folder, uid):
    """Give the sandbox folder to the submission's uid (as root); nothing else is theirs."""
    if uid is None:
        return
    for root, dirs, files in os.walk(folder):
        for name in [root, *(os.path.join(root, n) for n in dirs + files)]:
            os.lchown(name, uid, uid)


def _dirs_above(path):
    """``--dir`` for each folder above ``path``, traversable (bwrap would make them 0700)."""
    parts = Path(path).parts[1:-1]
    out = []
    for i in range(1, len(parts) + 1):
        out += ["--perms", "0755", "--dir", "/" + "/".join(parts[:i])]
    return out


def _answer_mounts(mounts, package):
    """``--ro-bind`` of the answer-free ``_reference.py`` over every copy of the grader's
    (with its answers) that ``mounts`` (``[(host, inside)]``) show: its own package, and an
    installed one (site-packages, a ``.pth`` folder) that the sandbox's Python prefix holds."""
    from .assemble import REFERENCE, answer_free

    free = answer_free(package)
    if free is None:  # a student copy: no answers anywhere
        return []
    copies = {Path(package) / REFERENCE, *(Path(p, "ganlab", REFERENCE) for p in sys.path if p)}
    cmd = []
    for copy in sorted(c.resolve() for c in copies if c.is_file()):
        for host, inside in mounts:
            if copy.is_relative_to(host.resolve()):
                cmd += ["--ro-bind", str(free), str(inside / copy.relative_to(host.resolve()))]
    return cmd


def wrap(
    argv, isolation, writable, package, uid=None, limits=None, env=None, cgroup=None, refused=()
):
    """The command that runs ``argv`` (paths as seen inside) for one submission.

    ``writable``: the submission's sandbox folder (``/sandbox`` inside); ``package``: the
    grader's ``ganlab`` folder (``/grader/ganlab``); ``uid``: the submission's own uid
    (as root); ``refused``: folders never to show (the submissions, the grader's outputs).
    Without isolation ``argv`` runs as it is, under the same rlimits. Start the command with
    ``start_new_session=True`` and end it with ``os.killpg`` (module docstring).
    """
    limits = limits or Limits()
    prlimit = shutil.which("prlimit")
    rlimits = [
        prlimit,
        f"--cpu={limits.cpu_seconds}",
        f"--nofile={OPEN_FILES}",
        f"--fsize={FILE_LIMIT}",
        "--core=0",
        *([f"--nproc={limits.processes}"] if uid is not None else []),
        "--",
    ]
    rlimits = rlimits if prlimit else []
    if not isolation.isolated:
        return rlimits + list(argv)
    namespaces = ["--unshare-ipc", "--unshare-pid", "--unshare-net", "--unshare-uts"]
    namespaces += ["--unshare-cgroup-try"]
    if uid is None:  # not root: a user namespace is what lets bwrap make the others
        namespaces += ["--unshare-user", "--cap-drop", "ALL"]
    cmd = [shutil.which("bwrap"), *namespaces, "--die-with-parent"]
    cmd += ["--hostname", "sandbox", "--clearenv"]
    mounted = []
    mounts = [*_python_mounts(), (Path(package), Path(GRADER, "ganlab"))]
    for host, inside in mounts:
        cmd += [*_dirs_above(inside), "--ro-bind", str(host), str(inside)]
        mounted.append(str(inside))
    for system in SYSTEM:
        if not os.path.exists(system) or any(
            system == m or m.startswith(system + "/") for m in mounted
        ):
            continue
        if os.path.islink(system):
            cmd += ["--symlink", os.readlink(system), system]
        else:
            cmd += ["--ro-bind", system, system]
    cmd += ["--proc", "/proc", "--dev", "/dev"]
    for scratch in ("/dev/shm", "/tmp"):  # memory-backed: small, so they hold no hidden memory
        cmd += ["--perms", "1777", "--size", str(TMPFS_BYTES), "--tmpfs", scratch]
    libraries = _library_mounts(writable, package, refused)
    for host, inside in libraries:  # after /tmp: they may lie in it
        cmd += [*_dirs_above(inside), "--ro-bind", str(host), str(inside)]
    cmd += _answer_mounts([*mounts, *libraries], package)  # over the mounts that show them
    cmd += ["--bind", str(writable), MOUNT, "--chdir", MOUNT, "--remount-ro", "/"]
    env = dict(env or {})
    if site.ENABLE_USER_SITE:  # the grader's user site, not one in the sandbox's (writable) HOME
        env.setdefault("PYTHONUSERBASE", site.getuserbase())
    for key, value in env.items():
        cmd += ["--setenv", key, value]
    cmd.append("--")
    if uid is not None:  # bwrap made the mounts as root; the student's code runs as uid
        cmd += ["/usr/bin/setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]
        cmd += ["--inh-caps=-all", "--bounding-set=-all", "--"]
    cmd += [*rlimits, *argv]
    if cgroup is not None:  # join the cgroup first, then become the sandbox (exec keeps it)
        cmd = ["sh", "-c", 'echo $$ > "$0/cgroup.procs" && exec "$@"', str(cgroup), *cmd]
    return cmd


def make_cgroup(isolation, limits):
    """A fresh cgroup for one submission (or None): memory, tasks and one CPU."""
    if isolation.cgroup_parent is None:
        return None
    group = isolation.cgroup_parent / f"ganlab-{uuid.uuid4().hex[:12]}"
    try:
        group.mkdir()
        # memory_mb is what the student's code may use: torch itself needs about 1 GB more.
        (group / "memory.max").write_text(f"{(limits.memory_mb + 1024) * 2**20}\n")
        (group / "memory.swap.max").write_text("0\n")
        (group / "pids.max").write_text(f"{limits.processes}\n")
        if (group / "cpu.max").exists():
            (group / "cpu.max").write_text("100000 100000\n")
    except OSError:
        remove_cgroup(group)
        return None
    return group


def remove_cgroup(group):
    """Kill what is left in the cgroup and remove it."""
    if group is None:
        return
    try:
        if (group / "cgroup.kill").exists():
            (group / "cgroup.kill").write_text("1\n")
        group.rmdir()
    except OSError:
        pass
