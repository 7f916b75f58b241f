"""ganlab.config: the keys and their allowed values, presets as shipped YAML files, bad input."""

import dataclasses
from pathlib import Path

import pytest
import yaml

import ganlab.config as config_module
from ganlab.config import (
    ConfigError,
    TrainConfig,
    check_data,
    load_config,
    presets,
    resolve_device,
)

REPO = Path(__file__).resolve().parent.parent
PRESETS = REPO / "ganlab" / "configs"


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


def test_every_preset_is_valid_and_named_after_its_file():
    names = presets()
    assert {"demo", "cpu", "mnist", "gpu", "resize-conv"} <= set(names), f"presets missing: {names}"
    for name in names:
        config = load_config(preset=name)  # raises ConfigError naming the problem
        assert config.name == yaml.safe_load((PRESETS / f"{name}.yaml").read_text()).get(
            "name", name
        )


def test_a_preset_is_its_yaml_file():
    by_name = load_config(preset="cpu")
    by_path = load_config(PRESETS / "cpu.yaml")
    assert by_name == by_path, "--preset cpu must be exactly ganlab/configs/cpu.yaml"


def test_the_demo_differs_from_the_cpu_preset_only_where_it_says():
    """One copy of the recipe: every key demo.yaml does not set is the CPU preset's."""
    own = yaml.safe_load((PRESETS / "demo.yaml").read_text())
    assert own.get("extends") == "cpu", "demo.yaml should say `extends: cpu`"
    demo, cpu = load_config(preset="demo"), load_config(preset="cpu")
    differ = {
        f.name
        for f in dataclasses.fields(demo)
        if getattr(demo, f.name) != getattr(cpu, f.name) and f.name not in own
    }
    assert not differ, f"the demo differs from the CPU preset in keys it does not set: {differ}"


def test_a_file_extends_a_preset(tmp_path):
    path = tmp_path / "longer.yaml"
    path.write_text("extends: cpu\nsteps: 5000\n")
    config, cpu = load_config(path), load_config(preset="cpu")
    assert config == dataclasses.replace(cpu, steps=5000, name="longer"), (
        "a file with `extends: cpu` should be the cpu preset, then its own keys, named after "
        "the file"
    )
    path.write_text("extends: cpux\n")
    with pytest.raises(ConfigError, match="longer.yaml: extends: unknown preset 'cpux'"):
        load_config(path)
    path.write_text("extends: [cpu]\n")
    with pytest.raises(ConfigError, match="extends must name a preset"):
        load_config(path)


def test_presets_that_extend_in_a_circle_are_refused(monkeypatch):
    texts = {"cpu": "extends: demo\n", "demo": "extends: cpu\n"}
    monkeypatch.setattr(config_module, "_preset_text", texts.__getitem__)
    with pytest.raises(ConfigError, match="in a circle: cpu -> demo -> cpu"):
        load_config(preset="cpu")


