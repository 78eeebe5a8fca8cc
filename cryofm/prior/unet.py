"""A small 3D U-Net velocity field `v(x_t, t)` with EDM-style preconditioning.

Flow convention (docs/ARCHITECTURE.md): `x_t = (1 - t) x + t e`, `t = 1` is noise, `v = e - x`,
`x_hat = x_t - t v`.  Data are standardised (unit variance), so `Var(x_t) = (1-t)^2 + t^2 =: D(t)`.

Preconditioning (Karras et al. 2022, rewritten for this linear path): the network `F` sees
`c_in x_t` with `c_in = 1/sqrt(D)` (unit-variance input at every t) and predicts the scaled residual
of the best linear estimate of x,

    x_hat = c_skip x_t + c_out F(c_in x_t, t),   c_skip = (1-t)/D,   c_out = t/sqrt(D),

so that F's target `(x - c_skip x_t) / c_out` has unit variance at every t.  The velocity returned
is the exact rewrite `v = (x_t - x_hat)/t = ((2t-1)/D) x_t - F/sqrt(D)`, finite at t = 0.  With F = 0
the model is the optimal *linear* (white-spectrum) denoiser, so a barely trained net starts from a
sensible estimate.  A loss `D(t) |v_pred - v|^2` equals `|F - F_target|^2` (EDM's weighting).

Architecture: residual blocks (GroupNorm, SiLU, 3^3 convolutions) whose second normalisation is
modulated by a sinusoidal time embedding (AdaGN: scale and shift), stride-2 convolutions down,
nearest upsampling + convolution up, skip connections by concatenation.  One optional multi-head
self-attention block at the lowest resolution only (for a 64^3 box and 4 levels that is 8^3 = 512
tokens: global context for a few ms; at higher resolutions attention costs far more than it gives
a network this small).  Fully convolutional: any box whose sides are multiples of `divisor`.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
from torch import nn
from torch.nn import functional as F

from cryofm.fourier import hermitian_weight, radial_frequency

__all__ = ["UNetConfig", "UNet3D", "VelocityNet", "precondition_coefficients", "spectrum_feature",
           "is_conditioning_key"]


@dataclass(frozen=True)
class UNetConfig:
    """Hyper-parameters of the velocity network.

    channels: feature channels per resolution level; `len(channels) - 1` downsamplings.
    blocks: residual blocks per level on each side.
    attention: one self-attention block at the lowest resolution.
    heads: attention heads.
    time_dim: width of the sinusoidal time embedding.
    groups: GroupNorm groups (must divide every entry of `channels`).
    precondition: "edm" (see module docstring) or "none" (the net outputs v directly).
    spectrum_shells: 0 (off), or the number of shells of the input's radially averaged log power
        spectrum fed to every block beside the time embedding (`spectrum_feature`): global evidence
        of how far the map's signal reaches in resolution, which a network of 3^3 convolutions
        otherwise has to infer.  The projection is zero-initialised, so weights trained without it
        load unchanged (`is_conditioning_key`) and behave exactly as before until fine-tuned.
    """

    channels: tuple[int, ...] = (16, 32, 64, 96)
    blocks: int = 1
    attention: bool = True
    heads: int = 4
    time_dim: int = 64
    groups: int = 8
    precondition: str = "edm"
    spectrum_shells: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "channels", tuple(int(c) for c in self.channels))
        if len(self.channels) < 1 or any(c <= 0 for c in self.channels):
            raise ValueError(f"channels must be positive integers, got {self.channels}")
        if any(c % self.groups for c in self.channels):
            raise ValueError(f"groups={self.groups} must divide every channel count {self.channels}")
        if self.precondition not in ("edm", "none"):
            raise ValueError(f"precondition must be 'edm' or 'none', got {self.precondition!r}")
        if self.spectrum_shells < 0:
            raise ValueError(f"spectrum_shells must be >= 0 (0 = off), got {self.spectrum_shells}")
        if self.attention and self.channels[-1] % self.heads:
            raise ValueError(f"heads={self.heads} must divide the lowest-level channels {self.channels[-1]}")

    @property
    def divisor(self) -> int:
        """Box sides must be multiples of this (2 ** number of downsamplings)."""
        return 2 ** (len(self.channels) - 1)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["channels"] = list(self.channels)
        return d


def _layout(input: torch.Tensor, weight: torch.Tensor) -> torch.memory_format:  # noqa: A002
    """Channels-last where no gradient flows (oneDNN runs it without reordering), contiguous where one does."""
    backward = torch.is_grad_enabled() and (input.requires_grad or weight.requires_grad)
    return torch.contiguous_format if backward else torch.channels_last_3d


class Conv3d(nn.Conv3d):
    """`nn.Conv3d` that always takes oneDNN (mkldnn) on CPU float32.

    PyTorch's heuristic sends small inputs (batch 1, few channels, e.g. 16 x 32^3) to a naive
    `slow_conv3d` that is 10-50x slower on CPU; the oneDNN kernel computes the same convolution.
    Where no gradient flows (inference) the tensors go channels-last (`torch.channels_last_3d`), which
    oneDNN runs without reordering: a whole 64^3 forward pass gains ~5-10% on the 2-core CPU
    (`benchmarks/prior_layout_ab.py`, an interleaved A/B).  GroupNorm, SiLU, interpolation and
    concatenation keep the layout; results agree to 1e-4.
    """

    def _conv_forward(self, input, weight, bias):  # noqa: A002 - torch's signature
        if (input.device.type == "cpu" and input.dtype == torch.float32 and weight.dtype == torch.float32
                and self.padding_mode == "zeros" and torch.backends.mkldnn.is_available()
                and not isinstance(self.padding, str)):
            layout = _layout(input, weight)
            out = torch.mkldnn_convolution(input.contiguous(memory_format=layout), weight.contiguous(memory_format=layout),
                                           bias, list(self.padding), list(self.stride), list(self.dilation), self.groups)
            # a one-channel input (the stem) is both layouts at once and oneDNN answers contiguous: convert here
            # once, not later in every residual sum and concatenation that meets it (mixed layouts run strided)
            return out.contiguous(memory_format=layout)
        return super()._conv_forward(input, weight, bias)


# Nearest x2 upsampling then a 3-tap convolution (padding 1), along one axis: y[2i] = w0 h[i-1] + (w1 + w2) h[i]
# and y[2i+1] = (w0 + w1) h[i] + w2 h[i+1].  That is a stride-2 transposed convolution of h (padding 1) whose
# 4-tap kernel is k = (w2, w1 + w2, w0 + w1, w0) = _FOLD @ w.
_FOLD = torch.tensor([[0.0, 0.0, 1.0], [0.0, 1.0, 1.0], [1.0, 1.0, 0.0], [1.0, 0.0, 0.0]])


class UpConv3d(Conv3d):
    """Nearest x2 upsampling followed by this 3^3 convolution (padding 1): the U-Net's way up.

    On the CPU in float32, computed exactly (to float rounding) as one stride-2 transposed
    convolution of the coarse input with a 4^3 kernel folded from the 3^3 weight: 64 instead of 216
    multiply-adds per coarse voxel and input channel pair, and no upsampled intermediate
    (`benchmarks/prior_layout_ab.py`).  This serves inference and fps (gradients to the input only);
    training, where the weight needs its gradient, and other devices keep the literal upsample-then-convolve.
    """

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(cin, cout, 3, padding=1)

    def forward(self, input: torch.Tensor) -> torch.Tensor:  # noqa: A002 - torch's signature
        trains = torch.is_grad_enabled() and self.weight.requires_grad
        if trains or input.device.type != "cpu" or input.dtype != torch.float32:
            return super().forward(F.interpolate(input, scale_factor=2, mode="nearest"))
        layout = _layout(input, self.weight)  # fps back-propagates to the input: contiguous there
        fold = _FOLD.to(self.weight.dtype)
        kernel = torch.einsum("ai,bj,cl,oxijl->xoabc", fold, fold, fold, self.weight)
        return F.conv_transpose3d(input.contiguous(memory_format=layout), kernel.contiguous(memory_format=layout),
                                  self.bias, stride=2, padding=1)


def _silu(h: torch.Tensor) -> torch.Tensor:
    """SiLU of a fresh intermediate, in place where no gradient needs it (one pass less over a 64^3
    feature map; with the fused `addcmul` of the time modulation a forward pass gains ~10%,
    `benchmarks/prior_layout_ab.py`)."""
    return F.silu(h, inplace=not h.requires_grad)


def timestep_embedding(t: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal embedding of t in [0, 1] (scaled by 1000), [B] -> [B, dim]."""
    half = dim // 2
    freqs = torch.exp(-math.log(10000.0) * torch.arange(half, device=t.device, dtype=torch.float32) / half)
    args = 1000.0 * t.float()[:, None] * freqs[None]
    return torch.cat([torch.cos(args), torch.sin(args)], dim=1)


