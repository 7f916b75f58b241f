"""The training loop: chapter 5's two steps, repeated, with snapshots and checkpoints.

    config = load_config("configs/demo.yaml", ["steps=300"])
    trainer = Trainer(config)   # data, models, optimizers; resumes a matching run in out_dir
    trainer.fit()               # writes samples/, samples.png, curves.png, training.gif, checkpoint.pt

Each iteration calls ``critic_step`` then ``generator_step`` from ``ganlab.training``,
so the steps you wrote in notebook 05 are the ones that train. Three ideas keep runs
reproducible and safe:

* The data order is a pure function of (seed, step): ``EpochSampler`` draws one
  seeded permutation per epoch. A resumed run picks up at the very batch it stopped at.
* A checkpoint holds everything that changes during training (weights, Adam's moments,
  RNG states, history), so an interrupted run resumed on the CPU ends with exactly the
  weights of an uninterrupted one. It is written atomically: never half a file.
* Losses stay on the device and are copied to the host every ``log_every`` steps:
  ``.item()`` each step would make a GPU wait for every kernel.

The fast paths (``data_on_device``, ``amp``, ``channels_last``, ``fused_adam``,
``compile``) and multi-GPU training (launch with ``torchrun``) are switches of this
same loop; all are off, or "auto", by default. ``compile`` costs a minute or more of
start-up time, so it pays off only on long runs.
"""

from __future__ import annotations

import difflib
import os
import random
import shutil
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Optional, Union, get_args, get_origin, get_type_hints

import imageio.v3 as iio
import numpy as np
import torch
import yaml
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .data import as_tensors, load_dataset
from .environment import pick_device
from .viz import plot_history, save_gif, save_grid

CHECKPOINT_FORMAT, CHECKPOINT_VERSION = "ganlab-checkpoint", 1
HISTORY_KEYS = ("loss_c", "loss_g", "d_real", "d_fake")


# ---- errors ----
class ConfigError(ValueError):
    """A training config is invalid, or asks for something that would destroy an existing run."""