def test_preset_then_file_then_overrides(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("steps: 10\nlr: 1e-4\n")
    config = load_config(path, ["steps=12"], preset="cpu")
    cpu = load_config(preset="cpu")
    assert (config.steps, config.lr, config.ngf) == (12, 1e-4, cpu.ngf), "later sources must win"


@pytest.mark.parametrize(
    "key, value, words",
    [
        ("beta1", 1.0, "beta1 must be in [0, 1)"),
        ("beta2", -0.1, "beta2 must be in [0, 1)"),
        ("dropout", 1.5, "dropout must be in [0, 1)"),
        ("seed", -1, "seed must be in [0, 2147483647]"),
        ("seed", 2**32, "seed must be in [0, 2147483647]"),  # numpy would refuse it mid-start
        ("lr", 0, "lr must be > 0"),
        ("real_label", 0.0, "real_label must be in (0, 1]"),
        ("num_workers", -2, "num_workers must be >= 0"),
        ("r1", -0.5, "r1 must be >= 0"),
        ("checkpoint_seconds", 0, "checkpoint_seconds must be > 0"),
        ("model", "dcgna", "did you mean 'dcgan'"),
        ("upsample", "bilinear", "upsample must be one of ('transposed', 'nearest')"),
        ("data_on_device", "yes", "data_on_device must be one of"),
        ("steps", 2.5, "steps must be int or null"),
    ],
)
def test_values_outside_the_contract_are_refused_by_name(key, value, words):
    with pytest.raises(ConfigError) as err:
        TrainConfig.from_dict({key: value})
    assert words in str(err.value), (
        f"{key}={value!r}: the message should say {words!r}: {err.value}"
    )


def test_the_old_model_name_is_accepted():
    assert TrainConfig(model="seed004").model == "resize-conv"


def test_bad_files_and_overrides_are_config_errors(tmp_path):
    binary = tmp_path / "image.yaml"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\xff\xfe\x00")
    with pytest.raises(ConfigError, match="not a text file"):
        load_config(binary)
    broken = tmp_path / "broken.yaml"
    broken.write_text("steps: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(broken)
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(None, ["steps=[1,"])
    with pytest.raises(ConfigError, match="unknown preset 'cpuu'"):
        load_config(preset="cpuu")
    with pytest.raises(ConfigError, match="is a folder; give a YAML config file"):
        load_config(tmp_path)
    for text in ("", "\n", "# steps: 500\n# lr: 2e-4\n"):  # a file saved empty, all commented
        empty = tmp_path / "empty.yaml"
        empty.write_text(text)
        with pytest.raises(ConfigError, match="sets nothing"):
            load_config(empty)
    empty.write_text("{}\n")  # said on purpose: the defaults
    assert load_config(empty).steps == TrainConfig().steps


def test_allowed_keys_name_each_type_once():
    keys = TrainConfig.allowed_keys()
    assert "model: str ('dcgan', 'resize-conv')" in keys, keys
    assert "data_on_device: str or bool ('auto', True, False)" in keys, keys


def test_dataset_and_image_size_are_checked_before_training():
    with pytest.raises(ConfigError, match="unknown dataset 'mnits'"):
        check_data(TrainConfig(dataset="mnits"))
    with pytest.raises(ConfigError, match="image_size=30 is not supported"):
        check_data(TrainConfig(image_size=30))
    assert check_data(TrainConfig(dataset="svhn")) == (3, 32)


def test_devices_this_machine_lacks_are_config_errors():
    import torch

    assert resolve_device("cpu").type == "cpu" and resolve_device("auto").type in (
        "cpu",
        "cuda",
        "mps",
    )
    with pytest.raises(ConfigError, match="not a device name"):
        resolve_device("gpu0")
    if not torch.cuda.is_available():
        with pytest.raises(ConfigError, match="no CUDA GPU"):
            resolve_device("cuda")
    else:
        with pytest.raises(ConfigError, match="only"):
            resolve_device(f"cuda:{torch.cuda.device_count() + 3}")


def test_a_key_given_twice_is_refused_not_silently_the_last(tmp_path):
    path = tmp_path / "twice.yaml"
    path.write_text("ngf: 8\nsteps: 10\nngf: 16\n")
    with pytest.raises(ConfigError, match="line 3, column 1: key 'ngf' is given twice"):
        load_config(path)
    # YAML's merge key (<<) brings in keys that the mapping then overrides on purpose.
    merged = config_module._read_yaml("base: &b {x: 1, y: 2}\nrun:\n  <<: *b\n  x: 3\n", "t")
    assert merged["run"] == {"x": 3, "y": 2}, merged


def test_a_tab_is_named_with_its_line(tmp_path):
    path = tmp_path / "tab.yaml"
    path.write_text("ngf: 8\n\tndf: 8\n")
    with pytest.raises(ConfigError) as err:
        load_config(path)
    message = str(err.value)
    assert "line 2, column 1" in message and "never tabs" in message, message
    assert "<unicode string>" not in message, message


@pytest.mark.parametrize("text", ["1e3", "1000.0", "1.0e+3"])
def test_whole_numbers_in_any_notation_are_accepted_for_counts(text):
    config = load_config(None, [f"steps={text}", f"batch_size={text}"])
    assert config.steps == 1000 and type(config.steps) is int, config.steps
    assert config.batch_size == 1000 and type(config.batch_size) is int
    with pytest.raises(ConfigError, match="steps must be int or null"):
        load_config(None, ["steps=2.5e0"])


def test_infinite_numbers_are_refused_unless_they_mean_never():
    for key in ("lr", "lr_critic", "beta1"):
        with pytest.raises(ConfigError, match=f"{key} must be a finite number"):
            load_config(None, [f"{key}=.inf"])
    with pytest.raises(ConfigError, match="lr must be"):
        load_config(None, ["lr=-.inf"])
    assert load_config(None, ["checkpoint_seconds=.inf"]).checkpoint_seconds == float("inf")


def test_a_sectioned_key_points_to_the_flat_one():
    with pytest.raises(ConfigError, match="the config is flat.*did you mean 'ngf'"):
        load_config(None, ["model.ngf=16"])


def test_a_config_file_given_as_a_preset_is_pointed_to_the_right_place(tmp_path):
    path = tmp_path / "mine.yaml"
    path.write_text("steps: 3\n")
    for preset in (str(path), "cpu.yaml"):
        with pytest.raises(ConfigError, match=f"give it alone: ganlab train {preset}"):
            load_config(preset=preset)
