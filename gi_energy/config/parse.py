"""Reading a problem file: TOML (or an equivalent dict) into a validated :class:`Problem`.

``load_problem(path_or_name)`` returns a :class:`Problem` or raises :class:`ProblemError`
whose one-line message names the file, the key path and what was expected. Relative paths
in the file are relative to the file.
"""

from __future__ import annotations

import csv
import dataclasses
import importlib.resources
import tomllib
from collections.abc import Mapping
from pathlib import Path

from gi_energy.errors import ProblemError, did_you_mean

from . import custom
from .checks import Table, check_value, known_list, type_name
from .params import read_param, read_range
from .problem import (
    CNN_ONLY_PARAMS,
    CONSTRAINT_NAMES,
    DATASET_SOURCES,
    FAMILY_PARAMS,
    HYPERPARAMETERS,
    MODEL_FAMILIES,
    OBJECTIVE_NAMES,
    STRUCTURE_BOUNDS,
    STRUCTURE_DEFAULTS,
    DatasetConfig,
    EnergyConfig,
    EvaluationConfig,
    ModelConfig,
    OutputConfig,
    Problem,
    SearchConfig,
)
from .space import STRUCTURES, Fixed, Grid, IntRange, LayerSpace, SearchSpace, structure_keys


def _read_dataset(t: Table, base_dir: Path | None) -> DatasetConfig:
    source = t.get("source", str, "loader" if t.has("loader") else "digits", choices=DATASET_SOURCES)
    d = DatasetConfig()
    vf = t.get("validation_fraction", float, d.validation_fraction, low=0.0, high=0.9, low_open=True)
    tf = t.get("test_fraction", float, d.test_fraction, low=0.0, high=0.9, low_open=True)
    if vf + tf >= 0.95:
        raise t.error("test_fraction", f"validation_fraction + test_fraction must be < 0.95, got {vf + tf:g}")
    standardize = t.get("standardize", bool, True)
    shape = t.raw("image_shape")
    if shape is not None:
        if not (isinstance(shape, list) and len(shape) in (2, 3) and all(isinstance(s, int) and not isinstance(s, bool) and s > 0 for s in shape)):
            raise t.error("image_shape", f"expected a list of 2 or 3 positive integers such as [1, 8, 8], got {shape!r}")
        shape = tuple(shape) if len(shape) == 3 else (1, *shape)
    path = target = None
    kw = {}
    if source == "csv":
        raw_path = t.get("path", "path", required=True)
        path = Path(raw_path).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        target = t.get("target", str, required=True)
        if not path.is_file():
            raise t.error("path", f"expected an existing CSV file, {str(path)!r} does not exist")
        try:
            with open(path, newline="") as fh:
                header = next(csv.reader(fh), [])
        except (OSError, UnicodeDecodeError, csv.Error) as exc:  # csv.Error: a field over the size limit
            raise t.error("path", f"expected a readable CSV file: {exc}") from None
        header = [h.strip() for h in header]
        if not any(header):
            raise t.error("path", f"{str(path)!r} has no header row; expected the column names, then rows of data")
        if target not in header:
            raise t.error("target", f"expected a column of {path.name} ({', '.join(header[:12])}), got {target!r}"
                          + did_you_mean(target, header))
    elif source == "npz":
        path = Path(t.get("path", "path", required=True)).expanduser()
        if not path.is_absolute() and base_dir is not None:
            path = base_dir / path
        if not path.is_file():
            raise t.error("path", f"expected an existing .npz file, {str(path)!r} does not exist")
    elif source == "loader":
        kw["loader"] = t.get("loader", str, required=True)
        kw["loader_module"], path, kw["loader_name"] = custom.read_entry(t, "loader", kw["loader"], base_dir)
    elif source == "synthetic":
        kw["n_samples"] = t.get("n_samples", int, d.n_samples, low=20, high=10_000_000)
        kw["n_features"] = t.get("n_features", int, d.n_features, low=2, high=100_000)
        kw["n_classes"] = t.get("n_classes", int, d.n_classes, low=2, high=1000)
        kw["n_informative"] = t.get("n_informative", int, min(d.n_informative, kw["n_features"]), low=1,
                                    high=kw["n_features"])
        if kw["n_classes"] > 2 ** kw["n_informative"]:
            raise t.error("n_classes", f"expected at most 2**n_informative = {2 ** kw['n_informative']} classes")
    kw["labels"] = t.get("labels", str, "classes", choices=("classes", "values"))
    t.finish(_dataset_keys(source))
    return DatasetConfig(source=source, path=path, target=target, image_shape=shape, validation_fraction=vf,
                         test_fraction=tf, standardize=standardize, **kw)


