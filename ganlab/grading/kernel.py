"""The sandboxed launcher: every process that runs student code starts here.

The grader never runs a student's code in a process it did not start with::

    python ganlab/grading/kernel.py CONFIG kernel -f CONNECTION_FILE   # the kernel execute.py talks to
    python ganlab/grading/kernel.py CONFIG verify                      # the student side of the re-run (judge.py)

It is run by absolute path from the grader's own copy of the kit (not ``-m``): the
sandbox holds a copy of the package that the student's code may rewrite, and the
launcher must not be one of the files it can replace (with bubblewrap it is mounted
read-only at /grader/ganlab). CONFIG (inline JSON) names the sandbox, the paths to
refuse and the memory budget. Before any student code runs, the launcher

1. sanitises the environment (no GANLAB_SOLUTIONS*, HOME and TMPDIR in the sandbox)
   and puts the sandbox first on ``sys.path``, so the sandbox's ganlab is imported, then
   the grader's PYTHONPATH entries (CONFIG's ``path``: ``-E`` keeps the variable out);
2. imports torch and friends, then sets the rlimits: the address space torch has
   mapped by then (about 3.6 GiB here, mostly CUDA libraries) plus ``memory_mb``,
   no core dumps, files of at most 1 GiB;
3. installs an audit hook (``sys.addaudithook``: a hook cannot be removed) that
   refuses to open the refused paths (the instructor's solutions/ and .git, the
   submissions, the other sandboxes, the grader's outputs), any write outside the
   sandbox, directories outside the sandbox (they would serve as ``dir_fd``),
   relative paths that climb out of their folder, links, subprocesses, forks,
   signals to other processes, raising rlimits, sockets, ``gc`` object walks,
   tracing, and ctypes (except loading libraries of the Python installation, which
   torchvision does on its first import).

The hook is one function that uses no globals and no helpers: everything it calls
was bound as a default argument when it was made (C functions, strings, tuples),
so patching ``os.path``, ``builtins`` or any module cannot change its decisions.
What it cannot see is native code opening files on its own; see
``ganlab.grading`` for the full list of what this does and does not defend against.
"""

import json
import os
import sys

PRELOAD = (
    "torch",
)  # what every process needs; the rest is imported when used (torchvision: 2 s of CPU)
PRELOAD_KERNEL = ("IPython", "ipykernel.kernelapp")
FILE_SIZE_LIMIT = 2**30
# Audit events refused outright once student code may run.
REFUSED = (
    "subprocess.Popen",
    "os.system",
    "os.exec",
    "os.posix_spawn",
    "os.spawn",
    "os.fork",
    "os.forkpty",
    "os.killpg",
    "os.link",
    "os.symlink",
    "pty.spawn",
    "resource.setrlimit",
    "resource.prlimit",
    "gc.get_objects",
    "gc.get_referrers",
    "gc.get_referents",
    "sys._current_frames",
    "sys.settrace",
    "sys.setprofile",
    "socket.connect",
    "socket.bind",
    "socket.sendto",
    "socket.sendmsg",
    "ctypes.dlsym",
    "ctypes.dlsym/handle",
    "ctypes.call_function",
    "ctypes.cdata",
    "ctypes.cdata/buffer",
    "ctypes.string_at",
    "ctypes.wstring_at",
)
# Audit events whose path arguments are writes (the index of each path argument).
WRITES = {
    "os.rename": (0, 1),
    "os.remove": (0,),
    "os.rmdir": (0,),
    "os.mkdir": (0,),
    "os.chmod": (0,),
    "os.chown": (0,),
    "os.utime": (0,),
    "os.truncate": (0,),
    "os.chflags": (0,),
    "os.lchflags": (0,),
    "os.setxattr": (0,),
    "os.removexattr": (0,),
    "sqlite3.connect": (0,),
}


