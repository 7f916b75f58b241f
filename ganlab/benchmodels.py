"""The benchmark models of an earlier course labwork, for comparison with DCGAN.

Choose them with ``model: resize-conv`` in a training config (``ganlab/configs/resize-conv.yaml``;
the labwork called them "seed004", a name still accepted). They differ from the
DCGAN of chapters 2-3 in instructive ways:

* the critic uses 3x3 convolutions, dropout instead of BatchNorm, and ends with a
  ``Linear`` layer on the flattened features;
* the generator starts with a ``Linear`` projection and upsamples by nearest-neighbour
  resizing followed by a 3x3 convolution (no transposed convolutions, so no
  checkerboard artefacts), and finishes with a 1x1 convolution.

Same interface as ``ganlab.models``: the critic maps (B, C, H, W) in [-1, 1] to (B,)
logits, the generator maps (B, nz) to (B, C, H, W) in [-1, 1]. Weights keep PyTorch's
default initialisation, as in the labwork.
"""

from torch import nn


def check_size(image_size):
    """Raise ValueError unless both networks can be built for ``image_size``."""
    if image_size % 4:
        raise ValueError(
            f"the resize-conv models need an image_size divisible by 4 (e.g. 28, 32), got {image_size}"
        )


class DropoutCritic(nn.Module):
    """Three blocks of 3x3 conv (32, 64, 96 channels) + LeakyReLU(0.2) + Dropout(0.25), then a linear logit.

    The first two blocks have stride 2, so a 28x28 image ends as 96 maps of 7x7.
    """

    def __init__(self, channels=1, image_size=28, dropout=0.25):
        super().__init__()
        check_size(image_size)
        self.channels, self.image_size = channels, image_size
        layers, in_ch = [], channels
        for out_ch, stride in ((32, 2), (64, 2), (96, 1)):
            layers += [
                nn.Conv2d(in_ch, out_ch, 3, stride=stride, padding=1),
                nn.LeakyReLU(0.2, inplace=True),
                nn.Dropout(dropout),
            ]
            in_ch = out_ch
        side = image_size // 4
        self.net = nn.Sequential(*layers, nn.Flatten(), nn.Linear(96 * side * side, 1))

    def forward(self, x):
        return self.net(x).view(-1)  # (B, 1) -> (B,) logits, no sigmoid


class ResizeConvGenerator(nn.Module):
    """Linear nz -> 256 maps of (size/4)^2, then two (upsample x2 + 3x3 conv) blocks, 1x1 conv, tanh."""

    def __init__(self, nz=100, channels=1, image_size=28):
        super().__init__()
        check_size(image_size)
        self.nz, self.channels, self.image_size = nz, channels, image_size
        side = image_size // 4

        def up(in_ch, out_ch):  # double H and W, then mix neighbours with a 3x3 convolution
            return [
                nn.Upsample(scale_factor=2, mode="nearest"),
                nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False),
                nn.BatchNorm2d(out_ch),
                nn.ReLU(inplace=True),
            ]

        self.net = nn.Sequential(
            # No bias before BatchNorm: it would be subtracted again with the mean.
            nn.Linear(nz, 256 * side * side, bias=False),
            nn.Unflatten(1, (256, side, side)),
            nn.BatchNorm2d(256),
            nn.ReLU(inplace=True),
            *up(256, 128),
            *up(128, 64),
            nn.Conv2d(64, channels, 1),
            nn.Tanh(),
        )

    def forward(self, z):
        return self.net(z.view(z.size(0), -1))
