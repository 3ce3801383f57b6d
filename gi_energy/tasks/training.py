"""Training and metered inference of one genome: a lean PyTorch loop.

The data sit on the device as tensors for the whole evaluation; mini-batches are slices of
a once-per-epoch shuffled copy (no DataLoader: for in-memory data its per-batch machinery
costs more than the small networks searched here). An evaluation is deterministic given
(genome, evaluation seed, repeat) on one machine and thread count. On CUDA that takes
deterministic kernels (:func:`configure_determinism`): cuDNN without autotuning, torch's
deterministic algorithms (warning, not failing, where an op has none) and cuBLAS with a
fixed workspace (``CUBLAS_WORKSPACE_CONFIG``, read when cuBLAS initialises, so the
evaluator sets it in each worker process before CUDA is used). CPU runs are left alone.

The built-in tasks (:mod:`.builtin`) train with :func:`fit` inside the training window
and predict the test set with :func:`predict` inside the inference window.
"""

from __future__ import annotations

import hashlib
import math
import os
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from gi_energy.config.genome import Genome
from gi_energy.config.problem import EvaluationConfig
from gi_energy.problems.models import build_model

# Rows predicted per forward call in inference and accuracy: the whole test set of the
# bundled problems in one call, while a huge CSV test set stays within memory.
PREDICT_CHUNK_ROWS = 8192


