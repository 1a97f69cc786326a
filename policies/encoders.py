"""Encoders of dict observations: per-field normalization, a small CNN over images, concatenation.

A dict observation is a ``TensorDict`` [B] of fields (see ``envs.spec``): vectors
[B, d] (float) and images [B, H, W, C] (uint8). :class:`DictNormalizer` keeps a
running normalizer per vector field that the spec marks ``normalize`` (pixels
are never normalized by running statistics: they are scaled to [0, 1]), and
:class:`ObservationEncoder` maps the normalized fields to one feature vector
[B, F]: vectors as they are, each image through :class:`ConvEncoder`.
"""

from __future__ import annotations

import math

import torch
from tensordict import TensorDict
from torch import Tensor, nn

from envs.spec import ObservationSpec
from policies.normalizer import Moments, RunningNormalizer

CNN_FEATURES = 128  # features per image


class DictNormalizer(nn.Module):
    """Running normalizers for the spec's normalized vector fields; other fields pass through.

    ``enabled`` is True when any field is normalized (the same flag a flat normalizer has).
    """

    def __init__(self, spec: ObservationSpec, clip: float = 10.0, enabled: bool = True) -> None:
        super().__init__()
        self.keys = [k for k, f in spec.items() if f.normalize and not f.is_image and enabled]
        self.fields = nn.ModuleDict(
            {k: RunningNormalizer(math.prod(spec[k].shape), clip=clip, enabled=True) for k in self.keys}
        )
        self.clip = clip
        self.enabled = bool(self.keys)

    def forward(self, obs: TensorDict) -> TensorDict:
        """obs TensorDict [B] -> the same fields, the normalized ones replaced."""
        if not self.keys:
            return obs
        out = obs.clone(recurse=False)
        for key in self.keys:
            out[key] = self.fields[key](obs[key])
        return out

    @torch.no_grad()
    def update(self, obs: TensorDict, moments: Moments | None = None) -> None:
        """Fold a batch (any batch shape) into every normalized field's statistics (``moments``: as
        :meth:`RunningNormalizer.update`)."""
        flat = obs.reshape(-1)
        for key in self.keys:
            self.fields[key].update(flat[key], moments)


class ConvEncoder(nn.Module):
    """uint8 images [B, H, W, C] -> features [B, CNN_FEATURES].

    x / 255 -> Conv(C->16, 5x5, stride 2) -> ReLU -> Conv(16->32, 3x3, stride 2) -> ReLU
    -> Conv(32->32, 3x3, stride 2) -> ReLU -> flatten -> Linear -> ReLU.
    """

    def __init__(self, shape: tuple[int, ...]) -> None:
        super().__init__()
        height, width, channels = shape
        self.conv = nn.Sequential(
            nn.Conv2d(channels, 16, 5, stride=2, padding=2),
            nn.ReLU(),
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(32, 32, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Flatten(),
        )
        with torch.no_grad():
            flat = self.conv(torch.zeros(1, channels, height, width)).shape[1]
        self.head = nn.Sequential(nn.Linear(flat, CNN_FEATURES), nn.ReLU())
        for module in self.modules():
            if isinstance(module, nn.Conv2d | nn.Linear):
                nn.init.orthogonal_(module.weight, gain=math.sqrt(2.0))
                nn.init.zeros_(module.bias)

    def forward(self, image: Tensor) -> Tensor:
        x = image.to(torch.float32).permute(0, 3, 1, 2) / 255.0  # [B, C, H, W] in [0, 1]
        return self.head(self.conv(x))


class ObservationEncoder(nn.Module):
    """Normalized dict observation [*batch] -> features [*batch, out_dim]: fields in spec order, images via a CNN."""

    def __init__(self, spec: ObservationSpec) -> None:
        super().__init__()
        self.keys = list(spec)
        self.cnns = nn.ModuleDict({k: ConvEncoder(f.shape) for k, f in spec.items() if f.is_image})
        self.out_dim = sum(CNN_FEATURES if f.is_image else math.prod(f.shape) for f in spec.values())

    def forward(self, obs: TensorDict) -> Tensor:
        """obs TensorDict [*batch] -> features [*batch, out_dim] (any number of batch dimensions)."""
        lead = tuple(obs.batch_size)
        parts = []
        for key in self.keys:
            x = obs[key]
            if key in self.cnns:
                parts.append(self.cnns[key](x.reshape(-1, *x.shape[len(lead) :])).reshape(*lead, CNN_FEATURES))
            else:
                parts.append(x.reshape(*lead, math.prod(x.shape[len(lead) :])).to(torch.float32))
        return torch.cat(parts, dim=-1)


__all__ = ["CNN_FEATURES", "ConvEncoder", "DictNormalizer", "ObservationEncoder"]
