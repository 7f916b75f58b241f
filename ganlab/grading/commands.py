"""``ganlab grade`` (a whole class) and ``ganlab check`` (a student's own copy)."""

import argparse
import os
import shutil
import sys
import tempfile
import traceback
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path

from . import assemble, engine, report

REPO = engine.PACKAGE.parent


class UsageError(Exception):
    """The command line asks for something impossible; reported as ``error: ...``."""


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
    return engine.Options(
        timeout_cell=args.timeout_cell,
        timeout_total=args.timeout_total,
        memory_mb=args.memory_mb,
        all_cells=args.all_cells,
    )


def _refused(*extra):
    """Paths no student process may open: the solutions, the git history (the solutions branch), ..."""
    paths = [REPO / "solutions", REPO / ".git", *extra]
    if os.environ.get("GANLAB_SOLUTIONS_DIR"):
        paths.append(Path(os.environ["GANLAB_SOLUTIONS_DIR"]))
    return [os.path.realpath(p) for p in paths if p]


def _grade_safely(folder, canonical, checks, work, refused, options):
    try:
        return engine.grade_submission(folder, canonical, checks, work, refused, options)
    except Exception as err:  # a grader problem must cost one row, not the run
        result = engine.Result(
            Path(folder).name, notes=[f"grading error: {type(err).__name__}: {err}"]
        )
        result.checks = [engine.CheckResult(c, False, "not graded (grading error)") for c in checks]
        traceback.print_exc(file=sys.stderr)
        return result


def grade_many(
    folders, canonical, checks, options, refused, jobs=1, work_dir=None, keep=False, progress=True
):
    """Grade ``folders`` in parallel (threads: the work happens in each one's subprocesses).

    Returns the results sorted by folder name.
    """
    root = Path(tempfile.mkdtemp(prefix="ganlab-grade-", dir=work_dir))
    pool = ThreadPoolExecutor(max_workers=jobs)
    try:
        futures = [
            pool.submit(
                _grade_safely, folder, canonical, checks, root / f"s{i:04d}", refused, options
            )
            for i, folder in enumerate(folders)
        ]
        done = as_completed(futures)
        if progress:
            from tqdm.auto import tqdm

            done = tqdm(done, total=len(futures), desc="grading", unit="student", file=sys.stderr)
        results = [f.result() for f in done]
    except KeyboardInterrupt:
        engine.stop_everything()  # the kernels run in their own sessions: Ctrl-C does not reach them
        pool.shutdown(wait=True, cancel_futures=True)
        raise
    finally:
        pool.shutdown(wait=False)
        if not keep:
            shutil.rmtree(root, ignore_errors=True)
        else:
            print(f"work folders kept in {root}", file=sys.stderr)
    return sorted(results, key=lambda r: r.name)


# -- ganlab grade ---------------------------------------------------------------------------


