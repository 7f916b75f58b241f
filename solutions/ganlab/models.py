"""Chapters 2 and 3: the DCGAN critic and generator (Radford et al. 2016).

The DCGAN rules the exercises follow:

* no pooling: the critic downsamples with stride-2 convolutions, the generator
  upsamples with stride-2 transposed convolutions (or upsample + conv, Odena et al. 2016);
* BatchNorm in both networks, with its learned scale and shift (the default
  ``affine=True``), except on the critic's input layer and the generator's output layer;
* LeakyReLU(0.2) in the critic, ReLU in the generator, tanh on the generator's output;
* weights drawn from N(0, 0.02).

Both networks are sized by ``dcgan_schedule``: a 28x28 image is 7x7 doubled twice,
a 64x64 image is 4x4 doubled four times.
"""

from torch import nn

UPSAMPLE_MODES = ("transposed", "nearest")


def dcgan_schedule(image_size):
    """Return ``(n_blocks, base)`` with ``image_size == base * 2**n_blocks`` and 4 <= base <= 7.

    The critic halves the image ``n_blocks`` times down to ``base`` x ``base``; the
    generator starts at ``base`` x ``base`` and doubles it ``n_blocks`` times.
    """
    size, n_blocks = int(image_size), 0
    while size > 7 and size % 2 == 0:
        size, n_blocks = size // 2, n_blocks + 1
    if not 4 <= size <= 7 or n_blocks == 0:
        raise ValueError(
            f"image_size={image_size} is not supported: it must be 4..7 times a power of two "
            "(e.g. 28, 32, 64), so that stride-2 layers halve it exactly."
        )
    return n_blocks, size


