"""The data chapter: image datasets as tensors in [-1, 1].

A DCGAN generator ends in tanh, so every image it draws lies in [-1, 1]. The critic
must see real images on the same scale, or it could tell real from fake by the range
of the pixel values alone. So every dataset here yields float32 images scaled from
[0, 255] (or [0, 1]) to [-1, 1]; ``to_unit_range`` maps them back to [0, 1] for display.

Names ``load_dataset`` accepts (``DATASETS``):

    mnist-offline    the default: 7,000 real MNIST digits shipped with ganlab (no internet)
    mnist            MNIST, 1x28x28       (downloaded by torchvision into ``root``)
    fashion-mnist    Fashion-MNIST, 1x28x28
    emnist           EMNIST "balanced" (digits and letters, 47 classes), 1x28x28
    svhn             Street View House Numbers, 3x32x32 (needs scipy)
    celeba           CelebA faces, 3x64x64 (centre 178x178 crop, resized)
    folder:PATH      your own images: one sub-folder per class, or all in one folder (label 0)

Each item is ``(image, label)``: a float32 tensor (C, H, W) in [-1, 1] and an int.
"""

from __future__ import annotations

import hashlib
import io
from importlib import resources
from pathlib import Path
from urllib.error import URLError

import numpy as np
import torch
import torchvision.transforms.functional as TF
from PIL import Image
from torch import Tensor
from torch.utils.data import DataLoader, Dataset, TensorDataset
from torchvision import datasets, transforms
from torchvision.datasets.folder import IMG_EXTENSIONS

OFFLINE = "mnist-offline"
FOLDER_PREFIX = "folder:"
DATASETS = (OFFLINE, "mnist", "fashion-mnist", "emnist", "svhn", "celeba", FOLDER_PREFIX + "PATH")
# SHA-256 of assets/mnist_offline.npz as written by scripts/build_offline_mnist.py.
OFFLINE_SHA256 = "8d7d20bb0df496a82677715c6a650ff6f8f5d5857495e040c8a0341040188494"

# (channels, image size) of each dataset at its native resolution.
_SHAPES = {
    OFFLINE: (1, 28),
    "mnist": (1, 28),
    "fashion-mnist": (1, 28),
    "emnist": (1, 28),
    "svhn": (3, 32),
    "celeba": (3, 64),
}
_FOLDER_SHAPE = (3, 64)  # any folder is read as RGB, resized to 64x64 unless asked otherwise
_MNIST_LIKE = {"mnist": datasets.MNIST, "fashion-mnist": datasets.FashionMNIST}


class DatasetUnavailable(RuntimeError):
    """A dataset is neither on disk nor downloadable; the message says where its files go."""


def to_tanh_range(images: Tensor) -> Tensor:
    """uint8 in [0, 255] or float in [0, 1]  ->  float32 in [-1, 1] (the generator's tanh range)."""
    if images.dtype == torch.uint8:
        return images.float() / 127.5 - 1.0  # 0 -> -1, 255 -> 1
    if not images.is_floating_point():
        raise TypeError(f"expected uint8 or floating-point images, got {images.dtype}")
    if images.numel() and (images.min() < 0 or images.max() > 1):
        raise ValueError(
            f"expected float images in [0, 1], got values in [{images.min():.3g}, {images.max():.3g}]: "
            "images are already in [-1, 1]? Scale only once."
        )
    return images.float() * 2.0 - 1.0


def to_unit_range(images: Tensor) -> Tensor:
    """[-1, 1] -> [0, 1] for display; clamped, since generator outputs may overshoot a hair."""
    return ((images + 1.0) / 2.0).clamp(0.0, 1.0)


class _ConvertMode:
    """PIL image -> given mode ("L" or "RGB"). A class, not a lambda: DataLoader workers pickle it."""

    def __init__(self, mode: str):
        self.mode = mode

    def __call__(self, image: Image.Image) -> Image.Image:
        return image.convert(self.mode)