def spectrum_feature(x: torch.Tensor, shells: int) -> torch.Tensor:
    """Log of the mean power per shell of each volume, `[B, 1, D, H, W] -> [B, shells]`.

    Shells split the radial frequency |f| in [0, 1/2) (cycles per voxel, so the same resolutions
    on any box) into `shells` equal bins; corners beyond Nyquist are left out.  Power in the
    project's units (rfft, norm="ortho", Hermitian weights), so white noise of variance s2 gives
    log(s2) in every shell.  Computed in float32 and differentiable (fps back-propagates through it).
    """
    dims = tuple(x.shape[-3:])
    f = torch.fft.rfftn(x.float(), dim=(-3, -2, -1), norm="ortho")
    power = (f.real**2 + f.imag**2).flatten(start_dim=-3).flatten(end_dim=-2)  # [B, components]
    radius = radial_frequency(dims, like=power)  # cycles per voxel (cached grid)
    index = (radius * 2 * shells).long().flatten()
    keep = index < shells
    index, weight = index[keep], hermitian_weight(dims, like=power).expand(radius.shape).flatten()[keep]
    total = power.new_zeros(power.shape[0], shells).index_add(1, index, power[:, keep] * weight)
    count = weight.new_zeros(shells).index_add(0, index, weight)
    return torch.log(total / count.clamp_min(1.0) + 1e-6)


