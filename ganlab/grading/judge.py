"""The judge: runs the checks a submission passed in its kernel again, without running its code.

    python -m ganlab.grading.judge      # started by ``verify.verify``; the job comes on stdin

The judge starts the submission's process (``verify.serve``, in the sandbox) and asks it,
over ``remote``'s wire, to run the notebook cells a check needs and to evaluate the check
call's arguments. The check itself, the instructor's own code, runs here: each student
class, function or object is a stand-in (``Remote``) whose calls go to the submission's
process with data in and data out; each module the student's code builds comes back as
data and is rebuilt here (``remote.Codec``) with standard layers and the graph of its
forward, so that the check inspects, runs and differentiates a copy it made itself. The
checks' random inputs, the random state the student's code draws from, and the grad
mode travel with each call, so the student's code sees what it sees in the notebook.

Nothing of the student's code runs in this process and nothing from it is evaluated
here: a submission can make its own functions answer anything, which is what the checks
judge, but it cannot change a check or its verdict. Results go to the grader as the
lines ``verify.verify`` reads.
"""

import builtins
import contextlib
import json
import os
import subprocess
import sys
import threading

import torch

from . import remote
from .remote import Codec, WireError


class Lost(BaseException):
    """The submission's process died, stopped answering sensibly, or broke the protocol.

    Not an ``Exception``: the checks turn a student's errors into hints (``except Exception``),
    but this one must reach the judge's loop, which starts a fresh process for the next check.
    """


class StudentError(Exception):
    """An error the student's code raised (a stand-in when it is not a builtin one)."""


def _error(name, message):
    cls = getattr(builtins, str(name), None)
    if isinstance(cls, type) and issubclass(cls, Exception) and cls.__module__ == "builtins":
        return cls(message)
    if name == "CheckFailed":
        from ganlab.checks import CheckFailed

        return CheckFailed(message)
    safe = str(name) if str(name).isidentifier() else "Error"
    return type(safe, (StudentError,), {})(message)