def image_transform(channels: int, image_size: int, crop: int | None = None):
    """PIL image -> float32 tensor (channels, image_size, image_size) in [-1, 1]."""
    if channels not in (1, 3):
        raise ValueError(f"channels must be 1 (grey) or 3 (RGB), got {channels}")
    steps = [_ConvertMode("L" if channels == 1 else "RGB")]
    if crop is not None:
        steps.append(transforms.CenterCrop(crop))  # e.g. CelebA: the square around the face
    steps += [
        transforms.Resize(image_size),  # shorter side -> image_size; skipped if already that size
        transforms.CenterCrop(image_size),  # non-square images keep their middle
        transforms.ToTensor(),  # uint8 (H, W, C) in [0, 255] -> float (C, H, W) in [0, 1]
        transforms.Normalize(
            (0.5,) * channels, (0.5,) * channels
        ),  # (x - 0.5) / 0.5: [0, 1] -> [-1, 1]
    ]
    return transforms.Compose(steps)


def dataset_shape(name: str) -> tuple[int, int]:
    """(channels, image size) of a dataset as ``load_dataset`` returns it by default."""
    if name.startswith(FOLDER_PREFIX):
        return _FOLDER_SHAPE
    if name not in _SHAPES:
        raise ValueError(f"unknown dataset {name!r}; choose one of: {', '.join(DATASETS)}")
    return _SHAPES[name]


class OfflineMNIST(Dataset):
    """The MNIST slice shipped with ganlab (no internet needed): the first 600 (train) or 100 (test)
    original images of each digit. Provenance and licence (CC BY-SA 3.0): assets/MNIST_LICENSE.md."""

    classes = [str(digit) for digit in range(10)]

    def __init__(self, train: bool = True):
        asset = resources.files("ganlab") / "assets" / "mnist_offline.npz"
        payload = asset.read_bytes() if asset.is_file() else b""
        # A truncated or edited file would silently train on wrong data; check before using it.
        if hashlib.sha256(payload).hexdigest() != OFFLINE_SHA256:
            raise DatasetUnavailable(
                "ganlab/assets/mnist_offline.npz is missing or corrupted (its SHA-256 does not match "
                "OFFLINE_SHA256); reinstall the kit, e.g. `pip install --force-reinstall ganlab`."
            )
        split = "train" if train else "test"
        with np.load(io.BytesIO(payload)) as arrays:
            self.images = torch.from_numpy(arrays[f"{split}_images"])  # (N, 28, 28) uint8
            self.labels = torch.from_numpy(arrays[f"{split}_labels"].astype(np.int64))
            self.index = torch.from_numpy(
                arrays[f"{split}_index"]
            )  # positions in the official file
        self.train = train

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        return to_tanh_range(self.images[i]).unsqueeze(0), int(self.labels[i])


class _InMemory(TensorDataset):
    """(images, labels) tensors as a dataset, with int labels like every other dataset here."""

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        return self.tensors[0][i], int(self.tensors[1][i])


def _open_image(path) -> Image.Image:
    """A folder dataset's image, decoded as RGB; an unreadable file names itself."""
    try:
        with Image.open(path) as image:
            return image.convert("RGB")
    except (OSError, SyntaxError, ValueError) as err:  # Pillow's errors for broken files
        raise DatasetUnavailable(
            f"{path} cannot be read as an image ({type(err).__name__}: {err}): remove or replace it"
        ) from None


class _FlatFolder(Dataset):
    """Images directly inside one folder, no class sub-folders: every label is 0."""

    def __init__(self, files: list[Path], transform):
        self.files, self.transform, self.classes = files, transform, ["images"]

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        return self.transform(_open_image(self.files[i])), 0


def _subfolders(folder: Path) -> list[Path]:
    # Hidden folders (Jupyter's .ipynb_checkpoints, say) are not classes.
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


class _ClassFolders(datasets.ImageFolder):
    """torchvision's ImageFolder (one sub-folder per class), ignoring hidden folders."""

    def find_classes(self, directory):
        classes = [p.name for p in _subfolders(Path(directory))]
        return classes, {name: i for i, name in enumerate(classes)}


