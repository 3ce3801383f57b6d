"""report.html: self-contained (plotly.js inline, nothing fetched), the fronts' data and
hover text embedded, every estimated energy labelled, the sortable front table; and
`gi-energy report` writing it where it says."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import pytest
from click.testing import CliRunner

import gi_energy
from gi_energy.cli import main
from gi_energy.config.parse import load_problem
from gi_energy.runs.replay import ReplayEvaluator, SyntheticEvaluator
from gi_energy.search.grid import run_grid

pytest.importorskip("plotly")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("html")
    problem = load_problem("quickstart")
    run_grid(problem, out=root / "grid", evaluator=SyntheticEvaluator(problem))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        evo = gi_energy.evolve(problem, out=root / "evo", seed=1, evaluator=ReplayEvaluator(problem, root / "grid"),
                               overrides={"population": 4, "generations": 2})
    return root, evo


def _data(page: str) -> dict:
    m = re.search(r'<script type="application/json" id="gi-energy-data">(.*?)</script>', page, re.S)
    return json.loads(m.group(1))


def test_one_run_report(runs):
    root, evo = runs
    result = CliRunner().invoke(main, ["report", str(root / "evo")])
    assert result.exit_code == 0, result.output
    path = root / "evo" / "report.html"
    assert f"wrote {path}" in result.output
    page = path.read_text(encoding="utf-8")
    # self-contained: plotly.js inline, no script or stylesheet from anywhere else
    assert "plotly.js" in page[:2_000_000] and len(page) > 1_000_000
    assert not re.search(r'<script[^>]+src=|<link[^>]+href=', page)
    data = _data(page)
    assert data["energy"] == "estimated"
    assert [r["key"] for r in data["front"]] == [o.key for o in evo.run.front]
    assert all(r["measured"] is False for r in data["front"])
    # the labels: the banner, the axes and every energy cell of the table
    assert "Energies here are estimated" in page
    assert "inference energy per 1,000 samples [J] (estimated" in page
    table = page[page.index('<table id="front"'):]
    table = table[: table.index("</table>")]
    rows = table.count("<tr>") - 1
    assert rows == len(evo.run.front) and table.count('<span class="est">estimated</span>') >= rows
    assert "sortTable('front', 0)" in table
    # hovering a point shows its configuration, metrics and energy source
    for o in evo.run.front:
        assert json.dumps(o.key)[1:-1] in page
    assert "energy source: estimate:process-estimate (estimated)" in page
    assert "validation accuracy [fraction]: " in page


def test_comparison_report_against_the_grid(runs, tmp_path):
    root, evo = runs
    out = tmp_path / "r.html"
    result = CliRunner().invoke(main, ["report", str(root / "evo"), "--reference", str(root / "grid"),
                                       "--out", str(out)])
    assert result.exit_code == 0, result.output
    page = out.read_text(encoding="utf-8")
    data = _data(page)
    cmp = data["comparison"]
    assert cmp is not None and [r["reference"] for r in cmp["runs"]] == [True, False]
    assert {r["run_dir"] for r in data["front"]} == {"grid", "evo"}
    assert "HV ratio" in page and "energy spent [J] (estimated)" in page
    assert "90%" in page and "99%" in page  # the labelled threshold lines


def test_compare_writes_report_html(runs, tmp_path):
    root, evo = runs
    cmp = gi_energy.compare([evo.run_dir], reference=root / "grid", out=tmp_path / "c")
    page = (tmp_path / "c" / "report.html").read_text(encoding="utf-8")
    assert _data(page)["comparison"]["reference"]["front_size"] == cmp["reference"]["front_size"]


def test_compare_and_report_read_each_run_column_wise_once(runs, tmp_path, monkeypatch):
    """compare(out=...) and `gi-energy report --reference` draw report.html from the columns
    the comparison read: each run's evaluations.csv is read column-wise once, and the page
    is the one drawn from runs read afresh."""
    from gi_energy.report import html as html_mod
    from gi_energy.report.columns import RunColumns
    from gi_energy.report.run import RunResult

    root, evo = runs
    reads = []
    real = RunColumns.read.__func__

    def counted(cls, path):
        reads.append(Path(path).resolve().name)
        return real(cls, path)

    monkeypatch.setattr(RunColumns, "read", classmethod(counted))
    cmp = gi_energy.compare([evo.run_dir], reference=root / "grid", out=tmp_path / "c")
    assert sorted(reads) == ["evo", "grid"]
    fresh = _data(html_mod.render_html([RunResult(root / "grid"), RunResult(evo.run_dir)], cmp))
    page = _data((tmp_path / "c" / "report.html").read_text(encoding="utf-8"))
    assert page == fresh
    reads.clear()
    result = CliRunner().invoke(main, ["report", str(root / "evo"), "--reference", str(root / "grid"),
                                       "--out", str(tmp_path / "r.html")])
    assert result.exit_code == 0, result.output
    assert sorted(reads) == ["evo", "grid"]


def test_missing_plotly_is_said_plainly(runs, tmp_path, monkeypatch):
    import builtins

    root, _ = runs
    real_import = builtins.__import__

    def no_plotly(name, *args, **kwargs):
        if name == "plotly" or name.startswith("plotly."):
            raise ImportError("No module named 'plotly'")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_plotly)
    result = CliRunner().invoke(main, ["report", str(root / "evo"), "--out", str(tmp_path / "x.html")])
    assert result.exit_code == 1 and "pip install 'gi-energy[report]'" in result.output
    assert len(result.output.splitlines()) == 1 and not (tmp_path / "x.html").exists()
    # compare still writes everything else, and says why report.html is not there
    result = CliRunner().invoke(main, ["compare", str(root / "evo"), "--out", str(tmp_path / "c")])
    assert result.exit_code == 0 and "no report.html" in result.output
    assert (tmp_path / "c" / "report.md").exists() and not (tmp_path / "c" / "report.html").exists()


def test_a_large_run_draws_a_thinned_cloud_and_its_whole_front(runs, tmp_path, monkeypatch):
    from gi_energy.report import html as html_mod
    from gi_energy.report.run import RunResult

    root, _ = runs
    grid = RunResult(root / "grid")
    front_keys = {o.key for o in grid.front}
    cloud = [o for o in grid.outcomes if o.ok and o.key not in front_keys]
    assert len(cloud) >= 5
    monkeypatch.setattr(html_mod, "MAX_CLOUD_POINTS", 2)
    fig = html_mod.fronts_plot([grid], None)
    traces = {t.name: t for t in fig.data}
    stride = -(-len(cloud) // 2)
    shown = next(t for name, t in traces.items() if "evaluated" in name)
    assert shown.name.endswith(f"(every {stride:,}th shown)")
    assert len(shown.x) == len(cloud[::stride]) <= 2
    front = next(t for name, t in traces.items() if "front" in name)
    assert len(front.x) == len(grid.front)


def test_thinning_keeps_every_stride_th_point_from_the_first():
    from gi_energy.report.html import thinned

    assert thinned(list(range(10)), 20) == (list(range(10)), 1)
    assert thinned(list(range(10)), 10) == (list(range(10)), 1)
    assert thinned(list(range(10)), 4) == ([0, 3, 6, 9], 3)
    assert thinned(list(range(11)), 5) == ([0, 3, 6, 9], 3)
    assert thinned([], 3) == ([], 1)


def test_a_report_builds_only_the_outcomes_it_draws_and_says_what_the_whole_read_says(runs, tmp_path, monkeypatch):
    """render_html reads each run column-wise: no run is read whole, each run's front and
    drawn points are built in one read, and the page's data are what a run read whole gives."""
    from gi_energy.report import html as html_mod
    from gi_energy.report.run import RunResult
    from gi_energy.runs.rundir import RunDirectory

    root, _ = runs
    paths = [root / "evo", root / "grid"]
    whole = [RunResult(p) for p in paths]
    for r in whole:
        assert r.outcomes  # read whole first: every answer comes from the objects
    monkeypatch.setattr(html_mod, "MAX_CLOUD_POINTS", 3)
    expected = _data(html_mod.render_html(whole))
    reads = []
    real = RunDirectory.read_outcomes_at

    def counted(self, indexes):
        reads.append((self.path.name, sorted(indexes)))
        return real(self, indexes)

    def refused(self):
        raise AssertionError("a report read a run whole")

    monkeypatch.setattr(RunDirectory, "read_outcomes_at", counted)
    monkeypatch.setattr(RunDirectory, "read_outcomes_and_spent", refused)
    parts = [RunResult(p) for p in paths]
    assert _data(html_mod.render_html(parts)) == expected
    assert [name for name, _ in reads] == ["evo", "grid"]  # one read per run
    for (_, indexes), part, w in zip(reads, parts, whole):
        front = w.front_positions()
        drawn = html_mod.thinned(w.ok_positions(exclude={o.key for o in w.front}), 3)[0]
        assert indexes == sorted(set(front + drawn)) and len(drawn) <= 3
        assert part.outcome_count == len(w.outcomes) and part.energy_kind == w.energy_kind
        assert part.front == w.front and part.summary() == w.summary()
        assert part.outcomes_at(drawn) == [w.outcomes[p] for p in drawn]
