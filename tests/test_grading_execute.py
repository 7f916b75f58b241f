"""The grader's runner (``ganlab.grading.execute``) when its kernel does not start.

A kernel that never answers (a busy machine, an ipykernel start-up hang, a port taken
by a kernel started at the same moment) is no fault of the student's: the runner starts
another, and if that fails too it says so with a ``nostart`` line, which the grader
turns into a flag for review instead of silent zeros.
"""

import json
import os
import sys
import textwrap

import nbformat
import pytest

from ganlab.grading import engine, execute

pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

# Fails (dies at once, or hangs) for its first FAILS starts, then is a real kernel.
LAUNCHER = textwrap.dedent(
    """\
    import os, sys, time
    count, mode, fails = sys.argv[1], sys.argv[2], int(sys.argv[3])
    n = int(open(count).read()) if os.path.exists(count) else 0
    open(count, "w").write(str(n + 1))
    if n < fails:
        if mode == "hang":
            time.sleep(600)
        sys.exit(3)
    os.execv(sys.executable, [sys.executable, "-m", "ipykernel_launcher", *sys.argv[4:]])
    """
)


def run_with(tmp_path, mode, fails, startup=30, cells=None, releases=None):
    launcher = tmp_path / "launcher.py"
    launcher.write_text(LAUNCHER)
    nb = nbformat.v4.new_notebook()
    cells = cells or {"a": "x = 6 * 7", "b": "x"}
    nb.cells = [nbformat.v4.new_code_cell(source, id=i) for i, source in cells.items()]
    path = tmp_path / "nb.ipynb"
    nbformat.write(nb, str(path))
    config = {
        "kernel_argv": [sys.executable, str(launcher), str(tmp_path / "count"), mode, str(fails)],
        "cwd": str(tmp_path),
        "env": dict(os.environ),
        "timeout_cell": 60,
        "timeout_total": 300,
        "startup": startup,
    }
    records = []
    execute.run(config, [str(path)], records.append, releases)
    starts = int((tmp_path / "count").read_text())
    return records, starts


@pytest.mark.parametrize("mode", ["die", "hang"])
def test_a_kernel_that_does_not_start_is_started_again(tmp_path, mode):
    # 15 s: the hanging one costs all of it; the real one must answer within it
    records, starts = run_with(tmp_path, mode, fails=1, startup=15)
    assert starts == 2, f"the runner started {starts} kernels, not 2, after one that {mode}s"
    outcomes = {r["cell_id"]: r["outcome"] for r in records}
    assert outcomes == {"a": "passed", "b": "passed"}, (
        f"after a kernel that {mode}s at start-up, the second kernel should run the cells: "
        f"{records}"
    )


@pytest.mark.parametrize("mode", ["die", "hang"])
def test_no_kernel_at_all_is_reported_not_raised(tmp_path, mode):
    records, starts = run_with(tmp_path, mode, fails=99, startup=3)
    assert starts == execute.START_TRIES, (
        f"the runner started {starts} kernels, not START_TRIES={execute.START_TRIES}"
    )
    assert [r["outcome"] for r in records] == ["nostart"], (
        f"a run whose kernel never starts should end with one nostart line: {records}"
    )
    assert records[0]["notebook"] == "nb.ipynb" and records[0]["evalue"], records[0]


def test_no_kernel_is_flagged_for_review(tmp_path):
    """The runner's line, as the grader reads it from the log, becomes a flag."""
    records, _ = run_with(tmp_path, "die", fails=99, startup=3)
    log = "".join(f"{execute.TAG} {json.dumps(r)}\n" for r in records).encode()
    cells = engine._records(log, ["nb.ipynb"])
    flags = engine.run_flags(cells, engine.Options(startup=3))
    assert len(flags) == 1 and "nb.ipynb" in flags[0] and "grade again" in flags[0], (
        f"a notebook whose kernel never started should get one flag asking to grade it "
        f"again: {flags}"
    )


HAS = "import ganlab.checks._reference as r\nassert {} hasattr(r, 'ANSWER_7b3e')\n"


def test_a_reference_no_check_of_this_run_grades_is_defined_from_the_start(tmp_path):
    cells = {
        "first": HAS.format(""),
        "crash": "import os\nos._exit(1)",
        "restarted": HAS.format(""),
    }
    records, _ = run_with(
        tmp_path, "die", fails=0, cells=cells, releases={execute.AT_START: "ANSWER_7b3e = 42"}
    )
    outcomes = {r["cell_id"]: r["outcome"] for r in records}
    assert outcomes == {"first": "passed", "crash": "died", "restarted": "passed"}, records


def test_a_reference_is_defined_only_after_its_check_ran_and_in_every_later_kernel(tmp_path):
    """The runner hands the kernel a reference once the check cell that grades it has run
    (passed or not), and again to the kernel that replaces one that died."""
    cells = {
        "before": HAS.format("not"),
        "check": "raise ValueError('the check failed')",
        "after": HAS.format(""),
        "crash": "import os\nos._exit(1)",
        "restarted": HAS.format(""),
    }
    records, _ = run_with(
        tmp_path, "die", fails=0, cells=cells, releases={"check": "ANSWER_7b3e = 42"}
    )
    outcomes = {r["cell_id"]: r["outcome"] for r in records}
    assert outcomes == {
        "before": "passed",
        "check": "failed",
        "after": "passed",
        "crash": "died",
        "restarted": "passed",
    }, records
