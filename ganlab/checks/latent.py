"""Checks for chapter 6 (notebook 06_latent_space): walking between latent vectors.

The slerp check gives slerp the reference ``lerp`` (its parallel fallback calls it), so
that a bug in lerp costs only check 6.1.
"""

import math

import numpy as np
import torch

from . import _reference as ref
from ._core import CheckFailed, call, fail_unless, graded, passed, seeded, substituted

NO_LOOP = "no Python loop over t: broadcast it against the vectors (t.unsqueeze(-1))"


def _refuse(*args, **kwargs):
    raise CheckFailed(f"the interpolation walks through t one value at a time: {NO_LOOP}")


class _NoLoopArray(np.ndarray):
    """``t.numpy()``: an array like any other (np.asarray(t) and arithmetic on it are fine) that
    refuses to be walked through in Python too."""

    __iter__ = tolist = _refuse

    def __getitem__(self, index):
        if isinstance(index, (int, np.integer)):
            _refuse()
        return super().__getitem__(index)


class _T(torch.Tensor):
    """A 1-D ``t`` that refuses to be walked through in Python (``for``, ``t[i]``, ``tolist``).

    Turning it into something else whole is fine: ``torch.as_tensor(t)``, ``torch.tensor(t)``,
    ``np.asarray(t)``, ``t.numpy()`` (an array that refuses loops as well), ``t.to(...)``.
    """

    __iter__ = unbind = tolist = _refuse

    def numpy(self, *args, **kwargs):
        return self.as_subclass(torch.Tensor).numpy(*args, **kwargs).view(_NoLoopArray)

    def _refuse(self, *args, **kwargs):
        _refuse()

    def __getitem__(self, index):
        if isinstance(index, int) or (
            isinstance(index, torch.Tensor) and index.dim() == 0 and not index.is_floating_point()
        ):
            self._refuse()
        return super().__getitem__(index)


def _float_hint(error):
    if "dimension 0" in error:
        return (
            "a float t becomes a 0-d tensor, which has no dimension to index: t[:, None] (or "
            "t.view(len(t), 1)) fails there; t.unsqueeze(-1) (or t[..., None]) works for a float "
            "t and for a tensor t alike"
        )
    return "t may be a Python float: torch.as_tensor(t) first"


def _plain(x):
    return x.as_subclass(torch.Tensor) if isinstance(x, torch.Tensor) else x


def _close(a, b, tol=1e-5):
    return isinstance(a, torch.Tensor) and a.shape == b.shape and torch.allclose(a, b, atol=tol)


def _pair():
    g = seeded(3)
    nz = 10 + int(torch.randint(0, 20, (1,), generator=g))
    return torch.randn(nz, generator=g), torch.randn(nz, generator=g)


def _path(fn, name, z0, z1, t, **kwargs):
    """``fn(z0, z1, t)`` with ``t`` a float or a tensor of values; crashes become hints. The
    result must keep the vectors' dtype (the generator's weights are float32), and the
    vectors must come back unchanged."""
    t_before = None
    if isinstance(t, torch.Tensor):
        t_before = t.clone()
        t = t.as_subclass(_T)
        what = f"{name}(z0, z1, t) for a tensor t of {len(t)} values"
        hint = f"t may be a tensor of values: {NO_LOOP}"
    else:
        what, hint = f"{name}(z0, z1, {t})", _float_hint
    a, b = z0.clone(), z1.clone()
    out = _plain(call(fn, what, a, b, t, hint=hint, **kwargs))
    fail_unless(
        torch.equal(a, z0) and torch.equal(b, z1),
        f"{name} changed z0 or z1 in place (mul_, add_, /=): compute new tensors, the caller's "
        "vectors must stay as they are",
    )
    if t_before is not None:
        fail_unless(
            t.shape == t_before.shape and torch.equal(_plain(t), t_before),
            f"{what} changed the caller's t in place (it now has shape {tuple(t.shape)}, "
            f"not {tuple(t_before.shape)}): torch.as_tensor(t) does not copy a tensor, so "
            "t.unsqueeze_(-1) (or t *= ...) on it changes the t passed in, and the next call "
            "with the same t (slerp after lerp) gets a wrong one; no in-place operations: use "
            "t.unsqueeze(-1), which makes a new view",
        )
    fail_unless(
        not isinstance(out, torch.Tensor) or out.dtype == z0.dtype,
        f"{what} returns {out.dtype if isinstance(out, torch.Tensor) else ''} for {z0.dtype} "
        "vectors: make t with their dtype, torch.as_tensor(t, dtype=z0.dtype)",
    )
    return out


