import numpy as np
import pytest
import torch

from quasiratio.errors import InputError
from quasiratio.losses import (
    alice_loss,
    carl_loss,
    carl_ratio,
    joint_revert_loss,
    revert_loss,
    revert_ratio,
)
from quasiratio.networks import MLP
from quasiratio.training import batch_loss

LABELLED = {"carl": carl_loss, "revert": revert_loss}
SOFT = {"alice": alice_loss, "joint_revert": joint_revert_loss}


def _expected_loss_gradient(loss, z, q1, p0):
    """d/dz of q1 l(z, 1) + p0 l(z, 0) in float64, by autograd."""
    z = torch.tensor(z, dtype=torch.float64, requires_grad=True)
    total = q1 * loss(z, torch.ones(1)) + p0 * loss(z, torch.zeros(1))
    total.sum().backward()
    return float(z.grad)


@pytest.mark.parametrize("name", sorted({**LABELLED, **SOFT}))
def test_losses_finite_at_large_logits(name):
    loss = {**LABELLED, **SOFT}[name]
    z = torch.tensor([-100.0, -30.0, 0.0, 30.0, 100.0], requires_grad=True)
    target = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0])
    values = loss(z, target)
    values.sum().backward()
    assert values.dtype == torch.float32
    assert values.shape == (5,)
    assert torch.isfinite(values).all()
    assert torch.isfinite(z.grad).all()


def test_carl_loss_matches_bce_with_logits():
    z = torch.linspace(-20, 20, 41)
    y = (torch.arange(41) % 2).float()
    reference = torch.nn.functional.binary_cross_entropy_with_logits(z, y, reduction="none")
    assert torch.allclose(carl_loss(z, y), reference, atol=1e-6)


@pytest.mark.parametrize("r", [0.05, 0.7, 1.0, 3.0, 40.0])
def test_carl_minimum_at_log_ratio(r):
    assert _expected_loss_gradient(carl_loss, np.log(r), r, 1.0) == pytest.approx(0, abs=1e-12)


@pytest.mark.parametrize("r", [-30.0, -1.5, -0.2, 0.0, 0.3, 1.0, 2.5, 50.0])
def test_revert_minimum_at_minus_asinh(r):
    # r = -2 sinh(z) at the minimum, so z = -asinh(r / 2); q1 = r may be negative.
    z_min = -np.arcsinh(r / 2)
    assert _expected_loss_gradient(revert_loss, z_min, r, 1.0) == pytest.approx(0, abs=1e-12)


@pytest.mark.parametrize("r", [-30.0, -0.2, 0.0, 2.5])
def test_revert_objective_convex_in_s(r):
    # Convex in s = sigmoid(z) for a signed numerator q1 = r and p0 = 1.
    s = torch.linspace(0.01, 0.99, 99, dtype=torch.float64)
    z = torch.log(s) - torch.log1p(-s)
    n = len(s)
    expected = r * revert_loss(z, torch.ones(n)) + revert_loss(z, torch.zeros(n))
    second_difference = expected[2:] - 2 * expected[1:-1] + expected[:-2]
    assert (second_difference > 0).all()


def test_revert_ratio_equals_probability_form():
    z = torch.linspace(-15, 15, 61, dtype=torch.float64)
    s = torch.sigmoid(z)
    assert torch.allclose(revert_ratio(z), 1 / s + 1 / (s - 1), rtol=1e-9, atol=1e-9)
    assert torch.allclose(carl_ratio(z), s / (1 - s), rtol=1e-9)


def test_revert_ratio_accurate_near_zero():
    z = torch.tensor([1e-12], dtype=torch.float64)
    assert float(revert_ratio(z)) == pytest.approx(-2e-12, rel=1e-12)


@pytest.mark.parametrize("r", [-4.0, 0.0, 0.5, 3.0])
def test_joint_revert_minimum_at_minus_asinh(r):
    z = torch.tensor(-np.arcsinh(r / 2), dtype=torch.float64, requires_grad=True)
    joint_revert_loss(z, torch.tensor(r, dtype=torch.float64)).sum().backward()
    assert float(z.grad) == pytest.approx(0, abs=1e-12)


@pytest.mark.parametrize("r", [0.1, 1.0, 7.0])
def test_alice_minimum_on_both_classes(r):
    # Events of both classes with r_xz = r: the soft label is the same for all,
    # so the minimum is at s = r / (1 + r), that is z = log r.
    z = torch.tensor(np.log(r), dtype=torch.float64, requires_grad=True)
    alice_loss(z, torch.tensor(r, dtype=torch.float64)).sum().backward()
    assert float(z.grad) == pytest.approx(0, abs=1e-12)


def test_alice_rejects_negative_joint_ratio():
    with pytest.raises(InputError, match="joint_revert_loss"):
        alice_loss(torch.zeros(3), torch.tensor([1.0, -0.5, 2.0]))


def test_losses_promote_bfloat16():
    z = torch.tensor([0.3, -2.0], dtype=torch.bfloat16)
    assert revert_loss(z, torch.tensor([1.0, 0.0])).dtype == torch.float32


def _grad_norm(weights):
    torch.manual_seed(0)
    network = MLP(1, (16, 16))
    x = torch.tensor([[0.1], [-0.4], [0.7], [1.2]])
    w = torch.tensor(weights)
    y = torch.tensor([1.0, 1.0, 1.0, 1.0])
    loss = batch_loss(revert_loss(network(x), y), w, n_events=4)
    loss.backward()
    norm = torch.sqrt(sum((p.grad**2).sum() for p in network.parameters()))
    return float(loss.detach()), float(norm)


def test_cancelling_batch_has_ordinary_gradient():
    # sum w = 0.001: dividing by the batch weight sum would scale the loss by 1000.
    loss, norm = _grad_norm([1.0, 1.0, -1.0, -0.999])
    _, reference = _grad_norm([1.0, 1.0, 1.0, 1.0])
    assert np.isfinite(loss)
    assert abs(loss) < 10
    assert np.isfinite(norm)
    assert norm < 10 * reference


def test_loss_unchanged_by_cancelling_pair():
    z = torch.tensor([0.2, -1.3, 2.0])
    y = torch.tensor([1.0, 0.0, 1.0])
    w = torch.tensor([0.5, 1.5, 2.0])
    base = batch_loss(carl_loss(z, y), w, n_events=3, batch_events=3)
    z2 = torch.cat([z, torch.tensor([0.9, 0.9])])
    y2 = torch.cat([y, torch.tensor([1.0, 1.0])])
    w2 = torch.cat([w, torch.tensor([0.8, -0.8])])
    # A full batch of the larger set estimates its full sum with factor 1.
    extended = batch_loss(carl_loss(z2, y2), w2, n_events=5, batch_events=5)
    assert float(extended) == pytest.approx(float(base), rel=1e-6)


def test_integer_weight_equals_copies():
    z = torch.tensor([0.2, -1.3])
    y = torch.tensor([1.0, 0.0])
    weighted = batch_loss(revert_loss(z, y), torch.tensor([3.0, 1.0]), 2)
    copies = batch_loss(
        revert_loss(z[[0, 0, 0, 1]], y[[0, 0, 0, 1]]), torch.ones(4), 4
    )
    assert float(weighted) == pytest.approx(float(copies), rel=1e-6)
