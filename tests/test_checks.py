"""The graded checks: they pass on the reference solutions and catch each planted mistake by name."""

from pathlib import Path

import nbformat
import pytest

from ganlab import checks, latent, losses, models, training

from planted import PLANTED

REPO = Path(__file__).resolve().parent.parent


def notebook_exercise(notebook, cell_id):
    """Execute a solution notebook's exercise cell and return its namespace (the one source of it)."""
    nb = nbformat.read(str(REPO / "solutions" / "notebooks" / notebook), as_version=4)
    cell = next((c for c in nb.cells if c.get("id") == cell_id), None)
    assert cell is not None, f"{notebook} has no cell with id {cell_id!r}"
    namespace = {}
    exec(compile(cell.source, f"{notebook}:{cell_id}", "exec"), namespace)
    return namespace


REFERENCE = {
    "check_transform": lambda: notebook_exercise("01_data.ipynb", "ex-1-1")["make_transform"],
    "check_scaling": lambda: notebook_exercise("01_data.ipynb", "ex-1-2")["to_display"],
    "check_count_parameters": lambda: notebook_exercise("00_setup.ipynb", "ex-0-1")[
        "count_parameters"
    ],
    "check_conv_out_size": lambda: notebook_exercise("02_critic.ipynb", "ex-2-1")["conv_out_size"],
    "check_deconv_out_size": lambda: notebook_exercise("03_generator.ipynb", "ex-3-1")[
        "deconv_out_size"
    ],
    "check_init": lambda: models.init_dcgan_weights,
    "check_critic_architecture": lambda: models.Critic,
    "check_critic_output": lambda: models.Critic,
    "check_upsample_block": lambda: models.upsample_block,
    "check_generator_output": lambda: models.Generator,
    "check_generator_architecture": lambda: models.Generator,
    "check_critic_loss": lambda: losses.critic_loss,
    "check_generator_loss": lambda: losses.generator_loss,
    "check_saturating_loss": lambda: notebook_exercise("04_losses.ipynb", "ex-4-3")[
        "saturating_generator_loss"
    ],
    "check_optimizers": lambda: training.make_optimizers,
    "check_critic_step": lambda: training.critic_step,
    "check_generator_step": lambda: training.generator_step,
    "check_lerp": lambda: latent.lerp,
    "check_slerp": lambda: latent.slerp,
    "check_latent_grid": lambda: latent.latent_grid,
}


def test_the_reference_solutions_are_the_installed_ones():
    assert Path(models.__file__).parent == REPO / "solutions" / "ganlab", (
        "conftest.py sets GANLAB_SOLUTIONS=1, yet ganlab.models is not solutions/ganlab/models.py"
    )


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_check_passes_on_the_reference(name, capsys):
    getattr(checks, name)(REFERENCE[name]())
    assert "\u2714" in capsys.readouterr().out, (
        f"{name} passed silently; a check prints its tick line"
    )


@pytest.mark.parametrize("name", sorted(REFERENCE))
def test_check_lets_a_stubs_not_implemented_error_through(name):
    def stub(*args, **kwargs):
        raise NotImplementedError("stub")

    with pytest.raises(NotImplementedError):
        getattr(checks, name)(stub)


def test_every_check_has_a_planted_mistake():
    covered = {name for name, _, _ in PLANTED}
    missing = sorted(set(REFERENCE) - covered)
    assert not missing, f"checks without a planted mistake: {missing}"


@pytest.mark.parametrize(
    "name, wrong, hint", PLANTED, ids=[f"{n}-{i}" for i, (n, _, _) in enumerate(PLANTED)]
)
def test_check_names_the_cause_of_a_planted_mistake(name, wrong, hint):
    with pytest.raises(checks.CheckFailed) as failure:
        getattr(checks, name)(wrong)
    assert hint in str(failure.value), (
        f"{name} failed on the planted mistake, but its message does not name the cause {hint!r}:\n"
        f"{failure.value}"
    )