def init_dcgan_weights(module):
    """Initialise one module the DCGAN way; use it as ``model.apply(init_dcgan_weights)``.

    * ``Conv2d``, ``ConvTranspose2d`` and ``Linear`` weights ~ N(0, 0.02), biases 0;
    * ``BatchNorm2d`` scale (weight) ~ N(1, 0.02), shift (bias) 0;
    * every other module is left alone.

    Do not re-create the layers or return anything: change the tensors in place
    with ``torch.nn.init`` functions.
    """
    # BEGIN SOLUTION (notebooks/02_critic.ipynb)
    if isinstance(module, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
        nn.init.normal_(module.weight, 0.0, 0.02)
        if module.bias is not None:
            nn.init.zeros_(module.bias)
    elif isinstance(module, nn.BatchNorm2d):
        nn.init.normal_(module.weight, 1.0, 0.02)
        nn.init.zeros_(module.bias)
    # END SOLUTION


class Critic(nn.Module):
    """The DCGAN critic (discriminator): images -> one logit per image.

    Input ``x``: (B, channels, image_size, image_size), values in [-1, 1].
    Output: (B,) raw scores (logits). Do NOT end with a sigmoid (nor a tanh, nor a
    logsigmoid: logits are unbounded): the losses use ``binary_cross_entropy_with_logits``,
    which applies it in a numerically safe way.

    Build ``self.net`` from ``n_blocks, base = dcgan_schedule(image_size)``, with every
    layer below a module in it (``nn.LeakyReLU``, not ``F.leaky_relu`` in ``forward``):

    * ``n_blocks`` blocks, each ``Conv2d(kernel_size=4, stride=2, padding=1)`` (halves
      H and W), then ``BatchNorm2d`` (not in the first block: it would normalise away
      the input's statistics), then ``LeakyReLU(0.2)``, then ``Dropout2d(dropout)``
      if ``dropout > 0``; channels go ``ndf, 2*ndf, 4*ndf, ...``;
    * a final ``Conv2d(last_channels, 1, kernel_size=base)`` that maps the
      base x base map to a single value.

    No pooling layers and no ``Linear`` layers. ``forward`` returns shape (B,) and stays
    differentiable in ``x`` (no ``detach``, no ``torch.no_grad()``): the generator learns
    through the critic.
    """

    def __init__(self, channels=1, image_size=28, ndf=64, dropout=0.0):
        super().__init__()
        self.channels, self.image_size = channels, image_size
        # BEGIN SOLUTION (notebooks/02_critic.ipynb)
        n_blocks, base = dcgan_schedule(image_size)
        layers, in_ch = [], channels
        for i in range(n_blocks):
            out_ch = ndf * 2**i
            # A bias is redundant before BatchNorm, which subtracts the mean.
            layers.append(nn.Conv2d(in_ch, out_ch, 4, stride=2, padding=1, bias=(i == 0)))
            if i > 0:
                layers.append(nn.BatchNorm2d(out_ch))
            layers.append(nn.LeakyReLU(0.2, inplace=True))
            if dropout > 0:
                layers.append(nn.Dropout2d(dropout))
            in_ch = out_ch
        layers.append(nn.Conv2d(in_ch, 1, base))
        self.net = nn.Sequential(*layers)
        # END SOLUTION
        self.apply(init_dcgan_weights)

    def forward(self, x):
        # BEGIN SOLUTION (notebooks/02_critic.ipynb)
        return self.net(x).view(-1)
        # END SOLUTION


def upsample_block(in_channels, out_channels, mode="transposed"):
    """One layer that doubles H and W and maps ``in_channels`` to ``out_channels``.

    * ``mode="transposed"`` (Radford et al.): ``ConvTranspose2d(kernel_size=4, stride=2, padding=1)``;
    * ``mode="nearest"`` (Odena et al. 2016): ``Upsample(scale_factor=2, mode="nearest")``
      followed by ``Conv2d(kernel_size=3, padding=1)``, returned as an ``nn.Sequential``.
      Every output pixel then sees the same number of weights, which avoids the
      checkerboard artefacts of transposed convolutions.

    Any other mode: raise ``ValueError`` naming ``UPSAMPLE_MODES``. No bias, no
    normalisation, no activation here: the generator adds those.
    """
    # BEGIN SOLUTION (notebooks/03_generator.ipynb)
    if mode == "transposed":
        return nn.ConvTranspose2d(in_channels, out_channels, 4, stride=2, padding=1, bias=False)
    if mode == "nearest":
        return nn.Sequential(
            nn.Upsample(scale_factor=2, mode="nearest"),
            nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        )
    raise ValueError(f"unknown upsample mode {mode!r}; choose one of {UPSAMPLE_MODES}")
    # END SOLUTION


class Generator(nn.Module):
    """The DCGAN generator: latent vectors z -> images.

    Input ``z``: (B, nz), drawn from N(0, I).
    Output: (B, channels, image_size, image_size) with values in [-1, 1].

    Build ``self.net`` from ``n_blocks, base = dcgan_schedule(image_size)``:

    * project: ``ConvTranspose2d(nz, C, kernel_size=base)`` applied to z viewed as
      (B, nz, 1, 1) gives (B, C, base, base), with ``C = ngf * 2**(n_blocks - 1)``;
      then ``BatchNorm2d`` and ``ReLU``;
    * ``n_blocks`` times ``upsample_block(..., mode=upsample)``, halving the channels
      each time; every block but the last is followed by ``BatchNorm2d`` and ``ReLU``;
    * the last block outputs ``channels`` maps and is followed by ``nn.Tanh()`` only, a
      layer of ``self.net`` like the others (no BatchNorm on the output: it would fix the
      output statistics). The images are the tanh's output: no sigmoid in its place, no
      rescaling after it.

    ``forward`` reshapes z itself, so callers pass plain (B, nz) vectors. Image i is a
    function of ``z[i]`` alone: no noise drawn inside ``forward``, no learned input in place
    of z.
    """

    def __init__(self, nz=100, channels=1, image_size=28, ngf=64, upsample="transposed"):
        super().__init__()
        self.nz, self.channels, self.image_size = nz, channels, image_size
        # BEGIN SOLUTION (notebooks/03_generator.ipynb)
        n_blocks, base = dcgan_schedule(image_size)
        ch = ngf * 2 ** (n_blocks - 1)
        layers = [
            nn.ConvTranspose2d(nz, ch, base, bias=False),
            nn.BatchNorm2d(ch),
            nn.ReLU(inplace=True),
        ]
        for i in range(n_blocks):
            last = i == n_blocks - 1
            out_ch = channels if last else ch // 2
            layers.append(upsample_block(ch, out_ch, upsample))
            layers += [nn.Tanh()] if last else [nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True)]
            ch = out_ch
        self.net = nn.Sequential(*layers)
        # END SOLUTION
        self.apply(init_dcgan_weights)

    def forward(self, z):
        # BEGIN SOLUTION (notebooks/03_generator.ipynb)
        return self.net(z.view(z.size(0), -1, 1, 1))
        # END SOLUTION
