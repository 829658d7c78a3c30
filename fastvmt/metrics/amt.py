"""AMT-S, the frame interpolator of VBench's motion smoothness, loaded from the released ``amt-s.pth``.

AMT (Li et al., "AMT: All-Pairs Multi-Field Transforms for Efficient Frame Interpolation", CVPR 2023) predicts the
frame at time ``t`` between two frames: a context encoder gives 1/8-resolution features of both frames whose
all-pairs correlation (a 4-level pyramid) is looked up along the current flow estimates; an image pyramid (1/2 to
1/16) feeds coarse-to-fine decoders that predict the bidirectional flows ``t -> 0`` and ``t -> 1`` and a feature
of the middle frame, each refined by a correlation-driven update at 1/8 resolution; the last decoder predicts three
flow pairs with blending masks and residuals, and a small convolution merges the three warped candidates.

The module tree below is the one ``amt-s.pth`` names (VBench 0.1.5 caches it as ``amt_model/amt-s.pth``: a dict
whose ``"state_dict"`` holds the network's tensors). The file is read with ``torch.load(weights_only=True)`` and
its tensor names and shapes must match exactly (:func:`load_amt_s`).
"""

from __future__ import annotations

import pickle
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from fastvmt.backbones.checkpoint import UnsafeCheckpointError

__all__ = ["AMTS", "MIN_PADDED_SIDE", "PAD_MULTIPLE", "AmtInterpolator", "check_frame_size", "load_amt_s"]

#: Frames are padded (edge pixels repeated, evenly on both sides) to a multiple of this, as VBench does.
PAD_MULTIPLE = 16
#: The least padded side: the correlation pyramid's coarsest level (1/64 of it) must be wider than one pixel,
#: where the lookup's coordinate normalisation is defined (VBench's code yields NaN below).
MIN_PADDED_SIDE = 128
_CORRELATION_LEVELS = 4
_CORRELATION_RADIUS = 3
_FLOWS = 3
_PYRAMID = (20, 32, 44, 56)
_SIDE_CHANNELS = 20
_CONTEXT_CHANNELS = 84


def _conv_prelu(in_channels: int, out_channels: int, kernel: int = 3, stride: int = 1) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(in_channels, out_channels, kernel, stride, kernel // 2),
                         nn.PReLU(out_channels))


def _upsample(x: Tensor, factor: float) -> Tensor:
    return F.interpolate(x, scale_factor=factor, mode="bilinear", align_corners=False)


def _warp(image: Tensor, flow: Tensor) -> Tensor:
    """``image`` ``(B, C, H, W)`` sampled at each pixel plus ``flow`` ``(B, 2, H, W)`` (x, y pixels), bilinear,
    edge pixels beyond the border."""
    batch, _, height, width = flow.shape
    xs = torch.linspace(-1.0, 1.0, width, device=flow.device, dtype=flow.dtype).view(1, 1, width)
    ys = torch.linspace(-1.0, 1.0, height, device=flow.device, dtype=flow.dtype).view(1, height, 1)
    grid = torch.stack([(xs + flow[:, 0] / ((width - 1.0) / 2.0)).expand(batch, height, width),
                        (ys + flow[:, 1] / ((height - 1.0) / 2.0)).expand(batch, height, width)], dim=-1)
    return F.grid_sample(image, grid.to(image.dtype), mode="bilinear", padding_mode="border", align_corners=True)


class _SideResidual(nn.Module):
    """A residual block whose last ``side`` channels get an extra convolution between its main ones."""

    def __init__(self, channels: int, side: int):
        super().__init__()
        self.side = side
        self.conv1, self.conv3 = _conv_prelu(channels, channels), _conv_prelu(channels, channels)
        self.conv2, self.conv4 = _conv_prelu(side, side), _conv_prelu(side, side)
        self.conv5 = nn.Conv2d(channels, channels, 3, 1, 1)
        self.prelu = nn.PReLU(channels)

    def _with_side(self, x: Tensor, conv: nn.Module) -> Tensor:
        main, side = x.split([x.shape[1] - self.side, self.side], dim=1)
        return torch.cat([main, conv(side)], dim=1)

    def forward(self, x: Tensor) -> Tensor:
        out = self.conv3(self._with_side(self.conv1(x), self.conv2))
        return self.prelu(x + self.conv5(self._with_side(out, self.conv4)))