def _dataset_keys(source: str) -> set[str]:
    keys = {"source", "validation_fraction", "test_fraction", "standardize", "image_shape", "labels"}
    if source == "npz":
        keys |= {"path"}
    if source == "loader":
        keys |= {"loader"}
    if source == "csv":
        keys |= {"path", "target"}
    if source == "synthetic":
        keys |= {"n_samples", "n_features", "n_classes", "n_informative"}
    return keys


def _read_space(t: Table, family: str) -> SearchSpace:
    structures = FAMILY_PARAMS[family]
    layers = {}
    for sname in structures:
        count_key, size_key = STRUCTURES[sname]
        spaces = []
        for key, default in zip((count_key, size_key), STRUCTURE_DEFAULTS[sname]):
            lo_b, hi_b = STRUCTURE_BOUNDS[key]
            if t.has(key):
                value = t.raw(key)
                if isinstance(value, int) and not isinstance(value, bool):
                    check_value(value, int, lambda m, k=key: t.error(k, m), low=lo_b, high=hi_b)
                    spaces.append(IntRange(value, value))
                elif isinstance(value, dict):
                    spaces.append(read_range(t, key, int, lo_b, hi_b))
                else:
                    raise t.error(key, f"expected an integer or a table {{ min = ..., max = ... }}, got {type_name(value)}")
            else:
                spaces.append(IntRange(default["min"], default["max"], default.get("log", False)))
        layers[sname] = LayerSpace(count=spaces[0], size=spaces[1])
    params = {}
    known = set(HYPERPARAMETERS) if family == "cnn" else set(HYPERPARAMETERS) - set(CNN_ONLY_PARAMS)
    for name in sorted(known):
        if t.has(name):
            params[name] = read_param(t, name)
        else:
            params[name] = Fixed(HYPERPARAMETERS[name][4])
    structure_keys = {k for s in structures for k in STRUCTURES[s]}
    cnn_keys = set(CNN_ONLY_PARAMS) | set(STRUCTURES["conv"])
    for key in t.data:
        if family != "cnn" and key in cnn_keys:
            raise t.error(key, f'is only used by model family "cnn", not "{family}"')
    t.finish(known | structure_keys)
    return SearchSpace(layers=layers, params=params)


def _grid_axis(space: SearchSpace, name: str):
    """The space entry a [grid] key levels: a structure's count, size or per-layer value,
    or a hyperparameter."""
    for s, ls in space.layers.items():
        count_key, size_key = structure_keys(s)
        axes = {count_key: ls.count, size_key: ls.size, **{f"{s}_{attr}": p for attr, p in ls.per_layer}}
        if name in axes:
            return axes[name]
    return space.params[name]


def _read_grid(t: Table, space: SearchSpace) -> Grid:
    levels = {}
    valid = space.names()
    for name, value in t.data.items():
        t.used.add(name)
        if name not in valid:
            raise t.error(name, "unknown key" + did_you_mean(name, valid) + known_list(valid))
        if not isinstance(value, list) or not value:
            raise t.error(name, f"expected a non-empty list of levels, got {type_name(value)}")
        rng = _grid_axis(space, name)
        for v in value:
            if not rng.contains(v):
                raise t.error(name, f"grid level {v!r} is outside the space ({rng.describe()})")
        if len(set(value)) != len(value):
            raise t.error(name, f"expected distinct levels, got {value!r}")
        levels[name] = tuple(value)
    return Grid(levels=levels)


