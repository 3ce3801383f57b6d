"""Reading a problem file, value by value: every section's defaults and parsed values, and
every refusal's exact message (file, key path, what was expected) at each bound."""

from __future__ import annotations

import dataclasses
import tomllib
from pathlib import Path

import pytest

from gi_energy import ProblemError, load_problem, parse_problem
from gi_energy.config.parse import SECTIONS, bundled_problems, resolve_problem_path
from gi_energy.config.problem import (
    HYPERPARAMETERS,
    DatasetConfig,
    EnergyConfig,
    EvaluationConfig,
    ModelConfig,
    OutputConfig,
    SearchConfig,
    TableConfig,
    TaskConfig,
)
from gi_energy.config.space import Choice, Fixed, Grid, IntRange, LayerSpace, RealRange, SearchSpace

MLP_PARAMS = sorted(set(HYPERPARAMETERS) - {"kernel_size", "pooling"})
SOURCES = "'digits', 'breast_cancer', 'wine', 'iris', 'csv', 'synthetic', 'npz', 'loader'"
BASE_KEYS = "image_shape, labels, source, standardize, test_fraction, validation_fraction"


def _parse(base_dir=None, text="", **sections):
    return parse_problem({"problem": {"name": "p"}, **sections}, source="p.toml", base_dir=base_dir, text=text)


def _refused(sections: dict, base_dir=None) -> str:
    with pytest.raises(ProblemError) as err:
        parse_problem(sections, source="p.toml", base_dir=base_dir)
    return str(err.value)


def _named(**sections) -> dict:
    return {"problem": {"name": "p"}, **sections}


# -- [problem] and the sections ------------------------------------------------------------

def test_problem_section_values_and_defaults():
    p = _parse(text="the text")
    assert (p.name, p.seed, p.description, p.source, p.text) == ("p", 0, "", "p.toml", "the text")
    q = parse_problem({"problem": {"name": "my run-1", "seed": 2**63 - 1, "description": "d"}})
    assert (q.name, q.seed, q.description, q.source, q.text) == ("my run-1", 2**63 - 1, "d", "<python>", "")
    assert p.model == ModelConfig("mlp") and p.task is None and p.table is None and p.grid is None
    assert p.objectives == {"accuracy": "max", "inference_energy_j_per_1k": "min"}
    assert p.constraints == {}
    assert p.dataset == DatasetConfig()
    assert (p.search, p.evaluation, p.energy, p.output) == (SearchConfig(), EvaluationConfig(), EnergyConfig(),
                                                            OutputConfig())


@pytest.mark.parametrize(("sections", "message"), [
    ({"problm": {}}, 'p.toml: [problm] unknown section (did you mean "problem"?); valid: ' + ", ".join(SECTIONS)),
    ({"zzz": {}}, "p.toml: [zzz] unknown section; valid: " + ", ".join(SECTIONS)),
    ({}, "p.toml: [problem.name] is required (a string)"),
    ({"problem": {"name": "p", "seed": -1}}, "p.toml: [problem.seed] expected a value >= 0, got -1"),
    ({"problem": {"name": "p", "seed": 2**63}},
     "p.toml: [problem.seed] expected a value <= 9223372036854775807, got 9223372036854775808"),
    ({"problem": {"name": "p", "description": 3}},
     "p.toml: [problem.description] expected a non-empty string, got an integer 3"),
    ({"problem": {"name": "p", "nmae": 1}},
     'p.toml: [problem.nmae] unknown key (did you mean "name"?); valid keys: description, name, seed'),
    ({"problem": {"name": "p"}, "model": {"family": "rnn"}},
     "p.toml: [model.family] expected one of 'mlp', 'cnn', got 'rnn' (did you mean \"cnn\"?)"),
    ({"problem": {"name": ""}}, "p.toml: [problem.name] expected a non-empty string, got a string ''"),
    ({"problem": {"name": "p"}, "model": {"size": 1}}, "p.toml: [model.size] unknown key; valid keys: family"),
    ({"problem": {"name": "p"}, "model": {"family": "cnn"}, "dataset": {"source": "synthetic"}},
     'p.toml: [model.family] "cnn" needs image-shaped data: dataset "synthetic" has none; '
     "set [dataset] image_shape = [channels, height, width]"),
])
def test_problem_refusals(sections, message):
    assert _refused(sections) == message


@pytest.mark.parametrize("name", [" ", "a/b", "a\\b", "a\0b", "..", "a..b", "a\tb", "a\nb"])
def test_a_name_that_is_a_path_or_has_control_characters_is_refused(name):
    assert _refused({"problem": {"name": name}}) == (
        "p.toml: [problem.name] expected a plain name (no '/', '\\', '..' or control characters), "
        f"got {name!r}")


def test_a_plain_name_with_dots_and_spaces_is_kept():
    assert _parse(problem={"name": "a.b c_d-é"}).name == "a.b c_d-é"
    assert _parse(problem={"name": "XX-ray"}).name == "XX-ray"


# -- [dataset] -----------------------------------------------------------------------------

def test_dataset_values_are_kept():
    d = _parse(dataset={"source": "wine", "validation_fraction": 0.9, "test_fraction": 0.04,
                        "standardize": False, "image_shape": [2, 3], "labels": "values"}).dataset
    assert d == DatasetConfig(source="wine", validation_fraction=0.9, test_fraction=0.04, standardize=False,
                              image_shape=(1, 2, 3), labels="values")
    d = _parse(dataset={"test_fraction": 0.9, "validation_fraction": 0.04, "image_shape": [3, 1, 1]}).dataset
    assert (d.test_fraction, d.validation_fraction, d.image_shape, d.labels) == (0.9, 0.04, (3, 1, 1), "classes")
    assert _parse(dataset={"validation_fraction": 0.5, "test_fraction": 0.44}).dataset.test_fraction == 0.44


