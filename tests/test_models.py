"""Model builders: both families build, shapes and sizes, the FLOPs convention."""

from __future__ import annotations

import pytest
import torch
from gi_energy.problems.models import MODEL_BUILDERS, build_model, count_params, flops_per_sample

from gi_energy.config.genome import Genome
from gi_energy.errors import ProblemError


def test_mlp_shapes_params_and_flops():
    g = Genome(layers={"hidden": (32, 16)}, values={"activation": "tanh", "dropout": 0.1})
    model = build_model("mlp", g, n_features=64, n_classes=10)
    assert model(torch.zeros(5, 64)).shape == (5, 10)
    assert count_params(model) == 64 * 32 + 32 + 32 * 16 + 16 + 16 * 10 + 10
    # 2 FLOPs per multiply-add of each Linear, biases not counted.
    assert flops_per_sample(model, 64) == 2 * (64 * 32 + 32 * 16 + 16 * 10)
    assert any(isinstance(m, torch.nn.Dropout) for m in model)


def test_mlp_without_hidden_layers_is_linear():
    model = build_model("mlp", Genome(layers={"hidden": ()}), n_features=4, n_classes=3)
    assert flops_per_sample(model, 4) == 2 * 4 * 3
    assert not any(isinstance(m, torch.nn.Dropout) for m in model)  # dropout 0 adds nothing


@pytest.mark.parametrize("pooling", ["max", "avg", "none"])
def test_cnn_same_padding_pooling_and_flops(pooling):
    g = Genome(layers={"conv": (4, 8), "hidden": (16,)},
               values={"kernel_size": 3, "pooling": pooling, "activation": "relu"})
    model = build_model("cnn", g, n_features=64, n_classes=10, image_shape=(1, 8, 8))
    assert model(torch.zeros(2, 64)).shape == (2, 10)
    side1, side2 = (4, 2) if pooling != "none" else (8, 8)
    # conv outputs are computed before pooling: block 1 is 8x8, block 2 is side1 x side1.
    conv = 2 * (1 * 9 * 4 * 8 * 8) + 2 * (4 * 9 * 8 * side1 * side1)
    dense = 2 * (8 * side2 * side2 * 16 + 16 * 10)
    assert flops_per_sample(model, 64) == conv + dense


def test_cnn_deeper_than_the_image_still_builds():
    g = Genome(layers={"conv": (2, 2, 2, 2, 2), "hidden": ()}, values={"pooling": "max", "kernel_size": 5})
    model = build_model("cnn", g, n_features=64, n_classes=10, image_shape=(1, 8, 8))
    assert model(torch.zeros(1, 64)).shape == (1, 10)


def test_unknown_names_list_the_valid_ones():
    with pytest.raises(ProblemError, match="valid: mlp, cnn"):
        build_model("rnn", Genome(), n_features=4, n_classes=2)
    with pytest.raises(ProblemError, match="relu"):
        build_model("mlp", Genome(layers={"hidden": (3,)}, values={"activation": "relux"}),
                    n_features=4, n_classes=2)
    assert set(MODEL_BUILDERS) == {"mlp", "cnn"}
