"""Time ``ganlab grade`` on a class of 30 submissions over every notebook (BENCHMARKS.md).

    python scripts/grading_benchmark.py [--size 30] [--jobs 2] [--isolation auto] [--keep DIR]

The class is ``ganlab.grading.sample_class.build_benchmark_class`` (the tests build theirs
there too): copies of the reference solutions, one in three broken in a different way (a
planted bug, a syntax error, a missing folder). Prints the wall time, the score
distribution and the CSV's path. Run it from an instructor's checkout (it needs solutions/).
Where it may (as root, with a cgroup v1 ``cpuacct`` hierarchy), it also prints the CPU
seconds of every process of the grading, which a busy machine does not inflate the way
it inflates the wall time.
"""

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from ganlab.cli import guarded
from ganlab.grading.sample_class import build_benchmark_class

REPO = Path(__file__).resolve().parent.parent


CPUACCT = Path("/sys/fs/cgroup/cpuacct")


def _cpu_account():
    """A cpuacct cgroup this process (and so the grading it starts) moves into, or None."""
    group = CPUACCT / f"ganlab-bench-{os.getpid()}"
    try:
        group.mkdir()
        (group / "cgroup.procs").write_text(str(os.getpid()))
    except OSError:
        return None
    return group


def _cpu_seconds(group):
    return int((group / "cpuacct.usage").read_text()) / 1e9 if group else None


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=30)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--isolation", default="auto", choices=("auto", "bwrap", "none"))
    parser.add_argument("--keep", help="build the class and write grades.csv and feedback/ here")
    args = parser.parse_args(argv)
    base = Path(args.keep or tempfile.mkdtemp(prefix="ganlab-grading-bench-"))
    build_benchmark_class(base / "class", size=args.size)
    out = base / "grades.csv"
    command = [
        sys.executable,
        "-m",
        "ganlab",
        "grade",
        str(base / "class"),
        "--out",
        str(out),
        "--force",
        "--jobs",
        str(args.jobs),
        "--feedback-dir",
        str(base / "feedback"),
        "--isolation",
        args.isolation,
        "--no-progress",
    ]
    print("$", " ".join(command), flush=True)
    group = _cpu_account()
    cpu_before, load_before = _cpu_seconds(group), os.getloadavg()
    start = time.monotonic()
    status = subprocess.run(command, cwd=REPO).returncode
    seconds = time.monotonic() - start
    cpu = _cpu_seconds(group) - cpu_before if group else None
    if group:  # back to the root group, then the empty one goes
        (CPUACCT / "cgroup.procs").write_text(str(os.getpid()))
        group.rmdir()
    print(
        f"load average before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f} "
        f"({os.cpu_count()} CPUs); "
        + (f"CPU time of the grading: {cpu:.0f} s" if cpu is not None else "CPU time: not measured")
    )
    if status != 0:
        print(f"ganlab grade failed with exit status {status}", file=sys.stderr)
        return status
    rows = list(csv.DictReader(out.open()))
    totals = Counter(f"{r['total']}/{r['max']}" for r in rows)
    print(
        f"{len(rows)} submissions graded in {seconds:.0f} s ({seconds / len(rows):.1f} s each) with "
        f"--jobs {args.jobs}; totals: {dict(sorted(totals.items(), reverse=True))}; {out}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(guarded(main))