@pytest.mark.parametrize(("dataset", "message"), [
    ({"source": "digit"}, f'[dataset.source] expected one of {SOURCES}, got \'digit\' (did you mean "digits"?)'),
    ({"validation_fraction": 0.0}, "[dataset.validation_fraction] expected a value > 0.0, got 0.0"),
    ({"validation_fraction": 0.91}, "[dataset.validation_fraction] expected a value <= 0.9, got 0.91"),
    ({"test_fraction": 0.0}, "[dataset.test_fraction] expected a value > 0.0, got 0.0"),
    ({"test_fraction": 0.91}, "[dataset.test_fraction] expected a value <= 0.9, got 0.91"),
    ({"validation_fraction": 0.5, "test_fraction": 0.45},
     "[dataset.test_fraction] validation_fraction + test_fraction must be < 0.95, got 0.95"),
    ({"validation_fraction": 0.75}, "[dataset.test_fraction] validation_fraction + test_fraction must be < 0.95, "
                                    "got 0.95"),
    ({"test_fraction": 0.8}, "[dataset.test_fraction] validation_fraction + test_fraction must be < 0.95, got 1"),
    ({"standardize": 1}, "[dataset.standardize] expected true or false, got an integer 1"),
    ({"labels": "class"}, "[dataset.labels] expected one of 'classes', 'values', got 'class' "
                          '(did you mean "classes"?)'),
    ({"path": "x"}, f"[dataset.path] unknown key; valid keys: {BASE_KEYS}"),
    ({"source": "iris", "n_samples": 30}, f"[dataset.n_samples] unknown key; valid keys: {BASE_KEYS}"),
    ({"source": "loader"}, "[dataset.loader] is required (a string)"),
    ({"source": "npz"}, "[dataset.path] is required (a path string)"),
    ({"source": "csv"}, "[dataset.path] is required (a path string)"),
    ({"source": "csv", "path": "a.csv"}, "[dataset.target] is required (a string)"),
])
def test_dataset_refusals(dataset, message):
    assert _refused(_named(dataset=dataset)) == "p.toml: " + message


@pytest.mark.parametrize("shape", [[8], [1, 2, 3, 4], [0, 8], [1, 8, -1], [True, 8], [1.0, 8], "8x8", 8, []])
def test_an_image_shape_that_is_not_2_or_3_positive_integers_is_refused(shape):
    assert _refused(_named(dataset={"image_shape": shape})) == (
        "p.toml: [dataset.image_shape] expected a list of 2 or 3 positive integers such as [1, 8, 8], "
        f"got {shape!r}")


def test_synthetic_defaults_and_values():
    d = _parse(dataset={"source": "synthetic"}).dataset
    assert d == DatasetConfig(source="synthetic")
    assert (d.n_samples, d.n_features, d.n_informative, d.n_classes) == (2000, 20, 10, 2)
    d = _parse(dataset={"source": "synthetic", "n_features": 5}).dataset
    assert (d.n_features, d.n_informative) == (5, 5)  # the default informative count fits the features
    d = _parse(dataset={"source": "synthetic", "n_samples": 20, "n_features": 2, "n_classes": 4,
                        "n_informative": 2}).dataset
    assert (d.n_samples, d.n_features, d.n_informative, d.n_classes) == (20, 2, 2, 4)
    d = _parse(dataset={"source": "synthetic", "n_samples": 10_000_000, "n_features": 100_000, "n_classes": 1000,
                        "n_informative": 10}).dataset
    assert (d.n_samples, d.n_features, d.n_informative, d.n_classes) == (10_000_000, 100_000, 10, 1000)
    d = _parse(dataset={"source": "synthetic", "n_classes": 8, "n_informative": 3, "n_features": 3}).dataset
    assert (d.n_classes, d.n_informative) == (8, 3)  # 8 = 2**3 classes is the most


@pytest.mark.parametrize(("dataset", "message"), [
    ({"n_samples": 19}, "[dataset.n_samples] expected a value >= 20, got 19"),
    ({"n_samples": 10_000_001}, "[dataset.n_samples] expected a value <= 10000000, got 10000001"),
    ({"n_features": 1}, "[dataset.n_features] expected a value >= 2, got 1"),
    ({"n_features": 100_001}, "[dataset.n_features] expected a value <= 100000, got 100001"),
    ({"n_classes": 1}, "[dataset.n_classes] expected a value >= 2, got 1"),
    ({"n_classes": 1001}, "[dataset.n_classes] expected a value <= 1000, got 1001"),
    ({"n_informative": 0}, "[dataset.n_informative] expected a value >= 1, got 0"),
    ({"n_features": 5, "n_informative": 6}, "[dataset.n_informative] expected a value <= 5, got 6"),
    ({"n_informative": 21}, "[dataset.n_informative] expected a value <= 20, got 21"),
    ({"n_classes": 9, "n_informative": 3}, "[dataset.n_classes] expected at most 2**n_informative = 8 classes"),
    ({"path": "x"}, "[dataset.path] unknown key; valid keys: image_shape, labels, n_classes, n_features, "
                    "n_informative, n_samples, source, standardize, test_fraction, validation_fraction"),
])
def test_synthetic_refusals(dataset, message):
    assert _refused(_named(dataset={"source": "synthetic", **dataset})) == "p.toml: " + message


def test_csv_dataset_is_read_relative_to_the_file(tmp_path):
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "a.csv").write_text(" x , y \n1,0\n")
    d = _parse(base_dir=tmp_path, dataset={"source": "csv", "path": "d/a.csv", "target": "y",
                                           "validation_fraction": 0.3, "test_fraction": 0.1,
                                           "standardize": False, "image_shape": [1, 1, 1]}).dataset
    assert d == DatasetConfig(source="csv", path=tmp_path / "d" / "a.csv", target="y", validation_fraction=0.3,
                              test_fraction=0.1, standardize=False, image_shape=(1, 1, 1))
    absolute = _parse(base_dir=Path("/nowhere"), dataset={"source": "csv", "path": str(tmp_path / "d" / "a.csv"),
                                                          "target": "x"}).dataset
    assert (absolute.path, absolute.target) == (tmp_path / "d" / "a.csv", "x")


def test_csv_header_with_a_quoted_line_break_is_one_column(tmp_path):
    (tmp_path / "a.csv").write_bytes(b'"x\r\ny",z\r\n1,0\r\n')
    d = _parse(base_dir=tmp_path, dataset={"source": "csv", "path": "a.csv", "target": "x\r\ny"}).dataset
    assert d.target == "x\r\ny"


