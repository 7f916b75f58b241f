"""A class of submissions made from the reference solutions: for the tests and the benchmark.

    perfect_copy(dest)                 a student copy with every exercise done
    edit_cell / append_to              one change to such a copy
    build_benchmark_class(root, 30)    2 in 3 perfect, the rest broken in different ways

Needs an instructor's checkout (``solutions/``); ``scripts/grading_benchmark.py`` and
``tests/test_grading*.py`` both build their classes here.
"""

import shutil
from pathlib import Path

import nbformat

from .. import instructor

SIGMOID_CRITIC = """
_DcganCritic = Critic
class Critic(_DcganCritic):  # planted: a final sigmoid
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.net.append(nn.Sigmoid())
"""
MEAN_LOSS = """
_summed_loss = critic_loss
def critic_loss(real_logits, fake_logits, real_label=1.0):  # planted: averages the two terms
    return _summed_loss(real_logits, fake_logits, real_label) / 2
"""
NO_DETACH = """
def critic_step(critic, generator, real, z, opt_c, real_label=1.0):  # planted: fakes not detached
    opt_c.zero_grad()
    real_logits, fake_logits = critic(real), critic(generator(z))
    loss = critic_loss(real_logits, fake_logits, real_label)
    loss.backward()
    opt_c.step()
    return {"loss_c": loss.detach(), "d_real": torch.sigmoid(real_logits.detach()).mean(),
            "d_fake": torch.sigmoid(fake_logits.detach()).mean()}
"""
NO_TANH = """
_DcganGenerator = Generator
class Generator(_DcganGenerator):  # planted: no tanh at the end
    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.net = self.net[:-1]
"""


def perfect_copy(dest, repo=instructor.REPO):
    """A student copy with every exercise done: the reference solutions, markers stripped."""
    dest, repo = Path(dest), Path(repo)
    (dest / "ganlab").mkdir(parents=True)
    (dest / "notebooks").mkdir()
    for module in instructor.EXERCISE_MODULES:
        text = (repo / "solutions" / "ganlab" / module).read_text()
        (dest / "ganlab" / module).write_text(
            instructor.strip_solutions(text, "", keep_solution=True)
        )
    for src in sorted((repo / "solutions" / "notebooks").glob("*.ipynb")):
        nb = instructor.derive_notebook(instructor.read_notebook(src), src.name, keep_solution=True)
        nbformat.write(nb, str(dest / "notebooks" / src.name))
    return dest


def edit_cell(folder, notebook, cell_id, change):
    """Replace the source of one cell with ``change(source)``; None deletes the cell."""
    path = Path(folder, "notebooks", notebook)
    nb = nbformat.read(str(path), as_version=4)
    cells = []
    for cell in nb.cells:
        if cell.get("id") == cell_id:
            source = change(cell.source)
            if source is None:
                continue
            cell.source = source
        cells.append(cell)
    nb.cells = cells
    nbformat.write(nb, str(path))


def append_to(folder, module, text):
    path = Path(folder, "ganlab", module)
    path.write_text(path.read_text() + text)


def build_benchmark_class(root, size=30):
    """A class for timing ``ganlab grade`` on every notebook: 2 in 3 perfect, the rest broken."""
    root = Path(root)
    broken = [
        lambda f: append_to(f, "models.py", SIGMOID_CRITIC),
        lambda f: append_to(f, "models.py", NO_TANH),
        lambda f: append_to(f, "losses.py", MEAN_LOSS),
        lambda f: append_to(f, "training.py", NO_DETACH),
        lambda f: append_to(
            f, "latent.py", "\n_lerp = lerp\ndef lerp(z0, z1, t):\n    return _lerp(z1, z0, t)\n"
        ),
        lambda f: edit_cell(
            f, "01_data.ipynb", "ex-1-2", lambda src: src.replace(".clamp(0, 1)", "")
        ),
        lambda f: edit_cell(
            f, "00_setup.ipynb", "ex-0-1", lambda src: src.replace("p.numel()", "1")
        ),
        lambda f: shutil.rmtree(f / "ganlab"),  # notebooks done, modules never written
        lambda f: shutil.rmtree(f / "notebooks"),
        lambda f: (f / "ganlab" / "losses.py").write_text("def critic_loss(:\n"),
    ]
    for i in range(size):
        folder = perfect_copy(root / f"student{i:02d}")
        if i % 3 == 2:
            broken[(i // 3) % len(broken)](folder)
    return root
