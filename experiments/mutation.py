"""Mutation testing of the core modules, each against its own test files.

    .venv/bin/pip install -e '.[mutation]'
    .venv/bin/python experiments/mutation.py                     # every core module
    .venv/bin/python experiments/mutation.py meters/powercap.py  # one (or a few) modules
    .venv/bin/python experiments/mutation.py --list              # modules and their tests

The tool is mutmut (3.x): it writes every mutant of a module into one trampolined copy and
forks a worker per mutant that runs only the tests which cover the mutated function, so a
module takes about a minute on two cores instead of a pytest start-up per mutant.

mutmut rewrites sources, so nothing runs in this checkout: the working tree's files
(tracked and untracked, not ignored; ``--ref REV`` takes a commit instead) are copied to
``--scratch`` (default /tmp/gi-energy-mutation) and mutmut runs there, once per module with
a fresh ``mutants/`` directory and that module's test files only. Before the mutants,
mutmut runs a "forced fail" mutant that breaks every function: if the tests did not import
the mutated copy, that run fails and so does this script.

Writes ``--out`` (default runs/mutation/): ``scores.md`` and ``scores.json`` (killed /
total and the percentage per module) and ``survivors/<module>.diff`` (each surviving
mutant's diff, to kill with a test or list as equivalent in docs/measurements.md). A
timeout counts as killed; a mutant that no selected test reaches ("no tests") counts as
surviving. A survivor that only changes the letter case of SQL text is equivalent by
construction (SQLite keywords and identifiers are case-insensitive): it is counted apart
(a second score without them) and left out of the diffs. Exit status 1 when a module's
score is under ``--target`` percent.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent

MODULES: dict[str, list[str]] = {
    "meters/powercap.py": ["tests/test_meters_rapl.py", "tests/test_meters_wrap.py"],
    "meters/rapl.py": ["tests/test_meters_rapl.py", "tests/test_meters_wrap.py",
                       "tests/test_meters_rapl_exact.py", "tests/test_meters_locks.py",
                       "tests/test_meters_contract.py", "tests/test_meters_pyrapl.py"],
    "meters/counters.py": ["tests/test_meters_pyrapl.py", "tests/test_meters_wrap.py"],
    "meters/nvml.py": ["tests/test_meters_nvml.py", "tests/test_meters_nvml_exact.py",
                       "tests/test_meters_contract.py"],
    "meters/nvmldevice.py": ["tests/test_meters_nvml.py", "tests/test_meters_nvml_exact.py",
                             "tests/test_meters_contract.py"],
    "pareto.py": ["tests/test_pareto.py", "tests/test_nsga2.py", "tests/test_indicators.py"],
    "search/nsga2.py": ["tests/test_nsga2.py", "tests/test_survival_fast.py"],
    "report/indicators.py": ["tests/test_indicators.py", "tests/test_values_indicators.py"],
    # test_compare.py builds a grid and replays per test: end to end, and too slow to run
    # once per mutant; compare's, the figures' and the columns' values are in the fast
    # test_values_* files on tiny hand-made run directories.
    "report/compare.py": ["tests/test_values_compare.py", "tests/test_values_compare_runs.py"],
    "report/figures.py": ["tests/test_values_compare.py", "tests/test_values_compare_runs.py",
                          "tests/test_values_columns.py", "tests/test_values_trajectory.py"],
    "report/columns.py": ["tests/test_values_columns.py", "tests/test_values_compare.py",
                          "tests/test_values_compare_runs.py"],
    "report/stats.py": ["tests/test_compare.py", "tests/test_values_compare.py"],
    "evaluation/store.py": ["tests/test_store.py", "tests/test_store_exact.py"],
    "runs/replay.py": ["tests/test_replay.py", "tests/test_values_replay.py"],
    "config/parse.py": ["tests/test_problem.py", "tests/test_values_parse.py"],
    "config/checks.py": ["tests/test_problem.py"],
    "config/problem.py": ["tests/test_problem.py", "tests/test_values_problem.py"],
}
"""Core module (under gi_energy/) -> its own test files (those that exist are used)."""

PYTEST_ARGS: dict[str, list[str]] = {
    # A 100k-row timing benchmark: it asserts a duration, not a value, and alone takes
    # longer than the rest of the module's tests; the lookups it times are value-tested.
    "evaluation/store.py": ["--deselect",
                            "tests/test_store.py::test_batch_lookup_is_fast_with_100k_rows"],
}
"""Extra pytest arguments for one module's pass."""

