"""ganlab: a course kit for Deep Convolutional GANs (DCGAN) in PyTorch.

Chapters, one module each:

    data        datasets scaled to [-1, 1] (MNIST slice shipped for offline use)
    models      the critic and the generator            (exercise, notebooks 02-03)
    losses      critic and non-saturating generator loss (exercise, notebook 04)
    training    the optimizers, one critic step, one generator step (exercise, notebook 05)
    config      every option of a run, checked; the presets (configs/*.yaml)
    trainer     the training loop around your steps
    checkpoints saving and loading runs, safely
    latent      sampling, interpolation, latent explorer (exercise, notebook 06)
    metrics     Fréchet distance, precision/recall, class coverage (notebook 07)
    checks      the graded checks the notebooks call

Set ``GANLAB_SOLUTIONS=1`` to run everything against the reference solutions
in ``solutions/ganlab`` (instructors and the test suite; see ganlab/_solutions.py).
"""

from ._solutions import activate_solutions_if_requested

__version__ = "0.1.0"

# Must run before any exercise module is imported: it may put solutions/ganlab
# in front of this package's search path.
SOLUTIONS_ACTIVE = activate_solutions_if_requested(__path__)
