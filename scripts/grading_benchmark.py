"""Time ``ganlab grade`` on a class of 30 submissions over every notebook (BENCHMARKS.md).

    python scripts/grading_benchmark.py [--size 30] [--jobs 2] [--isolation auto] [--keep DIR]

The class is ``ganlab.grading.sample_class.build_benchmark_class`` (the tests build theirs
there too): copies of the reference solutions, one in three broken in a different way (a
planted bug, a syntax error, a missing folder). Prints the wall time, the score
distribution and the CSV's path. Run it from an instructor's checkout (it needs solutions/).
"""

import argparse
import csv
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

from ganlab.grading.sample_class import build_benchmark_class

REPO = Path(__file__).resolve().parent.parent


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
    start = time.monotonic()
    status = subprocess.run(command, cwd=REPO).returncode
    seconds = time.monotonic() - start
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
    sys.exit(main())
