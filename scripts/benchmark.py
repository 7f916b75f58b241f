"""Benchmark: a plain textbook DCGAN loop against the kit's trainer, same model, same data, one process.

    GANLAB_SOLUTIONS=1 python scripts/benchmark.py --model resize-conv --dataset mnist --data-root data \
        --epochs 30 --preset gpu --out bench/gpu           # on a GPU
    GANLAB_SOLUTIONS=1 python scripts/benchmark.py --preset cpu --skip-plain --eval-every 100 \
        --out bench/cpu                                                  # the CPU preset on a laptop

For each loop it prints the seconds per epoch, their ratio, and the quality (ganlab.metrics:
Fréchet distance in the kit's MNIST classifier's feature space, precision, recall, classes
holding >= 5 % of the samples, the class percentages) against training wall time, next to
the floor that as many real training images score. The reference is the real test set:
all 10,000 MNIST test images when they are in --data-root, else the shipped slice's 1,000.
With ``ema`` on, each evaluation also scores the trained (not averaged) generator: rows
"raw" and "kit" of one run, side by side.
Evaluation time is not counted as training time. Results also go to OUT/results.json and
the final sample grids to OUT/{plain,kit}_samples.png.

The plain loop is the PyTorch DCGAN tutorial's: a torchvision DataLoader, fp32, one
``.item()`` per step, the critic scoring real and fake batches, the generator reusing the fakes.
"""

import argparse
import json
import sys
import time
from pathlib import Path

import torch
import torch.nn as nn

from ganlab import metrics
from ganlab.cli import guarded
from ganlab.config import build_models, load_config
from ganlab.data import load_dataset
from ganlab.environment import pick_device
from ganlab.trainer import Trainer
from ganlab.viz import save_grid


def _sync(device):
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _evaluate(sample, n, seed, args, nz=100):
    with torch.no_grad():
        z = torch.randn(n, nz, generator=torch.Generator().manual_seed(seed))
        fake = torch.cat([sample(chunk) for chunk in z.split(500)]).float().cpu()
    report = metrics.evaluate(
        fake, dataset=args.metric_dataset, n=n, real=args.reference, data_root=args.data_root
    )
    return report, fake


def _row(loop, epoch, wall, report, step=None):
    return {
        "loop": loop,
        "epoch": epoch,
        "step": step,
        "train_seconds": round(wall, 2),
        **{k: report[k] for k in ("fd", "precision", "recall", "classes_covered", "class_counts")},
        "class_percent": [round(100 * c / report["n_fake"], 1) for c in report["class_counts"]],
        "fd_floor": report["fd_floor"],
    }


def _print_row(row):
    share = row["class_percent"]
    print(
        f"{row['loop']:>5} epoch {row['epoch']:>6.2f} (step {row['step']})  "
        f"{row['train_seconds']:>8.1f} s  "
        f"FD {row['fd']:>8.2f} (floor {row['fd_floor']:.2f})  precision {row['precision']:.3f}  "
        f"recall {row['recall']:.3f}  classes >= {metrics.COVERED:.0%}: {row['classes_covered']:>2}"
        f"  class % {min(share):.1f}-{max(share):.1f}",
        flush=True,
    )


def plain_loop(config, dataset, device, epochs, batch_size, args):
    """The textbook loop (PyTorch DCGAN tutorial), timed per epoch, evaluated after each epoch."""
    torch.manual_seed(config.seed)
    image = dataset[0][0]
    netG, netD = (m.to(device) for m in build_models(config, image.shape[0], image.shape[-1]))
    criterion = nn.BCEWithLogitsLoss()
    optD = torch.optim.Adam(netD.parameters(), lr=config.lr, betas=(config.beta1, config.beta2))
    optG = torch.optim.Adam(netG.parameters(), lr=config.lr, betas=(config.beta1, config.beta2))
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=batch_size, shuffle=True, drop_last=True, num_workers=args.workers
    )
    rows, wall, epoch_seconds = [], 0.0, []
    for epoch in range(1, epochs + 1):
        _sync(device)
        start = time.perf_counter()
        for real, _ in loader:
            real = real.to(device)
            b = real.size(0)
            netD.zero_grad()
            errD_real = criterion(netD(real), torch.ones(b, device=device))
            fake = netG(torch.randn(b, config.nz, device=device))
            errD_fake = criterion(netD(fake.detach()), torch.zeros(b, device=device))
            (errD_real + errD_fake).backward()
            optD.step()
            netG.zero_grad()
            errG = criterion(netD(fake), torch.ones(b, device=device))
            errG.backward()
            optG.step()
            _ = (errD_real + errD_fake).item(), errG.item()  # the tutorial logs every step
        _sync(device)
        epoch_seconds.append(time.perf_counter() - start)
        wall += epoch_seconds[-1]
        if epoch % args.plain_eval_every == 0 or epoch == epochs:
            netG.eval()
            report, fake = _evaluate(lambda z: netG(z.to(device)), args.eval_n, 1, args, config.nz)
            netG.train()
            rows.append(_row("plain", epoch, wall, report))
            _print_row(rows[-1])
    save_grid(fake[:64], Path(args.out) / "plain_samples.png")
    return rows, epoch_seconds, report


