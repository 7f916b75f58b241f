"""The metrics chapter: how good are a generator's samples, measured against real data?

Looking at samples tells you a lot, but not whether 1 digit in 10 is missing. So we
measure, always in the feature space of a small classifier (``FeatureNet``) trained on
the real data: there, distances reflect what a digit *is*, not raw pixel differences.

* ``frechet_distance``  fit a Gaussian to the real and to the fake features and measure
  how far apart they are (FID, but with FeatureNet instead of Inception-v3): quality and
  variety mixed into one number, lower is better.
* ``precision_recall``  split that number in two: are the fakes realistic (precision)?
  do they cover all of the real data (recall)?
* ``class_histogram``   which digits the generator draws; mode collapse = missing classes.

``evaluate`` scores samples against a real *test* set, as an independent judge would:
all 10,000 MNIST test images when the MNIST files are in the data folder, else the
1,000 test images of the slice shipped with the kit. A figure means little alone, so it
also scores as many real *training* images against the same test set: the floor, what
a generator that drew the training data itself would score.
"""

from __future__ import annotations

import io
import warnings
from importlib import resources

import torch
from torch import Tensor, nn

FEATURE_NETS = ("mnist", "fashion-mnist")  # datasets with shipped FeatureNet weights
# A class counts as drawn only if it holds at least 5 % of the samples (a balanced generator
# gives each of 10 classes 10 %): a lower bar, like 2 %, hides a generator that starves a class.
COVERED = 0.05
K_NEAREST = 3  # precision/recall: each point's ball reaches to its k-th nearest neighbour


class MetricUnavailable(RuntimeError):
    """A metric needs something this machine lacks (a package, downloaded weights)."""


class FeatureNet(nn.Module):
    """A small CNN classifier for 1x28x28 images in [-1, 1]; its 128-d penultimate layer is our ruler.

    Three conv blocks (28 -> 14 -> 7 -> 3 pixels) and one dense layer give the features;
    a linear head turns them into 10 class logits. It is trained as a classifier, so that its
    features encode what separates the classes (ganlab/assets/feature_nets.json records how
    each shipped net was trained and its test accuracy).
    """

    def __init__(self, num_classes: int = 10, feature_dim: int = 128):
        super().__init__()
        self.feature_dim = feature_dim

        def block(c_in, c_out):  # conv -> BatchNorm -> ReLU, then halve the image
            return [
                nn.Conv2d(c_in, c_out, 3, padding=1, bias=False),
                nn.BatchNorm2d(c_out),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(2),
            ]

        self.body = nn.Sequential(
            *block(1, 32),
            *block(32, 64),
            *block(64, 128),
            nn.Flatten(),
            nn.Linear(128 * 3 * 3, feature_dim),
            nn.ReLU(inplace=True),
        )
        self.head = nn.Sequential(nn.Dropout(0.3), nn.Linear(feature_dim, num_classes))

    def features(self, x: Tensor) -> Tensor:
        """(N, 1, 28, 28) in [-1, 1] -> (N, feature_dim) penultimate activations."""
        return self.body(x)

    def forward(self, x: Tensor) -> Tensor:
        """(N, 1, 28, 28) in [-1, 1] -> (N, num_classes) logits."""
        return self.head(self.features(x))


def load_feature_net(dataset: str = "mnist") -> FeatureNet:
    """The shipped FeatureNet for ``dataset`` ("mnist" or "fashion-mnist"), in eval mode."""
    if dataset not in FEATURE_NETS:
        raise ValueError(f"no FeatureNet for {dataset!r}; choose one of {FEATURE_NETS}")
    name = f"feature_net_{dataset}.pt"
    try:
        payload = resources.files("ganlab").joinpath(f"assets/{name}").read_bytes()
    except FileNotFoundError:
        raise MetricUnavailable(
            f"ganlab/assets/{name} is missing: restore it with `git checkout -- "
            f"ganlab/assets/{name}` in the kit's folder, or reinstall the kit"
        ) from None
    net = FeatureNet()
    net.load_state_dict(
        torch.load(io.BytesIO(payload), weights_only=True)
    )  # float16 file -> float32
    return net.eval()  # eval: BatchNorm uses its stored statistics, Dropout is off


@torch.no_grad()
def extract_features(images: Tensor, feature_net: FeatureNet, batch_size: int = 500) -> Tensor:
    """FeatureNet features of many images, a batch at a time (keeps memory flat)."""
    feature_net.eval()
    return torch.cat([feature_net.features(batch.float()) for batch in images.split(batch_size)])


