"""The sandbox (``ganlab.grading.sandbox``): what a process started through it can see and do.

A small Python program (no torch: seconds, not minutes) probes the mount, PID, network
and user namespaces from inside; the graded runs are in tests/test_grading*.py.
"""

import json
import os
import subprocess
import sys
import time

import pytest

from ganlab.grading import engine, execute, sandbox

REPO = engine.PACKAGE.parent
ISOLATION = sandbox.choose("auto")
needs_bwrap = pytest.mark.skipif(
    not ISOLATION.isolated,
    reason="bubblewrap is missing or cannot make namespaces here (apt-get install bubblewrap)",
)

PROBE = r"""
import json, os, socket, sys
def can(f):
    try:
        f()
        return True
    except Exception:
        return False
repo = sys.argv[1]
print(json.dumps({
    "solutions": os.path.exists(repo + "/solutions"),
    "git": os.path.exists(repo + "/.git"),
    "outside": os.path.exists(sys.argv[2]),
    "write sandbox": can(lambda: open("/sandbox/x", "w").write("x")),
    "write root": can(lambda: open("/x", "w")),
    "write grader": can(lambda: open("/grader/ganlab/x", "w")),
    "mkfifo outside": can(lambda: os.mkfifo("/grader/fifo")),
    "device node": can(lambda: os.mknod("/sandbox/null", 0o20666, os.makedev(1, 3))),
    "pids": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()),
    "kill 1": can(lambda: os.kill(1, 0)),
    "uid": os.getuid(),
    "network": can(lambda: socket.create_connection(("1.1.1.1", 53), timeout=2)),
    "environ": open("/proc/self/environ", "rb").read().decode(),
    "checks": os.path.isdir("/grader/ganlab/checks"),
    "terminal": can(lambda: open("/dev/tty", "rb")),
}))
"""