def make_audit_hook(sandbox, refused_roots, work_root, library_roots=()):
    """The hook; all paths absolute and real. ``library_roots``: where ctypes may load libraries from."""
    import stat

    watched = frozenset(REFUSED) | frozenset(WRITES) | {"open", "os.kill", "ctypes.dlopen"}
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_APPEND | os.O_CREAT | os.O_TRUNC

    def hook(
        event,
        args,
        _watched=watched,
        _refused=frozenset(REFUSED),
        _writes=WRITES,
        _sb=sandbox,
        _deny=tuple(refused_roots),
        _work=work_root,
        _libs=tuple(library_roots),
        _wflags=write_flags,
        _pid=os.getpid(),  # noqa: B008 (bound once, when the hook is made)
        _lstat=os.lstat,
        _stat=os.stat,
        _readlink=os.readlink,
        _getcwd=os.getcwd,
        _islnk=stat.S_ISLNK,
        _isdir=stat.S_ISDIR,
        _decode=bytes.decode,
        _isinstance=isinstance,
        _str=str,
        _bytes=bytes,
        _len=len,
        _bool=bool,
        _OSError=OSError,
        _PermissionError=PermissionError,
    ):
        if event not in _watched:
            return
        if event in _refused:
            raise _PermissionError(f"grading sandbox: {event} is not allowed")
        if event == "os.kill":
            if args[0] != _pid:
                raise _PermissionError(
                    "grading sandbox: signals to other processes are not allowed"
                )
            return
        if event == "open":
            path, mode, flags = args
            writes = (
                _isinstance(mode, _str)
                and ("w" in mode or "a" in mode or "x" in mode or "+" in mode)
            ) or _bool(flags & _wflags)
            todo = [(path, writes, "open")]
        elif event == "ctypes.dlopen":  # torchvision loads its operators this way, on first import
            if not _isinstance(args[0], _str) or not args[0].startswith("/"):
                raise _PermissionError(f"grading sandbox: loading {args[0]!r} is not allowed")
            todo = [(args[0], False, "library")]
        else:
            todo = []
            for i in _writes[event]:
                if i < _len(args):
                    todo.append((args[i], True, "change"))
        for path, writes, kind in todo:
            if _isinstance(path, _bytes):
                path = _decode(path, "utf-8", "surrogateescape")
            if not _isinstance(path, _str) or path in ("", ":memory:"):
                continue  # a file descriptor (already checked when it was opened)
            if not path.startswith("/"):
                # Relative paths may be taken from a dir_fd the hook never sees: they must
                # not climb above the folder they start in (cwd is the sandbox root).
                depth = 0
                for part in path.split("/"):
                    depth += -1 if part == ".." else (0 if part in ("", ".") else 1)
                    if depth < 0:
                        raise _PermissionError(
                            f"grading sandbox: {path!r} leaves its folder; use absolute paths"
                        )
                path = _getcwd() + "/" + path
            # Resolve symlinks by hand (os.path.realpath is Python code a student could patch).
            pending, done, hops = path.split("/")[::-1], "", 0
            while pending:
                part = pending.pop()
                if part in ("", "."):
                    continue
                if part == "..":
                    done = done[: done.rfind("/")] if done else ""
                    continue
                candidate = done + "/" + part
                try:
                    mode_bits = _lstat(candidate).st_mode
                except _OSError:
                    done = candidate
                    continue
                if _islnk(mode_bits):
                    hops += 1
                    if hops > 40:
                        raise _PermissionError(f"grading sandbox: too many links in {path!r}")
                    target = _readlink(candidate)
                    done = "" if target.startswith("/") else done
                    pending.extend(target.split("/")[::-1])
                else:
                    done = candidate
            real = done or "/"
            inside = real == _sb or real.startswith(_sb + "/")
            if kind == "library":
                trusted = False
                for root in _libs:
                    trusted = trusted or real.startswith(root + "/")
                if inside or not trusted:
                    raise _PermissionError(f"grading sandbox: loading {path!r} is not allowed")
                continue
            if writes and not inside and real != "/dev/null":
                raise _PermissionError(
                    f"grading sandbox: writing {path!r} is not allowed (outside the sandbox)"
                )
            if inside:
                continue
            for root in _deny:
                if real == root or real.startswith(root + "/"):
                    raise _PermissionError(f"grading sandbox: {path!r} is off limits")
            if real == _work or real.startswith(_work + "/"):
                raise _PermissionError(f"grading sandbox: {path!r} is off limits")
            if kind == "open":
                try:
                    is_dir = _isdir(_stat(real).st_mode)
                except _OSError:
                    is_dir = False
                if is_dir:
                    raise _PermissionError(
                        f"grading sandbox: opening the folder {path!r} is not allowed"
                    )

    return hook


