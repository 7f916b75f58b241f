"""What every check shares: the failure and how it shows, seeding, calling student code, layers."""

import ast
import contextlib
import functools
import inspect
import sys
import textwrap
import types

import torch


class CheckFailed(AssertionError):
    """A graded check failed; the message says what is wrong and the likely cause.

    In Jupyter (IPython) it shows itself as the hint alone, in a few lines: the check's
    source, with its expected answers, is no help to a student. ``%tb`` in the next
    cell shows the full traceback. The type name and the message stay what nbval and
    the grader read (``ename`` ``CheckFailed``, ``evalue`` the hint).
    """

    def _render_traceback_(self):
        # IPython asks while it handles the error of the failed cell: show the hint. %tb asks
        # later, with no error being handled: show everything.
        if sys.exc_info()[1] is not self:
            return _full_traceback(self)
        lines = []
        for paragraph in str(self).splitlines() or ["(no hint)"]:
            lines += textwrap.wrap(paragraph, 100, subsequent_indent="  ") or [""]
        return [
            f"\x1b[1;31m\u2718 Check failed:\x1b[0m {lines[0]}",
            *lines[1:],
            "\x1b[2m(for the full traceback, run %tb in a new cell)\x1b[0m",
        ]


def _full_traceback(err):
    try:
        from IPython import get_ipython

        shell = get_ipython()
        if shell is not None:
            return shell.InteractiveTB.structured_traceback(type(err), err, err.__traceback__)
    except Exception:  # noqa: BLE001 - fall back to the plain format below
        pass
    import traceback

    return [
        line.rstrip("\n") for line in traceback.format_exception(type(err), err, err.__traceback__)
    ]


def fail_unless(condition, message):
    if not condition:
        raise CheckFailed(message)


def passed(title, detail=""):
    """Print the one-line success message of a check."""
    print(f"\u2714 {title}" + (f": {detail}" if detail else ""))


# -- random inputs ----------------------------------------------------------------------
# Students always get seed 0, so a check says the same on every run; the kit's own tests
# sweep other seeds (``base_seed``) to show that no check passes or fails by luck.
_BASE_SEED = [0]


@contextlib.contextmanager
def base_seed(seed):
    """Run the checks inside with other random inputs (for the kit's property tests)."""
    saved, _BASE_SEED[0] = _BASE_SEED[0], int(seed)
    try:
        yield
    finally:
        _BASE_SEED[0] = saved


def seeded(seed=0):
    """Seed torch's global generator (layers draw their weights from it) and return a generator
    for the check's own inputs; both depend on the base seed."""
    seed = (_BASE_SEED[0] * 1_000_003 + seed) % 2**63
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def graded(check):
    """Decorator of every check: its random draws do not disturb the student's random state,
    it runs with gradients on even after a notebook's ``torch.set_grad_enabled(False)``, and on
    one thread: its tensors are tiny, and on a busy machine (a class graded two notebooks at a
    time) threads only wait for each other."""

    @functools.wraps(check)
    def run(*args, **kwargs):
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            with torch.random.fork_rng(devices=[]), torch.enable_grad():
                seeded(0)
                return check(*args, **kwargs)
        finally:
            torch.set_num_threads(threads)

    return run


# -- calling the student's code ---------------------------------------------------------
def first_line(err):
    text = str(err).strip().splitlines()
    return text[0][:300] if text else ""


def call(fn, what, *args, hint="", **kwargs):
    """``fn(*args, **kwargs)``; an error in it becomes a hint that names the call.

    ``hint`` is a string, or a function of the error's first line that returns one (for
    hints that fit one error only). A stub's ``NotImplementedError`` passes through
    unchanged (the student sees which function is still to write), and so does a
    ``CheckFailed`` raised on purpose.
    """
    try:
        return fn(*args, **kwargs)
    except (NotImplementedError, CheckFailed):
        raise
    except Exception as err:
        line = first_line(err)
        hint = hint(line) if callable(hint) else hint
        raise CheckFailed(
            f"{what} raised {type(err).__name__}: {line}" + (f". {hint}" if hint else "")
        ) from err


def try_build(cls, what, **kwargs):
    """Instantiate an exercise class, turning a TypeError about arguments into a hint."""
    args = ", ".join(f"{k}={v!r}" for k, v in kwargs.items())
    try:
        return cls(**kwargs)
    except TypeError as err:
        raise CheckFailed(
            f"{what}({args}) failed with TypeError: {first_line(err)}. "
            "Keep the signature given in the exercise."
        ) from err
    except (NotImplementedError, CheckFailed):
        raise
    except Exception as err:
        raise CheckFailed(f"{what}({args}) raised {type(err).__name__}: {first_line(err)}") from err


def run_forward(model, x, what):
    try:
        return model(x)
    except (NotImplementedError, CheckFailed):
        raise
    except Exception as err:
        raise CheckFailed(
            f"{what} crashed on an input of shape {tuple(x.shape)}: {first_line(err)}. "
            "Print the shape after each layer to find the one that does not fit."
        ) from err


