"""Out-of-kernel verification: re-run every check that passed in the kernel with a private copy.

A student's code runs in the kernel together with the public ``ganlab.checks``, so it
can patch a check into passing. Every check that passed there is therefore run again
in a fresh sandboxed process (``kernel.py CONFIG verify``), which, before any student
code runs, loads the instructor's ``ganlab/checks`` under a random module name (and
drops it from ``sys.modules``), resolves the check functions it will call, and only
then installs the audit hook and runs the student's code: the canonical notebook's
code cells that the check needs (found by the names they define and use; magics
stripped; in a plain namespace), the statements of the check cell before the call,
and the call's arguments. The private check is then called with those objects; a
patch of ``ganlab.checks`` cannot reach it.

Results travel to the grader as lines MAC'd with a key the grader sent on stdin, on a
duplicate of the original stdout taken before student code ran (the student's prints
go to a log): printing or writing fake result lines gets nothing. If the process dies
or stops reporting, the check in progress fails and a new process goes on with the
next one.

``plan`` and ``verify`` run in the grader; ``serve`` runs in the sandboxed process.
"""

import ast
import base64
import hmac
import json
import os
import queue
import secrets
import signal
import subprocess
import threading
import time

_TAG = "GANLAB-VERIFY"
_SEP = "\x1f"  # between the fields of a message


# -- in the grader ------------------------------------------------------------------------


def plan(nb, check_ids):
    """The job for one notebook: its code cells and, per check, which cells to run first."""
    from .assemble import check_call
    from .deps import needed_cells, strip_magics

    cells = [c for c in nb.cells if c.cell_type == "code"]
    sources = [strip_magics(c.source) for c in cells]
    job = {
        "cells": [{"id": c.get("id", ""), "source": s} for c, s in zip(cells, sources)],
        "checks": [],
    }
    for index, cell in enumerate(cells):
        found = check_call(cell.source) if cell.get("id") in check_ids else None
        if found is None:
            continue
        stmt, function = found
        pre = "".join(sources[index].splitlines(keepends=True)[: stmt.lineno - 1])

        def segment(node, source=sources[index]):
            return ast.get_source_segment(source, node)

        args = [segment(a) for a in stmt.value.args]
        kwargs = {k.arg: segment(k.value) for k in stmt.value.keywords}
        # What the check needs: a pseudo-cell of the statements before the call and its arguments.
        probe = pre + "\n" + "".join(f"({expr})\n" for expr in args + list(kwargs.values()))
        run = needed_cells(sources[:index] + [probe], {index})[:-1]
        job["checks"].append(
            {
                "id": cell.id,
                "function": function,
                "pre": pre,
                "args": args,
                "kwargs": kwargs,
                "run": run,
            }
        )
    return job


def _mac(key, body):
    return hmac.new(key, body.encode(), "sha256").hexdigest()


MAX_LINE = 65536  # a longer line is not from the verifier: skipped, never held in memory


def _lines(stream):
    """The lines of ``stream``, each cut at ``MAX_LINE`` bytes (a flood costs no memory)."""
    while True:
        line = stream.readline(MAX_LINE)
        if not line:
            return
        if not line.endswith(b"\n"):
            while line and not line.endswith(b"\n"):  # skip the rest of an overlong line
                line = stream.readline(MAX_LINE)
            continue
        yield line


def verify(
    argv,
    env,
    cwd,
    notebooks,
    timeout_cell,
    deadline,
    log_path,
    startup=120.0,
    stop=None,
    started=None,
):
    """Run the verifier until every check of ``notebooks`` (``[(name, job)]``) has a result.

    Each message must come within ``timeout_cell`` of the one before (``startup`` for
    the first: the process imports torch). ``stop``, a ``threading.Event``, ends it early
    (Ctrl-C); ``started(proc)`` is told of each process. Returns ``{check id: (passed, hint)}``.
    """
    order = [c["id"] for _, job in notebooks for c in job["checks"]]
    results = {}
    while len(results) < len(order):
        key = secrets.token_bytes(32)
        todo = [
            (name, dict(job, checks=[c for c in job["checks"] if c["id"] not in results]))
            for name, job in notebooks
        ]
        with open(log_path, "ab") as log:
            proc = subprocess.Popen(
                argv,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=cwd,
                env=env,
                start_new_session=True,
            )
        if started is not None:
            started(proc)
        lines = queue.Queue(maxsize=1000)  # the pump waits when the grader is behind

        def pump(stdout=proc.stdout, lines=lines):
            try:
                for line in _lines(stdout):
                    lines.put(line, timeout=60)
                lines.put(None, timeout=60)
            except queue.Full:  # nobody reads any more: the grader has moved on
                pass

        threading.Thread(target=pump, daemon=True).start()
        try:
            proc.stdin.write(key.hex().encode() + b"\n" + json.dumps(todo).encode())
            proc.stdin.close()
        except OSError:
            pass
        reason, due = (
            None,
            time.monotonic() + startup + timeout_cell,
        )  # due: the next message's deadline
        while reason is None:
            now = time.monotonic()
            if stop is not None and stop.is_set():
                reason = "interrupted"
                break
            if now >= min(due, deadline):
                reason = "timed out" if due <= deadline else "timed out (total time limit)"
                break
            try:  # short waits, so that a Ctrl-C (stop) is seen within half a second
                line = lines.get(timeout=min(0.5, min(due, deadline) - now))
            except queue.Empty:
                continue
            if line is None:
                reason = "the process died"
                break
            parts = line.decode(errors="replace").rstrip("\n").split(" ")
            if (
                len(parts) != 3
                or parts[0] != _TAG
                or not hmac.compare_digest(parts[1], _mac(key, parts[2]))
            ):
                continue  # not from the verifier itself
            due = time.monotonic() + timeout_cell
            kind, *fields = base64.b64decode(parts[2]).decode().split(_SEP, 3)
            if kind == "check" and len(fields) == 3 and fields[0] in order:
                results[fields[0]] = (fields[1] == "passed", fields[2])
            elif kind == "done":
                reason = "finished"
        try:
            os.killpg(proc.pid, signal.SIGKILL)  # bwrap: its namespace and all in it go too
        except OSError:
            pass
        proc.wait()
        pending = [c for c in order if c not in results]
        if pending and reason != "finished":
            results[pending[0]] = (False, f"when the grader re-ran this check, {reason}")
        if pending and time.monotonic() >= deadline:
            for c in pending:
                results.setdefault(c, (False, "not verified: total time limit reached"))
        if reason in ("finished", "interrupted"):  # finished: the verifier skipped nothing silently
            for c in pending:
                results.setdefault(c, (False, "the grader could not re-run this check"))
    return results


