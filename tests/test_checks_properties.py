"""No check passes or fails by luck: the reference passes, and every mistake whose detection
depends on random inputs is caught with the same hint, whatever the seed (and so whatever
the sizes and values the checks draw from it); the checks' own formulas agree with PyTorch.

The seeds are drawn reproducibly (the same on every run); for a deeper sweep with fresh
seeds, ``GANLAB_CHECK_SEEDS=50 pytest tests/test_checks_properties.py`` (50 per mistake).
"""

import io
import os
from contextlib import redirect_stdout

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from torch import nn

from ganlab import checks
from ganlab.checks import _core
from ganlab.checks import models as model_checks
from ganlab.checks.generator import DECONV_CASES, DECONV_MISTAKES

from planted import CATALOGUE, CHECK_ARGUMENT, install, reference

SEEDS = st.integers(min_value=1, max_value=2**31 - 1)
DEEP = int(os.environ.get("GANLAB_CHECK_SEEDS", "0"))
SWEEP = {"deadline": None, "derandomize": not DEEP}
# Checks that draw random inputs (weights, logits, latent vectors, eps): where luck could hide.
RANDOM = {
    "check_init",
    "check_critic_output",
    "check_generator_output",
    "check_critic_loss",
    "check_generator_loss",
    "check_saturating_loss",
    "check_critic_step",
    "check_generator_step",
    "check_lerp",
    "check_slerp",
    "check_latent_grid",
    "check_gradient_penalty",
}
LUCKY = [m for m in CATALOGUE if set(m.hints) & RANDOM]


def _run(name, argument):
    with redirect_stdout(io.StringIO()):
        try:
            getattr(checks, name)(argument)
        except checks.CheckFailed as err:
            return str(err)
    return None


@settings(max_examples=DEEP or 8, **SWEEP)
@given(seed=SEEDS)
def test_the_reference_passes_every_check_for_any_seed(seed):
    with _core.base_seed(seed):
        failed = {n: _run(n, reference(a)) for n, a in CHECK_ARGUMENT.items()}
    failed = {n: msg for n, msg in failed.items() if msg is not None}
    assert not failed, f"with base seed {seed} the reference fails: {failed}"


@pytest.mark.parametrize("mistake", LUCKY, ids=[m.id for m in LUCKY])
@settings(
    max_examples=DEEP or 4, suppress_health_check=[HealthCheck.function_scoped_fixture], **SWEEP
)
@given(seed=SEEDS)
def test_a_mistake_is_caught_with_its_hint_for_any_seed(mistake, seed, monkeypatch):
    install(monkeypatch, mistake.exercise, mistake.wrong)
    with _core.base_seed(seed):
        for name, texts in mistake.hints.items():
            message = _run(name, mistake.wrong)
            assert message is not None, f"{mistake.id}: {name} passes with base seed {seed}"
            for text in (texts,) if isinstance(texts, str) else texts:
                assert text in message, f"{mistake.id}, base seed {seed}: {name} says {message}"


@settings(max_examples=60, **SWEEP)
@given(n=st.integers(1, 70), k=st.integers(1, 8), s=st.integers(1, 4), p=st.integers(0, 3))
def test_the_size_formulas_are_pytorchs(n, k, s, p):
    if n + 2 * p >= k:
        out = nn.Conv2d(1, 1, k, s, p)(torch.zeros(1, 1, n, n)).shape[-1]
        assert model_checks.conv_size(n, k, s, p) == out
    if p < k and (n - 1) * s - 2 * p + k > 0:
        out = nn.ConvTranspose2d(1, 1, k, s, p)(torch.zeros(1, 1, n, n)).shape[-1]
        assert model_checks.deconv_size(n, k, s, p) == out


@pytest.mark.parametrize(
    "cases, right, mistakes",
    [
        (model_checks.CONV_CASES, model_checks.conv_size, model_checks.CONV_MISTAKES),
        (DECONV_CASES, model_checks.deconv_size, DECONV_MISTAKES),
    ],
    ids=["conv", "deconv"],
)
def test_every_size_mistake_is_told_apart_by_the_cases(cases, right, mistakes):
    """A diagnosis must be unambiguous: no two known mistakes (with different hints) give the same
    answers on every case, and none gives the right answer on every case."""
    answers = {}
    for hint, f in mistakes:
        got = tuple(f(*c) for c in cases)
        assert got != tuple(right(*c) for c in cases), f"the cases cannot catch: {hint}"
        assert answers.get(got, hint) == hint, (
            f"the cases cannot tell {hint!r} from {answers[got]!r}"
        )
        answers[got] = hint


@settings(max_examples=20, **SWEEP)
@given(seed=SEEDS, t=st.lists(st.floats(0, 1), min_size=1, max_size=7), nz=st.integers(2, 40))
def test_the_no_loop_t_is_a_plain_tensor_to_broadcasting_code(seed, t, nz):
    from ganlab import latent
    from ganlab.checks.latent import _T

    g = torch.Generator().manual_seed(seed)
    z0, z1 = torch.randn(nz, generator=g), torch.randn(nz, generator=g)
    ts = torch.tensor(t)
    for fn in (latent.lerp, latent.slerp):
        got = fn(z0, z1, ts.as_subclass(_T)).as_subclass(torch.Tensor)
        assert torch.allclose(got, fn(z0, z1, ts), atol=1e-6), fn.__name__
