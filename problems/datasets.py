"""Dataset loaders: scikit-learn's shipped datasets, CSV files and synthetic data.

Nothing is downloaded. ``load_dataset`` returns stratified, seeded train / validation /
test splits as float32 features and int64 labels, standardised on the training split.
Results are cached per process, so a worker loads each dataset once.
"""

from __future__ import annotations

import contextlib
import functools
import math
import os
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gi_energy.config.problem import DatasetConfig
from gi_energy.config.userfile import dataset_files
from gi_energy.config.versioned import VersionedCache
from gi_energy.errors import ProblemError, did_you_mean

from . import arrays


@dataclass(frozen=True)
class Dataset:
    """Splits ready for training; ``image_shape`` is (C, H, W) for image-shaped data."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    n_classes: int
    image_shape: tuple[int, ...] | None
    name: str

    @property
    def n_features(self) -> int:
        return int(self.x_train.shape[1])

    @property
    def n_samples(self) -> int:
        return len(self.y_train) + len(self.y_val) + len(self.y_test)

    def describe(self) -> str:
        shape = f", images {'x'.join(map(str, self.image_shape))}" if self.image_shape else ""
        return (f"{self.name}: {self.n_samples} samples x {self.n_features} features, {self.n_classes} classes"
                f"{shape}; split {len(self.y_train)}/{len(self.y_val)}/{len(self.y_test)} (train/val/test)")


def _sklearn(name: str) -> Callable[[DatasetConfig, int], tuple[np.ndarray, np.ndarray]]:
    def load(cfg: DatasetConfig, seed: int):
        from sklearn import datasets

        bunch = getattr(datasets, f"load_{name}")()
        return bunch.data, bunch.target

    return load


def _synthetic(cfg: DatasetConfig, seed: int):
    from sklearn.datasets import make_classification

    return make_classification(
        n_samples=cfg.n_samples, n_features=cfg.n_features, n_informative=cfg.n_informative,
        n_redundant=0, n_classes=cfg.n_classes, random_state=seed,
    )


def _csv(cfg: DatasetConfig, seed: int):
    from .csvfile import read_csv

    return read_csv(cfg)


LOADERS: dict[str, Callable] = {
    "digits": _sklearn("digits"),
    "breast_cancer": _sklearn("breast_cancer"),
    "wine": _sklearn("wine"),
    "iris": _sklearn("iris"),
    "synthetic": _synthetic,
    "csv": _csv,
}
IMAGE_SHAPES = {"digits": (1, 8, 8)}
# Data of the user's own (problems/arrays.py): (x, y) or the six splits, and an image shape.
OWN_DATA = {"npz": arrays.load_npz, "loader": arrays.load_with_loader}


def load_dataset(cfg: DatasetConfig, seed: int = 0, source: str = "") -> Dataset:
    """Load and split the dataset; cached per process on (config, seed). ``source``, the
    problem file, is named in a ProblemError that names no file of its own."""
    with _naming(source):
        return _LOADED.get((cfg, seed), dataset_stamp(cfg), lambda: _load(cfg, seed))


def check_dataset(cfg: DatasetConfig, seed: int = 0, source: str = "") -> None:
    """Load and split the dataset once and drop it: a ProblemError (bad input) now, in
    this process, rather than in every worker. Remembers only that the check passed.
    ``source`` as for :func:`load_dataset`."""
    _checked(cfg, seed, source, dataset_stamp(cfg))


@functools.lru_cache(maxsize=8)
def _checked(cfg: DatasetConfig, seed: int, source: str, stamp) -> None:
    with _naming(source):
        _load(cfg, seed)


def dataset_stamp(cfg: DatasetConfig) -> tuple | None:
    """The (mtime, size) of the dataset's file (a CSV, an .npz, a loader's .py, with the
    loader's helpers), None when it has none: part of the caches' keys, so data edited or
    rewritten in a process that loaded it before is loaded again (the problem's
    fingerprint is the files' bytes now)."""
    files = dataset_files(cfg)
    if not files:
        return None
    stamp = []
    for file in files:
        try:
            st = os.stat(file)
        except OSError:
            stamp.append(None)
            continue
        stamp.append((st.st_mtime_ns, st.st_size))
    return tuple(stamp)


@contextlib.contextmanager
def _naming(source: str):
    """A ProblemError about the data that names no file (a loader's or built-in dataset's
    key) names the problem file ``source``; one naming its data file (a CSV, an .npz) keeps it."""
    try:
        yield
    except ProblemError as exc:
        if exc.source or not source:
            raise
        raise ProblemError(source, exc.key, exc.expected) from None


def check_splittable(x: np.ndarray, labels: np.ndarray, cfg: DatasetConfig) -> None:
    """Refuse data no evaluation could learn from or be scored on: non-finite features,
    fewer than two classes, or too few rows of a class for stratified train, validation
    and test splits. The ProblemError names the file (CSV) and what was expected."""
    source, key = (str(cfg.path), "dataset.target") if cfg.source == "csv" else ("", "dataset.source")
    name = f"column {cfg.target!r}" if cfg.source == "csv" else "the labels"
    bad = np.argwhere(~np.isfinite(x))
    if len(bad):
        row, col = (int(v) for v in bad[0])
        raise ProblemError(source, "dataset", f"sample {row}, feature {col}: expected a finite number, "
                           f"got {x[row, col]!r}")
    classes, counts = np.unique(labels, return_counts=True)
    if len(classes) < 2:
        only = f" ({str(classes[0])!r})" if len(classes) else ""
        raise ProblemError(source, key, f"{name}: expected at least 2 classes, found {len(classes)}{only}; "
                           "every evaluation would score accuracy 1.0")
    n, k = len(labels), len(classes)
    holdout = cfg.validation_fraction + cfg.test_fraction
    n_rest = math.ceil(holdout * n)
    n_test = math.ceil(cfg.test_fraction / holdout * n_rest)
    sizes = {"train": n - n_rest, "validation": n_rest - n_test, "test": n_test}
    small = min(sizes, key=sizes.get)
    if counts.min() < 3 or sizes[small] < k:
        least = classes[int(np.argmin(counts))]
        raise ProblemError(source, key, _too_small(n, k, least, int(counts.min()), cfg, sizes))


def _too_small(n, k, least, count, cfg, sizes) -> str:
    split = ", ".join(f"{v} {s}" for s, v in sizes.items())
    return (f"too few rows to split: {n} rows, {k} classes (smallest {str(least)!r}: {count} rows) give "
            f"{split} rows at validation_fraction {cfg.validation_fraction:g}, test_fraction "
            f"{cfg.test_fraction:g}; expected every class in every split (at least 3 rows of each class "
            f"and {k} rows in each split)")


# Each (config, seed)'s dataset, as its file is now (a CSV rewritten is loaded again,
# and the old copy dropped first).
_LOADED = VersionedCache(8)


def _load(cfg: DatasetConfig, seed: int) -> Dataset:
    from sklearn.model_selection import train_test_split

    if cfg.source in OWN_DATA:
        return _own(cfg, seed)
    if cfg.source not in LOADERS:
        raise ProblemError("", "dataset.source", f"unknown dataset {cfg.source!r}"
                           + did_you_mean(cfg.source, LOADERS) + f"; valid: {', '.join(LOADERS)}")
    x, y = LOADERS[cfg.source](cfg, seed)
    x = np.asarray(x, dtype=np.float64)
    check_splittable(x, np.asarray(y), cfg)
    _, y = np.unique(np.asarray(y), return_inverse=True)
    n_classes = int(y.max()) + 1
    holdout = cfg.validation_fraction + cfg.test_fraction
    try:
        x_tr, x_rest, y_tr, y_rest = train_test_split(x, y, test_size=holdout, stratify=y, random_state=seed)
        x_va, x_te, y_va, y_te = train_test_split(
            x_rest, y_rest, test_size=cfg.test_fraction / holdout, stratify=y_rest, random_state=seed + 1
        )
    except ValueError as exc:
        # The check above is the common case; the stratified draw can still leave a class
        # with one row for the second split.
        source = str(cfg.path) if cfg.source == "csv" else ""
        raise ProblemError(source, "dataset", f"too few rows of some class to split into train, validation "
                           f"and test ({len(y)} rows, {n_classes} classes): {exc}") from None
    if cfg.standardize:
        mean = x_tr.mean(axis=0)
        std = x_tr.std(axis=0)
        std[std == 0] = 1.0
        x_tr, x_va, x_te = ((a - mean) / std for a in (x_tr, x_va, x_te))
    shape = cfg.image_shape or IMAGE_SHAPES.get(cfg.source)
    if shape is not None and int(np.prod(shape)) != x.shape[1]:
        raise ProblemError("", "dataset.image_shape",
                           f"{'x'.join(map(str, shape))} = {int(np.prod(shape))} values, but rows have {x.shape[1]} features")

    def f32(a):
        return np.ascontiguousarray(a, dtype=np.float32)

    def i64(a):
        return np.ascontiguousarray(a, dtype=np.int64)

    name = cfg.path.name if cfg.source == "csv" else cfg.source
    return Dataset(f32(x_tr), i64(y_tr), f32(x_va), i64(y_va), f32(x_te), i64(y_te), n_classes, shape, name)


def _own(cfg: DatasetConfig, seed: int) -> Dataset:
    """An npz file's or a loader's data: split here unless it came split; labels as classes
    (stratified, checked as any dataset's) or, with ``labels = "values"``, as numbers."""
    from sklearn.model_selection import train_test_split

    data, found_shape = OWN_DATA[cfg.source](cfg, seed)
    values = cfg.labels == "values"
    if isinstance(data, dict):
        parts = [data[k] for k in arrays.SPLITS]
    else:
        x, y = data
        if not values:
            check_splittable(x, y, cfg)
        holdout = cfg.validation_fraction + cfg.test_fraction
        strat = None if values else y
        x_tr, x_rest, y_tr, y_rest = train_test_split(x, y, test_size=holdout, stratify=strat, random_state=seed)
        x_va, x_te, y_va, y_te = train_test_split(x_rest, y_rest, test_size=cfg.test_fraction / holdout,
                                                  stratify=None if values else y_rest, random_state=seed + 1)
        parts = [x_tr, y_tr, x_va, y_va, x_te, y_te]
    xs, ys = parts[::2], parts[1::2]
    if values:
        ys = [np.ascontiguousarray(v, dtype=np.float32) for v in ys]
        n_classes = 0
    else:
        classes, _ = np.unique(np.concatenate(ys), return_inverse=True)
        ys = [np.ascontiguousarray(np.searchsorted(classes, v), dtype=np.int64) for v in ys]
        n_classes = len(classes)
    if cfg.standardize:
        mean, std = xs[0].mean(axis=0), xs[0].std(axis=0)
        std[std == 0] = 1.0
        xs = [(a - mean) / std for a in xs]
    xs = [np.ascontiguousarray(a, dtype=np.float32) for a in xs]
    shape = cfg.image_shape or found_shape
    if shape is not None and int(np.prod(shape)) != xs[0].shape[1]:
        raise ProblemError("", "dataset.image_shape", f"{'x'.join(map(str, shape))} = {int(np.prod(shape))} "
                           f"values, but rows have {xs[0].shape[1]} features")
    name = cfg.path.name if cfg.source == "npz" else str(cfg.loader)
    return Dataset(xs[0], ys[0], xs[1], ys[1], xs[2], ys[2], n_classes, shape, name)
