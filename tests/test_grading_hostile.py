"""Hostile submissions, one per class of attack, graded with bubblewrap next to honest students.

Each attack runs in a process the audit hook cannot see into: a child started with
``_posixsubprocess.fork_exec`` (no audit event), which is a fresh interpreter without
the hook, so what stops it is the operating system (``ganlab.grading.sandbox``). Every
attack is written so that, if it fails, its author still gets the grade of their
(correct) exercise code: the hostile rows come out exactly like the honest ones, and
anything that got through shows up as a file, a process, a leaked string or a wrong row.
"""

import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from ganlab import submission
from ganlab.grading import sandbox
from ganlab.grading.sample_class import SIGMOID_CRITIC, append_to, edit_cell, perfect_copy

REPO = Path(__file__).resolve().parent.parent
needs_bwrap = pytest.mark.skipif(
    not sandbox.choose("auto").isolated,
    reason="bubblewrap is missing or cannot make namespaces here (apt-get install bubblewrap)",
)
needs_solutions = pytest.mark.skipif(
    not (REPO / "solutions" / "ganlab").is_dir(), reason="a student copy has no solutions/"
)
SECRET = "GANLAB-GRADER-SECRET-8d1f"  # in the grader's environment: must never reach feedback
CLASSMATE = "CLASSMATE-TOKEN-41c7"  # in an honest student's models.py
TOKEN = "ganlab-hostile-6b2e"  # in every hostile process's command line (found with ps after)

# Starts `python -c CODE` detached (own session, fds closed) without any audit event.
SPAWN = f'''
def _spawn(code):
    import _posixsubprocess, os, sys
    r, w = os.pipe()
    args = [sys.executable, "-c", code, "{TOKEN}"]
    exe = [os.fsencode(sys.executable)]
    head = (True, (), None, None, -1, -1, -1, -1, -1, -1, r, w, True, True, -1)
    tails = [(None, None, None, -1, None, False), (None, None, None, -1, None),
             (None, None, None, None)]  # 3.11-3.12, 3.13, older
    try:
        for tail in tails:
            try:
                pid = _posixsubprocess.fork_exec(args, exe, *head, *tail)
                break
            except TypeError:
                continue
    finally:
        os.close(w)
    os.read(r, 100)  # empty once the child has exec'd
    os.close(r)
    return pid
'''


FORGE = """
import sys as _sys
import torch as _torch
import ganlab.checks
def _forged(*args, **kwargs):
    print("\u2714 forged")
for _name, _module in list(_sys.modules.items()):
    if _name.startswith("ganlab.checks") and _module is not None:
        for _n in [n for n in dir(_module) if n.startswith("check_")]:
            setattr(_module, _n, _forged)
_torch.allclose = lambda *a, **k: True
"""


# A critic with its sigmoid in forward (not a layer: the architecture check has nothing to
# see), which check 2.4 catches in the output's autograd graph.
FUNCTIONAL_SIGMOID = """
import torch as _torch_
_DcganCritic = Critic
class Critic(_DcganCritic):  # planted: a sigmoid in forward
    def forward(self, x):
        return _torch_.sigmoid(self.net(x).view(-1))
"""
# In the judge's re-run: every Critic the student's process sends carries, as an "attribute",
# a handle to its own forward (``_compiled_call_impl``, which nn.Module calls instead of
# forward): the judge's copy would run the student's code, whose output's graph it cannot see.
REMOTE_FORWARD = """
import sys as _sys_
def _remote_call(module):
    def call(*args, **kwargs):
        if not _torch_.is_grad_enabled():  # the architecture check then takes the layers as listed
            raise RuntimeError("not now")
        return nn.Module._call_impl(module, *args, **kwargs)
    return call
_frame = _sys_._getframe()
while _frame is not None:
    _server = _frame.f_locals.get("self")
    if hasattr(_server, "remote") and hasattr(_server, "handles"):
        def _module(self, m, memo=True, _plain=_server.remote.Codec.module):
            spec = _plain(self, m, memo)
            if isinstance(m, Critic) and self.handle is not None:
                spec["attrs"]["_compiled_call_impl"] = self.handle(_remote_call(m))
            return spec
        _server.remote.Codec.module = _module
        break
    _frame = _frame.f_back
"""
# The checks' references (checks/_reference.py), reached through the sandbox's copy of the
# package: a wrong init_dcgan_weights replaced by the checks' own (a relative import names no
# "ganlab.checks"). The sandbox's copy holds no answers (the student copy's: it calls this very
# function), and the grader hands the answer to the kernel only after check 2.2 ran.
REFERENCE_INIT = """
def init_dcgan_weights(module):  # planted: PyTorch's default init left alone
    pass
from .checks import _reference as _answers
init_dcgan_weights = _answers.init_dcgan_weights
"""

