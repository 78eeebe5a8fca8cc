"""Make a clean simulated patch look like a deposited cryo-EM map, before standardisation.

Simulated density (gemmi, positive, flat zero solvent, smooth Gaussian fall-off of the spectrum)
differs from what users restore in ways a prior trained only on simulations cannot know:

- deposited maps are low-pass filtered at their FSC resolution (3 to 10 A and beyond), with
  nothing in the Fourier corners;
- they are sharpened (negative B), which raises the band below the cut-off and, with the cut-off,
  leaves negative ripples around density;
- their lowest shells are damped or distorted (masking, solvent flattening, CTF correction);
- their solvent is not flat: noise that survived averaging, white up to its own cut-off, which
  lies between the map's Nyquist and its resolution (an unfiltered average keeps noise to
  Nyquist; a post-processed map is filtered with the signal).

`map_like` applies one random draw of these four, with physically plausible ranges, to the raw
patch; the training loop standardises the result as usual.  All randomness comes from the
caller's torch generator, so a resumed run repeats an uninterrupted one exactly.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from cryofm.fourier import radial_frequency

__all__ = ["MapLikeDraw", "draw_map_like", "map_like"]


@dataclass(frozen=True)
class MapLikeDraw:
    """One draw of the degradations (all in A or A^2; fractions in [0, 1])."""

    resolution: float  # low-pass cut-off d (A): the raised-cosine edge is centred on 1/d
    edge: float  # width of the edge as a fraction of 1/d
    b_factor: float  # exp(-B s^2 / 4); negative sharpens
    low_damp: float  # lowest shells multiplied by 1 - low_damp * exp(-(s d_low)^2)
    low_scale: float  # d_low (A): how far the damping reaches
    noise: float  # std of added band-limited noise, relative to the filtered signal's std
    noise_resolution: float | None = None  # noise cut-off (A); None: the signal's `resolution`


def _uniform(gen: torch.Generator, lo: float, hi: float) -> float:
    return float(lo + (hi - lo) * torch.rand(1, generator=gen))


def draw_map_like(gen: torch.Generator, *, resolution: tuple[float, float] = (2.8, 10.0),
                  b_factor: tuple[float, float] = (-150.0, 50.0), low_damp: tuple[float, float] = (0.0, 0.9),
                  noise: tuple[float, float] = (0.0, 0.5), nyquist: float = 3.0) -> MapLikeDraw:
    """A random draw; resolution is log-uniform (as many 3-4 A maps as 6-10 A ones, per octave),
    and so is the noise cut-off between `nyquist` (A) and the resolution."""
    lr = _uniform(gen, np.log(resolution[0]), np.log(resolution[1]))
    ln = _uniform(gen, np.log(min(nyquist, float(np.exp(lr)))), lr)
    return MapLikeDraw(
        resolution=float(np.exp(lr)),
        edge=_uniform(gen, 0.02, 0.3),
        b_factor=_uniform(gen, *b_factor),
        low_damp=_uniform(gen, *low_damp),
        low_scale=_uniform(gen, 15.0, 50.0),
        noise=_uniform(gen, *noise),
        noise_resolution=float(np.exp(ln)),
    )


def _low_pass(s: np.ndarray, resolution: float, edge: float) -> np.ndarray:
    """Raised cosine in |k| (1/A): 1 below (1 - edge) / d, 0 above (1 + edge) / d."""
    lo, hi = (1 - edge) / resolution, (1 + edge) / resolution
    ramp = np.clip((hi - s) / max(hi - lo, 1e-9), 0.0, 1.0)
    return 0.5 - 0.5 * np.cos(np.pi * ramp)


def _signal_filter(s: np.ndarray, d: MapLikeDraw) -> np.ndarray:
    """Sharpening/blur x low-pass x low-shell damping, on the |k| grid `s`."""
    # sharpening is applied only inside the pass band, so a negative B cannot blow up the corners
    env = np.exp(-d.b_factor * np.minimum(s, (1 + d.edge) / d.resolution) ** 2 / 4.0)
    damp = 1.0 - d.low_damp * np.exp(-((s * d.low_scale) ** 2))
    return _low_pass(s, d.resolution, d.edge) * env * damp


def map_like(x: np.ndarray, voxel_size: float, d: MapLikeDraw, gen: torch.Generator) -> np.ndarray:
    """Apply one draw to a raw patch x [D, H, W] (periodic filtering; float32 out).

    The noise is white Gaussian from `gen`, passed through a low-pass of the same edge at
    `d.noise_resolution` (no sharpening or damping: noise in a map is flat in its band), scaled to
    `d.noise` times the filtered signal's standard deviation.
    """
    x = np.asarray(x, dtype=np.float32)
    s = np.asarray(radial_frequency(x.shape, voxel_size))
    y = np.fft.irfftn(np.fft.rfftn(x) * _signal_filter(s, d), s=x.shape, axes=(0, 1, 2)).astype(np.float32)
    if d.noise > 0:
        band = _low_pass(s, d.noise_resolution or d.resolution, d.edge)
        n = torch.randn(x.shape, generator=gen).numpy()
        n = np.fft.irfftn(np.fft.rfftn(n) * band, s=x.shape, axes=(0, 1, 2)).astype(np.float32)
        sn, sy = float(n.std()), float(y.std())
        if sn > 0 and sy > 0:
            y = y + n * (d.noise * sy / sn)
    return y
