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

from ganlab.grading import engine, sandbox

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
    run = subprocess.run(cmd, capture_output=True, text=True, timeout=120, env=env)
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
