"""``ganlab grade`` (a whole class) and ``ganlab check`` (a student's own copy).

Their options are defined with every other command's in ``ganlab/cli.py``; this module
runs them: check the command line, find the entries (``intake``), grade each one
(``engine``) in parallel, write the outputs (``report``) after every student process
has ended.
"""

import contextlib
import os
import shutil
import signal
import sys
import tempfile
import threading
import traceback
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from datetime import datetime, timezone
from pathlib import Path

from ..cli import UsageError, check_output
from ..submission import collect
from . import assemble, engine, intake, report, sandbox

REPO = engine.PACKAGE.parent


def _inside(path, folder):
    path, folder = os.path.realpath(path), os.path.realpath(folder)
    return path == folder or path.startswith(folder + os.sep)


def _prefixes(values):
    return [p.strip() for v in values or [] for p in v.split(",") if p.strip()] or None


def _options(args):
    for name in ("timeout_cell", "timeout_total"):
        if getattr(args, name) <= 0:
            raise UsageError(f"--{name.replace('_', '-')} must be positive")
    if args.memory_mb < 256:
        raise UsageError("--memory-mb must be at least 256")
    if args.disk_mb < 64:
        raise UsageError("--disk-mb must be at least 64 (a training run's checkpoints need that)")
    return engine.Options(
        timeout_cell=args.timeout_cell,
        timeout_total=args.timeout_total,
        memory_mb=args.memory_mb,
        disk_mb=args.disk_mb,
        all_cells=args.all_cells,
    )


def _isolation(args):
    try:
        return sandbox.choose(getattr(args, "isolation", "auto"))
    except ValueError as err:
        raise UsageError(str(err)) from None


def _refused(*extra):
    """Without bubblewrap, the paths no student process may open (the audit hook's list)."""
    paths = [REPO / "solutions", REPO / ".git", *extra]
    if os.environ.get("GANLAB_SOLUTIONS_DIR"):
        paths.append(Path(os.environ["GANLAB_SOLUTIONS_DIR"]))
    return [os.path.realpath(p) for p in paths if p]


def _grade_safely(entry, index, canonical, checks, work, refused, options, isolation):
    try:
        return engine.grade_submission(
            entry, canonical, checks, work, refused, options, isolation, index
        )
    except Exception as err:  # a grader problem must cost one row, not the run
        note = f"grading error: {type(err).__name__}: {err}"
        result = engine.Result(entry.name, notes=[*entry.notes, note], flags=list(entry.flags))
        result.checks = [engine.CheckResult(c, False, "not graded (grading error)") for c in checks]
        result.flags.append("grading error (see the grader's log)")
        traceback.print_exc(file=sys.stderr)
        return result


@contextlib.contextmanager
def _stopped_like_ctrl_c():
    """``kill`` and a job's time limit (SIGTERM) or a closed terminal (SIGHUP) stop grading as
    Ctrl-C does: the submissions' processes, in sessions of their own, would outlive the grader."""

    def interrupt(signum, frame):
        raise KeyboardInterrupt

    signals = [getattr(signal, n) for n in ("SIGTERM", "SIGHUP") if hasattr(signal, n)]
    if threading.current_thread() is not threading.main_thread():  # only it may set handlers
        signals = []
    previous = {s: signal.signal(s, interrupt) for s in signals}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)


def grade_many(
    entries, canonical, checks, options, refused, isolation, jobs=1, root=None, progress=True
):
    """Grade ``entries`` in parallel (threads: the work happens in each one's subprocesses).

    Returns the results sorted by name.
    """
    pool = ThreadPoolExecutor(max_workers=jobs)
    with _stopped_like_ctrl_c():
        try:
            futures = [
                pool.submit(
                    _grade_safely,
                    entry,
                    i,
                    canonical,
                    checks,
                    Path(root, f"s{i:04d}"),
                    refused,
                    options,
                    isolation,
                )
                for i, entry in enumerate(entries)
            ]
            bar = None
            if progress:
                from tqdm.auto import tqdm  # only when a bar is shown

                bar = tqdm(total=len(futures), desc="grading", unit="student", file=sys.stderr)
            pending = set(futures)
            while pending:
                # Short waits: a Ctrl-C that lands on a worker thread only sets a flag, which
                # the main thread acts on when it next runs; an endless wait would sleep on.
                done, pending = wait(pending, timeout=0.5, return_when=FIRST_COMPLETED)
                if bar is not None and done:  # as before: the bar moves when a student is done
                    bar.update(len(done))
            if bar is not None:
                bar.close()
            results = [f.result() for f in futures]
        except KeyboardInterrupt:
            engine.stop_everything()  # the runs are in sessions of their own: Ctrl-C does not reach them
            pool.shutdown(wait=True, cancel_futures=True)
            raise
        finally:
            pool.shutdown(wait=False)
    return sorted(results, key=lambda r: r.name)


