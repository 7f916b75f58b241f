"""Out-of-kernel verification: every check that passed in the kernel is re-run by the judge.

A student's code runs in the kernel together with the public ``ganlab.checks``, so it
can patch a check into passing. Every check that passed there is therefore run again by
``judge.py``, a process of the grader's own code that runs the instructor's checks and
never the student's code. The student's code runs in a fresh sandboxed process
(``kernel.py CONFIG verify`` -> ``serve``): the canonical notebook's code cells the
check needs (found by the names they define and use; magics stripped; in a plain
namespace), the statements of the check cell before the call and the call's arguments,
then whatever calls the judge makes of what they gave it (``Server``, over ``remote``'s
wire, data only).

The judge reports to the grader as lines MAC'd with a key the grader sent it on stdin;
only the judge writes to that pipe. If it dies or stops reporting (a hang in the
student's code), the check in progress fails and a new judge goes on with the next one.

``plan`` and ``verify`` run in the grader; ``Server`` and ``serve`` in the sandboxed process.
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
import sys
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
    memory_mb,
    timeout_cell,
    deadline,
    log_path,
    startup=120.0,
    stop=None,
    started=None,
):
    """Run the judge until every check of ``notebooks`` (``[(name, job)]``) has a result.

    Each message must come within ``timeout_cell`` of the one before (``startup`` for
    the first: the process imports torch). ``stop``, a ``threading.Event``, ends it early
    (Ctrl-C); ``started(proc)`` is told of each process. ``argv`` and ``env`` start the
    submission's process in its sandbox; the judge (``judge.py``, this package's own code,
    outside it) starts that and runs the checks. Returns ``{check id: (passed, hint)}``.
    """
    student = {"argv": list(argv), "env": dict(env), "cwd": str(cwd)}
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
                [sys.executable, "-m", "ganlab.grading.judge"],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=log,
                cwd=cwd,
                env=_judge_env(),
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
            job = {"todo": todo, "student": student, "memory_mb": memory_mb}
            proc.stdin.write(key.hex().encode() + b"\n" + json.dumps(job).encode())
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
                continue  # not from the judge itself
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
        if reason in ("finished", "interrupted"):  # finished: the judge skipped nothing silently
            for c in pending:
                results.setdefault(c, (False, "the grader could not re-run this check"))
    return results


def _judge_env():
    """The grader's environment, with this package importable and one thread for torch."""
    import ganlab

    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", MPLBACKEND="Agg")
    root = os.path.dirname(os.path.dirname(os.path.abspath(ganlab.__file__)))
    env["PYTHONPATH"] = os.pathsep.join([root] + [p for p in [env.get("PYTHONPATH")] if p])
    return env


# -- in the sandboxed submission process ---------------------------------------------------