def _image_folder(folder: Path, channels: int, size: int) -> Dataset:
    hint = "one sub-folder of images per class, or images directly in the folder"
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "no such folder"
        raise DatasetUnavailable(f"{FOLDER_PREFIX}{folder}: {what} (expected {hint})")
    transform = image_transform(channels, size)
    if _subfolders(folder):
        try:
            return _ClassFolders(folder, transform=transform, loader=_open_image)
        except FileNotFoundError as err:  # a class folder without images
            raise DatasetUnavailable(f"{FOLDER_PREFIX}{folder}: {err}") from err
    files = sorted(
        p
        for p in folder.iterdir()
        if p.suffix.lower() in IMG_EXTENSIONS and not p.name.startswith(".")
    )
    if not files:
        raise DatasetUnavailable(
            f"{FOLDER_PREFIX}{folder}: no images ({' '.join(IMG_EXTENSIONS)}) found; expected {hint}"
        )
    return _FlatFolder(files, transform)


def _raw_files_intact(cls, root: Path) -> bool:
    """Whether all of an MNIST-like dataset's .gz files are in ``root/NAME/raw`` with their MD5."""
    from torchvision.datasets.utils import check_integrity

    raw = root / cls.__name__ / "raw"
    return all(check_integrity(str(raw / filename), md5) for filename, md5 in cls.resources)


def _where_files_go(name: str, root: Path, split: str) -> str:
    """How to put a dataset's files in place by hand when torchvision cannot fetch them."""
    if name in _MNIST_LIKE:
        cls = _MNIST_LIKE[name]
        raw = root / cls.__name__ / "raw"
        files = "\n".join(f"  {raw / filename}" for filename, _ in cls.resources)
        return (
            f"Download the four files from {cls.mirrors[0]} and put them here:\n{files}\n"
            "With them in place, download=True only checks and unpacks them (nothing is fetched)."
        )
    if name == "emnist":
        raw = root / "EMNIST" / "raw"
        return (
            f"Download {datasets.EMNIST.url} and put it at {raw / 'gzip.zip'}; "
            "download=True then checks and unpacks it."
        )
    if name == "svhn":
        return (
            f"Download {split}_32x32.mat from http://ufldl.stanford.edu/housenumbers/ into {root}."
        )
    base = root / "celeba"
    texts = ", ".join(f for _, _, f in datasets.CelebA.file_list if f.endswith(".txt"))
    return (
        "torchvision fetches CelebA from Google Drive (needs `pip install gdown`), which often refuses "
        "with a daily quota error. Get 'Align&Cropped Images' from "
        "https://mmlab.ie.cuhk.edu.hk/projects/CelebA.html and put in "
        f"{base}: the unzipped folder img_align_celeba/ and {texts}."
    )


def _download_errors() -> tuple[type[BaseException], ...]:
    """The errors a failed download or a missing file raises; anything else is a real bug."""
    errors = (URLError, OSError, RuntimeError)  # URLError is an OSError; spelled out for readers
    try:  # CelebA downloads through gdown, which has its own error for Drive's quota page
        from gdown.exceptions import FileURLRetrievalError
    except ImportError:
        return errors
    return errors + (FileURLRetrievalError,)


def _no_label(_target) -> int:
    return 0  # CelebA has no classes; like a flat folder, every face gets label 0


