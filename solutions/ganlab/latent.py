"""Chapter 6: the latent space. Sampling and walking between latent vectors.

z ~ N(0, I) in nz dimensions concentrates near the sphere of radius sqrt(nz):
almost no sample lies near the origin. A straight line between two samples
(``lerp``) passes through that unlikely middle, where images often fade;
spherical interpolation (``slerp``, White 2016) keeps the norm typical.
"""

import torch


def sample_z(n, nz=100, generator=None, device=None):
    """``n`` latent vectors ~ N(0, I), shape (n, nz); pass a seeded ``torch.Generator`` to repeat them."""
    return torch.randn(n, nz, generator=generator, device=device)


def lerp(z0, z1, t):
    """Linear interpolation ``(1 - t) * z0 + t * z1``.

    ``z0``, ``z1``: (nz,) vectors; ``t``: a float or a 1-D tensor of T values in [0, 1].
    Returns (nz,) for a float ``t`` and (T, nz) for a tensor ``t`` (T = 1 too), in z0's
    dtype; ``t=0`` gives exactly ``z0`` and ``t=1`` exactly ``z1``. No Python loop over
    ``t``: broadcast. ``z0`` and ``z1`` stay as they are (no in-place operations).
    """
    # BEGIN SOLUTION (notebooks/06_latent_space.ipynb)
    t = torch.as_tensor(t, dtype=z0.dtype, device=z0.device)
    return (1 - t).unsqueeze(-1) * z0 + t.unsqueeze(-1) * z1
    # END SOLUTION


def slerp(z0, z1, t, eps=1e-7):
    """Spherical interpolation along the great circle from ``z0`` to ``z1``.

    With omega the angle between z0 and z1:
    ``slerp = sin((1 - t) * omega) / sin(omega) * z0 + sin(t * omega) / sin(omega) * z1``.
    Same shapes as ``lerp``; ``t=0`` gives z0 itself (the unit vectors only give omega).
    When z0 and z1 are (nearly) parallel, or opposite (omega = pi), ``sin(omega)`` is ~0:
    fall back to ``lerp`` where ``|sin(omega)| < eps`` instead of dividing by it.
    """
    # BEGIN SOLUTION (notebooks/06_latent_space.ipynb)
    cos = torch.dot(z0, z1) / (z0.norm() * z1.norm())
    omega = torch.arccos(cos.clamp(-1.0, 1.0))
    so = torch.sin(omega)
    if so.abs() < eps:
        return lerp(z0, z1, t)
    t = torch.as_tensor(t, dtype=z0.dtype, device=z0.device).unsqueeze(-1)
    return torch.sin((1 - t) * omega) / so * z0 + torch.sin(t * omega) / so * z1
    # END SOLUTION


def latent_grid(z0, z1, z2, rows, cols):
    """A 2-D grid of latent vectors in the plane through ``z0``, ``z1``, ``z2``.

    Entry (i, j) is ``z0 + a_i * (z1 - z0) + b_j * (z2 - z0)`` with ``a`` = ``rows``
    values evenly from 0 to 1 (down the grid) and ``b`` = ``cols`` values from 0 to 1
    (across). Returns (rows * cols, nz) in z0's dtype, in row-major order, so the corners
    are z0 (top left), z2 (top right) and z1 (bottom left). Use ``torch.linspace``.
    """
    # BEGIN SOLUTION (notebooks/06_latent_space.ipynb)
    a = torch.linspace(0, 1, rows, dtype=z0.dtype, device=z0.device).view(rows, 1, 1)
    b = torch.linspace(0, 1, cols, dtype=z0.dtype, device=z0.device).view(1, cols, 1)
    grid = z0 + a * (z1 - z0) + b * (z2 - z0)
    return grid.reshape(rows * cols, -1)
    # END SOLUTION
