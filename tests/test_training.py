"""Training and metered inference in-process, with a fake meter of known energy."""

from __future__ import annotations

import contextlib
import math
import os
import time

import pytest
import torch

from gi_energy.config.genome import Genome
from gi_energy.config.parse import load_problem
from gi_energy.config.problem import EvaluationConfig
from gi_energy.errors import MeterError
from gi_energy.evaluation.worker import run_evaluation
from gi_energy.meters.reading import Reading
from gi_energy.tasks.run import co2_grams
from gi_energy.tasks.training import derive_seed, make_optimizer, threads_per_worker


class FakeMeter:
    """Every window reads ``joules`` J over its real duration (an estimate, not measured)."""

    measured = False

    def __init__(self, joules: float = 2.0):
        self.joules = joules
        self.windows: list[Reading] = []

    @contextlib.contextmanager
    def window(self):
        w = type("W", (), {"reading": None})()
        start = time.perf_counter()
        try:
            yield w
        finally:
            w.reading = Reading(backend="estimate", scope="process-estimate", measured=False,
                                energy_j=self.joules, duration_s=time.perf_counter() - start)
            self.windows.append(w.reading)

    def describe(self) -> str:
        return f"fake: {self.joules} J per window"


def tiny(**values) -> Genome:
    base = {"epochs": 3, "batch_size": 64, "learning_rate": 0.01, "optimizer": "adam",
            "activation": "relu", "dropout": 0.1, "weight_decay": 0}
    return Genome(layers={"hidden": (16,)}, values={**base, **values})


@pytest.fixture(scope="module")
def mlp_problem():
    return load_problem("digits").with_overrides(evaluation={"min_inference_s": 0.05, "workers": 1})


@pytest.fixture(scope="module")
def cnn_problem():
    return load_problem("digits_cnn").with_overrides(evaluation={"min_inference_s": 0.05, "workers": 1})


def test_mlp_learns_digits_and_energy_arithmetic(mlp_problem):
    meter = FakeMeter(joules=2.0)
    ev = run_evaluation(mlp_problem, tiny(), 0, meter=meter)
    assert ev.status == "ok", ev.reason
    assert ev.val_accuracy > 0.7 and ev.test_accuracy > 0.7
    assert len(meter.windows) == 2  # training, inference
    assert ev.train_energy_j == 2.0
    assert ev.inference_samples % 360 == 0 and ev.inference_samples >= 360  # digits test split
    assert ev.inference_energy_j_per_1k == pytest.approx(2.0 * 1000 / ev.inference_samples)
    assert ev.co2_g == pytest.approx(4.0 / 3.6e6 * mlp_problem.energy.carbon_intensity_g_per_kwh)
    assert ev.params == 64 * 16 + 16 + 16 * 10 + 10
    assert ev.flops_per_sample == 2 * (64 * 16 + 16 * 10)
    assert ev.train_time_s > 0 and ev.extra["epochs_run"] == 3


def test_inference_window_reaches_the_minimum_duration(mlp_problem):
    problem = mlp_problem.with_overrides(evaluation={"min_inference_s": 0.3})
    meter = FakeMeter()
    ev = run_evaluation(problem, tiny(epochs=1), 0, meter=meter)
    assert ev.inference_time_s >= 0.3
    assert meter.windows[1].duration_s >= 0.3
    assert ev.inference_samples > 360  # the test set was predicted more than once


def test_repeat_is_deterministic_and_repeats_differ(mlp_problem):
    g = tiny(epochs=2)
    a = run_evaluation(mlp_problem, g, 0, meter=FakeMeter())
    b = run_evaluation(mlp_problem, g, 0, meter=FakeMeter())
    c = run_evaluation(mlp_problem, g, 1, meter=FakeMeter())
    assert a.val_accuracy == b.val_accuracy and a.test_accuracy == b.test_accuracy
    assert derive_seed(0, 0) != derive_seed(0, 1)
    assert c.repeat == 1


