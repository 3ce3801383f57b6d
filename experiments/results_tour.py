"""A tour of the results API: open a finished run and a comparison, print their
DataFrames, save their figures, write report.html and screenshot it in headless Chromium.

    .venv/bin/python experiments/results_tour.py [--out DIR]

Nothing is trained: the runs are a synthetic grid of the bundled ``digits`` problem (96
points, three objectives, energies *estimated*) and three evolve runs that replay it, plus
the 2-objective ``quickstart`` grid for a 2-D front. Everything lands under ``--out``
(default ``runs/results-tour``, replaced on every run):

    figures/*.png          run.plot_front(), run.plot_history(), cmp.plot_fronts(), ...
    compare/report.html    what gi-energy compare writes (with report.md, comparison.json)
    report.png             the page as Chromium renders it (Debian's chromium package)
    report-hover.png       the same page with the fronts' first point hovered
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import warnings
from pathlib import Path

import pandas as pd

import gi_energy
from gi_energy.config.parse import load_problem
from gi_energy.report.plots import save_figure
from gi_energy.runs.replay import ReplayEvaluator, SyntheticEvaluator

CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync",
                  "--hide-scrollbars", "--virtual-time-budget=8000"]

# Appended to a copy of the page: hover the first front point of the fronts plot, the way
# a mouse would, and scroll to it, so the screenshot shows the hover label.
HOVER_JS = """<script>
window.addEventListener("load", () => setTimeout(() => {
  const plot = document.querySelectorAll(".plotly-graph-div")[0];
  window.scrollTo(0, plot.getBoundingClientRect().top + window.scrollY - 40);
  const front = plot.data.findIndex(t => t.name.includes(": front"));
  Plotly.Fx.hover(plot, [{curveNumber: front, pointNumber: 0}], "xy");
}, 500));
</script></body>"""


def make_runs(out: Path) -> tuple[Path, list[Path], Path]:
    """The synthetic digits grid, three replayed evolve runs of it, a quickstart grid."""
    digits = load_problem("digits")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # energies are estimated: the report says so, not a warning here
        gi_energy.run_grid(digits, out=out / "digits-grid", evaluator=SyntheticEvaluator(digits))
        evolved = []
        for seed in (1, 2, 3):
            r = gi_energy.evolve(digits, out=out / f"digits-evolve-{seed}", seed=seed,
                                 evaluator=ReplayEvaluator(digits, out / "digits-grid"),
                                 overrides={"population": 8, "generations": 4})
            evolved.append(r.run_dir)
        quick = load_problem("quickstart")
        gi_energy.run_grid(quick, out=out / "quickstart-grid", evaluator=SyntheticEvaluator(quick))
    return out / "digits-grid", evolved, out / "quickstart-grid"


def screenshot(page: Path, png: Path, size: str) -> bool:
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        print("no chromium on PATH (apt-get install -y chromium): no screenshot of", page)
        return False
    profile = png.with_suffix(".profile")
    shutil.rmtree(profile, ignore_errors=True)
    cmd = [browser, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", f"--window-size={size}",
           f"--screenshot={png}", page.resolve().as_uri()]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=180)
    shutil.rmtree(profile, ignore_errors=True)
    if not png.is_file():
        print(f"chromium wrote no screenshot (exit {done.returncode}): {done.stderr[-500:]}")
        return False
    print(f"screenshot: {png}")
    return True


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path("runs/results-tour"))
    out = parser.parse_args().out
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    pd.set_option("display.width", 160)
    pd.set_option("display.max_columns", 12)

    grid_dir, evolved, quick_dir = make_runs(out)

    print("\n== a finished run: gi_energy.open_run()")
    run = gi_energy.open_run(evolved[0])
    print(run)
    print(dict(run.summary()))
    ev = run.to_dataframe()
    acc = "val_accuracy" if "val_accuracy" in ev.columns else "accuracy"
    print(f"\nrun.to_dataframe(): {ev.shape[0]} evaluations x {ev.shape[1]} columns")
    print(ev[["key", acc, "inference_energy_j_per_1k", "train_energy_j", "train_measured"]].head())
    print("\nrun.to_dataframe('front'):")
    print(run.to_dataframe("front").drop(columns=["key"]).head(8))
    print("\nrun.to_dataframe('history'):")
    print(run.to_dataframe("history"))

    print("\n== a comparison: gi_energy.compare()")
    cmp = gi_energy.compare(evolved, reference=grid_dir, out=out / "compare")
    print(cmp)
    cols = ["label", "reference", "evaluations", "energy_spent_j", "front_size", "hv_ratio", "igd_plus",
            "coverage", "saving"]
    print(cmp.to_dataframe()[cols])
    print("\ncmp.to_dataframe('groups'):")
    print(cmp.to_dataframe("groups")[["label", "runs", "hv_ratio_median", "hv_ratio_q25", "hv_ratio_q75",
                                      "energy_spent_j_median"]])

    figures = out / "figures"
    figures.mkdir()
    for name, fig in (("run_front", run.plot_front()), ("run_history", run.plot_history()),
                      ("grid_front_3obj", gi_energy.open_run(grid_dir).plot_front()),
                      ("grid_front_2obj", gi_energy.open_run(quick_dir).plot_front()),
                      ("compare_fronts", cmp.plot_fronts()), ("compare_hv_history", cmp.plot_history())):
        print("figure:", save_figure(fig, figures / f"{name}.png"))

    page = out / "compare" / "report.html"
    if not page.is_file():
        print("no report.html (plotly is missing: pip install 'gi-energy[report]')")
        return 1
    print(f"\nreport.html: {page} ({page.stat().st_size / 1e6:.1f} MB, plotly.js inline)")
    screenshot(page, out / "report.png", "1400,3000")
    hover = page.with_name("report-hover.html")
    hover.write_text(page.read_text(encoding="utf-8").replace("</body>", HOVER_JS, 1), encoding="utf-8")
    screenshot(hover, out / "report-hover.png", "1400,900")
    hover.unlink()
    return 0


if __name__ == "__main__":
    sys.exit(main())
