"""The worked example of research code: a task of its own (residual_task.py) and a
metric of its own (macro-F1), run with gi-energy's evolve, grid and compare.

    python experiments/own_task/run.py [--out runs/own_task]

Writes digits_images.npz (scikit-learn's 8x8 digits as 1x8x8 images) beside the problem
file, then runs the three commands. Nothing here meters anything: gi-energy does.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np
from sklearn.datasets import load_digits

HERE = Path(__file__).resolve().parent


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=Path("runs/own_task"))
    args = ap.parse_args()
    digits = load_digits()
    np.savez(HERE / "digits_images.npz", x=digits.images[:, None, :, :] / 16.0, y=digits.target)
    out = args.out
    cli = [sys.executable, "-m", "gi_energy.cli"]
    store = ["--store", str(out / "store.sqlite")]
    for cmd in (["validate", str(HERE / "problem.toml")],
                ["grid", str(HERE / "problem.toml"), "--out", str(out / "grid"), *store],
                ["evolve", str(HERE / "problem.toml"), "--out", str(out / "evolve"), *store],
                ["compare", str(out / "evolve"), "--reference", str(out / "grid"), "--out", str(out / "compare")]):
        print("$ gi-energy", " ".join(cmd), flush=True)
        rc = subprocess.call(cli + cmd)
        if rc != 0:
            return rc
    return 0


if __name__ == "__main__":
    sys.exit(main())
