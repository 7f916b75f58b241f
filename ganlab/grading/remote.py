"""The wire between the judge and a submission's process: messages of plain data, never code.

The judge (``judge.py``) runs the checks; the submission's process (``serve`` here,
started in the sandbox by ``kernel.py CONFIG verify``) runs the student's code and
answers the judge's requests. What crosses is data the judge rebuilds with its own
code: numbers, strings, tensors (dtype, shape, bytes), and modules as their tree of
standard ``torch.nn`` layers, their weights and the ``torch.fx`` graph of a custom
``forward`` (its steps may call only torch functions, tensor methods and operators
on an allow-list, and give only tensors and data). A class, a function or any other
object stays in the submission's process behind a numbered handle the judge can only
call. Nothing the submission sends is unpickled, evaluated or imported by the judge, so
the checks' verdicts are computed by the judge alone, from what the student's code answered.

A message: 4 bytes of JSON length, the JSON, then the tensors' bytes it names.
"""

import importlib
import json
import math
import operator
import struct

import torch
from torch import nn

MAX_JSON = 16 << 20
MAX_BLOBS = 256 << 20  # what one message may carry in tensors
MAX_DEPTH = 64


class WireError(Exception):
    """A message that breaks the protocol (from the submission's process: its fault)."""


# -- framing ------------------------------------------------------------------------------


def send(fd_write, obj, blobs=()):
    body = json.dumps({"m": obj, "b": [len(b) for b in blobs]}).encode()
    fd_write(struct.pack("<I", len(body)) + body)
    for blob in blobs:
        fd_write(blob)


def receive(read_exactly):
    """One message ``(obj, blobs)``; ``read_exactly(n)`` returns n bytes or raises EOFError."""
    (size,) = struct.unpack("<I", read_exactly(4))
    if size > MAX_JSON:
        raise WireError(f"a message of {size} bytes")
    try:
        head = json.loads(read_exactly(size))
        obj, sizes = head["m"], head["b"]
        if not all(isinstance(s, int) and s >= 0 for s in sizes) or sum(sizes) > MAX_BLOBS:
            raise WireError("bad tensor sizes")
    except (ValueError, KeyError, TypeError, RecursionError) as err:
        raise WireError(f"a malformed message ({err})") from None
    return obj, [read_exactly(s) for s in sizes]


def reader(fd):
    import os

    def read_exactly(n):
        chunks = []
        while n:
            chunk = os.read(fd, min(n, 1 << 20))
            if not chunk:
                raise EOFError
            chunks.append(chunk)
            n -= len(chunk)
        return b"".join(chunks)

    return read_exactly


def writer(fd):
    import os

    def write_all(data):
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]

    return write_all


# -- values -------------------------------------------------------------------------------
# Encoded as JSON; anything that JSON does not say itself is a dict with a "~" tag.

DTYPES = {
    str(d).removeprefix("torch."): d
    for d in (torch.float32, torch.float64, torch.float16, torch.bfloat16, torch.int64)
    + (torch.int32, torch.int16, torch.int8, torch.uint8, torch.bool, torch.complex64)
}