# -- in the sandboxed verifier process ----------------------------------------------------


def _load_private_checks(folder, name):
    """Import ``folder`` (the grader's ganlab/checks) as package ``name``, with its own builtins.

    Each module gets a snapshot of the builtins taken now, before student code runs:
    a later ``builtins.isinstance = ...`` does not reach the private checks.
    """
    import builtins
    import importlib.abc
    import importlib.machinery
    import importlib.util
    import os
    import sys
    import types

    snapshot = dict(vars(builtins))

    class Loader(importlib.machinery.SourceFileLoader):
        def create_module(self, spec):
            module = types.ModuleType(spec.name)
            module.__dict__["__builtins__"] = snapshot
            return module

    class Finder(importlib.abc.MetaPathFinder):
        def find_spec(self, fullname, path, target=None):
            if fullname != name and not fullname.startswith(name + "."):
                return None
            rel = fullname[len(name) + 1 :]
            file = os.path.join(folder, rel + ".py" if rel else "__init__.py")
            return importlib.util.spec_from_file_location(
                fullname,
                file,
                loader=Loader(fullname, file),
                submodule_search_locations=None if rel else [folder],
            )

    finder = Finder()
    sys.meta_path.insert(0, finder)
    try:
        return importlib.import_module(name)
    finally:
        sys.meta_path.remove(finder)
        for module in [m for m in sys.modules if m == name or m.startswith(name + ".")]:
            del sys.modules[module]  # out of sight of code that searches sys.modules


def serve(config, hook, log):
    """Entry point of ``kernel.py CONFIG verify``; stdin holds the key and the job, ``log`` is a file
    descriptor for the student's output."""
    import _hashlib
    import binascii
    import os
    import sys

    key_line, _, payload = sys.stdin.buffer.read().partition(b"\n")
    key, todo = bytes.fromhex(key_line.decode()), json.loads(payload)
    channel = os.dup(1)
    os.dup2(log, 1)
    os.dup2(log, 2)
    folder = os.path.join(os.path.dirname(os.path.dirname(os.path.realpath(__file__))), "checks")
    private = _load_private_checks(folder, "_ganlab_private_checks_" + secrets.token_hex(8))
    functions = {c["id"]: getattr(private, c["function"]) for _, job in todo for c in job["checks"]}
    failed_type = private.CheckFailed

    # Only C functions and str operations from here to the pipe: nothing a student can patch.
    def send(
        *fields,
        _b64=binascii.b2a_base64,
        _mac=_hashlib.hmac_digest,
        _write=os.write,
        _fd=channel,
        _key=key,
        _tag=_TAG,
        _sep=_SEP,
    ):
        body = _b64(_sep.join(fields).encode("utf-8", "replace"), newline=False).decode()
        _write(_fd, f"{_tag} {_mac(_key, body.encode(), 'sha256').hex()} {body}\n".encode())

    sys.addaudithook(hook)
    del hook, key
    # From here on, student code runs.
    for notebook, job in todo:
        namespace, ran = {"__name__": "__main__"}, set()
        for check in job["checks"]:
            send("progress", check["id"])
            for index in check["run"]:
                if index not in ran:
                    ran.add(index)
                    _run(
                        job["cells"][index]["source"],
                        f"<{notebook} {job['cells'][index]['id']}>",
                        namespace,
                    )
            try:
                exec(compile(check["pre"], f"<{notebook} {check['id']}>", "exec"), namespace)
                args = [eval(a, namespace) for a in check["args"]]
                kwargs = {k: eval(v, namespace) for k, v in check["kwargs"].items()}
                functions[check["id"]](*args, **kwargs)
            except failed_type as err:
                status, hint = "failed", _text(err)
            except NotImplementedError as err:
                status, hint = "failed", "not implemented yet: " + _text(err)
            except BaseException as err:  # noqa: B036 - SystemExit & co. from student code too
                status, hint = "failed", f"{type(err).__name__}: {_text(err)}"
            else:
                status, hint = "passed", ""
            send("check", check["id"], status, hint[:1000])
    send("done")


def _run(source, filename, namespace):
    try:
        exec(compile(source, filename, "exec"), namespace)
    except BaseException:  # noqa: B036 - like nbval, go on with the next cell
        pass


def _text(err):
    try:
        return str(err)
    except BaseException:  # noqa: B036
        return repr(type(err))
