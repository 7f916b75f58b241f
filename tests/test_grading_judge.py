"""The judge (``ganlab.grading.judge``) reaches the verdict a check reaches in the notebook.

The grader re-runs each check outside the submission's process: the student's code runs
in its own process and the check sees it only through ``remote``'s wire (data and
handles). These tests run every check of every planted mistake (tests/planted.py) both
ways, in this process as a notebook would and through the judge with the student's code
in a second process, and require the same verdict and the same hint; and they show that
what the student's process sends cannot change a verdict.
"""

import io
import os
import re
import sys
from contextlib import redirect_stdout
from pathlib import Path

import pytest
import torch

from ganlab import checks, environment
from ganlab.grading import remote
from ganlab.grading.judge import Lost, Submission

from planted import CATALOGUE, CHECK_ARGUMENT, CONSUMERS, install, reference

TESTS = Path(__file__).resolve().parent

# The submission's side, as the grader starts it, minus the sandbox (tests/ on the path for
# `planted`, the student's output to a log).
SERVE = (
    "import os, sys; sys.path.insert(0, {tests!r}); from ganlab.grading.verify import serve; "
    "serve({{}}, lambda *a: None, os.open({log!r}, os.O_WRONLY | os.O_CREAT | os.O_APPEND))"
)
# Puts a planted mistake where the student's code would be, over there.
INSTALL = """
import planted
def _swap(exercise, wrong):
    module = planted.MODULE_EXERCISES.get(exercise)
    if module is None:
        return []
    original = getattr(module, exercise)
    undo = []
    for other in set(planted.MODULE_EXERCISES.values()):
        if getattr(other, exercise, None) is original:
            undo.append((other, exercise, original))
            setattr(other, exercise, wrong)
    return undo
_undo = []
"""


@pytest.fixture(scope="module")
def submission(tmp_path_factory):
    log = tmp_path_factory.mktemp("judge") / "student.log"
    argv = [sys.executable, "-c", SERVE.format(tests=str(TESTS), log=str(log))]
    sub = Submission(argv, dict(os.environ), str(TESTS))
    sub.request({"op": "notebook"})
    sub.request({"op": "run", "source": INSTALL, "name": "<install>"})
    yield sub
    sub.close()


def verdict(name, argument):
    """(passed, hint) of one check run here."""
    with redirect_stdout(io.StringIO()):
        try:
            getattr(checks, name)(argument)
        except checks.CheckFailed as err:
            return False, str(err)
    return True, ""


def judged(submission, name, expression):
    (argument,) = submission.evaluate([expression])
    return verdict(name, argument)


@pytest.mark.parametrize("name", sorted(CHECK_ARGUMENT))
def test_the_judge_passes_the_reference(submission, name):
    got = judged(submission, name, f"planted.reference({CHECK_ARGUMENT[name]!r})")
    assert got == (True, ""), f"{name} fails the reference through the judge: {got[1]}"


@pytest.mark.parametrize("index", range(len(CATALOGUE)), ids=[m.id for m in CATALOGUE])
def test_the_judge_agrees_with_the_notebook_on_every_planted_mistake(
    submission, monkeypatch, index
):
    mistake = CATALOGUE[index]
    install(monkeypatch, mistake.exercise, mistake.wrong)
    submission.request(
        {
            "op": "exec",
            "source": f"_m = planted.CATALOGUE[{index}]\n_undo = _swap(_m.exercise, _m.wrong)\n",
            "name": "<swap>",
        }
    )
    try:
        for name in CONSUMERS[mistake.exercise]:
            arg = CHECK_ARGUMENT[name]
            here = verdict(name, mistake.wrong if arg == mistake.exercise else reference(arg))
            expr = "_m.wrong" if arg == mistake.exercise else f"planted.reference({arg!r})"
            there = judged(submission, name, expr)
            assert there == here, (
                f"{mistake.id}: {name} says {here} in the notebook but {there} through the judge"
            )
    finally:
        submission.request(
            {
                "op": "exec",
                "source": "for _o, _n, _v in reversed(_undo):\n    setattr(_o, _n, _v)\n",
                "name": "<restore>",
            }
        )


# -- what the submission's process sends is data, and only data ------------------------------


def _graph(*steps):
    """A graph of one placeholder ``x`` then ``steps`` (op, target, args), returning the last."""
    none = {"~": "dict", "k": [], "v": []}
    nodes = [{"op": "placeholder", "name": "x", "target": "x", "args": [], "kwargs": none}]
    for i, (op, target, args) in enumerate(steps):
        nodes.append({"op": op, "name": f"n{i}", "target": target, "args": args, "kwargs": none})
    last = {"~": "node", "v": f"n{len(steps) - 1}"}
    nodes.append(
        {"op": "output", "name": "out", "target": "output", "args": [last], "kwargs": none}
    )
    return nodes


