"""The graded checks: they pass on the reference solutions, let a stub's error through, and fail
each mistake of the catalogue (tests/planted.py) exactly where they should, naming the cause."""

import io
from contextlib import redirect_stdout
from pathlib import Path

import pytest

from ganlab import checks, latent, losses, models, training
from ganlab.checks import _core

from planted import CATALOGUE, CHECK_ARGUMENT, CONSUMERS, CORRECT, install, reference

REPO = Path(__file__).resolve().parent.parent


def run_check(name, argument):
    """(passed, message) of one check; anything but CheckFailed is a bug of the check."""
    with redirect_stdout(io.StringIO()) as out:
        try:
            getattr(checks, name)(argument)
        except checks.CheckFailed as err:
            return False, str(err)
    assert "\u2714" in out.getvalue(), f"{name} passed silently; a check prints its tick line"
    return True, out.getvalue()


def run_consumers(monkeypatch, exercise, wrong):
    """Install ``wrong`` as the student's ``exercise`` and run every check that reads it."""
    install(monkeypatch, exercise, wrong)
    results = {}
    for name in CONSUMERS[exercise]:
        arg = CHECK_ARGUMENT[name]
        results[name] = run_check(name, wrong if arg == exercise else reference(arg))
    return results


def test_the_reference_solutions_are_the_installed_ones():
    assert Path(models.__file__).parent == REPO / "solutions" / "ganlab", (
        "conftest.py sets GANLAB_SOLUTIONS=1, yet ganlab.models is not solutions/ganlab/models.py"
    )


def test_every_check_is_exported_and_has_an_argument():
    exported = {n for n in checks.__all__ if n.startswith("check_")}
    assert exported == set(CHECK_ARGUMENT), (
        f"checks without an entry in planted.CHECK_ARGUMENT (or the reverse): "
        f"{sorted(exported ^ set(CHECK_ARGUMENT))}"
    )


@pytest.mark.parametrize("name", sorted(CHECK_ARGUMENT))
def test_check_passes_on_the_reference(name):
    ok, message = run_check(name, reference(CHECK_ARGUMENT[name]))
    assert ok, f"{name} fails on the reference solution: {message}"


@pytest.mark.parametrize("name", sorted(set(CHECK_ARGUMENT) - {"check_training_run"}))
def test_check_lets_a_stubs_not_implemented_error_through(name):
    def stub(*args, **kwargs):
        raise NotImplementedError("stub")

    with pytest.raises(NotImplementedError, match="^stub$"):
        getattr(checks, name)(stub)


def test_the_catalogue_covers_every_check_and_exercise():
    assert len(CATALOGUE) >= 40, f"the catalogue holds only {len(CATALOGUE)} mistakes"
    ids = [m.id for m in CATALOGUE]
    assert len(set(ids)) == len(ids), "two mistakes share an id"
    failing = {name for m in CATALOGUE for name in m.hints}
    missing = sorted(set(CHECK_ARGUMENT) - failing)
    assert not missing, f"checks that no planted mistake makes fail: {missing}"
    for m in CATALOGUE:
        assert m.hints and set(m.hints) <= set(CONSUMERS[m.exercise]), (
            f"{m.id}: its checks {sorted(m.hints)} are not among those that read "
            f"{m.exercise}: {CONSUMERS[m.exercise]}"
        )


@pytest.mark.parametrize("mistake", CATALOGUE, ids=[m.id for m in CATALOGUE])
def test_exactly_the_expected_checks_fail_and_name_the_cause(mistake, monkeypatch):
    results = run_consumers(monkeypatch, mistake.exercise, mistake.wrong)
    failed = {name for name, (ok, _) in results.items() if not ok}
    report = "\n".join(
        f"  {n}: {'passed' if ok else 'FAILED: ' + msg}" for n, (ok, msg) in results.items()
    )
    assert failed == set(mistake.hints), (
        f"{mistake.id}: expected exactly {sorted(mistake.hints)} to fail, got {sorted(failed)}:\n"
        + report
    )
    for name, texts in mistake.hints.items():
        for text in (texts,) if isinstance(texts, str) else texts:
            assert text in results[name][1], (
                f"{mistake.id}: {name}'s hint does not name the cause {text!r}:\n{results[name][1]}"
            )


@pytest.mark.parametrize(
    "exercise, right", CORRECT, ids=[f"{e}-{i}" for i, (e, _) in enumerate(CORRECT)]
)
def test_correct_variants_pass_every_check(exercise, right, monkeypatch):
    results = run_consumers(monkeypatch, exercise, right)
    failed = {n: msg for n, (ok, msg) in results.items() if not ok}
    assert not failed, f"a correct {exercise} fails: {failed}"


def test_checks_leave_the_students_random_state_and_grad_mode_alone():
    import torch

    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    torch.set_grad_enabled(False)
    try:
        with redirect_stdout(io.StringIO()):
            checks.check_critic_step(
                training.critic_step
            )  # needs gradients: grad mode is forced on
        assert not torch.is_grad_enabled(), "a check left gradients switched on"
    finally:
        torch.set_grad_enabled(True)
    assert torch.equal(torch.rand(3), expected), "a check changed the student's random state"


def test_substitution_puts_the_students_functions_back(monkeypatch):
    def wrong(real_logits, fake_logits, real_label=1.0):
        return losses.critic_loss(real_logits, fake_logits, real_label) / 2

    install(monkeypatch, "critic_loss", wrong)
    ok, message = run_check("check_critic_step", training.critic_step)
    assert ok, f"a wrong critic_loss made the critic step fail: {message}"
    assert training.critic_step.__globals__["critic_loss"] is wrong, (
        "check_critic_step did not put the student's critic_loss back"
    )
    assert losses.critic_loss is wrong
    assert latent.lerp.__module__.endswith("latent")


def test_the_loss_checks_agree_with_numbers_written_out():
    """The check's softplus formulas against values computed independently, on fixed logits."""
    import torch

    from ganlab.checks import losses as loss_checks

    real, fake = torch.tensor([2.0, -1.0, 0.5, 3.0]), torch.tensor([-2.0, 1.0, 0.0, -0.5])
    assert abs(loss_checks._bce(real, 1) + loss_checks._bce(fake, 0) - 1.1425669) < 1e-6
    assert abs(loss_checks._bce(real, 0.9) + loss_checks._bce(fake, 0) - 1.2550670) < 1e-6
    assert abs(loss_checks._bce(fake, 1) - 1.0268536) < 1e-6
    assert abs(-loss_checks._bce(fake, 0) + 0.6518534) < 1e-6


def test_a_failure_renders_as_its_hint_in_ipython():
    err = checks.CheckFailed("your critic ends with a sigmoid")
    try:
        raise err
    except checks.CheckFailed:
        lines = err._render_traceback_()
    text = "\n".join(lines)
    assert len(lines) <= 4 and "your critic ends with a sigmoid" in text and "%tb" in text, lines
    outside = "\n".join(err._render_traceback_())  # what %tb asks for later: the full traceback
    assert "Traceback" in outside and "test_checks.py" in outside, outside


def test_base_seed_changes_the_inputs_and_is_restored():
    g0 = _core.seeded(5).initial_seed()
    with _core.base_seed(7):
        g7 = _core.seeded(5).initial_seed()
    assert g0 != g7 and _core.seeded(5).initial_seed() == g0