def _route_torch_save_through_python():
    """torch.save opens ASCII paths in C++, where no audit hook sees it: make it use open()."""
    import torch.serialization as ser

    class _PythonOpened(ser._open_zipfile_writer_buffer):
        def __init__(self, name):
            self.file_stream = open(name, "wb")  # audited
            super().__init__(self.file_stream)

        def __exit__(self, *args):
            super().__exit__(*args)
            self.file_stream.close()

    ser._open_zipfile_writer_file = _PythonOpened


def _address_space_in_use():
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmSize:"):
                    return int(line.split()[1]) * 1024
    except OSError:  # not Linux
        pass
    return 0


def _set_limits(memory_mb, hard=True):
    """Core dumps off, file sizes and the address space (``memory_mb`` above what is in use now)
    limited. ``hard=False`` (the judge) sets soft limits only: the processes it starts inherit
    them and may set their own, which hard limits would cap."""
    try:
        import resource
    except ImportError:  # Windows: no limits (students there use WSL or Colab)
        return
    limits = [(resource.RLIMIT_CORE, 0), (resource.RLIMIT_FSIZE, FILE_SIZE_LIMIT)]
    if _address_space_in_use():  # macOS reports no usage and does not enforce RLIMIT_AS
        limits.append((resource.RLIMIT_AS, _address_space_in_use() + memory_mb * 2**20))
    for which, value in limits:
        current = resource.getrlimit(which)[1]
        if not hard and current != resource.RLIM_INFINITY:
            value = min(value, current)
        try:
            resource.setrlimit(which, (value, value if hard else current))
        except (OSError, ValueError):
            pass


def protect(config, preload=PRELOAD):
    """Steps 1-2 of the module docstring; returns the hook, to be installed by the caller."""
    for key in [k for k in os.environ if k.startswith("GANLAB_SOLUTIONS")]:
        del os.environ[key]
    os.environ.update(config["env"])
    os.chdir(config["sandbox"])
    sys.path[:] = [config["sandbox"], *config.get("path", [])] + [
        p
        for p in sys.path
        if p and os.path.realpath(p) != os.path.dirname(os.path.realpath(__file__))
    ]
    for name in preload:
        try:
            __import__(name)
        except ImportError:
            pass
    import torch

    torch.set_num_threads(config["threads"])
    _route_torch_save_through_python()
    import shutil

    shutil._use_fd_functions = (
        False  # rmtree without directory fds (the hook refuses those outside)
    )
    _set_limits(config["memory_mb"])
    libraries = {os.path.realpath(p) for p in (sys.prefix, sys.base_prefix, sys.exec_prefix)}
    return make_audit_hook(
        config["sandbox"], config["refused"], config["work_root"], sorted(libraries)
    )


def main(argv):
    config = json.loads(argv[0])  # inline: there is no file the student's code could rewrite
    hook = protect(config, PRELOAD + (PRELOAD_KERNEL if argv[1] == "kernel" else ()))
    # The kernel's output was inherited from the grader (its log): point it into the sandbox. The
    # verifier's goes to the judge, on standard error, which keeps the first megabyte of it.
    if argv[1] == "verify":
        log = os.dup(2)
    else:
        log = os.open(
            os.path.join(config["sandbox"], f"{argv[1]}.log"),
            os.O_WRONLY | os.O_CREAT | os.O_APPEND,
        )
    if argv[1] == "kernel":
        from ganlab.colab import give_autoreload_its_imp  # the sandbox's (instructor's) ganlab

        give_autoreload_its_imp()  # Colab's Python 3.12 + IPython 7.34: the notebooks' %autoreload
        os.dup2(log, 1)
        os.dup2(log, 2)
        from ipykernel.kernelapp import IPKernelApp

        app = IPKernelApp.instance()
        # Plain tracebacks: the grader reads only the error name and message, and IPython's
        # default (source context, highlighted) costs ~0.5 s of CPU per failing cell.
        app.initialize(
            argv[2:] + ["--InteractiveShell.xmode=Plain"]
        )  # reads the connection file, binds sockets
        sys.addaudithook(hook)
        del hook
        app.start()
    elif argv[1] == "verify":
        import importlib.util

        here = os.path.dirname(os.path.realpath(__file__))
        spec = importlib.util.spec_from_file_location(
            "_ganlab_verifier", os.path.join(here, "verify.py")
        )
        verifier = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(verifier)
        verifier.serve(config, hook, log)
    else:
        raise SystemExit(f"unknown mode {argv[1]!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
