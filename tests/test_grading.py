"""``ganlab grade`` and ``ganlab check``: a class of perfect, planted and hostile submissions.

The class is built at test time from the instructor's files (``ganlab.grading.sample_class``):
the perfect copy from ``solutions/`` (markers stripped), every other student from it with
one change. Attacks on the sandbox itself: tests/test_grading_hostile.py. The
slow test grades the class once over notebooks 02 and 04 and compares every CSV row
with the points written out by hand below.
"""

import json
import os
import signal
import subprocess
import sys
import time
from datetime import datetime, timezone
from pathlib import Path

import nbformat
import pytest
from terminal import as_in_a_terminal

from ganlab.grading import assemble, deps, engine, kernel, report, verify
from ganlab.grading.sample_class import (
    MEAN_LOSS,
    SIGMOID_CRITIC,
    append_to,
    edit_cell,
    perfect_copy,
)

REPO = Path(__file__).resolve().parent.parent
needs_solutions = pytest.mark.skipif(
    not (REPO / "solutions" / "ganlab").is_dir(), reason="a student copy has no solutions/"
)

PATCH_CHECKS = """
import ganlab.checks as c
c.check_critic_output = lambda *a: print("\\u2714 critic output")
import ganlab.checks.models
ganlab.checks.models.fail_unless = lambda *a: None
"""


