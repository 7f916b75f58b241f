"""ganlab.trainer: the loop's outputs, resuming exactly, Ctrl-C, divergence, fast paths, DDP."""

import os

# The switch must be on before ganlab is imported (it fixes the package path at import);
# tests/conftest.py does the same, this keeps the file runnable on its own.
os.environ["GANLAB_SOLUTIONS"] = "1"

import signal
import subprocess
import sys
import time

import pytest
import torch
import yaml

import ganlab.training
from ganlab.benchmodels import DropoutCritic, ResizeConvGenerator
from ganlab.checkpoints import load_checkpoint, load_generator
from ganlab.config import ConfigError
from ganlab.trainer import (
    R1_EVERY,
    EpochSampler,
    Trainer,
    TrainingDiverged,
    TrainingInterrupted,
    train,
)

from runs import assert_same_weights, tiny, weights

# Tiny models: one thread each. Two OpenMP threads per process on a busy 2-core machine (other
# processes, pytest -n 2) spin-wait on each other and made these steps ~100x slower.
torch.set_num_threads(1)


# ---- the loop ----
def test_short_run_writes_outputs(tmp_path):
    trainer = train(tiny(tmp_path, steps=7))
    out = trainer.out_dir
    for name in ("samples.png", "curves.png", "training.gif", "checkpoint.pt"):
        assert (out / name).is_file(), f"{name} was not written"
    snapshots = sorted(p.name for p in (out / "samples").iterdir())
    assert snapshots == [
        "step_000000.png",
        "step_000003.png",
        "step_000006.png",
        "step_000007.png",
    ], f"snapshots at 0, every sample_every steps and at the end expected, got {snapshots}"
    assert all(len(trainer.history[k]) == 7 for k in trainer.history), (
        "one history value per step expected"
    )
    assert not list(out.glob("*.tmp")), "an atomic write left a .tmp file behind"
    state = load_checkpoint(out / "checkpoint.pt")
    assert state["step"] == 7 and len(state["history"]["loss_c"]) == 7, (
        "checkpoint step/history incomplete"
    )
    assert (out / "checkpoint.prev.pt").is_file(), (
        "the previous checkpoint should be kept as checkpoint.prev.pt"
    )
    generator = load_generator(out / "checkpoint.pt")
    assert not generator.training, "load_generator must return the generator in eval mode"
    assert generator(torch.randn(2, 100)).shape == (2, 1, 28, 28), (
        "loaded generator gives wrong shapes"
    )


def killed_at_step_6(monkeypatch, config):
    """Train ``config`` until a "kill" in the middle of step 6 (after the checkpoint at step 4)."""
    real_step, calls = ganlab.training.generator_step, []

    def dies_at_step_6(*args):
        calls.append(1)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return real_step(*args)

    monkeypatch.setattr(ganlab.training, "generator_step", dies_at_step_6)
    with pytest.raises(KeyboardInterrupt):
        Trainer(config).fit()
    monkeypatch.setattr(ganlab.training, "generator_step", real_step)


def test_interrupted_run_resumes_to_identical_weights(tmp_path, monkeypatch):
    straight = train(tiny(tmp_path, "straight", steps=8, checkpoint_every=4))

    killed_at_step_6(monkeypatch, tiny(tmp_path, "resumed", steps=8, checkpoint_every=4))

    resumed = Trainer(tiny(tmp_path, "resumed", steps=8, checkpoint_every=4), resume=True)
    assert resumed.step == 4, f"should resume from the step-4 checkpoint, not step {resumed.step}"
    resumed.fit()
    assert_same_weights(
        weights(straight.generator), weights(resumed.generator), "generator after resume"
    )
    assert_same_weights(weights(straight.critic), weights(resumed.critic), "critic after resume")
    assert resumed.history == straight.history, (
        "the resumed history differs from the uninterrupted one"
    )


RECIPE = dict(lr_critic=4e-4, lr_decay="linear", ema=0.9, r1=1.0)  # TTUR, a schedule, EMA, R1