@dataclass(frozen=True)
class DeviceData:
    """A dataset's splits as tensors on one device (features float32, labels int64)."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    n_features: int
    n_classes: int
    image_shape: tuple[int, ...] | None
    device: str


def to_device(dataset, device: str) -> DeviceData:
    """Copy a :class:`gi_energy.problems.datasets.Dataset` onto ``device`` once."""

    def t(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(a).to(device)

    return DeviceData(t(dataset.x_train), t(dataset.y_train), t(dataset.x_val), t(dataset.y_val),
                      t(dataset.x_test), t(dataset.y_test), dataset.n_features, dataset.n_classes,
                      dataset.image_shape, device)


def resolve_device(device: str) -> str:
    """"cpu" | "cuda" | "auto" (cuda when torch sees a GPU) -> "cpu" or "cuda"."""
    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if device not in ("cpu", "cuda"):
        raise ValueError(f"device must be cpu, cuda or auto, got {device!r}")
    return device


# cuBLAS's deterministic workspace setting (the other documented one is ":16:8").
CUBLAS_WORKSPACE_CONFIG = ":4096:8"


def configure_determinism(device: str) -> None:
    """Deterministic kernels for a CUDA ``device``; nothing at all for "cpu".

    The settings are process-wide, which is right for a worker process (one evaluation at
    a time, see worker.py). ``CUBLAS_WORKSPACE_CONFIG`` only counts if it is set before
    cuBLAS initialises; an explicit setting in the environment is kept.
    """
    if device != "cuda":
        return
    if "CUBLAS_WORKSPACE_CONFIG" not in os.environ:
        if torch.cuda.is_initialized():
            warnings.warn("CUDA was initialised before CUBLAS_WORKSPACE_CONFIG was set: cuBLAS "
                          f"may not be deterministic; export CUBLAS_WORKSPACE_CONFIG={CUBLAS_WORKSPACE_CONFIG} "
                          "before starting the workers", RuntimeWarning, stacklevel=2)
        os.environ["CUBLAS_WORKSPACE_CONFIG"] = CUBLAS_WORKSPACE_CONFIG
    torch.backends.cudnn.deterministic = True
    torch.backends.cudnn.benchmark = False
    torch.use_deterministic_algorithms(True, warn_only=True)


def usable_cores() -> int:
    """CPU cores this process may run on (affinity-aware where the OS tells)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def threads_per_worker(evaluation: EvaluationConfig, cores: int | None = None, *,
                       worker_threads: int | None = None) -> int:
    """Intra-op threads for one worker: the configured number; else ``worker_threads``, the
    threads a dask worker was given (its tasks run one at a time, see worker.py); else
    cores // workers (>= 1), so that parallel workers do not oversubscribe the machine."""
    if evaluation.threads_per_worker:
        return int(evaluation.threads_per_worker)
    if worker_threads:
        return max(1, int(worker_threads))
    cores = usable_cores() if cores is None else cores
    return max(1, cores // max(1, evaluation.workers))


def derive_seed(eval_seed: int, repeat: int) -> int:
    """The torch seed of one repeat.

    It does not depend on the genome on purpose (common random numbers): two genomes that
    differ in one hyperparameter start from the same draws where their shapes agree, so
    their difference is less blurred by initialisation luck.
    """
    digest = hashlib.sha256(f"gi-energy:{eval_seed}:{repeat}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def make_optimizer(parameters, values: Mapping[str, Any]) -> torch.optim.Optimizer:
    """The genome's optimizer. Genome values canonicalise 0.0 to int 0, hence the casts;
    momentum is used by sgd only.

    Adam, AdamW and SGD use torch's fused kernels (one kernel for all parameters instead
    of a Python loop over them): for the small networks searched here the optimizer step
    is a large share of a training step.
    """
    name = values.get("optimizer", "adam")
    lr = float(values.get("learning_rate", 1e-3))
    wd = float(values.get("weight_decay", 0.0))
    if name == "adam":
        return torch.optim.Adam(parameters, lr=lr, weight_decay=wd, fused=True)
    if name == "adamw":
        return torch.optim.AdamW(parameters, lr=lr, weight_decay=wd, fused=True)
    if name == "sgd":
        return torch.optim.SGD(parameters, lr=lr, momentum=float(values.get("momentum", 0.9)),
                               weight_decay=wd, fused=True)
    if name == "rmsprop":
        return torch.optim.RMSprop(parameters, lr=lr, weight_decay=wd)
    raise ValueError(f"unknown optimizer {name!r}; valid: adam, adamw, sgd, rmsprop")


@dataclass(frozen=True)
class FitResult:
    """How training ended: epochs completed and the loss of the last mini-batch."""

    epochs_run: int
    last_loss: float
    diverged: bool


def fit(model: nn.Module, x: torch.Tensor, y: torch.Tensor, *, epochs: int, batch_size: int,
        optimizer: torch.optim.Optimizer, generator: torch.Generator) -> FitResult:
    """Mini-batch training for ``epochs``; stops after the first epoch whose last loss is
    not finite (a diverged network's weights are NaN, so its last loss is too).

    Plain MLPs take the hand-written path of :class:`DenseNet` (same arithmetic as
    autograd, a fraction of its per-step overhead); other models use autograd. The loss is
    read once per epoch: one host sync per epoch, not per batch.
    """
    n = x.shape[0]
    batch_size = max(1, min(int(batch_size), n))
    dense = DenseNet.from_model(model, generator)
    model.train()
    last = float("nan")
    for epoch in range(int(epochs)):
        perm = torch.randperm(n, generator=generator).to(x.device)
        # One gather per epoch, then contiguous slices: cheaper than indexing every batch.
        xs, ys = x[perm], y[perm]
        if dense is not None:
            loss = dense.train_epoch(xs, ys, batch_size, optimizer)
        else:
            for start in range(0, n, batch_size):
                optimizer.zero_grad(set_to_none=True)
                loss = F.cross_entropy(model(xs[start:start + batch_size]), ys[start:start + batch_size])
                loss.backward()
                optimizer.step()
        last = float(loss.detach())
        if not math.isfinite(last):
            return FitResult(epoch + 1, last, True)
    return FitResult(int(epochs), last, False)


def _relu_backward(g, z, a):
    return torch.ops.aten.threshold_backward(g, a, 0)


# Activation -> (forward, backward(grad, pre-activation, output)). The backward functions
# are the aten kernels autograd itself calls, so the gradients are autograd's.
_DENSE_ACTIVATIONS: dict[type, tuple[Callable, Callable]] = {
    nn.ReLU: (torch.relu, _relu_backward),
    nn.Tanh: (torch.tanh, lambda g, z, a: torch.ops.aten.tanh_backward(g, a)),
    nn.Sigmoid: (torch.sigmoid, lambda g, z, a: torch.ops.aten.sigmoid_backward(g, a)),
    nn.GELU: (F.gelu, lambda g, z, a: torch.ops.aten.gelu_backward(g, z)),
    nn.ELU: (F.elu, lambda g, z, a: torch.ops.aten.elu_backward(g, 1.0, 1, 1, True, a)),
    nn.LeakyReLU: (F.leaky_relu, lambda g, z, a: torch.ops.aten.leaky_relu_backward(g, z, 0.01, False)),
}


class DenseNet:
    """Forward and backward of a plain MLP by hand (no autograd graph).

    Why: for the networks searched here (a few layers of tens to hundreds of units) a
    training step is dominated by per-operation overhead, and autograd's graph building
    and engine roughly double it. The model is the ``nn.Sequential`` of
    ``Linear (activation dropout?)* Linear`` that :func:`build_mlp` makes; its parameters
    are updated in place, gradients land in ``.grad`` and the genome's torch optimizer
    steps as usual. Dropout masks are drawn from the explicit ``generator``.
    """

    def __init__(self, layers: list[tuple[nn.Linear, tuple | None, float]], generator: torch.Generator):
        # (weight, bias, activation, dropout) with the tensors themselves: the optimizer
        # updates them in place, and nn.Module attribute lookups cost per step.
        self.layers = [(lin.weight, lin.bias, act, p) for lin, act, p in layers]
        self.n_classes = layers[-1][0].out_features
        self.generator = generator
        for weight, bias, _, _ in self.layers:
            for t in (weight, bias):
                if t.grad is None:
                    t.grad = torch.zeros_like(t)

    @classmethod
    def from_model(cls, model: nn.Module, generator: torch.Generator) -> DenseNet | None:
        """The hand-written equivalent of ``model``, or None if it is not a plain MLP."""
        if not isinstance(model, nn.Sequential):
            return None
        mods = list(model)
        layers: list[tuple[nn.Linear, tuple | None, float]] = []
        i = 0
        while i < len(mods):
            lin = mods[i]
            if not isinstance(lin, nn.Linear) or lin.bias is None:
                return None
            i += 1
            if i == len(mods):
                layers.append((lin, None, 0.0))
                break
            act = _DENSE_ACTIVATIONS.get(type(mods[i]))
            if act is None or not _default_activation(mods[i]):
                return None
            i += 1
            p = 0.0
            if i < len(mods) and isinstance(mods[i], nn.Dropout):
                p = float(mods[i].p)
                i += 1
            layers.append((lin, act, p))
        if not layers or layers[-1][1] is not None:
            return None
        if generator.device != next(model.parameters()).device:
            generator = torch.Generator(next(model.parameters()).device).manual_seed(generator.initial_seed())
        return cls(layers, generator)

    def gradients(self, xb: torch.Tensor, onehot: torch.Tensor) -> torch.Tensor:
        """Set ``.grad`` of every parameter for the mean cross-entropy of the batch.

        Returns the batch's logits (for the loss, computed only when it is read).
        """
        with torch.no_grad():
            inputs, saved = [], []
            h = xb
            for weight, bias, act, p in self.layers:
                inputs.append(h)
                z = torch.addmm(bias, h, weight.t())
                if act is None:
                    h = z
                    saved.append(None)
                    continue
                a = act[0](z)
                mask = None
                if p > 0:
                    keep = torch.rand(a.shape, generator=self.generator, device=a.device) >= p
                    mask = keep.to(a.dtype).mul_(1.0 / (1.0 - p))
                    h = a * mask
                else:
                    h = a
                saved.append((z, a, mask))
            g = torch.softmax(h, dim=1).sub_(onehot).div_(xb.shape[0])
            for i in range(len(self.layers) - 1, -1, -1):
                weight, bias, _, _ = self.layers[i]
                # Into the existing .grad tensors: no allocation, no Parameter setter.
                torch.mm(g.t(), inputs[i], out=weight.grad)
                torch.sum(g, 0, out=bias.grad)
                if i > 0:
                    g = g.mm(weight)
                    z, a, mask = saved[i - 1]
                    if mask is not None:
                        g = g.mul_(mask)
                    g = self.layers[i - 1][2][1](g, z, a)
            return h

    def train_epoch(self, xs: torch.Tensor, ys: torch.Tensor, batch_size: int,
                    optimizer: torch.optim.Optimizer) -> torch.Tensor:
        """One pass over the (already shuffled) data; returns the last batch's mean loss."""
        onehot = F.one_hot(ys, self.n_classes).to(xs.dtype)
        n = xs.shape[0]
        for start in range(0, n, batch_size):
            logits = self.gradients(xs[start:start + batch_size], onehot[start:start + batch_size])
            optimizer.step()
        return F.cross_entropy(logits, ys[start:start + batch_size])


def _default_activation(module: nn.Module) -> bool:
    """Only the parameterisations the backward table assumes (what build_mlp makes)."""
    if isinstance(module, nn.GELU):
        return module.approximate == "none"
    if isinstance(module, nn.ELU):
        return module.alpha == 1.0
    if isinstance(module, nn.LeakyReLU):
        return module.negative_slope == 0.01
    return True


def predict(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    """Class indices for every row of ``x`` (call under inference mode, model in eval)."""
    if x.shape[0] <= PREDICT_CHUNK_ROWS:
        return model(x).argmax(dim=1)
    return torch.cat([model(x[i:i + PREDICT_CHUNK_ROWS]).argmax(dim=1)
                      for i in range(0, x.shape[0], PREDICT_CHUNK_ROWS)])


def accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> float:
    """Fraction of rows classified correctly, in [0, 1]."""
    model.eval()
    with torch.inference_mode():
        # Counted exactly (not a float32 mean), so 340/359 reads as 0.947075..., not 0.947075128.
        return int((predict(model, x) == y).sum()) / max(1, int(y.shape[0]))


def warm_up(data: DeviceData, family: str) -> None:
    """Train and predict a throwaway model of ``family`` on a few rows of ``data``.

    Why: torch initialises kernels, thread pools and allocators lazily, and the first
    training step in a process costs up to a second; without this, the first evaluation on
    every worker would be charged that time and energy in its meter window.
    """
    genome = Genome(layers={"hidden": (4,), "conv": (2,)}, values={"epochs": 1, "batch_size": 4})
    devices = [torch.cuda.current_device()] if data.device == "cuda" else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(0)
        model = build_model(family, genome, n_features=data.n_features, n_classes=data.n_classes,
                            image_shape=data.image_shape).to(data.device)
        x, y = data.x_train[:16], data.y_train[:16]
        fit(model, x, y, epochs=1, batch_size=4, optimizer=make_optimizer(model.parameters(), {}),
            generator=torch.Generator().manual_seed(0))
        accuracy(model, x, y)