X = {"~": "node", "v": "x"}


@pytest.mark.parametrize(
    "step, refused",
    [
        (("call_function", ["builtins", "eval"], ["1"]), "builtins.eval"),
        (("call_function", ["builtins", "__import__"], ["os"]), "__import__"),
        (("call_function", ["os", "system"], ["true"]), "os.system"),
        (("call_function", ["torch", "load"], ["/etc/passwd"]), "torch.load"),
        (("call_function", ["torch", "from_file"], ["/etc/passwd"]), "torch.from_file"),
        (("call_function", ["_operator", "call"], [X]), "_operator.call"),
        (("call_function", ["builtins", "getattr"], [X, "__class__"]), "'__class__'"),
        (("call_method", "__reduce_ex__", [X, 2]), "__reduce_ex__"),
        (("call_method", "keys", [{"~": "dict", "k": [], "v": []}]), "non-tensor"),
        (("get_attr", "_parameters", []), "_parameters"),
    ],
)
def test_a_graph_step_outside_the_allow_list_is_refused(step, refused):
    with pytest.raises(remote.WireError, match=re.escape(refused)):
        remote.run_graph(torch.nn.Module(), _graph(step), [torch.zeros(2)], {})


def test_a_graph_of_torch_operations_runs():
    graph = _graph(
        ("call_method", "view", [X, -1]),
        ("call_function", ["torch", "tanh"], [{"~": "node", "v": "n0"}]),
        ("call_function", ["_operator", "mul"], [{"~": "node", "v": "n1"}, 2.0]),
    )
    x = torch.randn(2, 3)
    assert torch.allclose(
        remote.run_graph(torch.nn.Module(), graph, [x], {}), torch.tanh(x.view(-1)) * 2
    )


def test_module_and_optimizer_classes_are_only_torchs():
    imported = set(sys.modules)
    assert remote.torch_module_class("os:system") is None
    assert remote.torch_module_class("torch.nn.modules.conv:Conv2d") is torch.nn.Conv2d
    assert remote.torch_module_class("torch.nn.modules.conv:_ConvNd") is None
    assert remote.torch_module_class("subprocess:Popen") is None
    assert "subprocess" in imported or "subprocess" not in sys.modules, "a class name imported"
    with pytest.raises(remote.WireError):
        remote.resolve_optimizer("builtins:object")


@pytest.mark.parametrize(
    "value",
    [
        {"~": "pickle", "v": "gASVDAAAAAAAAACMAm9zlIwGc3lzdGVtlJOULg=="},
        {"~": "tensor", "dtype": "float32", "shape": [1000], "b": 0},  # 4 bytes for 1000 floats
        {"~": "tensor", "dtype": "object", "shape": [1], "b": 0},
        {"~": "ref", "v": "k99"},
        {"~": "npscalar", "dtype": "O", "v": 1},
        {"~": "float", "v": "1e999999"},
    ],
)
def test_a_malformed_value_is_a_wire_error(value):
    with pytest.raises(remote.WireError):
        remote.Codec().decode(value, [b"\0\0\0\0"])


def test_an_oversized_or_garbled_message_is_refused():
    import struct

    def reading(data):
        stream = io.BytesIO(data)

        def read_exactly(n):
            chunk = stream.read(n)
            if len(chunk) < n:
                raise EOFError
            return chunk

        return read_exactly

    with pytest.raises(remote.WireError, match="bytes"):
        remote.receive(reading(struct.pack("<I", 2**31)))
    with pytest.raises(remote.WireError, match="malformed"):
        remote.receive(reading(struct.pack("<I", 5) + b"{{{{{"))
    with pytest.raises(remote.WireError, match="sizes"):
        body = b'{"m": 1, "b": [-1]}'
        remote.receive(reading(struct.pack("<I", len(body)) + body))


def test_a_process_that_answers_garbage_is_lost_not_trusted(tmp_path):
    script = (
        "import sys, time; sys.stdin.buffer.read(4); sys.stdout.buffer.write(b'\\xff' * 64); "
        "sys.stdout.flush(); time.sleep(5)"
    )
    sub = Submission([sys.executable, "-c", script], dict(os.environ), str(tmp_path))
    try:
        with pytest.raises(Lost):
            sub.request({"op": "notebook"})
    finally:
        sub.close()