DEEP_SUM = "_total = " + " + ".join(["1"] * 900) + "\n"

BAD_INIT = """
def init_dcgan_weights(module):  # forgot to write it: PyTorch's default init left alone
    pass
"""


def attack(code, wait=0.0):
    """An exercise-cell prefix: run ``code`` in a hook-free child, wait ``wait`` s for it."""
    return (
        SPAWN
        + f"try:\n    _pid = _spawn({code!r})\n    __import__('time').sleep({wait})\n"
        + "except BaseException as _err:\n    print('attack failed:', _err)\n"
    )


def in_cell(folder, code, wait=0.0):
    edit_cell(folder, "02_critic.ipynb", "ex-2-1", lambda src: attack(code, wait) + src)


def build(root, targets):
    """The class: honest students, then one hostile student per attack class."""
    honest = perfect_copy(root / "honest_a")
    append_to(honest, "models.py", f"\n# {CLASSMATE}\n")
    perfect_copy(root / "honest_b")
    wrong = perfect_copy(root / "honest_wrong")  # an honest mistake: must cost exactly its points
    append_to(wrong, "models.py", SIGMOID_CRITIC)
    dot = perfect_copy(root / ".hidden_student")
    del dot
    # A zip from `ganlab submit`.
    zipped = perfect_copy(root.parent / "zipped_src")
    files, _ = submission.collect(zipped)
    submission.pack(files, root / "zipped.zip", "0.1.0")

    grades, out_dir = targets["grades"], targets["outside"]
    # Processes: a detached child that outlives the kernel and rewrites grades.csv later.
    in_cell(
        perfect_copy(root / "x_detached_writer"),
        "import time\nfor _ in range(120):\n    time.sleep(0.5)\n    try:\n"
        f"        open({str(grades)!r}, 'w').write('hacked')\n"
        f"        open({str(out_dir / 'detached.txt')!r}, 'w').write('out')\n"
        "    except OSError:\n        pass\n",
    )
    # Native reads: the instructor's solutions/ and a classmate's files, with torch.from_file.
    secrets = [
        REPO / "solutions" / "ganlab" / "models.py",
        root / "honest_a" / "ganlab" / "models.py",
    ]
    leak = (
        "import torch, sys\nfound = []\n"
        f"for p in {[str(p) for p in secrets]!r}:\n"
        "    try:\n"
        "        t = torch.from_file(p, size=4000, dtype=torch.uint8)\n"
        "        found.append(bytes(t.tolist()).decode(errors='replace'))\n"
        "    except Exception as err:\n        pass\n"
        f"open('/sandbox/leak.txt' if __import__('os').path.isdir('/sandbox') else 'leak.txt', 'w')"
        ".write(''.join(found))\n"
    )
    f = perfect_copy(root / "x_from_file")
    edit_cell(
        f,
        "02_critic.ipynb",
        "ex-2-1",
        lambda src: (
            attack(leak, wait=10)
            + "import os\n"
            + "_t = open('leak.txt').read() if os.path.exists('leak.txt') else ''\n"
            + "if 'SOLUTION' in _t or 'CLASSMATE' in _t:\n    raise RuntimeError('LEAKED ' + _t[:3000])\n"
            + src
        ),
    )
    # Special files outside the sandbox: FIFOs, a device node, an SQLite ATTACH.
    special = "import os, sqlite3\n"
    for path in targets["special"]:
        special += f"try:\n    os.mkfifo({str(path)!r})\nexcept OSError:\n    pass\n"
    special += (
        f"try:\n    os.mknod({str(targets['special'][0]) + '.dev'!r}, 0o600 | 0o20000, os.makedev(1, 3))\n"
        "except OSError:\n    pass\n"
        "try:\n    c = sqlite3.connect(':memory:')\n"
        f"    c.execute(\"ATTACH DATABASE '{out_dir / 'attached.db'}' AS x\")\n"
        "    c.execute('CREATE TABLE x.t (a)')\n    c.commit()\nexcept Exception:\n    pass\n"
    )
    in_cell(perfect_copy(root / "x_special_files"), special, wait=2)
    # Signals: kill every kernel it can see but its own parent (the honest students' kernels).
    in_cell(
        perfect_copy(root / "x_killer"),
        "import os, signal, time\nme = os.getpid()\nfor _ in range(40):\n"
        "    for p in filter(str.isdigit, os.listdir('/proc')):\n"
        "        try:\n            cmd = open(f'/proc/{p}/cmdline', 'rb').read()\n"
        "        except OSError:\n            continue\n"
        "        if b'\\0kernel\\0-f\\0' in cmd and int(p) not in (me, os.getppid()):\n"
        "            try:\n                os.kill(int(p), signal.SIGKILL)\n"
        "            except OSError:\n                pass\n"
        "            try:\n                fd = os.pidfd_open(int(p))\n"
        "                signal.pidfd_send_signal(fd, signal.SIGKILL)\n"
        "            except (OSError, AttributeError):\n                pass\n"
        "    time.sleep(0.25)\n",
        wait=1,
    )
    # The grader's environment and paths from /proc, into the student's own feedback.
    environ = perfect_copy(root / "x_proc_environ")
    edit_cell(
        environ,
        "02_critic.ipynb",
        "ex-2-1",
        lambda src: (
            "import os\n_seen = []\n"
            "for _p in filter(str.isdigit, os.listdir('/proc')):\n"
            "    for _f in ('environ', 'cmdline'):\n"
            "        try:\n"
            "            _seen.append(open(f'/proc/{_p}/{_f}', 'rb').read().decode(errors='replace'))\n"
            "        except OSError:\n            pass\n"
            "raise RuntimeError('SEEN ' + ' | '.join(_seen)[:100000])\n" + src
        ),
    )
    # Memory outside RLIMIT_AS: 2 GiB in a memfd (never mapped), 1 GiB in /dev/shm and /tmp.
    in_cell(
        perfect_copy(root / "x_memfd"),
        "import os\nblock = b'x' * 2**24\n"
        "for path in ('/dev/shm/hog', '/tmp/hog'):\n    try:\n"
        "        with open(path, 'wb') as f:\n            for _ in range(64):\n"
        "                f.write(block)\n    except OSError:\n        pass\n"
        "fd = os.memfd_create('hog')\nfor _ in range(128):\n    os.write(fd, block)\n",
        wait=3,
    )
    # Unbounded output: 100 MB printed by a cell (and by a child on the inherited output).
    flood = perfect_copy(root / "x_output_flood")
    edit_cell(
        flood,
        "02_critic.ipynb",
        "ex-2-1",
        lambda src: (
            "import sys\nfor _ in range(100):\n    sys.stdout.write('y' * 2**20)\n"
            + attack("import os\nfor _ in range(100):\n    os.write(1, b'z' * 2**20)\n", wait=1)
            + src
        ),
    )
    # Huge cells: one over the cell limit, and a notebook over the file limit.
    huge = perfect_copy(root / "x_huge_cell")
    edit_cell(huge, "02_critic.ipynb", "ex-2-1", lambda src: src + "\n#" + "h" * 300_000)
    big = perfect_copy(root / "x_huge_notebook")
    nb_path = big / "notebooks" / "02_critic.ipynb"
    data = json.loads(nb_path.read_text())
    data["cells"].append(
        {"cell_type": "raw", "metadata": {}, "source": "b" * (25 * 2**20), "id": "big"}
    )
    nb_path.write_text(json.dumps(data))
    # Frame walking in the verifier: replaces the private check it finds up the stack.
    frames = perfect_copy(root / "x_frames")
    append_to(
        frames,
        "models.py",
        SIGMOID_CRITIC + "\nimport sys as _s\n_f = _s._getframe(0)\nwhile _f is not None:\n"
        "    for _k, _v in list(_f.f_locals.items()):\n"
        "        if _k == 'functions' and isinstance(_v, dict):\n"
        "            for _c in _v:\n                _v[_c] = lambda *a, **k: None\n"
        "    _f = _f.f_back\n",
    )
    # Forging its own results: every check function it can reach made to pass, torch's
    # comparisons made to agree. The kernel then says "passed"; the judge, which runs no
    # student code, must not.
    forger = perfect_copy(root / "x_forger")
    append_to(forger, "models.py", SIGMOID_CRITIC + FORGE)
    # Forged output: the runner's per-cell lines ("passed", and a kernel that never started, which
    # asks for a regrade) and check marks, printed, written to fds 1 and 2, and by a hook-free child.
    forged = "".join(
        f"GANLAB-CELL {json.dumps(dict(notebook='02_critic.ipynb', cell_id=c, outcome=o))}\n"
        for c, o in [(f"check-2-{i}", "passed") for i in range(1, 5)] + [("", "nostart")]
    )
    forged += "\u2714 check-2-3: 2/2 points PASSED\n"
    write = f"import os\nfor fd in (1, 2):\n    os.write(fd, {forged.encode()!r})\n"
    forger_out = perfect_copy(root / "x_forged_output")
    append_to(forger_out, "models.py", SIGMOID_CRITIC)
    edit_cell(
        forger_out,
        "02_critic.ipynb",
        "ex-2-1",
        lambda src: f"print({forged!r})\n{write}" + attack(write, wait=2) + src,
    )
    # Filling the host's disk through the sandbox folder: big files, and a great many small ones.
    filler = perfect_copy(root / "x_disk_filler")
    in_cell(
        filler,
        "import os\nos.makedirs('/sandbox/fill', exist_ok=True)\nchunk = b'f' * 2**23\n"
        "for i in range(512):\n    open(f'/sandbox/fill/{i}', 'wb').write(chunk)\n",
        wait=20,
    )
    many = perfect_copy(root / "x_many_files")
    in_cell(
        many,
        "import os\nos.makedirs('/sandbox/many', exist_ok=True)\n"
        "for i in range(200_000):\n    open(f'/sandbox/many/{i}', 'wb').close()\n",
        wait=20,
    )
    # A module whose copy in the judge would call back into the student's process.
    append_to(
        perfect_copy(root / "x_remote_forward"),
        "models.py",
        FUNCTIONAL_SIGMOID + FORGE + REMOTE_FORWARD,
    )
    # The grader's reference functions, imported from the sandbox's copy of the checks.
    append_to(perfect_copy(root / "x_reference_import"), "models.py", REFERENCE_INIT)
    # A long sum in an exercise cell: it runs in Python, but was too deep for the grader's own
    # analysis of the cells (deps), whose RecursionError graded the whole submission 0.
    deep = perfect_copy(root / "x_deep_sum")
    edit_cell(deep, "02_critic.ipynb", "ex-2-1", lambda src: DEEP_SUM + src)
    # An honest bug in init: it costs check 2.2 only (the critic checks build with the checks' own).
    append_to(perfect_copy(root / "honest_bad_init"), "models.py", BAD_INIT)
    return root