def _read_search(t: Table) -> SearchConfig:
    d = SearchConfig()
    s = SearchConfig(
        population=t.get("population", int, d.population, low=2, high=100_000),
        generations=t.get("generations", int, d.generations, low=0, high=1_000_000),
        max_evaluations=t.get("max_evaluations", int, None, low=1),
        max_wall_s=t.get("max_wall_s", float, None, low=0.0, low_open=True),
        energy_budget_j=t.get("energy_budget_j", float, None, low=0.0, low_open=True),
        crossover_prob=t.get("crossover_prob", float, d.crossover_prob, low=0.0, high=1.0),
        mutation_prob=t.get("mutation_prob", float, d.mutation_prob, low=0.0, high=1.0),
        max_remutations=t.get("max_remutations", int, d.max_remutations, low=0, high=10_000),
        surrogate=t.get("surrogate", str, d.surrogate, choices=("auto", "none", "forest")),
        surrogate_pool=t.get("surrogate_pool", int, d.surrogate_pool, low=2, high=1000),
    )
    t.finish()
    return s


def seed_and_search(text: str, source: str) -> tuple[int, SearchConfig]:
    """The seed and [search] settings a problem's TOML ``text`` gives, nothing else read
    (a resume compares them with the run's copy of its problem)."""
    try:
        root = Table(tomllib.loads(text), source, "")
    except tomllib.TOMLDecodeError as exc:
        raise ProblemError(source, "", f"not valid TOML: {exc}") from None
    seed = root.table("problem").get("seed", int, 0, low=0, high=2**63 - 1)
    return seed, _read_search(root.table("search"))


def _read_evaluation(t: Table, base_dir: Path | None) -> EvaluationConfig:
    d = EvaluationConfig()
    backend = t.get("backend", str, d.backend, choices=("loky", "dask"))
    scheduler = t.get("scheduler", str, None)
    if backend == "dask" and scheduler is None:
        raise t.error("scheduler", 'backend = "dask" needs scheduler = "tcp://host:port"')
    replay = t.get("replay", "path", None)
    if replay is not None:
        replay = Path(replay).expanduser()
        if not replay.is_absolute() and base_dir is not None:
            replay = base_dir / replay
    e = EvaluationConfig(
        workers=t.get("workers", int, d.workers, low=1, high=4096),
        backend=backend,
        scheduler=scheduler,
        device=t.get("device", str, d.device, choices=("cpu", "cuda", "auto")),
        repeats=t.get("repeats", int, d.repeats, low=1, high=1000),
        timeout_s=t.get("timeout_s", float, d.timeout_s, low=0.0, low_open=True),
        threads_per_worker=t.get("threads_per_worker", int, None, low=1, high=4096),
        min_inference_s=t.get("min_inference_s", float, d.min_inference_s, low=0.0),
        seed=t.get("seed", int, d.seed, low=0),
        replay=replay,
    )
    t.finish()
    return e


def _read_energy(t: Table) -> EnergyConfig:
    d = EnergyConfig()
    e = EnergyConfig(
        meter=t.get("meter", str, d.meter, choices=("auto", "rapl", "nvml", "estimate")),
        attribution=t.get("attribution", str, d.attribution, choices=("exclusive", "cpu-share")),
        cpu_watts_per_core=t.get("cpu_watts_per_core", float, d.cpu_watts_per_core, low=0.0, low_open=True),
        gpu_watts=t.get("gpu_watts", float, None, low=0.0, low_open=True),
        idle_baseline_s=t.get("idle_baseline_s", float, d.idle_baseline_s, low=0.0, high=3600.0),
        carbon_intensity_g_per_kwh=t.get("carbon_intensity_g_per_kwh", float, d.carbon_intensity_g_per_kwh,
                                         low=0.0),
    )
    t.finish()
    return e