def test_csv_refusals(tmp_path):
    def refused(dataset, base_dir=tmp_path):
        return _refused(_named(dataset={"source": "csv", "target": "y", **dataset}), base_dir=base_dir)

    assert refused({"path": "no.csv"}) == (
        f"p.toml: [dataset.path] expected an existing CSV file, {str(tmp_path / 'no.csv')!r} does not exist")
    assert refused({"path": "no.csv"}, base_dir=None) == (
        "p.toml: [dataset.path] expected an existing CSV file, 'no.csv' does not exist")
    assert refused({"path": "~/no-such-gi.csv"}) == (
        "p.toml: [dataset.path] expected an existing CSV file, "
        f"{str(Path.home() / 'no-such-gi.csv')!r} does not exist")
    assert refused({"path": "."}) == (
        f"p.toml: [dataset.path] expected an existing CSV file, {str(tmp_path / '.')!r} does not exist")
    (tmp_path / "bin.csv").write_bytes(b"\xff\xfe,y\n")
    assert refused({"path": "bin.csv"}) == (
        "p.toml: [dataset.path] expected a readable CSV file: 'utf-8' codec can't decode byte 0xff in position 0: "
        "invalid start byte")
    (tmp_path / "big.csv").write_text('"' + "x" * 200_000 + '",y\n')  # a binary file, say: no traceback
    assert refused({"path": "big.csv"}) == (
        "p.toml: [dataset.path] expected a readable CSV file: field larger than field limit (131072)")
    for name, text in (("empty.csv", ""), ("blank.csv", "\n1,2\n"), ("commas.csv", " , \n1,2\n")):
        (tmp_path / name).write_text(text)
        assert refused({"path": name}) == (
            f"p.toml: [dataset.path] {str(tmp_path / name)!r} has no header row; "
            "expected the column names, then rows of data")
    (tmp_path / "wide.csv").write_text(",".join(f"c{i}" for i in range(13)) + "\n")
    assert refused({"path": "wide.csv", "target": "c13"}) == (
        "p.toml: [dataset.target] expected a column of wide.csv (c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11), "
        "got 'c13' (did you mean \"c3\"?)")
    assert refused({"path": "wide.csv", "target": "zz"}) == (
        "p.toml: [dataset.target] expected a column of wide.csv (c0, c1, c2, c3, c4, c5, c6, c7, c8, c9, c10, c11), "
        "got 'zz'")
    assert refused({"path": "wide.csv", "target": "c0", "n_samples": 3}) == (
        f"p.toml: [dataset.n_samples] unknown key; valid keys: {BASE_KEYS.replace('labels, ', 'labels, path, ')}"
        .replace("standardize, ", "standardize, target, "))


def test_npz_dataset_path(tmp_path):
    (tmp_path / "a.npz").write_bytes(b"")
    d = _parse(base_dir=tmp_path, dataset={"source": "npz", "path": "a.npz"}).dataset
    assert d == DatasetConfig(source="npz", path=tmp_path / "a.npz")
    assert _parse(base_dir=None, dataset={"source": "npz", "path": str(tmp_path / "a.npz")}).dataset.path == (
        tmp_path / "a.npz")

    def refused(dataset, base_dir=tmp_path):
        return _refused(_named(dataset={"source": "npz", **dataset}), base_dir=base_dir)

    assert refused({"path": "b.npz"}) == (
        f"p.toml: [dataset.path] expected an existing .npz file, {str(tmp_path / 'b.npz')!r} does not exist")
    assert refused({"path": "b.npz"}, base_dir=None) == (
        "p.toml: [dataset.path] expected an existing .npz file, 'b.npz' does not exist")
    assert refused({"path": "~/b-gi.npz"}) == (
        f"p.toml: [dataset.path] expected an existing .npz file, {str(Path.home() / 'b-gi.npz')!r} does not exist")
    assert refused({"path": "a.npz", "target": "y"}) == (
        f"p.toml: [dataset.target] unknown key; valid keys: {BASE_KEYS.replace('labels, ', 'labels, path, ')}")


def test_loader_dataset_by_file_or_module(tmp_path):
    (tmp_path / "ld.py").write_text("def load(): pass\n")
    d = _parse(base_dir=tmp_path, dataset={"loader": "ld.py:load"}).dataset  # source "loader" implied
    assert d == DatasetConfig(source="loader", loader="ld.py:load", path=(tmp_path / "ld.py").resolve(),
                              loader_module=None, loader_name="load")
    d = _parse(dataset={"source": "loader", "loader": "pkg.mod:fn", "labels": "values"}).dataset
    assert d == DatasetConfig(source="loader", loader="pkg.mod:fn", loader_module="pkg.mod", loader_name="fn",
                              labels="values")
    assert _refused(_named(dataset={"loader": "missing.py:load"}), base_dir=tmp_path) == (
        f"p.toml: [dataset.loader] no such file {str(tmp_path / 'missing.py')!r} "
        "(a path is relative to the problem file)")
    assert _refused(_named(dataset={"source": "loader", "loader": "not an entry"})) == (
        'p.toml: [dataset.loader] expected "package.module:Name" or "file.py:Name", got \'not an entry\'')
    assert _refused(_named(dataset={"loader": "x:y", "path": "p"})) == (
        f"p.toml: [dataset.path] unknown key; valid keys: {BASE_KEYS.replace('labels, ', 'labels, loader, ')}")


# -- [model] and [space] -------------------------------------------------------------------

def test_the_default_mlp_space():
    p = _parse()
    assert p.space == SearchSpace(layers={"hidden": LayerSpace(IntRange(1, 3), IntRange(8, 256, log=True))},
                                  params={n: Fixed(HYPERPARAMETERS[n][4]) for n in MLP_PARAMS})
    assert list(p.space.params) == MLP_PARAMS


def test_a_cnn_space_has_convolutions_and_their_parameters():
    p = _parse(model={"family": "cnn"})
    assert p.model == ModelConfig("cnn")
    assert p.dataset.image_shape == (1, 8, 8)  # digits are 8 x 8 images
    assert p.space == SearchSpace(
        layers={"hidden": LayerSpace(IntRange(1, 3), IntRange(8, 256, log=True)),
                "conv": LayerSpace(IntRange(1, 2), IntRange(4, 64, log=True))},
        params={n: Fixed(HYPERPARAMETERS[n][4]) for n in sorted(HYPERPARAMETERS)})
    q = _parse(model={"family": "cnn"}, dataset={"source": "synthetic", "image_shape": [4, 5]},
               space={"conv_layers": 8, "channels": {"min": 1, "max": 4096}, "kernel_size": [3, 5],
                      "pooling": "avg"})
    assert q.dataset.image_shape == (1, 4, 5)
    assert q.space.layers["conv"] == LayerSpace(IntRange(8, 8), IntRange(1, 4096))
    assert (q.space.params["kernel_size"], q.space.params["pooling"]) == (Choice((3, 5)), Fixed("avg"))
    shaped = _parse(model={"family": "cnn"}, dataset={"image_shape": [2, 4, 4]})
    assert shaped.dataset.image_shape == (2, 4, 4)


