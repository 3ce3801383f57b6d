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

    from gi_energy.config.sources import digest_of as _digest_of

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


# -- one value and one table checked, message by message ---------------------------------

def _check(value, kind, **kw):
    from gi_energy.config.checks import check_value

    def error(msg):
        return ValueError(msg)

    return check_value(value, kind, error, **kw)


@pytest.mark.parametrize(("value", "kind", "kw", "expected"), [
    (3, float, {}, 3.0),
    (2.5, float, {"low": 2.5}, 2.5),                       # the closed bound is allowed
    (4, int, {"high": 4}, 4),
    (True, bool, {}, True),
    ("relu", str, {"choices": ("relu", "tanh")}, "relu"),
    ("a.csv", "path", {}, "a.csv"),
])
def test_check_value_accepts(value, kind, kw, expected):
    got = _check(value, kind, **kw)
    assert got == expected and type(got) is type(expected)


@pytest.mark.parametrize(("value", "kind", "kw", "message"), [
    (True, float, {}, "expected a number, got a boolean True"),
    ("1", float, {}, "expected a number, got a string '1'"),
    (float("inf"), float, {}, "expected a finite number, got inf"),
    (float("nan"), float, {}, "expected a finite number, got nan"),
    (False, int, {}, "expected an integer, got a boolean False"),
    (1.5, int, {}, "expected an integer, got a number 1.5"),
    (1, bool, {}, "expected true or false, got an integer 1"),
    ("", str, {}, "expected a non-empty string, got a string ''"),
    (3, "path", {}, "expected a non-empty string, got an integer 3"),
    ([1], str, {}, "expected a non-empty string, got a list [1]"),
    ("rellu", str, {"choices": ("relu", "tanh")},
     "expected one of 'relu', 'tanh', got 'rellu' (did you mean \"relu\"?)"),
    ("x", str, {"choices": ("relu", "tanh")}, "expected one of 'relu', 'tanh', got 'x'"),
    (0.0, float, {"low": 0.0, "low_open": True}, "expected a value > 0.0, got 0.0"),
    (-1, int, {"low": 0}, "expected a value >= 0, got -1"),
    (5, int, {"high": 4}, "expected a value <= 4, got 5"),
])
def test_check_value_refuses_with_the_message(value, kind, kw, message):
    with pytest.raises(ValueError) as err:
        _check(value, kind, **kw)
    assert str(err.value) == message


def test_a_table_names_the_file_and_the_key_path():
    from gi_energy.config.checks import Table, known_list, type_name

    t = Table({"population": 8, "extra": {"x": 1}, "typo": 1}, "p.toml", "search")
    assert t.key("population") == "search.population"
    assert t.get("population", int, low=2) == 8
    assert t.get("generations", int, 10) == 10
    assert t.has("typo") and not t.has("generations")
    with pytest.raises(ProblemError) as err:
        t.get("seed", int, required=True)
    assert str(err.value) == "p.toml: [search.seed] is required (an integer)"
    assert t.table("extra").key("x") == "search.extra.x"
    assert t.raw("typo") == 1
    t.finish()  # every key was taken
    with pytest.raises(ProblemError) as err:
        Table({"populaton": 8}, "p.toml", "search").finish({"population", "generations"})
    assert str(err.value) == ('p.toml: [search.populaton] unknown key (did you mean '
                              '"population"?); valid keys: generations, population')
    with pytest.raises(ProblemError) as err:
        Table([1, 2], "p.toml", "grid")
    assert str(err.value) == "p.toml: [grid] expected a table, got a list"
    assert Table({}, "", "").key("seed") == "seed"
    with pytest.raises(ProblemError) as err:
        Table({"a": 1}, "", "").finish(set())
    assert str(err.value) == "[a] unknown key"
    assert known_list([]) == "" and type_name(None) == "NoneType"
    with pytest.raises(ProblemError) as err:
        Table({}, "p.toml", "dataset").get("path", "path", required=True)
    assert str(err.value) == "p.toml: [dataset.path] is required (a path string)"
    for kind, name in ((float, "a number"), (str, "a string"), (bool, "true or false")):
        with pytest.raises(ProblemError) as err:
            Table({}, "p", "s").get("k", kind, required=True)
        assert str(err.value) == f"p: [s.k] is required ({name})"


def test_table_bounds_defaults_and_type_names():
    from gi_energy.config.checks import Table, type_name

    t = Table({"epochs": 5}, "p.toml", "space")
    with pytest.raises(ProblemError) as err:
        t.get("epochs", int, high=4)
    assert str(err.value) == "p.toml: [space.epochs] expected a value <= 4, got 5"
    assert t.raw("missing", 7) == 7
    with pytest.raises(ProblemError) as err:
        t.get("levels", list, required=True)
    assert str(err.value) == "p.toml: [space.levels] is required (<class 'list'>)"
    assert (type_name({}), type_name(1j), type_name([1])) == ("a table", "complex", "a list")