class CheckpointError(RuntimeError):
    """A checkpoint file is missing, corrupt, truncated or does not fit this version of ganlab."""


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite: the weights are lost, the last good checkpoint is kept."""


# ---- configuration ----
@dataclass
class TrainConfig:
    """Every option of a run. Defaults are the DCGAN paper's (Radford et al. 2016)."""

    name: str = "dcgan"  # the run's name; out_dir defaults to runs/NAME
    out_dir: Optional[str] = None
    dataset: str = "mnist-offline"  # a name from ganlab.data.DATASETS, or folder:PATH
    data_root: str = "data"  # where downloaded datasets live
    image_size: Optional[int] = None  # None: the dataset's own size
    num_workers: int = 0  # DataLoader processes (when data is not on the device)
    model: str = "dcgan"  # dcgan (chapters 2-3) or seed004 (ganlab.benchmodels)
    nz: int = 100  # latent dimension
    ngf: int = 64  # generator width (dcgan only)
    ndf: int = 64  # critic width (dcgan only)
    upsample: str = "transposed"  # dcgan generator: transposed or nearest
    dropout: Optional[float] = None  # critic dropout; None: 0 for dcgan, 0.25 for seed004
    batch_size: int = 128  # per process when several GPUs train together
    lr: float = 2e-4
    beta1: float = 0.5  # 0.5, not Adam's usual 0.9: momentum destabilises GANs
    beta2: float = 0.999
    real_label: float = 1.0  # 0.9 = one-sided label smoothing
    steps: Optional[int] = None  # training steps; None: `epochs` passes over the data
    epochs: int = 5
    seed: int = 0
    device: str = "auto"  # auto (cuda > mps > cpu), cpu, cuda, cuda:1, mps
    sample_every: int = 500  # write samples/step_NNNNNN.png (and a GIF frame)
    checkpoint_every: int = 1000
    log_every: int = 50  # copy losses to the host (and check them) this often
    n_samples: int = 64  # images in each snapshot grid
    tensorboard: bool = False
    gif: bool = True
    progress: bool = True
    data_on_device: Union[str, bool] = "auto"  # whole dataset as one tensor on the GPU
    amp: str = "off"  # off or bf16 (autocast for the forward passes)
    channels_last: bool = False
    fused_adam: Union[str, bool] = "auto"  # auto: fused kernels on CUDA
    compile: bool = False

    def __post_init__(self):
        if self.amp is False:  # YAML 1.1 reads a bare `off` as false
            self.amp = "off"
        hints = get_type_hints(TrainConfig)
        for f in fields(self):
            value, kind = getattr(self, f.name), hints[f.name]
            if float in _types(kind) and isinstance(value, str):
                try:  # PyYAML reads 2e-4 (no dot) as a string; accept it as the number it means
                    value = float(value)
                    setattr(self, f.name, value)
                except ValueError:
                    pass
            if not _matches(value, kind):
                raise ConfigError(
                    f"{f.name} must be {_type_name(kind)}, got {value!r} "
                    f"({type(value).__name__}).\n{self.allowed_keys()}"
                )
            if f.name in _CHOICES and value not in _CHOICES[f.name]:
                raise ConfigError(f"{f.name} must be one of {_CHOICES[f.name]}, got {value!r}")
            if f.name in _POSITIVE and value is not None and value <= 0:
                raise ConfigError(f"{f.name} must be positive, got {value!r}")

    @classmethod
    def allowed_keys(cls) -> str:
        hints = get_type_hints(cls)
        lines = [
            f"  {f.name}: {_type_name(hints[f.name])}"
            + (f" {_CHOICES[f.name]}" if f.name in _CHOICES else "")
            + f" (default {f.default!r})"
            for f in fields(cls)
        ]
        return "Allowed keys:\n" + "\n".join(lines)

    @classmethod
    def from_dict(cls, values: dict) -> TrainConfig:
        if not isinstance(values, dict):
            raise ConfigError(
                f"a config must be a mapping of key: value, got {type(values).__name__}"
            )
        names = [f.name for f in fields(cls)]
        for key in values:
            if key not in names:
                close = difflib.get_close_matches(str(key), names, n=1)
                hint = f" (did you mean {close[0]!r}?)" if close else ""
                raise ConfigError(f"unknown config key {key!r}{hint}.\n{cls.allowed_keys()}")
        return cls(**values)

    @property
    def run_dir(self) -> Path:
        return Path(self.out_dir) if self.out_dir else Path("runs") / self.name


_CHOICES = {
    "model": ("dcgan", "seed004"),
    "upsample": ("transposed", "nearest"),
    "amp": ("off", "bf16"),
    "data_on_device": ("auto", True, False),
    "fused_adam": ("auto", True, False),
}
_POSITIVE = (
    "image_size",
    "nz",
    "ngf",
    "ndf",
    "batch_size",
    "lr",
    "steps",
    "epochs",
    "sample_every",
    "checkpoint_every",
    "log_every",
    "n_samples",
)
# The keys that define a run's mathematics: resuming requires them unchanged. The others
# (length, logging, the speed switches, paths) may change between sessions of one run.
RUN_DEFINING = (
    "dataset",
    "image_size",
    "model",
    "nz",
    "ngf",
    "ndf",
    "upsample",
    "dropout",
    "batch_size",
    "lr",
    "beta1",
    "beta2",
    "real_label",
    "seed",
)
# Preset configs for the command line (`ganlab train --preset cpu`); configs/cpu.yaml mirrors it.
PRESETS = {
    "cpu": {
        "name": "cpu",
        "ngf": 64,
        "ndf": 32,
        "batch_size": 64,
        "steps": 2500,
        "sample_every": 100,
        "checkpoint_every": 500,
        "log_every": 50,
    }
}


def _types(kind):
    return get_args(kind) if get_origin(kind) is Union else (kind,)


