"""Train, score and export the generator the kit ships (ganlab/assets/generator_mnist.pt2).

    GANLAB_SOLUTIONS=1 python scripts/make_pretrained.py --data-root data --out runs/pretrained

1. trains the mnist preset (ganlab/configs/mnist.yaml: full MNIST, the DCGAN paper's settings) with the kit's trainer;
   killed and started again, it resumes from the last checkpoint in --out;
2. scores 1,000 samples with ``ganlab.metrics.evaluate`` (FD in the kit's MNIST classifier's
   feature space, precision, recall, classes covered; reference: the shipped offline slice);
3. exports the generator with ``torch.export`` and writes the scores into the ``.json``
   beside it, so the asset says how it was made and how good it is.

Needs the MNIST files in --data-root (torchvision downloads them on first use).
"""

import argparse
import sys
import time
from pathlib import Path

from ganlab import metrics
from ganlab.checkpoints import sample_checkpoint
from ganlab.config import load_config
from ganlab.pretrained import export_generator
from ganlab.trainer import train

REPO = Path(__file__).resolve().parent.parent


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="mnist", help="the training preset (default: mnist)")
    parser.add_argument(
        "--steps", type=int, default=2400, help="training steps (default: 2400, about 5 epochs)"
    )
    parser.add_argument("--data-root", default="data")
    parser.add_argument("--out", default="runs/pretrained", help="the training run's folder")
    parser.add_argument("--asset", default=str(REPO / "ganlab" / "assets" / "generator_mnist.pt2"))
    args = parser.parse_args(argv)

    config = load_config(
        None,
        [
            f"steps={args.steps}",
            f"data_root={args.data_root}",
            f"out_dir={args.out}",
            "progress=false",
            "log_every=100",
        ],
        preset=args.preset,
    )
    started = time.monotonic()
    trainer = train(config, resume=None)  # resumes a matching run in --out, else starts one
    print(f"trained to step {trainer.step} ({time.monotonic() - started:.0f} s in this call)")

    checkpoint = Path(args.out) / "checkpoint.pt"
    fake = sample_checkpoint(
        checkpoint, 1000, seed=0
    )  # the samples `ganlab evaluate CHECKPOINT` scores
    report = metrics.evaluate(fake, dataset="mnist", n=1000, data_root=args.data_root)
    print(metrics.format_report(report))
    scores = {
        key: report[key]
        for key in (
            "fd",
            "precision",
            "recall",
            "classes_covered",
            "fd_floor",
            "precision_floor",
            "recall_floor",
        )
    }
    notes = {
        "made_by": "scripts/make_pretrained.py",
        "device": str(trainer.device),
        "quality": {"n": 1000, "seed": 0, "reference": report["reference"], **scores},
    }
    export_generator(checkpoint, args.asset, notes=notes)
    print(f"wrote {args.asset} and {Path(args.asset).with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