KILLED = {"killed", "timeout", "caught by type check"}
RESULT_LINE = re.compile(r"^\s*(\S+__mutmut_\d+): (.+)$")
# Case-sensitive: the project writes SQL keywords in upper case, and an English message
# with "and" or "from" in it is not SQL (its letter case is what a test may check).
SQL = re.compile(r"\b(SELECT|INSERT|UPDATE|DELETE|PRAGMA|BEGIN|COMMIT|ROLLBACK|ORDER BY|WHERE|"
                 r"VALUES|FROM|AND|SET)\b")


def sql_case_only(diff: str) -> bool:
    """Whether a mutant only changes the letter case of SQL text: SQLite keywords and
    identifiers are case-insensitive, so such a mutant is equivalent by construction."""
    lines = diff.splitlines()
    removed = [x[1:] for x in lines if x.startswith("-") and not x.startswith("---")]
    added = [x[1:] for x in lines if x.startswith("+") and not x.startswith("+++")]
    return (bool(removed) and len(removed) == len(added)
            and all(a != b and a.lower() == b.lower() and SQL.search(a)
                    for a, b in zip(removed, added)))


def mutmut_bin() -> str:
    found = shutil.which("mutmut", path=str(Path(sys.executable).parent)) or shutil.which("mutmut")
    if not found:
        raise SystemExit("mutmut is not installed: .venv/bin/pip install -e '.[mutation]'")
    return found


def tree_files(ref: str | None) -> list[str]:
    if ref:
        out = subprocess.run(["git", "ls-tree", "-r", "-z", "--name-only", ref], cwd=REPO,
                             check=True, capture_output=True).stdout
    else:
        out = subprocess.run(["git", "ls-files", "-z", "--cached", "--others",
                              "--exclude-standard"], cwd=REPO, check=True,
                             capture_output=True).stdout
    return [f for f in out.decode().split("\0") if f]


def make_copy(scratch: Path, ref: str | None) -> Path:
    """A fresh copy of the source tree (working tree, or ``ref``) under ``scratch``."""
    copy = scratch / "tree"
    if copy.exists():
        shutil.rmtree(copy)
    copy.mkdir(parents=True)
    for name in tree_files(ref):
        dest = copy / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        if ref:
            blob = subprocess.run(["git", "show", f"{ref}:{name}"], cwd=REPO, check=True,
                                  capture_output=True).stdout
            dest.write_bytes(blob)
        elif (REPO / name).is_file():  # a deleted-but-tracked file is skipped
            shutil.copy2(REPO / name, dest)
    # setup.cfg installs operators/ and problems/ as gi_energy.operators / .problems, and
    # the editable install maps those names to this checkout's folders: without a copy of
    # their own under gi_energy/, a --ref pass would import the working tree's operators.
    for name in ("operators", "problems"):
        if (copy / name).is_dir():
            shutil.copytree(copy / name, copy / "gi_energy" / name)
    return copy


def configure(copy: Path, module: str, tests: list[str], extra: list[str]) -> None:
    """Point mutmut at one module and its tests (a [tool.mutmut] table in the copy)."""
    pyproject = copy / "pyproject.toml"
    text = pyproject.read_text()
    text = text.split("\n[tool.mutmut]\n")[0].rstrip() + "\n"
    text += (
        "\n[tool.mutmut]\n"
        'source_paths = ["gi_energy"]\n'
        f'only_mutate = ["gi_energy/{module}"]\n'
        f"pytest_add_cli_args_test_selection = {json.dumps(tests)}\n"
        f"pytest_add_cli_args = {json.dumps(['-p', 'no:cacheprovider', '-q', '-x', *extra])}\n"
    )
    pyproject.write_text(text)


