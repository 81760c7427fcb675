"""Building blocks shared by the networks: plain conv stacks and the U-Net."""

from __future__ import annotations

import itertools

import torch
from torch import nn


def conv3x3(in_channels: int, out_channels: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1)


class ConvStack(nn.Sequential):
    """conv3×3 → ReLU → … → conv3×3: `depth` convolutions, no activation after the last."""

    def __init__(self, in_channels: int, width: int, out_channels: int, depth: int = 3) -> None:
        channels = [in_channels] + [width] * (depth - 1) + [out_channels]
        layers: list[nn.Module] = []
        for i, (c_in, c_out) in enumerate(itertools.pairwise(channels)):
            layers.append(conv3x3(c_in, c_out))
            if i < depth - 1:
                layers.append(nn.ReLU(inplace=True))
        super().__init__(*layers)


class DoubleConv(nn.Sequential):
    """Two conv3×3 + ReLU, the U-Net level block."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__(
            conv3x3(in_channels, out_channels),
            nn.ReLU(inplace=True),
            conv3x3(out_channels, out_channels),
            nn.ReLU(inplace=True),
        )


class UNet(nn.Module):
    """U-Net with len(widths) levels (len − 1 stride-2 downsamplings), concatenated skips, linear output.

    Input B×C_in×H×W with H, W multiples of 2^(levels − 1) → B×C_out×H×W. Only Conv, ConvTranspose, Relu
    and Concat: exportable to ONNX and TensorRT. Submodules keep the names enc0…, bottom, down0…, up0…,
    dec0…, out, so four-level checkpoints load unchanged.
    """

    def __init__(self, in_channels: int, out_channels: int, widths: tuple[int, ...]) -> None:
        super().__init__()
        *skips, bottom = widths
        self.levels = len(skips)
        for i, width in enumerate(skips):
            self.add_module(f"enc{i}", DoubleConv(in_channels if i == 0 else skips[i - 1], width))
            self.add_module(f"down{i}", conv3x3(width, width, stride=2))
            self.add_module(f"up{i}", nn.ConvTranspose2d(widths[i + 1], width, 2, stride=2))
            self.add_module(f"dec{i}", DoubleConv(2 * width, width))
        self.bottom = DoubleConv(skips[-1], bottom)
        self.out = nn.Conv2d(widths[0], out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        for i in range(self.levels):
            x = getattr(self, f"enc{i}")(x)
            skips.append(x)
            x = getattr(self, f"down{i}")(x)
        x = self.bottom(x)
        for i in reversed(range(self.levels)):
            x = getattr(self, f"dec{i}")(torch.cat([getattr(self, f"up{i}")(x), skips[i]], dim=1))
        return self.out(x)


def constant_channel(like: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """A B×1×H×W map filled with `value` (a scalar tensor): how β enters a CNN as a channel."""
    return torch.ones_like(like[:, :1]) * value.reshape(-1, 1, 1, 1)