def kit_trainer(config, device, args):
    """The kit's trainer with the config's switches, stopped every ``eval_every`` steps to be measured."""
    trainer = Trainer(config, overwrite=True)
    spe = trainer.sampler.steps_per_epoch
    total = trainer.total_steps
    every = args.eval_every or spe
    rows, wall, report = [], 0.0, None
    for stop in list(range(every, total, every)) + [total]:
        trainer.total_steps = stop
        _sync(device)
        start = time.perf_counter()
        trainer.fit()
        _sync(device)
        wall += time.perf_counter() - start
        if trainer.generator_ema is not None:  # the same run without the average, side by side
            trainer.generator.eval()
            raw, _ = _evaluate(
                lambda z: trainer.generator(z.to(device)), args.eval_n, 1, args, config.nz
            )
            trainer.generator.train()
            rows.append(_row("raw", stop / spe, wall, raw, stop))
            _print_row(rows[-1])
        report, fake = _evaluate(
            lambda z: trainer.sample(z.to(device)), args.eval_n, 1, args, config.nz
        )
        rows.append(_row("kit", stop / spe, wall, report, stop))
        _print_row(rows[-1])
    save_grid(fake[:64], Path(args.out) / "kit_samples.png")
    return rows, wall / (total / spe), report


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument(
        "--config",
        help="a config file (YAML); default: the gpu preset on CUDA, else the cpu preset",
    )
    p.add_argument("--preset", help="a preset (ganlab/configs/NAME.yaml) instead of --config")
    p.add_argument("--set", action="append", default=[], help="config overrides key=value")
    p.add_argument("--model", choices=("dcgan", "resize-conv"), help="override the config's model")
    p.add_argument("--dataset", default=None, help="override the config's dataset (e.g. mnist)")
    p.add_argument("--data-root", default="data")
    p.add_argument(
        "--epochs", type=int, help="epochs for both loops (default: the config's length)"
    )
    p.add_argument("--plain-batch-size", type=int, default=256)
    p.add_argument("--plain-epochs", type=int, help="epochs of the plain loop (default --epochs)")
    p.add_argument(
        "--plain-eval-every", type=int, default=1, help="evaluate the plain loop every N epochs"
    )
    p.add_argument("--skip-plain", action="store_true")
    p.add_argument(
        "--eval-every", type=int, help="evaluate the kit's run every N steps (default: each epoch)"
    )
    p.add_argument(
        "--eval-n",
        type=int,
        default=None,
        help="images per evaluation (default: the real test set's size, 10,000 for MNIST)",
    )
    p.add_argument(
        "--metric-dataset", default="mnist", help="which shipped classifier scores the samples"
    )
    p.add_argument(
        "--reference",
        default="auto",
        help="real data whose test split is the reference (auto: full MNIST if in --data-root, "
        "else the offline slice)",
    )
    p.add_argument("--workers", type=int, default=0, help="DataLoader workers of the plain loop")
    p.add_argument("--device", default="auto")
    p.add_argument("--out", default="bench/latest")
    args = p.parse_args(argv)

    device = torch.device(pick_device(args.device))
    args.reference = metrics.reference_data(args.metric_dataset, args.reference, args.data_root)
    args.eval_n = args.eval_n or metrics.reference_size(args.reference, args.data_root)
    config_path = args.config
    preset = args.preset or (None if config_path else "gpu" if device.type == "cuda" else "cpu")
    overrides = list(args.set) + [
        f"out_dir={Path(args.out) / 'kit_run'}",
        f"device={device}",
        "progress=false",
        "gif=false",
    ]
    overrides += [f"model={args.model}"] * bool(args.model) + [f"dataset={args.dataset}"] * bool(
        args.dataset
    )
    overrides += [f"data_root={args.data_root}"]
    if args.epochs:
        overrides += [f"epochs={args.epochs}", "steps=null"]
    config = load_config(config_path, overrides, preset=preset)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    dataset = load_dataset(
        config.dataset, config.data_root, train=True, image_size=config.image_size
    )
    name = (
        torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else f"cpu ({torch.get_num_threads()} threads)"
    )
    print(
        f"device: {name}; torch {torch.__version__}; dataset {config.dataset} ({len(dataset)} images); "
        f"model {config.model}",
        flush=True,
    )

    results = {
        "device": name,
        "torch": torch.__version__,
        "dataset": config.dataset,
        "model": config.model,
        "kit_config": {k: getattr(config, k) for k in config.__dataclass_fields__},
        "rows": [],
    }
    if not args.skip_plain:
        epochs = args.plain_epochs or args.epochs or config.epochs
        rows, seconds, _ = plain_loop(config, dataset, device, epochs, args.plain_batch_size, args)
        results["rows"] += rows
        # The first epoch pays one-off costs (allocator warm-up, cuDNN autotuning): report the steady state too.
        results["plain_seconds_per_epoch"] = sum(seconds) / len(seconds)
        results["plain_seconds_per_epoch_steady"] = sum(seconds[1:]) / max(1, len(seconds) - 1)
    rows, kit_spe, report = kit_trainer(config, device, args)
    results["rows"] += rows
    results["kit_seconds_per_epoch"] = kit_spe
    results["floor"] = {
        k: report[f"{k}_floor"] for k in ("fd", "precision", "recall", "classes_covered")
    }
    results["reference"] = f"{report['reference']} ({report['n_real']} images)"
    print(
        f"floor ({report['n_floor']} real train images vs the {report['reference']} set): "
        f"FD {results['floor']['fd']:.2f}  precision "
        f"{results['floor']['precision']:.3f}  recall {results['floor']['recall']:.3f}  "
        f"classes {results['floor']['classes_covered']}"
    )
    if "plain_seconds_per_epoch" in results:
        ratio = results["plain_seconds_per_epoch"] / kit_spe
        results["speedup"] = ratio
        print(
            f"seconds per epoch: plain {results['plain_seconds_per_epoch']:.2f} "
            f"(steady {results['plain_seconds_per_epoch_steady']:.2f}), kit {kit_spe:.2f} "
            f"(compile and warm-up included); ratio {ratio:.1f}x"
        )
    (Path(args.out) / "results.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(guarded(main))
