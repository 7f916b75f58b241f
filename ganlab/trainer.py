"""The training loop: chapter 5's two steps, repeated, with snapshots and checkpoints.

    config = load_config(preset="demo", overrides=["steps=300"])   # ganlab/config.py
    trainer = Trainer(config)   # data, models, optimizers; resumes a matching run in out_dir
    trainer.fit()               # writes samples/, samples.png, curves.png, training.gif, checkpoint.pt

``fit`` is the loop, and it reads top to bottom: draw noise, ``critic_step``, fresh
noise, ``generator_step``, then the bookkeeping. The steps and the optimizers
(``make_optimizers``) are yours, from ``ganlab.training`` (notebook 05): what you
wrote is what trains. Three ideas keep runs reproducible and safe:

* The data order is a pure function of (seed, step): ``EpochSampler`` draws one
  seeded permutation per epoch. A resumed run picks up at the very batch it stopped at.
* A checkpoint (``ganlab/checkpoints.py``) holds everything that changes during
  training, so an interrupted run resumed on the CPU ends with exactly the weights of
  an uninterrupted one. One is written every ``checkpoint_every`` steps, at least every
  ``checkpoint_seconds``, and when you press Ctrl-C (or interrupt the notebook kernel).
* Losses stay on the device and are copied to the host every ``log_every`` steps:
  ``.item()`` each step would make a GPU wait for every kernel.

Four options of the recipe (notebook 07) act here, each a few lines: ``lr_critic`` (the
two-timescale update rule) and ``lr_decay`` set the optimizers' rates before each step
(a pure function of the step, so resuming stays exact), ``ema`` keeps a moving
average of the generator's weights, the generator that snapshots and checkpoints show,
and ``r1`` adds a gradient penalty on real images to the critic every ``R1_EVERY`` steps.

The fast paths (``data_on_device``, ``amp``, ``channels_last``, ``fused_adam``,
``compile``) and multi-GPU training (launch with ``torchrun``) are switches of this
same loop; all are off, or "auto", by default. ``compile`` costs a minute or more of
start-up time, so it pays off only on long runs.
"""

from __future__ import annotations

import copy
import os
import random
import signal
import threading
import time

import imageio.v3 as iio
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from .checkpoints import (
    CheckpointError,
    DiskFull,
    RunLock,
    atomic_save,
    check_writable,
    disk_full_cause,
    disk_full_message,
    load_error,
    make_state,
    nonfinite,
    rng_state,
    run_state,
    set_rng_state,
)
from .config import ConfigError, TrainConfig, build_models, check_data, resolve_device
from .data import as_tensors, load_dataset
from .viz import plot_history, save_gif, save_grid

HISTORY_KEYS = ("loss_c", "loss_g", "d_real", "d_fake")
# R1 is applied lazily (Karras et al. 2020): a penalty step every few critic steps, weighted by
# that interval, costs a fraction of one every step and trains as well.
R1_EVERY = 4


class TrainingDiverged(RuntimeError):
    """A loss became NaN or infinite: the weights are lost, the last good checkpoint is kept."""


class TrainingInterrupted(KeyboardInterrupt):
    """Ctrl-C (or a notebook's interrupt) stopped training; the message says what was kept."""

    def _render_traceback_(self):  # IPython shows this instead of a long traceback
        return [f"TrainingInterrupted: {self}"]


