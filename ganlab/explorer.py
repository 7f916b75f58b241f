"""Chapter 6: an interactive latent explorer (ipywidgets).

Sliders move one latent vector z along a few fixed directions; a seed picker
chooses the starting vector. Every change re-runs the generator on the new z and
swaps the picture, so students see which changes of z the generator cares about.

    explorer = LatentExplorer(generator)
    explorer            # the last expression of a cell displays the widget

The directions are random orthonormal vectors (seeded): in a DCGAN's latent space
most directions change the image smoothly, and a few change the digit itself.

Without ipywidgets (a kernel whose environment lacks it: the kit installed with
``--no-deps``, a hand-made conda environment) the explorer still works, without
sliders: displaying it shows the same walks as a static picture, one row per
direction (``sweep``), and says how to get the sliders.
"""

import torch

from .latent import sample_z
from .viz import png_bytes

WIDGETS = "ipywidgets>=7.7.1"  # what the sliders need (Colab ships 7.7.1)
SWEEP_STEPS = 7  # pictures per direction in the static sweep


def to_png(images, upscale=6):
    """(1, C, H, W) in [-1, 1] -> PNG bytes, enlarged with nearest neighbour for crisp pixels."""
    return png_bytes(images[:1], nrow=1, upscale=upscale, padding=0)


def _widgets():
    """The ipywidgets module, or None where it is not installed."""
    try:
        import ipywidgets
    except ImportError:
        return None
    return ipywidgets


class _Setting:
    """What stands in for a slider without ipywidgets: a value, nothing to drag."""

    def __init__(self, value):
        self.value = value


class LatentExplorer:
    """Sliders over ``n_directions`` latent directions and a seed picker, redrawing live."""

    def __init__(self, generator, n_directions=4, seed=0, scale=3.0, direction_seed=1234):
        self.generator = generator.eval()
        self.nz = generator.nz
        self.scale = scale
        self.device = next(generator.parameters(), torch.zeros(0)).device  # exported graphs: cpu
        q, _ = torch.linalg.qr(
            torch.randn(
                self.nz, n_directions, generator=torch.Generator().manual_seed(direction_seed)
            )
        )
        self.directions = q.T.to(self.device)  # (n_directions, nz), orthonormal rows
        widgets = _widgets()
        if widgets is None:  # no sliders: the same settings, shown as a static sweep
            self.widget = None
            self.sliders = [_Setting(0.0) for _ in range(n_directions)]
            self.seed = _Setting(seed)
            self._set_base(seed)
            return
        self.sliders = [
            widgets.FloatSlider(
                value=0.0,
                min=-scale,
                max=scale,
                step=0.1,
                description=f"direction {i + 1}",
                continuous_update=True,
            )
            for i in range(n_directions)
        ]
        self.seed = widgets.BoundedIntText(value=seed, min=0, max=2**31 - 1, description="seed")
        self.reset = widgets.Button(description="reset sliders")
        self.image = widgets.Image(
            format="png", layout=widgets.Layout(width="224px", height="224px")
        )
        self.image.add_class("ganlab-explorer-image")
        for control in (*self.sliders, self.seed):
            control.observe(self.redraw, names="value")
        self.reset.on_click(self._reset)
        self.widget = widgets.HBox(
            [self.image, widgets.VBox([*self.sliders, self.seed, self.reset])]
        )
        self._set_base(seed)
        self.redraw()

    def _set_base(self, seed):
        self.base = sample_z(1, self.nz, generator=torch.Generator().manual_seed(int(seed))).to(
            self.device
        )

    def _reset(self, _button=None):
        for slider in self.sliders:
            slider.value = 0.0

    def z(self):
        """The latent vector the controls describe: base(seed) + sum of slider * direction."""
        alphas = torch.tensor([s.value for s in self.sliders], device=self.device)
        return self.base + alphas @ self.directions

    @torch.no_grad()
    def render(self):
        """The current image, (1, C, H, W) in [-1, 1]."""
        return self.generator(self.z())

    @torch.no_grad()
    def sweep(self, steps=SWEEP_STEPS):
        """Each direction walked from -scale to +scale: (n_directions * steps, C, H, W), row by row."""
        alphas = torch.linspace(-self.scale, self.scale, steps, device=self.device)
        z = self.base + alphas[None, :, None] * self.directions[:, None, :]  # (n, steps, nz)
        return self.generator(z.reshape(-1, self.nz))

    def redraw(self, change=None):
        if change is not None and change.get("owner") is self.seed:
            self._set_base(change["new"])
        self.image.value = to_png(self.render())

    def _ipython_display_(self):
        from IPython.display import Image, display

        if self.widget is not None:
            display(self.widget)
            return
        from .environment import advice

        print(
            f"No sliders: ipywidgets is not installed. {advice([WIDGETS])} Then restart the "
            f"kernel. Meanwhile, each row walks one direction from -{self.scale:g} to "
            f"+{self.scale:g} (the middle column is the seed's image):"
        )
        display(Image(png_bytes(self.sweep(), nrow=SWEEP_STEPS, upscale=2)))
