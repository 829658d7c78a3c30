"""The four extension points of fastvmt and the small values that flow between them.

A run is: a :class:`Backbone` captures :class:`AttentionFeatures` of one DiT block; a :class:`MotionExtractor`
turns them into a :class:`MotionField`; a :class:`GuidanceLoss` compares the reference's and the generated
video's motion; a :class:`GradientScheduler` decides which denoising steps are guided and, inside a guided
step, whether an optimisation iteration computes a fresh gradient or reuses the cached one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from collections.abc import Mapping
from typing import Any

from jaxtyping import Float, Int
from torch import Tensor

__all__ = [
    "AttentionFeatures",
    "Backbone",
    "GradientScheduler",
    "GuidanceLoss",
    "InnerStep",
    "LossValue",
    "MotionExtractor",
    "MotionField",
    "StepState",
    "TokenGrid",
    "VideoGeometry",
]


@dataclass(frozen=True)
class TokenGrid:
    """The DiT's token grid: ``frames x height x width`` latent patches."""

    frames: int
    height: int
    width: int

    @property
    def tokens_per_frame(self) -> int:
        return self.height * self.width

    @property
    def tokens(self) -> int:
        return self.frames * self.height * self.width


@dataclass(frozen=True)
class VideoGeometry:
    """Sizes of one video through a backbone: pixels, latent tensor and token grid."""

    num_frames: int
    height: int
    width: int
    latent_shape: tuple[int, int, int, int, int]
    grid: TokenGrid


@dataclass(frozen=True)
class AttentionFeatures:
    """Self-attention queries and keys of one DiT block, per head, after q/k norm and RoPE.

    ``q`` and ``k`` are ``(frames, height, width, heads, head_dim)`` on the token grid; they keep their graph
    to the latents when captured with gradients.
    """

    q: Float[Tensor, "f h w heads d"]
    k: Float[Tensor, "f h w heads d"]

    @property
    def grid(self) -> TokenGrid:
        f, h, w = self.q.shape[:3]
        return TokenGrid(f, h, w)


@dataclass(frozen=True)
class MotionField:
    """Motion of a video as displacements between frame pairs.

    ``displacement[n, s]`` is the (d_row, d_col) flow, in tokens, of query token ``s`` (raster order) of frame
    ``pairs[n, 0]`` towards frame ``pairs[n, 1]``. ``span`` is the temporal span sf of forward pairs
    (``0 <= j - i < span``); with all ordered pairs it is the frame count. Windowed extractors also give the windows' top-left corners ``starts``
    (n, tiles, 2) and the mean key of each window ``key_means`` (n, tiles, d).
    """

    displacement: Float[Tensor, "n s 2"]
    pairs: Int[Tensor, "n 2"]
    grid: TokenGrid
    span: int
    key_means: Float[Tensor, "n p d"] | None = None
    starts: Int[Tensor, "n p 2"] | None = None


@dataclass(frozen=True)
class LossValue:
    """A guidance loss: the scalar to differentiate and its named parts (floats, for logging)."""

    total: Float[Tensor, ""]
    parts: Mapping[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class InnerStep:
    """Where the optimisation is, for a :class:`GradientScheduler` to decide compute vs reuse.

    ``losses`` holds the loss of every gradient computed so far in this outer step, in order; ``reused``
    counts the iterations in a row, just before this one, that reused the cached gradient.
    """

    outer_step: int
    num_outer_steps: int
    inner: int
    num_inner: int
    losses: tuple[float, ...] = ()
    reused: int = 0


@dataclass(frozen=True)
class StepState:
    """What a pipeline callback sees after each denoising step (it may return replacement latents)."""

    step: int
    num_steps: int
    timestep: float
    sigma: float
    latents: Tensor
    guided: bool
    loss: float | None = None
    gradients_computed: int = 0
    gradients_reused: int = 0


class MotionExtractor(ABC):
    """Turns captured attention features into a :class:`MotionField`."""

    def check(self, grid: TokenGrid) -> None:
        """Raise ``ValueError`` if this extractor cannot run on ``grid`` (called before any heavy work)."""

    def fit(self, reference: AttentionFeatures) -> Any:
        """Derive state from the reference features (channel masks, indices, ...); none by default."""
        return None

    @abstractmethod
    def extract(self, features: AttentionFeatures, state: Any = None, *, reference: bool = False) -> MotionField:
        """Motion of ``features``; ``reference=True`` for the (detached) reference video's motion."""


class GuidanceLoss(ABC):
    """Compares the reference motion with the generated motion."""

    @abstractmethod
    def __call__(self, reference: MotionField, generated: MotionField) -> LossValue:
        """A scalar loss, differentiable w.r.t. ``generated``, and its named parts."""


class GradientScheduler(ABC):
    """Pure rules for when guidance runs: no model, no tensors."""

    @abstractmethod
    def is_guided(self, step: int, num_steps: int) -> bool:
        """Whether outer denoising step ``step`` (0-based, of ``num_steps`` run) is guided."""

    @abstractmethod
    def should_compute(self, inner: InnerStep) -> bool:
        """Whether this inner iteration computes a fresh gradient (else it reuses the cached one)."""


class Backbone(ABC):
    """A video diffusion transformer with its VAE and text encoder."""

    num_blocks: int
    heads: int
    head_dim: int

    @property
    @abstractmethod
    def device(self) -> Any:
        """The torch device the DiT runs on."""

    @property
    @abstractmethod
    def dtype(self) -> Any:
        """The DiT's compute dtype (latents are passed in this dtype)."""

    @abstractmethod
    def geometry(self, num_frames: int, height: int, width: int) -> VideoGeometry:
        """Latent shape and token grid for a video size; raises ``ValueError`` for unsupported sizes."""

    @abstractmethod
    def encode_video(self, video: Float[Tensor, "t 3 h w"]) -> Float[Tensor, "1 c f h8 w8"]:
        """VAE-encode frames in [-1, 1] to latents."""

    @abstractmethod
    def decode(self, latents: Float[Tensor, "1 c f h8 w8"]) -> Float[Tensor, "t 3 h w"]:
        """VAE-decode latents to frames in [-1, 1]."""

    @abstractmethod
    def encode_prompt(self, prompt: str) -> Tensor:
        """Text context for the DiT's cross-attention."""

    @abstractmethod
    def velocity(
        self,
        latents: Float[Tensor, "1 c f h8 w8"],
        timestep: float,
        context: Tensor,
        negative_context: Tensor | None = None,
        cfg_scale: float = 1.0,
    ) -> Float[Tensor, "1 c f h8 w8"]:
        """Flow-matching velocity, with classifier-free guidance when ``cfg_scale != 1``."""

    @abstractmethod
    def features(
        self, latents: Float[Tensor, "1 c f h8 w8"], timestep: float, context: Tensor, *, block: int
    ) -> AttentionFeatures:
        """Q and K of ``block``'s self-attention; the forward stops there. Differentiable w.r.t. ``latents``."""