def test_space_values_by_kind():
    s = _parse(space={"hidden_layers": 0, "width": {"min": 1, "max": 65536, "log": True},
                      "learning_rate": {"min": 0.01, "max": 0.1}, "optimizer": ["sgd", "adam"],
                      "epochs": 5}).space
    assert s.layers["hidden"] == LayerSpace(IntRange(0, 0), IntRange(1, 65536, log=True))
    assert s.params["learning_rate"] == RealRange(0.01, 0.1)
    assert s.params["optimizer"] == Choice(("sgd", "adam"))
    assert s.params["epochs"] == Fixed(5)
    assert _parse(space={"hidden_layers": 64, "width": 65536}).space.layers["hidden"] == LayerSpace(
        IntRange(64, 64), IntRange(65536, 65536))
    assert _parse(space={"width": 1}).space.layers["hidden"] == LayerSpace(IntRange(1, 3), IntRange(1, 1))


@pytest.mark.parametrize(("space", "message"), [
    ({"width": 0}, "[space.width] expected a value >= 1, got 0"),
    ({"width": 65537}, "[space.width] expected a value <= 65536, got 65537"),
    ({"hidden_layers": -1}, "[space.hidden_layers] expected a value >= 0, got -1"),
    ({"hidden_layers": 65}, "[space.hidden_layers] expected a value <= 64, got 65"),
    ({"width": {"min": 0, "max": 8}}, "[space.width.min] expected a value >= 1, got 0"),
    ({"width": {"min": 1, "max": 65537}}, "[space.width.max] expected a value <= 65536, got 65537"),
    ({"width": True}, "[space.width] expected an integer or a table { min = ..., max = ... }, got a boolean"),
    ({"hidden_layers": "2"}, "[space.hidden_layers] expected an integer or a table { min = ..., max = ... }, "
                             "got a string"),
    ({"kernel_size": 3}, '[space.kernel_size] is only used by model family "cnn", not "mlp"'),
    ({"pooling": "max"}, '[space.pooling] is only used by model family "cnn", not "mlp"'),
    ({"conv_layers": 1}, '[space.conv_layers] is only used by model family "cnn", not "mlp"'),
    ({"channels": 4}, '[space.channels] is only used by model family "cnn", not "mlp"'),
    ({"widht": 8}, '[space.widht] unknown key (did you mean "width"?); valid keys: '
                   + ", ".join(sorted([*MLP_PARAMS, "hidden_layers", "width"]))),
])
def test_mlp_space_refusals(space, message):
    assert _refused(_named(space=space)) == "p.toml: " + message


@pytest.mark.parametrize(("space", "message"), [
    ({"conv_layers": 9}, "[space.conv_layers] expected a value <= 8, got 9"),
    ({"conv_layers": -1}, "[space.conv_layers] expected a value >= 0, got -1"),
    ({"channels": 0}, "[space.channels] expected a value >= 1, got 0"),
    ({"channels": 4097}, "[space.channels] expected a value <= 4096, got 4097"),
    ({"chanels": 4}, '[space.chanels] unknown key (did you mean "channels"?); valid keys: '
                     + ", ".join(sorted([*HYPERPARAMETERS, "hidden_layers", "width", "conv_layers", "channels"]))),
])
def test_cnn_space_refusals(space, message):
    assert _refused(_named(model={"family": "cnn"}, space=space)) == "p.toml: " + message


# -- [grid] --------------------------------------------------------------------------------

def test_grid_levels_of_structures_and_hyperparameters():
    p = _parse(space={"learning_rate": {"min": 0.001, "max": 0.1}, "optimizer": ["adam", "sgd"]},
               grid={"hidden_layers": [1, 3], "width": [8, 256], "learning_rate": [0.001, 0.1],
                     "optimizer": ["sgd"]})
    assert p.grid == Grid(levels={"hidden_layers": (1, 3), "width": (8, 256), "learning_rate": (0.001, 0.1),
                                  "optimizer": ("sgd",)})
    c = _parse(model={"family": "cnn"}, grid={"conv_layers": [1, 2], "channels": [4, 64], "kernel_size": [3]})
    assert c.grid == Grid(levels={"conv_layers": (1, 2), "channels": (4, 64), "kernel_size": (3,)})


@pytest.mark.parametrize(("grid", "message"), [
    ({"widht": [8]}, '[grid.widht] unknown key (did you mean "width"?); valid keys: '
                     + ", ".join(sorted([*MLP_PARAMS, "hidden_layers", "width"]))),
    ({"width": 8}, "[grid.width] expected a non-empty list of levels, got an integer"),
    ({"width": []}, "[grid.width] expected a non-empty list of levels, got a list"),
    ({"width": [8, 257]}, "[grid.width] grid level 257 is outside the space (int [8, 256] log)"),
    ({"hidden_layers": [4]}, "[grid.hidden_layers] grid level 4 is outside the space (int [1, 3])"),
    ({"epochs": [20, 30]}, "[grid.epochs] grid level 30 is outside the space (fixed 20)"),
    ({"width": [8, 16, 8]}, "[grid.width] expected distinct levels, got [8, 16, 8]"),
])
def test_grid_refusals(grid, message):
    assert _refused(_named(grid=grid)) == "p.toml: " + message


def test_grid_levels_of_a_cnn_structure_are_checked_against_it():
    assert _refused(_named(model={"family": "cnn"}, grid={"channels": [65]})) == (
        "p.toml: [grid.channels] grid level 65 is outside the space (int [4, 64] log)")
    assert _refused(_named(model={"family": "cnn"}, grid={"conv_layers": [3]})) == (
        "p.toml: [grid.conv_layers] grid level 3 is outside the space (int [1, 2])")


# -- [objectives] and [constraints] of the built-in task -----------------------------------