def _read_output(t: Table, base_dir: Path | None) -> OutputConfig:
    """Paths written in the file are relative to the file, like [dataset] path; the
    defaults (no key) stay relative to the working directory, as the design says."""

    def resolve(value: str) -> Path:
        path = Path(value).expanduser()
        return base_dir / path if not path.is_absolute() and base_dir is not None else path

    store = t.get("store", "path", None)
    directory = t.get("directory", "path", None)
    t.finish()
    return OutputConfig(store=resolve(store) if store else None,
                        directory=resolve(directory) if directory else OutputConfig.directory)


# A run directory's name is the problem's, "-evolve-" and a timestamp (with room for a
# "-2" where two runs start in one second): it must stay under the file system's 255 bytes.
MAX_NAME_BYTES = 200


def _check_name(t: Table, name: str) -> str:
    """A problem's name names its run directories (``<name>-evolve-<time>``): a name, not
    a path, so a run can never be written outside its output directory."""
    if not name.strip() or any(c in name for c in "/\\\0") or ".." in name \
            or any(not c.isprintable() for c in name):
        raise t.error("name", f"expected a plain name (no '/', '\\', '..' or control characters), got {name!r}")
    if len(name.encode("utf-8")) > MAX_NAME_BYTES:
        raise t.error("name", f"expected a name of at most {MAX_NAME_BYTES} bytes (it names run directories, "
                              f"<name>-evolve-<time>, and a file system takes 255), got {len(name.encode('utf-8'))}")
    return name


SECTIONS = ("problem", "dataset", "model", "task", "table", "space", "grid", "objectives", "constraints", "search",
            "evaluation", "energy", "output")


def parse_problem(data: Mapping, source: str = "<python>", base_dir: Path | None = None, text: str = "") -> Problem:
    """Validate a parsed TOML document (or an equivalent dict) into a Problem."""
    root = Table(dict(data), source, "")
    for name in root.data:
        if name not in SECTIONS:
            raise ProblemError(source, name, "unknown section" + did_you_mean(name, SECTIONS)
                               + f"; valid: {', '.join(SECTIONS)}")
    p = root.table("problem")
    name = _check_name(p, p.get("name", str, required=True))
    seed = p.get("seed", int, 0, low=0, high=2**63 - 1)
    description = p.get("description", str, "")
    p.finish()
    if "table" in root.data:
        return _with_table(root, base_dir, dict(name=name, seed=seed, description=description, source=source,
                                                text=text))
    dataset = _read_dataset(root.table("dataset"), base_dir)
    if "task" in root.data:
        return _with_own_task(root, base_dir, dict(name=name, seed=seed, description=description, dataset=dataset,
                                                   source=source, text=text))
    m = root.table("model")
    family = m.get("family", str, "mlp", choices=MODEL_FAMILIES)
    m.finish()
    if family == "cnn" and dataset.image_shape is None and dataset.source != "digits":
        raise ProblemError(source, "model.family", f'"cnn" needs image-shaped data: dataset "{dataset.source}" '
                           "has none; set [dataset] image_shape = [channels, height, width]")
    if family == "cnn" and dataset.image_shape is None:
        dataset = dataclasses.replace(dataset, image_shape=(1, 8, 8))
    space = _read_space(root.table("space"), family)
    grid = _read_grid(root.table("grid"), space) if "grid" in root.data else None
    objectives = (custom.read_metric_objectives(root.table("objectives"), OBJECTIVE_NAMES)
                  if "objectives" in root.data else {"accuracy": "max", "inference_energy_j_per_1k": "min"})
    constraints = custom.read_metric_constraints(root.table("constraints"), CONSTRAINT_NAMES)
    search = _read_search(root.table("search"))
    evaluation = _read_evaluation(root.table("evaluation"), base_dir)
    energy = _read_energy(root.table("energy"))
    output = _read_output(root.table("output"), base_dir)
    return Problem(name=name, seed=seed, description=description, dataset=dataset, model=ModelConfig(family),
                   space=space, grid=grid, objectives=objectives, constraints=constraints, search=search,
                   evaluation=evaluation, energy=energy, output=output, source=source, text=text)


