"""Run a submission's notebooks in a kernel, with nbclient, inside its sandbox.

    python -m ganlab.grading.execute CONFIG_JSON NOTEBOOK... < RELEASES_JSON   (PYTHONPATH: the grader's copy)

This file is the runner: it runs in the submission's sandbox (see ``sandbox``), next to
the kernel it starts, and uses nbclient's public interface only: a ``NotebookClient``
per notebook sharing one ``KernelManager`` (starting a kernel imports torch: ~3 s of
CPU, so the namespace is reset between notebooks instead), ``execute_cell`` cell by
cell, and the ``on_cell_executed`` hook for each cell's reply. The kernel is started
through the launcher ``kernel.py`` (audit hook, rlimits), named by a kernel spec the
runner holds in memory, not in a file the kernel could rewrite.

* A dead kernel (crash, ``os._exit``, out of memory) or a timed-out cell: a fresh
  kernel replays the notebook's cells that passed so far, and the run goes on;
* a kernel that does not answer its first message within ``startup`` seconds (a busy
  machine, a start-up hang of ipykernel or jupyter_client's port race) is started
  again; after ``START_TRIES`` the run ends with a ``nostart`` line, which the grader
  reports for review: the cells did not run, through nobody's fault in the notebook;
* a total time limit: each cell's timeout is cut to what is left, later cells skip;
* saved outputs are dropped before the run and new ones are not kept (only the size
  of what a cell printed is counted): the run's memory does not grow with them;
* the checks' references (``checks/_reference.py``, which the sandbox holds without its
  answers) come on standard input, ``{check cell id: source}``: once that check cell has run,
  a hidden step defines them in the kernel's ``ganlab.checks._reference`` (``RELEASE``), and in
  every kernel started after it, so that a bug in one exercise costs only its own check.
  They come on stdin, not in argv (``/proc/PID/cmdline`` is readable by the kernel), and the
  runner makes itself non-dumpable first, so the kernel cannot read its memory
  (``/proc/PID/mem``) or its descriptors for the answers of exercises still to grade.

One JSON line per cell goes to standard output. The grader treats these lines as
hints only (the student's kernel shares this sandbox and could forge them); points
come from ``verify``.
"""

import json
import sys
import time

RESET = """\
def _ganlab_reset(ip=get_ipython()):
    import sys
    for name in [n for n in ip.user_ns if not n.startswith("__") and n not in ip.user_ns_hidden]:
        del ip.user_ns[name]
    if "matplotlib.pyplot" in sys.modules:
        sys.modules["matplotlib.pyplot"].close("all")
_ganlab_reset()
"""
RELEASE = """\
def _ganlab_release(source):
    import ganlab.checks._reference as references
    exec(source, vars(references))
_ganlab_release({source!r})
del _ganlab_release
"""
AT_START = "*"  # the releases' key for references every kernel gets at its start
MAX_RESTARTS = 3
START_TRIES = 2
TAG = "GANLAB-CELL"


def _client_classes():
    from jupyter_client.kernelspec import KernelSpec, KernelSpecManager
    from nbclient import NotebookClient

    class OneSpec(KernelSpecManager):
        """The launcher as the only kernel there is."""

        argv = None

        def get_kernel_spec(self, kernel_name):
            return KernelSpec(argv=self.argv, display_name="ganlab grader", language="python")

    class CountingClient(NotebookClient):
        """Keeps no outputs: counts their size, keeps the error (``output`` is nbclient's
        documented place where each output message becomes part of the cell)."""

        printed = 0

        def output(self, outs, msg, display_id, cell_index):
            content = msg.get("content", {})
            self.printed += sum(len(str(v)) for v in content.get("data", {}).values())
            self.printed += len(str(content.get("text", "")))
            if msg.get("msg_type") == "error":
                return {
                    "output_type": "error",
                    "ename": str(content.get("ename", ""))[:200],
                    "evalue": str(content.get("evalue", ""))[:2000],
                    "traceback": [],
                }
            return None

    return OneSpec, CountingClient