def _work_root(args):
    root = Path(tempfile.mkdtemp(prefix="ganlab-grade-", dir=getattr(args, "work_dir", None)))
    os.chmod(root, 0o711)  # sandboxes run as their own uid (as root) and must reach their folder
    return root


# -- ganlab grade ---------------------------------------------------------------------------


def _check_paths(args, submissions, out):
    """Refuse now, not after grading the whole class: an unreadable SUBMISSIONS_DIR; outputs
    inside it, one on another, or that cannot be written; a work folder inside it. A problem is
    a ``UsageError`` or an ``OSError`` (``checkpoints.NotWritable``)."""
    if not submissions.is_dir():
        raise UsageError(f"{submissions} is not a folder")
    if not os.access(submissions, os.R_OK | os.X_OK):
        raise UsageError(f"{submissions} cannot be read (permission denied)")
    named = {"--out": out, "--gradebook": args.gradebook, "--feedback-dir": args.feedback_dir}
    named = {flag: Path(p) for flag, p in named.items() if p}
    if any(_inside(p, submissions) for p in named.values()):
        raise UsageError(
            "write --out, --gradebook and --feedback-dir outside SUBMISSIONS_DIR "
            "(students can read it)"
        )
    if len({os.path.realpath(p) for p in named.values()}) < len(named):
        raise UsageError("--out, --gradebook and --feedback-dir must be different paths")
    for flag, path in named.items():
        check_output(path, args.force, option=flag, folder=flag == "--feedback-dir")
    work = Path(getattr(args, "work_dir", None) or tempfile.gettempdir())
    if not work.is_dir():
        raise UsageError(f"--work-dir {work} is not a folder")
    if _inside(work, submissions):  # the sandboxes would sit among the students' entries
        raise UsageError(
            f"the work folder {work} is inside SUBMISSIONS_DIR: choose another with --work-dir"
        )