def _with_own_task(root: Table, base_dir: Path | None, fields: dict) -> Problem:
    """The rest of a problem whose ``[task]`` is the user's own (see :mod:`.custom`)."""
    if "model" in root.data:
        raise ProblemError(root.source, "model", "a problem with [task] builds its own model; remove [model]")
    task = custom.read_task(root.table("task"), base_dir)
    space = custom.read_space(root.table("space"))
    grid = _read_grid(root.table("grid"), space) if "grid" in root.data else None
    if "objectives" not in root.data:
        raise ProblemError(root.source, "objectives", "a problem with [task] names its objectives, e.g. "
                           'accuracy = "max" and inference_energy_j_per_1k = "min"')
    return Problem(**fields, task=task, space=space, grid=grid,
                   objectives=custom.read_metric_objectives(root.table("objectives")),
                   constraints=custom.read_metric_constraints(root.table("constraints")),
                   search=_read_search(root.table("search")),
                   evaluation=_read_evaluation(root.table("evaluation"), base_dir),
                   energy=_read_energy(root.table("energy")), output=_read_output(root.table("output"), base_dir))


def _with_table(root: Table, base_dir: Path | None, fields: dict) -> Problem:
    """A tabular benchmark (see :mod:`.table`): the space is the table's levels, the
    objectives and constraints its metric columns; nothing is trained."""
    from . import table

    for section in ("dataset", "model", "task", "space", "grid"):
        if section in root.data:
            raise ProblemError(root.source, section, f"a problem with [table] looks its results up in the table; "
                               f"remove [{section}] (the space is the table's configuration columns)")
    if "objectives" not in root.data:
        raise ProblemError(root.source, "objectives", "a problem with [table] names its objectives by column, "
                           'e.g. accuracy = "max" and energy_j = "min"')
    objectives = custom.read_metric_objectives(root.table("objectives"))
    constraints = custom.read_metric_constraints(root.table("constraints"))
    cfg = table.read_section(root.table("table"), base_dir, [*objectives, *constraints], tuple(constraints))
    space = table.table_space(table.read_frame(cfg, root.source), cfg)
    return Problem(**fields, table=cfg, space=space, objectives=objectives, constraints=constraints,
                   search=_read_search(root.table("search")),
                   evaluation=_read_evaluation(root.table("evaluation"), base_dir),
                   energy=_read_energy(root.table("energy")), output=_read_output(root.table("output"), base_dir))


def bundled_problems() -> dict[str, Path]:
    """Short name -> path of every problem file shipped in gi_energy.problems."""
    # Located as package data, by name: config sits below problems/ and imports none of it.
    folder = Path(str(importlib.resources.files("gi_energy.problems")))
    return {p.stem: p for p in sorted(folder.glob("*.toml"))}


def resolve_problem_path(path_or_name: str | Path) -> Path:
    p = Path(path_or_name)
    if p.is_file():
        return p
    bundled = bundled_problems()
    if str(path_or_name) in bundled:
        return bundled[str(path_or_name)]
    if p.is_dir():
        hint = f"; to continue the run: --resume {path_or_name}" if (p / "run.json").is_file() else ""
        raise ProblemError(str(path_or_name), "", f"is a {'run ' if hint else ''}directory, not a problem file "
                                                  f"(a TOML file or a bundled problem's name){hint}")
    if p.suffix == ".toml" or "/" in str(path_or_name):
        raise ProblemError(str(path_or_name), "", "no such problem file")
    raise ProblemError(str(path_or_name), "", "no such problem file or bundled problem"
                       + did_you_mean(str(path_or_name), bundled) + f"; bundled: {', '.join(bundled)}")


def load_problem(path_or_name: str | Path, base_dir: Path | None = None) -> Problem:
    """Load and validate a problem file, or a bundled problem by short name. Relative
    paths in it are relative to its folder, or to ``base_dir`` when given (a run's copy
    of a problem file: relative to where the original was)."""
    path = resolve_problem_path(path_or_name)
    source = str(path_or_name) if Path(path_or_name).is_file() else str(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ProblemError(source, "", f"cannot be read: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProblemError(source, "", f"is not valid TOML: {exc}") from None
    return parse_problem(data, source=source, base_dir=path.parent if base_dir is None else Path(base_dir), text=text)
