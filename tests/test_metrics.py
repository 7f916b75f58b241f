"""Tests of ganlab.metrics: FeatureNet, Fréchet distance, precision/recall, class coverage, CLI."""

import gzip
import math
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
from torch import nn

from ganlab import metrics
from ganlab.data import OfflineMNIST, as_tensors
from ganlab.metrics import (
    FeatureNet,
    MetricUnavailable,
    class_histogram,
    classes_covered,
    evaluate,
    frechet_distance,
    inception_fid,
    load_feature_net,
    precision_recall,
)

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"  # absent on users' machines
ASSETS = Path(metrics.__file__).parent / "assets"


@pytest.fixture(scope="module")
def net():
    return load_feature_net("mnist")


@pytest.fixture(scope="module")
def offline():
    """(train images, train labels, test images, test labels) of the shipped slice."""
    return (*as_tensors(OfflineMNIST(train=True)), *as_tensors(OfflineMNIST(train=False)))


def test_feature_net_shapes():
    model = FeatureNet().eval()
    x = torch.rand(4, 1, 28, 28) * 2 - 1
    assert model.features(x).shape == (4, 128), "features() must give the 128-d penultimate layer"
    assert model(x).shape == (4, 10), "forward() must give 10 class logits"


@pytest.mark.parametrize("dataset", ["mnist", "fashion-mnist"])
def test_shipped_weights_are_small_and_load(dataset):
    path = ASSETS / f"feature_net_{dataset}.pt"
    assert path.is_file(), (
        f"{path} is not shipped: run scripts/train_feature_net.py --dataset {dataset}"
    )
    assert path.stat().st_size <= 1_100_000, (
        f"{path.name} is {path.stat().st_size} bytes, more than ~1 MB"
    )
    assert not load_feature_net(dataset).training, (
        "load_feature_net must return the net in eval mode"
    )


def test_unknown_feature_net_is_refused():
    with pytest.raises(ValueError, match="fashion-mnist"):
        load_feature_net("cifar10")


def test_shipped_mnist_net_classifies_offline_test_slice(net, offline):
    _, _, images, labels = offline
    with torch.no_grad():
        accuracy = (net(images).argmax(1) == labels).float().mean().item()
    assert accuracy >= 0.97, (
        f"shipped MNIST FeatureNet: {accuracy:.3f} accuracy on the offline test slice"
    )


def test_frechet_distance_separates_real_from_noise(net, offline):
    train, test = offline[0][:500], offline[2][:500]
    noise = torch.rand(500, 1, 28, 28) * 2 - 1
    real_vs_real = frechet_distance(train, test, net)
    real_vs_noise = frechet_distance(train, noise, net)
    assert real_vs_real * 20 < real_vs_noise, (
        f"FD(test, train)={real_vs_real:.2f} should be far below FD(train, noise)={real_vs_noise:.2f}"
    )
    same = frechet_distance(test, test, net)
    assert abs(same) < 1e-3 * real_vs_real, f"FD(x, x) should be ~0, got {same}"