HONEST = "1,1,2,2,6,6,"  # check-2-1..2-4, total, max, (no notes)
DISK_MB = 256  # the class's disk quota: an honest notebook 02 keeps far less


@pytest.fixture(scope="module")
def hostile_class(tmp_path_factory):
    base = tmp_path_factory.mktemp("hostile")
    outside = base / "outside"
    outside.mkdir()
    grades = base / "grades.csv"
    targets = {
        "grades": grades,
        "outside": outside,
        "special": [
            REPO / "notebooks" / "99_fifo.ipynb",  # the instructor's copy
            base / "class" / "honest_b" / "notebooks" / "99_fifo.ipynb",  # a classmate
            outside / "fifo",
        ],
    }
    build(base / "class", targets)
    env = {k: v for k, v in os.environ.items() if k != "GANLAB_SOLUTIONS"}
    env["GANLAB_TEST_SECRET"] = SECRET
    start = time.monotonic()
    try:
        run = subprocess.run(
            [
                sys.executable,
                "-m",
                "ganlab",
                "grade",
                base / "class",
                "--out",
                grades,
                "--gradebook",
                base / "moodle.csv",
                "--feedback-dir",
                base / "feedback",
                "--notebooks",
                "02",
                "--jobs",
                "2",
                "--timeout-cell",
                "60",
                "--disk-mb",
                str(DISK_MB),
                "--isolation",
                "bwrap",
                "--no-progress",
            ],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=900,
        )
        seconds = time.monotonic() - start
        time.sleep(5)  # a detached writer would strike now, after the grader wrote the CSV
        snapshot = grades.read_text() if grades.is_file() else None
        survivors = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        made = [p for p in targets["special"] if os.path.lexists(p)]
        yield base, run, seconds, snapshot, survivors, made
    finally:
        for path in targets["special"]:
            for p in (path, Path(str(path) + ".dev")):
                if os.path.lexists(p):
                    os.remove(p)


