"""A pytest plugin for the grader's nbval run (loaded with ``-p ganlab.grading.nbplugin``).

nbval stays the engine: it sends each cell to the kernel and fails the cell on an
error. This plugin adds what grading needs:

* one kernel for all the notebooks of a submission, namespace reset in between
  (starting a kernel imports torch: ~3 s of CPU each time);
* a dead kernel is noticed within a second instead of after the cell timeout, and
  replaced before the next cell by a fresh one that silently re-runs the cells of
  the notebook that passed so far: a crash (segfault, ``os._exit``, out of memory)
  or a hang costs the cell that caused it and what depends on it, not the rest;
* a total time limit: each cell's timeout is cut to what is left, later cells skip;
* one JSON line per cell in ``--ganlab-record`` (outside the sandbox): outcome,
  error name and value, whether the kernel survived.
"""

import json
import time
from queue import Empty

import pytest

# Between notebooks: forget the user's names and figures (cheaper than %reset, which runs gc).
RESET = """\
def _ganlab_reset(ip=get_ipython()):
    import sys
    for name in [n for n in ip.user_ns if not n.startswith("__") and n not in ip.user_ns_hidden]:
        del ip.user_ns[name]
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")
_ganlab_reset()
"""


class _State:
    kernel = None
    deadline = None
    record = None
    died = False  # the kernel of the current cell died while it ran
    history = {}  # notebook -> [(cell source, passed)] so far, for the replay after a crash
    crashes = {}  # notebook -> ids of the cells whose kernel died or was stopped
    MAX_RESTARTS = 3


def pytest_addoption(parser):
    parser.addoption("--ganlab-record", help="append one JSON line per cell to this file")
    parser.addoption(
        "--ganlab-total-timeout", type=float, default=None, help="seconds for the whole run"
    )


def pytest_configure(config):
    import nbval.kernel
    import nbval.plugin

    if getattr(nbval.plugin.IPyNbFile, "_ganlab_patched", False):
        return
    start_kernel, await_reply = nbval.plugin.IPyNbFile.setup, nbval.kernel.RunningKernel.await_reply

    def setup(self):
        kernel = _State.kernel
        if kernel is not None and kernel.is_alive():
            try:
                msg_id = kernel.execute_cell_input(RESET, allow_stdin=False)
                kernel.await_reply(msg_id, timeout=30)
                kernel.await_idle(msg_id, 30)
                self.kernel = kernel
                return
            except Exception:  # a kernel that cannot even reset: start a fresh one
                _stop(kernel)
        start_kernel(self)
        _State.kernel = self.kernel

    def await_reply_or_death(self, msg_id, timeout=None):
        end = time.monotonic() + (timeout if timeout is not None else float("inf"))
        while True:
            try:
                return await_reply(
                    self, msg_id, timeout=max(0.05, min(1.0, end - time.monotonic()))
                )
            except Empty:
                if not self.is_alive():
                    _State.died = True
                    raise
                if time.monotonic() >= end:
                    raise

    nbval.plugin.IPyNbFile._ganlab_start = start_kernel
    nbval.plugin.IPyNbFile.setup = setup
    nbval.plugin.IPyNbFile.teardown = lambda self: None  # the kernel outlives each notebook
    nbval.kernel.RunningKernel.await_reply = await_reply_or_death
    nbval.plugin.IPyNbFile._ganlab_patched = True
    total = config.getoption("ganlab_total_timeout")
    _State.deadline = time.monotonic() + total if total else None
    _State.record = config.getoption("ganlab_record")


def _restart_and_replay(item):
    """A fresh kernel for ``item``'s notebook, brought to where the dead one was."""
    import nbval.plugin

    notebook = item.parent
    if len(_State.crashes.get(notebook.fspath.basename, [])) > _State.MAX_RESTARTS:
        return
    _stop(notebook.kernel)
    nbval.plugin.IPyNbFile._ganlab_start(notebook)
    _State.kernel = notebook.kernel
    timeout = float(item.config.option.nbval_cell_timeout)
    for source, passed in _State.history.get(notebook.fspath.basename, []):
        if passed and notebook.kernel.is_alive():
            try:
                msg_id = notebook.kernel.execute_cell_input(source, allow_stdin=False)
                notebook.kernel.await_reply(msg_id, timeout=timeout)
                notebook.kernel.await_idle(msg_id, 5)
            except Empty:
                return


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item):
    _State.died = False
    if not hasattr(item, "cell"):
        return
    item.parent.timed_out = False  # nbval would mark every later cell "expected to fail"
    left = _State.deadline - time.monotonic() if _State.deadline is not None else float("inf")
    if left <= 1:
        pytest.skip("total time limit reached")
    item.config.option.nbval_cell_timeout = min(float(item.config.option.nbval_cell_timeout), left)
    kernel = getattr(item.parent, "kernel", None)
    if kernel is not None and not kernel.is_alive():
        _restart_and_replay(item)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if not hasattr(item, "cell") or not _State.record:
        return
    if report.when == "call" or (report.when == "setup" and not report.passed):
        error = next((o for o in (item.test_outputs or []) if o.get("output_type") == "error"), {})
        kernel = getattr(item.parent, "kernel", None)
        text = str(report.longrepr) if report.failed else ""
        notebook, alive = (
            item.parent.fspath.basename,
            bool(kernel is not None and kernel.is_alive()),
        )
        crashed_before = list(_State.crashes.get(notebook, []))
        if not alive:
            _State.crashes.setdefault(notebook, []).append(item.cell.get("id", ""))
        _State.history.setdefault(notebook, []).append((item.cell.source, report.passed))
        line = {
            "notebook": notebook,
            "cell_id": item.cell.get("id", ""),
            "crashed_before": crashed_before,
            "outcome": "skipped" if report.skipped else report.outcome,
            "ename": error.get("ename", ""),
            "evalue": error.get("evalue", ""),
            "timeout": "Timeout of" in text and not _State.died,
            "died": _State.died,
            "dead_before": "Kernel dead on test start" in text,
            "alive": alive,
            "skip_reason": report.longrepr[2]
            if report.skipped and isinstance(report.longrepr, tuple)
            else "",
            "message": text[-2000:],
        }
        with open(_State.record, "a") as f:
            f.write(json.dumps(line) + "\n")


def _stop(kernel):
    if hasattr(kernel, "km"):  # nbval's stop() deletes it: a second stop would fail
        try:
            kernel.stop()
        except Exception:
            pass


def pytest_sessionfinish(session):
    if _State.kernel is not None:
        _stop(_State.kernel)
