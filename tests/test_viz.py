"""ganlab.viz: grids, curves and GIFs, checked on disk."""

import os

# The switch must be on before ganlab is imported (it fixes the package path at import);
# tests/conftest.py does the same, this keeps the file runnable on its own.
os.environ["GANLAB_SOLUTIONS"] = "1"

import imageio.v3 as iio  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

# Tiny models: one thread each. Two OpenMP threads per process on a busy 2-core machine (other
# processes, pytest -n 2) spin-wait on each other and made these steps ~100x slower.
torch.set_num_threads(1)
from matplotlib.figure import Figure  # noqa: E402

from ganlab.viz import grid_array, image_grid, plot_history, save_gif, save_grid, show_grid  # noqa: E402


def test_image_grid_maps_tanh_range_to_unit_range():
    images = torch.full((10, 1, 8, 8), -1.0)
    images[0] = 1.0
    grid = image_grid(images, nrow=5)
    # 2 rows of 5 images, 8 pixels each plus 2-pixel padding around
    assert grid.shape == (3, 2 * 10 + 2, 5 * 10 + 2), (
        f"grid shape {tuple(grid.shape)}: nrow or padding ignored?"
    )
    assert grid.min() >= 0 and grid.max() <= 1, (
        "grid values must be in [0, 1]: to_unit_range not applied?"
    )
    assert grid[:, 2:10, 2:10].min() == 1.0, "an image of +1 must be white (1.0) in the grid"
    assert grid[:, 2:10, 12:20].max() == 0.0, "an image of -1 must be black (0.0) in the grid"


def test_save_grid_writes_grey_and_colour_png(tmp_path):
    grey = save_grid(torch.rand(16, 1, 28, 28) * 2 - 1, tmp_path / "sub" / "grey.png", nrow=4)
    colour = save_grid(torch.rand(4, 3, 32, 32) * 2 - 1, tmp_path / "colour.png", nrow=2)
    assert iio.imread(grey).shape == (4 * 30 + 2, 4 * 30 + 2), (
        "grey images should give a 2-D grey PNG"
    )
    assert iio.imread(colour).shape == (2 * 34 + 2, 2 * 34 + 2, 3), (
        "colour images should give an RGB PNG"
    )


def test_show_grid_draws_grey_images_with_grey_colormap():
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots()
    try:
        show_grid(torch.zeros(4, 1, 8, 8), nrow=2, title="hello", ax=ax)
        assert ax.images[0].get_cmap().name == "gray", (
            "1-channel images must use the grey colour map"
        )
        assert not ax.axison, "show_grid should hide the axes"
        assert ax.get_title() == "hello", "the title was not set"
    finally:
        plt.close(fig)


def test_plot_history_has_two_panels_and_half_line(tmp_path):
    n = 120
    history = {
        "loss_c": list(np.linspace(1.4, 0.8, n)),
        "loss_g": list(np.linspace(0.7, 2, n)),
        "d_real": [0.7] * n,
        "d_fake": [0.3] * n,
    }
    fig = plot_history(history, tmp_path / "curves.png")
    assert isinstance(fig, Figure), "plot_history must return the matplotlib Figure"
    assert len(fig.axes) == 2, "expected two panels: losses, and D(x) / D(G(z))"
    assert (tmp_path / "curves.png").stat().st_size > 0, "curves.png was not written"
    dashed = [line for line in fig.axes[1].lines if line.get_linestyle() == "--"]
    assert dashed and set(dashed[0].get_ydata()) == {0.5}, "the D panel needs a dashed line at 0.5"


def test_save_gif_accepts_arrays_and_grids(tmp_path):
    grid = image_grid(torch.rand(4, 1, 8, 8) * 2 - 1, nrow=2)
    frames = [
        grid_array(torch.rand(4, 1, 8, 8), nrow=2),
        grid,
    ]  # grey uint8 array, then RGB grid tensor
    path = save_gif(frames, tmp_path / "a.gif", fps=5)
    stack = iio.imread(path, index=None)
    assert stack.shape[0] == 2, f"expected 2 frames in the GIF, got {stack.shape[0]}"
    with pytest.raises(ValueError, match="one size"):
        save_gif([np.zeros((4, 4), np.uint8), np.zeros((5, 5), np.uint8)], tmp_path / "b.gif")