def test_evaluation_leaves_the_global_torch_rng_alone(mlp_problem):
    torch.manual_seed(123)
    expected = torch.rand(3)
    torch.manual_seed(123)
    run_evaluation(mlp_problem, tiny(epochs=1), 0, meter=FakeMeter())
    assert torch.equal(torch.rand(3), expected)


def test_cnn_trains_on_digits(cnn_problem):
    g = Genome(layers={"conv": (4,), "hidden": ()},
               values={"epochs": 2, "batch_size": 64, "learning_rate": 0.01, "optimizer": "adamw",
                       "kernel_size": 3, "pooling": "max", "activation": "relu"})
    ev = run_evaluation(cnn_problem, g, 0, meter=FakeMeter())
    assert ev.status == "ok", ev.reason
    assert ev.val_accuracy > 0.5
    assert ev.flops_per_sample == 2 * (9 * 4 * 64) + 2 * (4 * 16 * 10)


def test_diverging_loss_is_status_nan_and_keeps_the_training_reading(mlp_problem):
    ev = run_evaluation(mlp_problem, tiny(learning_rate=9.0, optimizer="sgd", epochs=5), 0,
                        meter=FakeMeter())
    assert ev.status == "nan", (ev.status, ev.val_accuracy)
    assert "loss" in ev.reason
    assert ev.train_energy_j == 2.0 and ev.inference is None and ev.val_accuracy is None


def test_exception_becomes_failed(mlp_problem):
    ev = run_evaluation(mlp_problem, tiny(optimizer="lbfgs"), 0, meter=FakeMeter())
    assert ev.status == "failed" and "lbfgs" in ev.reason


class RaisingMeter(FakeMeter):
    """A fake meter whose inference window raises ``exc`` (a fault of the machine)."""

    def __init__(self, exc: BaseException):
        super().__init__()
        self.exc = exc

    @contextlib.contextmanager
    def window(self):
        if self.windows:
            raise self.exc
        with super().window() as w:
            yield w


@pytest.mark.parametrize("exc", [MeterError("rapl: counter read failed"),
                                 torch.cuda.OutOfMemoryError("CUDA out of memory")])
def test_meter_errors_and_out_of_memory_are_crashed_not_failed(mlp_problem, exc):
    ev = run_evaluation(mlp_problem, tiny(epochs=1), 0, meter=RaisingMeter(exc))
    assert ev.status == "crashed", (ev.status, ev.reason)
    assert type(exc).__name__ in ev.reason and str(exc) in ev.reason


@pytest.mark.parametrize("name", ["adam", "adamw", "sgd", "rmsprop"])
def test_optimizers_cast_canonical_ints(name):
    p = [torch.nn.Parameter(torch.zeros(2))]
    opt = make_optimizer(p, {"optimizer": name, "learning_rate": 1, "weight_decay": 0, "momentum": 0})
    assert isinstance(opt.param_groups[0]["lr"], float)


def test_threads_per_worker():
    assert threads_per_worker(EvaluationConfig(workers=2), cores=8) == 4
    assert threads_per_worker(EvaluationConfig(workers=16), cores=8) == 1
    assert threads_per_worker(EvaluationConfig(workers=2, threads_per_worker=3), cores=8) == 3
    # a dask worker's own nthreads, not this machine's cores // workers
    assert threads_per_worker(EvaluationConfig(workers=4), cores=8, worker_threads=3) == 3
    assert threads_per_worker(EvaluationConfig(threads_per_worker=1), cores=8, worker_threads=3) == 1


def test_co2_arithmetic():
    from gi_energy.config.problem import EnergyConfig

    assert co2_grams(3.6e6, EnergyConfig(carbon_intensity_g_per_kwh=400.0)) == pytest.approx(400.0)
    assert co2_grams(None, EnergyConfig()) is None
    assert math.isclose(co2_grams(0.0, EnergyConfig()), 0.0)