def test_objectives_and_constraints_of_the_built_in_task():
    p = _parse(objectives={"accuracy": "max", "params": "min", "train_energy_j": "min"},
               constraints={"params": {"max": 1000}, "train_time_s": {"max": 2.5}})
    assert p.objectives == {"accuracy": "max", "params": "min", "train_energy_j": "min"}
    assert p.constraints == {"params": 1000.0, "train_time_s": 2.5}
    assert _refused(_named(objectives={"accuracy": "max", "score": "min"})) == (
        "p.toml: [objectives.score] unknown objective; valid: accuracy, train_energy_j, inference_energy_j_per_1k, "
        "train_time_s, inference_time_s_per_1k, params, flops_per_sample")
    assert _refused(_named(constraints={"accuracy": {"max": 1.0}})) == (
        "p.toml: [constraints.accuracy] unknown constraint; valid: train_energy_j, inference_energy_j_per_1k, "
        "train_time_s, inference_time_s_per_1k, params, flops_per_sample")


# -- [search], [evaluation], [energy], [output] --------------------------------------------

def test_search_values():
    s = _parse(search={"population": 2, "generations": 0, "max_evaluations": 1, "max_wall_s": 0.5,
                       "energy_budget_j": 3.0, "crossover_prob": 0.0, "mutation_prob": 0.5, "max_remutations": 0,
                       "surrogate": "forest", "surrogate_pool": 2}).search
    assert s == SearchConfig(population=2, generations=0, max_evaluations=1, max_wall_s=0.5, energy_budget_j=3.0,
                             crossover_prob=0.0, mutation_prob=0.5, max_remutations=0, surrogate="forest",
                             surrogate_pool=2)
    s = _parse(search={"population": 100_000, "generations": 1_000_000, "crossover_prob": 1.0,
                       "mutation_prob": 0.0, "max_remutations": 10_000, "surrogate": "none",
                       "surrogate_pool": 1000}).search
    assert s == SearchConfig(population=100_000, generations=1_000_000, crossover_prob=1.0, mutation_prob=0.0,
                             max_remutations=10_000, surrogate="none", surrogate_pool=1000)


@pytest.mark.parametrize(("search", "message"), [
    ({"population": 1}, "[search.population] expected a value >= 2, got 1"),
    ({"population": 100_001}, "[search.population] expected a value <= 100000, got 100001"),
    ({"generations": -1}, "[search.generations] expected a value >= 0, got -1"),
    ({"generations": 1_000_001}, "[search.generations] expected a value <= 1000000, got 1000001"),
    ({"max_evaluations": 0}, "[search.max_evaluations] expected a value >= 1, got 0"),
    ({"max_wall_s": 0.0}, "[search.max_wall_s] expected a value > 0.0, got 0.0"),
    ({"max_wall_s": 1}, None),
    ({"energy_budget_j": 0.0}, "[search.energy_budget_j] expected a value > 0.0, got 0.0"),
    ({"energy_budget_j": "1"}, "[search.energy_budget_j] expected a number, got a string '1'"),
    ({"crossover_prob": -0.5}, "[search.crossover_prob] expected a value >= 0.0, got -0.5"),
    ({"crossover_prob": 1.5}, "[search.crossover_prob] expected a value <= 1.0, got 1.5"),
    ({"mutation_prob": -0.5}, "[search.mutation_prob] expected a value >= 0.0, got -0.5"),
    ({"mutation_prob": 1.5}, "[search.mutation_prob] expected a value <= 1.0, got 1.5"),
    ({"max_remutations": -1}, "[search.max_remutations] expected a value >= 0, got -1"),
    ({"max_remutations": 10_001}, "[search.max_remutations] expected a value <= 10000, got 10001"),
    ({"surrogate_pool": 1}, "[search.surrogate_pool] expected a value >= 2, got 1"),
    ({"surrogate_pool": 1001}, "[search.surrogate_pool] expected a value <= 1000, got 1001"),
    ({"surrogate": 1}, "[search.surrogate] expected a non-empty string, got an integer 1"),
    ({"populaton": 8}, '[search.populaton] unknown key (did you mean "population"?); valid keys: crossover_prob, '
                       "energy_budget_j, generations, max_evaluations, max_remutations, max_wall_s, mutation_prob, "
                       "population, surrogate, surrogate_pool"),
])
def test_search_refusals(search, message):
    if message is None:  # an integer where a number is expected is that number
        s = _parse(search=search).search
        assert s.max_wall_s == 1.0 and type(s.max_wall_s) is float
        return
    assert _refused(_named(search=search)) == "p.toml: " + message


def test_an_unknown_surrogate_is_refused_naming_the_key():
    message = _refused(_named(search={"surrogate": "bogus"}))
    # The choices are the surrogate's to extend: only the key and these two are fixed here.
    assert message.startswith("p.toml: [search.surrogate] expected one of ")
    assert "'none', 'forest'" in message and message.endswith(", got 'bogus'")


def test_evaluation_values_and_paths(tmp_path):
    e = _parse(base_dir=tmp_path, evaluation={
        "workers": 4096, "backend": "dask", "scheduler": "tcp://h:1", "device": "cuda", "repeats": 1000,
        "timeout_s": 0.5, "threads_per_worker": 4096, "min_inference_s": 0.0, "seed": 7, "replay": "r/x"}).evaluation
    assert e == EvaluationConfig(workers=4096, backend="dask", scheduler="tcp://h:1", device="cuda", repeats=1000,
                                 timeout_s=0.5, threads_per_worker=4096, min_inference_s=0.0, seed=7,
                                 replay=tmp_path / "r" / "x")
    e = _parse(base_dir=tmp_path, evaluation={"workers": 1, "repeats": 1, "threads_per_worker": 1, "device": "auto",
                                              "scheduler": "tcp://a:2"}).evaluation
    assert e == EvaluationConfig(workers=1, repeats=1, threads_per_worker=1, device="auto", scheduler="tcp://a:2")
    assert _parse(base_dir=tmp_path, evaluation={"replay": "/abs/r"}).evaluation.replay == Path("/abs/r")
    assert _parse(base_dir=tmp_path, evaluation={"replay": "~/r"}).evaluation.replay == Path.home() / "r"
    assert _parse(base_dir=None, evaluation={"replay": "r"}).evaluation.replay == Path("r")
    assert _parse(base_dir=tmp_path, evaluation={"backend": "loky"}).evaluation == EvaluationConfig()