class _Bottleneck(nn.Module):
    """1x1 -> 3x3 (strided) -> 1x1 convolutions with instance norms and ReLUs, plus the (projected) input."""

    def __init__(self, in_channels: int, out_channels: int, stride: int):
        super().__init__()
        inner = out_channels // 4
        self.conv1 = nn.Conv2d(in_channels, inner, 1)
        self.conv2 = nn.Conv2d(inner, inner, 3, stride, 1)
        self.conv3 = nn.Conv2d(inner, out_channels, 1)
        self.norms = nn.ModuleList([nn.InstanceNorm2d(inner), nn.InstanceNorm2d(inner),
                                    nn.InstanceNorm2d(out_channels)])  # no parameters: nothing in the checkpoint
        self.downsample = None if stride == 1 else nn.Sequential(
            nn.Conv2d(in_channels, out_channels, 1, stride), nn.InstanceNorm2d(out_channels))

    def forward(self, x: Tensor) -> Tensor:
        out = x
        for conv, norm in zip((self.conv1, self.conv2, self.conv3), self.norms):
            out = F.relu(norm(conv(out)))
        return F.relu(out + (x if self.downsample is None else self.downsample(x)))


class _ContextEncoder(nn.Module):
    """Features at 1/8 resolution for the correlation: ``(B, 3, H, W) -> (B, 84, H/8, W/8)``."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 7, 2, 3)
        self.norm1 = nn.InstanceNorm2d(32)
        stages, width = [], 32
        for out, stride in ((32, 1), (64, 2), (96, 2)):
            stages.append(nn.Sequential(_Bottleneck(width, out, stride), _Bottleneck(out, out, 1)))
            width = out
        self.layer1, self.layer2, self.layer3 = stages
        self.conv2 = nn.Conv2d(96, _CONTEXT_CHANNELS, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = F.relu(self.norm1(self.conv1(x)))
        return self.conv2(self.layer3(self.layer2(self.layer1(x))))


class _ImagePyramid(nn.Module):
    """Four feature maps at 1/2, 1/4, 1/8, 1/16 resolution, each from the one before."""

    def __init__(self, channels: tuple[int, ...]):
        super().__init__()
        before = 3
        for level, width in enumerate(channels, start=1):
            self.add_module(f"pyramid{level}", nn.Sequential(_conv_prelu(before, width, 3, 2),
                                                              _conv_prelu(width, width)))
            before = width

    def forward(self, x: Tensor) -> list[Tensor]:
        levels = []
        for stage in self.children():
            x = stage(x)
            levels.append(x)
        return levels


def _decoder_block(in_channels: int, width: int, out_channels: int) -> nn.Sequential:
    """Convolution to ``width``, side residual, then a transposed convolution doubling the resolution."""
    return nn.Sequential(_conv_prelu(in_channels, width), _SideResidual(width, _SIDE_CHANNELS),
                         nn.ConvTranspose2d(width, out_channels, 4, 2, 1))


class _CoarsestDecoder(nn.Module):
    """From both frames' 1/16 features and ``t``: flows ``t -> 0``, ``t -> 1`` and the middle frame's feature at
    1/8 resolution."""

    def __init__(self, channels: int, out_channels: int):
        super().__init__()
        self.convblock = _decoder_block(2 * channels + 1, 2 * channels, out_channels + 4)

    def forward(self, feature0: Tensor, feature1: Tensor, time: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        time_map = time.expand(-1, 1, *feature0.shape[2:])
        out = self.convblock(torch.cat([feature0, feature1, time_map], dim=1))
        return out[:, 0:2], out[:, 2:4], out[:, 4:]


def _refining_input(middle: Tensor, feature0: Tensor, feature1: Tensor, flow0: Tensor, flow1: Tensor) -> Tensor:
    return torch.cat([middle, _warp(feature0, flow0), _warp(feature1, flow1), flow0, flow1], dim=1)


class _Decoder(nn.Module):
    """One level finer: the middle feature, both frames' features warped by the flows, and the flows, to residual
    flows and the next middle feature at twice the resolution."""

    def __init__(self, channels: int, out_channels: int):
        super().__init__()
        self.convblock = _decoder_block(3 * channels + 4, 3 * channels, out_channels + 4)

    def forward(self, middle: Tensor, feature0: Tensor, feature1: Tensor, flow0: Tensor,
                flow1: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        out = self.convblock(_refining_input(middle, feature0, feature1, flow0, flow1))
        return out[:, 0:2] + 2.0 * _upsample(flow0, 2.0), out[:, 2:4] + 2.0 * _upsample(flow1, 2.0), out[:, 4:]


class _MultiFlowDecoder(nn.Module):
    """The finest level: ``flows`` flow pairs at full resolution, their blending masks (sigmoid) and RGB
    residuals."""

    def __init__(self, channels: int, flows: int):
        super().__init__()
        self.flows = flows
        self.convblock = _decoder_block(3 * channels + 4, 3 * channels, 8 * flows)

    def forward(self, middle: Tensor, feature0: Tensor, feature1: Tensor, flow0: Tensor,
                flow1: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        n = self.flows
        out = self.convblock(_refining_input(middle, feature0, feature1, flow0, flow1))
        delta0, delta1, mask, residual = out.split([2 * n, 2 * n, n, 3 * n], dim=1)
        base0, base1 = (2.0 * _upsample(flow, 2.0).repeat(1, n, 1, 1) for flow in (flow0, flow1))
        return delta0 + base0, delta1 + base1, torch.sigmoid(mask), residual


class _CorrelationUpdate(nn.Module):
    """Residual flows and middle feature from the correlation looked up along the current flows, at 1/8
    resolution (a level at 1/4 or 1/2 is pooled down by ``scale`` and its outputs scaled back up)."""

    def __init__(self, feature_channels: int, scale: float | None):
        super().__init__()
        self.scale = scale
        hidden, lookups = 76, 2 * _CORRELATION_LEVELS * (2 * _CORRELATION_RADIUS + 1) ** 2
        self.convc1 = nn.Conv2d(lookups, 64, 1)
        self.convf1 = nn.Conv2d(4, 40, 7, padding=3)
        self.convf2 = nn.Conv2d(40, 20, 3, padding=1)
        self.conv = nn.Conv2d(64 + 20, 68, 3, padding=1)
        self.gru = nn.Sequential(nn.Conv2d(68 + 4 + feature_channels, hidden, 3, padding=1), nn.LeakyReLU(0.1),
                                 nn.Conv2d(hidden, hidden, 3, padding=1))
        self.feat_head = nn.Sequential(nn.Conv2d(hidden, hidden, 3, padding=1), nn.LeakyReLU(0.1),
                                       nn.Conv2d(hidden, feature_channels, 3, padding=1))
        self.flow_head = nn.Sequential(nn.Conv2d(hidden, hidden, 3, padding=1), nn.LeakyReLU(0.1),
                                       nn.Conv2d(hidden, 4, 3, padding=1))

    def forward(self, middle: Tensor, flows: Tensor, correlation: Tensor) -> tuple[Tensor, Tensor]:
        if self.scale is not None:
            middle = _upsample(middle, 1 / self.scale)
        looked_up = F.leaky_relu(self.convc1(correlation), 0.1)
        motion = F.leaky_relu(self.convf2(F.leaky_relu(self.convf1(flows), 0.1)), 0.1)
        joined = F.leaky_relu(self.conv(torch.cat([looked_up, motion], dim=1)), 0.1)
        hidden = self.gru(torch.cat([joined, flows, middle], dim=1))
        delta_middle, delta_flows = self.feat_head(hidden), self.flow_head(hidden)
        if self.scale is not None:
            delta_middle = _upsample(delta_middle, self.scale)
            delta_flows = self.scale * _upsample(delta_flows, self.scale)
        return delta_middle, delta_flows


class _Correlation:
    """All-pairs correlation of two ``(B, C, h, w)`` feature maps, both ways, as average-pooled pyramids; looked
    up in a ``(2r+1)^2`` window around given positions at every level."""

    def __init__(self, features0: Tensor, features1: Tensor):
        batch, channels, height, width = features0.shape
        volume = torch.einsum("bci,bcj->bij", features0.flatten(2), features1.flatten(2)) / channels ** 0.5
        self.size = (batch, height, width)
        self.forward_levels = [volume.reshape(batch * height * width, 1, height, width)]
        self.backward_levels = [volume.transpose(1, 2).reshape(batch * height * width, 1, height, width)]
        for _ in range(_CORRELATION_LEVELS - 1):
            self.forward_levels.append(F.avg_pool2d(self.forward_levels[-1], 2, 2))
            self.backward_levels.append(F.avg_pool2d(self.backward_levels[-1], 2, 2))
        steps = torch.linspace(-_CORRELATION_RADIUS, _CORRELATION_RADIUS, 2 * _CORRELATION_RADIUS + 1,
                               device=features0.device)
        # Window entry (i, j) is offset by steps[i] in x and steps[j] in y: the order the released weights read.
        first, second = torch.meshgrid(steps, steps, indexing="ij")
        self.window = torch.stack([first, second], dim=-1).view(1, *first.shape, 2)

    @staticmethod
    def _sample(levels: list[Tensor], positions: Tensor, window: Tensor, size: tuple[int, int, int]) -> Tensor:
        batch, height, width = size
        centres = positions.permute(0, 2, 3, 1).reshape(-1, 1, 1, 2)
        looked_up = []
        for level, volume in enumerate(levels):
            points = centres / 2**level + window
            rows, cols = volume.shape[-2:]
            grid = torch.stack([2 * points[..., 0] / (cols - 1) - 1, 2 * points[..., 1] / (rows - 1) - 1], dim=-1)
            sampled = F.grid_sample(volume, grid, align_corners=True)
            looked_up.append(sampled.view(batch, height, width, -1))
        return torch.cat(looked_up, dim=-1).permute(0, 3, 1, 2)

    def lookup(self, positions1: Tensor, positions0: Tensor) -> Tensor:
        """``(B, 2, h, w)`` positions in frame 1 (of frame 0's pixels) and in frame 0 (of frame 1's) to the
        ``(B, 2 * levels * (2r+1)^2, h, w)`` correlation around them."""
        return torch.cat([self._sample(self.forward_levels, positions1, self.window, self.size),
                          self._sample(self.backward_levels, positions0, self.window, self.size)], dim=1)


def _pixel_grid(batch: int, height: int, width: int, device: torch.device) -> Tensor:
    """``(B, 2, h, w)`` pixel coordinates, x first."""
    ys, xs = torch.meshgrid(torch.arange(height, device=device), torch.arange(width, device=device), indexing="ij")
    return torch.stack([xs, ys]).float()[None].expand(batch, -1, -1, -1)


class AMTS(nn.Module):
    """AMT-S: ``(img0, img1, t)`` ``(B, 3, H, W)`` in ``[0, 1]`` (``H, W`` multiples of 16) and ``(B, 1, 1, 1)``
    to the frame at ``t``, ``(B, 3, H, W)`` in ``[0, 1]``."""

    def __init__(self):
        super().__init__()
        c1, c2, c3, c4 = _PYRAMID
        self.feat_encoder = _ContextEncoder()
        self.encoder = _ImagePyramid(_PYRAMID)
        self.decoder4 = _CoarsestDecoder(c4, c3)
        self.decoder3 = _Decoder(c3, c2)
        self.decoder2 = _Decoder(c2, c1)
        self.decoder1 = _MultiFlowDecoder(c1, _FLOWS)
        self.update4 = _CorrelationUpdate(c3, None)
        self.update3 = _CorrelationUpdate(c2, 2.0)
        self.update2 = _CorrelationUpdate(c1, 4.0)
        self.comb_block = nn.Sequential(nn.Conv2d(3 * _FLOWS, 6 * _FLOWS, 3, 1, 1), nn.PReLU(6 * _FLOWS),
                                        nn.Conv2d(6 * _FLOWS, 3, 3, 1, 1))

    @staticmethod
    def _refine(update: _CorrelationUpdate, correlation: _Correlation, grid: Tensor, time: Tensor, middle: Tensor,
                flow0: Tensor, flow1: Tensor, downsample: int) -> tuple[Tensor, Tensor, Tensor]:
        """One correlation update of ``(middle, flow0, flow1)``; the flows' positions in the other frame follow
        from linear motion (the flow ``t -> 1`` over ``t`` reaches frame 1 from frame 0)."""
        coarse0, coarse1 = flow0, flow1
        if downsample != 1:
            coarse0, coarse1 = (_upsample(flow, 1 / downsample) / downsample for flow in (flow0, flow1))
        looked_up = correlation.lookup(grid + coarse1 / time, grid + coarse0 / (1 - time))
        delta_middle, delta_flows = update(middle, torch.cat([coarse0, coarse1], dim=1), looked_up)
        return middle + delta_middle, flow0 + delta_flows[:, 0:2], flow1 + delta_flows[:, 2:4]

    def forward(self, img0: Tensor, img1: Tensor, time: Tensor) -> Tensor:
        mean = torch.cat([img0, img1], dim=2).mean(dim=(1, 2, 3), keepdim=True)
        img0, img1 = img0 - mean, img1 - mean
        batch, _, height, width = img0.shape
        grid = _pixel_grid(batch, height // 8, width // 8, img0.device)
        context0, context1 = self.feat_encoder(torch.cat([img0, img1])).chunk(2)
        correlation = _Correlation(context0, context1)
        levels0, levels1 = self.encoder(img0), self.encoder(img1)

        flow0, flow1, middle = self.decoder4(levels0[3], levels1[3], time)
        middle, flow0, flow1 = self._refine(self.update4, correlation, grid, time, middle, flow0, flow1, 1)
        for level, decoder, update, downsample in ((2, self.decoder3, self.update3, 2),
                                                   (1, self.decoder2, self.update2, 4)):
            flow0, flow1, middle = decoder(middle, levels0[level], levels1[level], flow0, flow1)
            middle, flow0, flow1 = self._refine(update, correlation, grid, time, middle, flow0, flow1, downsample)
        flows0, flows1, masks, residuals = self.decoder1(middle, levels0[0], levels1[0], flow0, flow1)
        return self._merge(img0, img1, flows0, flows1, masks, residuals, mean)

    def _merge(self, img0: Tensor, img1: Tensor, flows0: Tensor, flows1: Tensor, masks: Tensor, residuals: Tensor,
               mean: Tensor) -> Tensor:
        """Blend each flow pair's two warped frames by its mask, add its residual and the mean back; the middle
        frame is the candidates' average plus the merging convolution's correction, clamped to ``[0, 1]``."""
        batch, _, height, width = img0.shape
        n = _FLOWS

        def per_flow(x: Tensor, channels: int) -> Tensor:
            return x.reshape(batch * n, channels, height, width)

        def repeated(image: Tensor) -> Tensor:
            return image.unsqueeze(1).expand(-1, n, -1, -1, -1).reshape(batch * n, 3, height, width)

        mask = per_flow(masks, 1)
        candidates = (mask * _warp(repeated(img0), per_flow(flows0, 2))
                      + (1 - mask) * _warp(repeated(img1), per_flow(flows1, 2))
                      + mean.repeat_interleave(n, dim=0) + per_flow(residuals, 3))
        candidates = candidates.view(batch, n, 3, height, width)
        merged = candidates.mean(dim=1) + self.comb_block(candidates.view(batch, 3 * n, height, width))
        return merged.clamp(0, 1)


def check_frame_size(height: int, width: int) -> None:
    """``ValueError`` unless frames of ``height x width``, padded to :data:`PAD_MULTIPLE`, are at least
    :data:`MIN_PADDED_SIDE` a side."""
    padded = [-(-side // PAD_MULTIPLE) * PAD_MULTIPLE for side in (height, width)]
    if min(padded) < MIN_PADDED_SIDE:
        least = MIN_PADDED_SIDE - PAD_MULTIPLE + 1
        raise ValueError(f"motion smoothness needs frames of at least {least} pixels a side (AMT-S correlates "
                         f"1/8-resolution features over {_CORRELATION_LEVELS} halving levels), got {height}x{width}")


def _pad(frames: Tensor) -> tuple[Tensor, tuple[int, int, int, int]]:
    """Edge-replicate ``(B, 3, H, W)`` up to multiples of :data:`PAD_MULTIPLE`, split evenly (the extra pixel
    after); returns the padded frames and ``(left, right, top, bottom)``."""
    height, width = frames.shape[-2:]
    extra_h, extra_w = (-side % PAD_MULTIPLE for side in (height, width))
    pads = (extra_w // 2, extra_w - extra_w // 2, extra_h // 2, extra_h - extra_h // 2)
    return F.pad(frames, pads, mode="replicate"), pads


class AmtInterpolator:
    """The middle frames of frame pairs with AMT-S at ``t = 1/2``: ``(before, after)`` ``(B, 3, H, W)`` floats in
    ``[0, 1]`` to ``(B, 3, H, W)`` in ``[0, 1]``, padded as VBench pads them and cropped back."""

    def __init__(self, model: AMTS):
        self.model = model

    def __call__(self, before: Tensor, after: Tensor) -> Tensor:
        device = next(self.model.parameters()).device
        check_frame_size(*before.shape[-2:])
        (before, pads), (after, _) = _pad(before.to(device)), _pad(after.to(device))
        time = torch.full((len(before), 1, 1, 1), 0.5, device=device)
        with torch.no_grad():
            middle = self.model(before, after, time)
        left, right, top, bottom = pads
        return middle[..., top : middle.shape[-2] - bottom, left : middle.shape[-1] - right]


def _released_state(path: Path) -> Mapping[str, Any]:
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise UnsafeCheckpointError(f"refusing to load {path}: loading it would run Python code stored in it; "
                                    f"fastvmt reads it with torch.load(weights_only=True) only "
                                    f"(torch: {str(exc).splitlines()[0]})") from exc
    except (RuntimeError, EOFError, IndexError) as exc:
        raise ValueError(f"cannot read {path}: not a PyTorch checkpoint saved by torch.save ({exc!r})") from exc
    state = loaded.get("state_dict") if isinstance(loaded, Mapping) else None
    if not isinstance(state, Mapping):
        raise ValueError(f"{path}: expected AMT's released checkpoint, a dict with the network's tensors under "
                         f"'state_dict'; got {type(loaded).__name__}"
                         + (f" with keys {sorted(map(str, loaded))[:5]}" if isinstance(loaded, Mapping) else ""))
    return state


def load_amt_s(path: str | Path, device: str | torch.device = "cpu") -> AMTS:
    """AMT-S with the weights of ``path`` (the released ``amt-s.pth``), on ``device``, in eval mode.

    Raises:
        UnsafeCheckpointError: the file would run code when loaded.
        ValueError: not a torch checkpoint, no ``state_dict``, or tensor names/shapes that are not AMT-S's (the
            missing, unexpected and mismatched names are listed).
    """
    path = Path(path)
    state = _released_state(path)
    model = AMTS()
    expected = {name: tuple(tensor.shape) for name, tensor in model.state_dict().items()}
    found = {str(name): tuple(getattr(tensor, "shape", ())) for name, tensor in state.items()}
    missing = sorted(set(expected) - set(found))
    unexpected = sorted(set(found) - set(expected))
    mismatched = [f"{name} {found[name]} (AMT-S: {expected[name]})" for name in sorted(set(found) & set(expected))
                  if found[name] != expected[name]]
    if missing or unexpected or mismatched:
        listed = [f"{what} {len(names)}: {', '.join(names[:4])}{', ...' if len(names) > 4 else ''}"
                  for what, names in (("missing", missing), ("unexpected", unexpected), ("mismatched", mismatched))
                  if names]
        raise ValueError(f"{path} is not AMT-S's released checkpoint (amt-s.pth, the file VBench caches as "
                         f"amt_model/amt-s.pth): {'; '.join(listed)}")
    model.load_state_dict({name: state[name] for name in expected})
    return model.to(device).eval()