def _fid_class():
    """torchmetrics' FID class, imported late: importing torchmetrics takes seconds."""
    try:
        from torchmetrics.image.fid import FrechetInceptionDistance
    except ImportError as err:
        raise MetricUnavailable(
            f"{err}: install torchmetrics (`pip install torchmetrics`), a dependency of ganlab"
        ) from err
    return FrechetInceptionDistance


class _PassThrough(nn.Module):
    """torchmetrics' FID calls ``feature(inputs)``; we hand it features computed already."""

    def __init__(self, num_features: int):
        super().__init__()
        self.num_features = (
            num_features  # torchmetrics reads it (else it probes with a 299x299 image)
        )

    def forward(self, features: Tensor) -> Tensor:
        return features


def fd_from_features(real_features: Tensor, fake_features: Tensor) -> float:
    """Fréchet distance between two sets of feature vectors, each (N, d)."""
    metric = _fid_class()(feature=_PassThrough(real_features.shape[1]))
    # torchmetrics sums in float64 but returns the input's dtype: give it float64 to keep every digit.
    metric.update(real_features.double(), real=True)
    metric.update(fake_features.double(), real=False)
    return float(metric.compute())


def frechet_distance(
    real_images: Tensor,
    fake_images: Tensor,
    feature_net: FeatureNet | None = None,
    batch_size: int = 500,
) -> float:
    """Fréchet distance between real and fake images in FeatureNet's feature space (lower is better).

    Each set of features is summarised by a Gaussian (mean mu, covariance S), and
    FD = |mu_r - mu_f|^2 + Tr(S_r + S_f - 2 (S_r S_f)^(1/2)): FID's formula, computed by
    torchmetrics' FID code; only the features are ours. FD is biased upwards on small
    sets, so only compare figures computed on equally many images.
    """
    net = feature_net if feature_net is not None else load_feature_net("mnist")
    return fd_from_features(
        extract_features(real_images, net, batch_size),
        extract_features(fake_images, net, batch_size),
    )


