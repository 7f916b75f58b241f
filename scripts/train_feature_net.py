"""Train the FeatureNet that ganlab.metrics measures with, and save it as a shipped asset.

    python scripts/train_feature_net.py --dataset mnist --data-root data
    python scripts/train_feature_net.py --dataset fashion-mnist --data-root data

It trains on the full training set (60,000 images, fetched by torchvision into
--data-root unless already there), reports accuracy on the 10,000 test images, and
writes the weights (float16: half the size, same accuracy) to
ganlab/assets/feature_net_<dataset>.pt, plus a record (test accuracy, date, command) in
feature_nets.json next to them. Each epoch takes about 1-2 minutes on a 2-core CPU.
"""

import argparse
import hashlib
import io
import json
import shlex
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn.functional as F

from ganlab.cli import guarded
from ganlab.data import as_tensors, load_dataset
from ganlab.metrics import FEATURE_NETS, FeatureNet

ASSETS = Path(__file__).resolve().parents[1] / "ganlab" / "assets"


@torch.no_grad()
def accuracy(net, images, labels, batch_size=1000):
    net.eval()
    correct = sum(
        (net(x).argmax(1) == y).sum().item()
        for x, y in zip(images.split(batch_size), labels.split(batch_size))
    )
    return correct / len(labels)


def train(net, images, labels, epochs, batch_size, lr, seed):
    """Plain supervised training: Adam with a one-cycle learning rate (fast and robust)."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr)
    steps = len(images) // batch_size
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=lr, total_steps=epochs * steps)
    for epoch in range(epochs):
        net.train()
        order = torch.randperm(len(images), generator=generator)
        total = 0.0
        for i in range(steps):
            batch = order[i * batch_size : (i + 1) * batch_size]
            loss = F.cross_entropy(net(images[batch]), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            schedule.step()
            total += loss.item()
        yield epoch, total / steps


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", choices=FEATURE_NETS, default="mnist")
    parser.add_argument(
        "--data-root", default="data", help="torchvision data folder (default: data)"
    )
    parser.add_argument("--epochs", type=int, default=4)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--out", type=Path, help="weights file (default: ganlab/assets/feature_net_<dataset>.pt)"
    )
    args = parser.parse_args(argv)
    out = args.out or ASSETS / f"feature_net_{args.dataset}.pt"

    torch.manual_seed(args.seed)  # the initial weights and dropout
    train_x, train_y = as_tensors(load_dataset(args.dataset, args.data_root, train=True))
    test_x, test_y = as_tensors(load_dataset(args.dataset, args.data_root, train=False))
    print(f"{args.dataset}: {len(train_x)} training, {len(test_x)} test images")

    net, start = FeatureNet(), time.time()
    for epoch, loss in train(
        net, train_x, train_y, args.epochs, args.batch_size, args.lr, args.seed
    ):
        print(
            f"epoch {epoch + 1}/{args.epochs}  loss {loss:.4f}  "
            f"test accuracy {accuracy(net, test_x, test_y):.4f}  ({time.time() - start:.0f} s)"
        )

    # float16 halves the file; integers (BatchNorm's batch counter) stay as they are.
    state = {k: v.half() if v.is_floating_point() else v for k, v in net.state_dict().items()}
    buffer = io.BytesIO()
    torch.save(state, buffer)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(buffer.getvalue())

    # Report the accuracy of what was saved: reload the float16 file into a fresh net.
    shipped = FeatureNet()
    shipped.load_state_dict(torch.load(out, weights_only=True))
    test_accuracy = accuracy(shipped, test_x, test_y)
    print(f"saved {out} ({out.stat().st_size / 1e6:.2f} MB), test accuracy {test_accuracy:.4f}")

    record_file = out.parent / "feature_nets.json"
    records = json.loads(record_file.read_text()) if record_file.exists() else {}
    records[args.dataset] = {
        "file": out.name,
        "sha256": hashlib.sha256(buffer.getvalue()).hexdigest(),
        "test_accuracy": round(test_accuracy, 4),
        "test_images": len(test_x),
        "train_images": len(train_x),
        "epochs": args.epochs,
        "train_seconds": round(time.time() - start),
        "date": datetime.now(timezone.utc).date().isoformat(),
        "command": shlex.join(["python", "scripts/train_feature_net.py", *(argv or sys.argv[1:])]),
        "torch": torch.__version__,
    }
    record_file.write_text(json.dumps(records, indent=2, sort_keys=True) + "\n")
    print(f"recorded in {record_file}")


if __name__ == "__main__":
    sys.exit(guarded(main))