def run(config, paths, emit, releases=None):
    import nbformat
    from jupyter_client.manager import AsyncKernelManager
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from nbclient.util import run_sync

    OneSpec, CountingClient = _client_classes()
    specs = OneSpec()
    specs.argv = config["kernel_argv"] + ["-f", "{connection_file}"]
    deadline = time.monotonic() + config["timeout_total"]
    restarts, kc, km = 0, None, None
    releases = dict(releases or {})  # check cell id -> source
    released = [releases.pop(AT_START)] if AT_START in releases else []  # those given so far

    def release(client, sources):
        """Define ``sources`` in the kernel's ``ganlab.checks._reference`` (a hidden step)."""
        for source in sources:
            first = client.nb.cells[0]  # nbclient stores the step there, at the index it is given
            try:
                client.execute_cell(nbformat.v4.new_code_cell(RELEASE.format(source=source)), 0)
            except Exception:  # a kernel that died: the next cell finds it dead
                pass
            finally:
                client.nb.cells[0] = first

    def start(client, name):
        """A fresh kernel for ``client``: a new manager each time (a shut-down one is spent);
        None, after a ``nostart`` line, if none answered in ``START_TRIES`` tries.

        Async, as nbclient's own: its timeouts need an event loop that never blocks."""
        nonlocal km
        why = ""
        client.startup_timeout = int(config["startup"])
        for _ in range(START_TRIES):
            km = client.km = AsyncKernelManager(kernel_name="ganlab", kernel_spec_manager=specs)
            try:
                client.start_new_kernel(cwd=config["cwd"], env=config["env"])
                started = client.start_new_kernel_client()
                release(client, released)  # the references graded in this run so far
                return started
            except Exception as err:  # no answer in time, or the kernel died first
                why = f"{type(err).__name__}: {err}"[:500]
                try:  # nbclient cleans up after no answer, not after a failed launch
                    run_sync(km.shutdown_kernel)(now=True)
                except Exception:  # never started, or gone already
                    pass
        emit({"notebook": name, "cell_id": "", "outcome": "nostart", "evalue": why})
        return None

    def alive():
        return run_sync(km.is_alive)()

    def stop():
        if kc is not None:
            kc.stop_channels()
        try:
            run_sync(km.shutdown_kernel)(now=True)
        except Exception:  # already dead, or never started
            pass

    try:
        for path in paths:
            nb = nbformat.read(path, as_version=4)
            name = path.rsplit("/", 1)[-1]
            client = CountingClient(nb, allow_errors=True, record_timing=False)
            replies = {}

            def on_cell_executed(cell, cell_index, execute_reply, replies=replies):
                replies[cell_index] = execute_reply

            client.on_cell_executed = on_cell_executed
            if kc is None:
                kc = start(client, name)
                if kc is None:
                    return
            else:
                client.km, client.kc = km, kc
                try:
                    client.execute_cell(nbformat.v4.new_code_cell(RESET), 0)
                except Exception:  # a kernel that cannot reset: the next cell finds it dead
                    pass
            passed, crashed = [], []  # sources to replay after a crash; ids of the crashes
            for index, cell in enumerate(nb.cells):
                if cell.cell_type != "code":
                    continue
                cell.outputs = []
                record = {
                    "notebook": name,
                    "cell_id": cell.get("id", ""),
                    "crashed_before": list(crashed),
                }
                left = deadline - time.monotonic()
                if left <= 1:
                    emit(dict(record, outcome="skipped", reason="total time limit reached"))
                    continue
                client.timeout = max(1, int(min(config["timeout_cell"], left)))
                outcome, ename, evalue = "passed", "", ""
                try:
                    client.execute_cell(cell, index)
                    reply = replies.get(index, {}).get("content", {})
                    if reply.get("status") != "ok":
                        outcome = "failed"
                        ename = str(reply.get("ename", ""))[:200]
                        evalue = str(reply.get("evalue", ""))[:2000]
                except CellTimeoutError:
                    outcome, ename = "timeout", "timeout"
                except DeadKernelError:
                    outcome, ename = "died", "died"
                except Exception as err:  # the kernel stopped answering in some other way
                    outcome, ename, evalue = "died", "died", f"{type(err).__name__}: {err}"[:500]
                if record["cell_id"] in releases:  # this check has run: its reference is free
                    released.append(releases.pop(record["cell_id"]))
                    if outcome in ("passed", "failed") and alive():
                        release(client, released[-1:])  # else the next kernel gets it at start
                if outcome in ("timeout", "died") or not alive():
                    outcome = "died" if outcome == "passed" else outcome
                    emit(dict(record, outcome=outcome, ename=ename, evalue=evalue))
                    crashed.append(record["cell_id"])
                    restarts += 1
                    stop()
                    if restarts > MAX_RESTARTS:
                        return
                    kc = start(client, name)
                    if kc is None:
                        return
                    for source in passed:  # back to where the dead kernel was
                        try:
                            client.execute_cell(nbformat.v4.new_code_cell(source), 0)
                        except Exception:
                            break
                    continue
                if outcome == "passed":
                    passed.append(cell.source)
                emit(
                    dict(
                        record, outcome=outcome, ename=ename, evalue=evalue, printed=client.printed
                    )
                )
                client.printed = 0
    finally:
        stop()


def _undumpable():
    """No process of this uid may read this one's memory or descriptors (``PR_SET_DUMPABLE``)."""
    if sys.platform == "linux":
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE = 4


def main(argv):
    _undumpable()  # before the references are read, and before any kernel starts
    releases = json.loads(sys.stdin.read() or "{}")
    config = json.loads(argv[0])
    out = sys.stdout

    def emit(record):
        out.write(f"{TAG} {json.dumps(record)}\n")
        out.flush()

    run(config, argv[1:], emit, releases)


if __name__ == "__main__":  # run as -m: ganlab.grading's import guards apply first
    main(sys.argv[1:])