def blobs(centres, per_blob, seed):
    """Gaussian blobs (std 1) around the given centres."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.as_tensor(centres, dtype=torch.float32)
    return centres.repeat_interleave(per_blob, 0) + torch.randn(
        len(centres) * per_blob, centres.shape[1], generator=g
    )


def test_precision_recall_identical_and_disjoint_sets():
    x = torch.randn(300, 8)
    assert precision_recall(x, x) == (1.0, 1.0), "a set compared with itself must score (1, 1)"
    assert precision_recall(x, x + 100.0) == (0.0, 0.0), "far-apart sets must score (0, 0)"


def test_precision_recall_detects_missing_modes():
    centres = torch.stack(
        [torch.arange(10.0) * 30, torch.zeros(10)], dim=1
    )  # 10 modes in a row, 2-d
    real = blobs(centres, 100, seed=0)  # 10 modes, 1000 points
    fake = blobs(centres[:5], 200, seed=1)  # only 5 of them, 1000 points
    precision, recall = precision_recall(real, fake)
    assert precision > 0.9, (
        f"fakes from real modes are realistic: precision should be high, got {precision:.3f}"
    )
    assert abs(recall - 0.5) < 0.08, (
        f"half the modes missing: recall should be ~0.5, got {recall:.3f}"
    )


def test_class_histogram_shows_mode_collapse(net, offline):
    _, _, test, labels = offline
    threes = test[labels == 3]  # a "generator" that only draws threes
    counts = class_histogram(threes, net)
    assert counts.sum() == len(threes) and counts.argmax() == 3, (
        f"100 threes classified as {counts.tolist()}"
    )
    assert classes_covered(counts) == 1, (
        f"all-threes should cover 1 class, counts {counts.tolist()}"
    )
    assert classes_covered(class_histogram(test, net)) == 10, (
        "the real test slice should cover all 10 digits"
    )
    assert classes_covered([50, 50, 1, 0]) == 2, "1% of the images is below the 5% bar"
    assert classes_covered([48, 48, 4]) == 2, (
        "a class with 4% of the samples is starved, not covered: the bar is 5%"
    )
    assert classes_covered([19, 19, 19, 19, 19, 5]) == 6, "exactly 5% of the samples counts"


class StandIn(nn.Module):
    """A tiny extractor in place of Inception: uint8 RGB -> 12 mean pixel values."""

    def forward(self, images):
        self.seen = (images.dtype, images.shape[1])
        return nn.functional.adaptive_avg_pool2d(images.float() / 255, 2).flatten(1)


def test_inception_fid_with_stand_in_extractor(offline):
    train, _, test, _ = offline
    stand_in = StandIn()
    value = inception_fid(train[:300], test[:300], extractor=stand_in)
    assert math.isfinite(value) and value >= -1e-6, (
        f"inception_fid with a stand-in extractor gave {value}"
    )
    assert stand_in.seen == (torch.uint8, 3), (
        f"Inception's input is uint8 RGB, the extractor got {stand_in.seen}"
    )


@pytest.mark.parametrize(
    "failure", [ModuleNotFoundError("No module named 'torch_fidelity'"), URLError("no network")]
)
def test_inception_fid_unavailable(monkeypatch, failure, offline):
    import torchmetrics.image.fid

    def cannot_load(*args, **kwargs):
        raise failure

    monkeypatch.setattr(torchmetrics.image.fid, "FrechetInceptionDistance", cannot_load)
    with pytest.raises(MetricUnavailable) as info:
        inception_fid(offline[0][:10], offline[2][:10])
    message = str(info.value)
    for needed in ("torch-fidelity", "download", "frechet_distance", "offline"):
        assert needed in message, (
            f"the MetricUnavailable message should mention {needed!r}: {message}"
        )


def write_idx(path, array):
    """A numpy uint8 array -> an uncompressed IDX file, the format of torchvision's MNIST/raw/."""
    magic = (8).to_bytes(1, "big") + bytes([array.ndim])
    dims = b"".join(int(d).to_bytes(4, "big") for d in array.shape)
    path.write_bytes(b"\0\0" + magic + dims + array.astype(np.uint8).tobytes())