@pytest.mark.parametrize(("evaluation", "message"), [
    ({"backend": "ray"}, "[evaluation.backend] expected one of 'loky', 'dask', got 'ray'"),
    ({"backend": "dask"}, '[evaluation.scheduler] backend = "dask" needs scheduler = "tcp://host:port"'),
    ({"scheduler": 1}, "[evaluation.scheduler] expected a non-empty string, got an integer 1"),
    ({"replay": 1}, "[evaluation.replay] expected a non-empty string, got an integer 1"),
    ({"workers": 0}, "[evaluation.workers] expected a value >= 1, got 0"),
    ({"workers": 4097}, "[evaluation.workers] expected a value <= 4096, got 4097"),
    ({"device": "gpu"}, "[evaluation.device] expected one of 'cpu', 'cuda', 'auto', got 'gpu' "
                        '(did you mean "cpu"?)'),
    ({"repeats": 0}, "[evaluation.repeats] expected a value >= 1, got 0"),
    ({"repeats": 1001}, "[evaluation.repeats] expected a value <= 1000, got 1001"),
    ({"timeout_s": 0.0}, "[evaluation.timeout_s] expected a value > 0.0, got 0.0"),
    ({"threads_per_worker": 0}, "[evaluation.threads_per_worker] expected a value >= 1, got 0"),
    ({"threads_per_worker": 4097}, "[evaluation.threads_per_worker] expected a value <= 4096, got 4097"),
    ({"min_inference_s": -0.5}, "[evaluation.min_inference_s] expected a value >= 0.0, got -0.5"),
    ({"seed": -1}, "[evaluation.seed] expected a value >= 0, got -1"),
    ({"seeds": 1}, '[evaluation.seeds] unknown key (did you mean "seed"?); valid keys: backend, device, '
                   "min_inference_s, repeats, replay, scheduler, seed, threads_per_worker, timeout_s, workers"),
])
def test_evaluation_refusals(evaluation, message):
    assert _refused(_named(evaluation=evaluation)) == "p.toml: " + message


def test_energy_values():
    e = _parse(energy={"meter": "estimate", "attribution": "cpu-share", "cpu_watts_per_core": 2.5,
                       "gpu_watts": 50.0, "idle_baseline_s": 3600.0, "carbon_intensity_g_per_kwh": 0.0}).energy
    assert e == EnergyConfig(meter="estimate", attribution="cpu-share", cpu_watts_per_core=2.5, gpu_watts=50.0,
                             idle_baseline_s=3600.0, carbon_intensity_g_per_kwh=0.0)
    for meter in ("auto", "rapl", "nvml"):
        assert _parse(energy={"meter": meter, "attribution": "exclusive"}).energy == EnergyConfig(meter=meter)


@pytest.mark.parametrize(("energy", "message"), [
    ({"meter": "x"}, "[energy.meter] expected one of 'auto', 'rapl', 'nvml', 'estimate', got 'x'"),
    ({"attribution": "x"}, "[energy.attribution] expected one of 'exclusive', 'cpu-share', got 'x'"),
    ({"cpu_watts_per_core": 0.0}, "[energy.cpu_watts_per_core] expected a value > 0.0, got 0.0"),
    ({"gpu_watts": 0.0}, "[energy.gpu_watts] expected a value > 0.0, got 0.0"),
    ({"idle_baseline_s": -0.5}, "[energy.idle_baseline_s] expected a value >= 0.0, got -0.5"),
    ({"idle_baseline_s": 3600.5}, "[energy.idle_baseline_s] expected a value <= 3600.0, got 3600.5"),
    ({"carbon_intensity_g_per_kwh": -0.5}, "[energy.carbon_intensity_g_per_kwh] expected a value >= 0.0, got -0.5"),
    ({"metre": "x"}, '[energy.metre] unknown key (did you mean "meter"?); valid keys: attribution, '
                     "carbon_intensity_g_per_kwh, cpu_watts_per_core, gpu_watts, idle_baseline_s, meter"),
])
def test_energy_refusals(energy, message):
    assert _refused(_named(energy=energy)) == "p.toml: " + message


def test_output_paths(tmp_path):
    o = _parse(base_dir=tmp_path, output={"store": "/abs/s.sqlite", "directory": "~/out"}).output
    assert o == OutputConfig(store=Path("/abs/s.sqlite"), directory=Path.home() / "out")
    o = _parse(base_dir=None, output={"store": "s.sqlite", "directory": "out"}).output
    assert o == OutputConfig(store=Path("s.sqlite"), directory=Path("out"))
    o = _parse(base_dir=tmp_path, output={"directory": "out"}).output
    assert o == OutputConfig(store=None, directory=tmp_path / "out")
    assert _refused(_named(output={"store": ""})) == (
        "p.toml: [output.store] expected a non-empty string, got a string ''")
    assert _refused(_named(output={"dir": "x"})) == "p.toml: [output.dir] unknown key; valid keys: directory, store"


# -- a task of the user's own, and a table -------------------------------------------------

def _all_sections() -> dict:
    return {"search": {"population": 6}, "evaluation": {"seed": 3, "replay": "r"}, "energy": {"meter": "estimate"},
            "output": {"directory": "o"}}