def test_recipe_options_resume_exactly_and_the_average_is_what_is_sampled(tmp_path, monkeypatch):
    straight = train(tiny(tmp_path, "straight", steps=8, checkpoint_every=4, **RECIPE))
    rates = [g["lr"] for g in straight.opt_c.param_groups + straight.opt_g.param_groups]
    assert rates == [pytest.approx(4e-4 / 8), pytest.approx(2e-4 / 8)], (
        f"lr_critic (TTUR) and lr_decay=linear: step 7 of 8 should use 1/8 of each rate, got {rates}"
    )
    killed_at_step_6(monkeypatch, tiny(tmp_path, "resumed", steps=8, checkpoint_every=4, **RECIPE))
    resumed = train(tiny(tmp_path, "resumed", steps=8, checkpoint_every=4, **RECIPE), resume=True)
    for net in ("generator", "generator_ema", "critic"):
        assert_same_weights(
            weights(getattr(straight, net)), weights(getattr(resumed, net)), f"{net} after resume"
        )

    ema, trained = weights(straight.generator_ema), weights(straight.generator)
    assert not torch.equal(ema["net.0.weight"], trained["net.0.weight"]), (
        "ema=0.9: the averaged weights should lag behind the trained ones"
    )
    state = load_checkpoint(straight.checkpoint_path)
    assert_same_weights(ema, state["generator_ema"], "the checkpoint's generator_ema")
    loaded = weights(load_generator(straight.checkpoint_path))
    assert_same_weights(ema, loaded, "load_generator should return the averaged generator")
    bn_mean = [k for k in ema if k.endswith("running_mean")][0]
    assert not torch.equal(ema[bn_mean], trained[bn_mean]), (
        "the averaged generator's BatchNorm statistics must be measured on its own samples"
    )


@pytest.mark.parametrize(
    "key, value",
    [("ema", 1.0), ("ema", -0.1), ("lr_critic", 0), ("lr_decay", "cosine"), ("r1", -1.0)],
)
def test_recipe_options_are_checked(tmp_path, key, value):
    with pytest.raises(ConfigError, match=key):
        tiny(tmp_path, **{key: value})


def test_r1_runs_every_r1_every_steps_and_descends_its_penalty(tmp_path, monkeypatch):
    """r1: every R1_EVERY steps one critic update on gamma/2 * R1_EVERY * mean ||grad_x D(x)||^2
    at the real images, and nothing else."""
    calls = []
    real_r1_step = Trainer._r1_step
    monkeypatch.setattr(Trainer, "_r1_step", lambda self, real: calls.append(self.step))
    train(tiny(tmp_path, "counted", steps=9, r1=1.0))
    assert calls == list(range(0, 9, R1_EVERY)), f"R1 ran at steps {calls}"
    monkeypatch.setattr(Trainer, "_r1_step", real_r1_step)

    trainer = Trainer(tiny(tmp_path, "step", r1=2.0))
    real = next(trainer._batches(0))
    critic = trainer.critic
    x = real.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(critic(x).sum(), x, create_graph=True)
    penalty = 0.5 * 2.0 * R1_EVERY * grad.pow(2).flatten(1).sum(1).mean()
    params = list(critic.parameters())
    want = torch.autograd.grad(penalty, params, allow_unused=True)  # the last bias: no x in it
    want = [torch.zeros_like(p) if w is None else w for p, w in zip(params, want)]
    before = [p.detach().clone() for p in critic.parameters()]
    trainer.opt_c = torch.optim.SGD(critic.parameters(), lr=1.0)
    trainer._r1_step(real)
    for b, p, w in zip(before, params, want):
        assert torch.allclose(b - p.detach(), w, atol=1e-6, rtol=1e-4), (
            "the R1 step should move the critic by the gradient of its penalty, and only by it"
        )
    assert any(w.abs().max() > 0 for w in want), "the penalty should have a gradient here"


def test_resume_can_extend_a_finished_run(tmp_path):
    train(tiny(tmp_path, steps=3))
    longer = train(tiny(tmp_path, steps=6))  # resume=None: continues automatically, configs match
    assert longer.step == 6 and len(longer.history["loss_g"]) == 6, (
        "the run should have continued to step 6"
    )


def test_nan_loss_raises_diverged_and_keeps_last_good_checkpoint(tmp_path, monkeypatch):
    real_loss, calls = ganlab.training.critic_loss, []

    def breaks_at_step_5(real_logits, fake_logits, real_label=1.0):
        calls.append(1)
        loss = real_loss(real_logits, fake_logits, real_label)
        return loss * float("nan") if len(calls) >= 5 else loss

    monkeypatch.setattr(ganlab.training, "critic_loss", breaks_at_step_5)
    trainer = Trainer(tiny(tmp_path, steps=12, checkpoint_every=4, log_every=2))
    with pytest.raises(TrainingDiverged) as err:
        trainer.fit()
    message = str(err.value)
    assert "step 5" in message, f"the message should name the first bad step: {message}"
    for cause in ("learning rate", "sigmoid", "tanh", "betas", "real_label=0.9"):
        assert cause in message, f"the message should suggest {cause!r}: {message}"
    state = load_checkpoint(trainer.checkpoint_path)
    assert state["step"] == 4, (
        f"the last good checkpoint (step 4) should be kept, found step {state['step']}"
    )
    assert all(torch.isfinite(v).all() for v in state["generator"].values()), (
        "the kept checkpoint has NaNs"
    )


