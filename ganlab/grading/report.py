"""The outputs: one CSV row per student, one Markdown feedback file per student."""

import csv
import io
from itertools import groupby


def csv_text(results, checks):
    """``student, <check id>..., total, max, notes``; rows sorted by student folder name."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["student", *[c.cell_id for c in checks], "total", "max", "notes"])
    maximum = sum(c.points for c in checks)
    for result in sorted(results, key=lambda r: r.name):
        earned = {r.check.cell_id: r.earned for r in result.checks}
        writer.writerow(
            [
                result.name,
                *[earned.get(c.cell_id, 0) for c in checks],
                result.total,
                maximum,
                "; ".join(result.notes),
            ]
        )
    return out.getvalue()


def feedback(result):
    """Markdown: the total, the notes, then every check with its points and hint."""
    maximum = sum(r.check.points for r in result.checks)
    lines = [
        f"# ganlab feedback: {result.name}",
        "",
        f"**Total: {result.total} / {maximum} points**",
        "",
    ]
    if result.notes:
        lines += ["Notes:", *[f"- {note}" for note in result.notes], ""]
    for notebook, group in groupby(result.checks, key=lambda r: r.check.notebook):
        lines += [f"## {notebook}", ""]
        for r in group:
            unit = "point" if r.check.points == 1 else "points"
            mark = "\u2714" if r.passed else "\u2718"
            line = f"- {mark} `{r.check.cell_id}`: {r.earned}/{r.check.points} {unit}"
            lines.append(
                line + (f": {' '.join(r.hint.split())}" if not r.passed and r.hint else "")
            )
        lines.append("")
    return "\n".join(lines)


def write_feedback(results, folder):
    folder.mkdir(parents=True, exist_ok=True)
    for result in results:
        (folder / f"{result.name}.md").write_text(feedback(result))