class Codec:
    """Turns values into JSON and tensor bytes and back, on either side.

    ``name`` gives each tensor, module and optimizer sent a key, so that the other side
    can refer back to it (a module the student's ``init_fn`` returns is the judge's
    module, not a copy; a tensor sent twice is one tensor). ``handle(obj)`` turns an
    object that is not data into a handle; ``resolve(tag)`` turns a handle into the
    local stand-in; ``build_class(spec)`` makes the empty module a spec is rebuilt into.
    """

    def __init__(self, handle=None, resolve=None, build_class=None, naming=False, trace=False):
        self.blobs, self.handle, self.resolve = [], handle, resolve
        self.build_class = build_class  # module class names that may be rebuilt from specs
        self.key_of, self.by_key = {}, {}
        self.trace = trace  # send the fx graph of each custom module's forward
        self.naming = naming  # give every tensor, module and optimizer sent a key
        self._alive = []
        self.outputs = []  # tensors sent (or received) that need a gradient from the other side

    def name(self, obj, key=None):
        if id(obj) not in self.key_of:
            key = key or f"{'k' if self.naming else 's'}{len(self.by_key)}"
            if key in self.by_key:  # a fresh copy of something known: not a new name
                return key
            self.key_of[id(obj)], self.by_key[key] = key, obj
            self._alive.append(obj)  # ids stay unique while the codec lives
        return self.key_of[id(obj)]

    # encode
    def encode(self, obj, depth=0):
        if depth > MAX_DEPTH:
            raise WireError("a value nested too deeply")
        enc = lambda v: self.encode(v, depth + 1)  # noqa: E731
        if type(obj).__module__ == "numpy" and type(obj).__name__ != "ndarray":
            import numpy as np

            if isinstance(obj, np.generic) and obj.dtype.kind in "biuf":
                return {"~": "npscalar", "dtype": obj.dtype.str, "v": enc(obj.item())}
        if obj is None or isinstance(obj, (bool, str)):
            return obj
        if isinstance(obj, int) and not isinstance(obj, bool):
            return int(obj)
        if isinstance(obj, float):
            return obj if math.isfinite(obj) else {"~": "float", "v": repr(obj)}
        if isinstance(obj, torch.Tensor):
            return self._tensor(obj)
        if id(obj) in self.key_of:
            return {"~": "ref", "v": self.key_of[id(obj)]}
        if isinstance(obj, list):
            return [enc(v) for v in obj]
        if isinstance(obj, torch.Size):
            return {"~": "size", "v": [int(v) for v in obj]}
        if isinstance(obj, tuple):
            return {"~": "tuple", "v": [enc(v) for v in obj]}
        if isinstance(obj, dict):
            return {"~": "dict", "k": [enc(k) for k in obj], "v": [enc(v) for v in obj.values()]}
        if isinstance(obj, slice):
            return {"~": "slice", "v": [enc(obj.start), enc(obj.stop), enc(obj.step)]}
        if obj is Ellipsis:
            return {"~": "..."}
        if isinstance(obj, torch.dtype):
            return {"~": "dtype", "v": str(obj).removeprefix("torch.")}
        if isinstance(obj, torch.device):
            return {"~": "device", "v": "cpu"}
        # torchvision's v2 transforms are nn.Modules but hold no layers (and fx cannot trace
        # them): like the classic ones, they travel as callables.
        if isinstance(obj, nn.Module) and not (
            self.handle is not None and type(obj).__module__.startswith("torchvision.transforms")
        ):
            return self.module(obj)
        if isinstance(obj, torch.optim.Optimizer):
            return self.optimizer(obj)
        kind = type(obj).__module__.split(".")[0]
        if kind == "numpy":
            import numpy as np

            if isinstance(obj, np.ndarray):
                return {"~": "ndarray", "v": self._tensor(torch.from_numpy(obj.copy()))}
        if kind == "PIL" and hasattr(obj, "tobytes"):
            self.blobs.append(obj.tobytes())
            return {"~": "pil", "mode": obj.mode, "size": list(obj.size), "b": len(self.blobs) - 1}
        if self.handle is None:
            raise WireError(f"cannot send a {type(obj).__name__}")
        return self.handle(obj)

    def _tensor(self, t):
        if id(t) in self.key_of and not self.naming:
            return {"~": "ref", "v": self.key_of[id(t)]}
        enc = self._data(t)
        enc["key"] = self.name(t)  # the same tensor twice is one tensor on the other side
        if not self.naming and t.requires_grad:
            enc["out"] = len(self.outputs)
            self.outputs.append(t)
        return enc

    def _data(self, t):
        cls = type(t)
        if cls not in (torch.Tensor, nn.Parameter):
            t = t.as_subclass(torch.Tensor)  # a check's spy tensor travels as its class name
        data = t.detach().cpu().contiguous()
        if str(data.dtype).removeprefix("torch.") not in DTYPES:
            data = data.float()
        self.blobs.append(
            data.view(-1).view(torch.uint8).numpy().tobytes() if data.numel() else b""
        )
        return {
            "~": "tensor",
            "dtype": str(data.dtype).removeprefix("torch."),
            "shape": list(data.shape),
            "b": len(self.blobs) - 1,
            "grad": bool(t.requires_grad),
            "param": isinstance(t, nn.Parameter),
            **({"cls": f"{cls.__module__}:{cls.__qualname__}"} if _check_class(cls) else {}),
        }

    def module(self, m, memo=True):
        if memo:
            self.name(m)
        spec = {"~": "module", "class": f"{type(m).__module__}:{type(m).__qualname__}"}
        spec["name"] = type(m).__name__
        spec["training"] = bool(m.training)
        attrs = {}
        spy = _check_class(type(m)) is not None  # a check's own module: its records travel too
        for k, v in vars(m).items():
            if k != "training" and (_primitive(v) or spy and isinstance(v, list)):
                attrs[k] = self.encode(v)
        spec["attrs"] = attrs
        spec["params"] = {k: self._named(p) for k, p in m._parameters.items()}
        spec["buffers"] = {k: self._named(b) for k, b in m._buffers.items()}
        spec["grads"] = {
            k: (None if p is None or p.grad is None else self._data(p.grad))
            for k, p in m._parameters.items()
        }
        spec["children"] = {
            k: (None if c is None else self.module(c)) for k, c in m._modules.items()
        }
        spec["key"] = self.key_of.get(id(m))
        if self.trace and torch_module_class(spec["class"]) is None:
            spec["graph"] = export_graph(m)
            if self.handle is not None and spec["key"] is not None and spec["key"][0] == "s":
                spec["handle"] = self.handle(m)["id"]  # the original, for the judge's probe
        return spec

    def _named(self, t):
        if t is None:
            return None
        if self.naming:
            self.name(t)
        return dict(self._data(t), key=self.key_of.get(id(t)))

    def optimizer(self, opt):
        key = self.name(opt)
        groups, state, index = [], [], {}
        for group in opt.param_groups:
            params = []
            for p in group["params"]:
                index[id(p)] = len(index)
                params.append(self._named(p))
            hyper = {k: self.encode(v) for k, v in group.items() if k != "params" and _primitive(v)}
            groups.append({"hyper": hyper, "params": params})
        for p, s in opt.state.items():
            if id(p) in index:
                state.append([index[id(p)], {k: self.encode(v) for k, v in s.items()}])
        cls = type(opt)
        return {
            "~": "optim",
            "class": f"{cls.__module__}:{cls.__qualname__}",
            "groups": groups,
            "state": state,
            "key": key,
        }

    # decode
    def decode(self, obj, blobs, depth=0):
        if depth > MAX_DEPTH:
            raise WireError("a value nested too deeply")
        dec = lambda v: self.decode(v, blobs, depth + 1)  # noqa: E731
        if obj is None or isinstance(obj, (bool, int, float, str)):
            return obj
        if isinstance(obj, list):
            return [dec(v) for v in obj]
        if not isinstance(obj, dict):
            raise WireError("an unknown value")
        tag = obj.get("~")
        try:
            if tag == "float":
                if obj["v"] not in ("nan", "inf", "-inf"):
                    raise WireError("a malformed float")
                return float(obj["v"])
            if tag == "tensor":
                return self._tensor_from(obj, blobs)
            if tag == "ref":
                if obj["v"] not in self.by_key:
                    raise WireError("a reference to nothing")
                return self.by_key[obj["v"]]
            if tag == "size":
                return torch.Size([int(v) for v in obj["v"]])
            if tag == "tuple":
                return tuple(dec(v) for v in obj["v"])
            if tag == "dict":
                return dict(zip([_hashable(dec(k)) for k in obj["k"]], [dec(v) for v in obj["v"]]))
            if tag == "slice":
                return slice(*[dec(v) for v in obj["v"]][:3])
            if tag == "...":
                return Ellipsis
            if tag == "dtype":
                return DTYPES[obj["v"]]
            if tag == "device":
                return torch.device("cpu")
            if tag == "ndarray":
                return self._tensor_from(obj["v"], blobs).numpy()
            if tag == "npscalar":
                import numpy as np

                dtype = np.dtype(str(obj["dtype"]))
                if dtype.kind not in "biuf":
                    raise WireError("a numpy scalar of another kind")
                return dtype.type(dec(obj["v"]))
            if tag == "pil":
                from PIL import Image

                return Image.frombytes(str(obj["mode"]), tuple(obj["size"]), blobs[obj["b"]])
            if tag == "module":
                return self.module_from(obj, blobs)
            if tag == "optim":
                return self.optimizer_from(obj, blobs)
            if tag == "handle" and self.resolve is not None:
                return self.resolve(obj)
        except WireError:
            raise
        except (KeyError, TypeError, ValueError, IndexError, RuntimeError, AttributeError) as err:
            raise WireError(f"a malformed {tag} ({type(err).__name__}: {err})") from None
        raise WireError(f"an unknown value tag {tag!r}")

    def _tensor_from(self, obj, blobs, fresh=False):
        if not fresh and obj.get("key") in self.by_key:  # the same tensor twice in one message
            return self.by_key[obj["key"]]
        dtype, shape = DTYPES[obj["dtype"]], [int(s) for s in obj["shape"]]
        raw = blobs[obj["b"]]
        n = math.prod(shape)
        if len(raw) != n * torch.empty(0, dtype=dtype).element_size():
            raise WireError("a tensor whose bytes do not fit its shape")
        t = (
            # detach(): not a view of the buffer, so an in-place change is reported in the
            # notebook's words ("a leaf Variable", not "a view of a leaf Variable")
            torch.frombuffer(bytearray(raw), dtype=dtype).reshape(shape).detach()
            if n
            else torch.empty(shape, dtype=dtype)
        )
        spy = _check_class(obj.get("cls"))
        if spy is not None and issubclass(spy, torch.Tensor):
            t = t.as_subclass(spy)
        if obj.get("param"):
            t = nn.Parameter(t, requires_grad=bool(obj.get("grad")))
        elif t.is_floating_point() or t.is_complex():
            t.requires_grad_(bool(obj.get("grad")))
        if isinstance(obj.get("key"), str) and not fresh:
            self.name(t, obj["key"])
        if isinstance(obj.get("out"), int):
            self.outputs.append(t)
        return t

    def _param_from(self, obj, blobs):
        """A tensor of a module or optimizer: the one already known under its key, else a new one."""
        if obj is None:
            return None
        if obj.get("key") in self.by_key:
            return self.by_key[obj["key"]]
        return self._tensor_from(obj, blobs)

    def module_from(self, spec, blobs):
        if spec.get("key") in self.by_key:
            module = self.by_key[spec["key"]]
            apply_state(module, spec, self, blobs)
            return module
        m = self.build_class(spec)
        nn.Module.__init__(m)
        spy = _check_class(type(m)) is not None
        for k, v in spec["attrs"].items():
            value = self.decode(v, blobs)
            # Settings only, as ``module`` sends them: a value that is not data (a handle to the
            # sender's code) or a name the class defines (``forward``, ``_compiled_call_impl``)
            # would make the receiver's copy call the sender's code instead of its own layers.
            data = _primitive(value) or (spy and isinstance(value, list))
            ours = not isinstance(k, str) or k.startswith(("__", "_ganlab")) or hasattr(type(m), k)
            if ours or not data:
                raise WireError(f"a module attribute {str(k)[:100]!r} that is not a setting")
            m.__dict__[k] = value
        m.training = bool(spec["training"])
        for k, p in spec["params"].items():
            p = self._param_from(p, blobs)
            if p is not None and not isinstance(p, nn.Parameter):
                p = nn.Parameter(p, requires_grad=p.requires_grad)
            m._parameters[k] = p
            g = spec["grads"].get(k)
            if p is not None and g is not None:
                p.grad = self._tensor_from(g, blobs)
        for k, b in spec["buffers"].items():
            m._buffers[k] = self._param_from(b, blobs)
        for k, c in spec["children"].items():
            m._modules[k] = None if c is None else self.module_from(c, blobs)
        if spec.get("key"):
            self.name(m, spec["key"])
        return m

    def optimizer_from(self, spec, blobs):
        if spec.get("key") in self.by_key:
            return self.by_key[spec["key"]]
        cls = resolve_optimizer(spec["class"])
        groups, params = [], []
        for group in spec["groups"]:
            ps = [self._param_from(p, blobs) for p in group["params"]]
            params += ps
            hyper = {k: self.decode(v, blobs) for k, v in group["hyper"].items()}
            groups.append(dict(hyper, params=ps))
        opt = cls(groups)
        for i, s in spec["state"]:
            opt.state[params[i]] = {k: self.decode(v, blobs) for k, v in s.items()}
        if isinstance(spec.get("key"), str):
            self.name(opt, spec["key"])
        return opt


