"""One source for each solution: the student stubs are derived from solutions/ and cannot drift."""

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from ganlab import instructor

REPO = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.skipif(
    not (REPO / "solutions" / "ganlab").is_dir(),
    reason="a student copy has no solutions/ to derive from",
)


def test_stubs_and_student_notebooks_are_derived_from_the_solutions():
    stale = instructor.stale_files(REPO)
    assert not stale, (
        "these files differ from what `make stubs` derives from solutions/ (edit the solution, "
        f"never the stub, then run `make stubs`): {stale}"
    )


def _public_api(path):
    """{qualified name: (signature, docstring)} of every def and class in a module."""
    api = {}

    def visit(node, prefix):
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.ClassDef)):
                name = prefix + child.name
                sig = ast.unparse(child.args) if isinstance(child, ast.FunctionDef) else ""
                api[name] = (sig, ast.get_docstring(child))
                visit(child, name + ".")

    visit(ast.parse(path.read_text()), "")
    return api


@pytest.mark.parametrize("module", instructor.EXERCISE_MODULES)
def test_stub_has_the_solutions_signatures_and_docstrings(module):
    solution = _public_api(REPO / "solutions" / "ganlab" / module)
    stub = _public_api(REPO / "ganlab" / module)
    assert stub.keys() == solution.keys(), (
        f"ganlab/{module} defines {sorted(stub)}, the solution {sorted(solution)}"
    )
    for name, (sig, doc) in solution.items():
        assert stub[name][0] == sig, (
            f"ganlab/{module}: {name}({stub[name][0]}) != solution's ({sig})"
        )
        assert stub[name][1] == doc, (
            f"ganlab/{module}: the docstring of {name} differs from the solution's"
        )


@pytest.mark.parametrize("module", instructor.EXERCISE_MODULES)
def test_stub_contains_no_solution_code(module):
    text = (REPO / "ganlab" / module).read_text()
    assert "BEGIN SOLUTION" not in text, f"ganlab/{module} contains a solution block"
    assert "NotImplementedError" in text, f"ganlab/{module} has no stub left"


STUB_PROBE = r"""
import inspect, json, torch
import ganlab.models as m, ganlab.losses as l, ganlab.training as t, ganlab.latent as z
calls = {
    "init_dcgan_weights": lambda: m.init_dcgan_weights(torch.nn.Conv2d(1, 1, 3)),
    "Critic.__init__": lambda: m.Critic(),
    "upsample_block": lambda: m.upsample_block(4, 2),
    "Generator.__init__": lambda: m.Generator(),
    "critic_loss": lambda: l.critic_loss(torch.zeros(2), torch.zeros(2)),
    "generator_loss": lambda: l.generator_loss(torch.zeros(2)),
    "make_optimizers": lambda: t.make_optimizers(torch.nn.Linear(1, 1), torch.nn.Linear(1, 1)),
    "critic_step": lambda: t.critic_step(None, None, None, None, None),
    "generator_step": lambda: t.generator_step(None, None, None, None),
    "lerp": lambda: z.lerp(torch.zeros(3), torch.ones(3), 0.5),
    "slerp": lambda: z.slerp(torch.zeros(3), torch.ones(3), 0.5),
    "latent_grid": lambda: z.latent_grid(torch.zeros(3), torch.ones(3), torch.ones(3), 2, 2),
}
out = {}
for name, call in calls.items():
    try:
        call()
        out[name] = "no error"
    except NotImplementedError as err:
        out[name] = str(err)
    except Exception as err:
        out[name] = f"{type(err).__name__}: {err}"
print(json.dumps(out))
"""


def test_every_stub_raises_a_message_naming_function_file_and_notebook():
    env = dict(os.environ, GANLAB_SOLUTIONS="0")
    proc = subprocess.run(
        [sys.executable, "-c", STUB_PROBE], cwd=REPO, env=env, capture_output=True, text=True
    )
    assert proc.returncode == 0, proc.stderr
    for name, message in json.loads(proc.stdout).items():
        assert message.startswith(f"{name} is not written yet"), f"stub {name}: {message!r}"
        assert "ganlab/" in message and ".py" in message, (
            f"stub {name} does not say which file: {message!r}"
        )
        notebook = message.split("(")[1].split(" explains")[0]
        assert (REPO / notebook).is_file(), (
            f"stub {name} points at {notebook}, which does not exist"
        )


def test_strip_solutions_replaces_blocks_and_keeps_everything_else():
    source = (
        'def f(x):\n    """Doc."""\n    y = 1\n    # BEGIN SOLUTION (notebooks/02_critic.ipynb)\n'
        "    return x + y\n    # END SOLUTION\n"
    )
    stub = instructor.strip_solutions(source, "ganlab/m.py")
    assert "return x + y" not in stub and '"""Doc."""' in stub and "    y = 1\n" in stub
    namespace = {}
    exec(compile(stub, "stub", "exec"), namespace)
    with pytest.raises(NotImplementedError) as raised:
        namespace["f"](1)
    assert (
        "f is not written yet: fill it in ganlab/m.py (notebooks/02_critic.ipynb explains it)"
        in str(raised.value)
    )
    complete = instructor.strip_solutions(source, "ganlab/m.py", keep_solution=True)
    assert "return x + y" in complete and "SOLUTION" not in complete
    compile(stub, "stub", "exec")


@pytest.mark.parametrize(
    "source, error",
    [
        ("# BEGIN SOLUTION\nx = 1\n", "never closed"),
        ("x = 1\n# END SOLUTION\n", "END SOLUTION without BEGIN"),
        ("# BEGIN SOLUTION\n# BEGIN SOLUTION\n# END SOLUTION\n", "inside another block"),
    ],
)
def test_malformed_solution_markers_are_reported_with_their_line(source, error):
    with pytest.raises(instructor.AuthoringError, match=error):
        instructor.strip_solutions(source, "ganlab/m.py")
