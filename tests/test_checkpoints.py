"""ganlab.checkpoints: atomic writes, good-or-nothing, clear load errors, which run a command continues."""

import os

os.environ["GANLAB_SOLUTIONS"] = "1"


import json
import subprocess
import sys

import pytest
import torch

from ganlab.checkpoints import (
    CheckpointError,
    DiskFull,
    NotWritable,
    RunLock,
    RunLocked,
    atomic_save,
    check_writable,
    load_checkpoint,
    load_generator,
    nonfinite,
    run_state,
    sample_checkpoint,
)
from ganlab.config import ConfigError
from ganlab.trainer import Trainer, train

from runs import tiny

torch.set_num_threads(1)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "foreign", "empty", "code"])
class RunsCode:
    """Unpickling this calls os.system: a checkpoint must never be loaded that way."""

    def __reduce__(self):
        return (os.system, ("touch ran-code",))


def _flip_a_bit(path):
    """One bit flipped mid-file, in the weights: the zip stays whole, only its checksum knows."""
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))


DAMAGE = {  # what is done to the file -> the words the message must use
    "truncate": (lambda p: p.write_bytes(p.read_bytes()[:5000]), "truncated"),
    "bit flip": (_flip_a_bit, "damaged"),
    "garbage": (lambda p: p.write_bytes(b"not a checkpoint at all"), "not a PyTorch file"),
    "foreign": (lambda p: torch.save({"weights": torch.zeros(3)}, p), "not a ganlab checkpoint"),
    "empty": (lambda p: p.write_bytes(b""), "empty"),
    "code": (lambda p: torch.save({"x": RunsCode()}, p), "Python objects besides tensors"),
}