class Trainer:
    """One training run. ``resume``: None = continue a matching run in out_dir if there is one,
    True = must continue one, False = must start fresh. ``overwrite`` replaces an existing run."""

    def __init__(self, config: TrainConfig, resume: bool | None = None, overwrite: bool = False):
        self.config = cfg = config
        self.out_dir = cfg.run_dir
        if self.out_dir.exists() and not self.out_dir.is_dir():
            raise ConfigError(
                f"the output folder {self.out_dir} is a file: choose a folder (--out DIR)"
            )
        self.checkpoint_path = self.out_dir / "checkpoint.pt"
        check_writable(self.out_dir)  # a run that could never be saved stops before it starts
        check_data(cfg)  # a wrong dataset name or image size stops here, before anything is written
        self._setup_distributed()
        self._lock = RunLock(self.out_dir)
        made = [p for p in (self.out_dir, *self.out_dir.parents) if not p.exists()]
        new_lock = self.is_main and not self._lock.path.exists()
        shared = self._lock.held  # by another Trainer of this process: leave it to that one
        try:
            if self.is_main:
                self._lock.acquire()  # makes the folder
            state = run_state(self.checkpoint_path, cfg, resume, overwrite, self.is_main)
            self._barrier()  # process 0 has removed an overwritten run
            self._build(state)
        except BaseException:
            # Nothing to resume, a stub not written yet, ...: this process (a notebook's kernel
            # lives on) must not keep the folder locked against the next run, nor leave behind
            # a lock file or the empty folders it made for a run that never started.
            if new_lock and self._lock.held:
                self._lock.path.unlink(missing_ok=True)  # while held: no one can hold it meanwhile
            if not shared:
                self._lock.release()
            for folder in made if self.is_main else ():  # innermost first
                try:
                    folder.rmdir()
                except OSError:  # not empty: something else wrote there; it stays
                    break
            raise

    def _build(self, state: dict | None):
        """Data, networks, optimizers and the noise, from ``state`` when resuming."""
        from .training import make_optimizers  # your chapter-5 code (or the solutions)

        cfg = self.config
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
        self.opt_c, self.opt_g = make_optimizers(
            self.critic,
            self.generator,
            lr=cfg.lr,
            betas=(cfg.beta1, cfg.beta2),
            **({"fused": True} if fused else {}),
        )
        # What the steps call: the same networks, maybe wrapped for speed or for several GPUs.
        self.g_net, self.c_net = self._wrap(self.generator), self._wrap(self.critic)
        # ema > 0: a copy whose weights follow the generator's slowly; it is never trained itself.
        self.generator_ema = None
        if cfg.ema:
            self.generator_ema = copy.deepcopy(self.generator).requires_grad_(False).eval()
        self._ema_norm_step = None  # the step its BatchNorm statistics were measured at

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

    # ---- the loop ----
    def fit(self) -> dict:
        """Train up to ``total_steps``; returns the history. Writes files in process 0 only."""
        from .training import critic_step, generator_step  # your chapter-5 code (or the solutions)

        cfg, device = self.config, self.device
        if self.is_main:
            self._lock.acquire()  # again: an earlier fit() of this trainer released it
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
        self._last_save = time.monotonic()
        try:
            with _Interrupts(self.world_size == 1) as stop:
                if self.step == 0:
                    self._snapshot()  # the untrained generator: the GIF's first frame
                batches = self._batches(self.step) if self.step < self.total_steps else ()
                for real in batches:
                    self._set_learning_rates()
                    z = torch.randn(real.size(0), cfg.nz, device=device)
                    stats = critic_step(self.c_net, self.g_net, real, z, self.opt_c, cfg.real_label)
                    if cfg.r1 and self.step % R1_EVERY == 0:
                        self._r1_step(real)
                    z = torch.randn(real.size(0), cfg.nz, device=device)
                    stats.update(generator_step(self.c_net, self.g_net, z, self.opt_g))
                    if self.generator_ema is not None:
                        self._update_ema()
                    pending.append(stats)
                    self.step += 1
                    bar.update()

                    done = self.step >= self.total_steps
                    # Read the flag once: a Ctrl-C landing later in this step waits for the next.
                    stopping = stop.requested and not done
                    save = stopping or (not done and self._checkpoint_due())
                    if done or save or self.step % cfg.log_every == 0:
                        self._flush(pending, bar, writer)  # also before every checkpoint: no NaNs
                    if self.step % cfg.sample_every == 0:
                        self._snapshot()
                    if save:
                        self.save_checkpoint()
                    if stopping:  # Ctrl-C: this step is done and saved
                        raise TrainingInterrupted(
                            f"interrupted at step {self.step} of {self.total_steps}; "
                            f"saved {self.checkpoint_path}: run the same command "
                            "(or cell) again to continue from there"
                        )
                    if done:
                        break
            self._flush(pending, bar, writer)
            self.save_checkpoint()
            self._final_pictures()
        except KeyboardInterrupt as err:
            if isinstance(err, TrainingInterrupted):
                raise
            # Mid-step (a second Ctrl-C, or several processes): the networks are half-updated
            # and no checkpoint is written; the last one is what remains.
            kept = (
                f"the last checkpoint, step {self._saved_step}, is in {self.checkpoint_path}"
                if self._saved_step
                else "no checkpoint had been written yet"
            )
            raise TrainingInterrupted(f"interrupted during step {self.step + 1}; {kept}") from None
        finally:
            bar.close()
            if writer is not None:
                writer.close()
            if self._owns_group:
                torch.distributed.destroy_process_group()
            self._lock.release()
        return self.history

    def _set_learning_rates(self):
        """The critic's rate is ``lr_critic`` (TTUR) or ``lr``; ``lr_decay: linear`` scales both
        by the fraction of the run still to go (reaching 0 at ``steps``)."""
        cfg = self.config
        left = 1.0 - self.step / self.schedule_steps if cfg.lr_decay == "linear" else 1.0
        for opt, lr in ((self.opt_c, cfg.lr_critic or cfg.lr), (self.opt_g, cfg.lr)):
            for group in opt.param_groups:
                group["lr"] = lr * max(left, 0.0)

    def _r1_step(self, real: torch.Tensor):
        """One critic update on R1 alone (Mescheder et al. 2018): ``r1`` / 2 times the mean squared
        norm of the critic's gradient at the real images, times ``R1_EVERY`` (it runs that seldom).

        A critic whose score rises steeply at the data gives the generator gradients that
        overshoot; flattening it there is what lets the two settle. The penalty's graph holds a
        gradient, so it runs on the plain critic (no autocast, compile or DDP, which do not support
        a backward through a gradient) and the processes average its gradients themselves.
        """
        self.opt_c.zero_grad(set_to_none=True)
        x = real.detach().float().requires_grad_(True)
        (grad,) = torch.autograd.grad(self.critic(x).sum(), x, create_graph=True)
        penalty = 0.5 * self.config.r1 * R1_EVERY * grad.pow(2).flatten(1).sum(1).mean()
        penalty.backward()
        if self.world_size > 1:
            for p in self.critic.parameters():
                if p.grad is not None:
                    torch.distributed.all_reduce(p.grad)
                    p.grad /= self.world_size
        self.opt_c.step()

    @torch.no_grad()
    def _update_ema(self):
        """Move the averaged weights a step towards the generator's: ema <- decay*ema + (1-decay)*w.

        The decay starts low and rises to ``ema`` ((1 + t) / (10 + t) at step t), so the
        average soon forgets the random initial weights instead of dragging them along.
        """
        decay = min(self.config.ema, (1 + self.step) / (10 + self.step))
        for averaged, current in zip(self.generator_ema.parameters(), self.generator.parameters()):
            averaged.lerp_(current, 1.0 - decay)

    def sampling_generator(self) -> nn.Module:
        """The generator that pictures and checkpoints show: the averaged one when ``ema`` > 0.

        Averaged weights never ran during training, so the BatchNorm statistics gathered
        along the way belong to other weights: they are measured afresh on its own samples.
        """
        if self.generator_ema is None:
            return self.generator
        if self._ema_norm_step != self.step:
            recompute_batchnorm(self.generator_ema, self.config.nz, self.config.seed + self.step)
            self._ema_norm_step = self.step
        return self.generator_ema

    def _checkpoint_due(self) -> bool:
        """Every ``checkpoint_every`` steps, and whenever ``checkpoint_seconds`` have passed."""
        cfg = self.config
        if self.step % cfg.checkpoint_every == 0:
            return True
        late = time.monotonic() - self._last_save >= cfg.checkpoint_seconds
        if self.world_size == 1:
            return late
        if self.step % cfg.log_every:  # several processes: decide together, at the log steps only
            return False
        flag = torch.tensor(float(late), device=self.device)
        torch.distributed.all_reduce(flag, op=torch.distributed.ReduceOp.MAX)
        return bool(flag.item())

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
            self._diverged(f"{HISTORY_KEYS[col]} = {table[row, col].item()} at step {first + row}")
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

    def _diverged(self, what: str):
        cfg = self.config
        kept = (
            f"the last good checkpoint (step {self._saved_step}) is kept in {self.checkpoint_path}"
            if self._saved_step is not None
            else "no checkpoint had been written yet"
        )
        raise TrainingDiverged(
            f"training diverged: {what} (not a finite number); {kept}.\n"
            "Usual causes:\n"
            f"  * learning rate too high (lr={cfg.lr}; DCGAN uses 2e-4)\n"
            "  * a sigmoid before BCE-with-logits (the critic must return raw logits), "
            "or a missing tanh at the generator's output\n"
            f"  * Adam betas (beta1={cfg.beta1}, beta2={cfg.beta2}; DCGAN uses 0.5 and 0.999)\n"
            "  * an over-confident critic: try one-sided label smoothing, real_label=0.9\n"
            "Fix the cause, then train again with --overwrite (or into another --out folder)."
        )

    # ---- samples and pictures ----
    @torch.no_grad()
    def sample(self, z: torch.Tensor | None = None) -> torch.Tensor:
        """Images from the generator in eval mode (BatchNorm uses its running statistics), on the CPU."""
        z = self.fixed_z if z is None else z
        generator = self.sampling_generator()
        generator.eval()
        try:
            return generator(z.to(self.device)).float().cpu()
        finally:
            if generator is self.generator:
                generator.train()

    def _write(self, save, *args, **kwargs):
        """A picture write that says "disk full" plainly (the checkpoints are untouched by it)."""
        try:
            save(*args, **kwargs)
        except (OSError, RuntimeError) as err:
            full = disk_full_cause(err)
            if full is not None:
                raise DiskFull(full.errno, disk_full_message(args[-1], full)) from err
            raise

    def _snapshot(self):
        if self.is_main:
            path = self.out_dir / "samples" / f"step_{self.step:06d}.png"
            self._write(save_grid, self.sample(), path)

    def _final_pictures(self):
        if not self.is_main:
            return
        cfg = self.config
        if self.step % cfg.sample_every:
            self._snapshot()  # the last frame shows the final generator
        self._write(save_grid, self.sample(), self.out_dir / "samples.png")
        self._write(plot_history, self.history, self.out_dir / "curves.png")
        if cfg.gif:  # the frames are the snapshots on disk, so a resumed run's GIF is complete too
            frames = sorted(self.out_dir.glob("samples/step_*.png"), key=lambda p: int(p.stem[5:]))
            frames = [iio.imread(p) for p in frames if int(p.stem[5:]) <= self.step]
            fps = max(4, len(frames) / 10)
            self._write(save_gif, frames, self.out_dir / "training.gif", fps=fps)

    def _tensorboard(self):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as err:
            raise ConfigError(
                "tensorboard: true needs the tensorboard package: pip install "
                "tensorboard (or set tensorboard: false)"
            ) from err
        return SummaryWriter(self.out_dir / "tensorboard")

    # ---- checkpoints ----
    def save_checkpoint(self):
        """Write out_dir/checkpoint.pt atomically (every process must call it: RNG states are gathered).

        Only a good state becomes a checkpoint: a NaN or infinity in any weight, BatchNorm
        statistic or optimizer moment raises ``TrainingDiverged`` and keeps the last one.
        """
        rng = [rng_state()]
        if self.world_size > 1:
            rng = [None] * self.world_size
            torch.distributed.all_gather_object(rng, rng_state())
        if not self.is_main:
            return
        state = make_state(
            self.config,
            step=self.step,
            image_shape=[self.channels, self.image_size],
            generator=self.generator.state_dict(),
            generator_ema=self.sampling_generator().state_dict() if self.config.ema else None,
            critic=self.critic.state_dict(),
            opt_g=self.opt_g.state_dict(),
            opt_c=self.opt_c.state_dict(),
            rng=rng,
            history=self.history,
            fixed_z=self.fixed_z,
        )
        bad = nonfinite(
            {k: state[k] for k in ("generator", "generator_ema", "critic", "opt_g", "opt_c")}
        )
        if bad:
            self._diverged(f"{', '.join(bad[:3])} at step {self.step}")
        atomic_save(state, self.checkpoint_path)
        self._saved_step, self._last_save = self.step, time.monotonic()

    def _restore(self, state: dict):
        path = self.checkpoint_path
        try:
            self.generator.load_state_dict(state["generator"])
            if self.generator_ema is not None:  # a run that had none: start the average here
                self.generator_ema.load_state_dict(state.get("generator_ema") or state["generator"])
            self.critic.load_state_dict(state["critic"])
            self.opt_g.load_state_dict(state["opt_g"])
            self.opt_c.load_state_dict(state["opt_c"])
            history = {k: [float(v) for v in state["history"][k]] for k in HISTORY_KEYS}
            if not (isinstance(state["step"], int) and state["step"] >= 0):
                raise ValueError(f"step is {state['step']!r}")
            if state["fixed_z"].shape != self.fixed_z.shape:
                raise ValueError(f"fixed_z has shape {tuple(state['fixed_z'].shape)}")
        except (RuntimeError, ValueError, KeyError, TypeError, AttributeError) as err:
            raise CheckpointError(
                f"{path} does not fit the models built from its config: "
                f"{load_error(err)}. Was it made with different model code?"
            ) from err
        self.step, self._saved_step = state["step"], state["step"]
        self.history = history
        self.fixed_z = state["fixed_z"]
        rng = state["rng"]
        if len(rng) == self.world_size:
            set_rng_state(rng[self.rank])
        else:  # another number of processes than before: fresh, distinct noise per process
            torch.manual_seed(self.config.seed + 1000 * self.step + self.rank)

    # ---- set-up ----
    def _setup_distributed(self):
        """Under torchrun (WORLD_SIZE > 1): one process per device, joined in a process group."""
        self.world_size = int(os.environ.get("WORLD_SIZE", "1"))
        self.rank = int(os.environ.get("RANK", "0"))
        self.is_main, self._owns_group = self.rank == 0, False
        self.device = resolve_device(self.config.device)
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
        self.schedule_steps = self.total_steps  # lr_decay's horizon, whatever fit() is asked to do
        on_device = cfg.data_on_device
        if on_device == "auto":  # on a GPU, if the whole dataset takes < 25% of its free memory
            nbytes = len(self.dataset) * self.dataset[0][0].numel() * 4
            on_device = (
                self.device.type == "cuda"
                and nbytes < 0.25 * torch.cuda.mem_get_info(self.device)[0]
            )
        self.images = as_tensors(self.dataset)[0].to(self.device) if on_device else None
        if self.images is None and cfg.num_workers:
            _check_workers(cfg.num_workers)

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