class Submission:
    """The submission's process, and the requests the judge makes of it."""

    def __init__(self, argv, env, cwd):
        self.proc = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=cwd,
        )  # in the judge's process group: the grader's kill of the group ends it too
        threading.Thread(target=_drain, args=(self.proc.stderr,), daemon=True).start()
        self._read = remote.reader(self.proc.stdout.fileno())
        self._write = remote.writer(self.proc.stdin.fileno())

    def request(self, message, blobs=()):
        try:
            remote.send(self._write, message, blobs)
            reply, got = remote.receive(self._read)
        except (EOFError, OSError) as err:
            raise Lost("the submission's process died") from err
        except WireError as err:
            raise Lost(f"the submission's process broke the protocol: {err}") from err
        if not isinstance(reply, dict):
            raise Lost("the submission's process sent a malformed reply")
        if "error" in reply:
            name, message = (list(reply["error"]) + ["Error", ""])[:2]
            raise _error(name, str(message)[:2000])
        return reply, got

    def close(self):
        with contextlib.suppress(OSError):
            self.proc.kill()
        self.proc.wait()

    # -- stand-ins for what lives there --------------------------------------------------
    def stand_in(self, tag):
        name = str(tag.get("name", "object"))[:100]
        if tag.get("kind") == "class":
            return _RemoteMeta(
                name, (), {"_submission": self, "_id": tag["id"], "__module__": "submission"}
            )
        if tag.get("kind") == "callable":
            return Remote(self, tag["id"], name)
        return Opaque(self, tag.get("id"), name, str(tag.get("type", "object"))[:100])

    def attribute(self, handle, name):
        reply, blobs = self.request({"op": "attribute", "id": handle, "name": name})
        try:
            return self.codec().decode(reply["value"], blobs)
        except (KeyError, TypeError) as err:
            raise Lost(f"the submission's process sent a malformed reply ({err})") from err

    def build_class(self, spec):
        cls = remote.torch_module_class(spec.get("class"))
        if cls is not None:
            return cls.__new__(cls)
        cls = type(str(spec.get("name", "Module"))[:100], (Replica,), {})
        replica = cls.__new__(cls)
        graph = spec.get("graph")
        replica.__dict__["_ganlab_graph"] = graph if isinstance(graph, (list, str)) else "no graph"
        replica.__dict__["_ganlab_probe"] = (self, spec.get("handle"))
        return replica

    def trace(self, replica, handle, args):
        """The graph of ``replica``'s original for inputs shaped like ``args`` (cached), or why not."""
        if not all(isinstance(a, torch.Tensor) for a in args):
            return replica.__dict__["_ganlab_graph"]
        shapes = [[list(a.shape), str(a.dtype).removeprefix("torch.")] for a in args]
        cache = replica.__dict__.setdefault("_ganlab_graphs", {})
        key = json.dumps(shapes)
        if key not in cache:
            try:
                reply, _ = self.request({"op": "trace", "id": handle, "shapes": shapes})
                cache[key] = reply.get("graph")
            except Exception as err:  # noqa: BLE001 - the original failing to trace: say why
                cache[key] = f"{type(err).__name__}: {err}"
        graph = cache[key]
        return graph if isinstance(graph, (list, str)) else "no graph"

    def probe(self, handle, training, args, kwargs):
        """What the original forward returns there: [shape, dtype, requires_grad], or None."""
        codec = self.codec()
        payload = codec.encode({"args": list(args), "kwargs": dict(kwargs)})
        message = {"op": "probe", "id": handle, "payload": payload, "training": training}
        message["grad"] = torch.is_grad_enabled()
        try:
            reply, _ = self.request(message, codec.blobs)
        except Exception:  # noqa: BLE001 - the original failing there is the local copy's to show
            return None
        meta = reply.get("meta")
        return meta if isinstance(meta, list) and len(meta) == 3 else None

    def codec(self):
        return Codec(self._handle, self.stand_in, self.build_class, naming=True)

    @staticmethod
    def _handle(obj):
        if isinstance(obj, (Remote, _RemoteMeta)):
            return {"~": "handle", "id": obj._id}
        raise WireError(f"the judge cannot send a {type(obj).__name__}")

    def evaluate(self, exprs):
        reply, blobs = self.request({"op": "eval", "exprs": list(exprs)})
        codec = self.codec()
        return [codec.decode(v, blobs) for v in reply["values"]]

    def call(self, target, args, kwargs):
        codec = self.codec()
        payload = codec.encode({"args": list(args), "kwargs": dict(kwargs)})
        codec.blobs.append(torch.get_rng_state().numpy().tobytes())
        reply, blobs = self.request(
            {
                "op": "call",
                "id": target,
                "payload": payload,
                "rng": len(codec.blobs) - 1,
                "grad": torch.is_grad_enabled(),
            },
            codec.blobs,
        )
        try:
            state = bytearray(blobs[reply["rng"]])
            torch.set_rng_state(torch.frombuffer(state, dtype=torch.uint8).clone())
            for key, enc in reply["sync"]:
                remote.apply(codec.by_key.get(key), enc, codec, blobs)
            codec.outputs = []
            value = codec.decode(reply["value"], blobs)
        except (KeyError, TypeError, ValueError, IndexError, RuntimeError) as err:
            raise Lost(f"the submission's process sent a malformed reply ({err})") from err
        if codec.outputs:
            inputs = [codec.by_key[k] for k in reply.get("inputs", []) if k in codec.by_key]
            value = self._differentiable(reply["call"], value, codec.outputs, inputs)
        return value

    def _differentiable(self, call_id, value, outputs, inputs):
        """Connect the tensors the student's code returned to the inputs they were computed from."""
        inputs = [t for t in inputs if isinstance(t, torch.Tensor) and t.requires_grad]
        if not inputs:
            return value
        linked = _Link.apply(self, call_id, len(outputs), *[o.detach() for o in outputs], *inputs)
        swap = {id(o): n for o, n in zip(outputs, linked)}

        def walk(v):
            if isinstance(v, torch.Tensor):
                return swap.get(id(v), v)
            if isinstance(v, list):
                return [walk(x) for x in v]
            if isinstance(v, tuple):
                return tuple(walk(x) for x in v)
            if isinstance(v, dict):
                return {k: walk(x) for k, x in v.items()}
            return v

        return walk(value)

    def vjp(self, call_id, grads):
        codec = Codec()
        reply, blobs = self.request(
            {
                "op": "vjp",
                "call": call_id,
                "grads": [None if g is None else codec.encode(g) for g in grads],
            },
            codec.blobs,
        )
        try:
            return [None if g is None else codec.decode(g, blobs) for g in reply["grads"]]
        except (KeyError, TypeError, ValueError) as err:
            raise Lost(f"a malformed gradient ({err})") from err

    released = None  # the references a check may hand over there (names); None: all of them

    @contextlib.contextmanager
    def substituted(self, target, references):
        """``_core.substituted`` over there: the references go as source (the sandbox's copy
        of ``checks/_reference.py`` holds no answers), only those freed by an earlier check."""
        from ganlab.checks._core import definitions

        if self.released is not None:  # not yet graded in this run: the student's own stays
            references = {k: v for k, v in references.items() if k in self.released}
        names = {k: v.__name__ for k, v in references.items()}
        source = definitions(references.values())
        self.request({"op": "substitute", "id": target, "source": source, "names": names})
        try:
            yield
        finally:
            self.request({"op": "restore"})