@pytest.mark.parametrize("damage", sorted(DAMAGE))
def test_damaged_checkpoint_raises_a_checkpoint_error_naming_the_cause(
    tmp_path, damage, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    trainer = train(tiny(tmp_path, steps=4))  # checkpoints at steps 3 and 4: a .prev.pt exists
    path = trainer.checkpoint_path
    do, words = DAMAGE[damage]
    do(path)
    with pytest.raises(CheckpointError) as err:
        load_checkpoint(path)
    message = str(err.value)
    assert str(path) in message, f"the message must name the file: {message}"
    assert words in message, f"{damage}: the message should say {words!r}: {message}"
    assert message.rstrip().endswith((".", ")", "`")), f"the message is cut off: {message!r}"
    assert "checkpoint.prev.pt" in message or damage in ("foreign", "code"), (
        f"the message should point at the intact previous checkpoint: {message}"
    )
    assert not (tmp_path / "ran-code").exists(), "loading the checkpoint ran code from it"
    with pytest.raises(CheckpointError):
        Trainer(tiny(tmp_path, steps=4))  # resuming from it fails the same way


def test_nonfinite_finds_every_bad_tensor():
    state = {"net": {"w": torch.ones(2), "bn.running_var": torch.tensor([1.0, float("nan")])},
             "opt": {"state": {0: {"exp_avg": torch.tensor([float("inf")])}}, "step": 3},
             "ints": torch.tensor([1, 2])}  # fmt: skip
    assert nonfinite(state) == ["net/bn.running_var", "opt/state/0/exp_avg"]


def test_a_state_with_nonfinite_batchnorm_statistics_is_never_saved(tmp_path, monkeypatch):
    """Losses can stay finite while BatchNorm's running statistics are NaN (they are only used
    in eval mode): the checkpoint kept must still be a good one, and so must its .prev."""
    import ganlab.training

    real_step, calls = ganlab.training.generator_step, []

    def poisons_batchnorm_at_step_5(critic, generator, z, opt_g):
        calls.append(1)
        if len(calls) == 5:
            bn = next(m for m in generator.modules() if isinstance(m, torch.nn.BatchNorm2d))
            bn.running_var.fill_(float("nan"))
        return real_step(critic, generator, z, opt_g)

    monkeypatch.setattr(ganlab.training, "generator_step", poisons_batchnorm_at_step_5)
    trainer = Trainer(tiny(tmp_path, steps=9, checkpoint_every=2))  # saves at 2, 4; 6 is refused
    with pytest.raises(Exception) as err:
        trainer.fit()
    assert "running_var" in str(err.value) and "step 6" in str(err.value), (
        f"the refusal should name the bad tensor and step: {err.value}"
    )
    for name in ("checkpoint.pt", "checkpoint.prev.pt"):
        state = torch.load(trainer.out_dir / name, weights_only=True)
        assert state["step"] <= 4 and not nonfinite(state["generator"]), (
            f"{name} is not a good checkpoint"
        )


def test_missing_checkpoint_with_a_previous_one_is_never_replaced_silently(tmp_path):
    trainer = train(tiny(tmp_path, steps=6, checkpoint_every=3))
    trainer.checkpoint_path.unlink()  # checkpoint.prev.pt (step 3) stays
    prev = trainer.out_dir / "checkpoint.prev.pt"
    before = prev.read_bytes()
    with pytest.raises(ConfigError, match="--resume"):
        Trainer(tiny(tmp_path, steps=6, checkpoint_every=3))
    assert prev.read_bytes() == before, "the refused command touched checkpoint.prev.pt"
    resumed = Trainer(tiny(tmp_path, steps=6, checkpoint_every=3), resume=True)
    assert resumed.step == 3, (
        f"--resume should continue from checkpoint.prev.pt (step 3), not {resumed.step}"
    )


def test_atomic_save_on_a_full_disk_keeps_the_previous_file(tmp_path):
    if os.geteuid() != 0 or not sys.platform.startswith("linux"):
        pytest.skip("needs root to mount a small tmpfs")
    disk = tmp_path / "disk"
    disk.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)]).returncode:
        pytest.skip("cannot mount a tmpfs here")
    try:
        atomic_save({"w": torch.zeros(1000)}, disk / "checkpoint.pt")
        before = (disk / "checkpoint.pt").read_bytes()
        with pytest.raises(DiskFull) as err:
            atomic_save({"w": torch.zeros(600_000)}, disk / "checkpoint.pt")  # 2.4 MB > 1 MB
        assert "full" in str(err.value) and str(disk) in str(err.value), f"unclear: {err.value}"
        assert not str(err.value).startswith("[Errno"), f"the message alone: {err.value}"
        assert (disk / "checkpoint.pt").read_bytes() == before, "the previous checkpoint changed"
        assert sorted(p.name for p in disk.iterdir()) == ["checkpoint.pt"], (
            "temporary files left behind"
        )
    finally:
        subprocess.run(["umount", str(disk)])


def test_a_second_process_is_told_who_holds_the_run(tmp_path):
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from ganlab.checkpoints import RunLock; "
         f"RunLock({str(tmp_path)!r}).acquire(); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        with pytest.raises(RunLocked) as err:
            RunLock(tmp_path).acquire()
        assert f"process {holder.pid}" in str(err.value), f"the holder is not named: {err.value}"
    finally:
        holder.kill()
        holder.wait()
    lock = RunLock(tmp_path)
    lock.acquire()  # free again once the holder is gone, however it ended
    lock.release()


def test_run_state_policy(tmp_path):
    config = tiny(tmp_path, steps=2)
    path = config.run_dir / "checkpoint.pt"
    assert run_state(path, config, None, False) is None, "no run yet: start one"
    with pytest.raises(CheckpointError, match="nothing to resume"):
        run_state(path, config, True, False)
    with pytest.raises(ConfigError, match="exclude each other"):
        run_state(path, config, True, True)


def test_the_shipped_pt2_generator_samples_like_a_checkpoint():
    from importlib import resources

    with resources.as_file(resources.files("ganlab") / "assets" / "generator_mnist.pt2") as path:
        generator = load_generator(path)
        images = sample_checkpoint(path, 3, seed=1)
        nz = json.loads(path.with_suffix(".json").read_text())["nz"]
    assert images.shape == (3, 1, 28, 28) and images.abs().max() <= 1
    assert generator.nz == nz, "load_generator must take the latent size from the asset's .json"
    with pytest.raises(CheckpointError, match="exported generator"):
        load_checkpoint(path)


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


