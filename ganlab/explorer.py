"""Chapter 6: an interactive latent explorer (ipywidgets).

Sliders move one latent vector z along a few fixed directions; a seed picker
chooses the starting vector. Every change re-runs the generator on the new z and
swaps the picture, so students see which changes of z the generator cares about.

    explorer = LatentExplorer(generator)
    explorer            # the last expression of a cell displays the widget

The directions are random orthonormal vectors (seeded): in a DCGAN's latent space
most directions change the image smoothly, and a few change the digit itself.
"""

import torch

from .latent import sample_z
from .viz import png_bytes


def to_png(images, upscale=6):
    """(1, C, H, W) in [-1, 1] -> PNG bytes, enlarged with nearest neighbour for crisp pixels."""
    return png_bytes(images[:1], nrow=1, upscale=upscale, padding=0)


class LatentExplorer:
    """Sliders over ``n_directions`` latent directions and a seed picker, redrawing live."""

    def __init__(self, generator, n_directions=4, seed=0, scale=3.0, direction_seed=1234):
        import ipywidgets as widgets  # only needed when the explorer is used

        self.generator = generator.eval()
        self.nz = generator.nz
        self.device = next(generator.parameters(), torch.zeros(0)).device  # exported graphs: cpu
        q, _ = torch.linalg.qr(
            torch.randn(
                self.nz, n_directions, generator=torch.Generator().manual_seed(direction_seed)
            )
        )
        self.directions = q.T.to(self.device)  # (n_directions, nz), orthonormal rows
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

    def redraw(self, change=None):
        if change is not None and change.get("owner") is self.seed:
            self._set_base(change["new"])
        self.image.value = to_png(self.render())

    def _ipython_display_(self):
        from IPython.display import display

        display(self.widget)