def _check_workers(num_workers: int):
    """``ConfigError`` unless this system lets the DataLoader start worker processes: some refuse
    the semaphores their queues need (a container without /dev/shm, a sandbox). Checked before
    training, as torch's own error would come as a traceback at the first batch."""
    import multiprocessing

    try:
        multiprocessing.get_context().Lock()  # what each worker's queue makes first
    except OSError as err:
        raise ConfigError(
            f"num_workers={num_workers}: this system does not let the DataLoader start worker "
            f"processes ({err.strerror or err}); load in the training process: num_workers: 0"
        ) from err


@torch.no_grad()
def recompute_batchnorm(
    generator: nn.Module, nz: int, seed: int, batches: int = 8, size: int = 128
):
    """Reset ``generator``'s BatchNorm running statistics and measure them on its own samples.

    Training-mode forwards of ``batches`` x ``size`` latent vectors (drawn from their own
    seeded generator: the training noise stays untouched), averaged with equal weights
    (``momentum=None``); the generator is left in eval mode.
    """
    norms = [m for m in generator.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    device = next(generator.parameters()).device
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average: every batch counts the same
    noise = torch.Generator().manual_seed(seed)
    generator.train()
    for _ in range(batches):
        generator(torch.randn(size, nz, generator=noise).to(device))
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum
    generator.eval()


def train(config: TrainConfig, resume: bool | None = None, overwrite: bool = False) -> Trainer:
    """Build a ``Trainer`` and run it; returns the trainer (its history, generator, ...)."""
    trainer = Trainer(config, resume=resume, overwrite=overwrite)
    trainer.fit()
    return trainer


class EpochSampler:
    """Which images form each step's batch, as a pure function of (seed, step).

    Epoch e shuffles the dataset with a generator seeded by (seed, e) and cuts it into
    batches (dropping the ragged end, as BatchNorm likes equal batches). With several
    processes each step's global batch is split: process ``rank`` takes one slice.
    """

    def __init__(
        self, n_images: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1
    ):
        self.n, self.batch_size, self.seed = n_images, batch_size, seed
        self.rank, self.world = rank, world_size
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


class _Interrupts:
    """Within ``with _Interrupts() as stop``, a first Ctrl-C only sets ``stop.requested``: the loop
    finishes its step, saves a checkpoint and stops cleanly. A second Ctrl-C stops at once.
    SIGTERM (``kill``, a job scheduler, ``docker stop``) counts as a Ctrl-C too.

    Only in the main thread of a single process (signal handlers live there; several
    processes must stop at the same step, which one signal cannot promise).
    """

    SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self, enabled=True):
        self.enabled = enabled and threading.current_thread() is threading.main_thread()
        self.requested, self._previous = False, {}

    def _handler(self, signum, frame):
        if self.requested:  # the second time: the user really means now
            self._restore()
            raise KeyboardInterrupt
        self.requested = True

    def _restore(self):
        for signum, previous in self._previous.items():
            if signal.getsignal(signum) == self._handler:
                signal.signal(signum, previous)

    def __enter__(self):
        if self.enabled:
            for signum in self.SIGNALS:
                previous = signal.signal(signum, self._handler)
                if previous is None:  # a handler set outside Python: restore Python's own
                    previous = (
                        signal.default_int_handler if signum == signal.SIGINT else signal.SIG_DFL
                    )
                self._previous[signum] = previous
        return self

    def __exit__(self, *exc):
        if self.enabled:
            self._restore()
        return False


class _Autocast(nn.Module):
    """Run the wrapped network in bfloat16 (autocast) and hand back float32, so losses stay fp32."""

    def __init__(self, net: nn.Module, device_type: str):
        super().__init__()
        self.net, self.device_type = net, device_type

    def forward(self, x):
        with torch.autocast(self.device_type, dtype=torch.bfloat16):
            return self.net(x).float()