def fake_mnist_root(tmp_path, n_train, n_test):
    """A data root holding a tiny stand-in for the full MNIST (real slice digits, MNIST's file layout)."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    train, test = OfflineMNIST(train=True), OfflineMNIST(train=False)
    for split, data, n in (("train", train, n_train), ("t10k", test, n_test)):
        write_idx(raw / f"{split}-images-idx3-ubyte", data.images[:n].numpy())
        write_idx(raw / f"{split}-labels-idx1-ubyte", data.labels[:n].numpy())
    return tmp_path


def test_evaluate_uses_the_whole_real_test_set_by_default(tmp_path):
    noise = torch.rand(1200, 1, 28, 28) * 2 - 1
    report = evaluate(noise, data_root=tmp_path)  # no MNIST files there: the shipped slice
    assert report["reference"] == "mnist-offline test" and report["n_real"] == 1000, (
        f"without MNIST in data_root the reference is the slice's 1,000 test images: {report}"
    )
    assert report["n_fake"] == report["n_floor"] == 1000, (
        "n defaults to the reference's size, for the samples and the floor alike"
    )
    root = fake_mnist_root(tmp_path, n_train=700, n_test=300)
    assert metrics.reference_data("mnist", "auto", root) == "mnist", (
        "MNIST files in data_root: the full test set must become the reference"
    )
    report = evaluate(noise, data_root=root)
    assert (report["reference"], report["n_real"], report["n_fake"], report["n_floor"]) == (
        "mnist test",
        300,
        300,
        300,
    ), f"reference = all of MNIST's test split, as many fakes and train images: {report}"
    assert metrics.reference_size("mnist", root) == 300
    few = evaluate(noise[:120], data_root=root)
    assert few["n_fake"] == few["n_real"] == few["n_floor"] == 120, (
        "fewer samples than the test set: score as many real images (the k-NN radii depend on n)"
    )
    assert metrics.reference_data("mnist", "mnist-offline", root) == "mnist-offline", (
        "an explicit real= wins over auto"
    )


def test_report_shows_the_class_histogram_and_the_coverage_bar(offline):
    report = evaluate(offline[2][:200], n=200)
    text = metrics.format_report(report)
    assert "5%" in text and "classes covered" in text, (
        f"the table must say a class counts only at >= 5% of the samples: {text}"
    )
    shares = text.splitlines()[-2].split()[1:]
    assert len(shares) == 10 and abs(sum(map(float, shares)) - 100) < 0.2, (
        f"the class row should give each class's share of the samples in %: {text}"
    )


def test_evaluate_reports_each_metric_with_its_floor():
    noise = torch.rand(200, 1, 28, 28) * 2 - 1
    report = evaluate(noise, n=200)
    for key in ("fd", "precision", "recall", "class_counts", "classes_covered"):
        assert key in report and f"{key}_floor" in report, (
            f"report lacks {key} or {key}_floor: {sorted(report)}"
        )
    assert report["n_fake"] == report["n_real"] == report["n_floor"] == 200, (
        "all sets should hold n images"
    )
    assert report["fd_floor"] < report["fd"], "real test images must score a lower FD than noise"
    assert report["classes_covered_floor"] == 10, "real test images cover all 10 digits"


def cli(*argv):
    """``ganlab evaluate ARGV`` (ganlab/cli.py defines its options)."""
    from ganlab.cli import main

    return main(["evaluate", *map(str, argv)])


def test_cli_on_real_samples(tmp_path, offline, capsys):
    samples = tmp_path / "real.npy"
    np.save(samples, offline[0][:200].numpy())
    report = tmp_path / "report.json"
    assert cli(samples, "--n", 200, "--json", report) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    assert "real floor" in out and "FD (FeatureNet)" in out, (
        f"the table should show the floor: {out}"
    )
    assert report.is_file(), "--json should write the report"


@pytest.mark.parametrize(
    "array, complaint",
    [
        (np.zeros((5, 28, 28), np.float32), "shape"),
        (np.full((5, 1, 28, 28), 3.0, np.float32), "[-1, 1]"),
        (np.zeros((5, 1, 28, 28), np.uint8), "uint8"),
    ],
)
def test_cli_rejects_bad_samples(tmp_path, capsys, array, complaint):
    bad = tmp_path / "bad.npy"
    np.save(bad, array)
    assert cli(bad) != 0, "bad input must give a non-zero exit status"
    err = capsys.readouterr().err
    assert err.startswith("error:") and complaint in err, (
        f"expected an error about {complaint}: {err}"
    )


def test_cli_on_a_checkpoint(tmp_path, capsys):
    from ganlab.config import TrainConfig
    from ganlab.trainer import train

    config = TrainConfig.from_dict(
        dict(
            name="tiny",
            out_dir=str(tmp_path / "run"),
            ngf=8,
            ndf=8,
            batch_size=16,
            steps=2,
            sample_every=2,
            checkpoint_every=2,
            gif=False,
            progress=False,
        )
    )
    checkpoint = train(config).checkpoint_path
    assert cli(checkpoint, "--n", 100) == 0, (
        f"evaluating a checkpoint failed: {capsys.readouterr().err}"
    )
    assert "real floor" in capsys.readouterr().out, "the table should be printed for a checkpoint"
    checkpoint.write_bytes(b"not a checkpoint")
    assert cli(checkpoint, "--n", 100) != 0, "a corrupt checkpoint must give a non-zero exit status"
    assert capsys.readouterr().err.startswith("error:"), (
        "a corrupt checkpoint must give an error: message"
    )


def test_cli_rejects_missing_file(tmp_path, capsys):
    assert cli(tmp_path / "nothing.npy") != 0 and "no such file" in capsys.readouterr().err


def read_idx(path):
    """An official gzip IDX file -> numpy array (header: 4 bytes magic, 4 per dimension)."""
    data = gzip.decompress(path.read_bytes())
    ndim = data[3]
    shape = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


@pytest.mark.shared_data
@pytest.mark.slow
@pytest.mark.parametrize(
    "dataset, folder, minimum", [("mnist", "mnist", 0.99), ("fashion-mnist", "fashion-mnist", 0.90)]
)
def test_shipped_nets_on_full_test_sets(dataset, folder, minimum):
    root = SHARED_DATA / folder
    if not root.is_dir():
        pytest.skip(f"{root} is absent")
    images = (
        torch.from_numpy(read_idx(root / "t10k-images-idx3-ubyte.gz").copy()).float() / 127.5 - 1
    )
    labels = torch.from_numpy(read_idx(root / "t10k-labels-idx1-ubyte.gz").astype(np.int64))
    with torch.no_grad():
        logits = torch.cat([load_feature_net(dataset)(x) for x in images.unsqueeze(1).split(1000)])
    accuracy = (logits.argmax(1) == labels).float().mean().item()
    assert accuracy >= minimum, f"{dataset} FeatureNet: test accuracy {accuracy:.4f} < {minimum}"
