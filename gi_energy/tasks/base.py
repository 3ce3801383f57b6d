"""The task interface: how one configuration is built, trained, evaluated and run for
inference, with gi-energy holding the meter.

A task says *what* runs; gi-energy opens the meter windows around it, so every joule in a
result is gi-energy's reading (backend, scope, measured flag), whatever code ran inside.
The split follows ECOpt's ``Model`` (``define`` / ``train`` / ``evaluate``, the tool
wrapping train and evaluate in its meter); the lower-level form follows Zeus's
``begin_window`` / ``end_window``, except that the windows are context managers that
gi-energy owns and can only be opened once each.

High-level form: fill in four methods and let :meth:`Task.run` call them::

    class MyTask(gi_energy.Task):
        metrics = ("macro_f1",)                  # beyond the built-in metric names

        def build(self, trial):                  # not metered
            return make_net(trial.config["width"], trial.config["blocks"])

        def train(self, model, trial):           # inside the training window
            fit(model, trial.data, epochs=trial.config["epochs"], seed=trial.seed)

        def evaluate(self, model, trial):        # after training, not metered
            return {"accuracy": acc(model, trial.data), "macro_f1": f1(model, trial.data)}

        def infer(self, model, trial):           # one pass, inside the inference window
            model(trial.data.x_test)
            return len(trial.data.x_test)        # samples predicted by this pass

Lower-level form: override :meth:`Task.run` and open the windows yourself with
``with trial.training(): ...`` and ``with trial.inference_window() as w: ...; w.samples = n``
(or ``trial.inference(one_pass)``). A window that a task never opens is a *missing*
reading, never a zero.

Lifecycle in a worker process: the task is imported by name and constructed once;
:meth:`Task.prepare` turns the loaded dataset into what the task reads (once per process
and dataset); then one :class:`Trial` per (genome, repeat). An exception from the task's
code is that evaluation's ``failed`` status with the exception as its reason;
:class:`Diverged` gives status ``nan`` (the training reading is kept: that energy was
spent).
"""

from __future__ import annotations

import contextlib
import operator
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any, ClassVar

import numpy as np

from gi_energy.config.genome import Genome
from gi_energy.meters.reading import Reading


class Diverged(Exception):  # noqa: N818 - a result, not an error: status "nan"
    """Raised by a task when training diverged (status ``nan``); the message says how."""


class TaskError(Exception):
    """A task broke the interface (a window opened twice, an inference pass that predicted
    nothing, metrics that are not numbers): the evaluation is ``failed`` with this reason."""


class InferenceWindow:
    """What ``trial.inference_window()`` yields: set ``samples`` to the number of samples
    predicted inside the window (inference energy is reported per 1000 samples)."""

    __slots__ = ("samples",)

    def __init__(self) -> None:
        self.samples = 0


class Trial:
    """One (configuration, repeat) being evaluated: what the task reads, and the two meter
    windows it may open once each.

    ``config``: every hyperparameter value by name, and every layer structure by its name
    as a tuple of per-layer sizes (e.g. ``config["hidden"] == (64, 32)``; a per-layer value
    as ``config["blocks.kernel"] == (3, 5)``, or all of a layer's values together from
    :meth:`layers`). ``seed``: the seed of this repeat (torch's default generator is
    already seeded with it). ``data``: what :meth:`Task.prepare` returned. ``device``: "cpu" or "cuda". ``extra``: numbers the
    task wants recorded with the evaluation (not objectives). ``metrics``: metrics the
    task knows early (e.g. ``params`` at build time); kept even if training diverges,
    and merged under what :meth:`Task.run` returns.
    """

    def __init__(self, *, genome: Genome, seed: int, device: str, data: Any, meter,
                 min_inference_s: float, sync: Callable[[], None] = lambda: None):
        self.genome = genome
        self.config: dict[str, Any] = {**{k: tuple(v) for k, v in genome.layers.items()}, **genome.values}
        self.seed = seed
        self.device = device
        self.data = data
        self.min_inference_s = float(min_inference_s)
        self.extra: dict[str, float] = {}
        # Metrics known before evaluate() (a model's size): kept when training diverges.
        self.metrics: dict[str, float] = {}
        self._meter = meter
        self._sync = sync
        self.train_reading: Reading | None = None
        self.train_time_s: float | None = None
        self.inference_reading: Reading | None = None
        self.inference_time_s: float | None = None
        self.inference_samples: int | None = None

    def layers(self, structure: str) -> list[dict[str, Any]]:
        """The layers of ``structure``, each as ``{"size": ..., <per-layer value>: ...}``."""
        prefix = structure + "."
        tracks = {k[len(prefix):]: v for k, v in self.genome.layers.items() if k.startswith(prefix)}
        return [{"size": size, **{name: values[i] for name, values in tracks.items()}}
                for i, size in enumerate(self.genome.layers.get(structure, ()))]

    @contextlib.contextmanager
    def training(self) -> Iterator[None]:
        """The training window: everything inside it is metered as training energy."""
        if self.train_reading is not None:
            raise TaskError("the training window was opened twice")
        self._sync()
        window = None
        try:
            with self._meter.window() as window:
                start = time.perf_counter()
                try:
                    yield
                    self._sync()
                finally:
                    self.train_time_s = time.perf_counter() - start
        finally:
            # Kept when the task raised (Diverged included): that energy was spent.
            if window is not None:
                self.train_reading = window.reading

    @contextlib.contextmanager
    def inference_window(self) -> Iterator[InferenceWindow]:
        """The inference window (low-level form): set ``samples`` on what it yields."""
        if self.inference_reading is not None:
            raise TaskError("the inference window was opened twice")
        handle = InferenceWindow()
        self._sync()
        with self._meter.window() as window:
            start = time.perf_counter()
            yield handle
            self._sync()
            elapsed = time.perf_counter() - start
        if int(handle.samples) <= 0:
            raise TaskError("the inference window predicted no samples (set samples on the window)")
        self.inference_reading = window.reading
        self.inference_time_s = elapsed
        self.inference_samples = int(handle.samples)

    def inference(self, one_pass: Callable[[], int]) -> None:
        """Run ``one_pass()`` (which returns the samples it predicted) repeatedly inside
        the inference window until ``min_inference_s`` has passed, at least once, so that
        even a tiny model gives a window long enough to meter."""
        with self.inference_window() as w:
            start = time.perf_counter()
            while True:
                n = sample_count(one_pass())
                self._sync()
                w.samples += n
                if time.perf_counter() - start >= self.min_inference_s:
                    break