def _primitive(v, depth=0):
    if v is None or isinstance(v, (bool, int, float, str)):
        return True
    if isinstance(v, (tuple, list)) and depth < 3:
        return all(_primitive(x, depth + 1) for x in v)
    return False


def _hashable(v):
    return tuple(_hashable(x) for x in v) if isinstance(v, list) else v


def apply_state(module, spec, codec, blobs):
    """Bring the judge's own ``module`` up to date with what the other side did to it."""
    module.training = bool(spec["training"])
    for table, grads in ((module._parameters, spec["grads"]), (module._buffers, None)):
        for k, enc in spec["params" if grads is not None else "buffers"].items():
            old = table.get(k)
            if enc is None:
                table[k] = None
                continue
            new = codec._tensor_from(enc, blobs, fresh=True)
            same = old is not None and codec.by_key.get(enc.get("key")) is old
            if same and old.shape == new.shape and old.dtype == new.dtype:
                with torch.no_grad():
                    old.copy_(new)
                if old.is_leaf:
                    old.requires_grad_(new.requires_grad)
            elif grads is not None:
                table[k] = nn.Parameter(new.detach(), requires_grad=new.requires_grad)
            else:
                table[k] = new
            if grads is not None:
                g = grads.get(k)
                table[k].grad = None if g is None else codec._tensor_from(g, blobs, fresh=True)
    for k, v in spec["attrs"].items():  # what a check's spy module recorded over there
        if isinstance(module.__dict__.get(k), list) and isinstance(v, list):
            module.__dict__[k][:] = codec.decode(v, blobs)
    for k, c in spec["children"].items():
        if c is not None and isinstance(module._modules.get(k), nn.Module):
            apply_state(module._modules[k], c, codec, blobs)