def _matches(value, kind) -> bool:
    for t in _types(kind):
        if t is type(None):
            if value is None:
                return True
        elif isinstance(value, bool) and t in (int, float):
            continue  # True is an int to Python, but never a number in a config
        elif isinstance(value, t) or (t is float and isinstance(value, int)):  # 1 is a fine float
            return True
    return False


def _type_name(kind) -> str:
    return " or ".join("null" if t is type(None) else t.__name__ for t in _types(kind))


def load_config(path=None, overrides=(), preset: str | None = None) -> TrainConfig:
    """A config from a YAML file (and/or a preset), then ``key=value`` overrides (values read as YAML)."""
    if preset is not None and preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {sorted(PRESETS)}")
    values = dict(PRESETS[preset]) if preset else {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            loaded = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as err:
            raise ConfigError(f"{path} is not valid YAML: {err}") from err
        if not isinstance(loaded, dict):
            raise ConfigError(f"{path} must hold a mapping of key: value lines")
        values.update(loaded)
        values.setdefault("name", path.stem)  # configs/demo.yaml -> runs/demo
    for item in overrides:
        key, sep, text = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(f"override {item!r} must look like key=value, e.g. steps=200")
        values[key.strip()] = yaml.safe_load(text)  # "200" -> 200, "true" -> True, "[1, 2]" -> list
    return TrainConfig.from_dict(values)


# ---- models and data ----
def build_models(
    config: TrainConfig, channels: int, image_size: int
) -> tuple[nn.Module, nn.Module]:
    """(generator, critic) as the config describes them."""
    if config.model == "seed004":
        from .benchmodels import SeedCritic, SeedGenerator

        dropout = 0.25 if config.dropout is None else config.dropout
        return SeedGenerator(config.nz, channels, image_size), SeedCritic(
            channels, image_size, dropout
        )
    # Imported here, not at the top: these are your files (or the solutions), and an unfinished
    # one should fail when training starts, with its own message, not when ganlab is imported.
    from .models import Critic, Generator

    return (
        Generator(config.nz, channels, image_size, config.ngf, config.upsample),
        Critic(channels, image_size, config.ndf, config.dropout or 0.0),
    )


class EpochSampler:
    """Which images form each step's batch, as a pure function of (seed, step).

    Epoch e shuffles the dataset with a generator seeded by (seed, e) and cuts it into
    batches (dropping the ragged end, as BatchNorm likes equal batches). With several
    processes each step's global batch is split: process ``rank`` takes one slice.
    """

    def __init__(
        self, n_images: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1
    ):
        self.n, self.batch_size, self.seed, self.rank, self.world = (
            n_images,
            batch_size,
            seed,
            rank,
            world_size,
        )
        self.steps_per_epoch = n_images // (batch_size * world_size)
        if self.steps_per_epoch == 0:
            raise ConfigError(
                f"the dataset has {n_images} images, fewer than batch_size={batch_size} "
                f"x {world_size} process(es): use a smaller batch_size"
            )

    def epoch(self, epoch: int) -> torch.Tensor:
        """(steps_per_epoch, batch_size) image indices of this process in ``epoch``."""
        g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
        perm = torch.randperm(self.n, generator=g)[
            : self.steps_per_epoch * self.world * self.batch_size
        ]
        return perm.view(self.steps_per_epoch, self.world, self.batch_size)[:, self.rank]

    def from_step(self, step: int):
        """Index batches from global step ``step`` on, forever."""
        while True:
            epoch, offset = divmod(step, self.steps_per_epoch)
            for batch in self.epoch(epoch)[offset:]:
                yield batch
                step += 1


class _Autocast(nn.Module):
    """Run the wrapped network in bfloat16 (autocast) and hand back float32, so losses stay fp32."""

    def __init__(self, net: nn.Module, device_type: str):
        super().__init__()
        self.net, self.device_type = net, device_type

    def forward(self, x):
        with torch.autocast(self.device_type, dtype=torch.bfloat16):
            return self.net(x).float()


# ---- the trainer ----
class Trainer:
    """One training run. ``resume``: None = continue a matching run in out_dir if there is one,
    True = must continue one, False = must start fresh. ``overwrite`` replaces an existing run."""

    def __init__(self, config: TrainConfig, resume: bool | None = None, overwrite: bool = False):
        self.config = cfg = config
        self.out_dir = cfg.run_dir
        self.checkpoint_path = self.out_dir / "checkpoint.pt"
        self._setup_distributed()
        state = self._existing_run(resume, overwrite)

        torch.manual_seed(cfg.seed)  # the same initial weights in every process and every run
        self._build_data()
        self.generator, self.critic = (
            m.to(self.device) for m in build_models(cfg, self.channels, self.image_size)
        )
        if cfg.channels_last:
            self.generator, self.critic = (
                m.to(memory_format=torch.channels_last) for m in (self.generator, self.critic)
            )
        fused = self.device.type == "cuda" if cfg.fused_adam == "auto" else cfg.fused_adam
        adam = dict(lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), **({"fused": True} if fused else {}))
        self.opt_g = torch.optim.Adam(self.generator.parameters(), **adam)
        self.opt_c = torch.optim.Adam(self.critic.parameters(), **adam)
        # What the steps call: the same networks, maybe wrapped for speed or for several GPUs.
        self.g_net, self.c_net = self._wrap(self.generator), self._wrap(self.critic)

        self.step, self.history, self._saved_step = 0, {k: [] for k in HISTORY_KEYS}, None
        # A fixed noise batch: every snapshot shows the same z, so they can be compared.
        self.fixed_z = torch.randn(
            cfg.n_samples, cfg.nz, generator=torch.Generator().manual_seed(cfg.seed)
        )
        if state is not None:
            self._restore(state)
        else:  # each process its own noise; random and numpy too, for user code that uses them
            torch.manual_seed(cfg.seed + self.rank)
            random.seed(cfg.seed + self.rank)
            np.random.seed(cfg.seed + self.rank)

    # ---- set-up ----
    def _setup_distributed(self):
        """Under torchrun (WORLD_SIZE > 1): one process per device, joined in a process group."""
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.is_main, self._owns_group = self.rank == 0, False
        self.device = torch.device(pick_device(self.config.device))
        if self.world_size > 1:
            import torch.distributed as dist

            if self.device.type == "cuda":
                self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
                torch.cuda.set_device(self.device)
            if not dist.is_initialized():
                dist.init_process_group("nccl" if self.device.type == "cuda" else "gloo")
                self._owns_group = True

    def _barrier(self):
        if self.world_size > 1:
            torch.distributed.barrier()

    def _existing_run(self, resume, overwrite):
        """The checkpoint to continue from, or None; refuse anything that would lose a run."""
        path, cfg = self.checkpoint_path, self.config
        if overwrite:
            if resume:
                raise ConfigError("resume and overwrite exclude each other: pick one")
            if self.is_main:  # the user asked to replace the old run: remove what would mix with it
                for old in [
                    path,
                    path.with_name("checkpoint.prev.pt"),
                    *self.out_dir.glob("samples/step_*.png"),
                ]:
                    old.unlink(missing_ok=True)
            self._barrier()
            return None
        if not path.exists():
            if resume:
                raise CheckpointError(
                    f"nothing to resume: {path} does not exist (train without --resume first)"
                )
            return None
        if resume is False:
            raise ConfigError(
                f"{self.out_dir} already holds a run ({path}); resume it (--resume), "
                "replace it (--overwrite) or train into another folder (--out DIR)"
            )
        state = load_checkpoint(path)
        old = TrainConfig.from_dict(state["config"])
        diffs = [
            f"  {k}: {getattr(old, k)!r} in the checkpoint, {getattr(cfg, k)!r} now"
            for k in RUN_DEFINING
            if getattr(old, k) != getattr(cfg, k)
        ]
        if diffs:
            raise ConfigError(
                f"{path} belongs to a run with a different config:\n"
                + "\n".join(diffs)
                + "\nRefusing to mix them. Use --overwrite to replace that run, --out DIR "
                "to train elsewhere, or restore those values to continue it."
            )
        return state

    def _build_data(self):
        cfg = self.config
        if not self.is_main:
            self._barrier()  # let process 0 download the dataset first
        self.dataset = load_dataset(
            cfg.dataset, cfg.data_root, train=True, image_size=cfg.image_size
        )
        if self.is_main:
            self._barrier()
        self.channels, self.image_size = self.dataset[0][0].shape[-3:-1]
        self.sampler = EpochSampler(
            len(self.dataset), cfg.batch_size, cfg.seed, self.rank, self.world_size
        )
        self.total_steps = cfg.steps or cfg.epochs * self.sampler.steps_per_epoch
        on_device = cfg.data_on_device
        if on_device == "auto":  # on a GPU, if the whole dataset takes < 25% of its free memory
            nbytes = len(self.dataset) * self.dataset[0][0].numel() * 4
            on_device = (
                self.device.type == "cuda"
                and nbytes < 0.25 * torch.cuda.mem_get_info(self.device)[0]
            )
        self.images = as_tensors(self.dataset)[0].to(self.device) if on_device else None

    def _wrap(self, net: nn.Module) -> nn.Module:
        cfg = self.config
        if cfg.amp == "bf16":
            net = _Autocast(net, self.device.type)
        if self.world_size > 1:
            from torch.nn.parallel import DistributedDataParallel as DDP

            # DDP averages the gradients of all processes during backward. The critic runs twice
            # (real, then fake) before one backward: fine, both gradients reach each weight before
            # its all-reduce fires. Each forward also copies process 0's BatchNorm statistics to the
            # others, in place; autograd does not need them in training mode, so that is safe too.
            net = DDP(net, device_ids=[self.device.index] if self.device.type == "cuda" else None)
        return torch.compile(net) if cfg.compile else net

    def _batches(self, start: int):
        """Real image batches on the device, from step ``start`` on."""
        indices = self.sampler.from_step(start)
        if self.images is not None:  # data on the device: indexing is the whole pipeline
            batches = (self.images[idx.to(self.device)] for idx in indices)
        else:
            # Its own generator: otherwise creating the loader draws from the global RNG, and a
            # resumed run would draw its noise from a different point than an uninterrupted one.
            loader = DataLoader(
                self.dataset,
                batch_sampler=(idx.tolist() for idx in indices),
                num_workers=self.config.num_workers,
                pin_memory=self.device.type == "cuda",
                generator=torch.Generator().manual_seed(self.config.seed),
            )
            batches = (images.to(self.device, non_blocking=True) for images, _ in loader)
        for real in batches:
            yield (
                real.contiguous(memory_format=torch.channels_last)
                if self.config.channels_last
                else real
            )

    # ---- the loop ----
    def fit(self) -> dict:
        """Train up to ``total_steps``; returns the history. Writes files in process 0 only."""
        from .training import critic_step, generator_step  # your chapter-5 code (or the solutions)

        cfg, device = self.config, self.device
        writer = self._tensorboard() if cfg.tensorboard and self.is_main else None
        bar = tqdm(
            total=self.total_steps,
            initial=self.step,
            desc=cfg.name,
            dynamic_ncols=True,
            disable=not (cfg.progress and self.is_main),
        )
        if self.is_main and cfg.progress:
            what = f"resuming at step {self.step}" if self.step else "starting"
            bar.write(
                f"{cfg.name}: {what}, {self.total_steps} steps on {device} "
                f"({self.sampler.steps_per_epoch} per epoch), writing to {self.out_dir}"
            )
        pending = []  # per-step dicts of 0-d tensors, still on the device
        try:
            if self.step == 0:
                self._snapshot()  # the untrained generator: the GIF's first frame
            batches = self._batches(self.step) if self.step < self.total_steps else ()
            for real in batches:
                z = torch.randn(real.size(0), cfg.nz, device=device)
                stats = critic_step(self.c_net, self.g_net, real, z, self.opt_c, cfg.real_label)
                z = torch.randn(real.size(0), cfg.nz, device=device)
                stats.update(generator_step(self.c_net, self.g_net, z, self.opt_g))
                pending.append(stats)
                self.step += 1
                bar.update()
                done = self.step >= self.total_steps
                if done or self.step % cfg.log_every == 0 or self.step % cfg.checkpoint_every == 0:
                    self._flush(
                        pending, bar, writer
                    )  # also before every checkpoint: never save NaNs
                if self.step % cfg.sample_every == 0:
                    self._snapshot()
                if self.step % cfg.checkpoint_every == 0 and not done:
                    self.save_checkpoint()
                if done:
                    break
            self._flush(pending, bar, writer)
            self.save_checkpoint()
            self._final_pictures()
        finally:
            bar.close()
            if writer is not None:
                writer.close()
            if self._owns_group:
                torch.distributed.destroy_process_group()
        return self.history

    def _flush(self, pending: list, bar, writer):
        """Copy pending losses to the host in one transfer, check them, append them to the history."""
        if not pending:
            return
        first = self.step - len(pending) + 1
        table = torch.stack(
            [torch.stack([p[k].float() for k in HISTORY_KEYS]) for p in pending]
        ).cpu()
        pending.clear()
        bad = ~torch.isfinite(table)
        if self.world_size > 1:  # stop together: one process alone would leave the others waiting
            flag = torch.tensor(float(bad.any()), device=self.device)
            torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
            if flag.item() and not bad.any():
                raise TrainingDiverged(
                    f"another process saw a non-finite loss near step {self.step}"
                )
        for k, key in enumerate(HISTORY_KEYS):
            self.history[key].extend(table[:, k].tolist())
        if bad.any():
            row, col = (int(i) for i in bad.nonzero()[0])
            self._diverged(first + row, HISTORY_KEYS[col], table[row, col].item())
        last = dict(zip(HISTORY_KEYS, table[-1].tolist()))
        bar.set_postfix(
            loss_c=f"{last['loss_c']:.3f}",
            loss_g=f"{last['loss_g']:.3f}",
            D_x=f"{last['d_real']:.2f}",
            D_Gz=f"{last['d_fake']:.2f}",
        )
        if writer is not None:
            for i, row in enumerate(table.tolist()):
                for key, value in zip(HISTORY_KEYS, row):
                    writer.add_scalar(f"train/{key}", value, first + i)

    def _diverged(self, step: int, key: str, value: float):
        cfg = self.config
        kept = (
            f"the last good checkpoint (step {self._saved_step}) is kept in {self.checkpoint_path}"
            if self._saved_step is not None
            else "no checkpoint had been written yet"
        )
        raise TrainingDiverged(
            f"training diverged at step {step}: {key} = {value} (not a finite number); {kept}.\n"
            "Usual causes:\n"
            f"  * learning rate too high (lr={cfg.lr}; DCGAN uses 2e-4)\n"
            "  * a sigmoid before BCE-with-logits (the critic must return raw logits), "
            "or a missing tanh at the generator's output\n"
            f"  * Adam betas (beta1={cfg.beta1}, beta2={cfg.beta2}; DCGAN uses 0.5 and 0.999)\n"
            "  * an over-confident critic: try one-sided label smoothing, real_label=0.9\n"
            "Fix the cause, then train again with --overwrite (or into another --out folder)."
        )

    @torch.no_grad()
    def sample(self, z: torch.Tensor | None = None) -> torch.Tensor:
        """Images from the generator in eval mode (BatchNorm uses its running statistics), on the CPU."""
        z = self.fixed_z if z is None else z
        self.generator.eval()
        try:
            return self.generator(z.to(self.device)).float().cpu()
        finally:
            self.generator.train()

    def _snapshot(self):
        if self.is_main:
            save_grid(self.sample(), self.out_dir / "samples" / f"step_{self.step:06d}.png")

    def _final_pictures(self):
        if not self.is_main:
            return
        cfg = self.config
        if self.step % cfg.sample_every:
            self._snapshot()  # the last frame shows the final generator
        save_grid(self.sample(), self.out_dir / "samples.png")
        plot_history(self.history, self.out_dir / "curves.png")
        if cfg.gif:  # the frames are the snapshots on disk, so a resumed run's GIF is complete too
            frames = sorted(self.out_dir.glob("samples/step_*.png"), key=lambda p: int(p.stem[5:]))
            frames = [iio.imread(p) for p in frames if int(p.stem[5:]) <= self.step]
            save_gif(frames, self.out_dir / "training.gif", fps=max(4, len(frames) / 10))

    def _tensorboard(self):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:
            raise ConfigError(
                "tensorboard: true needs the tensorboard package: pip install tensorboard "
                "(or set tensorboard: false)"
            ) from err
        return SummaryWriter(self.out_dir / "tensorboard")

    # ---- checkpoints ----
    def save_checkpoint(self):
        """Write out_dir/checkpoint.pt atomically (every process must call it: RNG states are gathered)."""
        rng = [_rng_state()]
        if self.world_size > 1:
            rng = [None] * self.world_size
            torch.distributed.all_gather_object(rng, _rng_state())
        if not self.is_main:
            return
        state = {
            "format": CHECKPOINT_FORMAT,
            "version": CHECKPOINT_VERSION,
            "config": asdict(self.config),
            "step": self.step,
            "image_shape": [self.channels, self.image_size],
            "generator": self.generator.state_dict(),
            "critic": self.critic.state_dict(),
            "opt_g": self.opt_g.state_dict(),
            "opt_c": self.opt_c.state_dict(),
            "rng": rng,
            "history": self.history,
            "fixed_z": self.fixed_z,
        }
        atomic_save(state, self.checkpoint_path)
        self._saved_step = self.step

    def _restore(self, state: dict):
        path = self.checkpoint_path
        try:
            self.generator.load_state_dict(state["generator"])
            self.critic.load_state_dict(state["critic"])
            self.opt_g.load_state_dict(state["opt_g"])
            self.opt_c.load_state_dict(state["opt_c"])
        except (RuntimeError, ValueError, KeyError) as err:
            raise CheckpointError(
                f"{path} does not fit the models built from its config: "
                f"{str(err).splitlines()[0]}. Was it made with different model code?"
            ) from err
        self.step, self._saved_step = state["step"], state["step"]
        self.history = {k: list(state["history"][k]) for k in HISTORY_KEYS}
        self.fixed_z = state["fixed_z"]
        rng = state["rng"]
        if len(rng) == self.world_size:
            _set_rng_state(rng[self.rank])
        else:  # another number of processes than before: fresh, distinct noise per process
            torch.manual_seed(self.config.seed + 1000 * self.step + self.rank)


