"""Build ganlab/assets/mnist_offline.npz: the small MNIST slice the kit ships for offline use.

Run it from the repository root, pointing --src at the four official MNIST files
(gzip-compressed IDX, exactly as published):

    python scripts/build_offline_mnist.py --src ../shared/data/mnist

What it does, deterministically:
  1. checks the MD5 of each file against the official values (the same ones torchvision pins);
  2. takes the first 600 images of each digit from the training file (6000 images) and
     the first 100 of each digit from the t10k file (1000 images), kept in file order;
  3. saves them unchanged (uint8, 28x28) together with their indices into the original
     files, so anyone can check the slice against real MNIST;
  4. prints the SHA-256 of the result; ganlab/data.py pins it as OFFLINE_SHA256.

The zip entries get a fixed timestamp, so rebuilding with the same numpy/zlib gives a
byte-identical file. MNIST is CC BY-SA 3.0; see ganlab/assets/MNIST_LICENSE.md.
"""

import argparse
import gzip
import hashlib
import io
import sys
import zipfile
from pathlib import Path

import numpy as np

from ganlab.cli import guarded

# Official MD5s (see shared/data/README.md and torchvision/datasets/mnist.py).
MD5 = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
PER_CLASS = {"train": 600, "t10k": 100}
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "ganlab" / "assets" / "mnist_offline.npz"


def checked_bytes(path: Path) -> bytes:
    """The decompressed contents of an official file, after checking its MD5."""
    raw = path.read_bytes()
    digest = hashlib.md5(raw).hexdigest()
    if digest != MD5[path.name]:
        raise SystemExit(
            f"{path}: MD5 is {digest}, expected {MD5[path.name]} (not the official file)"
        )
    return gzip.decompress(raw)


def read_idx(path: Path) -> np.ndarray:
    """Parse an IDX file: 2 zero bytes, a type byte (8 = uint8), a rank byte, big-endian int32 sizes, data."""
    data = checked_bytes(path)
    assert data[:3] == b"\x00\x00\x08", f"{path.name}: not a uint8 IDX file"
    rank = data[3]
    shape = tuple(np.frombuffer(data, dtype=">i4", count=rank, offset=4))
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * rank).reshape(shape)


def first_per_class(labels: np.ndarray, per_class: int) -> np.ndarray:
    """Indices of the first `per_class` examples of each digit, sorted back into file order."""
    picks = [np.flatnonzero(labels == digit)[:per_class] for digit in range(10)]
    assert all(len(p) == per_class for p in picks), "a digit has too few examples"
    return np.sort(np.concatenate(picks)).astype(np.int64)


def pin_zip_timestamps(path: Path) -> None:
    """Rewrite the .npz with a fixed date on every entry (zip stores the write time otherwise)."""
    with zipfile.ZipFile(path) as zin:
        entries = [(name, zin.read(name)) for name in zin.namelist()]
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zout:
        for name, payload in entries:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.create_system = 3  # "made on Unix" everywhere, so Windows builds match too
            zout.writestr(info, payload)
    path.write_bytes(buffer.getvalue())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--src", type=Path, required=True, help="folder holding the four official .gz files"
    )
    parser.add_argument(
        "--out", type=Path, default=DEFAULT_OUT, help="output .npz (default: the asset)"
    )
    args = parser.parse_args()

    arrays = {}
    for split, prefix in (("train", "train"), ("test", "t10k")):
        images = read_idx(args.src / f"{prefix}-images-idx3-ubyte.gz")
        labels = read_idx(args.src / f"{prefix}-labels-idx1-ubyte.gz")
        index = first_per_class(labels, PER_CLASS[prefix])
        arrays[f"{split}_images"] = images[index]  # (N, 28, 28) uint8, pixels untouched
        arrays[f"{split}_labels"] = labels[index]
        arrays[f"{split}_index"] = index
        print(f"{split}: {len(index)} images, indices {index[0]}..{index[-1]} of {len(labels)}")

    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(args.out, **arrays)
    pin_zip_timestamps(args.out)
    payload = args.out.read_bytes()
    print(f"wrote {args.out} ({len(payload):,} bytes)")
    print(f"sha256 {hashlib.sha256(payload).hexdigest()}")


if __name__ == "__main__":
    sys.exit(guarded(main))
