"""The four extension points of fastvmt and the small values that flow between them.

A run is: a :class:`MotionExtractor` declares what it reads of the :class:`Backbone` at a latent (``reads``:
:data:`ATTENTION`, one DiT block's :class:`AttentionFeatures`, and/or :data:`PREDICTION`, the velocity as a
:class:`LatentPrediction`); the pipeline reads exactly that and the extractor turns it into motion (a
:class:`MotionField`, a :class:`LatentMotion`, or both as a :class:`HybridMotion`); a :class:`GuidanceLoss`
compares the reference's and the generated video's motion; a :class:`GradientScheduler` decides which denoising
steps are guided and, inside a guided step, whether an optimisation iteration reads the backbone afresh or reuses
what it read last.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from collections.abc import Mapping
from typing import Any, ClassVar, Union

from jaxtyping import Float, Int
from torch import Tensor

__all__ = [
    "ATTENTION",
    "PREDICTION",
    "AttentionFeatures",
    "Backbone",
    "GradientScheduler",
    "GuidanceLoss",
    "HybridMotion",
    "InnerStep",
    "LatentMotion",
    "LatentPrediction",
    "LossValue",
    "Motion",
    "MotionExtractor",
    "MotionField",
    "Readings",
    "StepState",
    "TokenGrid",
    "VideoGeometry",
    "uses_cfg",
]

#: What an extractor reads of the backbone (``MotionExtractor.reads``; docs/algorithm.md#readings): the captured
#: block's self-attention Q/K, differentiable through the DiT ...
ATTENTION = "attention"
#: ... or the velocity of the latent, read without gradient, as a :class:`LatentPrediction`.
PREDICTION = "prediction"


def uses_cfg(cfg_scale: float) -> bool:
    """Whether ``cfg_scale`` turns classifier-free guidance on (any value but 1): a velocity is then two DiT
    passes, of the prompt and of the negative prompt."""
    return cfg_scale != 1.0


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
    (``0 <= j - i < span``); with all ordered pairs it is the frame count. Windowed extractors also give the
    windows' top-left corners ``starts`` (n, tiles, 2) and the mean key of each window ``key_means`` (n, tiles, d).
    """

    displacement: Float[Tensor, "n s 2"]
    pairs: Int[Tensor, "n 2"]
    grid: TokenGrid
    span: int
    key_means: Float[Tensor, "n p d"] | None = None
    starts: Int[Tensor, "n p 2"] | None = None


@dataclass(frozen=True)
class LatentPrediction:
    """The backbone's velocity at a latent, read without gradient; the clean latent it predicts is
    ``latents - sigma * velocity`` (docs/algorithm.md#flowmotion).

    ``latents`` is the ``(1, C, F, H8, W8)`` latent at noise level ``sigma`` (for the generated video, the float32
    latent being optimised, which the optimiser updates in place). ``velocity`` has its shape and no graph; it is
    ``None`` at ``sigma = 0``, where a latent predicts itself. ``path_velocity`` is the sampling path's mean
    velocity from its start to this latent, ``None`` at the start and for the reference.
    """

    latents: Float[Tensor, "1 c f h w"]
    sigma: float
    velocity: Float[Tensor, "1 c f h w"] | None = None
    path_velocity: Float[Tensor, "1 c f h w"] | None = None


@dataclass(frozen=True)
class Readings:
    """What the backbone gave at one latent: the kinds an extractor reads are set, the others ``None``."""

    attention: AttentionFeatures | None = None
    prediction: LatentPrediction | None = None

    def input_for(self, reads: frozenset[str]) -> AttentionFeatures | LatentPrediction | Readings:
        """What an extractor that ``reads`` these kinds is given: the one reading, or all of them for several."""
        if len(reads) > 1:
            return self
        (kind,) = reads
        return getattr(self, kind)


@dataclass(frozen=True)
class LatentMotion:
    """Motion carried by a predicted clean latent video, ``(1, C, F, H8, W8)`` float32: its frames and the
    differences between them (docs/algorithm.md#flowmotion)."""

    clean: Float[Tensor, "1 c f h w"]


@dataclass(frozen=True)
class HybridMotion:
    """Both kinds of motion of one video: the attention motion flow and the predicted clean latent."""

    amf: MotionField
    latent: LatentMotion


#: What an extractor gives and a loss compares.
Motion = Union[MotionField, LatentMotion, HybridMotion]


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
    """Turns what the backbone reads at a latent into motion.

    ``reads`` declares what that is (:data:`ATTENTION`, :data:`PREDICTION` or both); the pipeline reads exactly
    those and passes ``Readings.input_for(reads)`` to :meth:`fit` and :meth:`extract`: the
    :class:`AttentionFeatures` or the :class:`LatentPrediction` alone, or the :class:`Readings` for several.
    """

    reads: ClassVar[frozenset[str]] = frozenset({ATTENTION})

    def check(self, grid: TokenGrid) -> None:
        """Raise ``ValueError`` if this extractor cannot run on ``grid`` (called before any heavy work)."""

    def fit(self, reference: Any) -> Any:
        """Derive state from the reference's reading (channel masks, indices, ...); none by default."""
        return None

    @abstractmethod
    def extract(self, features: Any, state: Any = None, *, reference: bool = False) -> Motion:
        """Motion of ``features`` (the reading ``reads`` asks for); ``reference=True`` for the (detached)
        reference video's motion."""


class GuidanceLoss(ABC):
    """Compares the reference motion with the generated motion (both from the same extractor)."""

    @abstractmethod
    def __call__(self, reference: Motion, generated: Motion) -> LossValue:
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
    #: Whether the backbone generates from a first frame as well as text (image-to-video; it then has
    #: ``encode_image`` and ``conditioned_on``, docs/algorithm.md#image-to-video).
    takes_image: bool = False

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
        cache: Any = None,
    ) -> Float[Tensor, "1 c f h8 w8"]:
        """Flow-matching velocity, with classifier-free guidance when ``cfg_scale != 1``; ``cache`` is a step cache
        of :meth:`step_cache` (only backbones that make one get one)."""

    def step_cache(self, threshold: float, num_steps: int) -> Any:
        """A fresh step cache for ``num_steps`` velocity calls (docs/algorithm.md#step-cache); ``ValueError`` for
        a backbone that has none, as by default."""
        raise ValueError(f"the {type(self).__name__} backbone has no step cache (no TeaCache coefficients fit it); "
                         "turn the step cache off")

    @abstractmethod
    def features(
        self,
        latents: Float[Tensor, "1 c f h8 w8"],
        timestep: float,
        context: Tensor,
        *,
        block: int,
        checkpointing: bool = False,
    ) -> AttentionFeatures:
        """Q and K of ``block``'s self-attention; the forward stops there. Differentiable w.r.t. ``latents``;
        ``checkpointing``: recompute the blocks before ``block`` in the backward instead of keeping their
        activations (same gradients; a backbone without such blocks ignores it)."""
