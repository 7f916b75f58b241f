"""Chapter 5: one training step of a GAN, as two alternating updates, and the two optimizers.

1. Critic step: push D(x) up on real images and D(G(z)) down on fakes. The fakes
   are *detached*: this step must not compute gradients for the generator.
2. Generator step: push D(G(z)) up through the non-saturating loss. Only the
   generator's optimizer steps; the critic's weights stay as they are.

Each step returns detached tensors, not Python floats: ``.item()`` would make the
GPU wait for every step (the trainer logs every N steps instead).
"""

import torch

from .losses import critic_loss, generator_loss


def make_optimizers(critic, generator, lr=2e-4, betas=(0.5, 0.999), **adam_options):
    """``(opt_c, opt_g)``: an Adam over ``critic.parameters()`` and one over ``generator.parameters()``.

    Both use ``lr`` and ``betas`` (DCGAN: 2e-4 and (0.5, 0.999), Radford et al. 2016).
    Pass every other keyword argument (``adam_options``, e.g. ``fused=True`` on a GPU)
    on to both Adams unchanged. Two optimizers, never one for both networks: each
    player's update must move its own weights only. The trainer builds its
    optimizers with this function.
    """
    # BEGIN SOLUTION (notebooks/05_training.ipynb)
    opt_c = torch.optim.Adam(critic.parameters(), lr=lr, betas=betas, **adam_options)
    opt_g = torch.optim.Adam(generator.parameters(), lr=lr, betas=betas, **adam_options)
    return opt_c, opt_g
    # END SOLUTION


def critic_step(critic, generator, real, z, opt_c, real_label=1.0):
    """One update of the critic; returns ``{"loss_c", "d_real", "d_fake"}`` (detached 0-d tensors).

    ``real``: (B, C, H, W) real images in [-1, 1]; ``z``: (B, nz) latent vectors;
    ``opt_c``: the critic's optimizer (never the generator's).

    Order: zero the critic's gradients, generate fakes from ``z`` and ``detach`` them,
    score real and fake images, ``critic_loss(..., real_label)``, backward, step.
    Score them in two calls, ``critic(real)`` and ``critic(fake)``: one call on both
    (``torch.cat``) would mix their BatchNorm statistics.
    ``d_real`` / ``d_fake`` are the mean of ``sigmoid(logits)``: D(x) and D(G(z)) (not
    the fraction of logits above 0).
    Leave both networks in training mode (never switch one to eval mode, not even for a
    moment to make the fakes) and the generator trainable (no ``requires_grad_(False)``
    left behind): ``detach`` and the optimizer decide who learns.
    """
    # BEGIN SOLUTION (notebooks/05_training.ipynb)
    opt_c.zero_grad(set_to_none=True)
    fake = generator(z).detach()  # no gradient flows into the generator
    real_logits, fake_logits = critic(real), critic(fake)
    loss = critic_loss(real_logits, fake_logits, real_label)
    loss.backward()
    opt_c.step()
    return {
        "loss_c": loss.detach(),
        "d_real": torch.sigmoid(real_logits.detach()).mean(),
        "d_fake": torch.sigmoid(fake_logits.detach()).mean(),
    }
    # END SOLUTION


def generator_step(critic, generator, z, opt_g):
    """One update of the generator; returns ``{"loss_g", "d_fake_g"}`` (detached 0-d tensors).

    ``z``: (B, nz) latent vectors; ``opt_g``: the generator's optimizer.

    Order: zero the generator's gradients, score ``generator(z)`` with the critic
    (no detach here: the gradient must flow back through the critic into G),
    ``generator_loss``, backward, step ``opt_g`` only. The critic's parameters
    receive gradients too, but its optimizer must not step; it zeroes them itself.
    ``d_fake_g`` is the mean of ``sigmoid(logits)`` on these fakes. Leave both networks
    in training mode, the critic too while it scores (eval mode does not "freeze" the
    critic, it only switches its BatchNorm to running statistics: its optimizer not
    stepping is what freezes it).
    """
    # BEGIN SOLUTION (notebooks/05_training.ipynb)
    opt_g.zero_grad(set_to_none=True)
    fake_logits = critic(generator(z))
    loss = generator_loss(fake_logits)
    loss.backward()
    opt_g.step()
    return {"loss_g": loss.detach(), "d_fake_g": torch.sigmoid(fake_logits.detach()).mean()}
    # END SOLUTION