# Through `python -m ganlab`, the command the README documents (ganlab/grading/__main__.py is the same).
def _grade(*args, cwd=REPO, timeout=600):
    env = {k: v for k, v in os.environ.items() if k != "GANLAB_SOLUTIONS"}
    return subprocess.run(
        [sys.executable, "-m", "ganlab", *map(str, args)],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def build_class(root, grades_csv):
    """The class of the slow test; ``grades_csv`` is where the hostile students aim."""
    root = Path(root)
    s = lambda name: perfect_copy(root / name)
    s("a_perfect")
    append_to(s("b_sigmoid_critic"), "models.py", SIGMOID_CRITIC)
    append_to(s("c_mean_loss"), "losses.py", MEAN_LOSS)
    edit_cell(s("d_hang"), "02_critic.ipynb", "ex-2-1", lambda src: "while True:\n    pass\n" + src)
    append_to(s("e_exit"), "losses.py", "\nimport os\nos._exit(0)\n")
    edit_cell(
        s("f_crash"),
        "04_losses.ipynb",
        "ex-4-3",
        lambda src: (
            "import ctypes, faulthandler\ntry:\n    ctypes.string_at(0)\nexcept PermissionError as err:\n"
            "    print('ctypes refused:', err)\nfaulthandler._sigsegv()\n" + src
        ),
    )
    g = s("g_patch_in_cell")
    append_to(g, "models.py", SIGMOID_CRITIC)
    edit_cell(g, "02_critic.ipynb", "ex-2-1", lambda src: PATCH_CHECKS + src)
    append_to(s("h_patch_in_module"), "models.py", SIGMOID_CRITIC + PATCH_CHECKS)
    i = s("i_edited_checks")
    append_to(i, "models.py", SIGMOID_CRITIC)
    edit_cell(i, "02_critic.ipynb", "check-2-3", lambda src: None)
    edit_cell(i, "02_critic.ipynb", "check-2-4", lambda src: "print('\\u2714 all good')")
    j = s(
        "j_intruder"
    )  # stub models.py that tries to load the reference instead; writes the grades
    (j / "ganlab" / "models.py").write_text(
        (REPO / "ganlab" / "models.py").read_text()
        + f"""
try:
    exec(open({str(REPO / "solutions" / "ganlab" / "models.py")!r}).read())
except OSError as err:  # PermissionError (audit hook) or FileNotFoundError (not mounted)
    print("reading the solutions refused:", err)
"""
    )
    # The grader rewrites grades.csv last anyway: hacked.txt, which it never writes, shows the refusals.
    hacked = str(Path(grades_csv).with_name("hacked.txt"))
    attempts = [
        f"open({p!r}, 'w').write('hacked')" for p in ("../grades.csv", str(grades_csv), hacked)
    ]
    attempts += [f"__import__('torch').save('hacked', {p!r})" for p in (str(grades_csv), hacked)]
    edit_cell(
        j,
        "02_critic.ipynb",
        "ex-2-1",
        lambda src: (
            "".join(
                f"try:\n    {a}\nexcept OSError as err:\n    print('refused:', err)\n"
                for a in attempts
            )
            + src
        ),
    )
    edit_cell(j, "04_losses.ipynb", "ex-4-3", lambda src: "huge = bytearray(64 * 2**30)\n" + src)
    (root / "k_empty").mkdir()
    broken = s("l_broken_files")
    (broken / "notebooks" / "02_critic.ipynb").write_text("{ this is not JSON")
    (broken / "ganlab" / "losses.py").write_text(
        "def critic_loss(real_logits, fake_logits:\n    pass\n"
    )
    return root


# Points per check, by hand: 2-1, 2-2, 2-3, 2-4 (1, 1, 2, 2) and 4-1, 4-2, 4-3 (3, 2, 1).
HEADER = (
    "student,check-2-1,check-2-2,check-2-3,check-2-4,check-4-1,check-4-2,check-4-3,total,max,notes"
)
EXPECTED = {
    "a_perfect": "1,1,2,2,3,2,1,12,12,",
    "b_sigmoid_critic": "1,1,0,0,3,2,1,8,12,",
    "c_mean_loss": "1,1,2,2,0,2,1,9,12,",
    "d_hang": "0,1,2,2,3,2,1,11,12,02_critic.ipynb cell ex-2-1 timed out",
    "e_exit": "1,1,2,2,0,0,1,7,12,flagged for review: the code uses os._exit"
    "; 04_losses.ipynb cell import-losses crashed",
    "f_crash": "1,1,2,2,3,2,0,11,12,flagged for review: the code uses ctypes or native memory"
    "; 04_losses.ipynb cell ex-4-3 crashed",
    "g_patch_in_cell": "1,1,0,0,3,2,1,8,12,flagged for review: the code uses ganlab.checks",
    "h_patch_in_module": "1,1,0,0,3,2,1,8,12,flagged for review: the code uses ganlab.checks",
    "i_edited_checks": "1,1,0,0,3,2,1,8,12,",
    "j_intruder": "1,0,0,0,3,2,0,6,12,"
    '"flagged for review: the code uses files outside the exercise, dynamic code"',
    "k_empty": "0,0,0,0,0,0,0,0,12,empty submission; "
    + "; ".join(f"ganlab/{m} missing: graded as not implemented" for m in assemble.EXERCISE_MODULES)
    + "; notebooks/02_critic.ipynb missing: its exercise cells count as not done"
    + "; notebooks/04_losses.ipynb missing: its exercise cells count as not done",
    "l_broken_files": "0,1,2,2,0,0,1,6,12,ganlab/losses.py has a syntax error (line 1): '(' was never closed"
    "; notebooks/02_critic.ipynb is not a valid notebook (JSONDecodeError): "
    "its exercise cells count as not done",
}


@pytest.fixture(scope="module")
def graded_class(tmp_path_factory):
    base = tmp_path_factory.mktemp("grading")
    out = base / "grades.csv"
    build_class(base / "class", out)
    start = time.monotonic()
    run = _grade(
        "grade",
        base / "class",
        "--out",
        out,
        "--notebooks",
        "02,04",
        "--jobs",
        "2",
        "--timeout-cell",
        "20",
        "--feedback-dir",
        base / "feedback",
        "--no-progress",
    )
    return base, out, run, time.monotonic() - start


@pytest.mark.slow
@needs_solutions
def test_every_row_of_the_class(graded_class):
    base, out, run, seconds = graded_class
    assert run.returncode == 0, run.stderr[-3000:]
    rows = out.read_text().splitlines()
    assert rows[0] == HEADER
    got = {row.split(",", 1)[0]: row.split(",", 1)[1] for row in rows[1:]}
    assert list(got) == sorted(EXPECTED), "one row per student folder, sorted by name"
    wrong = {name: (got[name], want) for name, want in EXPECTED.items() if got[name] != want}
    assert not wrong, "\n".join(f"{n}:\n  got  {g}\n  want {w}" for n, (g, w) in wrong.items())
    assert seconds < 300, f"grading 12 submissions took {seconds:.0f} s"  # ~100 s on 2 idle cores
    assert "hacked" not in out.read_text() and not (base / "class" / "grades.csv").exists()
    assert not (base / "hacked.txt").exists(), "a student process wrote outside its sandbox"


@pytest.mark.slow
@needs_solutions
def test_feedback_names_the_cause(graded_class):
    base = graded_class[0]
    text = lambda name: (base / "feedback" / f"{name}.md").read_text()
    assert "**Total: 12 / 12 points**" in text("a_perfect")
    assert "remove the final sigmoid" in text("b_sigmoid_critic")
    assert "do not average" in text("c_mean_loss")
    assert "(cell ex-2-1 failed before it: timed out" in text("d_hang")
    assert "(cell import-losses failed before it: kernel died" in text("e_exit")
    assert "(cell ex-4-3 failed before it: kernel died" in text("f_crash")
    assert "not when the grader re-ran it" in text("g_patch_in_cell")
    assert "not when the grader re-ran it" in text("h_patch_in_module")
    assert "ran out of memory" in text("j_intruder") and "not implemented yet" in text("j_intruder")


@pytest.mark.slow
@needs_solutions
def test_grading_twice_gives_the_same_csv_with_or_without_isolation(graded_class, tmp_path):
    base, out, _, _ = graded_class
    subset = ("a_perfect", "e_exit", "g_patch_in_cell", "l_broken_files")  # all: 2x the time
    run = _grade(
        "grade",
        base / "class",
        "--students",
        ",".join(subset[:2]),
        "--students",
        ",".join(subset[2:]),  # a regrade of some students: only their rows
        "--out",
        tmp_path / "again.csv",
        "--notebooks",
        "02,04",
        "--jobs",
        "2",
        "--timeout-cell",
        "20",
        "--isolation",
        "none",  # the first run used bubblewrap where it works
        "--no-progress",
    )
    assert run.returncode == 0, run.stderr[-3000:]
    first = [row for row in out.read_text().splitlines() if row.split(",", 1)[0] in subset]
    assert (tmp_path / "again.csv").read_text().splitlines() == [HEADER, *first]


# -- ganlab check ------------------------------------------------------------------------


@pytest.mark.slow
@needs_solutions
def test_check_on_a_perfect_and_a_broken_copy(tmp_path):
    perfect = perfect_copy(tmp_path / "perfect")
    run = _grade("check", "--notebook", "03", perfect)
    assert run.returncode == 0 and "**Total: 7 / 7 points**" in run.stdout, (
        run.stdout + run.stderr[-2000:]
    )
    broken = perfect_copy(tmp_path / "broken")
    append_to(
        broken,
        "models.py",
        "\n_G = Generator\nclass Generator(_G):\n    def __init__(self, **kw):\n"
        "        super().__init__(**kw)\n        self.net = self.net[:-1]  # no tanh\n",
    )
    run = _grade("check", "--notebook", "03", broken)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "\u2718 `check-3-3`: 0/2 points" in run.stdout and "nn.Tanh()" in run.stdout
    assert "\u2714 `check-3-1`: 1/1 point" in run.stdout


@pytest.mark.slow
@needs_solutions
def test_check_needs_no_nbval_and_finds_the_kit_from_notebooks(tmp_path):
    """A student's `ganlab check` with nbval not installed, run from notebooks/ (JupyterLab's cwd)."""
    blocker = tmp_path / "no-nbval" / "nbval"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('nbval is not installed')\n")
    copy = perfect_copy(tmp_path / "kit")
    env = {k: v for k, v in os.environ.items() if k != "GANLAB_SOLUTIONS"}
    env["PYTHONPATH"] = f"{blocker.parent}{os.pathsep}{REPO}"
    run = subprocess.run(
        [sys.executable, "-m", "ganlab", "check", "--notebook", "00"],
        cwd=copy / "notebooks",
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    assert f"checking {copy.resolve()} " in run.stderr, run.stderr[-2000:]
    assert "**Total: 1 / 1 points**" in run.stdout, run.stdout


def _cmdline(pid):
    try:
        return (
            Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        )
    except OSError:
        return f"{pid} (gone)"


def _processes_mentioning(*texts):
    """PIDs whose command line mentions every one of ``texts`` (Linux /proc)."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            cmdline = (
                Path(f"/proc/{pid}/cmdline")
                .read_bytes()
                .replace(b"\0", b" ")
                .decode(errors="replace")
            )
        except OSError:
            continue
        if all(t in cmdline for t in texts) and int(pid) != os.getpid():
            found.append(int(pid))
    return found


@pytest.mark.slow
@pytest.mark.skipif(not os.path.isdir("/proc"), reason="needs Linux /proc to list processes")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "kill"])
def test_ctrl_c_stops_every_kernel_and_writes_no_grades(tmp_path, sig):
    """Ctrl-C, and `kill` or a job's time limit (SIGTERM): the kernels run in sessions of their
    own, so the grader must kill them before it goes."""
    perfect_copy(tmp_path / "class" / "alice")
    perfect_copy(tmp_path / "class" / "bob")
    work, out = tmp_path / "work", tmp_path / "grades.csv"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if k != "GANLAB_SOLUTIONS"}
    # The state of SIGINT in this process (changed by earlier tests' libraries in a full run) is
    # inherited by children; a terminal's program starts with the default, unblocked: do the same.
    inherited = (
        signal.getsignal(signal.SIGINT),
        signal.SIGINT in signal.pthread_sigmask(signal.SIG_BLOCK, []),
    )

    grader = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "ganlab",
            "grade",
            str(tmp_path / "class"),
            "--out",
            str(out),
            "--jobs",
            "2",
            "--work-dir",
            str(work),
            "--no-progress",
            # kill: without bubblewrap too, whose --die-with-parent would end the kernels anyway
            *(["--isolation", "none"] if sig == signal.SIGTERM else []),
        ],
        preexec_fn=as_in_a_terminal,
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    deadline = time.monotonic() + 120
    while not _processes_mentioning(str(work), "kernel.py"):  # a sandboxed kernel runs
        assert grader.poll() is None, (
            "the grader ended before any kernel started: " + grader.stderr.read()
        )
        assert time.monotonic() < deadline, "no kernel started within 120 s"
        time.sleep(0.2)
    grader.send_signal(sig)  # SIGINT: what Ctrl-C in the terminal sends
    interrupted = time.monotonic()

    # Promptly: the kernels are killed, not left to finish their notebooks (that takes far longer).
    # This grading's processes: its sandboxes (bwrap binds the work folder) and, without bubblewrap,
    # its runners and kernels (their paths are in the work folder); not another test's graders.
    def ours():
        return [pid for pid in _processes_mentioning(str(work)) if pid != grader.pid]

    while ours():
        assert time.monotonic() - interrupted < 10, (
            f"sandboxed kernels still run 10 s after {sig.name} (this "
            f"process's SIGINT handler, blocked: {inherited})"
        )
        time.sleep(0.2)
    _, err = grader.communicate(timeout=120)
    assert grader.returncode == 130, (
        f"expected exit status 130 after Ctrl-C, got {grader.returncode}: {err[-2000:]}"
    )
    assert "interrupted; no grades written" in err and "Traceback" not in err, err[-2000:]
    assert not out.exists(), "an interrupted run must not write a grades file"
    time.sleep(1)
    left = ours()
    assert not left, "processes of the interrupted grading still run:\n" + "\n".join(
        _cmdline(pid)[:300] for pid in left
    )


# -- fast unit tests ---------------------------------------------------------------------


CTRL_C_ON_A_WORKER = r"""
import signal, sys, threading, time
from ganlab.grading import commands, engine

def grading(*args):  # a student being graded: until the grader says stop
    while not engine._STOP.is_set():
        time.sleep(0.05)

def ctrl_c_on_a_worker():
    time.sleep(0.5)
    worker = next(t for t in threading.enumerate() if t.name.startswith("ThreadPoolExecutor"))
    signal.pthread_kill(worker.ident, signal.SIGINT)

commands._grade_safely = grading
threading.Thread(target=ctrl_c_on_a_worker, daemon=True).start()
start = time.monotonic()
try:
    commands.grade_many([None], [], [], None, (), None, root=sys.argv[1], progress=False)
except KeyboardInterrupt:
    print(f"interrupted after {time.monotonic() - start:.1f} s")
"""


def test_ctrl_c_that_lands_on_a_worker_thread_still_stops_grading(tmp_path):
    """The kernel may hand a process's SIGINT to any of its threads; Python's handler runs in
    the main thread only, when it next runs, so the grader must not wait without end."""
    try:
        run = subprocess.run(
            [sys.executable, "-c", CTRL_C_ON_A_WORKER, str(tmp_path)],
            capture_output=True,
            text=True,
            timeout=60,
            cwd=REPO,
            preexec_fn=as_in_a_terminal,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("a Ctrl-C delivered to a worker thread left the grader waiting (60 s)")
    assert run.stdout.startswith("interrupted after"), (
        "a Ctrl-C delivered to a worker thread did not stop the grader: " + run.stderr[-2000:]
    )
    assert float(run.stdout.split()[2]) < 5, run.stdout


def test_bad_arguments_are_one_error_line(tmp_path):
    (tmp_path / "class" / "alice").mkdir(parents=True)
    (tmp_path / "taken.csv").write_text("keep me")
    cases = [
        ("grade", tmp_path / "missing", "--out", tmp_path / "g.csv"),
        ("grade", tmp_path / "class", "--out", tmp_path / "class" / "g.csv"),
        ("grade", tmp_path / "class", "--out", tmp_path / "taken.csv"),
        ("grade", tmp_path / "class", "--out", tmp_path / "g.csv", "--notebooks", "99"),
        ("grade", tmp_path / "class", "--out", tmp_path / "g.csv", "--timeout-cell", "0"),
        ("grade", tmp_path / "class", "--out", tmp_path / "g.csv", "--students", "alicee"),
        ("grade", tmp_path / "class", "--out", tmp_path / "g.csv", "--students", ","),
        ("check", tmp_path / "missing"),
        ("check", tmp_path / "class"),
    ]
    for args in cases:
        run = _grade(*args)
        assert run.returncode == 2 and run.stderr.startswith("error: "), (args, run.stderr)
        assert "Traceback" not in run.stderr
        if "alicee" in args:
            assert "'alicee' (did you mean 'alice'?)" in run.stderr, run.stderr
    assert (tmp_path / "taken.csv").read_text() == "keep me"
    assert not (tmp_path / "g.csv").exists(), "a refused command wrote grades"


def test_points_of():
    assert assemble.points_of(["graded", "points-3"]) == 3
    assert assemble.points_of(["graded"]) is None
    assert assemble.points_of(["points-1", "points-2"]) is None


def test_the_canonical_checks_and_their_points():
    checks = [
        c for name, nb in assemble.canonical_notebooks(REPO) for c in assemble.checks_of(name, nb)
    ]
    assert checks and all(c.cell_id.startswith("check-") and c.points > 0 for c in checks)
    only = assemble.canonical_notebooks(REPO, ["02", "04"])
    assert [name for name, _ in only] == ["02_critic.ipynb", "04_losses.ipynb"]


def _notebook(*cells):
    nb = nbformat.v4.new_notebook()
    for cell_id, source, tags in cells:
        nb.cells.append(nbformat.v4.new_code_cell(source, id=cell_id, metadata={"tags": tags}))
    return nb


def _student(nb):
    return assemble.student_cells(nbformat.writes(nb))


def test_splice_takes_only_exercise_cells_by_id():
    canonical = _notebook(
        ("setup", "from ganlab import checks", []),
        ("ex-1-1", "raise NotImplementedError", []),
        ("check-1-1", "checks.check_a(f)", ["graded", "points-2"]),
    )
    student = _notebook(
        ("mine", "print('extra')", []),
        ("setup", "import os", []),
        ("ex-1-1", "def f(): return 1", []),
        ("check-1-1", "print('\u2714')", []),
    )
    nb, notes = assemble.splice(canonical, _student(student), "01.ipynb")
    assert [c.source for c in nb.cells] == [
        "from ganlab import checks",
        "def f(): return 1",
        "checks.check_a(f)",
    ]
    assert notes == []


def test_names_and_needed_cells():
    info = deps.names(
        "import torch\ndef f(x):\n    return torch.relu(x) + g\nx = x + 1\nd['k'] = 1\n"
    )
    assert info.surely == {"torch", "f", "x"} and info.used == {"g", "x", "d"} and "d" in info.maybe
    sources = [
        "%load_ext autoreload\nfrom ganlab import checks",
        "import torch\nplot = torch.zeros(1)",
        "def f(x):\n    import torch\n    return torch.ones(1)",
        "checks.check_a(f)",
    ]
    assert deps.needed_cells(sources, {3}) == [0, 2, 3]  # the plot is not needed
    assert deps.needed_cells(sources + ["syntax error ("], {3}) == [0, 2, 3, 4]


def test_pruning_keeps_what_the_checks_need():
    nb = dict(assemble.canonical_notebooks(REPO, ["04"]))["04_losses.ipynb"]
    kept = [c.id for c in assemble.prune(nb).cells if c.cell_type == "code"]
    assert "grad-plot" not in kept and "setup" in kept
    assert {"import-losses", "check-4-1", "check-4-2", "ex-4-3", "check-4-3"} <= set(kept)


def test_verification_plan():
    nb = dict(assemble.canonical_notebooks(REPO, ["02"]))["02_critic.ipynb"]
    job = verify.plan(nb, {"check-2-1", "check-2-4"})
    plans = {
        c["id"]: ([job["cells"][i]["id"] for i in c["run"]], c["function"], c["args"])
        for c in job["checks"]
    }
    assert plans == {
        "check-2-1": (["ex-2-1"], "check_conv_out_size", ["conv_out_size"]),
        "check-2-4": (["import-critic"], "check_critic_output", ["Critic"]),
    }


def test_malformed_submissions_are_read_with_notes(tmp_path):
    names = ["02_critic.ipynb"]
    (tmp_path / "empty").mkdir()
    sub = assemble.load_submission(tmp_path / "empty", names)
    assert sub.notes[0] == "empty submission" and set(sub.modules.values()) == {None}
    odd = tmp_path / "odd"
    (odd / "ganlab").mkdir(parents=True)
    (odd / "notebooks").mkdir()
    (odd / "notebooks" / "02_critic.ipynb").write_text("[1, 2")
    (odd / "ganlab" / "losses.py").write_text("def f(:\n")
    os.symlink(REPO / "solutions" / "ganlab" / "models.py", odd / "ganlab" / "models.py")
    sub = assemble.load_submission(odd, names)
    assert sub.notebooks["02_critic.ipynb"] is None and sub.modules["models.py"] is None
    notes = "\n".join(sub.notes)
    assert "ganlab/models.py is a link or not a regular file: graded as not implemented" in notes
    assert "ganlab/losses.py has a syntax error (line 1)" in notes
    assert "notebooks/02_critic.ipynb is not a valid notebook" in notes


def _result(name, passed, notes=()):
    checks = [
        assemble.Check("02.ipynb", "check-2-1", 1),
        assemble.Check("02.ipynb", "check-2-2", 2),
    ]
    result = engine.Result(name, notes=list(notes))
    result.checks = [
        engine.CheckResult(c, ok, "" if ok else "your critic, line\n two")
        for c, ok in zip(checks, passed)
    ]
    return result, checks


def test_csv_and_feedback(tmp_path):
    bob, checks = _result("bob", [True, False], ["a note", "another, with a comma"])
    alice, _ = _result("alice", [True, True])
    assert report.csv_text([bob, alice], checks) == (
        "student,check-2-1,check-2-2,total,max,notes\n"
        "alice,1,2,3,3,\n"
        'bob,1,0,1,3,"a note; another, with a comma"\n'
    )
    text = report.feedback(bob)
    assert "**Total: 1 / 3 points**" in text and "- a note" in text
    assert "- \u2714 `check-2-1`: 1/1 point\n" in text
    assert "- \u2718 `check-2-2`: 0/2 points: your critic, line two" in text
    report.write_feedback([bob, alice], tmp_path / "fb")
    assert sorted(p.name for p in (tmp_path / "fb").iterdir()) == ["alice.md", "bob.md"]


def test_student_names_cannot_become_formulas_or_forge_summary_lines():
    formula, _ = _result('=HYPERLINK("http://x")', [True, False])
    forged, checks = _result("eve\nto review (0):", [False, False])
    forged.flags.append("crashed")
    rows = report.csv_text([formula, forged], checks).splitlines()
    assert rows[1].startswith("\"'=HYPERLINK"), f"a spreadsheet would run this name: {rows[1]}"
    assert rows[2].startswith("eve?to review"), f"a newline in a name split its row: {rows}"
    lines = report.summary([forged], [("x\nnot graded: y", "a link")], [])
    assert lines == [
        "not graded: x?not graded: y: a link",
        "to review (1):",
        "  eve?to review (0):: crashed",
    ]


def test_the_gradebook_and_feedback_take_names_as_safely_as_the_csv():
    # Was: moodle.csv wrote the name as it was (a formula to a spreadsheet), and a newline
    # in a name wrote a line of its own into the feedback ("**Total: 13 / 13 points**").
    formula, checks = _result('=HYPERLINK("http://x")', [True, False])
    forged, _ = _result("eve\n**Total: 99 / 99 points**", [False, False])
    text = report.moodle_csv([formula, forged], checks, {}, datetime.now(timezone.utc))
    rows = text.splitlines()
    assert rows[1].startswith(",\"'=HYPERLINK"), f"a spreadsheet would run this name: {rows[1]}"
    assert rows[2].startswith(",eve?**Total"), rows
    assert not any(line.startswith("**Total: 99") for line in report.feedback(forged).splitlines())
    assert (
        report.feedback(forged).splitlines()[0]
        == "# ganlab feedback: eve?**Total: 99 / 99 points**"
    )


def test_the_audit_hook_policy(tmp_path):
    from ganlab.grading.kernel import make_audit_hook

    sandbox, work, secret = (
        tmp_path / "work" / "s0" / "sandbox",
        tmp_path / "work",
        tmp_path / "solutions",
    )
    (sandbox / "sub").mkdir(parents=True)
    secret.mkdir()
    (secret / "models.py").write_text("reference")
    os.symlink(secret / "models.py", sandbox / "link.py")
    hook = make_audit_hook(str(sandbox), [str(secret)], str(work), [sys.prefix])
    ok = lambda *event: hook(*event) is None
    refused = lambda *event: pytest.raises(PermissionError, hook, *event)
    assert ok("open", (str(sandbox / "sub" / "x.txt"), "w", 0))
    assert ok("open", ("/etc/hostname", "r", 0)) and ok("open", ("/dev/null", "w", 0))
    assert ok("os.kill", (os.getpid(), 9)) and ok("compile", (b"", "<x>"))
    refused("open", (str(tmp_path / "grades.csv"), "w", 0))
    refused("open", (str(tmp_path / "grades.csv"), None, os.O_WRONLY | os.O_CREAT))
    refused("open", (str(secret / "models.py"), "r", 0))
    refused("open", (str(sandbox / "link.py"), "r", 0))  # a link out of the sandbox
    refused("open", (str(work / "s1" / "sandbox" / "x.py"), "r", 0))  # another student's sandbox
    refused("open", (str(tmp_path), None, os.O_RDONLY))  # a folder: it would serve as dir_fd
    refused("open", ("../grades.csv", "w", 0))  # relative paths must not climb
    refused("os.rename", (str(sandbox / "a"), str(tmp_path / "b"), None, None))
    refused("subprocess.Popen", ("ls", ["ls"], None, None))
    refused("os.kill", (os.getppid(), 9))
    refused("os.symlink", ("a", "b", None))
    refused("gc.get_objects", (None,))
    refused("ctypes.dlopen", ("libc.so.6",))
    refused("ctypes.call_function", (0, ()))


PROBES = r"""
import importlib.util, json, os, sys
spec = importlib.util.spec_from_file_location("launcher", sys.argv[1])
launcher = importlib.util.module_from_spec(spec)
spec.loader.exec_module(launcher)
config = json.loads(sys.argv[2])
sys.addaudithook(launcher.protect(config))
import torch
def attempt(code):
    try:
        exec(code, {"torch": torch, "os": os})
        return "ok"
    except BaseException as err:
        return type(err).__name__
print(json.dumps({
    "solutions": os.environ.get("GANLAB_SOLUTIONS"), "cwd": os.getcwd(), "path0": sys.path[0],
    "write inside": attempt("open('notes.txt', 'w').write('x')"),
    "write outside": attempt(f"open({config['target']!r}, 'w')"),
    "torch.save outside": attempt(f"torch.save(1, {config['target']!r})"),
    "read refused": attempt(f"open({config['refused'][0] + '/models.py'!r}).read()"),
    "huge allocation": attempt("bytearray(64 * 2**30)"),
    "fork": attempt("os.fork()"),
    "subprocess": attempt("import subprocess; subprocess.run(['true'])"),
}))
"""


def test_the_launcher_protects_a_real_process(tmp_path):
    sandbox, secret = tmp_path / "work" / "s0" / "sandbox", tmp_path / "solutions"
    sandbox.mkdir(parents=True)
    secret.mkdir()
    (secret / "models.py").write_text("reference")
    config = {
        "sandbox": str(sandbox),
        "refused": [str(secret)],
        "work_root": str(tmp_path / "work"),
        "memory_mb": 1024,
        "threads": 1,
        "env": {"HOME": str(sandbox)},
        "target": str(tmp_path / "grades.csv"),
    }
    env = dict(os.environ, GANLAB_SOLUTIONS="1")
    run = subprocess.run(
        [sys.executable, "-c", PROBES, kernel.__file__, json.dumps(config)],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    got = json.loads(run.stdout.splitlines()[-1])
    assert got == {
        "solutions": None,
        "cwd": str(sandbox),
        "path0": str(sandbox),
        "write inside": "ok",
        "write outside": "PermissionError",
        "torch.save outside": "PermissionError",
        "read refused": "PermissionError",
        "huge allocation": "MemoryError",
        "fork": "PermissionError",
        "subprocess": "PermissionError",
    }
    assert not (tmp_path / "grades.csv").exists()


def test_every_student_gets_a_feedback_file_whatever_their_name(tmp_path):
    # Was: a folder name of 245+ bytes stopped the run at its feedback file (File name too
    # long, after grading everyone), and Alice's and alice's files were one on a case-insensitive disk.
    names = ["Alice", "alice", "x" * 255, "Jos\u00e9" * 60, "eve\nline"]
    results = [_result(name, [True, False])[0] for name in names]
    report.write_feedback(results, tmp_path / "fb")
    files = report.feedback_names(names)
    assert files["Alice"] == "Alice.md" and files["alice"] == "alice~2.md"
    assert len({name.casefold() for name in files.values()}) == len(names)
    for name in names:
        text = (tmp_path / "fb" / files[name]).read_text()
        assert len(files[name].encode()) <= 255 - len(".partial")
        assert text.startswith(f"# ganlab feedback: {name.replace(chr(10), '?')}")