class Server:
    """The submission's side of the wire: runs the student's code and answers the judge.

    It holds the notebook's namespace and the objects behind handles. What it answers is
    the student's to shape; the verdicts are the judge's (``judge.py``).
    """

    def __init__(self, read_fd, write_fd):
        import importlib.util

        # kernel.py loads this file on its own, outside the package: remote.py comes the same way.
        spec = importlib.util.spec_from_file_location(
            "_ganlab_remote", os.path.join(os.path.dirname(os.path.realpath(__file__)), "remote.py")
        )
        remote = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(remote)
        self.remote = remote
        self.read, self.write = remote.reader(read_fd), remote.writer(write_fd)
        self.namespace, self.handles, self.calls, self.swaps = {}, [], {}, []

    def handle(self, obj):
        self.handles.append(obj)
        kind = "class" if isinstance(obj, type) else "callable" if callable(obj) else "object"
        name = getattr(obj, "__name__", None)
        return {
            "~": "handle",
            "id": len(self.handles) - 1,
            "kind": kind,
            "name": name if isinstance(name, str) else type(obj).__name__,
            "type": type(obj).__name__,
        }

    def resolve(self, tag):
        return self.handles[int(tag["id"])]

    def build_class(self, spec):
        """A module the judge sends: torch.nn's classes, or the checks' own small ones."""
        cls = self.remote.torch_module_class(spec["class"], ("torch.nn.modules.", "ganlab.checks."))
        if cls is None:
            raise self.remote.WireError(f"a module class the judge does not send: {spec['class']}")
        return cls.__new__(cls)

    def codec(self):
        return self.remote.Codec(self.handle, self.resolve, self.build_class, trace=True)

    def serve_forever(self):
        import traceback

        while True:
            try:
                message, blobs = self.remote.receive(self.read)
            except EOFError:
                return
            codec = self.codec()
            try:
                reply = getattr(self, "op_" + message["op"])(message, blobs, codec)
            except BaseException as err:  # noqa: B036 - SystemExit & co. from student code too
                traceback.print_exc()  # to the log
                reply, codec.blobs = {"error": [type(err).__name__, _text(err)[:2000]]}, []
            self.remote.send(self.write, reply, codec.blobs)

    def op_notebook(self, message, blobs, codec):
        self.namespace, self.handles, self.calls = {"__name__": "__main__"}, [], {}
        return {}

    def op_run(self, message, blobs, codec):
        try:
            exec(compile(message["source"], message["name"], "exec"), self.namespace)
        except BaseException:  # noqa: B036 - like nbval, go on with the next cell
            pass
        return {}

    def op_exec(self, message, blobs, codec):
        exec(compile(message["source"], message["name"], "exec"), self.namespace)
        return {}

    def op_eval(self, message, blobs, codec):
        values = [eval(expr, self.namespace) for expr in message["exprs"]]
        return {"values": [codec.encode(v) for v in values]}

    def op_call(self, message, blobs, codec):
        import torch

        payload = codec.decode(message["payload"], blobs)
        fn = self.handles[int(message["id"])]
        torch.set_rng_state(torch.frombuffer(bytearray(blobs[message["rng"]]), dtype=torch.uint8))
        with torch.set_grad_enabled(bool(message["grad"])):
            value = fn(*payload["args"], **payload["kwargs"])
        out = self.codec()
        out.key_of, out.by_key = codec.key_of, codec.by_key  # the judge's objects go back by name
        judges = list(codec.by_key.items())  # before the value's own objects get names
        states = [(key, self.remote.state_of(obj, out)) for key, obj in judges]
        reply = {"sync": [[key, state] for key, state in states if state is not None]}
        inputs = [k for k, t in judges if isinstance(t, torch.Tensor) and t.requires_grad]
        out.outputs = []  # only the value's tensors get gradients from the judge
        reply["value"] = out.encode(value)
        self.calls[len(self.calls)] = (out.outputs, [codec.by_key[k] for k in inputs])
        reply.update(call=len(self.calls) - 1, inputs=inputs, rng=len(out.blobs))
        out.blobs.append(torch.get_rng_state().numpy().tobytes())
        codec.blobs = out.blobs
        return reply

    def op_probe(self, message, blobs, codec):
        """The shape, dtype and grad-ness of what the original module's forward returns."""
        import torch

        module = self.handles[int(message["id"])]
        payload = codec.decode(message["payload"], blobs)
        module.train(bool(message["training"]))
        with torch.set_grad_enabled(bool(message["grad"])):
            value = module(*payload["args"], **payload["kwargs"])
        if not isinstance(value, torch.Tensor):
            return {"meta": None}
        return {"meta": [list(value.shape), str(value.dtype), bool(value.requires_grad)]}

    def op_attribute(self, message, blobs, codec):
        name = str(message["name"])
        if name.startswith("_"):
            raise AttributeError(name)
        return {"value": codec.encode(getattr(self.handles[int(message["id"])], name))}

    def op_trace(self, message, blobs, codec):
        """The graph of a module's forward for inputs of the given shapes."""
        module = self.handles[int(message["id"])]
        return {"graph": self.remote.export_graph(module, message["shapes"])}

    def op_vjp(self, message, blobs, codec):
        import torch

        outputs, inputs = self.calls[int(message["call"])]
        grads = [None if g is None else codec.decode(g, blobs) for g in message["grads"]]
        pairs = [(o, g) for o, g in zip(outputs, grads) if g is not None and o.requires_grad]
        if not pairs or not inputs:
            return {"grads": [None] * len(inputs)}
        got = torch.autograd.grad(
            [o for o, _ in pairs],
            inputs,
            [g for _, g in pairs],
            allow_unused=True,
            retain_graph=True,
        )
        return {"grads": [None if g is None else codec.encode(g.detach()) for g in got]}

    def op_substitute(self, message, blobs, codec):
        """The judge's references, as source: the sandbox's ``checks/_reference.py`` has no answers."""
        from ganlab.checks import _core

        space = {"__name__": "ganlab.checks._reference"}
        exec(compile(message["source"], "<the checks' references>", "exec"), space)
        references = {name: space[defined] for name, defined in message["names"].items()}
        swap = _core.substituted(self.handles[int(message["id"])], **references)
        swap.__enter__()
        self.swaps.append(swap)
        return {}

    def op_restore(self, message, blobs, codec):
        if self.swaps:
            self.swaps.pop().__exit__(None, None, None)
        return {}


def serve(config, hook, log):
    """Entry point of ``kernel.py CONFIG verify``: the judge's requests on stdin, answers on
    stdout; ``log`` is a file descriptor for the student's output."""
    import os

    channel_in, channel_out = os.dup(0), os.dup(1)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    server = Server(channel_in, channel_out)
    sys.addaudithook(hook)
    del hook
    server.serve_forever()


def _text(err):
    try:
        return str(err)
    except BaseException:  # noqa: B036
        return repr(type(err))