def state_of(obj, codec):
    """What a call did to one of the judge's objects (None for what it sends no state of):
    the submission's side of the sync, read back by ``apply``."""
    if isinstance(obj, nn.Module):
        return codec.module(obj)
    if isinstance(obj, torch.optim.Optimizer):
        return codec.optimizer(obj)
    if isinstance(obj, torch.Tensor) and not isinstance(obj, nn.Parameter):  # params: in modules
        enc = codec._data(obj)
        if obj.is_leaf and obj.grad is not None:
            enc["g"] = codec._data(obj.grad)
        return enc
    return None


def apply(obj, enc, codec, blobs):
    """The judge's side of the sync: bring ``obj`` up to date with ``state_of`` over there."""
    if isinstance(obj, nn.Module):
        apply_state(obj, enc, codec, blobs)
    elif isinstance(obj, torch.optim.Optimizer):
        apply_optimizer(obj, enc, codec, blobs)
    elif isinstance(obj, torch.Tensor):
        apply_tensor(obj, enc, codec, blobs)


def apply_tensor(t, enc, codec, blobs):
    new = codec._tensor_from(enc, blobs, fresh=True)
    if new.shape == t.shape and new.dtype == t.dtype and not torch.equal(new, t.detach()):
        with torch.no_grad():
            t.copy_(new)
    elif new.dtype == t.dtype and new.shape != t.shape:  # t.unsqueeze_(-1) over there: here too
        with torch.no_grad():
            t.set_(new.detach())
    g = enc.get("g")
    if t.is_leaf and (t.is_floating_point() or t.is_complex()):
        t.requires_grad_(new.requires_grad)
    if t.requires_grad and t.is_leaf:
        t.grad = None if g is None else codec._tensor_from(g, blobs, fresh=True)