@contextlib.contextmanager
def substituted(student, **references):
    """Let ``student`` (a function or class) use the check's ``references`` for the names given.

    A check grades one exercise: a critic step that calls the student's ``critic_loss``
    must not fail because of a bug there (check 4.1 reports that one). So, for the
    duration of the check, the names are rebound in the module (or notebook) namespace
    the student's code looks them up in, and on modules it reaches them through
    (``losses.critic_loss``); everything is put back afterwards.
    """
    # A student copy's references are the student's own functions (checks/_reference.py there):
    # nothing to swap in.
    references = {k: v for k, v in references.items() if not getattr(v, "students_own", False)}
    remote = getattr(type(student), "_ganlab_substituted", None)
    if remote is not None:  # the grader's stand-in for a student's function: swapped over there
        with remote(student, references):
            yield
        return
    spaces = [g for g in _namespaces(student) if not g.get("__name__", "").startswith("torch")]
    undo = []
    try:
        for space in spaces:
            for name, ref in references.items():
                if name in space and callable(space[name]):
                    undo.append((space, name, space[name]))
                    space[name] = ref
            for value in list(space.values()):
                if isinstance(value, types.ModuleType) and not value.__name__.startswith("torch"):
                    for name, ref in references.items():
                        old = getattr(value, name, None)
                        if callable(old) and not isinstance(old, type):
                            undo.append((vars(value), name, old))
                            setattr(value, name, ref)
        yield
    finally:
        for space, name, old in reversed(undo):
            space[name] = old


def answers(module):
    """``{name: function}`` of the functions ``module`` defines that are not the student's own:
    in the grader's ``checks/_reference.py``, the answers (a student copy's are all ``students_own``)."""
    return {
        name: value
        for name, value in vars(module).items()
        if isinstance(value, types.FunctionType)
        and value.__module__ == module.__name__
        and not name.startswith("_")
        and not getattr(value, "students_own", False)
    }


def definitions(functions):
    """Source that defines ``functions`` (of one module) again elsewhere: the module's imports,
    their definitions and those of the module's functions they use (``critic_loss`` needs ``bce``).

    The grader sends a reference this way into a student's process only once its own exercise
    has been graded there: the sandbox's copy of ``checks/_reference.py`` holds no answers.
    """
    functions = list(functions)
    if not functions:
        return ""
    tree = ast.parse(inspect.getsource(sys.modules[functions[0].__module__]))
    defs = {node.name: node for node in tree.body if isinstance(node, ast.FunctionDef)}
    body = [node for node in tree.body if isinstance(node, (ast.Import, ast.ImportFrom))]
    todo = [f.__name__ for f in functions]
    while todo:
        node = defs.pop(todo.pop(), None)  # popped: each definition once
        if node is not None:
            body.append(node)
            todo += [n.id for n in ast.walk(node) if isinstance(n, ast.Name)]
    return ast.unparse(ast.Module(sorted(body, key=lambda n: n.lineno), type_ignores=[]))


def _namespaces(obj):
    """The global namespaces of ``obj``'s Python code: a function's, or those of a class's methods."""
    functions = []
    if isinstance(obj, type):
        for klass in obj.__mro__:
            for attr in vars(klass).values():
                attr = getattr(attr, "__func__", attr)
                if hasattr(attr, "__globals__"):
                    functions.append(attr)
    else:
        functions.append(getattr(obj, "__func__", obj))
    seen, spaces = set(), []
    for fn in functions:
        space = getattr(fn, "__globals__", None)
        if space is not None and id(space) not in seen:
            seen.add(id(space))
            spaces.append(space)
    return spaces


def describe(model):
    params = sum(p.numel() for p in model.parameters())
    return f"{params:,} parameters"


def close(value, want, tol=1e-4):
    return abs(value - want) <= tol * max(1.0, abs(want))


def diagnose(value, want, variants, tol=1e-4):
    """Compare a number with the expected one and with known wrong variants.

    ``variants``: ``{hint: value}``. Returns None when ``value`` is the expected one, the
    hint of the one variant it equals, both hints joined when two variants share the value
    (the evidence cannot tell them apart), and "" when it matches nothing known.
    """
    if close(value, want, tol):
        return None
    hits = list(
        dict.fromkeys(h for h, v in variants.items() if v is not None and close(value, v, tol))
    )
    return " or ".join(hits) if len(hits) <= 2 else ""


RESHAPES = {
    "View",
    "Reshape",
    "UnsafeView",
    "Squeeze",
    "Flatten",
    "Unsqueeze",
    "Clone",
    "Select",
    "Expand",
    "Permute",
    "Transpose",
    "Contiguous",
}


def output_op(tensor):
    """Name of the last real operation that produced ``tensor`` (reshapes skipped), e.g. 'Sigmoid'."""
    node = tensor.grad_fn
    while node is not None:
        name = type(node).__name__.replace("Backward0", "").replace("Backward1", "")
        if name not in RESHAPES:
            return name
        node = node.next_functions[0][0] if node.next_functions else None
    return None