# ---- data and models ----
def test_epoch_sampler_is_seeded_and_shards_disjoint():
    a, b = EpochSampler(100, 8, seed=3).epoch(2), EpochSampler(100, 8, seed=3).epoch(2)
    assert torch.equal(a, b), "the same (seed, epoch) must give the same batches"
    assert not torch.equal(a, EpochSampler(100, 8, seed=3).epoch(3)), "each epoch needs a new order"
    shards = [EpochSampler(100, 8, seed=3, rank=r, world_size=2).epoch(0) for r in (0, 1)]
    assert shards[0].shape == (6, 8), (
        f"100 images / (8 x 2) = 6 steps per epoch, got {shards[0].shape}"
    )
    assert not set(shards[0].flatten().tolist()) & set(shards[1].flatten().tolist()), (
        "shards overlap"
    )


def test_data_on_device_gives_the_same_training(tmp_path):
    loader = train(tiny(tmp_path, "loader", steps=3, data_on_device=False))
    tensor = train(tiny(tmp_path, "tensor", steps=3, data_on_device=True))
    assert tensor.images is not None and tensor.images.shape == (6000, 1, 28, 28), (
        "dataset tensor not built"
    )
    assert_same_weights(weights(loader.generator), weights(tensor.generator), "data_on_device=true")


def test_speed_switches_run_on_cpu(tmp_path):
    # r1 too: its penalty runs on the plain critic, outside autocast
    trainer = train(
        tiny(tmp_path, steps=2, amp="bf16", channels_last=True, fused_adam=True, r1=1.0)
    )
    assert all(torch.isfinite(torch.tensor(v)).all() for v in trainer.history.values()), (
        "non-finite losses"
    )


def test_tensorboard_logs_every_step(tmp_path):
    pytest.importorskip("tensorboard")
    trainer = train(tiny(tmp_path, steps=2, tensorboard=True))
    assert list((trainer.out_dir / "tensorboard").glob("events.out.tfevents.*")), (
        "no TensorBoard event file"
    )


def test_resize_conv_models_and_run(tmp_path):
    critic, generator = DropoutCritic(), ResizeConvGenerator()
    assert generator(torch.randn(3, 100)).shape == (3, 1, 28, 28), (
        "resize-conv generator: wrong output shape"
    )
    assert critic(torch.zeros(3, 1, 28, 28)).shape == (3,), (
        "resize-conv critic must return (B,) logits"
    )
    convs = [m for m in critic.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 64, 96], (
        "resize-conv critic: 32/64/96 channels expected"
    )
    assert [c.stride[0] for c in convs] == [2, 2, 1], (
        "resize-conv critic: stride 2 in the first two blocks only"
    )
    trainer = train(tiny(tmp_path, steps=2, batch_size=4, model="seed004"))
    assert isinstance(load_generator(trainer.checkpoint_path), ResizeConvGenerator), (
        "checkpoint model type lost"
    )


# ---- several processes ----
def test_ddp_two_cpu_processes(tmp_path):
    config = tmp_path / "ddp.yaml"
    config.write_text(
        yaml.safe_dump(
            dict(
                ngf=8,
                ndf=8,
                batch_size=16,
                steps=4,
                sample_every=2,
                checkpoint_every=2,
                log_every=2,
                progress=False,
                r1=1.0,  # its gradients are averaged by hand: DDP cannot differentiate a gradient
            )
        )
    )
    env = dict(os.environ, GANLAB_SOLUTIONS="1", OMP_NUM_THREADS="1")
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        "2",
        "-m",
        "ganlab",
        "train",
        str(config),
        "--out",
        str(tmp_path / "ddp"),
    ]
    started = time.time()
    result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert result.returncode == 0, f"torchrun failed:\n{result.stderr[-3000:]}"
    state = load_checkpoint(tmp_path / "ddp" / "checkpoint.pt")
    assert state["step"] == 4 and len(state["rng"]) == 2, (
        "expected 4 steps and one RNG state per process"
    )
    assert (tmp_path / "ddp" / "training.gif").is_file(), "process 0 should write the outputs"
    print(f"DDP test took {time.time() - started:.1f} s")