def load_dataset(
    name: str = OFFLINE,
    root: str | Path = "data",
    train: bool = True,
    download: bool = True,
    image_size: int | None = None,
) -> Dataset:
    """A dataset of ``(image in [-1, 1] shaped (C, H, W), label)``; see the module docstring for names.

    ``root`` is where torchvision keeps downloaded files; ``train=False`` gives the test split
    (a folder has no split: it always gives all its images). ``image_size`` resizes (square).
    """
    channels, native_size = dataset_shape(name)  # also rejects unknown names
    size = image_size or native_size
    if name == OFFLINE:
        dataset = OfflineMNIST(train)
        if size == native_size:
            return dataset
        images, labels = as_tensors(dataset)  # small enough to resize all at once
        return _InMemory(TF.resize(images, [size, size], antialias=True).clamp(-1, 1), labels)
    if name.startswith(FOLDER_PREFIX):
        return _image_folder(Path(name[len(FOLDER_PREFIX) :]).expanduser(), channels, size)

    root = Path(root).expanduser()
    # A file here would read as "not downloaded", and the download would fail on it too.
    if not root.is_dir() and root.exists():
        raise DatasetUnavailable(
            f"data_root {root} is a file, not a folder: give the folder that holds (or will "
            "hold) the downloaded datasets, e.g. data"
        )
    transform = image_transform(channels, size, crop=178 if name == "celeba" else None)
    split = "train" if train else "test"
    try:
        if name in _MNIST_LIKE:
            cls = _MNIST_LIKE[name]
            # Files put in raw/ by hand (as _where_files_go says) are unpacked even with
            # download=False: with every checksum right, torchvision fetches nothing.
            unpack = download or _raw_files_intact(cls, root)
            return cls(root, train=train, transform=transform, download=unpack)
        if name == "emnist":
            dataset = datasets.EMNIST(
                root, "balanced", train=train, transform=transform, download=download
            )
            # EMNIST stores every image transposed (column by column): flip it back once, here.
            dataset.data = dataset.data.transpose(1, 2).contiguous()
            return dataset
        if name == "svhn":
            return datasets.SVHN(root, split=split, transform=transform, download=download)
        return datasets.CelebA(
            root,
            split=split,
            target_type="identity",
            transform=transform,
            target_transform=_no_label,
            download=download,
        )
    except _download_errors() as err:
        why = "could not be downloaded" if download else "was not downloaded (download=False)"
        brief = " ".join(str(err).split())[:300] or type(err).__name__  # one line, however long
        raise DatasetUnavailable(
            f"Dataset {name!r} is not in {root} and {why}: {brief}\n{_where_files_go(name, root, split)}\n"
            f"The default dataset {OFFLINE!r} ships with ganlab and works without internet."
        ) from err


def as_tensors(dataset: Dataset, limit: int | None = None) -> tuple[Tensor, Tensor]:
    """Stack a dataset (or its first ``limit`` items) into (images (N, C, H, W) in [-1, 1], int64 labels)."""
    n = len(dataset) if limit is None else min(limit, len(dataset))
    if isinstance(dataset, OfflineMNIST):  # one vectorised conversion instead of n item calls
        return to_tanh_range(dataset.images[:n]).unsqueeze(1), dataset.labels[:n].clone()
    if isinstance(dataset, _InMemory):  # e.g. mnist-offline at another image_size
        return dataset.tensors[0][:n].clone(), dataset.tensors[1][:n].clone()
    if type(dataset) in (datasets.MNIST, datasets.FashionMNIST, datasets.EMNIST) and n > 0:
        images = to_tanh_range(dataset.data[:n]).unsqueeze(1)
        # The shortcut bypasses dataset.transform, so use it only if that transform is the plain
        # [-1, 1] scaling (no resize, no augmentation): check on the first item.
        first = dataset[0][0]
        if (
            dataset.target_transform is None
            and isinstance(first, Tensor)
            and first.shape == images[0].shape
            and torch.allclose(first, images[0], atol=1e-6)
        ):
            return images, dataset.targets[:n].long().clone()
    if n == 0:
        raise ValueError("as_tensors: the dataset is empty")
    items = [dataset[i] for i in range(n)]
    return torch.stack([image for image, _ in items]), torch.tensor([int(y) for _, y in items])


def make_loader(
    dataset: Dataset,
    batch_size: int = 128,
    shuffle: bool = True,
    num_workers: int = 0,
    drop_last: bool = True,
    seed: int | None = None,
) -> DataLoader:
    """Mini-batches for training. drop_last keeps every batch the same size (BatchNorm prefers it)."""
    if drop_last and len(dataset) < batch_size:
        raise ValueError(
            f"the dataset has {len(dataset)} images, fewer than batch_size={batch_size}, "
            "so drop_last=True would give no batches at all; use a smaller batch_size"
        )
    # A seeded generator makes the shuffle order (and worker seeds) repeatable.
    generator = None if seed is None else torch.Generator().manual_seed(seed)
    return DataLoader(
        dataset,
        batch_size=batch_size,
        shuffle=shuffle,
        num_workers=num_workers,
        drop_last=drop_last,
        generator=generator,
    )
