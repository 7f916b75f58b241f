"""ganlab.trainer: configs, the loop's outputs, checkpoints, resuming, divergence, fast paths, DDP."""

import os

# The switch must be on before ganlab is imported (it fixes the package path at import);
# tests/conftest.py does the same, this keeps the file runnable on its own.
os.environ["GANLAB_SOLUTIONS"] = "1"

import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
import yaml

import ganlab.training
from ganlab.benchmodels import SeedCritic, SeedGenerator
from ganlab.trainer import (
    PRESETS,
    CheckpointError,
    ConfigError,
    EpochSampler,
    TrainConfig,
    Trainer,
    TrainingDiverged,
    load_checkpoint,
    load_config,
    load_generator,
    train,
)

# Tiny models: one thread each. Two OpenMP threads per process on a busy 2-core machine (other
# processes, pytest -n 2) spin-wait on each other and made these steps ~100x slower.
torch.set_num_threads(1)

REPO = Path(__file__).resolve().parent.parent


def tiny(tmp_path, name="run", **overrides):
    """A config small enough to train a few steps in well under a second."""
    values = dict(
        name=name,
        out_dir=str(tmp_path / name),
        ngf=8,
        ndf=8,
        batch_size=16,
        steps=6,
        sample_every=3,
        checkpoint_every=3,
        log_every=2,
        progress=False,
    )
    values.update(overrides)
    return TrainConfig.from_dict(values)


def weights(module):
    return {k: v.clone() for k, v in module.state_dict().items()}


def assert_same_weights(a, b, what):
    for key in a:
        assert torch.equal(a[key], b[key]), f"{what}: {key} differs"


# ---- configs ----
def test_unknown_key_lists_allowed_keys():
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_dict({"lrr": 0.1})
    message = str(err.value)
    assert "'lrr'" in message and "did you mean 'lr'" in message, (
        f"the message should name the key: {message}"
    )
    assert "batch_size: int" in message and "amp: str" in message, (
        f"allowed keys and types missing: {message}"
    )


def test_wrong_type_lists_allowed_keys():
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_dict({"batch_size": "big"})
    message = str(err.value)
    assert "batch_size must be int" in message, f"the message should name key and type: {message}"
    assert "Allowed keys" in message and "lr: float" in message, f"allowed keys missing: {message}"
    with pytest.raises(ConfigError, match="steps must be int or null"):
        TrainConfig(steps=True)  # a bool is not a number in a config
    with pytest.raises(ConfigError, match="amp must be one of"):
        TrainConfig(amp="fp8")


def test_load_config_yaml_and_overrides(tmp_path):
    path = tmp_path / "exp.yaml"
    path.write_text(
        "lr: 2e-4\nbatch_size: 32\namp: off\n"
    )  # PyYAML: 2e-4 is a string, off is False
    config = load_config(path, ["steps=7", "tensorboard=true", "data_on_device=false"])
    assert config.lr == 2e-4 and config.amp == "off", (
        "YAML quirks (2e-4 as text, off as false) not handled"
    )
    assert (config.steps, config.tensorboard, config.data_on_device) == (7, True, False), (
        "overrides not applied"
    )
    assert config.name == "exp" and config.run_dir == Path("runs/exp"), (
        "the run should be named after the file"
    )
    with pytest.raises(ConfigError, match="key=value"):
        load_config(path, ["steps"])
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "missing.yaml")


def test_every_shipped_config_is_valid():
    files = sorted((REPO / "configs").glob("*.yaml"))
    assert files, "configs/*.yaml missing"
    for path in files:
        load_config(path)  # raises ConfigError naming the problem


def test_cpu_yaml_matches_cpu_preset():
    on_disk = yaml.safe_load((REPO / "configs" / "cpu.yaml").read_text())
    assert on_disk == PRESETS["cpu"], (
        "configs/cpu.yaml and trainer.PRESETS['cpu'] have drifted apart"
    )


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