def _check_common(fn, name):
    z0, z1 = _pair()
    nz = len(z0)
    start, end = _path(fn, name, z0, z1, 0.0), _path(fn, name, z0, z1, 1.0)
    if _close(start, z1) and _close(end, z0):
        raise CheckFailed(f"{name}(z0, z1, 0) gave z1: the weights are swapped, t=0 must give z0")
    fail_unless(_close(start, z0), f"{name}(z0, z1, 0.0) must be exactly z0, with shape ({nz},)")
    fail_unless(_close(end, z1, 1e-4), f"{name}(z0, z1, 1.0) must be z1, with shape ({nz},)")
    ts = torch.linspace(0, 1, 5)
    path = _path(fn, name, z0, z1, ts)
    fail_unless(
        isinstance(path, torch.Tensor) and tuple(path.shape) == (5, nz),
        f"{name}(z0, z1, t) with 5 values of t must return shape (5, {nz}), got "
        f"{tuple(getattr(path, 'shape', ()))}: {NO_LOOP}",
    )
    fail_unless(
        _close(path[0], z0) and _close(path[-1], z1, 1e-4),
        f"{name}: the path must start at z0 and end at z1",
    )
    one = _path(fn, name, z0, z1, torch.tensor([0.5]))
    fail_unless(
        isinstance(one, torch.Tensor) and tuple(one.shape) == (1, nz),
        f"{name}(z0, z1, t) with 1 value of t must return shape (1, {nz}), got "
        f"{tuple(getattr(one, 'shape', ()))}: squeeze() drops T too when it is 1; a tensor t "
        "gives (T, nz) whatever T is",
    )
    return z0, z1, path


@graded
def check_lerp(lerp):
    """``lerp(z0, z1, t)`` = (1 - t) z0 + t z1 for a float t, or for a tensor of T values at once."""
    z0, z1, path = _check_common(lerp, "lerp")
    fail_unless(_close(path[2], (z0 + z1) / 2), "lerp at t=0.5 must be the midpoint (z0 + z1) / 2")
    fail_unless(
        _close(path[1], 0.75 * z0 + 0.25 * z1),
        "lerp at t=0.25 must be 0.75 * z0 + 0.25 * z1: (1 - t) * z0 + t * z1",
    )
    passed("lerp", "endpoints, midpoint, broadcasting over t")


def _orthonormal(nz, g):
    u = torch.randn(nz, generator=g)
    v = torch.randn(nz, generator=g)
    u = u / u.norm()
    v = v - (v @ u) * u
    return u, v / v.norm()


@graded
def check_slerp(slerp):
    """``slerp(z0, z1, t, eps)``: the great circle from z0 to z1, at constant angular speed;
    lerp where sin(omega) < eps (parallel vectors)."""
    with substituted(slerp, lerp=ref.lerp):
        _check_slerp(slerp)
    passed("slerp", "endpoints, the great circle at constant speed, parallel vectors")