def sample_count(n: Any) -> int:
    """``n`` as the number of samples an inference pass predicted: any integer, numpy's
    and torch's included (``np.int64(40)``, ``len(x)``), above 0; never a bool, whatever
    its type (True would read as one sample)."""
    if not is_bool(n):
        try:
            count = operator.index(n)
        except TypeError:
            count = None
        if count is not None and count > 0:
            return count
    raise TaskError(f"infer() must return the number of samples it predicted (an integer > 0), got {n!r}")


def is_bool(value: Any) -> bool:
    """Whether ``value`` is a boolean: Python's, numpy's ``bool_`` or a 0-d boolean array
    or tensor. Not a number to gi-energy, though each converts to 0 or 1."""
    if isinstance(value, bool | np.bool_):
        return True
    return str(getattr(value, "dtype", "")) in ("bool", "torch.bool")


class Task:
    """Base of every task: the built-in MLP and CNN, and a user's own (see the module
    docstring for the lifecycle and an example).

    Class attributes: ``metrics``, the names of the metrics :meth:`evaluate` returns
    beyond the built-in ones (each may then be an objective or a constraint);
    ``version``, a string that enters the store key (change it when code that the task
    imports changes; the source file defining the task is hashed in any case).
    """

    metrics: ClassVar[tuple[str, ...]] = ()
    version: ClassVar[str] = ""

    def prepare(self, dataset: Any, device: str) -> Any:
        """What the task reads as ``trial.data``, from the loaded dataset (numpy splits:
        ``x_train, y_train, x_val, y_val, x_test, y_test, n_classes, image_shape``).
        Called once per worker process and dataset, before any window. Default: as is."""
        return dataset

    def build(self, trial: Trial) -> Any:
        """Make the model for ``trial.config`` (not metered)."""
        raise NotImplementedError(f"{type(self).__name__} must define build() or run()")

    def train(self, model: Any, trial: Trial) -> None:
        """Train ``model``; runs inside the training window. Raise :class:`Diverged` if
        the loss diverged."""
        raise NotImplementedError(f"{type(self).__name__} must define train() or run()")

    def evaluate(self, model: Any, trial: Trial) -> Mapping[str, float]:
        """The trained model's metrics by name (not metered), e.g. ``{"accuracy": 0.93}``
        (validation accuracy, the name used in [objectives])."""
        raise NotImplementedError(f"{type(self).__name__} must define evaluate() or run()")

    def inference_context(self, model: Any, trial: Trial) -> contextlib.AbstractContextManager:
        """A context entered once around the warm-up and the whole inference window (for
        example ``torch.inference_mode()``), so that no pass pays for entering it."""
        return contextlib.nullcontext()

    def before_inference(self, model: Any, trial: Trial) -> None:
        """Warm-up outside the inference window (allocator, kernels). Default: nothing."""

    def infer(self, model: Any, trial: Trial) -> int:
        """One inference pass; runs inside the inference window, repeated until the window
        lasts ``min_inference_s``. Returns the number of samples it predicted."""
        raise NotImplementedError(f"{type(self).__name__} must define infer() or run()")

    def run(self, trial: Trial) -> Mapping[str, float]:
        """One evaluation: build, train (metered), evaluate, infer (metered). Override for
        several phases or an inference loop of your own, opening the trial's windows."""
        model = self.build(trial)
        with trial.training():
            self.train(model, trial)
        metrics = dict(self.evaluate(model, trial))
        with self.inference_context(model, trial):
            self.before_inference(model, trial)
            trial.inference(lambda: self.infer(model, trial))
        return metrics
