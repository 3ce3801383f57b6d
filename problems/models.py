"""Model builders: a genome becomes a PyTorch module, plus its size and cost per sample.

``MODEL_BUILDERS`` is keyed by the ``[model] family`` names of problem files. Every builder
takes the genome and the data's shape and returns an ``nn.Module`` mapping a batch of flat
feature rows ``(N, n_features)`` to class logits ``(N, n_classes)``; a CNN reshapes the rows
to ``image_shape`` itself, so training code never cares which family it runs.

FLOPs convention (``flops_per_sample``): 2 FLOPs per multiply-add of every ``nn.Linear``
and ``nn.Conv2d`` layer, for one sample in inference; bias additions, activations,
pooling and dropout are not counted. This is the usual "2 x MACs" figure, so it can be
compared with published model costs.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import nn

from gi_energy.config.genome import Genome
from gi_energy.errors import ProblemError, did_you_mean

ACTIVATIONS: dict[str, Callable[[], nn.Module]] = {
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "sigmoid": nn.Sigmoid,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
}
POOLINGS: dict[str, Callable[[], nn.Module] | None] = {
    "max": lambda: nn.MaxPool2d(2),
    "avg": lambda: nn.AvgPool2d(2),
    "none": None,
}


def _lookup(registry: dict, name: str, what: str):
    if name not in registry:
        raise ProblemError("", what, f"unknown {what} {name!r}" + did_you_mean(str(name), registry)
                           + f"; valid: {', '.join(registry)}")
    return registry[name]


def _dense_head(widths, n_in: int, n_classes: int, activation: str, dropout: float) -> list[nn.Module]:
    act = _lookup(ACTIVATIONS, activation, "activation")
    layers: list[nn.Module] = []
    for width in widths:
        layers += [nn.Linear(n_in, width), act()]
        # Dropout(0) is still a module call per batch; skip it when it does nothing.
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        n_in = width
    layers.append(nn.Linear(n_in, n_classes))
    return layers


def build_mlp(genome: Genome, *, n_features: int, n_classes: int,
              image_shape: tuple[int, ...] | None = None) -> nn.Module:
    """Dense layers of widths ``genome.layers["hidden"]`` (may be empty: a linear model)."""
    values = genome.values
    return nn.Sequential(*_dense_head(
        genome.layers.get("hidden", ()), n_features, n_classes,
        values.get("activation", "relu"), float(values.get("dropout", 0.0)),
    ))


def build_cnn(genome: Genome, *, n_features: int, n_classes: int,
              image_shape: tuple[int, ...] | None = None) -> nn.Module:
    """Conv blocks (channels ``genome.layers["conv"]``, same padding, activation, pooling)
    on ``image_shape`` (C, H, W), then the dense head ``genome.layers["hidden"]``."""
    if image_shape is None:
        raise ProblemError("", "model.family", '"cnn" needs image-shaped data (set [dataset] image_shape)')
    channels, height, width = image_shape
    if channels * height * width != n_features:
        raise ProblemError("", "dataset.image_shape",
                           f"{image_shape} has {channels * height * width} values, rows have {n_features}")
    values = genome.values
    act = _lookup(ACTIVATIONS, values.get("activation", "relu"), "activation")
    pool = _lookup(POOLINGS, values.get("pooling", "max"), "pooling")
    kernel = int(values.get("kernel_size", 3))
    blocks: list[nn.Module] = [nn.Unflatten(1, (channels, height, width))]
    c_in = channels
    for c_out in genome.layers.get("conv", ()):
        blocks += [nn.Conv2d(c_in, c_out, kernel, padding="same"), act()]
        # Pooling halves the image; once it is down to a pixel, more blocks keep its size
        # instead of failing, so every genome of the space builds.
        if pool is not None and height >= 2 and width >= 2:
            blocks.append(pool())
            height, width = height // 2, width // 2
        c_in = c_out
    blocks.append(nn.Flatten())
    blocks += _dense_head(genome.layers.get("hidden", ()), c_in * height * width, n_classes,
                          values.get("activation", "relu"), float(values.get("dropout", 0.0)))
    return nn.Sequential(*blocks)


MODEL_BUILDERS: dict[str, Callable[..., nn.Module]] = {
    "mlp": build_mlp,
    "cnn": build_cnn,
}


def build_model(family: str, genome: Genome, *, n_features: int, n_classes: int,
                image_shape: tuple[int, ...] | None = None) -> nn.Module:
    """The module for ``family``; an unknown family names the valid ones."""
    builder = _lookup(MODEL_BUILDERS, family, "model family")
    return builder(genome, n_features=n_features, n_classes=n_classes, image_shape=image_shape)


def count_params(model: nn.Module) -> int:
    """Number of trainable parameters (weights and biases)."""
    return int(sum(p.numel() for p in model.parameters() if p.requires_grad))


def flops_per_sample(model: nn.Module, n_features: int) -> int:
    """FLOPs of one inference sample: 2 x multiply-adds of Linear and Conv2d layers.

    Traced with forward hooks on one zero sample, so the spatial sizes after padding and
    pooling are the ones the model really computes.
    """
    total = 0

    def on_linear(module: nn.Linear, inputs, output):
        nonlocal total
        total += 2 * module.in_features * module.out_features * (output.numel() // module.out_features)

    def on_conv(module: nn.Conv2d, inputs, output):
        nonlocal total
        kh, kw = module.kernel_size
        macs_per_output = (module.in_channels // module.groups) * kh * kw
        total += 2 * macs_per_output * output.numel()

    hooks = []
    for m in model.modules():
        if isinstance(m, nn.Linear):
            hooks.append(m.register_forward_hook(on_linear))
        elif isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(on_conv))
    was_training = model.training
    try:
        model.eval()
        param = next(model.parameters(), None)
        device = param.device if param is not None else "cpu"
        with torch.inference_mode():
            model(torch.zeros(1, n_features, device=device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return int(total)
