"""Train, score and export the generator the kit ships (ganlab/assets/generator_mnist.pt2).

    GANLAB_SOLUTIONS=1 python scripts/make_pretrained.py --data-root data --out runs/pretrained

1. trains a preset (default: ganlab/configs/mnist.yaml, full MNIST), changed by ``--set
   key=value`` options, with the kit's trainer; killed and started again, it resumes from
   the last checkpoint in --out (``--steps 0``: no training, export the checkpoint as it is);
   ``--init OLD.pt2`` starts a new run's generator (and its average) from an exported
   generator's weights, the critic from scratch: training continues where that one stopped;
2. scores 10,000 samples with ``ganlab.metrics.evaluate`` (FD in the kit's MNIST classifier's
   feature space, precision, recall, class histogram) against the 10,000 MNIST test images,
   next to the floor of 10,000 real training images;
3. exports the generator with ``torch.export`` and writes the scores into the ``.json``
   beside it, so the asset says how it was made and how good it is.

Needs the MNIST files in --data-root (torchvision downloads them on first use).
"""

import argparse
import json
import os
import sys
import time
from pathlib import Path

import torch

from ganlab import metrics
from ganlab.checkpoints import sample_checkpoint
from ganlab.cli import guarded
from ganlab.config import load_config
from ganlab.pretrained import export_generator
from ganlab.trainer import Trainer

REPO = Path(__file__).resolve().parent.parent
# What the command needs besides its arguments to be repeated: the solutions switch (the
# trainer uses the reference exercises) and the thread count (the speed).
ENVIRONMENT = ("GANLAB_SOLUTIONS", "OMP_NUM_THREADS")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="mnist", help="the training preset (default: mnist)")
    parser.add_argument(
        "--steps", type=int, default=2400, help="training steps (default: 2400, about 5 epochs)"
    )
    parser.add_argument("--set", action="append", default=[], help="config override key=value")
    parser.add_argument("--init", metavar="PT2", help="a new run's generator starts from this one")
    parser.add_argument("--data-root", default="data")
    parser.add_argument("--out", default="runs/pretrained", help="the training run's folder")
    parser.add_argument("--asset", default=str(REPO / "ganlab" / "assets" / "generator_mnist.pt2"))
    args = parser.parse_args(argv)

    checkpoint = Path(args.out) / "checkpoint.pt"
    device, trained = "cpu", None
    if args.steps:
        config = load_config(
            None,
            [
                *args.set,
                f"steps={args.steps}",
                f"data_root={args.data_root}",
                f"out_dir={args.out}",
                "progress=false",
                "log_every=100",
            ],
            preset=args.preset,
        )
        started = time.monotonic()
        trainer = Trainer(config, resume=None)  # resumes a matching run in --out, else starts one
        if args.init and trainer.step == 0:
            weights = torch.export.load(args.init).state_dict  # the same names as a Generator's
            for generator in (trainer.generator, trainer.generator_ema):
                if generator is not None:
                    generator.load_state_dict(weights)
        first = trainer.step
        trainer.fit()
        seconds = time.monotonic() - started
        print(f"trained to step {trainer.step} ({seconds:.0f} s in this call)")
        trained = {"from_step": first, "to_step": trainer.step, "seconds": round(seconds)}
        device = str(trainer.device)

    real = metrics.reference_data("mnist", "mnist", args.data_root)
    n = metrics.reference_size(real, args.data_root)
    fake = sample_checkpoint(checkpoint, n, seed=0)  # the samples `ganlab evaluate` scores
    report = metrics.evaluate(fake, dataset="mnist", real=real, data_root=args.data_root)
    print(metrics.format_report(report))
    scores = {
        key: report[key]
        for key in (
            "fd",
            "precision",
            "recall",
            "classes_covered",
            "class_counts",
            "fd_floor",
            "precision_floor",
            "recall_floor",
        )
    }
    notes = {
        "made_by": "scripts/make_pretrained.py",
        "command": "scripts/make_pretrained.py " + " ".join(sys.argv[1:] if argv is None else argv),
        "environment": {k: os.environ[k] for k in ENVIRONMENT if k in os.environ},
        "device": device,
        "torch": torch.__version__,
        "quality": {"n": n, "seed": 0, "reference": report["reference"], **scores},
    }
    if trained:  # a run resumed in several calls has one such record per asset written
        notes["this_call"] = trained
    if args.init:  # how the generator it started from was made, kept with this one
        notes["initialised_from"] = json.loads(Path(args.init).with_suffix(".json").read_text())
    export_generator(checkpoint, args.asset, notes=notes)
    print(f"wrote {args.asset} and {Path(args.asset).with_suffix('.json')}")
    return 0


if __name__ == "__main__":
    sys.exit(guarded(main))