def inception_fid(
    real_images: Tensor,
    fake_images: Tensor,
    extractor: nn.Module | None = None,
    batch_size: int = 100,
) -> float:
    """The standard FID: torchmetrics' Inception-v3 (2048-d pool features) on 299x299 RGB.

    Our grey 28x28 images are turned into uint8 RGB, the input Inception expects (it
    resizes them itself). ``extractor`` replaces Inception: any module mapping such
    uint8 (N, 3, H, W) images to (N, d) features (tests use a tiny stand-in; without a
    ``num_features`` attribute torchmetrics first probes it with one 299x299 image).
    Raises ``MetricUnavailable`` when Inception cannot be loaded.
    """
    FrechetInceptionDistance = _fid_class()

    def to_rgb_uint8(images):  # [-1, 1] grey -> [0, 255] uint8, the grey channel copied 3 times
        return ((images.clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8).expand(-1, 3, -1, -1)

    try:
        metric = FrechetInceptionDistance(feature=2048 if extractor is None else extractor)
    except (ImportError, OSError, RuntimeError) as err:  # no torch-fidelity, no network, bad cache
        raise MetricUnavailable(
            f"Inception FID is unavailable here ({type(err).__name__}: {err}). It needs the torch-fidelity "
            "package (`pip install torch-fidelity`) and a one-time download of the Inception-v3 weights "
            "(about 100 MB, cached afterwards), so an internet connection the first time. The kit's own "
            "frechet_distance() uses the shipped FeatureNet and works offline."
        ) from err
    for images, is_real in ((real_images, True), (fake_images, False)):
        for batch in images.split(batch_size):
            metric.update(to_rgb_uint8(batch), real=is_real)
    return float(metric.compute())


def _knn_radii(features: Tensor, k: int, chunk: int) -> Tensor:
    """Distance from each point to its k-th nearest neighbour in the same set."""
    # kthvalue(k + 1): the nearest "neighbour", at distance 0, is the point itself.
    return torch.cat(
        [
            torch.cdist(part, features).kthvalue(k + 1, dim=1).values
            for part in features.split(chunk)
        ]
    )


def _fraction_inside(points: Tensor, centres: Tensor, radii: Tensor, chunk: int) -> float:
    """Fraction of ``points`` inside at least one ball (centres[j], radii[j])."""
    inside = [(torch.cdist(part, centres) <= radii).any(dim=1) for part in points.split(chunk)]
    return torch.cat(inside).double().mean().item()


def precision_recall(
    real_features: Tensor, fake_features: Tensor, k: int = K_NEAREST, chunk: int = 1000
) -> tuple[float, float]:
    """Improved precision and recall (Kynkäänniemi et al., NeurIPS 2019, arXiv:1904.06991).

    FD mixes two failures into one number: blurry or odd samples (low quality) and
    missing kinds of samples (low variety). This pair separates them. Each set of
    features approximates its manifold by a union of balls: one ball around every point,
    reaching to its k-th nearest neighbour in the same set. Then

    * precision = fraction of fake points inside the real manifold  (are fakes realistic?)
    * recall    = fraction of real points inside the fake manifold  (is all real data covered?)

    A mode-collapsed generator has high precision but low recall. Read the two together:
    an odd real image gets a big ball, and a generator that draws one blank image can
    land inside it and score precision 1 (recall 0 gives it away). Both sets should be
    the same size: the balls' radii depend on how many points there are.
    """
    real, fake = (
        real_features.double(),
        fake_features.double(),
    )  # float64: near-duplicates stay apart
    precision = _fraction_inside(fake, real, _knn_radii(real, k, chunk), chunk)
    recall = _fraction_inside(real, fake, _knn_radii(fake, k, chunk), chunk)
    return precision, recall


@torch.no_grad()
def class_histogram(fake_images: Tensor, feature_net: FeatureNet, batch_size: int = 500) -> Tensor:
    """How many images the classifier assigns to each class (argmax of its logits)."""
    feature_net.eval()
    logits = torch.cat([feature_net(batch.float()) for batch in fake_images.split(batch_size)])
    return torch.bincount(logits.argmax(dim=1), minlength=logits.shape[1])


def classes_covered(counts, min_fraction: float = COVERED) -> int:
    """Number of classes holding at least ``min_fraction`` of the images (mode collapse: < 10)."""
    counts = torch.as_tensor(counts, dtype=torch.float64)
    return int((counts >= min_fraction * counts.sum()).sum())


def check_images(images: Tensor, what: str = "images") -> Tensor:
    """Refuse images a FeatureNet cannot score: a wrong shape or scale gives a meaningless number."""
    if images.ndim != 4 or tuple(images.shape[1:]) != (1, 28, 28):
        raise ValueError(
            f"{what}: expected images shaped (N, 1, 28, 28), got {tuple(images.shape)}"
        )
    if not images.is_floating_point():
        raise ValueError(
            f"{what}: expected float images in [-1, 1], got dtype {images.dtype} "
            "(uint8 pixels? scale them with x / 127.5 - 1)"
        )
    if len(images) < K_NEAREST + 1:
        raise ValueError(
            f"{what}: need at least {K_NEAREST + 1} images (precision and recall need each "
            f"image's {K_NEAREST} nearest neighbours), got {len(images)}"
        )
    if not torch.isfinite(images).all() or images.min() < -1.001 or images.max() > 1.001:
        raise ValueError(
            f"{what}: expected finite values in [-1, 1], got [{images.min():.3g}, {images.max():.3g}]"
        )
    return images.float().clamp(
        -1, 1
    )  # tanh outputs never overshoot, but saved files might by a hair


def _scores(reference_features: Tensor, images: Tensor, net: FeatureNet) -> dict:
    """FD, precision, recall and class coverage of ``images`` against the reference's features."""
    features = extract_features(images, net)
    precision, recall = precision_recall(reference_features, features)
    counts = class_histogram(images, net)
    return {
        "fd": fd_from_features(reference_features, features),
        "precision": precision,
        "recall": recall,
        "class_counts": counts.tolist(),
        "classes_covered": classes_covered(counts),
    }


def reference_data(dataset: str = "mnist", real: str | None = None, data_root="data") -> str:
    """The real data a report compares with: ``real`` if given (and not "auto"); for "mnist"
    the full MNIST if its files are in ``data_root`` (never downloaded), else the shipped slice."""
    from .data import DatasetUnavailable, load_dataset

    if real not in (None, "auto"):
        return real
    if dataset != "mnist":
        return dataset
    try:
        load_dataset("mnist", data_root, train=False, download=False)
    except DatasetUnavailable:
        return "mnist-offline"
    return "mnist"


def reference_size(real: str, data_root="data") -> int:
    """How many images the test split of ``real`` holds: ``evaluate``'s default ``n``."""
    from .data import load_dataset

    return len(load_dataset(real, data_root, train=False, download=False))


def evaluate(
    fake_images: Tensor,
    real_images: Tensor | None = None,
    dataset: str = "mnist",
    n: int | None = None,
    real: str | None = None,
    data_root="data",
    inception: bool = False,
    seed: int = 0,
) -> dict:
    """Score ``n`` fake images against real test images, each figure next to its floor.

    The reference is ``real_images`` or the test split of ``real`` (``reference_data``: by
    default the full MNIST test set if it is in ``data_root``, else the shipped slice's).
    ``n`` defaults to the reference's size (10,000 for MNIST), or fewer if there are fewer
    fake images; a smaller ``n`` takes a seeded random subset. The floor scores ``n`` real
    *train* images of ``real`` against the same reference, as if they were a generator's
    samples. ``dataset`` picks the FeatureNet. All sets have the same size where possible (FD and the k-NN radii depend
    on it).
    """
    from .data import as_tensors, load_dataset

    net = load_feature_net(dataset)
    real = reference_data(dataset, real, data_root)

    def split(train, n):  # n random images of a split of `real` (all: None), seeded, shuffled
        images = as_tensors(load_dataset(real, data_root, train=train))[0]
        order = torch.randperm(len(images), generator=torch.Generator().manual_seed(seed))
        return images[order[:n]]

    if real_images is None:
        reference = split(False, n)
    else:
        reference = check_images(real_images[:n], "real_images")
    n = min(n or len(reference), len(fake_images))  # fewer samples than n: as few real images
    reference = reference[:n]  # already a random subset (or the given images' first n)
    fake = check_images(fake_images[:n], "fake_images")
    if fake.min() >= 0:  # a background of 0 instead of -1: probably scaled to [0, 1] only
        warnings.warn(
            "fake_images has no negative values: scaled to [0, 1]? Expected [-1, 1].", stacklevel=2
        )
    held_out = split(True, n)
    report = {
        "dataset": dataset,
        "reference": "given" if real_images is not None else f"{real} test",
        "floor": f"{real} train vs reference",
        "n_fake": len(fake),
        "n_real": len(reference),
        "n_floor": len(held_out),
    }
    if inception:  # first: it fails fast when Inception is unavailable
        report["inception_fid"] = inception_fid(reference, fake)
        report["inception_fid_floor"] = inception_fid(reference, held_out)
    reference_features = extract_features(reference, net)  # computed once, used by both rows
    report.update(_scores(reference_features, fake, net))
    report.update(
        {f"{key}_floor": value for key, value in _scores(reference_features, held_out, net).items()}
    )
    return report


def format_report(report: dict) -> str:
    """``evaluate``'s report as a small table, each metric next to its real-data floor."""
    rows = [
        ("FD (FeatureNet)", "fd", "{:.2f}"),
        ("Inception FID", "inception_fid", "{:.2f}"),
        ("precision", "precision", "{:.3f}"),
        ("recall", "recall", "{:.3f}"),
        (f"classes >= {COVERED:.0%}", "classes_covered", "{}/10"),
    ]
    lines = [f"{'metric':<18}{'samples':>10}{'real floor':>12}"]
    lines += [
        f"{label:<18}{fmt.format(report[key]):>10}{fmt.format(report[key + '_floor']):>12}"
        for label, key, fmt in rows
        if key in report
    ]
    lines.append(
        f"{'images':<18}{report['n_fake']:>10}{report['n_floor']:>12}"
        f"   (reference: {report['n_real']} images, {report['reference']})"
    )
    lines.append(
        f"classes covered: those holding >= {COVERED:.0%} of the samples (10% each when balanced)"
    )
    return "\n".join(lines + [class_table(report["class_counts"], report["class_counts_floor"])])


def class_table(counts, floor_counts=None) -> str:
    """The class histogram as percentages of the samples, one column per class."""

    def percents(values):
        total = max(sum(values), 1)
        return "".join(f"{100 * v / total:>6.1f}" for v in values)

    lines = [f"{'class %':<12}" + "".join(f"{c:>6}" for c in range(len(counts)))]
    lines.append(f"{'samples':<12}" + percents(counts))
    if floor_counts is not None:
        lines.append(f"{'real floor':<12}" + percents(floor_counts))
    return "\n".join(lines)
