"""Per-shell SURE-LET refinement of x_hat (cryofm.prior.sure), with stand-in 'networks' whose
errors are known: a field of known spectrum, a linear estimator that is wrong for it, and the
oracle Wiener filter itself."""

from __future__ import annotations

import pytest
import torch

from cryofm.prior import Prior
from cryofm.prior._quality import oracle_wiener
from cryofm.prior.sure import T_FULL, T_MIN, T_OFF, refine_weight, sure_let

N = 32


def _field(seed: int, batch: int = 2) -> torch.Tensor:
    """Gaussian random fields [B, 1, N, N, N] whose power falls 100-fold from low to high shells."""
    gen = torch.Generator().manual_seed(seed)
    white = torch.randn(batch, N, N, N, generator=gen, dtype=torch.float64)
    k = torch.sqrt(torch.fft.fftfreq(N)[:, None, None] ** 2 + torch.fft.fftfreq(N)[None, :, None] ** 2
                   + torch.fft.rfftfreq(N)[None, None, :] ** 2)
    amp = torch.exp(-((k / 0.12) ** 2)) + 0.02
    x = torch.fft.irfftn(torch.fft.rfftn(white, dim=(-3, -2, -1)) * amp, s=(N, N, N), dim=(-3, -2, -1))
    x = (x - x.mean(dim=(-3, -2, -1), keepdim=True)) / x.std(dim=(-3, -2, -1), keepdim=True)
    return x[:, None].float()


def _path(x: torch.Tensor, t: float, seed: int = 1) -> torch.Tensor:
    e = torch.randn(x.shape, generator=torch.Generator().manual_seed(seed))
    return (1 - t) * x + t * e


class Counting:
    """A 'network' x_t -> x_hat that counts its calls."""

    def __init__(self, fn):
        self.fn, self.calls = fn, 0

    def __call__(self, x_t):
        self.calls += 1
        return self.fn(x_t)


def _mse(a, b) -> float:
    return float(((a - b) ** 2).sum())


def test_refinement_repairs_an_estimator_that_invents_high_frequencies():
    # a 'network' that keeps every shell of y = x_t / (1-t): unbiased, but it passes all the noise,
    # like a model that puts detail where the data have none
    x, t = _field(0), 0.5
    x_t = _path(x, t)
    net = Counting(lambda z: z / (1 - t))
    refined = sure_let(net, x_t, torch.full((2,), t), net(x_t))
    wiener = oracle_wiener(x[:, 0], x_t[:, 0], t)[:, None]
    raw = _mse(x_t / (1 - t), x)
    assert raw > 3 * _mse(wiener, x)
    # per shell the refinement is the Wiener filter with the spectrum estimated from x_t alone
    assert _mse(refined, x) < 1.1 * _mse(wiener, x)
    assert net.calls == 2  # the estimate itself, then one probed call


def test_refinement_keeps_a_good_estimator():
    x, t = _field(2), 0.4
    x_t = _path(x, t, seed=3)

    def wiener(z):  # the oracle Wiener filter as the 'network': nothing per shell to gain
        return oracle_wiener(x[:, 0], z[:, 0], t)[:, None]

    refined = sure_let(wiener, x_t, torch.full((2,), t), wiener(x_t))
    assert _mse(refined, x) < 1.03 * _mse(wiener(x_t), x)


def test_refinement_is_deterministic_and_faded_out_near_t_0_and_1():
    x = _field(4, batch=1)
    for t in (0.3, 0.93):
        x_t = _path(x, t)
        net = lambda z, t=t: 0.5 * z  # noqa: E731
        a = sure_let(net, x_t, torch.tensor([t]), net(x_t))
        b = sure_let(net, x_t, torch.tensor([t]), net(x_t))
        assert torch.equal(a, b)
    for t in (0.0, T_MIN / 2, (T_OFF + 1) / 2, 1.0):
        net = Counting(lambda z: 0.5 * z)
        x_t = _path(x, t)
        x_hat = net(x_t)
        assert sure_let(net, x_t, torch.tensor([t]), x_hat) is x_hat and net.calls == 1
    w = refine_weight(torch.tensor([0.0, T_MIN, 0.5, T_FULL, (T_FULL + T_OFF) / 2, T_OFF, 1.0]))
    torch.testing.assert_close(w, torch.tensor([0.0, 1.0, 1.0, 1.0, 0.5, 0.0, 0.0]))