# Correct solutions written in other styles than the reference: the judge must pass them too.
HONEST_STYLES = {
    "BranchingGenerator": (
        "check_generator_output",
        """
from ganlab.models import Generator as _G
class BranchingGenerator(_G):
    def forward(self, z):
        if z.dim() == 2:  # a branch on the shape: fx's meta tracer decides it per input shape
            z = z.view(z.size(0), -1, 1, 1)
        return self.net(z)
""",
    ),
    # torchvision's v2 transforms are nn.Modules, but no layers: they travel as callables.
    "make_transform_v2": (
        "check_transform",
        """
import torch
from torchvision.transforms import v2
def make_transform_v2():
    return v2.Compose([v2.ToImage(), v2.ToDtype(torch.float32, scale=True), v2.Normalize([0.5], [0.5])])
""",
    ),
    "LoopCritic": (
        "check_critic_output",
        """
import torch
from torch import nn
from ganlab.models import Critic as _C
class LoopCritic(_C):
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.blocks = nn.ModuleList(list(self.net))
        del self.net
    def forward(self, x):
        for block in self.blocks:  # a Python loop over layers: fx unrolls it
            x = block(x)
        return torch.flatten(x)
""",
    ),
}


@pytest.mark.parametrize("name", sorted(HONEST_STYLES))
def test_the_judge_passes_correct_code_in_other_styles(submission, name):
    check, source = HONEST_STYLES[name]
    here = {}
    exec(compile(source, name, "exec"), here)
    assert verdict(check, here[name]) == (True, ""), f"{name} is not correct in the notebook"
    submission.request({"op": "exec", "source": source, "name": f"<{name}>"})
    assert judged(submission, check, name) == (True, ""), f"the judge fails {name}"


def test_the_judge_trains_a_trainer_over_there(submission, tmp_path, monkeypatch):
    """Check 5.4's argument is a Trainer: ``run.fit()`` is a call into the submission's process."""
    monkeypatch.setenv("GANLAB_QUICK", "1")
    overrides = [f"out_dir={tmp_path}", "name=judged", *environment.quick_overrides()]
    source = (  # notebook 05's config cell as the grader runs it
        "from ganlab.config import load_config\nfrom ganlab.trainer import Trainer\n"
        f"_config = load_config(preset='cpu', overrides={overrides!r})\n"
    )
    submission.request({"op": "exec", "source": source, "name": "<trainer>"})
    assert judged(submission, "check_training_run", "Trainer(_config)") == (True, "")
    assert (tmp_path / "checkpoint.pt").is_file(), "the run did not happen over there"


def run_judge(tmp_path, cell, checks, memory_mb=0):
    """The judge as the grader runs it, on one notebook: ``{check id: (status, hint)}``."""
    import base64
    import json
    import subprocess

    argv = [sys.executable, "-c", SERVE.format(tests=str(TESTS), log=str(tmp_path / "s.log"))]
    plan = {"cells": [{"id": "setup", "source": cell}], "checks": checks}
    job = {
        "todo": [["nb", plan]],
        "student": {"argv": argv, "env": dict(os.environ), "cwd": str(tmp_path)},
        "memory_mb": memory_mb,
    }
    out = subprocess.run(
        [sys.executable, "-m", "ganlab.grading.judge"],
        input=b"00" * 32 + b"\n" + json.dumps(job).encode(),
        capture_output=True,
        timeout=300,
    ).stdout.decode()
    results = {}
    for line in out.splitlines():
        kind, *fields = base64.b64decode(line.split(" ")[2]).decode().split("\x1f")
        if kind == "check":
            results[fields[0]] = (fields[1], fields[2])
    return results


def _check(id, function, arg):
    return {"id": id, "function": function, "args": [arg], "pre": "", "kwargs": {}, "run": [0]}


def test_a_dead_process_costs_its_check_only(tmp_path):
    """A student function that kills its process fails that check; the next check gets a fresh
    process and passes."""
    cell = "import os\nfrom ganlab.latent import lerp\ndef suicide(*args):\n    os._exit(3)\n"
    checks = [_check("dies", "check_lerp", "suicide"), _check("lives", "check_lerp", "lerp")]
    results = run_judge(tmp_path, cell, checks)
    assert results["dies"][0] == "failed" and "died" in results["dies"][1], results
    assert results["lives"] == ("passed", ""), results


def test_a_module_that_makes_the_judge_allocate_too_much_fails_its_check_only(tmp_path):
    """Its forward runs in the judge, which has the address-space limit of --memory-mb."""
    cell = (
        "import torch\nfrom torch import nn\nfrom ganlab.latent import lerp\n"
        "class Hog(nn.Module):\n    def forward(self, x):\n"
        "        return x.flatten(1)[:, 0] + torch.ones(2**31).sum()  # 8 GB in the judge\n"
    )
    checks = [_check("hog", "check_critic_output", "Hog"), _check("after", "check_lerp", "lerp")]
    results = run_judge(tmp_path, cell, checks, memory_mb=512)
    assert results["hog"][0] == "failed" and "memory" in results["hog"][1], results
    assert results["after"] == ("passed", ""), results