def test_a_problem_with_its_own_task(tmp_path):
    (tmp_path / "t.py").write_text("class T: pass\n")
    p = _parse(base_dir=tmp_path, text="txt", problem={"name": "t", "seed": 3, "description": "d"},
               task={"entry": "t.py:T", "options": {"k": 1}},
               space={"blocks": {"layers": {"min": 1, "max": 2}, "size": {"min": 4, "max": 8}, "kind": ["a", "b"]},
                      "lr": {"min": 0.1, "max": 1.0}},
               grid={"blocks_kind": ["b"], "blocks_size": [4, 8], "blocks_layers": [2], "lr": [0.5]},
               objectives={"score": "max", "cost": "min"}, constraints={"cost": {"max": 2.0}},
               dataset={"source": "iris"}, **_all_sections())
    assert p.task == TaskConfig(entry="t.py:T", module=None, file=(tmp_path / "t.py").resolve(), name="T",
                                options=(("k", 1),))
    assert p.space == SearchSpace(layers={"blocks": LayerSpace(IntRange(1, 2), IntRange(4, 8),
                                                               per_layer=(("kind", Choice(("a", "b"))),))},
                                  params={"lr": RealRange(0.1, 1.0)})
    assert p.grid == Grid(levels={"blocks_kind": ("b",), "blocks_size": (4, 8), "blocks_layers": (2,),
                                  "lr": (0.5,)})
    assert p.objectives == {"score": "max", "cost": "min"} and p.constraints == {"cost": 2.0}
    assert p.dataset == DatasetConfig(source="iris") and p.model == ModelConfig()
    assert (p.name, p.seed, p.description, p.source, p.text) == ("t", 3, "d", "p.toml", "txt")
    assert p.search == SearchConfig(population=6) and p.evaluation == EvaluationConfig(seed=3, replay=tmp_path / "r")
    assert p.energy == EnergyConfig(meter="estimate") and p.output == OutputConfig(directory=tmp_path / "o")
    q = _parse(task={"entry": "pkg.mod:T"}, space={"x": 1}, objectives={"a": "max", "b": "min"})
    assert q.grid is None and q.task == TaskConfig(entry="pkg.mod:T", module="pkg.mod", name="T")


def test_a_problem_with_its_own_task_refuses_a_model_and_needs_objectives():
    task = {"entry": "pkg.mod:T"}
    assert _refused(_named(task=task, model={"family": "mlp"}, space={"x": 1})) == (
        "p.toml: [model] a problem with [task] builds its own model; remove [model]")
    assert _refused(_named(task=task, space={"x": 1})) == (
        'p.toml: [objectives] a problem with [task] names its objectives, e.g. accuracy = "max" and '
        'inference_energy_j_per_1k = "min"')


TABLE = "width,opt,seed,accuracy,train_energy_j\n8,adam,0,0.9,1.0\n16,sgd,0,0.8,2.0\n8,sgd,1,0.7,1.5\n"


def test_a_problem_with_a_table(tmp_path):
    (tmp_path / "t.csv").write_text(TABLE)
    p = _parse(base_dir=tmp_path, text="txt", problem={"name": "t", "seed": 3, "description": "d"},
               table={"path": "t.csv", "configuration": ["width", "opt"]},
               objectives={"accuracy": "max", "train_energy_j": "min"}, constraints={"train_energy_j": {"max": 3}},
               **_all_sections())
    assert p.table == TableConfig(path=(tmp_path / "t.csv").resolve(), configuration=("width", "opt"),
                                  metrics=(("accuracy", "accuracy"), ("train_energy_j", "train_energy_j"),
                                           ("train_energy_j", "train_energy_j")))
    assert p.space == SearchSpace(layers={}, params={"width": Choice((8, 16)), "opt": Choice(("adam", "sgd"))})
    assert p.objectives == {"accuracy": "max", "train_energy_j": "min"} and p.constraints == {"train_energy_j": 3.0}
    assert (p.name, p.seed, p.description, p.source, p.text) == ("t", 3, "d", "p.toml", "txt")
    assert (p.task, p.grid) == (None, None)
    assert p.dataset == DatasetConfig() and p.model == ModelConfig()
    assert p.search == SearchConfig(population=6) and p.evaluation == EvaluationConfig(seed=3, replay=tmp_path / "r")
    assert p.energy == EnergyConfig(meter="estimate") and p.output == OutputConfig(directory=tmp_path / "o")


@pytest.mark.parametrize("section", ["dataset", "model", "task", "space", "grid"])
def test_a_problem_with_a_table_refuses_the_trained_sections(tmp_path, section):
    (tmp_path / "t.csv").write_text(TABLE)
    assert _refused(_named(table={"path": "t.csv", "configuration": ["width"]}, **{section: {}},
                           objectives={"accuracy": "max", "train_energy_j": "min"}), base_dir=tmp_path) == (
        f"p.toml: [{section}] a problem with [table] looks its results up in the table; remove [{section}] "
        "(the space is the table's configuration columns)")


def test_a_problem_with_a_table_needs_objectives(tmp_path):
    (tmp_path / "t.csv").write_text(TABLE)
    assert _refused(_named(table={"path": "t.csv", "configuration": ["width"]}), base_dir=tmp_path) == (
        'p.toml: [objectives] a problem with [table] names its objectives by column, e.g. accuracy = "max" and '
        'energy_j = "min"')


# -- finding and loading a file ------------------------------------------------------------

def test_bundled_problems_are_the_toml_files_of_the_package_by_stem():
    import gi_energy.problems

    folder = Path(gi_energy.problems.__file__).parent
    found = bundled_problems()
    assert list(found) == sorted(p.stem for p in folder.glob("*.toml"))
    assert {k: v.resolve() for k, v in found.items()} == {p.stem: p.resolve() for p in folder.glob("*.toml")}
    assert "digits" in found


def test_resolving_a_problem_by_path_or_name(tmp_path, monkeypatch):
    f = tmp_path / "x.toml"
    f.write_text("")
    assert resolve_problem_path(f) == f
    assert resolve_problem_path(str(f)) == f
    assert resolve_problem_path("digits") == bundled_problems()["digits"]
    names = ", ".join(bundled_problems())
    for given, message in [("nope.toml", "nope.toml: no such problem file"),
                           ("a/nope", "a/nope: no such problem file"),
                           ("digit", f'digit: no such problem file or bundled problem (did you mean "digits"?); '
                                     f"bundled: {names}"),
                           ("zzzz", f"zzzz: no such problem file or bundled problem; bundled: {names}")]:
        with pytest.raises(ProblemError) as err:
            resolve_problem_path(given)
        assert str(err.value) == message
    monkeypatch.chdir(tmp_path)
    (tmp_path / "digits").write_text("")  # a file of that name wins over the bundled problem
    assert resolve_problem_path("digits") == Path("digits")
    with pytest.raises(ProblemError) as err:
        resolve_problem_path("nope.toml")
    assert (err.value.source, err.value.key, err.value.expected) == ("nope.toml", "", "no such problem file")
    with pytest.raises(ProblemError) as err:
        resolve_problem_path("zzzz")
    assert (err.value.source, err.value.key) == ("zzzz", "")