def _check_slerp(slerp):
    # Two vectors of norm 3, 60 degrees apart: sin(omega) = 0.87 tells the weights apart.
    u, v = _orthonormal(12, seeded(30))
    a, b = 3 * u, 3 * (0.5 * u + math.sqrt(0.75) * v)
    start = _path(slerp, "slerp", a, b, 0.0)
    if not _close(start, a):  # _check_common says what is wrong, unless it is one of these
        if _close(start, u):
            raise CheckFailed(
                "slerp(z0, z1, 0.0) is z0 / |z0|, a unit vector: the unit vectors only give "
                "omega; weigh z0 and z1 themselves, so the path starts at z0 and keeps its norm"
            )
        if _close(start, math.sqrt(0.75) * a):
            raise CheckFailed(
                "slerp(z0, z1, 0.0) is sin(omega) * z0, not z0: divide both weights by sin(omega)"
            )
    z0, _, _ = _check_common(slerp, "slerp")
    nz = len(z0)
    g = seeded(31)
    u, v = _orthonormal(nz, g)
    ts = torch.tensor([0.0, 0.25, 0.5, 0.75, 1.0])
    results = {}
    for degrees in (90, 120, 40):
        angle = math.radians(degrees)
        a, b = 4 * u, 4 * (math.cos(angle) * u + math.sin(angle) * v)
        want = 4 * (torch.cos(ts * angle)[:, None] * u + torch.sin(ts * angle)[:, None] * v)
        got = _path(slerp, "slerp", a, b, ts)
        results[degrees] = (got, want, ref.lerp(a, b, ts))
    wrong = [d for d, (got, want, _) in results.items() if not _close(got, want, 1e-4)]
    if wrong:
        degrees = wrong[0]
        got, want, straight = results[degrees]
        pair = f"two vectors of norm 4, {degrees} degrees apart"
        if all(_close(got, line, 1e-4) for got, _, line in results.values()):
            raise CheckFailed(
                "slerp returns the straight line: that is lerp, whose norm shrinks in the "
                "middle; use the sin((1 - t) * omega) / sin(omega) weights"
            )
        if len(wrong) < len(results):
            right = sorted(set(results) - set(wrong))[0]
            raise CheckFailed(
                f"slerp is right for two vectors {right} degrees apart but not for {degrees}: "
                "omega must be the angle between them, arccos(z0 . z1 / (|z0| |z1|)), the dot "
                "product of the unit vectors"
            )
        if not bool(torch.isfinite(got).all()):
            raise CheckFailed(
                f"slerp gives NaN for {pair}: is omega = arccos(z0 . z1 / (|z0| |z1|))?"
            )
        norms = got.norm(dim=-1)
        if not torch.allclose(norms, torch.full_like(norms, 4.0), atol=1e-3):
            raise CheckFailed(
                f"between {pair}, slerp's norms are {[round(n, 3) for n in norms.tolist()]}; a "
                "great-circle path keeps the norm"
            )
        raise CheckFailed(
            f"between {pair}, slerp keeps the norm but not the speed: at t=0.25 it must be a "
            "quarter of the way along the arc (rescaling lerp is not slerp); use the "
            "sin((1 - t) * omega) / sin(omega) and sin(t * omega) / sin(omega) weights"
        )
    # Different norms: the formula weighs z0 and z1 themselves (sin(omega) = 1 at 90 degrees).
    a, b = 2 * u, 5 * v
    want = torch.cos(ts * math.pi / 2)[:, None] * a + torch.sin(ts * math.pi / 2)[:, None] * b
    fail_unless(
        _close(_path(slerp, "slerp", a, b, ts), want, 1e-4),
        "between two orthogonal vectors of norms 2 and 5, slerp is not sin((1 - t) * omega) / "
        "sin(omega) * z0 + sin(t * omega) / sin(omega) * z1: weigh z0 and z1 themselves (unit "
        "vectors only give omega), do not rescale the path",
    )
    # Parallel along an axis: the cosine is exactly 1, so only a missing fallback can give NaN.
    e = torch.zeros(nz)
    e[0] = 1.0
    same = _path(slerp, "slerp", 1.5 * e, 3 * e, 0.5)
    fail_unless(
        bool(torch.isfinite(same).all()),
        "slerp of two parallel vectors gives NaN: sin(omega) is 0 there; fall back to lerp "
        "when it is below eps",
    )
    _fallback_shape(same, (nz,), "slerp(z0, z1, 0.5)")
    fail_unless(_close(same, 2.25 * e, 1e-4), "slerp of parallel vectors must fall back to lerp")
    # Opposite along an axis: omega = pi, and sin(pi) rounds to -8.7e-8 in float32, below eps.
    opposite = _path(slerp, "slerp", 1.5 * e, -3 * e, ts)
    _fallback_shape(opposite, (len(ts), nz), "slerp(z0, z1, t) for a tensor t of 5 values")
    fail_unless(
        _close(opposite, ref.lerp(1.5 * e, -3 * e, ts), 1e-4),
        "slerp of two opposite vectors (z1 = -2 z0) must fall back to lerp too: omega = pi "
        "there, where sin(omega) is ~0 as for parallel ones; test |sin(omega)| < eps, not the "
        "cosine against 1 or omega against 0",
    )
    # Parallel in general position: rounding can put the cosine a hair above 1.
    for z in torch.randn(24, nz, generator=g):
        same = _path(slerp, "slerp", z, 3 * z, ts)
        fail_unless(
            bool(torch.isfinite(same).all()),
            "slerp of two parallel vectors gives NaN although sin(omega) = 0 falls back to lerp: "
            "rounding puts the cosine a hair above 1, and arccos of that is NaN; clamp it to "
            "[-1, 1] first",
        )
        fail_unless(
            _close(same, ref.lerp(z, 3 * z, ts), 1e-4),
            "slerp of parallel vectors must fall back to lerp",
        )
    a, b = 4 * u, 4 * v
    fail_unless(
        _close(_path(slerp, "slerp", a, b, 0.5, eps=2.0), (a + b) / 2, 1e-4),
        "slerp ignores eps: with eps=2.0 even sin(omega) = 1 is below it, so slerp must fall back "
        "to lerp; compare sin(omega) with eps",
    )


def _fallback_shape(out, shape, what):
    """The fallback's result must have the shape slerp promises (lerp's, for the t given)."""
    got = tuple(getattr(out, "shape", ()))
    fail_unless(
        got == shape,
        f"{what} of two parallel vectors (where slerp falls back to lerp) has shape {got}, "
        f"expected {shape}: pass lerp the t you were given, not t.unsqueeze(-1) (lerp adds "
        "that dimension itself); unsqueeze t after the fallback",
    )