def _rows(text):
    return {line.split(",", 1)[0]: line.split(",", 1)[1] for line in text.splitlines()[1:]}


pytestmark = [pytest.mark.slow, needs_bwrap, needs_solutions]


def test_the_run_finishes_and_every_entry_has_a_row(hostile_class):
    base, run, seconds, snapshot, _, _ = hostile_class
    assert run.returncode == 0, run.stderr[-3000:]
    rows = _rows(snapshot)
    names = {p.name for p in (base / "class").iterdir() if p.is_dir()} | {"zipped"}
    assert set(rows) == names, "every folder (dot-names too) and every zip is a row"
    assert "isolation: bubblewrap" in run.stdout


def test_honest_students_are_graded_exactly(hostile_class):
    rows = _rows(hostile_class[3])
    assert rows["honest_a"] == HONEST
    assert rows["honest_b"] == HONEST
    assert rows["honest_wrong"] == "1,1,0,0,2,6,", "the sigmoid costs checks 2.3 and 2.4 only"
    assert rows["honest_bad_init"] == "1,0,2,2,5,6,", "a wrong init costs check 2.2 only"
    assert rows["x_deep_sum"] == HONEST, "a long sum in a cell is no reason to grade 0"
    assert rows["x_forger"].startswith("1,1,0,0,2,6,"), (
        "a submission that patched every check it could reach in its own processes got the "
        f"points of its wrong critic back: {rows['x_forger']}"
    )
    assert rows["zipped"].startswith("1,1,2,2,6,6,from zipped.zip")
    assert rows[".hidden_student"].startswith("1,1,2,2,6,6,the folder's name starts with '.'")