# ---- files that are not what they claim ----
def _tampered(tmp_path, **changes):
    """A real checkpoint with some of its entries replaced (``config`` entries: merged)."""
    trainer = train(tiny(tmp_path, steps=2))
    state = torch.load(trainer.checkpoint_path, weights_only=True)
    state["config"].update(changes.pop("config", {}))
    state.update(changes)
    torch.save(state, trainer.checkpoint_path)
    return trainer.checkpoint_path


@pytest.mark.parametrize(
    "changes, words",
    [
        ({"image_shape": "abc"}, "image_shape is 'abc'"),
        ({"image_shape": [1, 30]}, "image_size=30 is not supported"),
        ({"config": {"ngf": 16}}, "size mismatch for"),
    ],
    ids=["image_shape not a pair", "image size the model refuses", "weights of another width"],
)
def test_a_checkpoint_that_does_not_fit_its_model_says_why(tmp_path, changes, words):
    path = _tampered(tmp_path, **changes)
    with pytest.raises(CheckpointError) as err:
        load_generator(path)
    assert words in str(err.value), f"the message should say {words!r}: {err.value}"


@pytest.mark.parametrize(
    "changes, words",
    [({"step": "x"}, "step is 'x'"), ({"history": {}}, "lacks 'loss_c'"),
     ({"fixed_z": torch.zeros(3)}, "fixed_z has shape (3,)")],
    ids=["step", "history", "fixed_z"],
)  # fmt: skip
def test_resuming_a_malformed_checkpoint_is_a_checkpoint_error(tmp_path, changes, words):
    _tampered(tmp_path, **changes)
    with pytest.raises(CheckpointError) as err:
        Trainer(tiny(tmp_path, steps=4))
    assert words in str(err.value), f"the message should say {words!r}: {err.value}"


def _exported(tmp_path, module, example, **about):
    path = tmp_path / "g.pt2"
    torch.export.save(torch.export.export(module, (example,)), path)
    path.with_suffix(".json").write_text(json.dumps(about))
    return path


def test_a_pt2_that_is_not_a_generator_is_refused_with_a_reason(tmp_path):
    about = {"nz": 4, "channels": 1, "image_size": 28}
    linear = _exported(tmp_path, torch.nn.Linear(4, 10), torch.randn(2, 4), **about)
    with pytest.raises(CheckpointError, match=r"got \(2, 10\)"):
        load_generator(linear)
    (tmp_path / "g.json").write_text(json.dumps({**about, "nz": 7}))
    with pytest.raises(CheckpointError, match="does not turn z of size 7"):
        load_generator(linear)
    (tmp_path / "g.json").write_text("{nz: 4")
    with pytest.raises(CheckpointError, match="does not describe a generator"):
        load_generator(linear)
    (tmp_path / "g.json").unlink()
    with pytest.raises(CheckpointError, match="needs g.json beside it"):
        load_generator(linear)
    (tmp_path / "g.json").write_text(json.dumps(about))
    linear.write_bytes(b"PK\x03\x04 not a program")
    with pytest.raises(CheckpointError, match="not a program saved with torch.export"):
        load_generator(linear)


def test_a_run_folder_given_for_its_checkpoint_is_named(tmp_path):
    trainer = train(tiny(tmp_path, steps=2))
    with pytest.raises(CheckpointError, match="did you mean .*checkpoint.pt"):
        load_generator(trainer.out_dir)


def test_check_writable_tries_the_folder_it_would_write_in(tmp_path, monkeypatch):
    check_writable(tmp_path / "not" / "made" / "yet")  # its nearest existing parent is writable
    assert not (tmp_path / "not").exists(), "checking must not make folders"
    (tmp_path / "file").write_text("")
    with pytest.raises(NotWritable, match="is a file, not a folder"):
        check_writable(tmp_path / "file" / "run")

    def refused(*args, **kwargs):  # as chmod 555, or a read-only disk, would (root ignores chmod)
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr("tempfile.TemporaryFile", refused)
    with pytest.raises(NotWritable, match=f"cannot write in {tmp_path} .Read-only file system"):
        check_writable(tmp_path / "run")