def _grid(z0, z1, z2, a, b):
    return (z0 + a.view(-1, 1, 1) * (z1 - z0) + b.view(1, -1, 1) * (z2 - z0)).reshape(-1, len(z0))


@graded
def check_latent_grid(latent_grid):
    """``latent_grid(z0, z1, z2, rows, cols)``: the plane through three vectors, row-major, z0 top
    left, z2 top right, z1 bottom left, evenly spaced."""
    g = seeded(4)
    lin = torch.linspace
    for rows, cols, nz in ((3, 4, 8), (4, 2, 5), (1, 5, 6)):
        z0, z1, z2 = (torch.randn(nz, generator=g) for _ in range(3))
        what = f"latent_grid(z0, z1, z2, rows={rows}, cols={cols})"
        given = [z.clone() for z in (z0, z1, z2)]
        grid = call(latent_grid, what, *given, rows, cols)
        fail_unless(
            all(torch.equal(z, g) for z, g in zip((z0, z1, z2), given)),
            f"{what} changed z0, z1 or z2 in place (z1 -= z0, sub_, add_): the caller's vectors "
            "must stay as they are, or the next grid (or the picture of the corners) starts "
            "from wrong ones; compute the directions as new tensors, d1 = z1 - z0",
        )
        shape = tuple(getattr(grid, "shape", ()))
        if shape == (rows, cols, nz):
            raise CheckFailed(f"{what} has shape {shape}: flatten it to (rows * cols, nz)")
        fail_unless(
            isinstance(grid, torch.Tensor) and shape == (rows * cols, nz),
            f"{what} must return ({rows * cols}, {nz}) for {nz}-dimensional vectors, got {shape}",
        )
        fail_unless(
            grid.dtype == z0.dtype,
            f"{what} returns {grid.dtype} for {z0.dtype} vectors (the generator's weights are "
            "float32): make a and b with their dtype, torch.linspace(0, 1, n, dtype=z0.dtype), "
            "not numpy's float64 linspace",
        )
        if not bool(torch.isfinite(grid).all()):
            raise CheckFailed(
                f"{what} has NaN or infinite entries"
                + (
                    ": with one row a = [0]; arange(n) / (n - 1) divides by 0 there, "
                    "torch.linspace(0, 1, n) does not"
                    if rows == 1
                    else ""
                )
            )
        want = _grid(z0, z1, z2, lin(0, 1, rows), lin(0, 1, cols))
        if _close(grid, want):
            continue
        variants = {
            "z1 is at the top right and z2 at the bottom left: a goes down the rows towards z1, "
            "b goes across the columns towards z2": _grid(
                z0, z2, z1, lin(0, 1, rows), lin(0, 1, cols)
            ),
            "the entries are in column-major order: go along each row first, entry (i, j) is "
            "number i * cols + j": _grid(z0, z1, z2, lin(0, 1, rows), lin(0, 1, cols))
            .view(rows, cols, nz)
            .transpose(0, 1)
            .reshape(-1, nz),
            "rows and cols are swapped: a has rows values (down), b has cols values (across)": _grid(
                z0, z1, z2, lin(0, 1, cols), lin(0, 1, rows)
            ),
            "torch.arange(n) / n never reaches 1: use torch.linspace(0, 1, n)": _grid(
                z0, z1, z2, torch.arange(rows) / rows, torch.arange(cols) / cols
            ),
            "the rows run upwards: row 0 (the top) is a = 0, where z0 is, and the last row "
            "a = 1, z1 at the bottom left; a = torch.linspace(0, 1, rows), not (1, 0, rows)": _grid(
                z0, z1, z2, lin(1, 0, rows), lin(0, 1, cols)
            ),
            "the first row and column must be at a = 0 and b = 0 (z0 itself): "
            "torch.linspace(0, 1, n + 1)[1:] skips 0, use torch.linspace(0, 1, n)": _grid(
                z0, z1, z2, lin(0, 1, rows + 1)[1:], lin(0, 1, cols + 1)[1:]
            ),
        }
        hits = [hint for hint, v in variants.items() if _close(grid, v)]
        if len(hits) == 1:
            raise CheckFailed(f"{what}: {hits[0]}")
        bad = next(i for i in range(rows * cols) if not _close(grid[i], want[i]))
        raise CheckFailed(
            f"{what}: entry ({bad // cols}, {bad % cols}) is wrong; entry (i, j) is z0 + a_i (z1 - z0) "
            "+ b_j (z2 - z0), a = linspace(0, 1, rows) down, b = linspace(0, 1, cols) across, "
            "row-major"
        )
    passed("latent_grid", "corners and spacing of 3 x 4, 4 x 2 and 1 x 5 grids")