@pytest.mark.parametrize(
    "name",
    [
        "x_detached_writer",
        "x_from_file",
        "x_special_files",
        "x_killer",
        "x_memfd",
        "x_output_flood",
    ],
)
def test_attacks_that_fail_leave_the_attacker_their_own_grade(hostile_class, name):
    row = _rows(hostile_class[3])[name]
    assert row.startswith("1,1,2,2,6,6,"), f"{name}: {row}"
    assert "flagged for review" in row, f"{name} used process creation and must be flagged: {row}"


def test_forged_output_lines_change_nothing(hostile_class):
    _, run, _, snapshot, _, _ = hostile_class
    row = _rows(snapshot)["x_forged_output"]
    assert row.startswith("1,1,0,0,2,6,"), f"forged 'passed' lines earned points: {row}"
    review = run.stdout.split("to review", 1)[1]
    assert "no kernel answered" not in review, "a forged 'nostart' line asked for a regrade"


def test_no_process_outlives_the_grading_and_the_csv_stays_the_graders(hostile_class):
    base, _, _, snapshot, survivors, _ = hostile_class
    assert TOKEN not in survivors, "a student's process outlived the grader"
    assert "hacked" not in snapshot
    assert not (base / "outside" / "detached.txt").exists()


def test_native_reads_find_neither_solutions_nor_classmates(hostile_class):
    base = hostile_class[0]
    text = (base / "feedback" / "x_from_file.md").read_text()
    assert "LEAKED" not in text and "SOLUTION" not in text and CLASSMATE not in text


def test_no_special_file_or_database_appears_outside_the_sandbox(hostile_class):
    base, made = hostile_class[0], hostile_class[5]
    assert made == [], f"special files made outside the sandbox: {made}"
    assert not (base / "outside" / "attached.db").exists()
    assert not list(base.glob("**/*.dev"))


