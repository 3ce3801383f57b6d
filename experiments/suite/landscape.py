"""Synthetic tabular benchmarks of 10,000+ configurations for the suite, and the suite's
3-class CSV dataset. Deterministic from a seed (numpy's PCG64), so a table is rebuilt
bit for bit by the same command:

    .venv/bin/python experiments/suite/landscape.py           # writes what is missing

A landscape is not a measurement. Each row is a model of what a small MLP would give:

- ``params`` counts the weights of ``layers`` dense layers of ``width`` on ``features``
  inputs and ``classes`` outputs; ``flops_per_sample`` is twice that.
- Accuracy follows a learning curve: a capacity ceiling that rises with log(params) and
  saturates, times the progress of training (1 - exp(-steps x effective rate)), where the
  effective rate falls off log-normally around each optimiser's best learning rate;
  deep tanh networks learn slower; large, long-trained networks without dropout
  overfit; a too-high rate for SGD on a deep network diverges to chance. Plus Gaussian
  noise (sd 0.006), clipped to [1 / classes, 1].
- ``inference_energy_j_per_1k`` and ``train_energy_j`` are proportional to FLOPs
  (training: x samples x epochs x 3, less efficient at small batches), plus a fixed
  overhead, times log-normal noise (sd 5 %): **synthetic energy, never measured**. The
  problem files read them through ``[table]`` without a ``measured`` column, so every
  reading is labelled "table", not measured.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
OUT = ROOT / "runs" / "suite" / "landscapes"
DATA = Path(__file__).resolve().parent / "data"

BEST_LR = {"adam": 3e-3, "sgd": 3e-2, "rmsprop": 1e-3}
ACT_GAIN = {"relu": 0.0, "gelu": 0.006, "elu": 0.002, "tanh": -0.012}
ACT_COST = {"relu": 1.0, "gelu": 1.12, "elu": 1.06, "tanh": 1.08}

LANDSCAPES = {
    # 4 x 7 x 6 x 5 x 3 x 4 = 10,080 configurations, two objectives
    "landscape-a": {"seed": 20261201, "features": 32, "classes": 10, "n_train": 4000, "ceiling": 0.97,
                    "levels": {"layers": [1, 2, 3, 4], "width": [8, 16, 32, 64, 128, 256, 512],
                               "learning_rate": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2],
                               "epochs": [1, 2, 4, 8, 16], "optimizer": ["adam", "sgd", "rmsprop"],
                               "activation": ["relu", "tanh", "gelu", "elu"],
                               "batch_size": [64], "dropout": [0.0]}},
    # 4 x 8 x 5 x 4 x 2 x 4 x 2 = 10,240 configurations, three objectives and a params limit
    "landscape-b": {"seed": 20261202, "features": 48, "classes": 6, "n_train": 6000, "ceiling": 0.93,
                    "levels": {"layers": [1, 2, 3, 4], "width": [8, 16, 32, 64, 128, 256, 512, 1024],
                               "learning_rate": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2],
                               "epochs": [2, 4, 8, 16], "batch_size": [32, 256],
                               "activation": ["relu", "tanh", "gelu", "elu"], "dropout": [0.0, 0.3],
                               "optimizer": ["adam"]}},
}


def landscape(spec: dict) -> list[dict]:
    """Every configuration of ``spec``'s levels with its modelled metrics, in a fixed order."""
    rng = np.random.default_rng(spec["seed"])
    d, k, n = spec["features"], spec["classes"], spec["n_train"]
    lv = spec["levels"]
    names = list(lv)
    rows = []
    for combo in itertools.product(*(lv[name] for name in names)):
        c = dict(zip(names, combo))
        L, W, lr, E, B = c["layers"], c["width"], c["learning_rate"], c["epochs"], c["batch_size"]
        opt, act, drop = c["optimizer"], c["activation"], c["dropout"]
        params = d * W + W + (L - 1) * (W * W + W) + W * k + k
        flops = 2 * params
        chance = 1.0 / k
        ceiling = spec["ceiling"] - 0.25 * np.exp(-np.log(params) / 1.6 + 2.0) + ACT_GAIN[act]
        ceiling = min(ceiling, 0.995)
        off = np.log10(lr / BEST_LR[opt])
        rate = np.exp(-off ** 2 / (2 * 0.45 ** 2))
        if act == "tanh":
            rate *= 0.8 ** (L - 1)
        steps = E * n / B
        progress = 1.0 - np.exp(-steps * rate / (120.0 * (1 + 0.4 * (L - 1))))
        overfit = 0.04 * max(0.0, np.log10(params) - 4.0) * (E / 16) * (1.0 - drop / 0.4)
        acc = chance + (ceiling - chance) * progress - max(overfit, 0.0) - 0.01 * drop * (W < 32)
        if opt == "sgd" and off > 0.3 and L >= 3:
            acc = chance + 0.02 * rng.random()  # diverged
        acc = float(np.clip(acc + rng.normal(0.0, 0.006), chance, 1.0))
        inference = (0.02 + 2.0e-6 * flops * ACT_COST[act]) * float(np.exp(rng.normal(0.0, 0.05)))
        train = (5.0 + 3.0e-9 * flops * n * E * 3 * (1 + 32 / B)) * float(np.exp(rng.normal(0.0, 0.05)))
        rows.append({**c, "accuracy": round(acc, 6), "inference_energy_j_per_1k": round(inference, 6),
                     "train_energy_j": round(train, 4), "params": params, "flops_per_sample": flops})
    return rows


def write_landscape(name: str, out: Path = OUT) -> Path:
    import pandas as pd

    path = out / f"{name}.csv"
    if not path.exists():
        out.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        pd.DataFrame(landscape(LANDSCAPES[name])).to_csv(tmp, index=False)
        tmp.replace(path)
    return path


def write_three_class_csv(path: Path = DATA / "three_class.csv") -> Path:
    """The suite's CSV dataset: 900 rows, 12 numeric features, labels "a", "b", "c"
    (scikit-learn's make_classification, 6 informative features, seed 14)."""
    if path.exists():
        return path
    import pandas as pd
    from sklearn.datasets import make_classification

    x, y = make_classification(n_samples=900, n_features=12, n_informative=6, n_redundant=2, n_classes=3,
                               class_sep=0.8, flip_y=0.03, random_state=14)
    frame = pd.DataFrame(np.round(x, 5), columns=[f"f{i}" for i in range(x.shape[1])])
    frame["label"] = np.array(["a", "b", "c"])[y]
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path


def main() -> None:
    print(write_three_class_csv())
    for name in LANDSCAPES:
        print(write_landscape(name))


if __name__ == "__main__":
    main()
