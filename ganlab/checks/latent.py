"""Checks for chapter 6 (notebook 06_latent_space): walking between latent vectors."""

import torch

from ._core import CheckFailed, fail_unless, passed, seeded


def _pair(nz=16):
    g = seeded(3)
    return torch.randn(nz, generator=g), torch.randn(nz, generator=g)


def _close(a, b, tol=1e-5):
    return isinstance(a, torch.Tensor) and a.shape == b.shape and torch.allclose(a, b, atol=tol)


def _check_common(fn, name):
    z0, z1 = _pair()
    start, end = fn(z0, z1, 0.0), fn(z0, z1, 1.0)
    if _close(start, z1) and _close(end, z0):
        raise CheckFailed(f"{name}(z0, z1, 0) gave z1: the weights are swapped, t=0 must give z0")
    fail_unless(
        _close(start, z0), f"{name}(z0, z1, 0.0) must be exactly z0 with shape {tuple(z0.shape)}"
    )
    fail_unless(_close(end, z1, 1e-4), f"{name}(z0, z1, 1.0) must be z1")
    ts = torch.linspace(0, 1, 5)
    try:
        path = fn(z0, z1, ts)
    except RuntimeError as err:
        raise CheckFailed(
            f"{name}(z0, z1, t) crashed for a tensor t of 5 values ({err}): broadcast t against "
            "the vectors with t.unsqueeze(-1)"
        ) from err
    fail_unless(
        isinstance(path, torch.Tensor) and tuple(path.shape) == (5, 16),
        f"{name}(z0, z1, t) with 5 values of t must return shape (5, 16), got "
        f"{tuple(getattr(path, 'shape', ()))}: broadcast t against the vectors (t.unsqueeze(-1))",
    )
    fail_unless(
        _close(path[0], z0) and _close(path[-1], z1, 1e-4),
        f"{name}: the path must start at z0 and end at z1",
    )
    return z0, z1, path


def check_lerp(lerp):
    z0, z1, path = _check_common(lerp, "lerp")
    fail_unless(_close(path[2], (z0 + z1) / 2), "lerp at t=0.5 must be the midpoint (z0 + z1) / 2")
    passed("lerp", "endpoints, midpoint, broadcasting over t")


def check_slerp(slerp):
    z0, z1, path = _check_common(slerp, "slerp")
    u, v = z0 / z0.norm() * 4, z1 / z1.norm() * 4  # equal norms: slerp must keep the norm
    norms = slerp(u, v, torch.linspace(0, 1, 5)).norm(dim=-1)
    if norms[2] < 3.9 and torch.allclose(slerp(u, v, 0.5), (u + v) / 2, atol=1e-5):
        raise CheckFailed(
            "slerp returns the straight-line midpoint: that is lerp, whose norm shrinks in the "
            "middle; use the sin((1 - t) * omega) / sin(omega) weights"
        )
    fail_unless(
        torch.allclose(norms, torch.full_like(norms, 4.0), atol=1e-3),
        f"between two vectors of norm 4, slerp's norms are {[round(n, 3) for n in norms.tolist()]}; "
        "a great-circle path keeps the norm",
    )
    same = slerp(z0, z0 * 2, 0.5)
    fail_unless(
        bool(torch.isfinite(same).all()),
        "slerp of two parallel vectors gives NaN: sin(omega) is 0 "
        "there; fall back to lerp when it is below eps",
    )
    fail_unless(_close(same, 1.5 * z0, 1e-4), "slerp of parallel vectors must fall back to lerp")
    passed("slerp", "endpoints, constant norm, parallel vectors")


def check_latent_grid(latent_grid):
    g = seeded(4)
    z0, z1, z2 = (torch.randn(8, generator=g) for _ in range(3))
    grid = latent_grid(z0, z1, z2, 3, 4)
    fail_unless(
        isinstance(grid, torch.Tensor) and tuple(grid.shape) == (12, 8),
        f"latent_grid(z0, z1, z2, rows=3, cols=4) must return (12, 8), got {tuple(getattr(grid, 'shape', ()))}",
    )
    fail_unless(_close(grid[0], z0), "the top-left entry must be z0")
    if _close(grid[3], z1) and _close(grid[8], z2):
        raise CheckFailed(
            "z1 is at the top right and z2 at the bottom left: a goes down the rows towards z1, "
            "b goes across the columns towards z2"
        )
    fail_unless(_close(grid[3], z2), "the top-right entry (row 0, last column) must be z2")
    fail_unless(
        _close(grid[8], z1),
        "the bottom-left entry (last row, column 0) must be z1 (row-major order)",
    )
    fail_unless(
        _close(grid[11], z1 + z2 - z0), "the bottom-right entry must be z0 + (z1 - z0) + (z2 - z0)"
    )
    fail_unless(
        _close(grid[5], z0 + 0.5 * (z1 - z0) + (z2 - z0) / 3),
        "entry (1, 1) must be z0 + a_1 (z1 - z0) + b_1 (z2 - z0) with evenly spaced a and b",
    )
    passed("latent_grid", "corners and spacing of a 3 x 4 grid")