# ---- never lose good work ----
def test_ctrl_c_finishes_the_step_saves_and_resumes_exactly(tmp_path, monkeypatch):
    """A real SIGINT in the middle of step 5: the step completes, a checkpoint is written (long
    before checkpoint_every), and the resumed run ends with the uninterrupted run's weights."""
    straight = train(tiny(tmp_path, "straight", steps=8, checkpoint_every=100))
    real_step, calls = ganlab.training.generator_step, []

    def ctrl_c_during_step_5(*args):
        calls.append(1)
        if len(calls) == 5:
            os.kill(os.getpid(), signal.SIGINT)  # what a terminal or a notebook's interrupt sends
        return real_step(*args)

    monkeypatch.setattr(ganlab.training, "generator_step", ctrl_c_during_step_5)
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)  # as in a terminal
    with pytest.raises(TrainingInterrupted) as err:
        Trainer(tiny(tmp_path, "resumed", steps=8, checkpoint_every=100)).fit()
    monkeypatch.setattr(ganlab.training, "generator_step", real_step)
    assert "step 5 of 8" in str(err.value) and "saved" in str(err.value), (
        f"unclear message: {err.value}"
    )
    assert err.value._render_traceback_() == [f"TrainingInterrupted: {err.value}"], (
        "a notebook should show the interruption as one line"
    )
    resumed = Trainer(tiny(tmp_path, "resumed", steps=8, checkpoint_every=100))
    assert resumed.step == 5, (
        f"should resume from the Ctrl-C checkpoint (step 5), not step {resumed.step}"
    )
    resumed.fit()
    assert_same_weights(
        weights(straight.generator), weights(resumed.generator), "generator after Ctrl-C"
    )
    assert resumed.history == straight.history, (
        "the resumed history differs from the uninterrupted one"
    )
    assert signal.signal(signal.SIGINT, handler) is signal.default_int_handler, (
        "fit() must restore the SIGINT handler it found"
    )


def test_sigterm_stops_like_ctrl_c(tmp_path, monkeypatch):
    """``kill``, a job scheduler, ``docker stop``: SIGTERM finishes the step and saves it too."""
    real_step, calls = ganlab.training.generator_step, []

    def terminated_during_step_3(*args):
        calls.append(1)
        if len(calls) == 3:
            os.kill(os.getpid(), signal.SIGTERM)
        return real_step(*args)

    class Killed(Exception):
        """Stands in for SIGTERM's default action, which would end pytest itself."""

    def killed(signum, frame):
        raise Killed

    monkeypatch.setattr(ganlab.training, "generator_step", terminated_during_step_3)
    handler = signal.signal(signal.SIGTERM, killed)
    try:
        with pytest.raises(TrainingInterrupted, match="step 3 of 8"):
            Trainer(tiny(tmp_path, steps=8, checkpoint_every=100)).fit()
        assert signal.getsignal(signal.SIGTERM) is killed, "fit() must restore SIGTERM's handler"
    finally:
        signal.signal(signal.SIGTERM, handler)
    assert load_checkpoint(tmp_path / "run" / "checkpoint.pt")["step"] == 3


def test_ctrl_c_after_the_save_decision_still_saves_before_it_says_so(tmp_path, monkeypatch):
    """A Ctrl-C landing after the step decided not to save (while it logs or draws): the
    message says "saved" only once a checkpoint holds the step it names."""
    real_snapshot, calls = Trainer._snapshot, []

    def ctrl_c_while_drawing(self):
        calls.append(1)
        if len(calls) == 2:  # the snapshot after step 2 (the first is the untrained one)
            os.kill(os.getpid(), signal.SIGINT)
        return real_snapshot(self)

    monkeypatch.setattr(Trainer, "_snapshot", ctrl_c_while_drawing)
    handler = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with pytest.raises(TrainingInterrupted) as err:
            Trainer(tiny(tmp_path, "late", steps=8, sample_every=2, checkpoint_every=100)).fit()
    finally:
        signal.signal(signal.SIGINT, handler)
    assert "saved" in str(err.value), f"unclear message: {err.value}"
    saved = load_checkpoint(tmp_path / "late" / "checkpoint.pt")
    assert f"step {saved['step']} of 8" in str(err.value), (
        f"the message names another step than the checkpoint's {saved['step']}: {err.value}"
    )


