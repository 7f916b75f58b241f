"""Tests for ganlab.data: scaling, the shipped MNIST slice, datasets, loaders and error messages.

No test needs the internet. Real MNIST is used by one optional test (marker `shared_data`)
that is skipped where ../shared/data/mnist is absent.
"""

import gzip
import hashlib
import io
import shutil
import struct
import subprocess
import sys
import urllib.error
import urllib.request
from importlib import resources
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torchvision import datasets

from ganlab import data
from ganlab.data import DatasetUnavailable

REPO = Path(__file__).resolve().parents[1]
SHARED_MNIST = Path(__file__).resolve().parents[2] / "shared" / "data" / "mnist"
ASSET = resources.files("ganlab") / "assets" / "mnist_offline.npz"


@pytest.fixture(scope="module")
def arrays():
    """The arrays of the shipped slice, read straight from the .npz."""
    with np.load(io.BytesIO(ASSET.read_bytes())) as npz:
        return {key: npz[key] for key in npz.files}


def write_idx(path: Path, array: np.ndarray) -> None:
    """Write a uint8 array as an IDX file (the MNIST format): magic 0x0008 + rank, sizes, bytes."""
    header = struct.pack(">HBB", 0, 8, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    path.write_bytes(header + np.ascontiguousarray(array, dtype=np.uint8).tobytes())


@pytest.fixture
def fake_mnist(tmp_path, arrays):
    """A tiny MNIST in torchvision's layout (root/MNIST/raw/*-ubyte), made from the shipped slice."""
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for prefix, split, n in (("train", "train", 20), ("t10k", "test", 10)):
        write_idx(raw / f"{prefix}-images-idx3-ubyte", arrays[f"{split}_images"][:n])
        write_idx(raw / f"{prefix}-labels-idx1-ubyte", arrays[f"{split}_labels"][:n])
    return tmp_path


# --- scaling -----------------------------------------------------------------------------


def test_to_tanh_range_maps_pixel_ends_and_middle():
    out = data.to_tanh_range(torch.tensor([0, 255], dtype=torch.uint8))
    assert out.dtype == torch.float32, "scaled images must be float32 (what the networks use)"
    assert out.tolist() == [-1.0, 1.0], "uint8 0 and 255 must map to -1 and 1, the ends of tanh"
    middle = data.to_tanh_range(torch.tensor([127.5 / 255]))
    assert abs(middle.item()) < 1e-6, "mid-grey (0.5 as a float) must map to 0"


def test_round_trip_and_clamping():
    unit = torch.rand(2, 3, 4, 4)
    back = data.to_unit_range(data.to_tanh_range(unit))
    assert torch.allclose(back, unit, atol=1e-6), "to_unit_range must invert to_tanh_range"
    clamped = data.to_unit_range(torch.tensor([-1.2, -1.0, 0.0, 1.0, 1.3]))
    assert clamped.tolist() == [0.0, 0.0, 0.5, 1.0, 1.0], (
        "to_unit_range must clamp overshoot to [0, 1]"
    )


def test_scaling_twice_is_refused():
    with pytest.raises(ValueError, match=r"already in \[-1, 1\]"):
        data.to_tanh_range(torch.tensor([-1.0, 0.0, 1.0]))  # already scaled: must not pass silently


# --- the shipped slice ----------------------------------------------------------------------


def test_slice_file_matches_pinned_sha256():
    digest = hashlib.sha256(ASSET.read_bytes()).hexdigest()
    assert digest == data.OFFLINE_SHA256, (
        "mnist_offline.npz changed: rebuild it or update OFFLINE_SHA256"
    )


def test_corrupted_slice_is_refused(monkeypatch):
    monkeypatch.setattr(data, "OFFLINE_SHA256", "0" * 64)  # as if the file no longer matched
    with pytest.raises(DatasetUnavailable, match="corrupted.*reinstall"):
        data.OfflineMNIST()


@pytest.mark.parametrize(
    "split, n, per_class, n_source", [("train", 6000, 600, 60000), ("test", 1000, 100, 10000)]
)
def test_slice_contents(arrays, split, n, per_class, n_source):
    images, labels, index = (arrays[f"{split}_{key}"] for key in ("images", "labels", "index"))
    assert images.shape == (n, 28, 28) and images.dtype == np.uint8, (
        f"{split}_images: uint8 (N, 28, 28)"
    )
    assert labels.shape == (n,) and labels.dtype == np.uint8, f"{split}_labels must be uint8 (N,)"
    assert index.shape == (n,) and index.dtype == np.int64, f"{split}_index must be int64 (N,)"
    assert np.bincount(labels, minlength=10).tolist() == [per_class] * 10, (
        f"{split} must be class-balanced"
    )
    assert images.min() == 0 and images.max() == 255, (
        f"{split} pixels must span the full 0-255 range"
    )
    assert (images.reshape(n, -1).max(axis=1) > 0).all(), (
        f"{split} has a blank image: data not copied?"
    )
    assert (np.diff(index) > 0).all(), (
        f"{split}_index must be sorted and unique (original file order)"
    )
    assert 0 <= index[0] and index[-1] < n_source, (
        f"{split}_index must point into the official file"
    )


def test_offline_mnist_items():
    train, test = data.OfflineMNIST(train=True), data.OfflineMNIST(train=False)
    assert (len(train), len(test)) == (6000, 1000), "the slice has 6000 train and 1000 test images"
    assert train.images.dtype == torch.uint8, ".images must stay uint8 (4x smaller than float)"
    assert train.images.shape == (6000, 28, 28), ".images must be N x 28 x 28"
    assert train.labels.dtype == torch.int64, ".labels must be int64 (what cross-entropy expects)"
    assert train.classes == [str(d) for d in range(10)], ".classes must name the digits 0..9"
    image, label = train[0]
    assert image.shape == (1, 28, 28) and image.dtype == torch.float32, (
        "an item is float32 (1, 28, 28)"
    )
    assert image.min() >= -1 and image.max() <= 1, "items must be in [-1, 1]"
    assert image.min() < 0 < image.max(), "items must use the whole [-1, 1] range, not [0, 1]"
    assert isinstance(label, int) and 0 <= label <= 9, "an item's label is an int digit"


def test_load_dataset_default_is_the_offline_slice():
    dataset = data.load_dataset()
    assert isinstance(dataset, data.OfflineMNIST), "the default dataset must be mnist-offline"
    assert len(dataset) == 6000, "the default split must be train"
    assert len(data.load_dataset(data.OFFLINE, train=False)) == 1000, (
        "train=False must give the test slice"
    )
    resized = data.load_dataset(image_size=32)
    image, label = resized[0]
    assert image.shape == (1, 32, 32), "image_size must resize the offline slice"
    assert isinstance(label, int), "labels stay ints after resizing"
    assert image.min() >= -1 and image.max() <= 1, "resizing must keep images in [-1, 1]"


def one_by_one(dataset, n):
    items = [dataset[i] for i in range(n)]
    return torch.stack([image for image, _ in items]), torch.tensor(
        [int(label) for _, label in items]
    )


@pytest.mark.parametrize("image_size", [None, 32])
def test_as_tensors_equals_stacking_items(image_size):
    dataset = data.load_dataset(image_size=image_size)
    images, labels = data.as_tensors(dataset, limit=7)
    expected_images, expected_labels = one_by_one(dataset, 7)
    assert images.dtype == torch.float32, "as_tensors must give float32 images"
    assert labels.dtype == torch.int64, "as_tensors must give int64 labels"
    assert torch.allclose(images, expected_images, atol=1e-6), (
        "the fast path must match the items' images"
    )
    assert torch.equal(labels, expected_labels), "the fast path must give the same labels as items"
    assert len(data.as_tensors(dataset)[0]) == len(dataset), (
        "without limit, as_tensors takes everything"
    )


# --- names and shapes ---------------------------------------------------------------------


@pytest.mark.parametrize(
    "name, shape",
    [
        ("mnist-offline", (1, 28)),
        ("mnist", (1, 28)),
        ("fashion-mnist", (1, 28)),
        ("emnist", (1, 28)),
        ("svhn", (3, 32)),
        ("celeba", (3, 64)),
        ("folder:/any/where", (3, 64)),
    ],
)
def test_dataset_shape(name, shape):
    assert data.dataset_shape(name) == shape, f"wrong (channels, size) for {name}"


def test_unknown_name_lists_the_accepted_ones():
    with pytest.raises(ValueError) as excinfo:
        data.load_dataset("cifar-11")
    assert all(name in str(excinfo.value) for name in data.DATASETS), (
        "the error must list all accepted names"
    )


# --- torchvision datasets, without internet ---------------------------------------------


def test_missing_mnist_without_download_says_where_files_go(tmp_path):
    with pytest.raises(DatasetUnavailable) as excinfo:
        data.load_dataset("mnist", root=tmp_path, download=False)
    message = str(excinfo.value)
    assert str(tmp_path / "MNIST" / "raw") in message, (
        "the message must name the folder for the files"
    )
    assert "train-images-idx3-ubyte.gz" in message, "the message must name the files"
    assert data.OFFLINE in message, "the message must point to the offline dataset"


DOWNLOADERS = {
    "mnist": (datasets.MNIST, "MNIST"),
    "fashion-mnist": (datasets.FashionMNIST, "FashionMNIST"),
    "emnist": (datasets.EMNIST, "gzip.zip"),
    "svhn": (datasets.SVHN, "train_32x32.mat"),
    "celeba": (datasets.CelebA, "img_align_celeba"),
}


@pytest.mark.parametrize("name", DOWNLOADERS)
def test_failed_download_becomes_dataset_unavailable(name, tmp_path, monkeypatch):
    cls, hint = DOWNLOADERS[name]

    def no_network(self):
        raise urllib.error.URLError("simulated: no network")

    monkeypatch.setattr(cls, "download", no_network)
    with pytest.raises(DatasetUnavailable) as excinfo:
        data.load_dataset(name, root=tmp_path, download=True)
    message = str(excinfo.value)
    assert name in message and "could not be downloaded" in message, (
        "the message must say what failed"
    )
    assert "simulated: no network" in message, "the message must include the original error"
    assert hint in message, f"the message must say where the {name} files go"
    assert isinstance(excinfo.value.__cause__, urllib.error.URLError), (
        "the original error must be chained"
    )


def test_other_errors_are_not_disguised(tmp_path, monkeypatch):
    def bug(self):
        raise ValueError("a real bug")

    monkeypatch.setattr(datasets.MNIST, "download", bug)
    with pytest.raises(ValueError, match="a real bug"):  # not a DatasetUnavailable
        data.load_dataset("mnist", root=tmp_path, download=True)


def test_mnist_from_local_files(fake_mnist, arrays):
    dataset = data.load_dataset("mnist", root=fake_mnist, download=False)
    assert len(dataset) == 20, "load_dataset('mnist') must read the files in root/MNIST/raw"
    image, label = dataset[3]
    assert image.shape == (1, 28, 28), "MNIST items must be (1, 28, 28)"
    expected = data.to_tanh_range(torch.from_numpy(arrays["train_images"][3]))
    assert torch.allclose(image[0], expected, atol=1e-6), (
        "MNIST items must be the pixels scaled to [-1, 1]"
    )
    assert label == int(arrays["train_labels"][3]), "MNIST labels must be the digits"
    images, labels = data.as_tensors(dataset, limit=5)
    expected_images, expected_labels = one_by_one(dataset, 5)
    assert torch.allclose(images, expected_images, atol=1e-6), (
        "the MNIST fast path must match the items"
    )
    assert torch.equal(labels, expected_labels), "the MNIST fast path must match the labels"
    resized = data.load_dataset("mnist", root=fake_mnist, download=False, image_size=32)
    assert data.as_tensors(resized, limit=2)[0].shape == (2, 1, 32, 32), (
        "as_tensors must respect a resize"
    )


def test_mnist_gz_files_put_in_place_by_hand_load_without_download(tmp_path, arrays, monkeypatch):
    """The four .gz files in raw/ (what the 'not downloaded' message asks for) are enough for
    download=False, as `ganlab evaluate` uses it: unpacked, never fetched. A damaged file is not."""

    def no_fetching(*args, **kwargs):
        raise AssertionError("torchvision tried to download although download=False")

    monkeypatch.setattr(urllib.request, "urlopen", no_fetching)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    pinned = []
    for prefix, split, n in (("train", "train", 20), ("t10k", "test", 10)):
        for kind, key in (("images-idx3", "images"), ("labels-idx1", "labels")):
            idx = tmp_path / f"{prefix}-{kind}-ubyte"
            write_idx(idx, arrays[f"{split}_{key}"][:n])
            gz = raw / f"{idx.name}.gz"
            gz.write_bytes(gzip.compress(idx.read_bytes()))
            pinned.append((gz.name, hashlib.md5(gz.read_bytes()).hexdigest()))
    monkeypatch.setattr(datasets.MNIST, "resources", pinned)  # this tiny MNIST's checksums
    gz = raw / "train-images-idx3-ubyte.gz"
    intact = gz.read_bytes()
    gz.write_bytes(intact[:-8])  # damaged: not unpacked
    with pytest.raises(DatasetUnavailable):
        data.load_dataset("mnist", root=tmp_path, train=False, download=False)
    gz.write_bytes(intact)
    test = data.load_dataset("mnist", root=tmp_path, train=False, download=False)
    assert len(test) == 10, "the .gz files in raw/ must be unpacked and read with download=False"


def test_emnist_orientation_is_fixed(tmp_path, arrays):
    raw = tmp_path / "EMNIST" / "raw"
    raw.mkdir(parents=True)
    upright = arrays["train_images"][:4]
    # EMNIST's files hold every image transposed; write ours the same way.
    write_idx(raw / "emnist-balanced-train-images-idx3-ubyte", upright.transpose(0, 2, 1))
    write_idx(raw / "emnist-balanced-train-labels-idx1-ubyte", arrays["train_labels"][:4])
    image, _ = data.load_dataset("emnist", root=tmp_path, download=False)[1]
    expected = data.to_tanh_range(torch.from_numpy(upright[1]))
    assert torch.allclose(image[0], expected, atol=1e-6), (
        "EMNIST images must be transposed back upright"
    )


# --- image folders ------------------------------------------------------------------------


def write_pngs(folder: Path, n: int, mode: str = "RGB", size=(40, 30)) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        pixels = np.random.default_rng(i).integers(0, 256, (size[1], size[0], 3), dtype=np.uint8)
        Image.fromarray(pixels).convert(mode).save(folder / f"img{i}.png")


def test_flat_folder(tmp_path):
    write_pngs(tmp_path, 2)
    write_pngs(tmp_path / ".ipynb_checkpoints", 0)  # hidden: not a class folder
    write_pngs(tmp_path, 1, mode="L", size=(20, 20))  # overwrites img0 with a grey image
    dataset = data.load_dataset(f"folder:{tmp_path}")
    assert len(dataset) == 2, "a flat folder yields each image once"
    for image, label in (dataset[0], dataset[1]):
        assert image.shape == (3, 64, 64), (
            "folder images must be RGB and resized/cropped to 64x64 by default"
        )
        assert image.min() >= -1 and image.max() <= 1, "folder images must be in [-1, 1]"
        assert label == 0, "images in a flat folder have label 0"
    small = data.load_dataset(f"folder:{tmp_path}", image_size=16)
    assert data.as_tensors(small)[0].shape == (2, 3, 16, 16), (
        "image_size must set the folder image size"
    )


def test_folder_with_class_subfolders(tmp_path):
    write_pngs(tmp_path / "cats", 2)
    write_pngs(tmp_path / "dogs", 3, mode="L")
    write_pngs(tmp_path / ".ipynb_checkpoints", 0)
    dataset = data.load_dataset(f"folder:{tmp_path}", image_size=32)
    assert dataset.classes == ["cats", "dogs"], "each visible sub-folder is one class"
    images, labels = data.as_tensors(dataset)
    assert images.shape == (5, 3, 32, 32), "every image becomes RGB 32x32"
    assert labels.tolist() == [0, 0, 1, 1, 1], "labels follow the sub-folders"


def test_missing_or_empty_folder(tmp_path):
    with pytest.raises(DatasetUnavailable, match="no such folder"):
        data.load_dataset(f"folder:{tmp_path / 'nowhere'}")
    with pytest.raises(DatasetUnavailable, match="no images"):
        data.load_dataset(f"folder:{tmp_path}")
    (tmp_path / "a.png").write_bytes(b"")
    with pytest.raises(DatasetUnavailable, match="a.png: is a file, not a folder"):
        data.load_dataset(f"folder:{tmp_path / 'a.png'}")


def test_a_data_root_that_is_a_file_is_named(tmp_path):
    root = tmp_path / "data"
    root.write_text("not a folder")
    for download in (True, False):
        with pytest.raises(DatasetUnavailable, match="data_root .* is a file, not a folder") as err:
            data.load_dataset("mnist", root, download=download)
        assert len(str(err.value).splitlines()) == 1, str(err.value)


# --- loaders ------------------------------------------------------------------------------


def test_make_loader_batches_and_seed():
    dataset = data.OfflineMNIST(train=False)
    first = [next(iter(data.make_loader(dataset, batch_size=16, seed=3)))[1] for _ in range(2)]
    assert torch.equal(first[0], first[1]), "the same seed must give the same shuffle order"
    images, labels = next(iter(data.make_loader(dataset, batch_size=16, shuffle=False)))
    assert images.shape == (16, 1, 28, 28) and labels.shape == (16,), (
        "batches are (B, C, H, W) and (B,)"
    )
    assert len(data.make_loader(dataset, batch_size=300)) == 3, (
        "drop_last drops the ragged last batch"
    )
    with pytest.raises(ValueError, match="no batches"):
        data.make_loader(dataset, batch_size=2000)


# --- real MNIST (optional) ----------------------------------------------------------------


@pytest.mark.shared_data
@pytest.mark.skipif(not SHARED_MNIST.is_dir(), reason=f"real MNIST not found at {SHARED_MNIST}")
def test_slice_is_real_mnist_and_local_files_load_offline(tmp_path, arrays, monkeypatch):
    def no_fetching(*args, **kwargs):
        raise AssertionError("torchvision tried to download although the files were in place")

    monkeypatch.setattr(urllib.request, "urlopen", no_fetching)
    raw = tmp_path / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for gz in SHARED_MNIST.glob("*.gz"):
        shutil.copy(gz, raw)
    for split, train, n in (("train", True, 60000), ("test", False, 10000)):
        real = data.load_dataset(
            "mnist", root=tmp_path, train=train, download=True
        )  # checks md5, unpacks
        assert len(real) == n, f"real MNIST {split} must have {n} images"
        index = torch.from_numpy(arrays[f"{split}_index"])
        assert torch.equal(real.data[index], torch.from_numpy(arrays[f"{split}_images"])), (
            f"the slice's {split} images must be the real MNIST images at {split}_index"
        )
        assert torch.equal(
            real.targets[index], torch.from_numpy(arrays[f"{split}_labels"]).long()
        ), f"the slice's {split} labels must be the real MNIST labels at {split}_index"
    # The builder script must reproduce the shipped arrays from the official files.
    rebuilt = tmp_path / "rebuilt.npz"
    subprocess.run(
        [
            sys.executable,
            str(REPO / "scripts" / "build_offline_mnist.py"),
            "--src",
            str(SHARED_MNIST),
            "--out",
            str(rebuilt),
        ],
        check=True,
        capture_output=True,
    )
    with np.load(rebuilt) as npz:
        for key, value in arrays.items():
            assert np.array_equal(npz[key], value), f"rebuilding gives a different {key}"
