"""Problem files: every bundled problem loads; every malformed case fails with one clear line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from gi_energy import ProblemError, load_problem, parse_problem
from gi_energy.cli import main
from gi_energy.config.parse import bundled_problems
from gi_energy.config.space import Choice, Fixed, IntRange, RealRange

MALFORMED = sorted((Path(__file__).parent / "cases" / "malformed").glob("*.toml"))


def _expectation(path: Path) -> tuple[str, str]:
    first = path.read_text().splitlines()[0]
    assert first.startswith("# expect:"), path
    key, _, text = first[len("# expect:"):].partition("|")
    return key.strip(), text.strip()


def test_there_are_enough_malformed_cases():
    assert len(MALFORMED) >= 20


@pytest.mark.parametrize("path", MALFORMED, ids=lambda p: p.stem)
def test_malformed_problem_exits_2_with_one_line(path: Path):
    key, text = _expectation(path)
    result = CliRunner().invoke(main, ["validate", str(path)])
    assert result.exit_code == 2, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit)
    out = result.output.strip()
    assert "Traceback" not in out
    assert len(out.splitlines()) == 1, out
    assert str(path) in out
    if key:
        assert f"[{key}]" in out, out
    assert text in out, out


@pytest.mark.parametrize("path", MALFORMED, ids=lambda p: p.stem)
def test_malformed_problem_raises_problem_error_in_library(path: Path):
    with pytest.raises(ProblemError):
        load_problem(path)


def test_malformed_from_a_real_process_has_no_traceback():
    path = next(p for p in MALFORMED if p.stem == "min_gt_max")
    proc = subprocess.run([sys.executable, "-m", "gi_energy.cli", "validate", str(path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stdout == ""
    assert "Traceback" not in proc.stderr
    assert "[space.width.min]" in proc.stderr


@pytest.mark.parametrize("name", sorted(bundled_problems()))
def test_every_bundled_problem_loads_and_validates(name: str):
    p = load_problem(name)
    assert p.name
    assert p.grid is not None and p.grid.size(p.space) >= 4
    for g in p.grid.enumerate(p.space):
        assert p.space.contains(g), g
    result = CliRunner().invoke(main, ["validate", name])
    assert result.exit_code == 0, result.output
    assert "grid" in result.output and "dataset" in result.output


def test_bundled_problem_by_path_and_by_name_is_the_same():
    path = bundled_problems()["digits"]
    assert load_problem(path).fingerprint() == load_problem("digits").fingerprint()


def test_unknown_bundled_name_suggests():
    with pytest.raises(ProblemError, match='did you mean "digits"'):
        load_problem("digit")


def test_space_kinds_are_parsed():
    p = load_problem("digits")
    assert p.space.layers["hidden"].count == IntRange(1, 3)
    assert p.space.layers["hidden"].size == IntRange(4, 256, log=True)
    assert isinstance(p.space.params["learning_rate"], RealRange) and p.space.params["learning_rate"].log
    assert p.space.params["batch_size"] == Choice((16, 32, 64, 128, 256))
    assert p.space.params["weight_decay"] == Fixed(0.0)


def test_csv_source_loads(cases_dir):
    from gi_energy.problems.datasets import load_dataset

    data = {"problem": {"name": "csv"},
            "dataset": {"source": "csv", "path": "tiny.csv", "target": "label", "validation_fraction": 0.2,
                        "test_fraction": 0.2}}
    p = parse_problem(data, source="inline", base_dir=cases_dir / "data")
    ds = load_dataset(p.dataset)
    assert ds.n_features == 2 and ds.n_classes == 2 and ds.n_samples == 20


def test_synthetic_source_sizes():
    from gi_energy.problems.datasets import load_dataset

    p = parse_problem({"problem": {"name": "s"},
                       "dataset": {"source": "synthetic", "n_samples": 300, "n_features": 7, "n_informative": 3,
                                   "n_classes": 3}})
    ds = load_dataset(p.dataset)
    assert ds.n_samples == 300 and ds.n_features == 7 and ds.n_classes == 3


def test_splits_are_stratified_and_seeded():
    from gi_energy.problems.datasets import load_dataset

    p = load_problem("digits")
    a = load_dataset(p.dataset, 0)
    b = load_dataset(p.dataset, 0)
    c = load_dataset(p.dataset, 1)
    assert (a.y_test == b.y_test).all()
    assert not (a.y_test == c.y_test).all()
    assert len(set(a.y_val.tolist())) == 10


def test_fingerprint_ignores_search_settings_but_not_dataset():
    p = load_problem("digits")
    assert p.with_overrides(search={"population": 4}).fingerprint() == p.fingerprint()
    assert p.with_overrides(dataset={"test_fraction": 0.3}).fingerprint() != p.fingerprint()


def test_python_built_problem_validates_like_toml():
    with pytest.raises(ProblemError, match=r"\[search.population\]"):
        parse_problem({"problem": {"name": "x"}, "search": {"population": "many"}})


def test_with_overrides_keeps_falsy_values():
    p = load_problem("digits")
    assert p.with_overrides(seed=0).seed == 0
    assert p.with_overrides(search={"generations": 0}).search.generations == 0
    assert p.with_overrides(search={}).search == p.search


def test_output_paths_in_the_file_are_relative_to_the_file(tmp_path):
    from gi_energy.config.problem import OutputConfig

    given = parse_problem({"problem": {"name": "o"}, "output": {"store": "s/x.sqlite", "directory": "out"}},
                          source="p.toml", base_dir=tmp_path)
    assert given.output.store == tmp_path / "s" / "x.sqlite"
    assert given.output.directory == tmp_path / "out"
    default = parse_problem({"problem": {"name": "o"}}, source="p.toml", base_dir=tmp_path)
    assert default.output.store is None and default.output.directory == OutputConfig.directory


def test_csv_fingerprint_hashes_the_file_once_until_it_changes(tmp_path):
    import os

    from gi_energy.config.problem import _digest_of

    csv_path = tmp_path / "d.csv"
    csv_path.write_text("a,b,y\n" + "".join(f"{i},{i % 3},{i % 2}\n" for i in range(40)))
    p = parse_problem({"problem": {"name": "c"}, "dataset": {"source": "csv", "path": str(csv_path), "target": "y"}})
    first = p.fingerprint()
    misses = _digest_of.cache_info().misses
    assert p.fingerprint() == first and p.fingerprint() == first
    assert _digest_of.cache_info().misses == misses  # not read again
    csv_path.write_text("a,b,y\n1,2,0\n3,4,1\n")
    os.utime(csv_path, ns=(1, 1))  # a different stat, as any edit gives
    assert p.fingerprint() != first  # the data changed, so the fingerprint does
