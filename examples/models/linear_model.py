"""A model plugin: one linear layer with class logits, scaled targets and a log-variance."""

import numpy as np

from streamal.train.model import ModelPlugin
from streamal.train.targets import metric_name, regression_scale


class LinearModel(ModelPlugin):
    name = "linear"
    uncertainties = frozenset({"variance", "entropy"})  # what uncertainty() returns

    def __init__(self, space, input_shape, **options):
        super().__init__(space, input_shape, **options)
        self.targets, self.low, self.high = regression_scale(space)
        self.columns = [space.param_names.index(p) for p in self.targets]
        self.k = len(space.classes)

    def build(self):
        from torch import nn

        width = int(np.prod(self.input_shape))
        return nn.Sequential(nn.Flatten(), nn.Linear(width, self.k + len(self.targets) + 1))

    def encode_targets(self, classes, params):
        scaled = (params[:, self.columns] - self.low) / (self.high - self.low)
        return scaled.astype(np.float32)

    def _split(self, out):
        return out[:, : self.k], out[:, self.k : -1], out[:, -1]

    def loss(self, output, classes, targets):
        import torch.nn.functional as F

        logits, y, log_var = self._split(output)
        ce, sq = F.cross_entropy(logits, classes), ((y - targets) ** 2).sum(dim=1)
        nll = (sq * (-log_var).exp() + log_var).mean()
        return ce + nll, {"class_loss": ce.item(), "nll": nll.item()}

    def metrics(self, output, classes, targets):
        import torch.nn.functional as F

        logits, y, _ = self._split(output)
        err = (y - targets).abs().numpy() * (self.high - self.low)
        out = {
            "class_loss": float(F.cross_entropy(logits, classes)),
            "accuracy": float((logits.argmax(dim=1) == classes).float().mean()),
            "mse": float(((y - targets) ** 2).sum(dim=1).mean()),
        }
        for j, p in enumerate(self.targets):
            out[metric_name(self.space, "mae", p)] = float(err[:, j].mean())  # e.g. mae_width_m
        return out

    def uncertainty(self, output):
        import torch

        logits, _, log_var = self._split(output)
        p = torch.softmax(logits, dim=1)
        entropy = -(p * p.clamp_min(1e-12).log()).sum(dim=1)
        return {"variance": log_var.exp().numpy(), "entropy": entropy.numpy()}

    def predict(self, output):  # optional: the report's predicted-vs-true plots
        import torch

        logits, y, log_var = self._split(output.double())
        span = self.high - self.low
        sigma = (0.5 * log_var).exp().numpy()[:, None] * span  # one σ, scaled per parameter
        return {
            "class_probabilities": torch.softmax(logits, dim=1).numpy(),
            "params": y.numpy() * span + self.low,
            "params_sigma": sigma,
        }
