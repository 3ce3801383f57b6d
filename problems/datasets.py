"""Dataset loaders: scikit-learn's shipped datasets, CSV files and synthetic data.

Nothing is downloaded. ``load_dataset`` returns stratified, seeded train / validation /
test splits as float32 features and int64 labels, standardised on the training split.
Results are cached per process, so a worker loads each dataset once.
"""

from __future__ import annotations

import csv
import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from gi_energy.config.problem import DatasetConfig
from gi_energy.errors import ProblemError, did_you_mean


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
    with open(cfg.path, newline="") as fh:
        rows = list(csv.reader(fh))
    header = [h.strip() for h in rows[0]]
    t = header.index(cfg.target)
    body = [r for r in rows[1:] if r]
    labels = [r[t].strip() for r in body]
    try:
        x = np.array([[float(v) for i, v in enumerate(r) if i != t] for r in body], dtype=np.float64)
    except ValueError as exc:
        raise ProblemError(str(cfg.path), "dataset.path", f"expected numeric feature columns: {exc}") from None
    _, y = np.unique(labels, return_inverse=True)
    return x, y


LOADERS: dict[str, Callable] = {
    "digits": _sklearn("digits"),
    "breast_cancer": _sklearn("breast_cancer"),
    "wine": _sklearn("wine"),
    "iris": _sklearn("iris"),
    "synthetic": _synthetic,
    "csv": _csv,
}
IMAGE_SHAPES = {"digits": (1, 8, 8)}


def load_dataset(cfg: DatasetConfig, seed: int = 0) -> Dataset:
    """Load and split the dataset; cached per process on (config, seed)."""
    return _load_cached(cfg, seed)


@functools.lru_cache(maxsize=8)
def _load_cached(cfg: DatasetConfig, seed: int) -> Dataset:
    from sklearn.model_selection import train_test_split

    if cfg.source not in LOADERS:
        raise ProblemError("", "dataset.source", f"unknown dataset {cfg.source!r}"
                           + did_you_mean(cfg.source, LOADERS) + f"; valid: {', '.join(LOADERS)}")
    x, y = LOADERS[cfg.source](cfg, seed)
    x = np.asarray(x, dtype=np.float64)
    _, y = np.unique(np.asarray(y), return_inverse=True)
    n_classes = int(y.max()) + 1
    holdout = cfg.validation_fraction + cfg.test_fraction
    x_tr, x_rest, y_tr, y_rest = train_test_split(x, y, test_size=holdout, stratify=y, random_state=seed)
    x_va, x_te, y_va, y_te = train_test_split(
        x_rest, y_rest, test_size=cfg.test_fraction / holdout, stratify=y_rest, random_state=seed + 1
    )
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