def test_checkpoints_come_on_time_too(tmp_path, monkeypatch):
    real_step = ganlab.training.critic_step

    def slow_step(*args, **kwargs):
        time.sleep(0.15)
        return real_step(*args, **kwargs)

    monkeypatch.setattr(ganlab.training, "critic_step", slow_step)
    saved = []
    trainer = Trainer(tiny(tmp_path, steps=8, checkpoint_every=1000, checkpoint_seconds=0.5))
    monkeypatch.setattr(
        trainer,
        "save_checkpoint",
        lambda real=trainer.save_checkpoint: (saved.append(trainer.step), real()),
    )
    trainer.fit()
    assert len(saved) >= 3 and saved[-1] == 8, (
        f"time-based checkpoints expected every ~0.5 s, saved at {saved}"
    )


def test_a_failed_picture_write_is_one_clear_error(tmp_path, capfd):
    if os.geteuid() != 0 or not sys.platform.startswith("linux"):
        pytest.skip("needs root to mount a small tmpfs")
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(disk)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        command = [
            sys.executable,
            "-m",
            "ganlab",
            "train",
            "--preset",
            "demo",
            "--out",
            str(disk / "run"),
            "--set",
            "steps=200",
            "--set",
            "sample_every=1",
            "--set",
            "checkpoint_every=5",
            "--set",
            "progress=false",
        ]
        env = dict(os.environ, OMP_NUM_THREADS="1")
        result = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
        lines = [line for line in result.stderr.splitlines() if line.strip()]
        assert result.returncode == 1, f"a full disk should end with status 1: {result.stderr}"
        assert len(lines) == 1 and "is full" in lines[0] and str(disk / "run") in lines[0], (
            f"one `error:` line naming the full disk's folder expected: {result.stderr!r}"
        )
        assert "Exception ignored" not in result.stderr
        if (disk / "run" / "checkpoint.pt").exists():
            assert load_checkpoint(disk / "run" / "checkpoint.pt")["step"] % 5 == 0, (
                "checkpoint damaged"
            )
    finally:
        subprocess.run(["umount", str(disk)])


def _lockable_by_another_process(folder):
    probe = (
        "import fcntl, sys; f = open(sys.argv[1], 'a+'); "
        "fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)"
    )
    folder.mkdir(parents=True, exist_ok=True)
    return subprocess.run([sys.executable, "-c", probe, str(folder / ".lock")]).returncode == 0


@pytest.mark.skipif(sys.platform == "win32", reason="no run lock without fcntl")
def test_a_trainer_that_cannot_start_leaves_no_lock_and_no_folder(tmp_path):
    # Nothing to resume, in a folder that does not exist yet and in an empty one.
    config = tiny(tmp_path / "a" / "b")
    with pytest.raises(Exception, match="nothing to resume"):
        Trainer(config, resume=True)
    assert not (tmp_path / "a").exists(), "the folders made for the run must go with it"
    (tmp_path / "empty").mkdir()
    with pytest.raises(Exception, match="nothing to resume"):
        Trainer(tiny(tmp_path, name="empty"), resume=True)
    assert list((tmp_path / "empty").iterdir()) == [], "no stale .lock in the empty folder"
    # A run with another config: refused, and this process (a notebook's kernel) must not
    # keep the folder locked against the next command.
    train(tiny(tmp_path, steps=2))
    with pytest.raises(ConfigError):
        Trainer(tiny(tmp_path, steps=2, ngf=16))
    assert _lockable_by_another_process(tmp_path / "run"), "the refused trainer kept the lock"


def test_a_system_without_worker_processes_is_told_to_use_none(tmp_path, monkeypatch):
    """A container without /dev/shm refuses the semaphores DataLoader workers need: before, a
    traceback at the first batch, with the run folder already made."""
    import multiprocessing.synchronize

    def refused(self, *args, **kwargs):
        raise OSError(38, "Function not implemented")

    monkeypatch.setattr(multiprocessing.synchronize.SemLock, "__init__", refused)
    with pytest.raises(
        ConfigError, match="num_workers=2: .*Function not implemented.*num_workers: 0"
    ):
        Trainer(tiny(tmp_path, num_workers=2))
    assert not (tmp_path / "run").exists(), "a run that cannot start must leave no folder"
    Trainer(tiny(tmp_path, num_workers=0))  # the advice works
