"""The latent explorer widget, driven the way a slider in JupyterLab drives it."""

import torch

from ganlab.explorer import LatentExplorer, to_png
from ganlab.models import Generator


def _explorer():
    torch.manual_seed(0)
    return LatentExplorer(Generator(ngf=8), n_directions=3, seed=5)


def test_moving_a_slider_redraws_the_image():
    explorer = _explorer()
    before = bytes(explorer.image.value)  # ipywidgets keeps it as a memoryview
    assert before.startswith(b"\x89PNG"), "the explorer must show a PNG image from the start"
    explorer.sliders[0].value = 2.0  # what dragging the slider does: the observer redraws
    assert bytes(explorer.image.value) != before, (
        "moving a slider did not change the generated image"
    )
    z = explorer.z()
    assert torch.allclose(z, explorer.base + 2.0 * explorer.directions[0]), (
        "z must be base + slider * direction"
    )


def test_the_seed_picker_changes_the_starting_vector_and_reset_restores_it():
    explorer = _explorer()
    first_base, first_image = explorer.base.clone(), bytes(explorer.image.value)
    explorer.seed.value = 6
    assert not torch.equal(explorer.base, first_base) and bytes(explorer.image.value) != first_image
    explorer.seed.value = 5
    assert torch.equal(explorer.base, first_base), (
        "the same seed must give the same starting vector"
    )
    explorer.sliders[1].value = -1.5
    explorer.reset.click()
    assert (
        all(s.value == 0.0 for s in explorer.sliders) and bytes(explorer.image.value) == first_image
    )


def test_directions_are_orthonormal():
    d = _explorer().directions
    assert torch.allclose(d @ d.T, torch.eye(3), atol=1e-5), (
        "slider directions should be orthonormal"
    )


def test_to_png_scales_up_a_grey_image():
    png = to_png(torch.zeros(1, 1, 28, 28), upscale=2)
    from io import BytesIO

    from PIL import Image

    picture = Image.open(BytesIO(png))
    assert picture.size == (56, 56) and picture.getpixel((0, 0)) == 128, (
        "0 in [-1, 1] is mid-grey, 2x enlarged"
    )


def test_without_ipywidgets_the_explorer_shows_a_static_sweep_and_says_why(monkeypatch, capsys):
    """A kernel without ipywidgets (a plain ``pip install``): the explorer cell of notebook 06
    must still show the latent directions, as pictures, and say how to get the sliders."""
    import sys

    import IPython.display

    monkeypatch.setitem(sys.modules, "ipywidgets", None)  # `import ipywidgets` now fails
    explorer = _explorer()
    shown = []
    monkeypatch.setattr(IPython.display, "display", lambda *objs, **kw: shown.extend(objs))
    explorer._ipython_display_()
    said = capsys.readouterr().out
    assert "ipywidgets is not installed" in said and "pip install 'ipywidgets>=7.7.1'" in said, said
    (picture,) = shown
    assert isinstance(picture, IPython.display.Image) and picture.data.startswith(b"\x89PNG")
    sweep = explorer.sweep(steps=5)
    assert sweep.shape == (3 * 5, 1, 28, 28), "one row of pictures per direction"
    middle = explorer.sweep(steps=3)[1]  # slider at 0: the seed's own image
    assert torch.allclose(middle, explorer.render()[0], atol=1e-6)
    explorer.sliders[0].value = 2.0  # the settings still describe z
    assert torch.allclose(explorer.z(), explorer.base + 2.0 * explorer.directions[0])