def _probe(tmp_path, index=0):
    writable = tmp_path / "sandbox"
    writable.mkdir()
    uid = sandbox.uid_for(index)
    sandbox.prepare_writable(writable, uid)
    outside = tmp_path / "grades.csv"
    outside.write_text("grades")
    argv = [sandbox.sandbox_python(), "-I", "-c", PROBE, str(REPO), str(outside)]
    cmd = sandbox.wrap(argv, ISOLATION, writable, engine.PACKAGE, uid, env={"A": "1"})
    env = dict(os.environ, GANLAB_TEST_SECRET="grader-secret")
    # In a session of its own, as the grader starts every sandbox (no controlling terminal).
    run = subprocess.run(
        cmd, capture_output=True, text=True, timeout=120, env=env, start_new_session=True
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return json.loads(run.stdout.splitlines()[-1]), uid


@needs_bwrap
def test_the_sandbox_holds_only_its_own_folder(tmp_path):
    got, uid = _probe(tmp_path)
    assert (got["solutions"], got["git"], got["outside"]) == (False, False, False)
    assert got["write sandbox"] and got["checks"]
    assert not got["write root"] and not got["write grader"] and not got["mkfifo outside"]
    assert not got["device node"], "no device node can be made (no CAP_MKNOD)"
    assert not got["network"]
    assert not got["terminal"], "no controlling terminal to inject keystrokes into"
    assert "grader-secret" not in got["environ"] and got["environ"].startswith("A=1")


@needs_bwrap
def test_the_sandbox_sees_only_its_own_processes_as_its_own_user(tmp_path):
    got, uid = _probe(tmp_path)
    assert len(got["pids"]) <= 3, f"a fresh PID namespace, not this machine's: {got['pids']}"
    if uid is not None:
        assert got["uid"] == uid and uid != 0
        assert not got["kill 1"], "an unprivileged uid cannot signal the sandbox's init"


@needs_bwrap
def test_nothing_outlives_the_sandbox(tmp_path):
    writable = tmp_path / "sandbox"
    writable.mkdir()
    uid = sandbox.uid_for(1)
    sandbox.prepare_writable(writable, uid)
    marker = "ganlab-outlive-3f9a"
    code = (
        "import os, time\n"
        "if os.fork() == 0:\n    os.setsid()\n    os.execv('/bin/sleep', ['sleep', '300', "
        f"{marker!r}])\n"
        "time.sleep(300)\n"
    )
    argv = [sandbox.sandbox_python(), "-c", code]
    cmd = sandbox.wrap(argv, ISOLATION, writable, engine.PACKAGE, uid)
    proc = subprocess.Popen(cmd, start_new_session=True)
    time.sleep(3)
    os.killpg(proc.pid, 9)  # what the grader does at the end of a run
    proc.wait()
    time.sleep(1)
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert marker not in ps, "a detached child outlived its sandbox"


@needs_bwrap
def test_a_sandbox_killed_as_it_starts_leaves_nothing_behind(tmp_path):
    """A Ctrl-C can come just after the grader starts a sandbox: killing bwrap's process group
    then must end its child too, before that child has set itself up (with ``--new-session``
    a few in a thousand ran on)."""
    writable = tmp_path / "sandbox"
    writable.mkdir()
    uid = sandbox.uid_for(2)
    sandbox.prepare_writable(writable, uid)
    marker = "ganlab-killed-at-start-7c1e"
    argv = ["/bin/sh", "-c", f"sleep 300; : {marker}"]
    cmd = sandbox.wrap(argv, ISOLATION, writable, engine.PACKAGE, uid)
    tries = 500
    for i in range(tries):  # the window is a few ms wide, somewhere in the first 10 or so
        proc = subprocess.Popen(cmd, start_new_session=True)
        time.sleep(i % 100 * 1e-4)
        os.killpg(proc.pid, 9)  # what the grader does on Ctrl-C
        proc.wait()
    time.sleep(1)
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    left = [line for line in ps.splitlines() if marker in line]
    subprocess.run(["pkill", "-9", "-f", marker])
    assert not left, f"{len(left)} of {tries} sandboxes killed as they started ran on"


def test_without_bubblewrap_the_summary_says_so():
    lines = sandbox.describe(sandbox.choose("none"), sandbox.Limits())
    assert any("NOT ISOLATED" in line for line in lines)
    if ISOLATION.isolated and ISOLATION.cgroup_parent is None:
        text = " ".join(sandbox.describe(ISOLATION, sandbox.Limits()))
        assert "NOT limited: memory held in memfd" in text


def test_isolation_bwrap_where_it_cannot_run_is_a_usage_error(monkeypatch, capsys, tmp_path):
    from ganlab import cli

    monkeypatch.setattr(sandbox.shutil, "which", lambda name: None)
    (tmp_path / "class" / "a").mkdir(parents=True)
    status = cli.main(
        ["grade", str(tmp_path / "class"), "--out", str(tmp_path / "g.csv"), "--isolation", "bwrap"]
    )
    err = capsys.readouterr().err
    assert status == 2 and err.startswith("error: --isolation bwrap: bubblewrap"), err
    assert sys.platform != "linux" or "not installed" in err


# -- the grader's import path inside the sandbox --------------------------------------------

GRADER = r"""
import subprocess, sys
from ganlab.grading import engine, execute, sandbox
writable = sys.argv[1]
sandbox.prepare_writable(writable, sandbox.uid_for(0))
code = "import os, ganlab_tiny_probe as m; print(m.X, os.path.exists(sys.argv[1]))"
argv = [sandbox.sandbox_python(), "-E", "-c", "import sys; " + code, sys.argv[2]]
cmd = sandbox.wrap(argv, sandbox.Isolation("bwrap"), writable, engine.PACKAGE, sandbox.uid_for(0))
run = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
print(run.stdout.strip() or run.stderr[-2000:])
"""


def _tiny_module(tmp_path):
    lib = tmp_path / "lib"
    lib.mkdir(parents=True)
    (lib / "ganlab_tiny_probe.py").write_text("X = 42\n")
    return lib


@needs_bwrap
@pytest.mark.parametrize("how", [".pth", "user site"])
def test_the_sandbox_imports_what_the_grader_imports_from_outside_its_prefix(tmp_path, how):
    """A grader whose interpreter finds a module through a .pth file (an editable install,
    conda develop) or its user site (pip install --user): so does the sandboxed one."""
    lib = _tiny_module(tmp_path)
    venv = tmp_path / "venv"  # the grader's own venv, where the test may put .pth files
    system = ["--system-site-packages"] if how == "user site" else []  # else no user site
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", *system, venv], check=True)
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    site_dir = venv / "lib" / version / "site-packages"
    # This interpreter's libraries (torch, the kit) through a .pth too, as conda develop does.
    libraries = [p for p in sys.path[1:] if p.endswith("-packages")]
    lines = [f"import site; site.addsitedir({p!r})" for p in libraries] + [str(REPO)]
    (site_dir / "grader.pth").write_text("\n".join(lines) + "\n")
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    if how == ".pth":
        (site_dir / "tiny.pth").write_text(f"{lib}\n")
    else:
        user_site = tmp_path / "userbase" / "lib" / version / "site-packages"
        user_site.mkdir(parents=True)
        (user_site / "tiny.pth").write_text(f"{lib}\n")
        env["PYTHONUSERBASE"] = str(tmp_path / "userbase")
    (tmp_path / "sandbox").mkdir()
    args = [tmp_path / "sandbox", REPO / "solutions"]
    grader = [venv / "bin" / "python", "-c", GRADER, *map(str, args)]
    run = subprocess.run(grader, capture_output=True, text=True, timeout=300, env=env)
    assert run.returncode == 0, run.stderr[-2000:]
    # 42: imported; False: the kit on the grader's path is still not mounted (solutions/).
    assert run.stdout.split() == ["42", "False"], run.stdout


def test_the_import_path_mounts_skip_the_start_folder_secrets_and_the_home(tmp_path, monkeypatch):
    home, work = tmp_path / "home", tmp_path / "work"
    writable = work / "s0000" / "sandbox"
    lib = _tiny_module(home)
    for folder in (writable, lib / "nested", tmp_path / "start"):
        folder.mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    entries = [tmp_path / "start", REPO, tmp_path, home, work, lib / "nested", lib, "/usr/lib"]
    monkeypatch.setattr(sys, "path", [str(p) for p in entries])
    mounts = sandbox._library_mounts(writable, engine.PACKAGE)
    if (REPO / "solutions").exists() or (REPO / ".git").exists():
        assert mounts == [(lib.resolve(), lib)]  # only the library, and what it holds with it


@needs_bwrap
def test_the_preflight_names_the_module_the_sandbox_cannot_import(tmp_path, monkeypatch, capsys):
    from ganlab import cli

    monkeypatch.setattr(sandbox, "NEEDED", ("ganlab_no_such_module_7c1e",))
    (tmp_path / "class" / "a").mkdir(parents=True)
    out = tmp_path / "g.csv"
    status = cli.main(["grade", str(tmp_path / "class"), "--out", str(out), "--no-progress"])
    err = capsys.readouterr().err
    assert status == 2 and not out.exists(), err
    assert err.count("\n") == 1 and "cannot import ganlab_no_such_module_7c1e" in err, err


@needs_bwrap
def test_the_preflight_imports_what_pythonpath_holds(tmp_path, monkeypatch):
    """Kernels run ``python -E``, but the launcher puts the grader's PYTHONPATH on their path."""
    lib = _tiny_module(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(lib))
    # What PYTHONPATH did when this Python started: after the script's folder.
    monkeypatch.setattr(sys, "path", [sys.path[0], str(lib), *sys.path[1:]])
    assert sandbox._cannot_import(("ganlab_tiny_probe",)) == ""


def test_the_kernels_import_path_has_the_graders_pythonpath(tmp_path, monkeypatch):
    lib = _tiny_module(tmp_path)
    monkeypatch.setenv("PYTHONPATH", str(lib))
    run = engine.Run(tmp_path, sandbox.choose("none"), None, "m", sandbox.Limits())
    config = json.loads(run.launcher([], tmp_path, engine.Options(), {})[-1])
    assert config["path"] == [str(lib)]
    code = (
        "import json, sys; from ganlab.grading import kernel; "
        "kernel.protect(json.loads(sys.argv[1]), preload=()); "
        "import ganlab_tiny_probe as m; print(m.X, sys.path[:2])"
    )
    config["env"] = {}
    (tmp_path / "home").mkdir()
    got = subprocess.run(
        [sys.executable, "-E", "-c", code, json.dumps(config)],
        capture_output=True,
        text=True,
        timeout=120,
        env={k: v for k, v in os.environ.items() if k != "PYTHONPATH"},
    )
    assert got.stdout.split(None, 1) == ["42", f"{[str(tmp_path), str(lib)]}\n"], got.stderr[-2000:]


def test_a_folder_that_holds_the_submissions_is_never_mounted(tmp_path, monkeypatch):
    lib = _tiny_module(tmp_path / "shared")
    submissions = tmp_path / "shared" / "class"
    writable = tmp_path / "work" / "s0000" / "sandbox"
    for folder in (submissions, writable):
        folder.mkdir(parents=True)
    monkeypatch.setattr(sys, "path", ["", str(lib.parent)])
    assert sandbox._library_mounts(writable, engine.PACKAGE) == [(lib.parent, lib.parent)]
    assert sandbox._library_mounts(writable, engine.PACKAGE, [str(submissions)]) == []
    refused = (str(submissions),)
    cmd = sandbox.wrap(["true"], ISOLATION, writable, engine.PACKAGE, refused=refused)
    assert str(lib.parent) not in cmd


READ = r"""
import sys
for path in sys.argv[1:]:
    text = open(path).read()
    print("answers" if "nn.init.normal_" in text else "students_own" if "students_own" in text else "?")
"""


@needs_bwrap
def test_no_copy_of_the_checks_answers_is_readable_in_the_sandbox(tmp_path, monkeypatch):
    """The grader's package (/grader/ganlab) and an installed copy on its import path (here a
    folder of site-packages' shape) show the student copy's _reference.py, not the answers."""
    installed = tmp_path / "site" / "ganlab" / "checks"
    installed.mkdir(parents=True)
    answers = engine.PACKAGE / "checks" / "_reference.py"
    (installed / "_reference.py").write_text(answers.read_text())
    monkeypatch.setattr(sys, "path", [*sys.path, str(tmp_path / "site")])
    writable = tmp_path / "sandbox"
    writable.mkdir()
    uid = sandbox.uid_for(0)
    sandbox.prepare_writable(writable, uid)
    paths = [f"{sandbox.GRADER}/ganlab/checks/_reference.py", str(installed / "_reference.py")]
    argv = [sandbox.sandbox_python(), "-I", "-c", READ, *paths]
    run = subprocess.run(
        sandbox.wrap(argv, ISOLATION, writable, engine.PACKAGE, uid),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.stdout.split() == ["students_own", "students_own"], run.stderr[-2000:]


def test_a_sandbox_holds_no_answer_and_each_is_freed_after_its_own_check(tmp_path):
    from ganlab.checks import _core, _reference
    from ganlab.grading import assemble

    sub = assemble.load_submission(tmp_path, [])
    box = assemble.build_sandbox(tmp_path / "box", engine.PACKAGE, sub, {})
    text = (box / "ganlab" / assemble.REFERENCE).read_text()
    assert text == (REPO / "ganlab" / assemble.ANSWER_FREE).read_text()
    for name, answer in _core.answers(_reference).items():
        if name != "bce":  # the one shared helper, the same in both copies
            assert _core.definitions([answer]).splitlines()[-1].strip() not in text, name
    canonical = assemble.canonical_notebooks(REPO)
    checks = [c for name, nb in canonical for c in assemble.checks_of(name, nb)]
    sources, before = engine.references(canonical, checks)
    assert set(sources) == {"check-2-2", "check-3-2", "check-4-1", "check-4-2", "check-6-1"}
    assert before["check-2-2"] == [] and before["check-2-3"] == ["init_dcgan_weights"]
    assert "upsample_block" not in before["check-3-2"] and "upsample_block" in before["check-3-3"]
    assert "def lerp" in sources["check-6-1"] and "def critic_loss" not in sources["check-6-1"]
    # Grading notebook 05 alone: the losses are graded in 04, not in this run, so nothing is at
    # stake there and the step checks get the references from the start (in both runs).
    only_05 = assemble.canonical_notebooks(REPO, ["05"])
    sources, before = engine.references(only_05, assemble.checks_of(*only_05[0]))
    assert "def critic_loss" in sources[execute.AT_START] and "def bce" in sources[execute.AT_START]
    assert {"critic_loss", "generator_loss"} <= set(before["check-5-2"])