def apply_optimizer(opt, spec, codec, blobs):
    params = [p for group in opt.param_groups for p in group["params"]]
    for group, new in zip(opt.param_groups, spec["groups"]):
        for k, v in new["hyper"].items():
            group[k] = codec.decode(v, blobs)
    opt.state.clear()
    for i, s in spec["state"]:
        if 0 <= i < len(params):
            opt.state[params[i]] = {k: codec.decode(v, blobs) for k, v in s.items()}


def resolve_optimizer(name):
    mod, _, qual = str(name).partition(":")
    if not mod.startswith("torch.optim.") or "." in qual:
        raise WireError(f"an optimizer class that is not torch.optim's: {name}")
    cls = getattr(__import__(mod, fromlist=[qual]), qual, None)
    if not (isinstance(cls, type) and issubclass(cls, torch.optim.Optimizer)):
        raise WireError(f"not an optimizer: {name}")
    return cls


def _check_class(cls):
    """``cls`` (or the class a ``module:qualname`` names) if the kit's checks define it."""
    if isinstance(cls, str):
        mod, _, qual = cls.partition(":")
        if not mod.startswith("ganlab.checks.") or "." in qual:
            return None
        try:
            cls = getattr(importlib.import_module(mod), qual, None)
        except ImportError:
            return None
    if isinstance(cls, type) and cls.__module__.startswith("ganlab.checks."):
        return cls
    return None


