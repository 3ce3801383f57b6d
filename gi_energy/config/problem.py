"""Problem definition: frozen dataclasses, one per section of a problem file, and the
names each section accepts.

:func:`gi_energy.config.parse.load_problem` builds them from TOML, validated once, at the
edge; the core of gi-energy only ever sees these typed objects, never a dict of settings.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .sources import Pins
from .sources import file_digest as _file_digest
from .space import Grid, SearchSpace
from .userfile import helpers_beside, source_digests

BUILTIN_DATASETS = ("digits", "breast_cancer", "wine", "iris")
DATASET_SOURCES = BUILTIN_DATASETS + ("csv", "synthetic", "npz", "loader")
MODEL_FAMILIES = ("mlp", "cnn")
ACTIVATIONS = ("relu", "tanh", "gelu", "sigmoid", "elu", "leaky_relu")
OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
POOLINGS = ("max", "avg", "none")

# name -> (kind, low, high, allowed choices, default used when the space omits it)
# kind: "int" | "real" | "cat"; low/high are hard bounds any range must respect.
HYPERPARAMETERS: dict[str, tuple[str, float | None, float | None, tuple | None, Any]] = {
    "learning_rate": ("real", 0.0, 10.0, None, 1e-3),
    "batch_size": ("int", 1, 1 << 20, None, 64),
    "epochs": ("int", 1, 100_000, None, 20),
    "activation": ("cat", None, None, ACTIVATIONS, "relu"),
    "optimizer": ("cat", None, None, OPTIMIZERS, "adam"),
    "weight_decay": ("real", 0.0, 1.0, None, 0.0),
    "dropout": ("real", 0.0, 0.95, None, 0.0),
    "momentum": ("real", 0.0, 0.999, None, 0.9),
    "kernel_size": ("int", 1, 15, None, 3),
    "pooling": ("cat", None, None, POOLINGS, "max"),
}
# Which hyperparameters and structures each model family reads.
FAMILY_PARAMS = {
    "mlp": ("hidden",),
    "cnn": ("hidden", "conv"),
}
CNN_ONLY_PARAMS = ("kernel_size", "pooling")
STRUCTURE_BOUNDS = {"hidden_layers": (0, 64), "width": (1, 1 << 16), "conv_layers": (0, 8), "channels": (1, 4096)}
STRUCTURE_DEFAULTS = {"hidden": ({"min": 1, "max": 3}, {"min": 8, "max": 256, "log": True}),
                      "conv": ({"min": 1, "max": 2}, {"min": 4, "max": 64, "log": True})}

OBJECTIVE_NAMES = (
    "accuracy",
    "train_energy_j",
    "inference_energy_j_per_1k",
    "train_time_s",
    "inference_time_s_per_1k",
    "params",
    "flops_per_sample",
)
# Constraints are upper bounds on these metrics (constrained domination).
CONSTRAINT_NAMES = OBJECTIVE_NAMES[1:]


@dataclass(frozen=True)
class DatasetConfig:
    source: str = "digits"
    path: Path | None = None
    target: str | None = None
    image_shape: tuple[int, ...] | None = None
    validation_fraction: float = 0.2
    test_fraction: float = 0.2
    standardize: bool = True
    n_samples: int = 2000
    n_features: int = 20
    n_informative: int = 10
    n_classes: int = 2
    # source "npz": ``path`` holds arrays x, y (or x_train, y_train, x_val, ...).
    # source "loader": ``loader`` as written ("package.module:load" or "file.py:load");
    # ``loader_module`` or ``path`` (the file) and ``loader_name`` say where it is.
    loader: str | None = None
    loader_module: str | None = None
    loader_name: str | None = None
    labels: str = "classes"  # "classes" (stratified splits) or "values" (regression targets)


@dataclass(frozen=True)
class ModelConfig:
    family: str = "mlp"


@dataclass(frozen=True)
class TaskConfig:
    """``[task]``: a task of the user's own instead of a built-in ``[model] family``.

    ``entry`` as written: ``"package.module:Name"`` (imported by name) or
    ``"file.py:Name"`` (``file`` is then that path, resolved against the problem file).
    ``options`` are keyword arguments of the task's constructor, as sorted (key, value)
    pairs so the config stays hashable. ``declared`` is filled in when the task is loaded
    (:func:`gi_energy.tasks.loader.bind`): its version and metric names, part of the
    store key with a digest of the source file that defines it.
    """

    entry: str
    module: str | None = None
    file: Path | None = None
    name: str = ""
    options: tuple[tuple[str, Any], ...] = ()
    declared: str | None = None

    def source_file(self) -> Path | None:
        """The file that defines the task (found without importing it), None if unknown."""
        if self.file is not None:
            return self.file
        import importlib.util

        try:
            spec = importlib.util.find_spec(self.module or "")
        except (ImportError, ValueError):
            return None
        return Path(spec.origin) if spec is not None and spec.origin else None


@dataclass(frozen=True)
class TableConfig:
    """``[table]``: a benchmark table looked up instead of training (a tabular benchmark).

    ``path`` is the CSV (or Parquet) file; ``configuration`` the columns that make a
    configuration (the search space's levels), ``seed`` the columns whose rows are repeats
    of one configuration, ``measured`` a column of booleans saying whether a row's energy
    was measured (without it every energy of the table is taken as not measured).
    ``metrics`` are (metric name, column) pairs: the objectives and constraints, and the
    energy (``train_energy_j`` from ``[table] energy`` or a column of that name,
    ``inference_energy_j_per_1k`` from a column of that name).
    """

    path: Path
    configuration: tuple[str, ...]
    seed: tuple[str, ...] = ()
    measured: str | None = None
    metrics: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class SearchConfig:
    population: int = 24
    generations: int = 10
    max_evaluations: int | None = None
    max_wall_s: float | None = None
    energy_budget_j: float | None = None
    crossover_prob: float = 0.9
    mutation_prob: float = 1.0
    max_remutations: int = 20
    surrogate: str = "auto"
    surrogate_pool: int = 16


@dataclass(frozen=True)
class EvaluationConfig:
    workers: int = 1
    backend: str = "loky"
    scheduler: str | None = None
    device: str = "cpu"
    repeats: int = 1
    timeout_s: float = 600.0
    threads_per_worker: int | None = None
    min_inference_s: float = 0.2
    seed: int = 0
    replay: Path | None = None


@dataclass(frozen=True)
class EnergyConfig:
    meter: str = "auto"
    attribution: str = "exclusive"
    cpu_watts_per_core: float = 10.0
    gpu_watts: float | None = None
    idle_baseline_s: float = 0.0
    carbon_intensity_g_per_kwh: float = 475.0


@dataclass(frozen=True)
class OutputConfig:
    store: Path | None = None
    directory: Path = Path("runs")


@dataclass(frozen=True)
class Problem:
    name: str
    space: SearchSpace
    seed: int = 0
    description: str = ""
    dataset: DatasetConfig = field(default_factory=DatasetConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    grid: Grid | None = None
    objectives: Mapping[str, str] = field(
        default_factory=lambda: {"accuracy": "max", "inference_energy_j_per_1k": "min"}
    )
    constraints: Mapping[str, float] = field(default_factory=dict)
    search: SearchConfig = field(default_factory=SearchConfig)
    evaluation: EvaluationConfig = field(default_factory=EvaluationConfig)
    energy: EnergyConfig = field(default_factory=EnergyConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    task: TaskConfig | None = None
    table: TableConfig | None = None
    source: str = "<python>"
    text: str = ""
    # The source files a run pinned when it started (set by tasks.loader.bind): no part of
    # what the problem is, so not compared; a worker evaluates that code and data or none.
    pinned: Pins = field(default_factory=Pins, compare=False, repr=False)

    def fingerprint(self) -> str:
        """Hash of everything that changes what one evaluation of a genome yields.

        The search settings (space ranges, budgets, search seed) are left out on purpose,
        so a grid and an evolve of the same problem share their stored evaluations.
        A CSV dataset's bytes are hashed once per (path, mtime, size), not on every call:
        the loop asks every generation.
        """
        text = json.dumps(self._fingerprint_payload(), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def _fingerprint_payload(self) -> dict:
        # A bound problem's files are the versions its run pinned (tasks.loader.bind), so
        # its key stays theirs while the files are edited; unbound, the files on disk.
        pins = self.pinned
        d = dataclasses.asdict(self.dataset)
        if d["path"] is not None:
            path = Path(d["path"])
            d["path"] = pins.dataset[0][3] if pins.dataset else _file_digest(path)
            if self.dataset.source == "loader":  # the loader's helpers read the data too
                helpers = source_digests(path, pins.dataset) if pins.dataset else \
                    {name: _file_digest(file) for name, file in helpers_beside(path).items()}
                if helpers:  # absent when there are none: the keys of loaders without helpers stay
                    d["loader_helpers"] = helpers
        for key in ("loader", "loader_module", "loader_name", "labels"):
            if d[key] is None or (key == "labels" and d[key] == "classes"):
                del d[key]  # absent as before they existed: stores made then stay valid
        if self.dataset.loader_module is not None:
            d["loader_source"] = _module_digest(self.dataset.loader_module)
        ev = self.evaluation
        payload = {
            "dataset": d,
            "model": self.model.family,
            "eval_seed": ev.seed,
            "min_inference_s": ev.min_inference_s,
            "fingerprint_version": 1,
        }
        if self.task is not None:
            # Results of different code never mix: the entry, its options, what it declared
            # (version, metric names) and the bytes of the file that defines it.
            src = self.task.source_file()
            payload["task"] = {"entry": self.task.entry, "options": self.task.options,
                               "declared": self.task.declared,
                               "source": pins.task[0][3] if pins.task else None if src is None else _file_digest(src)}
        if self.table is not None:
            # A table's results are its bytes and how they are read.
            payload["table"] = {"source": _file_digest(self.table.path), "configuration": self.table.configuration,
                                "seed": self.table.seed, "measured": self.table.measured,
                                "metrics": self.table.metrics}
        return payload

    def fingerprint_parts(self) -> dict[str, str]:
        """A short digest of each part :meth:`fingerprint` covers ("dataset", "model",
        "task", "table", ...): run.json keeps them, so a refused resume can say which part
        changed since the run (the table's bytes, the task's code)."""
        payload = self._fingerprint_payload()
        if "table" in payload:
            # The table's part is its bytes and how they are read (the columns objectives and
            # constraints name among them); the bytes alone too, so a refusal can tell which.
            payload["table_file"] = payload["table"]["source"]
        return {key: hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:12]
                for key, value in payload.items()}

    def fingerprint_change(self, recorded: Mapping | None) -> str:
        """Words for what changed since a run whose run.json holds ``recorded`` parts
        (empty when it holds none, or nothing it holds differs)."""
        if not isinstance(recorded, Mapping):
            return ""
        now = self.fingerprint_parts()
        changed = sorted(k for k in {*recorded, *now} if recorded.get(k) != now.get(k))
        if "table_file" not in recorded:  # a run from before the file's own digest was kept
            changed = [k for k in changed if k != "table_file"]
        elif "table" in changed:
            changed.remove("table")  # said as the file's change, or as how it is read
            if "table_file" not in changed:
                changed.append("table_reading")
        table = f"the table {self.table.path}" if self.table is not None else "the table"
        words = {"table": f"{table} changed", "table_file": f"{table} changed",
                 "table_reading": f"how {table} is read changed (its configuration, seed or measured column, "
                                  "or the columns the objectives and constraints name)",
                 "dataset": "the dataset (its file's bytes or how it is read) changed",
                 "task": "the task's code or options changed", "model": "the model family changed"}
        return "; ".join(words.get(k, f"{k} changed") for k in changed)

    def with_overrides(self, **sections) -> Problem:
        """A copy with fields of sections replaced, e.g. ``search={"population": 8}``."""
        changes = {}
        for section, values in sections.items():
            if values is None or (isinstance(values, Mapping) and not values):
                continue
            current = getattr(self, section)
            changes[section] = dataclasses.replace(current, **values) if dataclasses.is_dataclass(current) else values
        return dataclasses.replace(self, **changes)

    def to_toml(self) -> str:
        """The exact problem text that ran (the file's own text when loaded from TOML)."""
        if self.text:
            return self.text
        return f'# built in Python\n[problem]\nname = "{self.name}"\nseed = {self.seed}\n'


def _module_digest(module: str) -> str | None:
    """The digest of an importable module's source file, found without importing it."""
    import importlib.util

    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    return None if spec is None or not spec.origin else _file_digest(Path(spec.origin))


# ---------------------------------------------------------------- reading TOML


# ---------------------------------------------------------------- sections