class ResBlock(nn.Module):
    def __init__(self, cin: int, cout: int, tdim: int, groups: int) -> None:
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin)
        self.conv1 = Conv3d(cin, cout, 3, padding=1)
        self.norm2 = nn.GroupNorm(groups, cout, affine=False)
        self.film = nn.Linear(tdim, 2 * cout)
        self.conv2 = Conv3d(cout, cout, 3, padding=1)
        nn.init.zeros_(self.conv2.weight)
        nn.init.zeros_(self.conv2.bias)
        nn.init.zeros_(self.film.weight)
        nn.init.zeros_(self.film.bias)
        self.skip = Conv3d(cin, cout, 1) if cin != cout else nn.Identity()

    def forward(self, x: torch.Tensor, temb: torch.Tensor) -> torch.Tensor:
        h = self.conv1(_silu(self.norm1(x)))
        scale, shift = self.film(temb)[:, :, None, None, None].chunk(2, dim=1)
        h = self.conv2(_silu(torch.addcmul(shift, self.norm2(h), 1 + scale)))  # norm * (1 + scale) + shift
        return self.skip(x) + h


class Attention(nn.Module):
    def __init__(self, channels: int, heads: int, groups: int) -> None:
        super().__init__()
        self.heads = heads
        self.norm = nn.GroupNorm(groups, channels)
        self.qkv = Conv3d(channels, 3 * channels, 1)
        self.proj = Conv3d(channels, channels, 1)
        nn.init.zeros_(self.proj.weight)
        nn.init.zeros_(self.proj.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, d, h, w = x.shape
        q, k, v = self.qkv(self.norm(x)).reshape(b, 3, self.heads, c // self.heads, d * h * w).unbind(1)
        out = F.scaled_dot_product_attention(q.transpose(-1, -2), k.transpose(-1, -2), v.transpose(-1, -2))
        return x + self.proj(out.transpose(-1, -2).reshape(b, c, d, h, w))


class UNet3D(nn.Module):
    """The raw network F(x, t): [B, 1, D, H, W], [B] -> [B, 1, D, H, W]."""

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        self.config = config
        ch, tdim, g = config.channels, config.time_dim, config.groups
        self.time_mlp = nn.Sequential(nn.Linear(tdim, 2 * tdim), nn.SiLU(), nn.Linear(2 * tdim, 2 * tdim))
        emb = 2 * tdim
        if config.spectrum_shells:
            # global conditioning on the input's spectrum, added to the time embedding; zero output at
            # initialisation so that weights trained without it behave exactly as before
            self.spectrum_mlp = nn.Sequential(nn.Linear(config.spectrum_shells, emb), nn.SiLU(), nn.Linear(emb, emb))
            nn.init.zeros_(self.spectrum_mlp[-1].weight)
            nn.init.zeros_(self.spectrum_mlp[-1].bias)
        self.stem = Conv3d(1, ch[0], 3, padding=1)
        self.down_blocks = nn.ModuleList()
        self.downsamplers = nn.ModuleList()
        cin = ch[0]
        for i, c in enumerate(ch):
            blocks = nn.ModuleList()
            for _ in range(config.blocks):
                blocks.append(ResBlock(cin, c, emb, g))
                cin = c
            self.down_blocks.append(blocks)
            if i < len(ch) - 1:
                self.downsamplers.append(Conv3d(c, c, 3, stride=2, padding=1))
        self.mid1 = ResBlock(cin, cin, emb, g)
        self.attn = Attention(cin, config.heads, g) if config.attention else None
        self.mid2 = ResBlock(cin, cin, emb, g)
        self.up_blocks = nn.ModuleList()
        self.upsamplers = nn.ModuleList()
        for i in reversed(range(len(ch))):
            c = ch[i]
            if i < len(ch) - 1:
                self.upsamplers.append(UpConv3d(cin, c))
                cin = c
            blocks = nn.ModuleList()
            for j in range(config.blocks):
                blocks.append(ResBlock(cin + c if j == 0 else c, c, emb, g))
                cin = c
            self.up_blocks.append(blocks)
        self.out_norm = nn.GroupNorm(g, cin)
        self.out = Conv3d(cin, 1, 3, padding=1)
        nn.init.zeros_(self.out.weight)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        temb = self.time_mlp(timestep_embedding(t, self.config.time_dim))
        if self.config.spectrum_shells:
            temb = temb + self.spectrum_mlp(spectrum_feature(x, self.config.spectrum_shells).to(temb.dtype))
        h = self.stem(x)
        skips = []
        for i, blocks in enumerate(self.down_blocks):
            for blk in blocks:
                h = blk(h, temb)
            skips.append(h)
            if i < len(self.downsamplers):
                h = self.downsamplers[i](h)
        h = self.mid1(h, temb)
        if self.attn is not None:
            h = self.attn(h)
        h = self.mid2(h, temb)
        for k, blocks in enumerate(self.up_blocks):
            if k > 0:
                h = self.upsamplers[k - 1](h)
            h = torch.cat([h, skips.pop()], dim=1)
            for blk in blocks:
                h = blk(h, temb)
        return self.out(_silu(self.out_norm(h)))


def is_conditioning_key(name: str) -> bool:
    """Whether a parameter (state-dict key) belongs to the spectrum conditioning: the keys that
    weights trained without it may lack when they start a fine-tune with it."""
    return ".spectrum_mlp." in f".{name}"


def precondition_coefficients(t: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """EDM coefficients for the path x_t = (1-t)x + t e with unit-variance data.

    Args:
        t: [B] times in [0, 1].

    Returns:
        (c_in, c_skip, c_out), each [B]: `x_hat = c_skip x_t + c_out F(c_in x_t, t)`.
    """
    d = (1 - t) ** 2 + t**2
    return d.rsqrt(), (1 - t) / d, t / d.sqrt()


class VelocityNet(nn.Module):
    """`UNet3D` wrapped with the preconditioning; forward returns the velocity v."""

    def __init__(self, config: UNetConfig) -> None:
        super().__init__()
        self.config = config
        self.net = UNet3D(config)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        if self.config.precondition == "none":
            return self.net(x_t, t)
        t5 = t.float()[:, None, None, None, None]
        d = (1 - t5) ** 2 + t5**2
        f = self.net(x_t * d.rsqrt(), t)
        # v = (x_t - x_hat)/t with x_hat = c_skip x_t + c_out F, simplified so it is finite at t = 0
        return ((2 * t5 - 1) / d) * x_t - f * d.rsqrt()