def torch_module_class(name, allowed=("torch.nn.modules.",)):
    """The class ``module:qualname`` names, if it is one of ``allowed``'s nn.Module classes."""
    mod, _, qual = str(name).partition(":")
    private = qual.startswith("_") and not mod.startswith("ganlab.checks.")
    if not mod.startswith(allowed) or "." in qual or private:
        return None

    try:
        cls = getattr(importlib.import_module(mod), qual, None)
    except ImportError:
        return None
    return cls if isinstance(cls, type) and issubclass(cls, nn.Module) else None


# -- the fx graph of a custom forward -------------------------------------------------------
# What a graph step may call: torch's functions (not those that read files, seed or compile),
# torch.nn.functional, math, a few builtins and operators. Attribute reads and method calls
# are on public names only, and methods only on tensors; and every step's value is data
# (``_data_only``): no way from a tensor to Python.
# Where fx finds the functions a forward calls. torch's C namespaces hold nothing but tensor ops:
# F.logsigmoid, F.gelu and F.softplus live in torch._C._nn, torch.linalg.vector_norm in _linalg.
_FUNCTION_MODULES = {
    "torch",
    "torch.nn.functional",
    "torch.functional",
    "torch._C._nn",
    "torch._C._linalg",
    "torch._C._special",
    "math",
}
_BUILTINS = {
    "getattr",
    "len",
    "int",
    "float",
    "tuple",
    "list",
    "slice",
    "range",
    "min",
    "max",
    "abs",
}
_OPERATORS = {"add", "sub", "mul", "truediv", "floordiv", "mod", "pow", "neg", "pos", "matmul"} | {
    "getitem",
    "eq",
    "ne",
    "lt",
    "le",
    "gt",
    "ge",
    "and_",
    "or_",
    "xor",
    "invert",
    "iadd",
    "imul",
}
_TORCH_REFUSED = {"from_file", "load", "save", "manual_seed", "seed", "compile"}  # and set_*, use_*