@pytest.mark.parametrize("activation", ["relu", "tanh", "gelu", "sigmoid", "elu", "leaky_relu"])
def test_hand_written_mlp_gradients_equal_autograd(activation):
    from gi_energy.problems.models import build_mlp

    from gi_energy.tasks.training import DenseNet

    torch.manual_seed(0)
    g = Genome(layers={"hidden": (12, 7)}, values={"activation": activation})
    model = build_mlp(g, n_features=5, n_classes=4)
    x, y = torch.randn(9, 5), torch.randint(0, 4, (9,))
    torch.nn.functional.cross_entropy(model(x), y).backward()
    expected = [p.grad.clone() for p in model.parameters()]
    dense = DenseNet.from_model(model, torch.Generator().manual_seed(0))
    assert dense is not None
    logits = dense.gradients(x, torch.nn.functional.one_hot(y, 4).float())
    assert torch.allclose(logits, model(x).detach(), atol=1e-6)
    for p, e in zip(model.parameters(), expected):
        assert torch.allclose(p.grad, e, atol=1e-6, rtol=1e-5)


def test_models_the_fast_path_cannot_run_use_autograd():
    from gi_energy.tasks.training import DenseNet

    gen = torch.Generator()
    odd = torch.nn.Sequential(torch.nn.Linear(3, 3), torch.nn.Softplus(), torch.nn.Linear(3, 2))
    assert DenseNet.from_model(odd, gen) is None
    assert DenseNet.from_model(torch.nn.Sequential(torch.nn.Linear(3, 2, bias=False)), gen) is None
    assert DenseNet.from_model(torch.nn.Sequential(torch.nn.Linear(3, 2)), gen) is not None


def test_dropout_masks_come_from_the_explicit_generator(mlp_problem):
    g = tiny(dropout=0.5, epochs=2)
    a = run_evaluation(mlp_problem, g, 0, meter=FakeMeter())
    b = run_evaluation(mlp_problem, g, 0, meter=FakeMeter())
    c = run_evaluation(mlp_problem, tiny(dropout=0.0, epochs=2), 0, meter=FakeMeter())
    assert a.status == "ok" and a.val_accuracy == b.val_accuracy
    assert a.val_accuracy != c.val_accuracy or a.test_accuracy != c.test_accuracy


def test_concurrent_evaluations_in_one_process_take_turns_on_the_shared_meter(mlp_problem):
    import threading

    from gi_energy.config.problem import EnergyConfig
    from gi_energy.meters import create_meter

    # A dask worker runs tasks on several threads of one process, all with its one meter.
    meter = create_meter(EnergyConfig(meter="estimate"))
    barrier = threading.Barrier(3)
    results = []

    def one(lr):
        barrier.wait()
        results.append(run_evaluation(mlp_problem, tiny(epochs=2, learning_rate=lr), 0, meter=meter))

    threads = [threading.Thread(target=one, args=(lr,)) for lr in (0.01, 0.02, 0.03)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert [e.status for e in results] == ["ok"] * 3, [e.reason for e in results]


def test_cuda_runs_get_deterministic_kernels_and_cpu_runs_are_left_alone(monkeypatch, mlp_problem):
    from gi_energy.tasks import training

    calls = []
    monkeypatch.setattr(torch, "use_deterministic_algorithms", lambda mode, **kw: calls.append((mode, kw)))
    monkeypatch.setattr(torch.backends.cudnn, "deterministic", False)
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    monkeypatch.delenv("CUBLAS_WORKSPACE_CONFIG", raising=False)

    training.configure_determinism("cpu")
    run_evaluation(mlp_problem, tiny(epochs=1), 0, meter=FakeMeter())  # a CPU run changes nothing
    assert calls == [] and "CUBLAS_WORKSPACE_CONFIG" not in os.environ
    assert torch.backends.cudnn.deterministic is False and torch.backends.cudnn.benchmark is True

    training.configure_determinism("cuda")
    assert calls == [(True, {"warn_only": True})]
    assert torch.backends.cudnn.deterministic is True and torch.backends.cudnn.benchmark is False
    assert os.environ["CUBLAS_WORKSPACE_CONFIG"] == ":4096:8"