def add_grade_arguments(parser):
    parser.add_argument(
        "submissions",
        metavar="SUBMISSIONS_DIR",
        help="one sub-folder per student, each a copy of the kit (ganlab/ and notebooks/)",
    )
    parser.add_argument(
        "--out", required=True, help="the grades CSV to write (not inside SUBMISSIONS_DIR)"
    )
    parser.add_argument("--force", action="store_true", help="replace --out if it exists")
    parser.add_argument("--feedback-dir", help="write one Markdown feedback file per student here")
    parser.add_argument(
        "--jobs",
        type=int,
        default=os.cpu_count() or 1,
        help="submissions graded at once (default: the number of CPUs)",
    )
    _add_limits(parser)
    parser.add_argument(
        "--notebooks",
        action="append",
        metavar="NN[,NN...]",
        help="grade only these notebooks, by name prefix (e.g. 02,04); default: all",
    )
    parser.add_argument(
        "--work-dir", help="where the sandboxes go (default: the system's temp folder)"
    )
    parser.add_argument(
        "--keep-work", action="store_true", help="keep the sandboxes and logs (debugging)"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def _add_limits(parser):
    parser.add_argument(
        "--timeout-cell", type=float, default=120.0, help="seconds per notebook cell (default 120)"
    )
    parser.add_argument(
        "--timeout-total",
        type=float,
        default=900.0,
        help="seconds for all the notebooks of one submission (default 900)",
    )
    parser.add_argument(
        "--memory-mb",
        type=int,
        default=4096,
        help="address space a kernel may use beyond what torch maps at start-up (default 4096)",
    )
    parser.add_argument(
        "--all-cells",
        action="store_true",
        help="run every notebook cell; by default the plots and demos no check needs are left out",
    )


def run_grade(args):
    try:
        submissions = Path(args.submissions)
        if not submissions.is_dir():
            raise UsageError(f"{submissions} is not a folder")
        out = Path(args.out)
        if _inside(out, submissions) or (
            args.feedback_dir and _inside(args.feedback_dir, submissions)
        ):
            raise UsageError(
                "write --out and --feedback-dir outside SUBMISSIONS_DIR (students can read it)"
            )
        if out.is_dir() or (out.exists() and not args.force):
            raise UsageError(f"{out} already exists; pass --force to replace it")
        if args.jobs < 1:
            raise UsageError("--jobs must be at least 1")
        options = _options(args)
        canonical = assemble.canonical_notebooks(REPO, _prefixes(args.notebooks))
        checks = [c for name, nb in canonical for c in assemble.checks_of(name, nb)]
        folders = sorted(
            p
            for p in submissions.iterdir()
            if p.is_dir() and not p.is_symlink() and not p.name.startswith(".")
        )
        if not folders:
            raise UsageError(f"{submissions} has no student folders")
    except (UsageError, assemble.GradingError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    refused = _refused(submissions, out, args.feedback_dir and Path(args.feedback_dir))
    try:
        results = grade_many(
            folders,
            canonical,
            checks,
            options,
            refused,
            jobs=args.jobs,
            work_dir=args.work_dir,
            keep=args.keep_work,
            progress=not args.no_progress,
        )
    except KeyboardInterrupt:
        print("error: interrupted; no grades written", file=sys.stderr)
        return 130
    out.parent.mkdir(parents=True, exist_ok=True)
    partial = out.with_name(out.name + ".partial")
    partial.write_text(report.csv_text(results, checks))
    os.replace(partial, out)  # written only now, after every student process has ended
    if args.feedback_dir:
        report.write_feedback(results, Path(args.feedback_dir))
    maximum = sum(c.points for c in checks)
    mean = sum(r.total for r in results) / len(results)
    print(
        f"graded {len(results)} submissions ({len(checks)} checks, {maximum} points; mean {mean:.1f}): {out}"
    )
    return 0


# -- ganlab check ---------------------------------------------------------------------------


def add_check_arguments(parser):
    parser.add_argument(
        "path",
        nargs="?",
        default=".",
        metavar="PATH",
        help="your copy of the kit (default: the current folder)",
    )
    parser.add_argument(
        "--notebook",
        action="append",
        metavar="NN",
        help="check only this notebook (by name prefix, e.g. 02); repeat for more",
    )
    _add_limits(parser)


def run_check(args):
    try:
        path = Path(args.path)
        if not path.is_dir():
            raise UsageError(f"{path} is not a folder")
        if not (path / "ganlab").is_dir() and not (path / "notebooks").is_dir():
            raise UsageError(
                f"{path} has no ganlab/ or notebooks/ folder: give the root of your copy of the kit"
            )
        options = _options(args)
        canonical = assemble.canonical_notebooks(REPO, _prefixes(args.notebook))
        checks = [c for name, nb in canonical for c in assemble.checks_of(name, nb)]
    except (UsageError, assemble.GradingError, OSError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    print(
        f"checking {path.resolve()} ({len(canonical)} notebooks, {len(checks)} checks)...",
        file=sys.stderr,
    )
    try:
        results = grade_many(
            [path.resolve()], canonical, checks, options, _refused(), progress=False
        )
    except KeyboardInterrupt:
        print("error: interrupted", file=sys.stderr)
        return 130
    print(report.feedback(results[0]))
    return 0


CHECK_HELP = """Run the graded checks on your copy of the kit, the way the instructor's grader does:
each notebook runs in a fresh sandboxed kernel with your exercise cells and your ganlab/
exercise modules, then every check that passed is run again outside the kernel. The
checks are those of the notebooks/ folder of the kit this command belongs to: in your
copy, that is your own notebooks/ (which is all you have), so editing a check cell there
changes what `ganlab check` runs, but not what the instructor's grader runs."""

GRADE_HELP = """Grade a class: each sub-folder of SUBMISSIONS_DIR is one student's copy of the kit.
The check cells of this kit's notebooks/ (never the students' copies) run against each
student's exercise cells (taken by cell id) and ganlab/ exercise modules, in a sandboxed
kernel per student; every check that passed is then re-run outside the kernel with a
private copy of the checks. Notebook 05 trains for 20 steps (GANLAB_QUICK=1). Writes one
CSV row per student (points per check, total, max, notes) and, with --feedback-dir, one
Markdown file per student. The docstring of ganlab/grading/__init__.py says what the
sandbox defends against, and what it does not."""


def main(argv=None):
    parser = argparse.ArgumentParser(
        prog="python -m ganlab.grading", description=__doc__.splitlines()[0]
    )
    sub = parser.add_subparsers(dest="command", required=True)
    add_grade_arguments(
        sub.add_parser("grade", help="grade a folder of submissions", description=GRADE_HELP)
    )
    add_check_arguments(
        sub.add_parser(
            "check", help="self-check your copy before submitting", description=CHECK_HELP
        )
    )
    args = parser.parse_args(argv)
    return run_grade(args) if args.command == "grade" else run_check(args)
