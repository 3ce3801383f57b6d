"""A task of its own for gi-energy: a small residual CNN, trained with a plain PyTorch
loop, scored by validation accuracy and macro-F1, with its size as params.

gi-energy meters train() and infer(); nothing here touches energy.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

import gi_energy


class Block(nn.Module):
    """conv-BN-ReLU-conv-BN plus the input (a 1x1 projection when channels change)."""

    def __init__(self, c_in: int, c_out: int, kernel: int = 3):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, kernel, padding=kernel // 2, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.skip = nn.Identity() if c_in == c_out else nn.Conv2d(c_in, c_out, 1, bias=False)

    def forward(self, x):
        y = F.relu(self.bn1(self.conv1(x)))
        return F.relu(self.bn2(self.conv2(y)) + self.skip(x))


class ResidualNet(nn.Module):
    def __init__(self, in_shape, blocks, n_classes: int):
        """``blocks``: one ``{"size": channels, "kernel": k}`` per residual block."""
        super().__init__()
        c, self.h, self.w = in_shape
        layers = []
        for block in blocks:
            layers.append(Block(c, block["size"], block.get("kernel", 3)))
            c = block["size"]
        self.blocks = nn.Sequential(*layers)
        self.head = nn.Linear(c, n_classes)
        self.in_shape = in_shape

    def forward(self, x):
        x = self.blocks(x.view(-1, *self.in_shape))
        return self.head(x.mean(dim=(2, 3)))


class ResidualCNN(gi_energy.Task):
    """Residual blocks (the structure ``blocks``: a width and a kernel size per block),
    Adam, cross-entropy."""

    metrics = ("macro_f1",)
    version = "1"

    def prepare(self, dataset, device):
        t = {k: torch.as_tensor(getattr(dataset, k)).to(device)
             for k in ("x_train", "y_train", "x_val", "y_val", "x_test", "y_test")}
        t["shape"], t["classes"] = dataset.image_shape, dataset.n_classes
        # Warm torch up once per worker (kernels, allocator), outside every meter window,
        # so the first evaluation in a process is not charged for it.
        net = ResidualNet(t["shape"], [{"size": 4}], t["classes"]).to(device)
        F.cross_entropy(net(t["x_train"][:8]), t["y_train"][:8]).backward()
        return t

    def build(self, trial):
        d = trial.data
        model = ResidualNet(d["shape"], trial.layers("blocks"), d["classes"]).to(trial.device)
        trial.metrics["params"] = sum(p.numel() for p in model.parameters())
        return model

    def train(self, model, trial):
        d, cfg = trial.data, trial.config
        opt = torch.optim.Adam(model.parameters(), lr=cfg["learning_rate"])
        gen = torch.Generator().manual_seed(trial.seed)
        n = len(d["y_train"])
        model.train()
        for _ in range(cfg["epochs"]):
            for idx in torch.randperm(n, generator=gen).split(cfg["batch_size"]):
                opt.zero_grad()
                loss = F.cross_entropy(model(d["x_train"][idx]), d["y_train"][idx])
                if not torch.isfinite(loss):
                    raise gi_energy.Diverged(f"loss became {loss.item()}")
                loss.backward()
                opt.step()

    def evaluate(self, model, trial):
        d = trial.data
        model.eval()
        with torch.inference_mode():
            pred = model(d["x_val"]).argmax(dim=1)
        y = d["y_val"]
        f1s = []
        for k in range(d["classes"]):
            tp = int(((pred == k) & (y == k)).sum())
            fp = int(((pred == k) & (y != k)).sum())
            fn = int(((pred != k) & (y == k)).sum())
            f1s.append(0.0 if tp == 0 else 2 * tp / (2 * tp + fp + fn))
        return {"accuracy": float((pred == y).float().mean()), "macro_f1": sum(f1s) / len(f1s)}

    def inference_context(self, model, trial):
        model.eval()
        return torch.inference_mode()

    def infer(self, model, trial):
        model(trial.data["x_test"])
        return len(trial.data["y_test"])