def _public_getattr(obj, name, *default):
    if not isinstance(name, str) or name.startswith("_"):
        raise WireError(f"a graph step reads the attribute {name!r}")
    return getattr(obj, name, *default)


def _function(target):
    import builtins

    mod, name = (target + [None, None])[:2] if isinstance(target, list) else (None, None)
    if not isinstance(mod, str) or not isinstance(name, str) or name.startswith("_"):
        raise WireError(f"a graph step calls {target!r}")
    if mod == "builtins" and name in _BUILTINS:
        return _public_getattr if name == "getattr" else getattr(builtins, name)
    if mod in ("_operator", "operator") and name in _OPERATORS:
        return getattr(operator, name)
    # torch.set_* and torch.use_*: the process's global state (default dtype, autocast, ...),
    # which would change the checks that run after this graph, not just its own output.
    refused = name in _TORCH_REFUSED or name.startswith(("set_", "use_"))
    if mod in _FUNCTION_MODULES and not (mod == "torch" and refused):
        fn = getattr(importlib.import_module(mod), name, None)
        if callable(fn) and not isinstance(fn, type) and type(fn).__name__ != "module":
            return fn
    raise WireError(f"a graph step calls {mod}.{name}, which the grader does not run")


def _meta_tracer():
    from torch.fx.experimental import meta_tracer

    class Proxy(meta_tracer.MetaProxy):
        def size(self, dim=None):  # MetaProxy.size(0) gives the whole size (it tests `if dim`)
            meta = getattr(self, "_tensor_meta", None)
            if meta is not None:
                return meta.size() if dim is None else meta.size(dim)
            return super().size(dim)

    class Tracer(meta_tracer.MetaTracer):
        def proxy(self, node):
            return Proxy(node, self)

    return Tracer


def export_graph(module, shapes=None):
    """The fx graph of ``module``'s forward as data, or an error message (str) if fx cannot trace it.

    With ``shapes`` (``[[shape, dtype], ...]`` of the tensor arguments), fx's meta tracer
    traces it for inputs of those shapes: a branch on a shape (``if z.dim() == 2``) is then
    decided, and the graph holds for those shapes only.
    """
    import inspect

    import torch.fx

    try:
        if shapes is None:
            graph = torch.fx.symbolic_trace(module).graph
        else:
            names = list(inspect.signature(module.forward).parameters)
            meta = {
                n: torch.empty([int(d) for d in shape], dtype=DTYPES[dtype], device="meta")
                for n, (shape, dtype) in zip(names, shapes)
            }
            graph = _meta_tracer()().trace(module, meta)
    except Exception as err:  # noqa: BLE001 - any error: the forward is not traceable
        return f"{type(err).__name__}: {str(err).strip().splitlines()[0][:300] if str(err).strip() else ''}"
    codec = Codec()

    def arg(a):
        if isinstance(a, torch.fx.Node):
            return {"~": "node", "v": a.name}
        if isinstance(a, (list, tuple)):
            items = [arg(x) for x in a]
            return items if isinstance(a, list) else {"~": "tuple", "v": items}
        if isinstance(a, dict):
            return {"~": "dict", "k": list(a), "v": [arg(v) for v in a.values()]}
        if isinstance(a, slice):
            return {"~": "slice", "v": [arg(a.start), arg(a.stop), arg(a.step)]}
        return codec.encode(a)

    nodes = []
    for n in graph.nodes:
        target = n.target
        if n.op == "call_function":
            target = [getattr(target, "__module__", None) or "builtins", target.__name__]
        nodes.append(
            {
                "op": n.op,
                "name": n.name,
                "target": target,
                "args": arg(n.args),
                "kwargs": arg(n.kwargs),
            }
        )
    if codec.blobs:
        return "the forward holds tensor constants; keep tensors in parameters or buffers"
    return nodes


