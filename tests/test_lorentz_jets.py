"""The toy top-tagging generator (mlpot.groups.jets) and the Lorentz-equivariant jet tagger
(mlpot.groups.lorentz_net). Accuracies: benchmarks/lorentz_jets/."""

import numpy as np
import pytest
import torch

from mlpot.groups import Lorentz
from mlpot.groups.jets import JetSample, jet_mass, make_jets, two_body_decay
from mlpot.groups.lorentz_net import LorentzMACE

METRIC = np.diag([1.0, -1.0, -1.0, -1.0])


def _random_frames(rng: np.random.Generator, count: int, rapidity: float):
    """Lorentz matrices [4, 4] from the group layer: a random rotation, then a boost of the given
    rapidity along a random direction."""
    group = Lorentz()
    for _ in range(count):
        direction = rng.normal(size=3)
        yield group.element(rng.normal(size=3), direction / np.linalg.norm(direction) * rapidity)


def _logits(model: torch.nn.Module, sample: JetSample) -> torch.Tensor:
    with torch.no_grad():
        return model(torch.tensor(sample.momenta), torch.tensor(sample.mask))


def _relative_change(model: LorentzMACE, sample: JetSample, moved: JetSample) -> float:
    """The larger relative change between two frames of the per-constituent invariants (order
    one, sensitive to every layer) and of the logits (which at initialisation vary little)."""
    with torch.no_grad():
        before = model.node_invariants(torch.tensor(sample.momenta), torch.tensor(sample.mask))
        after = model.node_invariants(torch.tensor(moved.momenta), torch.tensor(moved.mask))
    reference = _logits(model, sample)
    return max(
        ((after - before).abs().max() / before.abs().max()).item(),
        ((_logits(model, moved) - reference).abs().max() / reference.abs().max()).item(),
    )


@pytest.fixture(scope="module", params=[2, 3], ids=lambda order: f"correlation{order}")
def model(request) -> LorentzMACE:
    torch.manual_seed(0)
    return LorentzMACE(channels=8, correlation=request.param).double()


def test_generator_is_deterministic_padded_and_physical():
    sample = make_jets(400, seed=3)
    again = make_jets(400, seed=3)
    assert sample.momenta.shape == (400, 32, 4) and sample.mask.shape == (400, 32) and sample.label.shape == (400,)
    np.testing.assert_array_equal(sample.momenta, again.momenta)
    np.testing.assert_array_equal(sample.label, again.label)
    assert not np.array_equal(make_jets(400, seed=4).momenta, sample.momenta)
    assert sample.label.sum() == 200
    assert np.all(sample.momenta[~sample.mask] == 0.0)
    assert np.all(sample.mask[:, :-1] >= sample.mask[:, 1:])  # constituents first, then padding
    pt = np.hypot(sample.momenta[..., 1], sample.momenta[..., 2])
    assert np.all(np.diff(np.where(sample.mask, pt, -1.0), axis=1) <= 0)  # hardest first
    constituents = sample.momenta[sample.mask]
    np.testing.assert_allclose(constituents[:, 0], np.linalg.norm(constituents[:, 1:], axis=1), rtol=1e-12)  # massless
    mass = jet_mass(sample)
    assert 150 < np.median(mass[sample.label == 1]) < 185  # top peak, with tails from lost prongs
    assert np.median(mass[sample.label == 0]) < 100


def test_two_body_decay_conserves_four_momentum():
    rng = np.random.default_rng(0)
    p = rng.normal(size=(50, 3)) * 300
    parent = np.concatenate([np.sqrt((p**2).sum(axis=1) + 80.0**2)[:, None], p], axis=1)
    mass1, mass2 = rng.uniform(0, 30, 50), rng.uniform(0, 30, 50)
    first, second = two_body_decay(parent, mass1, mass2, rng.uniform(-1, 1, 50), rng.uniform(0, 6, 50))
    np.testing.assert_allclose(first + second, parent, rtol=0, atol=1e-9)
    np.testing.assert_allclose(np.einsum("na,ab,nb->n", first, METRIC, first), mass1**2, atol=1e-7)
    np.testing.assert_allclose(np.einsum("na,ab,nb->n", second, METRIC, second), mass2**2, atol=1e-7)


def test_invariant_under_boosts_and_rotations(model):
    """Well-conditioned momenta (massive, spread over all directions): exact invariance shows as
    agreement to round-off, 1e-8 relative at rapidity 3 (observed 1e-15 to 1e-13)."""
    rng = np.random.default_rng(1)
    p = rng.normal(size=(16, 12, 3)) * 100.0
    momenta = np.concatenate([np.sqrt((p**2).sum(axis=-1) + rng.uniform(20, 100, (16, 12)) ** 2)[..., None], p], axis=-1)
    mask = np.arange(12)[None, :] < rng.integers(2, 13, size=(16, 1))
    sample = JetSample(momenta * mask[..., None], mask, np.zeros(16, dtype=np.int64))
    for frame in _random_frames(rng, 3, rapidity=3.0):
        assert _relative_change(model, sample, sample.transformed(frame)) < 1e-8


def _pair_products(sample: JetSample) -> np.ndarray:
    """p_i . p_j [n_jets, N, N], ones where i == j or a slot is padding."""
    pairs = sample.mask[:, :, None] & sample.mask[:, None, :] & ~np.eye(sample.mask.shape[1], dtype=bool)
    return np.where(pairs, np.einsum("jna,ab,jmb->jnm", sample.momenta, METRIC, sample.momenta), 1.0)


def test_invariant_on_toy_jets_to_their_conditioning(model):
    """Toy jets at rapidity 3. Two nearly collinear massless constituents (angle theta) have
    p_i . p_j ~ E_i E_j theta^2 / 2; boosted by e^3 their components grow 20x while the product
    does not, so rounding the boosted momenta to float64 alone moves the product by ~1e-16 *
    e^6 / theta^2 relative (~1e-6 here). The model's outputs must move by no more than the
    inputs' invariants do (observed ~1e-9); a broken equivariance is off by far more."""
    sample = make_jets(64, seed=5)
    reference_pairs = _pair_products(sample)
    for frame in _random_frames(np.random.default_rng(2), 3, rapidity=3.0):
        moved = sample.transformed(frame)
        conditioning = np.abs(_pair_products(moved) / reference_pairs - 1.0).max()  # ~1e-6
        assert conditioning < 1e-5
        assert _relative_change(model, sample, moved) < conditioning


def test_padding_and_order_of_constituents_do_not_matter(model):
    sample = make_jets(16, seed=6)
    reference = _logits(model, sample)
    garbage = sample.momenta + 37.0 * (~sample.mask)[..., None]  # padded slots filled with junk
    permutation = np.random.default_rng(3).permutation(sample.mask.shape[1])
    shuffled = JetSample(garbage[:, permutation], sample.mask[:, permutation], sample.label)
    torch.testing.assert_close(_logits(model, shuffled), reference, rtol=1e-12, atol=1e-12)


def test_training_steps_decrease_the_loss():
    torch.manual_seed(0)
    model = LorentzMACE(channels=8, correlation=3)
    sample = make_jets(64, seed=7)
    momenta, mask = torch.tensor(sample.momenta, dtype=torch.float32), torch.tensor(sample.mask)
    labels = torch.tensor(sample.label, dtype=torch.float32)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(8):
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(momenta, mask), labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]