def test_the_graders_environment_and_paths_do_not_reach_feedback(hostile_class):
    base = hostile_class[0]
    text = (base / "feedback" / "x_proc_environ.md").read_text()
    assert "SEEN" in text, "the leak attempt ran (its message is the student's own)"
    assert SECRET not in text and str(REPO) not in text and str(base) not in text
    assert len(text) < 70_000, "feedback is bounded"


def test_huge_cells_and_notebooks_are_limited_and_noted(hostile_class):
    rows = _rows(hostile_class[3])
    assert "exercise 2.1 is longer than 200 k characters" in rows["x_huge_cell"]
    assert rows["x_huge_cell"].startswith("0,1,2,2,5,6,")
    assert "notebooks/02_critic.ipynb is too large" in rows["x_huge_notebook"]
    assert rows["x_huge_notebook"].startswith("0,1,2,2,5,6,")


def test_frame_walking_is_flagged_in_the_row_and_the_summary(hostile_class):
    _, run, _, snapshot, _, _ = hostile_class
    row = _rows(snapshot)["x_frames"]
    assert "frame inspection" in row
    review = run.stdout.split("to review", 1)[1]
    assert "x_frames" in review and "frame inspection" in review
    assert "x_detached_writer" in review


def test_the_moodle_gradebook_has_a_row_per_student(hostile_class):
    base = hostile_class[0]
    lines = (base / "moodle.csv").read_text().splitlines()
    assert lines[0] == "Identifier,Full name,Grade,Last modified (grade),Feedback comments"
    # Not from Moodle's download, so no participant id: Moodle skips the row, the name tells whose.
    assert any(re.fullmatch(r",honest_a,6,[0-9T:+-]+,6/6 points", line) for line in lines), lines


def test_grading_stays_within_its_time(hostile_class):
    assert hostile_class[2] < 600, f"{hostile_class[2]:.0f} s for the hostile class"


@pytest.mark.parametrize(
    "name, breach",
    [
        ("x_disk_filler", f"wrote more than {DISK_MB} MB"),
        ("x_many_files", "more than 20,000 files"),
    ],
)
def test_filling_the_disk_stops_that_submission_only(hostile_class, name, breach):
    base, run, _, snapshot, _, _ = hostile_class
    row = _rows(snapshot)[name]
    assert row.startswith("0,0,0,0,0,6,"), f"{name}: a stopped run is not graded: {row}"
    assert breach in row, f"{name}: the row should say why it was stopped: {row}"
    assert breach in run.stdout, "the end-of-run review should list it"
    assert f"disk: at most {DISK_MB} MB" in run.stdout


def test_a_module_that_carries_code_into_the_judge_is_refused(hostile_class):
    row = _rows(hostile_class[3])["x_remote_forward"]
    assert row.startswith("1,1,0,0,2,6,"), (
        f"a critic whose copy in the judge ran the student's forward passed a check: {row}"
    )
    assert "frame inspection" in row


def test_importing_the_graders_reference_functions_is_flagged(hostile_class):
    row = _rows(hostile_class[3])["x_reference_import"]
    assert "the reference solutions" in row, row


def test_the_graders_reference_functions_earn_nothing(hostile_class):
    """The sandbox's checks/_reference.py holds no answers, and the kernel gets init's only once
    check 2.2 has run: the import earns nothing, and the critic checks still build with it."""
    row = _rows(hostile_class[3])["x_reference_import"]
    assert row.startswith("1,0,2,2,5,6,"), row


# -- the judge alone: what the submission's process sends, without a class to grade ------------

# The submission's side as the grader starts it, minus the sandbox; the reference solutions
# stand in for the student's modules.
SERVE = (
    "import os, sys; from ganlab.grading.verify import serve; "
    "serve({{}}, lambda *a: None, os.open({log!r}, os.O_WRONLY | os.O_CREAT | os.O_APPEND))"
)


