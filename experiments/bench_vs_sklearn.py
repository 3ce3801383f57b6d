"""Training speed: gi-energy's training loop against scikit-learn's MLPClassifier.

For every configuration of a problem's [grid] (default: the bundled ``digits`` problem),
both train the same MLP (hidden widths, ReLU/tanh/sigmoid, Adam, learning rate, batch
size, epochs, no weight decay, no early stopping) on the same training split, on one CPU
thread each, and the wall time of training alone is compared. Reported: per-configuration
times and validation accuracies, and the median speed ratio sklearn_s / ours_s (> 1 means
we are faster). The issue's target is a median ratio of at least 1.5.

Timed for us: the built-in MLP task's ``build`` (model, optimizer) and its ``train`` inside
the trial's training window (:func:`gi_energy.tasks.training.fit`: what the meter covers),
exactly as an evaluation runs them. Timed for sklearn: ``MLPClassifier.fit``. With
``--reps k`` each side runs k times, interleaved, and the fastest run counts (the least
disturbed by other load on the machine).

    python experiments/bench_vs_sklearn.py [--problem digits] [--reps 1] [--every 1]
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import sys
import time
import types
import warnings

import torch
from gi_energy.problems.datasets import load_dataset

from gi_energy.config.parse import load_problem
from gi_energy.tasks.base import Trial
from gi_energy.tasks.builtin import MLPTask
from gi_energy.tasks.training import accuracy, derive_seed, to_device

SKLEARN_ACTIVATIONS = {"relu": "relu", "tanh": "tanh", "sigmoid": "logistic"}


class _Unmetered:
    """A meter stand-in: the task's windows open and close, nothing is read."""

    @contextlib.contextmanager
    def window(self):
        yield types.SimpleNamespace(reading=None)


def time_ours(genome, data, seed: int) -> tuple[float, float]:
    """(training seconds, validation accuracy) of the built-in MLP task: its build() and
    its train() inside the trial's training window, as an evaluation runs them."""
    task = MLPTask()
    trial = Trial(genome=genome, seed=seed, device="cpu", data=data, meter=_Unmetered(), min_inference_s=0.0)
    start = time.perf_counter()
    with torch.random.fork_rng():
        torch.manual_seed(seed)
        net = task.build(trial)
        with trial.training():
            task.train(net, trial)
    elapsed = time.perf_counter() - start
    return elapsed, accuracy(net.model, data.x_val, data.y_val)


def time_sklearn(genome, dataset, seed: int) -> tuple[float, float]:
    """(training seconds, validation accuracy) of MLPClassifier on the same settings."""
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier

    v = genome.values
    epochs = int(v["epochs"])
    clf = MLPClassifier(
        hidden_layer_sizes=tuple(genome.layers["hidden"]),
        activation=SKLEARN_ACTIVATIONS[v.get("activation", "relu")],
        solver="adam", alpha=0.0, batch_size=int(v["batch_size"]),
        learning_rate_init=float(v["learning_rate"]), max_iter=epochs, shuffle=True,
        early_stopping=False, tol=0.0,
        n_iter_no_change=epochs + 1,  # never stop before max_iter: same epochs as ours
        random_state=seed % (2**32),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        start = time.perf_counter()
        clf.fit(dataset.x_train, dataset.y_train)
        elapsed = time.perf_counter() - start
    assert clf.n_iter_ == epochs, (clf.n_iter_, epochs)
    return elapsed, float(clf.score(dataset.x_val, dataset.y_val))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--problem", default="digits", help="problem file or bundled name with a [grid]")
    ap.add_argument("--reps", type=int, default=1, help="runs per side; the fastest counts")
    ap.add_argument("--every", type=int, default=1, help="take every k-th grid configuration")
    ap.add_argument("--threads", type=int, default=1, help="CPU threads for both sides")
    args = ap.parse_args(argv)

    from threadpoolctl import threadpool_limits

    problem = load_problem(args.problem)
    if problem.model.family != "mlp" or problem.grid is None:
        print("the problem needs model family mlp and a [grid]", file=sys.stderr)
        return 2
    genomes = [g for g in problem.grid.enumerate(problem.space)
               if g.values.get("optimizer", "adam") == "adam"
               and g.values.get("activation", "relu") in SKLEARN_ACTIVATIONS
               and float(g.values.get("dropout", 0)) == 0 and float(g.values.get("weight_decay", 0)) == 0]
    genomes = genomes[::args.every]
    dataset = load_dataset(problem.dataset, problem.evaluation.seed)
    torch.set_num_threads(args.threads)
    data = to_device(dataset, "cpu")
    seed = derive_seed(problem.evaluation.seed, 0)
    time_ours(genomes[0], data, seed)  # warm-up: first-call initialisation of torch kernels

    print(f"# {problem.name}: {len(genomes)} grid configurations, {args.threads} thread(s), "
          f"best of {args.reps}; torch {torch.__version__}")
    print("| hidden | lr | batch | epochs | ours s | sklearn s | ratio | ours acc | sklearn acc |")
    print("|---|---|---|---|---|---|---|---|---|")
    ratios = []
    bench_start = time.perf_counter()
    with threadpool_limits(args.threads):
        for g in genomes:
            ours, theirs = [], []
            for _ in range(args.reps):
                ours.append(time_ours(g, data, seed))
                theirs.append(time_sklearn(g, dataset, seed))
            o_s, o_acc = min(ours)
            s_s, s_acc = min(theirs)
            ratios.append(s_s / o_s)
            v = g.values
            print(f"| {'-'.join(map(str, g.layers['hidden']))} | {v['learning_rate']:g} | {v['batch_size']} "
                  f"| {v['epochs']} | {o_s:.3f} | {s_s:.3f} | {s_s / o_s:.2f} | {o_acc:.3f} | {s_acc:.3f} |",
                  flush=True)
    q = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else [ratios[0]] * 3
    print(f"\nmedian speed ratio (sklearn / ours): {statistics.median(ratios):.2f} "
          f"(IQR {q[0]:.2f}-{q[2]:.2f}, min {min(ratios):.2f}, max {max(ratios):.2f}); "
          f"configurations faster than sklearn: {sum(r > 1 for r in ratios)}/{len(ratios)}; "
          f"benchmark took {time.perf_counter() - bench_start:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