LOG_BYTES = 1 << 20  # of the student's output, into the grader's log; the rest is read and dropped


def _drain(stream):
    kept = 0
    while chunk := stream.read1(1 << 16):
        if kept < LOG_BYTES:
            os.write(2, chunk[: LOG_BYTES - kept])
            kept += len(chunk)


class _Link(torch.autograd.Function):
    """Outputs computed in the submission's process; their gradients come from there too."""

    @staticmethod
    def forward(ctx, submission, call_id, n, *tensors):
        ctx.submission, ctx.call_id, ctx.n_inputs = submission, call_id, len(tensors) - n
        outputs = [t.clone() for t in tensors[:n]]
        for o, t in zip(outputs, tensors[:n]):
            if not (t.is_floating_point() or t.is_complex()):
                ctx.mark_non_differentiable(o)
        return tuple(outputs)

    @staticmethod
    def backward(ctx, *grads):
        got = ctx.submission.vjp(ctx.call_id, list(grads))
        if len(got) != ctx.n_inputs:
            raise Lost("the submission's process sent the wrong number of gradients")
        return (None, None, None, *([None] * len(grads)), *got)


class _Attributes:
    """Reading a public attribute of an object over there (``trainer.fit``) is a request."""

    def __getattr__(self, name):
        if name.startswith("_"):
            raise AttributeError(name)
        return self._submission.attribute(self._id, name)


class Remote(_Attributes):
    """A function (or callable object) of the submission's; calling it is a request."""

    def __init__(self, submission, handle, name):
        self._submission, self._id = submission, handle
        self.__name__ = self.__qualname__ = name

    def __call__(self, *args, **kwargs):
        return self._submission.call(self._id, args, kwargs)

    def _ganlab_substituted(self, references):  # for _core.substituted
        return self._submission.substituted(self._id, references)

    def __repr__(self):
        return f"<{self.__name__} of the submission>"


class _RemoteMeta(type):
    """A class of the submission's: ``isinstance(x, type)`` holds, calling it builds there."""

    def __call__(cls, *args, **kwargs):
        return cls._submission.call(cls._id, args, kwargs)

    def _ganlab_substituted(cls, references):  # for _core.substituted
        return cls._submission.substituted(cls._id, references)


class Opaque(_Attributes):
    """An object of the submission's that is neither data nor callable (a ``Trainer``)."""

    def __init__(self, submission, handle, name, type_name):
        self._submission, self._id = submission, handle
        self.__name__, self._type = name, type_name

    def __repr__(self):
        return f"<{self._type} of the submission>"