def _judged(tmp_path, cell, check, expression):
    """(passed, hint) of ``checks.<check>(<expression>)`` in the judge, after ``cell`` ran there."""
    import io
    from contextlib import redirect_stdout

    from ganlab import checks
    from ganlab.grading.judge import Submission

    argv = [sys.executable, "-c", SERVE.format(log=str(tmp_path / "student.log"))]
    env = dict(os.environ, GANLAB_SOLUTIONS="1")
    sub = Submission(argv, env, str(REPO))
    try:
        sub.request({"op": "notebook"})
        sub.request({"op": "run", "source": cell, "name": "<cell>"})
        (argument,) = sub.evaluate([expression])
        with redirect_stdout(io.StringIO()):
            getattr(checks, check)(argument)
        return True, ""
    except checks.CheckFailed as err:
        return False, str(err)
    finally:
        sub.close()


def test_the_judges_copy_of_a_module_never_runs_the_students_code(tmp_path):
    cell = "from torch import nn\nfrom ganlab.models import Critic\n" + FUNCTIONAL_SIGMOID
    honest = _judged(tmp_path, cell, "check_critic_output", "Critic")
    assert honest[0] is False and "(0, 1)" in honest[1], honest
    got = _judged(tmp_path, cell + REMOTE_FORWARD, "check_critic_output", "Critic")
    assert got[0] is False, "the sigmoid critic passed once its forward ran over there"
    assert "not a setting" in got[1], got


def test_a_graph_step_cannot_change_the_judges_global_state():
    import torch

    from ganlab.grading import remote

    for name in ("set_default_tensor_type", "set_autocast_enabled", "use_deterministic_algorithms"):
        with pytest.raises(remote.WireError):
            remote._function(["torch", name])
    graph = [
        {"op": "placeholder", "name": "x", "target": "x", "args": [], "kwargs": {}},
        {
            "op": "call_function",
            "name": "poison",
            "target": ["torch", "set_default_tensor_type"],
            "args": ["torch.DoubleTensor"],
            "kwargs": {},
        },
        {
            "op": "output",
            "name": "output",
            "target": "output",
            "args": [{"~": "node", "v": "x"}],
            "kwargs": {},
        },
    ]
    with pytest.raises(remote.WireError):
        remote.run_graph(torch.nn.Module(), graph, [torch.zeros(1)], {})
    assert torch.get_default_dtype() == torch.float32


def test_a_graph_of_tensor_ops_from_torchs_c_namespaces_runs_in_the_judge():
    """F.logsigmoid, F.gelu, F.softplus, torch.linalg.vector_norm: honest ops whose functions
    live in torch._C._nn and friends, not in torch.nn.functional; refusing them failed correct work."""
    import torch
    import torch.nn.functional as F

    from ganlab.grading import remote

    class Honest(torch.nn.Module):
        def forward(self, x):
            return (
                F.logsigmoid(F.gelu(x))
                + F.softplus(x)
                + torch.linalg.vector_norm(x, dim=1, keepdim=True)
            )

    graph = remote.export_graph(Honest())
    assert not isinstance(graph, str), graph
    x = torch.randn(3, 4)
    assert torch.allclose(remote.run_graph(Honest(), graph, [x], {}), Honest()(x))
    with pytest.raises(remote.WireError):  # still no private names, there or anywhere
        remote._function(["torch._C._nn", "_parse_to"])


def test_a_graph_step_gives_the_judge_no_function_and_no_module(tmp_path):
    """Was: a step could read any public attribute and ``max`` calls its ``key``: the judge, which
    runs outside the sandbox, wrote a file with ``max([path], key=getattr(x.numpy(), "tofile"))``,
    and reached its own ``sys.path`` from ``torch.get_device_module`` (the student's code next)."""
    import torch

    from ganlab.grading import remote

    x = {"~": "node", "v": "x"}

    def graph(*steps):  # x, then ``steps`` (op, target, args, kwargs); the output is x
        none = {"~": "dict", "k": [], "v": []}
        nodes = [{"op": "placeholder", "name": "x", "target": "x", "args": [], "kwargs": none}]
        for i, (op, target, args, kwargs) in enumerate(steps):
            kw = {"~": "dict", "k": list(kwargs), "v": list(kwargs.values())}
            nodes.append({"op": op, "name": f"n{i}", "target": target, "args": args, "kwargs": kw})
        return nodes + [{"op": "output", "name": "o", "target": "o", "args": [x], "kwargs": none}]

    def n(i):
        return {"~": "node", "v": f"n{i}"}

    target = tmp_path / "written-by-the-judge"
    write = graph(
        ("call_method", "numpy", [x], {}),
        ("call_function", ["builtins", "getattr"], [n(0), "tofile"], {}),
        ("call_function", ["builtins", "max"], [[str(target)]], {"key": n(1)}),
    )
    path = graph(
        ("call_function", ["torch", "get_device_module"], ["cpu"], {}),
        ("call_function", ["builtins", "getattr"], [n(0), "torch"], {}),
        ("call_function", ["builtins", "getattr"], [n(1), "sys"], {}),
        ("call_function", ["builtins", "getattr"], [n(2), "path"], {}),
        ("call_function", ["_operator", "iadd"], [n(3), [str(tmp_path)]], {}),
    )
    for nodes in (write, path):
        with pytest.raises(remote.WireError, match="not a tensor or data"):
            remote.run_graph(torch.nn.Module(), nodes, [torch.zeros(2)], {})
    assert not target.exists(), "the judge wrote a file a graph named"
    assert str(tmp_path) not in sys.path, "a graph changed where the judge imports from"
    shape = graph(("call_function", ["builtins", "getattr"], [x, "shape"], {}))
    assert remote.run_graph(torch.nn.Module(), shape, [torch.zeros(2)], {}) is not None, "data"


