"""Data of the user's own: arrays in an ``.npz`` file, or a loader function named in the
problem file (``[dataset] loader = "package.module:load"`` or ``"file.py:load"``).

Either gives ``(x, y)`` (gi-energy then makes the seeded train / validation / test
splits) or the six arrays already split: ``x_train, y_train, x_val, y_val, x_test,
y_test``. Rows of more than one dimension (images) are flattened, and their shape becomes
the dataset's ``image_shape``. A loader is imported by name in each process that loads the
data, so a function, not data, crosses to the workers. Errors about the loader's data carry
no problem file (``ProblemError("", ...)``): :func:`gi_energy.problems.datasets.load_dataset`
names the one it was given.
"""

from __future__ import annotations

import hashlib
import importlib
import inspect
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from gi_energy.config.problem import DatasetConfig
from gi_energy.config.userfile import import_file, raised
from gi_energy.errors import ProblemError

SPLITS = ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")


def load_npz(cfg: DatasetConfig, seed: int):
    """``x`` and ``y``, or the six split arrays, from ``cfg.path``."""
    try:
        with np.load(cfg.path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (OSError, ValueError) as exc:
        raise ProblemError(str(cfg.path), "dataset.path", f"expected an .npz file of arrays: {exc}") from None
    return _shape(arrays, str(cfg.path), "dataset.path")


def load_with_loader(cfg: DatasetConfig, seed: int):
    """Call the loader named in ``cfg.loader`` with the keyword arguments it accepts of
    ``seed`` (the evaluation seed)."""
    fn = _loader(cfg)
    kwargs = {"seed": seed} if "seed" in inspect.signature(fn).parameters else {}
    try:
        result = fn(**kwargs)
    except (Exception, SystemExit) as exc:  # noqa: BLE001 - the user's loader failing is bad input, named
        raise ProblemError("", "dataset.loader", f"{cfg.loader} raised {raised(exc)}") from None
    if isinstance(result, tuple) and len(result) == 2:
        result = {"x": result[0], "y": result[1]}
    if not isinstance(result, Mapping):
        raise ProblemError("", "dataset.loader", f"{cfg.loader} must return (x, y) or a dict of "
                           f"{', '.join(SPLITS)}; got {type(result).__name__}")
    return _shape({k: np.asarray(v) for k, v in result.items()}, "", "dataset.loader")


def _loader(cfg: DatasetConfig):
    if cfg.loader_module is not None:
        try:
            module = importlib.import_module(cfg.loader_module)
        except (Exception, SystemExit) as exc:  # noqa: BLE001 - not found, or raising (exiting) while imported
            raise ProblemError("", "dataset.loader", f"cannot import {cfg.loader_module!r}: "
                               f"{raised(exc)}") from None
    else:
        # "": the problem file is named by whoever loads the data (datasets.load_dataset)
        module = import_file(cfg.path, "gi_energy_loader", "", "dataset.loader")
    fn = getattr(module, cfg.loader_name, None)
    if not callable(fn):
        raise ProblemError("", "dataset.loader", f"{cfg.loader!r}: no function {cfg.loader_name!r} there")
    return fn


def _shape(arrays: Mapping[str, np.ndarray], source: str, key: str):
    """(x, y) or a dict of the six splits, rows flattened; the image shape (or None) last."""
    if all(k in arrays for k in SPLITS):
        xs = [arrays[k] for k in SPLITS[::2]]
        shape = _row_shape(xs[0])
        out = {k: (_flat(arrays[k]) if k.startswith("x") else np.asarray(arrays[k]).reshape(-1)) for k in SPLITS}
        for k in SPLITS[::2]:
            if out[k].shape[1:] != out["x_train"].shape[1:] or len(out[k]) != len(out["y" + k[1:]]):
                raise ProblemError(source, key, f"{k}: expected rows like x_train's and one label per row")
        return out, shape
    if "x" not in arrays or "y" not in arrays:
        raise ProblemError(source, key, f"expected arrays x and y, or {', '.join(SPLITS)}; found "
                           f"{', '.join(sorted(arrays)) or 'none'}")
    x, y = np.asarray(arrays["x"]), np.asarray(arrays["y"]).reshape(-1)
    if len(x) != len(y):
        raise ProblemError(source, key, f"expected one label per row: x has {len(x)} rows, y {len(y)}")
    return (_flat(x), y), _row_shape(x)


def _row_shape(x: np.ndarray) -> tuple[int, ...] | None:
    shape = tuple(int(s) for s in np.asarray(x).shape[1:])
    if len(shape) <= 1:
        return None
    return shape if len(shape) == 3 else (1, *shape)


def _flat(x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.dtype.kind not in "biuf":
        raise ProblemError("", "dataset", f"expected numeric features, got arrays of {x.dtype}")
    return x.reshape(len(x), -1).astype(np.float64)


def with_arrays(problem, dataset, folder: Path):
    """``problem`` reading ``dataset`` — ``(x, y)`` or a dict of the six splits, numpy
    arrays from research code — through an .npz file in ``folder`` named by the arrays'
    digest, so workers load the same bytes and the store key follows the data."""
    import dataclasses

    if isinstance(dataset, tuple | list) and len(dataset) == 2:
        arrays = {"x": dataset[0], "y": dataset[1]}
    elif isinstance(dataset, Mapping):
        arrays = dict(dataset)
    else:
        shape = f" of shape {dataset.shape}" if hasattr(dataset, "shape") else ""
        raise ProblemError("<arrays>", "dataset", f"expected (x, y) or a dict of {', '.join(SPLITS)}; got "
                           f"{type(dataset).__name__}{shape}")
    missing = [k for k, v in arrays.items() if v is None]
    if missing:
        raise ProblemError("<arrays>", "dataset", f"{', '.join(missing)} is None; expected an array")
    arrays = {k: np.ascontiguousarray(np.asarray(v)) for k, v in arrays.items()}
    _shape(arrays, "<arrays>", "dataset")  # the same checks as a file's, before anything is written
    digest = hashlib.sha256()
    for k in sorted(arrays):
        digest.update(k.encode() + str(arrays[k].dtype).encode() + str(arrays[k].shape).encode())
        digest.update(arrays[k].tobytes())
    path = Path(folder) / f"arrays-{digest.hexdigest()[:16]}.npz"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.name}.tmp.npz")
        np.savez(tmp, **arrays)
        tmp.replace(path)
    cfg = dataclasses.replace(problem.dataset, source="npz", path=path.resolve(), target=None, loader=None,
                              loader_module=None, loader_name=None)
    return dataclasses.replace(problem, dataset=cfg)