def test_interrupted_run_resumes_to_identical_weights(tmp_path, monkeypatch):
    straight = train(tiny(tmp_path, "straight", steps=8, checkpoint_every=4))

    real_step, calls = ganlab.training.generator_step, []

    def dies_at_step_6(*args):  # a "kill" in the middle of step 6, after the checkpoint at step 4
        calls.append(1)
        if len(calls) == 6:
            raise KeyboardInterrupt
        return real_step(*args)

    monkeypatch.setattr(ganlab.training, "generator_step", dies_at_step_6)
    with pytest.raises(KeyboardInterrupt):
        Trainer(tiny(tmp_path, "resumed", steps=8, checkpoint_every=4)).fit()
    monkeypatch.setattr(ganlab.training, "generator_step", real_step)

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


def test_resume_can_extend_a_finished_run(tmp_path):
    train(tiny(tmp_path, steps=3))
    longer = train(tiny(tmp_path, steps=6))  # resume=None: continues automatically, configs match
    assert longer.step == 6 and len(longer.history["loss_g"]) == 6, (
        "the run should have continued to step 6"
    )


@pytest.mark.parametrize("damage", ["truncate", "garbage", "foreign"])
def test_damaged_checkpoint_raises_checkpoint_error(tmp_path, damage):
    trainer = train(tiny(tmp_path, steps=2))
    path = trainer.checkpoint_path
    if damage == "truncate":
        path.write_bytes(path.read_bytes()[:5000])
    elif damage == "garbage":
        path.write_bytes(b"not a checkpoint at all")
    else:
        torch.save({"weights": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    assert str(path) in str(err.value), f"the message must name the file: {err.value}"
    with pytest.raises(CheckpointError):
        Trainer(tiny(tmp_path, steps=4))  # resuming from it fails the same way


def test_mismatched_resume_is_refused_and_checkpoint_untouched(tmp_path):
    trainer = train(tiny(tmp_path, steps=2))
    before = trainer.checkpoint_path.read_bytes()
    with pytest.raises(ConfigError) as err:
        Trainer(tiny(tmp_path, steps=2, lr=1e-3))
    assert "lr" in str(err.value) and "--overwrite" in str(err.value), (
        f"unclear refusal: {err.value}"
    )
    with pytest.raises(ConfigError, match="already holds a run"):
        Trainer(tiny(tmp_path, steps=2), resume=False)
    assert trainer.checkpoint_path.read_bytes() == before, (
        "a refused run must not touch the checkpoint"
    )
    fresh = Trainer(tiny(tmp_path, steps=2, lr=1e-3), overwrite=True)
    assert fresh.step == 0, "--overwrite should start a new run"


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
    trainer = train(tiny(tmp_path, steps=2, amp="bf16", channels_last=True, fused_adam=True))
    assert all(torch.isfinite(torch.tensor(v)).all() for v in trainer.history.values()), (
        "non-finite losses"
    )


def test_tensorboard_logs_every_step(tmp_path):
    pytest.importorskip("tensorboard")
    trainer = train(tiny(tmp_path, steps=2, tensorboard=True))
    assert list((trainer.out_dir / "tensorboard").glob("events.out.tfevents.*")), (
        "no TensorBoard event file"
    )


def test_seed004_models_and_run(tmp_path):
    critic, generator = SeedCritic(), SeedGenerator()
    assert generator(torch.randn(3, 100)).shape == (3, 1, 28, 28), (
        "seed004 generator: wrong output shape"
    )
    assert critic(torch.zeros(3, 1, 28, 28)).shape == (3,), "seed004 critic must return (B,) logits"
    convs = [m for m in critic.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [c.out_channels for c in convs] == [32, 64, 96], (
        "seed004 critic: 32/64/96 channels expected"
    )
    assert [c.stride[0] for c in convs] == [2, 2, 1], (
        "seed004 critic: stride 2 in the first two blocks only"
    )
    trainer = train(tiny(tmp_path, steps=2, batch_size=4, model="seed004"))
    assert isinstance(load_generator(trainer.checkpoint_path), SeedGenerator), (
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
