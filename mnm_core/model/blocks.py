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
    """Four-level U-Net (three stride-2 downsamplings), concatenated skips, linear output.

    Input B×C_in×H×W with H, W multiples of 8 → B×C_out×H×W. Only Conv, ConvTranspose, Relu and
    Concat: exportable to ONNX and TensorRT.
    """

    def __init__(self, in_channels: int, out_channels: int, widths: tuple[int, int, int, int]) -> None:
        super().__init__()
        w0, w1, w2, w3 = widths
        self.enc0 = DoubleConv(in_channels, w0)
        self.enc1 = DoubleConv(w0, w1)
        self.enc2 = DoubleConv(w1, w2)
        self.bottom = DoubleConv(w2, w3)
        self.down0 = conv3x3(w0, w0, stride=2)
        self.down1 = conv3x3(w1, w1, stride=2)
        self.down2 = conv3x3(w2, w2, stride=2)
        self.up2 = nn.ConvTranspose2d(w3, w2, 2, stride=2)
        self.up1 = nn.ConvTranspose2d(w2, w1, 2, stride=2)
        self.up0 = nn.ConvTranspose2d(w1, w0, 2, stride=2)
        self.dec2 = DoubleConv(2 * w2, w2)
        self.dec1 = DoubleConv(2 * w1, w1)
        self.dec0 = DoubleConv(2 * w0, w0)
        self.out = nn.Conv2d(w0, out_channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        e0 = self.enc0(x)
        e1 = self.enc1(self.down0(e0))
        e2 = self.enc2(self.down1(e1))
        b = self.bottom(self.down2(e2))
        d2 = self.dec2(torch.cat([self.up2(b), e2], dim=1))
        d1 = self.dec1(torch.cat([self.up1(d2), e1], dim=1))
        d0 = self.dec0(torch.cat([self.up0(d1), e0], dim=1))
        return self.out(d0)


def constant_channel(like: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """A B×1×H×W map filled with `value` (a scalar tensor): how β enters a CNN as a channel."""
    return torch.ones_like(like[:, :1]) * value.reshape(-1, 1, 1, 1)