class Replica(torch.nn.Module):
    """A module of the submission's, rebuilt here: its layers, weights and forward's graph."""

    def forward(self, *args, **kwargs):
        graph = self.__dict__.get("_ganlab_graph")
        submission, handle = self.__dict__.get("_ganlab_probe", (None, None))
        if not isinstance(graph, list) and submission is not None and handle is not None:
            graph = submission.trace(self, handle, args)  # a branch on shapes: per input shape
        if not isinstance(graph, list):
            raise RuntimeError(
                f"the grader cannot run {type(self).__name__}.forward: torch.fx could not trace "
                f"it ({graph}). Write forward as layers and tensor operations, without Python "
                "branches on tensor values"
            )
        try:
            out = remote.run_graph(self, graph, args, kwargs)
        except WireError as err:
            raise RuntimeError(
                f"the grader cannot run {type(self).__name__}.forward: {err}"
            ) from None
        # The graph misses what fx does not record (torch.no_grad, Python state): the original's
        # answer on the same input says whether the output carries a gradient, and its shape.
        if submission is None or handle is None or not isinstance(out, torch.Tensor):
            return out
        meta = submission.probe(handle, self.training, args, kwargs)
        if meta is None:
            return out
        if list(out.shape) != meta[0] or str(out.dtype) != meta[1]:
            raise RuntimeError(
                f"the grader's copy of {type(self).__name__}.forward (its torch.fx graph) gives "
                f"{tuple(out.shape)} {out.dtype} where yours gives {tuple(meta[0])} {meta[1]}: "
                "write forward as layers and tensor operations, without Python branches or state"
            )
        return out if meta[2] or not out.requires_grad else out.detach()


# -- the judge's main loop ------------------------------------------------------------------


def main():
    from ganlab import checks
    from ganlab.checks import CheckFailed

    from .verify import _SEP, _TAG, _mac, _text

    key_line, _, payload = sys.stdin.buffer.read().partition(b"\n")
    key, job = bytes.fromhex(key_line.decode()), json.loads(payload)
    out = os.dup(1)
    os.dup2(2, 1)  # the checks' tick lines go to the log, not to the grader

    def report(*fields):
        import base64

        body = base64.b64encode(_SEP.join(fields).encode("utf-8", "replace")).decode()
        mac = _mac(key, body)
        os.write(out, f"{_TAG} {mac} {body}\n".encode())

    if job.get("memory_mb"):  # what a student's module makes the judge allocate
        from .kernel import _set_limits

        _set_limits(job["memory_mb"], hard=False)
    student = job["student"]
    submission = None
    for notebook, plan in job["todo"]:
        ran = None
        for check in plan["checks"]:
            report("progress", check["id"])
            try:
                if submission is None:
                    submission = Submission(student["argv"], student["env"], student["cwd"])
                submission.released = check.get("released")  # the grader always says
                if ran is None:
                    submission.request({"op": "notebook"})
                    ran = set()
                for index in check["run"]:
                    if index not in ran:
                        ran.add(index)
                        cell = plan["cells"][index]
                        submission.request(
                            {
                                "op": "run",
                                "source": cell["source"],
                                "name": f"<{notebook} {cell['id']}>",
                            }
                        )
                submission.request(
                    {"op": "exec", "source": check["pre"], "name": f"<{notebook} {check['id']}>"}
                )
                names = list(check["kwargs"])
                values = submission.evaluate(check["args"] + [check["kwargs"][k] for k in names])
                args, kwargs = (
                    values[: len(check["args"])],
                    dict(zip(names, values[len(check["args"]) :])),
                )
                getattr(checks, check["function"])(*args, **kwargs)
            except CheckFailed as err:
                status, hint = "failed", _text(err)
            except NotImplementedError as err:
                status, hint = "failed", "not implemented yet: " + _text(err)
            except Lost as err:
                status, hint = "failed", _text(err)
                submission.close()
                submission, ran = None, None  # a fresh process for the next check
            except Exception as err:  # noqa: BLE001 - what the student's code raised, or a bad value
                status, hint = "failed", f"{type(err).__name__}: {_text(err)}"
            else:
                status, hint = "passed", ""
            report("check", check["id"], status, hint[:1000])
        if submission is not None:
            submission.close()
            submission = None
    report("done")


if __name__ == "__main__":
    main()
