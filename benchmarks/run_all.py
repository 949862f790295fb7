"""Regenerate docs/benchmarks.md from the JSON records of every benchmark.

    python benchmarks/run_all.py               # rebuild the page from benchmarks/results/
    python benchmarks/run_all.py --run quick   # run every benchmark with --quick first
    python benchmarks/run_all.py --run full    # run every benchmark at full size first

A benchmark is a script ``benchmarks/<name>.py`` that accepts ``--quick``
and ``--output PATH`` and writes one JSON record. The page shows, for
each script, its full-size record ``results/<name>.json`` when present and
otherwise its quick record ``results/<name>.quick.json``. A record is a
JSON object. The keys ``title``, ``command``, ``date``, ``machine``,
``quick`` and ``notes`` are shown as such. Every other key is shown as a
figure: scalars in one table, and a list of objects or an object of
objects as a table of its own.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
PAGE = HERE.parent / "docs" / "benchmarks.md"
META_KEYS = ("benchmark", "title", "command", "date", "machine", "quick", "notes")
NOT_BENCHMARKS = {"run_all"}
#: Tables with more rows than this are folded on the page.
LONG_TABLE_ROWS = 15
#: Scripts that need hardware this page may have been built without.
REQUIREMENTS = {"gpu_check": "a machine with a CUDA GPU"}


def benchmark_scripts() -> list[Path]:
    """Return the benchmark scripts in ``benchmarks/``, sorted by name."""
    return sorted(
        p for p in HERE.glob("*.py") if p.stem not in NOT_BENCHMARKS and not p.stem.startswith("_")
    )


def result_path(name: str, *, quick: bool, results: Path = RESULTS) -> Path:
    return results / (f"{name}.quick.json" if quick else f"{name}.json")


def run_benchmark(script: Path, *, quick: bool, results: Path = RESULTS) -> int:
    output = result_path(script.stem, quick=quick, results=results)
    command = [sys.executable, str(script), "--output", str(output)]
    if quick:
        command.append("--quick")
    print("running", " ".join(command), file=sys.stderr)
    return subprocess.run(command, cwd=HERE.parent).returncode


def read_record(path: Path) -> dict | None:
    """Read a JSON record; a script that wrote a folder keeps it in ``benchmark.json``."""
    if path.is_dir():
        path = path / "benchmark.json"
    return json.loads(path.read_text()) if path.is_file() else None


def latest_record(name: str, results: Path = RESULTS) -> dict | None:
    candidates = [result_path(name, quick=False, results=results), results / name,
                  result_path(name, quick=True, results=results)]
    for path in candidates:
        record = read_record(path)
        if record is not None:
            return record
    return None


def format_value(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, list) and all(isinstance(v, (int, float, str)) for v in value):
        return "[" + ", ".join(format_value(v) for v in value) + "]"
    if isinstance(value, (list, dict)):
        return "`" + json.dumps(value) + "`"
    return str(value)


def markdown_table(header: list[str], rows: list[list]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(format_value(v) for v in row) + " |" for row in rows]
    return lines + [""]


def table_of_objects(rows: list[dict], first: str | None = None) -> list[str]:
    keys: list[str] = []
    for row in rows:
        keys += [k for k in row if k not in keys]
    header = ([first] if first else []) + keys
    return markdown_table(header, [[row.get(k, "") for k in header] for row in rows])


def render_figures(figures: dict) -> list[str]:
    """Render the figures of a record: scalars in one table, nested objects as their own."""
    lines: list[str] = []
    scalars = [[k, v] for k, v in figures.items() if not isinstance(v, (list, dict))]
    if scalars:
        lines += markdown_table(["figure", "value"], scalars)
    for key, value in figures.items():
        if isinstance(value, dict) and value and all(isinstance(v, dict) for v in value.values()):
            rows = [{"name": k, **v} for k, v in value.items()]
            lines += [f"**{key}**", ""] + table_of_objects(rows)
        elif isinstance(value, dict):
            lines += render_figures({f"{key}.{k}": v for k, v in value.items()})
        elif isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
            lines += collapsible(key, table_of_objects(value), rows=len(value))
        elif isinstance(value, list):
            lines += [f"**{key}**: {format_value(value)}", ""]
    return lines


def collapsible(key: str, table: list[str], *, rows: int) -> list[str]:
    """Return a titled table, folded into a details block when it is long."""
    if rows <= LONG_TABLE_ROWS:
        return [f"**{key}**", ""] + table
    return [f"<details><summary>{key} ({rows} rows)</summary>", ""] + table + ["</details>", ""]


def render_machine(machine) -> str:
    if isinstance(machine, dict):
        return ", ".join(f"{k} {v}" for k, v in machine.items())
    return str(machine) if machine else "not recorded"


def render_section(script: Path, record: dict | None) -> list[str]:
    doc = (_module_doc(script) or script.stem).strip().splitlines()[0].rstrip(".")
    title = (record or {}).get("title") or doc
    lines = [f"## {script.stem}: {title}", ""]
    if record is None:
        needs = REQUIREMENTS.get(script.stem)
        status = f"Not run yet: it needs {needs}." if needs else "No result recorded yet."
        return lines + [
            f"{status} Run `python benchmarks/{script.name}` (or `--quick`) and then "
            "`python benchmarks/run_all.py`.",
            "",
        ]
    command = record.get("command", f"python benchmarks/{script.name}")
    lines += [f"- command: `{command}`", f"- date: {record.get('date', 'not recorded')}"]
    lines += [f"- machine: {render_machine(record.get('machine'))}"]
    if record.get("quick"):
        lines += ["- size: quick mode (small sizes for the test suite, not the reference figures)"]
    lines.append("")
    figures = record.get("figures")
    if not isinstance(figures, dict):
        figures = {k: v for k, v in record.items() if k not in META_KEYS}
    lines += render_figures(figures)
    notes = record.get("notes")
    if isinstance(notes, list):
        lines += [f"- {n}" for n in notes] + [""]
    elif notes:
        lines += [str(notes), ""]
    return lines


def _module_doc(script: Path) -> str | None:
    import ast

    try:
        return ast.get_docstring(ast.parse(script.read_text()))
    except SyntaxError:
        return None


def render_page(scripts: list[Path], results: Path = RESULTS) -> str:
    lines = [
        "# Benchmarks",
        "",
        "This page is generated: run `python benchmarks/run_all.py` to rebuild it from the",
        "JSON records in `benchmarks/results/` (`--run quick` or `--run full` runs every",
        "benchmark first). Each section shows the full-size record of a script when one",
        "exists and its quick record otherwise. Edit the scripts, not this page.",
        "",
    ]
    for script in scripts:
        lines += render_section(script, latest_record(script.stem, results))
    return "\n".join(lines).rstrip() + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", choices=("quick", "full"), help="run every benchmark first")
    parser.add_argument("--page", type=Path, default=PAGE, help="Markdown file to write")
    parser.add_argument("--results", type=Path, default=RESULTS,
                        help="folder of the JSON records (default: benchmarks/results)")
    args = parser.parse_args(argv)
    scripts = benchmark_scripts()
    failed = []
    if args.run:
        args.results.mkdir(parents=True, exist_ok=True)
        quick = args.run == "quick"
        failed = [s.name for s in scripts
                  if run_benchmark(s, quick=quick, results=args.results) != 0]
    args.page.parent.mkdir(parents=True, exist_ok=True)
    args.page.write_text(render_page(scripts, args.results))
    print(f"wrote {args.page}", file=sys.stderr)
    if failed:
        print("failed: " + ", ".join(failed), file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