def test_loading_a_file_keeps_its_text_source_and_folder(tmp_path, monkeypatch):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.csv").write_text("x,y\n1,0\n")
    text = '[problem]\nname = "f"\n[dataset]\nsource = "csv"\npath = "a.csv"\ntarget = "y"\n'
    (tmp_path / "sub" / "p.toml").write_text(text)
    monkeypatch.chdir(tmp_path)
    p = load_problem("sub/p.toml")
    assert (p.source, p.text, p.dataset.path) == ("sub/p.toml", text, Path("sub") / "a.csv")
    assert load_problem("./sub//p.toml").source == "./sub//p.toml"  # as given, where it is a file
    q = load_problem(tmp_path / "sub" / "p.toml")
    assert (q.source, q.dataset.path) == (str(tmp_path / "sub" / "p.toml"), tmp_path / "sub" / "a.csv")
    d = load_problem("digits")
    assert d.source == str(bundled_problems()["digits"])
    assert d.text == bundled_problems()["digits"].read_text(encoding="utf-8")


def test_loading_an_unreadable_or_invalid_file_names_it(tmp_path):
    bad = tmp_path / "bad.toml"
    bad.write_bytes(b"\xff[problem]\n")
    with pytest.raises(ProblemError) as err:
        load_problem(bad)
    assert str(err.value) == (f"{bad}: cannot be read: 'utf-8' codec can't decode byte 0xff in position 0: "
                              "invalid start byte")
    assert (err.value.source, err.value.key) == (str(bad), "")
    syntax = tmp_path / "syntax.toml"
    syntax.write_text("[problem\nname = 1\n")
    with pytest.raises(tomllib.TOMLDecodeError) as toml_err:
        tomllib.loads(syntax.read_text())
    with pytest.raises(ProblemError) as err:
        load_problem(syntax)
    assert str(err.value) == f"{syntax}: is not valid TOML: {toml_err.value}"
    assert (err.value.source, err.value.key) == (str(syntax), "")


def test_a_parsed_problem_is_the_same_as_one_built_from_its_parts():
    p = _parse(search={"population": 4})
    assert p == dataclasses.replace(_parse(), search=SearchConfig(population=4))


def test_a_problem_file_is_read_as_utf8_whatever_the_locale(tmp_path):
    import locale

    f = tmp_path / "u.toml"
    f.write_text('[problem]\nname = "u"\ndescription = "café"\n', encoding="utf-8")
    before = locale.setlocale(locale.LC_CTYPE)
    try:
        locale.setlocale(locale.LC_CTYPE, "C")  # an ASCII locale
        assert load_problem(f).description == "café"
    finally:
        locale.setlocale(locale.LC_CTYPE, before)


def test_a_table_problem_names_the_file_when_the_table_has_no_rows(tmp_path):
    (tmp_path / "e.csv").write_text("width,accuracy,train_energy_j\n")
    assert _refused(_named(table={"path": "e.csv", "configuration": ["width"]},
                           objectives={"accuracy": "max", "train_energy_j": "min"}), base_dir=tmp_path) == (
        "p.toml: [table.path] e.csv has no rows: expected one row per configuration (and seed)")


def test_the_default_surrogate_is_one_of_its_choices():
    default = SearchConfig().surrogate
    assert _parse(search={"surrogate": default}).search.surrogate == default


@pytest.mark.parametrize(("section", "key", "value", "expected"), [
    ("problem", "seed", 1.5, "an integer, got a number 1.5"),
    ("model", "family", 1, "a non-empty string, got an integer 1"),
    ("dataset", "source", 1, "a non-empty string, got an integer 1"),
    ("dataset", "validation_fraction", "a", "a number, got a string 'a'"),
    ("dataset", "test_fraction", "a", "a number, got a string 'a'"),
    ("dataset", "labels", 1, "a non-empty string, got an integer 1"),
    ("search", "population", 8.0, "an integer, got a number 8.0"),
    ("search", "generations", 8.0, "an integer, got a number 8.0"),
    ("search", "max_evaluations", 8.0, "an integer, got a number 8.0"),
    ("search", "max_wall_s", "a", "a number, got a string 'a'"),
    ("search", "crossover_prob", "a", "a number, got a string 'a'"),
    ("search", "mutation_prob", "a", "a number, got a string 'a'"),
    ("search", "max_remutations", 8.0, "an integer, got a number 8.0"),
    ("search", "surrogate_pool", 8.0, "an integer, got a number 8.0"),
    ("evaluation", "workers", 2.0, "an integer, got a number 2.0"),
    ("evaluation", "backend", 1, "a non-empty string, got an integer 1"),
    ("evaluation", "device", 1, "a non-empty string, got an integer 1"),
    ("evaluation", "repeats", 2.0, "an integer, got a number 2.0"),
    ("evaluation", "timeout_s", "a", "a number, got a string 'a'"),
    ("evaluation", "threads_per_worker", 2.0, "an integer, got a number 2.0"),
    ("evaluation", "min_inference_s", "a", "a number, got a string 'a'"),
    ("evaluation", "seed", 2.0, "an integer, got a number 2.0"),
    ("energy", "meter", 1, "a non-empty string, got an integer 1"),
    ("energy", "attribution", 1, "a non-empty string, got an integer 1"),
    ("energy", "cpu_watts_per_core", "a", "a number, got a string 'a'"),
    ("energy", "gpu_watts", "a", "a number, got a string 'a'"),
    ("energy", "idle_baseline_s", "a", "a number, got a string 'a'"),
    ("energy", "carbon_intensity_g_per_kwh", "a", "a number, got a string 'a'"),
    ("output", "store", 1, "a non-empty string, got an integer 1"),
    ("output", "directory", 1, "a non-empty string, got an integer 1"),
])
def test_a_value_of_the_wrong_type_is_refused_naming_the_key(section, key, value, expected):
    data = _named()
    data.setdefault(section, {})[key] = value
    assert _refused(data) == f"p.toml: [{section}.{key}] expected {expected}"


@pytest.mark.parametrize(("key", "value", "expected"), [
    ("n_samples", 30.0, "an integer, got a number 30.0"),
    ("n_features", 3.0, "an integer, got a number 3.0"),
    ("n_classes", 3.0, "an integer, got a number 3.0"),
    ("n_informative", 3.0, "an integer, got a number 3.0"),
])
def test_a_synthetic_size_of_the_wrong_type_is_refused(key, value, expected):
    assert _refused(_named(dataset={"source": "synthetic", key: value})) == f"p.toml: [dataset.{key}] expected {expected}"
