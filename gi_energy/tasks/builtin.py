"""The built-in tasks: the dense MLP and the CNN of ``[model] family``, through the same
:class:`~gi_energy.tasks.base.Task` interface as a user's own task.

Training is :func:`gi_energy.tasks.training.fit` (the hand-written dense path where the
network allows it); inference predicts the whole test set per pass.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from gi_energy.problems.models import build_model, count_params, flops_per_sample

from .base import Diverged, Task, Trial
from .training import DeviceData, accuracy, fit, make_optimizer, predict, to_device, warm_up


@dataclass
class _Network:
    """What build() makes: the model and what training it needs."""

    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    shuffle: torch.Generator


class NetworkTask(Task):
    """A network of ``family`` ("mlp" or "cnn") built from the genome's structures."""

    family: ClassVar[str] = "mlp"

    def prepare(self, dataset: Any, device: str) -> DeviceData:
        data = to_device(dataset, device)
        warm_up(data, self.family)  # so the first evaluation's windows are not charged for it
        return data

    def build(self, trial: Trial) -> _Network:
        data: DeviceData = trial.data
        model = build_model(self.family, trial.genome, n_features=data.n_features, n_classes=data.n_classes,
                            image_shape=data.image_shape).to(data.device)
        trial.metrics["params"] = count_params(model)
        trial.metrics["flops_per_sample"] = flops_per_sample(model, data.n_features)
        return _Network(model=model, optimizer=make_optimizer(model.parameters(), trial.genome.values),
                        shuffle=torch.Generator().manual_seed(trial.seed))

    def train(self, net: _Network, trial: Trial) -> None:
        values = trial.genome.values
        result = fit(net.model, trial.data.x_train, trial.data.y_train, epochs=int(values.get("epochs", 20)),
                     batch_size=int(values.get("batch_size", 64)), optimizer=net.optimizer, generator=net.shuffle)
        trial.extra["epochs_run"] = float(result.epochs_run)
        if result.diverged:
            raise Diverged(f"training loss became {result.last_loss} in epoch {result.epochs_run}")

    def evaluate(self, net: _Network, trial: Trial) -> dict[str, float]:
        data: DeviceData = trial.data
        return {"accuracy": accuracy(net.model, data.x_val, data.y_val),
                "test_accuracy": accuracy(net.model, data.x_test, data.y_test)}

    def inference_context(self, net: _Network, trial: Trial):
        net.model.eval()
        return torch.inference_mode()

    def before_inference(self, net: _Network, trial: Trial) -> None:
        predict(net.model, trial.data.x_test[: min(len(trial.data.x_test), 64)])

    def infer(self, net: _Network, trial: Trial) -> int:
        predict(net.model, trial.data.x_test)
        return int(trial.data.x_test.shape[0])


class MLPTask(NetworkTask):
    family = "mlp"


class CNNTask(NetworkTask):
    family = "cnn"


# The names [model] family takes.
BUILTIN_TASKS: dict[str, type[Task]] = {"mlp": MLPTask, "cnn": CNNTask}