def run_grade(args):
    started = datetime.now(timezone.utc)  # the worksheet's "Last modified" of every grade
    try:
        submissions, out = Path(args.submissions), Path(args.out)
        _check_paths(args, submissions, out)
        if args.jobs < 1:
            raise UsageError("--jobs must be at least 1")
        if args.students is not None and not _prefixes(args.students):
            raise UsageError("--students needs at least one name")
        options = _options(args)
        isolation = _isolation(args)
        canonical = assemble.canonical_notebooks(REPO, _prefixes(args.notebooks))
        checks = [c for name, nb in canonical for c in assemble.checks_of(name, nb)]
    except (UsageError, assemble.GradingError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    refused = _refused(
        submissions,
        out,
        args.feedback_dir and Path(args.feedback_dir),
        args.gradebook and Path(args.gradebook),
    )
    root = _work_root(args)
    try:
        entries, ignored = intake.entries(submissions, root / "unpacked")
        if args.students is not None:
            try:
                entries = intake.chosen(entries, args.students)  # commas may be in names
            except LookupError as err:
                print(f"error: {err.args[0]} in {submissions} (--students)", file=sys.stderr)
                return 2
        if not entries:
            print(f"error: {submissions} has no student folders or zips", file=sys.stderr)
            return 2
        results = grade_many(
            entries,
            canonical,
            checks,
            options,
            refused,
            isolation,
            jobs=args.jobs,
            root=root,
            progress=not args.no_progress,
        )
    except KeyboardInterrupt:
        print("error: interrupted; no grades written", file=sys.stderr)
        return 130
    finally:
        if args.keep_work:
            print(f"work folders kept in {root}", file=sys.stderr)
        else:
            shutil.rmtree(root, ignore_errors=True)
    redact = report.Redactor([REPO, root, submissions.resolve(), out.resolve()])
    # Written only now, after every student process has ended, each file whole or not at all.
    report.write_atomic(out, report.csv_text(results, checks, redact))
    if args.gradebook:
        users = {e.name: e.moodle for e in entries if e.moodle}
        worksheet = report.moodle_csv(results, checks, users, started)
        report.write_atomic(Path(args.gradebook), worksheet)
    if args.feedback_dir:
        report.write_feedback(results, Path(args.feedback_dir), redact)
    maximum = sum(c.points for c in checks)
    mean = sum(r.total for r in results) / len(results)
    print(
        f"graded {len(results)} submissions ({len(checks)} checks, {maximum} points; "
        f"mean {mean:.1f}): {out}"
    )
    for line in report.summary(
        results, ignored, sandbox.describe(isolation, engine.limits_for(options))
    ):
        print(line)
    if args.gradebook and len(users) < len(results):
        print(
            f"{args.gradebook}: no Moodle participant id for {len(results) - len(users)} of "
            f"{len(results)} students (not named as in Moodle's download): Moodle skips their rows"
        )
    shared = report.shared_ids(results, users) if args.gradebook else []
    if shared:
        print(
            f"{args.gradebook}: more than one submission from participant {', '.join(shared)}: "
            "Moodle skips their rows; decide which counts and enter that grade"
        )
    return 0


# -- ganlab check ---------------------------------------------------------------------------


def kit_root(start=None):
    """The student's copy of the kit: the nearest folder holding ``ganlab/`` and ``notebooks/``
    at or above ``start`` (default: the current folder, e.g. ``notebooks/`` in JupyterLab, or
    the clone Colab's set-up cell changed into), else the one above the installed package."""
    here = Path(start or os.getcwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / "ganlab").is_dir() and (folder / "notebooks").is_dir():
            return folder
    package_root = engine.PACKAGE.parent
    return package_root if (package_root / "notebooks").is_dir() else here


def gather(kit, notebooks, names, dest):
    """``dest`` laid out as a kit: the student's modules from ``kit``, the notebooks ``names``
    from the folder ``notebooks``, found as ``ganlab submit`` finds them (Colab's "Copy of"
    names too); nothing else of that folder (a Drive folder may hold anything, FIFOs too)."""
    files, _ = collect(kit, notebooks, names)
    dest.mkdir(parents=True)
    for name, source in files.items():
        (dest / name).parent.mkdir(exist_ok=True)
        shutil.copyfile(source, dest / name)
    return dest


def run_check(args):
    try:
        path = Path(args.path) if args.path else kit_root()
        if not path.is_dir():
            raise UsageError(f"{path} is not a folder")
        notebooks = Path(args.notebooks) if args.notebooks else path / "notebooks"
        if not (path / "ganlab").is_dir() and not notebooks.is_dir():
            raise UsageError(
                f"{path} has no ganlab/ or notebooks/ folder: give the root of your copy of the "
                "kit (or --notebooks DIR for notebooks kept elsewhere, e.g. on Google Drive)"
            )
        if args.notebooks and not notebooks.is_dir():
            raise UsageError(f"--notebooks {notebooks} is not a folder")
        options = _options(args)
        isolation = _isolation(args)
        # The check cells: the kit's own notebooks, or, where the package was installed without
        # them (pip install . puts only ganlab/ in site-packages), the student's copy's.
        source = REPO if (REPO / "notebooks").is_dir() else path
        canonical = assemble.canonical_notebooks(source, _prefixes(args.notebook))
        checks = [c for name, nb in canonical for c in assemble.checks_of(name, nb)]
    except (UsageError, assemble.GradingError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(
        f"checking {path.resolve()} ({len(canonical)} notebooks, {len(checks)} checks)...",
        file=sys.stderr,
    )
    root = _work_root(args)
    try:
        entry = intake.Entry(path.resolve().name, path.resolve())
        if args.notebooks:
            entry.folder = gather(path, notebooks, [name for name, _ in canonical], root / "copy")
        results = grade_many(
            [entry], canonical, checks, options, _refused(), isolation, root=root, progress=False
        )
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    finally:
        shutil.rmtree(root, ignore_errors=True)
    print(report.feedback(results[0]))
    for line in sandbox.describe(isolation, engine.limits_for(options)):
        print(line, file=sys.stderr)
    return 0
