"""The default network, input standardisation, and the logit model around them.

Estimators accept any ``torch.nn.Module`` that maps a float32 batch of
shape (B, D) to logits of shape (B,) or (B, 1). The default is an
:class:`MLP`. Inputs are standardised by a :class:`Standardizer` whose
mean and scale are stored as buffers, so they travel with the weights.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import nn

from quasiratio.errors import InputError

#: Activation functions an :class:`MLP` can be built with, by name.
ACTIVATIONS = {
    "silu": nn.SiLU,
    "relu": nn.ReLU,
    "tanh": nn.Tanh,
    "gelu": nn.GELU,
    "elu": nn.ELU,
    "leaky_relu": nn.LeakyReLU,
}


class MLP(nn.Module):
    """Fully connected network with one logit output.

    ``hidden`` lists the width of each hidden layer.
    """

    def __init__(
        self, n_in: int, hidden: Sequence[int] = (64, 64, 64), activation: str = "silu"
    ) -> None:
        super().__init__()
        if activation not in ACTIVATIONS:
            raise InputError(
                f"activation {activation!r} is not one of {sorted(ACTIVATIONS)}"
            )
        hidden = tuple(int(h) for h in hidden)
        if int(n_in) < 1 or any(h < 1 for h in hidden):
            raise InputError(
                f"MLP needs n_in >= 1 and positive hidden widths, got n_in={n_in}, "
                f"hidden={list(hidden)}"
            )
        self.n_in = int(n_in)
        self.hidden = hidden
        self.activation = activation
        layers: list[nn.Module] = []
        width = self.n_in
        for h in hidden:
            layers += [nn.Linear(width, h), ACTIVATIONS[activation]()]
            width = h
        layers.append(nn.Linear(width, 1))
        self.layers = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x).squeeze(-1)

    def spec(self) -> dict:
        """JSON description from which :meth:`from_spec` rebuilds the network."""
        return {
            "kind": "mlp",
            "n_in": self.n_in,
            "hidden": list(self.hidden),
            "activation": self.activation,
        }

    @classmethod
    def from_spec(cls, spec: dict) -> MLP:
        return cls(int(spec["n_in"]), tuple(spec["hidden"]), str(spec["activation"]))


class Standardizer(nn.Module):
    """Affine map (x - mean) / scale with mean and scale fitted on weighted events.

    The moments are taken with |w|. A signed-weight variance
    sum w (x - mean)^2 / sum w can be negative or divide by a sum near
    zero, and standardisation needs only the location and width of the
    region the events cover, which |w| describes. A feature with zero
    spread gets scale 1, so it passes through shifted only.
    """

    def __init__(self, n_features: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(n_features))

    def fit(self, x: np.ndarray, sample_weight: np.ndarray) -> Standardizer:
        w = np.abs(np.asarray(sample_weight, dtype=np.float64))
        total = float(w.sum())
        if not total > 0:
            raise InputError(
                "cannot standardise features: every event weight is zero; "
                "pass events with non-zero weights"
            )
        x = np.asarray(x, dtype=np.float64)
        mean = (w @ x) / total
        var = (w @ (x - mean) ** 2) / total
        std = np.sqrt(var)
        std[~(std > 0)] = 1.0
        self.mean.copy_(torch.as_tensor(mean, dtype=self.mean.dtype))
        self.scale.copy_(torch.as_tensor(std, dtype=self.scale.dtype))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.scale


class LogitModel(nn.Module):
    """A network behind a :class:`Standardizer`, returning logits of shape (B,)."""

    def __init__(self, network: nn.Module, standardizer: Standardizer) -> None:
        super().__init__()
        self.standardizer = standardizer
        self.network = network

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.network(self.standardizer(x))
        if z.dim() == 2 and z.shape[1] == 1:
            z = z[:, 0]
        if z.dim() != 1:
            raise InputError(
                f"the network returned logits of shape {tuple(z.shape)} for a batch "
                f"of shape {tuple(x.shape)}; it must return one logit per event, "
                "shape (B,) or (B, 1)"
            )
        return z


def network_spec(network: nn.Module) -> dict:
    """JSON description of ``network``: a full spec for an MLP, the class otherwise."""
    if isinstance(network, MLP):
        return network.spec()
    cls = type(network)
    return {"kind": "custom", "class": f"{cls.__module__}.{cls.__qualname__}"}


def build_network(spec: dict, network: nn.Module | None = None) -> nn.Module:
    """Rebuild a network from :func:`network_spec`; a custom one must be passed in."""
    if spec.get("kind") == "mlp":
        return MLP.from_spec(spec)
    if network is None:
        raise InputError(
            f"the saved model uses a custom network {spec.get('class')!r}; pass an "
            "untrained instance of it as network= when loading"
        )
    return network