def train(config: TrainConfig, resume: bool | None = None, overwrite: bool = False) -> Trainer:
    """Build a ``Trainer`` and run it; returns the trainer (its history, generator, ...)."""
    trainer = Trainer(config, resume=resume, overwrite=overwrite)
    trainer.fit()
    return trainer


# ---- checkpoints ----
def _rng_state() -> dict:
    """Every random generator training may touch, in types ``torch.load(weights_only=True)`` accepts."""
    kind, keys, *rest = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": (kind, torch.from_numpy(keys.astype(np.int64)), *rest),
        "python": random.getstate(),
    }


def _set_rng_state(state: dict):
    torch.set_rng_state(state["torch"])
    if (
        state["cuda"]
        and torch.cuda.is_available()
        and len(state["cuda"]) == torch.cuda.device_count()
    ):
        torch.cuda.set_rng_state_all(state["cuda"])
    kind, keys, *rest = state["numpy"]
    np.random.set_state((kind, keys.numpy().astype(np.uint32), *rest))
    random.setstate(state["python"])


def atomic_save(obj, path):
    """``torch.save`` that never leaves half a file: write a temporary file, then rename it.

    ``os.replace`` swaps names atomically, so ``path`` is always either the old complete
    file or the new complete one, even if the process dies mid-write. The previous file
    is kept as ``<name>.prev.pt``.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())  # the bytes are on disk before the rename makes them the checkpoint
    if path.exists():
        prev, prev_tmp = path.with_suffix(".prev.pt"), path.with_suffix(".prev.pt.tmp")
        prev_tmp.unlink(missing_ok=True)
        try:
            os.link(
                path, prev_tmp
            )  # a second name for the same bytes: no copy, path stays in place
        except OSError:  # file systems without hard links
            shutil.copyfile(path, prev_tmp)
        os.replace(prev_tmp, prev)
    os.replace(tmp, path)


_CHECKPOINT_KEYS = (
    "config",
    "step",
    "image_shape",
    "generator",
    "critic",
    "opt_g",
    "opt_c",
    "rng",
    "history",
    "fixed_z",
)


def load_checkpoint(path, map_location="cpu") -> dict:
    """Read and check a checkpoint; any problem raises ``CheckpointError`` saying what to do."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(
            f"{path}: no such checkpoint (`ganlab train` writes OUT_DIR/checkpoint.pt)"
        )
    prev = path.with_suffix(".prev.pt")
    fallback = (
        f" The previous checkpoint {prev} may be intact: copy it over {path.name}."
        if prev.is_file()
        else ""
    )
    try:
        # weights_only: tensors and plain containers only, so loading never runs code from the file.
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as err:
        reason = (str(err).strip().splitlines() or [type(err).__name__])[0][:200]
        raise CheckpointError(
            f"{path} cannot be read: it is truncated or corrupt (an interrupted copy? "
            f"a full disk?): {reason}.{fallback} Otherwise retrain with --overwrite."
        ) from err
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise CheckpointError(
            f"{path} is not a ganlab checkpoint (no {CHECKPOINT_FORMAT!r} tag): "
            "give a checkpoint.pt written by `ganlab train`"
        )
    if state.get("version") != CHECKPOINT_VERSION:
        raise CheckpointError(
            f"{path} has checkpoint version {state.get('version')!r}, but this ganlab "
            f"reads version {CHECKPOINT_VERSION}: use the ganlab version that wrote it"
        )
    missing = [key for key in _CHECKPOINT_KEYS if key not in state]
    if missing:
        raise CheckpointError(f"{path} is incomplete, it lacks {missing}.{fallback}")
    try:
        TrainConfig.from_dict(state["config"])
    except ConfigError as err:
        raise CheckpointError(f"{path} holds a config this ganlab cannot use: {err}") from err
    return state


def load_generator(path, device="cpu") -> nn.Module:
    """The generator saved in a checkpoint, on ``device``, in eval mode, ready to sample."""
    state = load_checkpoint(path)
    config = TrainConfig.from_dict(state["config"])
    generator, _ = build_models(config, *state["image_shape"])
    try:
        generator.load_state_dict(state["generator"])
    except RuntimeError as err:
        raise CheckpointError(
            f"{path}: its generator weights do not fit the Generator its config builds "
            f"({str(err).splitlines()[0]}). Was it trained with different model code?"
        ) from err
    return generator.to(device).eval()


@torch.no_grad()
def sample_checkpoint(path, n: int, seed: int = 0, device="cpu") -> torch.Tensor:
    """``n`` images from a checkpoint's generator, on the CPU. ``z`` is drawn on the CPU from
    ``seed``, so a seed gives the same images on any device (`ganlab sample`, `ganlab evaluate`)."""
    generator = load_generator(path, device)
    z = torch.randn(n, generator.nz, generator=torch.Generator().manual_seed(seed))
    return generator(z.to(device)).float().cpu()