# What a graph step's value may be. Not a function, a module or any other object: a bound
# method (``getattr(x.numpy(), "tofile")``) is called by ``max(..., key=...)``, and a module
# (``torch.get_device_module``) leads on to ``sys.path``: the judge, outside the sandbox, would
# write files or import the student's code. torch.Size and torch.return_types are tuples.
_DATA = (torch.Tensor, bool, int, float, complex, str, type(None), slice, range, type(Ellipsis))
_DATA += (torch.dtype, torch.device, torch.layout, torch.memory_format)


def _data_only(value, depth=0):
    if isinstance(value, (tuple, list)) and depth < MAX_DEPTH:
        return all(_data_only(v, depth + 1) for v in value)
    if isinstance(value, dict) and depth < MAX_DEPTH:
        return all(_data_only(v, depth + 1) for v in (*value, *value.values()))
    return isinstance(value, _DATA)


def run_graph(module, nodes, args, kwargs):
    """Interpret ``nodes`` (from ``export_graph``) as ``module.forward(*args, **kwargs)``."""
    env, inputs = {}, list(args)

    def value(a):
        if isinstance(a, list):
            return [value(x) for x in a]
        if isinstance(a, dict):
            tag = a.get("~")
            if tag == "node":
                return env[a["v"]]
            if tag == "tuple":
                return tuple(value(x) for x in a["v"])
            if tag == "dict":
                return dict(zip(a["k"], [value(v) for v in a["v"]]))
            if tag == "slice":
                return slice(*[value(v) for v in a["v"]][:3])
            return Codec().decode(a, [])
        return a

    for n in nodes:
        op, target = n["op"], n["target"]
        if op == "placeholder":
            name = target.lstrip("*")
            if inputs:
                env[n["name"]] = inputs.pop(0)
            elif name in kwargs:
                env[n["name"]] = kwargs[name]
            elif n["args"]:
                env[n["name"]] = value(n["args"])[0]
            else:
                raise TypeError(f"forward() missing argument {name!r}")
            continue
        a, kw = value(n["args"]), value(n["kwargs"])
        if op == "get_attr":
            obj = module
            for part in str(target).split("."):
                if part.startswith("_"):
                    raise WireError(f"a graph step reads {target}")
                obj = getattr(obj, part)
            env[n["name"]] = obj
        elif op == "call_module":
            env[n["name"]] = module.get_submodule(str(target))(*a, **kw)
        elif op == "call_function":
            env[n["name"]] = _function(target)(*a, **kw)
        elif op == "call_method":
            if not (a and isinstance(a[0], torch.Tensor)) or not isinstance(target, str):
                raise WireError(f"a graph step calls the method {target!r} of a non-tensor")
            if target.startswith("_") or not hasattr(torch.Tensor, target):
                raise WireError(f"a graph step calls the method {target!r}")
            env[n["name"]] = getattr(a[0], target)(*a[1:], **kw)
        elif op == "output":
            return a[0]
        else:
            raise WireError(f"an unknown graph step {op}")
        if not _data_only(env[n["name"]]):
            kind = type(env[n["name"]]).__name__
            raise WireError(f"a graph step {n['name']!r} gives a {kind}, not a tensor or data")
    raise WireError("a graph with no output")