def test_a_cell_too_deep_for_the_parser_is_run_not_a_grading_error():
    """Was: ``deps.names`` raised RecursionError on a long sum (or MemoryError on a deeper nest),
    and the submission's row was a grading error. Now such a cell is always run, like one that
    does not parse: it fails or passes in the kernel, as Python decides."""
    from ganlab.grading import deps

    for cell in (DEEP_SUM, "x = " + " + ".join(["a"] * 5000), "x = " + "-" * 100_000 + "1"):
        assert deps.names(cell) is None
        assert deps.needed_cells([cell, "y = 1", "y"], {2}) == [0, 1, 2]


def test_newlines_in_names_forge_no_line_of_the_feedback_or_the_csv(tmp_path):
    """Was: notes kept a zip's newlines (its own name, the names of members it ignored): the
    feedback showed a second "**Total: 6 / 6 points**" line and grades.csv a row of its own."""
    import zipfile

    from ganlab.grading import assemble, engine, intake, report

    row = "\nhonest_a,1,1,2,2,6,6,\n"  # a file name holds no "/"; a zip's member names may
    (tmp_path / "class").mkdir()
    with zipfile.ZipFile(tmp_path / "class" / f"mallory{row}.zip", "w") as archive:
        archive.writestr(f"x\n**Total: 6 / 6 points**{row}", "ignored, with its name in a note")
    (entry,), _ = intake.entries(tmp_path / "class", tmp_path / "unpacked")
    check = assemble.Check("02_critic.ipynb", "check-2-1", 6)
    result = engine.Result(entry.name, [engine.CheckResult(check, False, "not done")], entry.notes)
    assert "\n**Total: 6 / 6 points**\n" in "; ".join(entry.notes)  # what the notes carry
    text = report.feedback(result)
    totals = [line for line in text.splitlines() if line.startswith("**Total")]
    assert totals == ["**Total: 0 / 6 points**"], text
    rows = report.csv_text([result], [check]).splitlines()
    assert len(rows) == 2 and not any(row.startswith("honest_a") for row in rows), rows


def test_grading_one_notebook_hands_the_kernel_no_answer_of_a_later_one():
    """Was: ``--notebooks 02`` defined the references of upsample_block (03), the losses (04) and
    lerp (06) in the kernel at its start, before any of their checks had run: the kernel's history
    (``In``) holds them, and an error a check reports carries them into this run's feedback."""
    from ganlab.grading import assemble, engine, execute

    def at_start(only):
        canonical = assemble.canonical_notebooks(REPO, only)
        checks = [c for name, nb in canonical for c in assemble.checks_of(name, nb)]
        sources, before = engine.references(canonical, checks)
        return sources.get(execute.AT_START, ""), before

    source, before = at_start(["02"])
    assert source == "", "answers of later notebooks reach the kernel at its start"
    assert before["check-2-3"] == ["init_dcgan_weights"], "the judge's releases: 2.2's only"
    source, _ = at_start(["05"])  # the losses, graded in 04, are free for 05's step checks
    assert "def critic_loss" in source and "def lerp" not in source