def run_module(copy: Path, module: str, tests: list[str], workers: int,
               log: Path) -> dict:
    configure(copy, module, tests, PYTEST_ARGS.get(module, []))
    shutil.rmtree(copy / "mutants", ignore_errors=True)  # stale verdicts would outlive new tests
    # GI_ENERGY_MUTATION: the tests' module-scoped fixtures become per test (see
    # tests/test_values_compare.py), so mutmut credits each test with what it checks.
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", GI_ENERGY_MUTATION="1")
    started = time.monotonic()
    with open(log, "w") as f:
        proc = subprocess.run([mutmut_bin(), "run", "--max-children", str(workers)], cwd=copy,
                              env=env, stdout=f, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise RuntimeError(f"{module}: mutmut run failed (exit {proc.returncode}); see {log}")
    listing = subprocess.run([mutmut_bin(), "results", "--all", "true"], cwd=copy, env=env,
                             check=True, capture_output=True, text=True).stdout
    status: dict[str, str] = {}
    for line in listing.splitlines():
        m = RESULT_LINE.match(line)
        if m:
            status[m.group(1)] = m.group(2).strip()
    if not status:
        raise RuntimeError(f"{module}: mutmut produced no mutants; see {log}")
    survivors = sorted(k for k, v in status.items() if v not in KILLED)
    diffs, sql_case = [], []
    for name in survivors:
        shown = subprocess.run([mutmut_bin(), "show", name], cwd=copy, env=env,
                               capture_output=True, text=True).stdout
        if sql_case_only(shown):
            sql_case.append(name)
            continue
        diffs.append(f"## {name}: {status[name]}\n{shown.rstrip()}\n")
    killed = sum(v in KILLED for v in status.values())
    by_status: dict[str, int] = {}
    for v in status.values():
        by_status[v] = by_status.get(v, 0) + 1
    counted = len(status) - len(sql_case)
    return {"module": f"gi_energy/{module}", "tests": tests, "mutants": len(status),
            "killed": killed, "score_pct": round(100.0 * killed / len(status), 1),
            "sql_case_equivalent": len(sql_case),
            "score_without_sql_case_pct": round(100.0 * killed / counted, 1) if counted else None,
            "by_status": by_status, "survivors": [n for n in survivors if n not in sql_case],
            "seconds": round(time.monotonic() - started, 1), "_diffs": diffs}


def write_scores(out: Path, results: list[dict], ref: str) -> None:
    rows = [{k: v for k, v in r.items() if k != "_diffs"} for r in results]
    (out / "scores.json").write_text(json.dumps({"source": ref, "modules": rows}, indent=2)
                                     + "\n")
    lines = [f"Mutation scores ({ref}; mutmut {mutmut_version()})", "",
             "| module | killed / mutants | score | SQL-case equivalents | score without them "
             "| other survivors | time |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| `{r['module']}` | {r['killed']} / {r['mutants']} | "
                     f"{r['score_pct']:.1f} % | {r['sql_case_equivalent']} | "
                     f"{r['score_without_sql_case_pct']:.1f} % | {len(r['survivors'])} | "
                     f"{r['seconds']:.0f} s |")
    (out / "scores.md").write_text("\n".join(lines) + "\n")


def mutmut_version() -> str:
    from importlib.metadata import PackageNotFoundError, version
    try:
        return version("mutmut")
    except PackageNotFoundError:
        return "?"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("modules", nargs="*", help="paths under gi_energy/ (default: all core)")
    ap.add_argument("--out", type=Path, default=REPO / "runs" / "mutation")
    ap.add_argument("--scratch", type=Path, default=Path("/tmp/gi-energy-mutation"))
    ap.add_argument("--ref", help="mutate this commit instead of the working tree")
    ap.add_argument("--workers", type=int, default=2, help="mutants tested at once")
    ap.add_argument("--target", type=float, default=85.0, help="percent killed per module")
    ap.add_argument("--list", action="store_true", help="print modules and tests, run nothing")
    args = ap.parse_args(argv)

    chosen = args.modules or list(MODULES)
    unknown = [m for m in chosen if m not in MODULES]
    if unknown:
        ap.error(f"not a core module: {', '.join(unknown)} (valid: {', '.join(MODULES)})")
    plan = []
    for module in chosen:
        if not (REPO / "gi_energy" / module).is_file():
            print(f"skip {module}: no such file here", file=sys.stderr)
            continue
        tests = [t for t in MODULES[module] if (REPO / t).is_file()]
        plan.append((module, tests))
    if args.list:
        for module, tests in plan:
            print(f"gi_energy/{module}: {' '.join(tests)}")
        return 0

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "survivors").mkdir(exist_ok=True)
    copy = make_copy(args.scratch, args.ref)
    ref = "working tree" if not args.ref else subprocess.run(
        ["git", "rev-parse", "--short", args.ref], cwd=REPO, check=True, capture_output=True,
        text=True).stdout.strip()
    results = []
    for module, tests in plan:
        log = args.out / f"{module.replace('/', '.')}.log"
        print(f"{module}: mutating against {' '.join(tests)}", flush=True)
        r = run_module(copy, module, tests, args.workers, log)
        (args.out / "survivors" / f"{module.replace('/', '.')}.diff").write_text(
            "\n".join(r["_diffs"]))
        print(f"  {r['killed']}/{r['mutants']} killed ({r['score_pct']:.1f} %), "
              f"{r['sql_case_equivalent']} SQL-case equivalents, {len(r['survivors'])} other "
              f"survivors, {r['seconds']:.0f} s", flush=True)
        results.append(r)
        write_scores(args.out, results, ref)
    print(f"scores: {args.out / 'scores.md'}")
    low = [r["module"] for r in results if r["score_pct"] < args.target]
    if low:
        print(f"under {args.target:.0f} %: {', '.join(low)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
