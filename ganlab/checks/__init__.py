"""The graded checks that the notebooks call, one module per chapter.

Every check takes the student's function or class as its argument, runs it on
small fixed inputs, and either prints one line starting with a tick or raises
``CheckFailed`` (an ``AssertionError``) whose message names the likely cause.
A ``NotImplementedError`` from an unfinished stub is let through unchanged, so a
student sees which function is still to write.

Checks never import the exercises themselves: the notebook passes them in, which
lets the same check grade a function defined in a notebook cell.
"""

from ._core import CheckFailed, passed
from .data import check_count_parameters, check_scaling, check_transform
from .further import check_gradient_penalty
from .generator import (
    check_deconv_out_size,
    check_generator_architecture,
    check_generator_output,
    check_upsample_block,
)
from .latent import check_latent_grid, check_lerp, check_slerp
from .losses import check_critic_loss, check_generator_loss, check_saturating_loss
from .models import check_conv_out_size, check_critic_architecture, check_critic_output, check_init
from .training import check_critic_step, check_generator_step, check_optimizers, check_training_run

__all__ = [
    "CheckFailed",
    "passed",
    "check_scaling",
    "check_transform",
    "check_count_parameters",
    "check_conv_out_size",
    "check_deconv_out_size",
    "check_init",
    "check_critic_architecture",
    "check_critic_output",
    "check_upsample_block",
    "check_generator_output",
    "check_generator_architecture",
    "check_critic_loss",
    "check_generator_loss",
    "check_saturating_loss",
    "check_optimizers",
    "check_critic_step",
    "check_generator_step",
    "check_training_run",
    "check_lerp",
    "check_slerp",
    "check_latent_grid",
    "check_gradient_penalty",
]
