"""Chapter 0: what is installed, and which device training will use."""

import importlib
import platform

from . import SOLUTIONS_ACTIVE

MINIMUM = {
    "torch": "2.1",
    "torchvision": "0.16",
    "matplotlib": "3.7",
    "ipywidgets": "8.0",
    "imageio": "2.31",
}


def _version_tuple(text):
    return tuple(int(part) for part in text.split("+")[0].split(".")[:2] if part.isdigit())


def pick_device(name="auto"):
    """``"auto"`` -> the best available device name: cuda, then mps (Apple silicon), then cpu."""
    import torch

    if name != "auto":
        return name
    if torch.cuda.is_available():
        return "cuda"
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return "mps"
    return "cpu"


def check_environment(verbose=True):
    """Report versions and the device; raise ``RuntimeError`` naming what is missing or too old."""
    report = {"python": platform.python_version()}
    problems = []
    for name, minimum in MINIMUM.items():
        try:
            version = importlib.import_module(name).__version__
        except ImportError:
            problems.append(f"{name} is not installed (need >= {minimum})")
            continue
        report[name] = version
        if _version_tuple(version) < _version_tuple(minimum):
            problems.append(f"{name} {version} is too old (need >= {minimum})")
    if problems:
        raise RuntimeError(
            "environment check failed: "
            + "; ".join(problems)
            + ". Install the kit with `pip install -e .` from the repository root."
        )
    report["device"] = pick_device()
    report["solutions"] = SOLUTIONS_ACTIVE
    if verbose:
        for key, value in report.items():
            print(f"{key:>12}: {value}")
        if report["device"] == "cpu":
            print(
                "No GPU found: fine for every notebook; long training runs are faster on a GPU (e.g. Colab)."
            )
    return report


def quick():
    """True when GANLAB_QUICK=1: the test suite runs the training notebooks for a few steps only."""
    import os

    return os.environ.get("GANLAB_QUICK", "") == "1"


def runs_dir():
    """Where notebooks write their training runs: GANLAB_RUNS_DIR, else ./runs."""
    import os
    from pathlib import Path

    return Path(os.environ.get("GANLAB_RUNS_DIR", "runs"))