def test_refinement_per_batch_item_and_on_a_box_that_is_not_cubic():
    gen = torch.Generator().manual_seed(5)
    x = torch.randn(2, 1, 16, 24, 32, generator=gen)
    t = torch.tensor([0.5, 0.99])  # the second item is past T_OFF: left as it is
    x_t = (1 - t.view(-1, 1, 1, 1, 1)) * x + t.view(-1, 1, 1, 1, 1) * torch.randn(x.shape, generator=gen)
    net = lambda z: 0.3 * z  # noqa: E731
    x_hat = net(x_t)
    refined = sure_let(net, x_t, t, x_hat)
    assert refined.shape == x.shape
    torch.testing.assert_close(refined[1], x_hat[1], atol=1e-5, rtol=1e-5)
    assert not torch.allclose(refined[0], x_hat[0], atol=1e-3)


def test_prior_velocity_refine_switch():
    prior = Prior.from_config("tiny", seed=0)
    with torch.no_grad():  # a non-trivial network: the fresh one is the linear white-spectrum estimate
        for p in prior.net.parameters():
            p.add_(0.05 * torch.randn(p.shape, generator=torch.Generator().manual_seed(p.numel())))
    x = _path(_field(6, batch=1), 0.5)
    plain = prior.velocity(x, 0.5, refine=False)
    refined = prior.velocity(x, 0.5)
    assert prior.refine and not torch.allclose(plain, refined)
    prior.refine = False
    torch.testing.assert_close(prior.velocity(x, 0.5), plain)
    prior.refine = True
    torch.testing.assert_close(prior.x_hat(x, 0.5), x - 0.5 * refined)
    torch.testing.assert_close(prior.velocity(x, 0.0), prior.velocity(x, 0.0, refine=False))


@pytest.mark.parametrize("sampler", ["dc", "fps"])
def test_restoration_samplers_use_the_network_alone(sampler, monkeypatch):
    """dc's deterministic flow feeds noise-free x_t, outside SURE's noise model: the samplers ask
    for refine=False (and the error table they use is measured that way)."""
    from cryofm.operators import DenoiseOperator
    from cryofm.sampling import sample_dc, sample_fps

    prior = Prior.from_config("tiny", seed=0)
    seen = []
    velocity = prior.velocity

    def spy(x, t, *, refine=None):
        seen.append(refine)
        return velocity(x, t, refine=refine)

    monkeypatch.setattr(prior, "velocity", spy)
    op = DenoiseOperator((16, 16, 16), torch.ones(9))
    y_f = torch.fft.rfftn(torch.randn(1, 1, 16, 16, 16), dim=(-3, -2, -1), norm="ortho")
    run = sample_dc if sampler == "dc" else sample_fps
    run(prior, op, y_f, torch.linspace(1, 0, 3))
    assert seen and all(r is False for r in seen)
    if sampler == "dc":  # and refine=True where asked (posterior samples with fresh noise)
        seen.clear()
        sample_dc(prior, op, y_f, torch.linspace(1, 0, 3), eta=1.0, refine=True)
        assert seen == [True, True]


@pytest.mark.parametrize("task, samples, sampler, refined", [
    ("wedge", 1, "dc", False), ("wedge", 2, "dc", True), ("wedge", 2, "fps", False), ("denoise", 2, "dc", False)])
def test_restoration_refines_only_dc_posterior_samples_with_fresh_noise(task, samples, sampler, refined, monkeypatch):
    """The API asks for the refined velocity exactly where the network's inputs follow SURE's noise
    model: dc's posterior samples that draw fresh noise at every step (eta 1: the wedge's)."""
    import cryofm
    from cryofm.restore.pipeline import POSTERIOR_ETA, Settings

    eta = POSTERIOR_ETA.get((task, sampler), 0.0) if samples > 1 else 0.0
    assert Settings(sampler=sampler, samples=samples, eta=eta).refine is refined
    assert Settings(samples=2, eta=0.5).refine is False and Settings(samples=1, eta=1.0).refine is False
    seen = []
    velocity = Prior.velocity

    def spy(self, x, t, *, refine=None):
        seen.append(refine)
        return velocity(self, x, t, refine=refine)

    monkeypatch.setattr(Prior, "velocity", spy)
    x = _field(7, batch=1)[0, 0].numpy()
    restore = cryofm.complete_wedge if task == "wedge" else cryofm.denoise
    restore(x, voxel_size=1.5, prior=Prior.from_config("tiny", seed=0), sampler=sampler, samples=samples, steps=2,
            device="cpu")
    assert seen and set(seen) == {refined}
