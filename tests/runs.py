"""Tiny training runs for the tests: configs that train a few steps in well under a second."""

import torch

from ganlab.config import TrainConfig


def tiny(tmp_path, name="run", **overrides):
    """A config small enough to train a few steps in well under a second."""
    values = dict(
        name=name,
        out_dir=str(tmp_path / name),
        ngf=8,
        ndf=8,
        batch_size=16,
        steps=6,
        sample_every=3,
        checkpoint_every=3,
        log_every=2,
        progress=False,
    )
    values.update(overrides)
    return TrainConfig.from_dict(values)


def weights(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def assert_same_weights(a, b, what):
    for key in a:
        assert torch.equal(a[key], b[key]), f"{what}: {key} differs"
