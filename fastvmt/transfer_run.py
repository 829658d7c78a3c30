"""One motion transfer from files to files: what ``fastvmt transfer`` runs, and each job of ``fastvmt batch``.

:class:`TransferSettings` is what runs share (model, video size, sampling options, default strategy); a
:class:`TransferJob` is what one run generates. The steps, in this order so that bad input fails before any
model work:

1. :func:`prepare_transfer` checks the output paths and reads the reference fitted to the settings' size and
   frame count;
2. :meth:`PreparedTransfer.run` samples with a pipeline (:meth:`TransferSettings.load_backbone`,
   :meth:`TransferSettings.pipeline`);
3. :meth:`PreparedTransfer.write` writes the MP4 and its JSON sidecar as one atomic group.

:func:`replay_options` reads a sidecar back: ``fastvmt transfer --config`` replays it, from any folder (the sidecar
records resolved paths, the dtype, the device and the attention kernel), and :func:`replay_note` says where a
replay computes differently from the recorded run.

>>> settings = TransferSettings(model_dir="Wan2.1-T2V-1.3B").check()  # doctest: +SKIP
>>> job = TransferJob("dog.mp4", "a fox runs through snow")  # doctest: +SKIP
>>> transfer = prepare_transfer(job, settings, "fox.mp4")  # doctest: +SKIP
>>> pipeline = settings.pipeline(settings.load_backbone(), settings.job_strategy(job))  # doctest: +SKIP
>>> transfer.write(transfer.run(pipeline))  # fox.mp4 and fox.json  # doctest: +SKIP
"""

from __future__ import annotations

import os
import platform
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from fastvmt.backbones import MODEL_DTYPES, RECOMMENDED_RUN
from fastvmt.json_input import read_json
from fastvmt.outputs import atomic_outputs, json_text, refuse_inputs, refuse_overwrite

if TYPE_CHECKING:
    from fastvmt.generation.pipeline import MotionTransferPipeline, TransferResult
    from fastvmt.interfaces import Backbone
    from fastvmt.io import Video
    from fastvmt.io.image import FittedImage
    from fastvmt.strategies.spec import Strategy

__all__ = [
    "PreparedTransfer",
    "TransferJob",
    "TransferSettings",
    "check_options",
    "effective_backend",
    "prepare_transfer",
    "replay_note",
    "replay_options",
    "run_environment",
    "sidecar_path",
]

#: The registered backbone a run loads from ``model_dir``.
BACKBONE = "wan"


def _text(name: str, value: Any, *, optional: bool = False) -> Any:
    if (value is None and optional) or (isinstance(value, str) and value.strip()):
        return value
    raise ValueError(f"{name} must be a non-empty string, got {value!r}")


def _path(name: str, value: Any) -> Any:
    if isinstance(value, os.PathLike) or (isinstance(value, str) and value.strip()):
        return value
    raise ValueError(f"{name} must be a path, got {value!r}")


def _mapping(name: str, value: Any) -> Mapping[str, Any]:
    if not isinstance(value, Mapping) or not all(isinstance(key, str) for key in value):
        raise ValueError(f"{name} must be an object of strategy fields, e.g. {{\"extractor.window\": 11}}, got "
                         f"{value!r}")
    return value


def _choice(name: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(choices)}, got {value!r}")
    return value


def _setting_rules() -> dict[str, Any]:
    """Each setting's check, returning its normal form (imported on use: torch comes with the geometry)."""
    from fastvmt.backbones.attention import ATTENTION_CHOICES
    from fastvmt.generation.sampling import check_num_steps, check_seed
    from fastvmt.io.checks import check_num_frames, check_size
    from fastvmt.strategies.spec import Strategy, check_field
    from fastvmt.values import check_flag, check_int

    def strategy_field(name: str) -> Any:
        return lambda value: None if value is None else check_field(name, value)

    return {
        "reference": lambda value: _path("reference", value),
        "image": lambda value: None if value is None else _path("image", value),
        "prompt": lambda value: _text("prompt", value),
        "model_dir": lambda value: _path("model_dir", value),
        "num_frames": lambda value: check_num_frames(check_int("num_frames", value)),
        "height": lambda value: check_size("height", check_int("height", value)),
        "width": lambda value: check_size("width", check_int("width", value)),
        "num_inference_steps": check_num_steps,
        "seed": check_seed,
        "strategy": lambda value: (Strategy.from_dict(value).to_dict() if isinstance(value, Mapping)
                                   else _text("strategy", value)),
        "overrides": lambda value: _mapping("overrides", value),
        "backend": lambda value: _text("backend", value),
        "denoising_strength": strategy_field("denoising_strength"),
        "cfg_scale": strategy_field("cfg_scale"),
        "guidance_checkpointing": strategy_field("guidance_checkpointing"),
        "negative_prompt": lambda value: _text("negative_prompt", value, optional=True),
        "dtype": lambda value: _choice("dtype", value, MODEL_DTYPES),
        "device": lambda value: _text("device", value, optional=True),
        "offload": lambda value: check_flag("offload", value),
        "attention": lambda value: _choice("attention", value, ATTENTION_CHOICES),
        "step_cache": strategy_field("step_cache"),
        "progress": lambda value: check_flag("progress", value),
    }


def _dit_blocks(model_dir: str | Path) -> int:
    """The blocks of the DiT in ``model_dir``, from its file headers: a strategy's block is checked before loading."""
    from fastvmt.backbones.checkpoint import dit_block_count
    from fastvmt.backbones.families import detect_family

    return dit_block_count(detect_family(model_dir).locate(model_dir))


def check_options(options: Mapping[str, Any]) -> dict[str, Any]:
    """``options`` (settings fields and a job's ``reference`` and ``prompt``, any subset) with each value checked and
    in normal form (e.g. an integer ``cfg_scale`` as a float); ``ValueError`` naming the first bad one. Other keys
    pass as they are."""
    rules = _setting_rules()
    return {key: rules[key](value) if key in rules else value for key, value in options.items()}


def sidecar_path(video: str | Path) -> Path:
    """Where a run's JSON sidecar sits: beside its video, same stem."""
    return Path(video).with_suffix(".json")


@dataclass(frozen=True)
class TransferJob:
    """What one run generates: ``prompt``, with the motion of ``reference`` (and, on an image-to-video backbone, the
    first frame ``image``). ``seed`` and ``strategy`` (a preset name) replace the settings' when given;
    ``overrides`` apply on top of the settings' own."""

    reference: str | Path
    prompt: str
    image: str | Path | None = None
    seed: int | None = None
    strategy: str | None = None
    overrides: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class TransferSettings:
    """What runs share; picklable, so a Ray worker gets them as they are.

    ``strategy`` is a preset name or a strategy's ``to_dict()`` (a replayed sidecar's), with ``overrides``
    applied; ``seed`` is the seed of jobs without one; ``backend`` ``"auto"`` lets each op choose.
    ``denoising_strength`` and ``cfg_scale`` default to the strategy's, ``negative_prompt`` to Wan's.
    ``offload`` keeps the weights in CPU memory between uses (low-VRAM GPUs). ``guidance_checkpointing`` and
    ``step_cache`` (docs/algorithm.md#step-cache), when given, replace the strategy's (after the overrides).
    ``attention`` is the DiT's attention kernel (:data:`~fastvmt.backbones.attention.ATTENTION_CHOICES`).
    """

    model_dir: str | Path
    num_frames: int = RECOMMENDED_RUN.num_frames
    height: int = RECOMMENDED_RUN.height
    width: int = RECOMMENDED_RUN.width
    num_inference_steps: int = RECOMMENDED_RUN.num_steps
    seed: int = 42
    strategy: str | Mapping[str, Any] = "fastvmt"
    overrides: Mapping[str, Any] = field(default_factory=dict)
    backend: str = "auto"
    denoising_strength: float | None = None
    cfg_scale: float | None = None
    negative_prompt: str | None = None
    dtype: str = MODEL_DTYPES[0]
    device: str | None = None
    offload: bool = False
    guidance_checkpointing: bool | None = None
    attention: str = "auto"
    step_cache: float | None = None
    progress: bool = False

    @classmethod
    def from_options(cls, options: Mapping[str, Any]) -> TransferSettings:
        """The settings among ``options`` (keys that are not fields, e.g. a sidecar's prompt, are left out), each
        value checked (:func:`check_options`) before the settings are built."""
        names = {f.name for f in fields(cls)}
        return cls(**check_options({key: value for key, value in options.items() if key in names}))

    def check(self) -> TransferSettings:
        """Fail on a bad option before any model work: every value's type and range, the video size against
        :func:`fastvmt.geometry.check_video_size`'s bound, the backend, the device, the attention kernel's package,
        the checkpoint's files (found, not read). Returns the settings with their numbers in normal form."""
        from fastvmt import plugins
        from fastvmt.backbones.architecture import check_stored_config
        from fastvmt.backbones.attention import resolve_attention
        from fastvmt.backbones.checkpoint import read_config
        from fastvmt.backbones.families import detect_family
        from fastvmt.backbones.wan import resolve_device
        from fastvmt.io.checks import check_video_size

        checked = replace(self, **check_options({f.name: getattr(self, f.name) for f in fields(TransferSettings)}))
        check_video_size(checked.num_frames, checked.height, checked.width)
        if checked.backend != "auto":
            plugins.get("backend", checked.backend)
        resolve_device(checked.device)
        resolve_attention(checked.attention)
        files = detect_family(checked.model_dir).locate(checked.model_dir)  # every file there, no weight read yet
        check_stored_config(read_config(files.config), files.config)
        return checked

    def job_strategy(self, job: TransferJob) -> Strategy:
        """The job's preset (or these settings' strategy) with these settings' overrides, then the job's; its
        components are built once, so an unknown name or option raises ``LookupError``/``ValueError`` here, as does
        a captured block the checkpoint's DiT does not have (read from its file headers, not loaded)."""
        from fastvmt.strategies.components import build_components, resolve_strategy
        from fastvmt.strategies.spec import Strategy

        base = job.strategy or self.strategy
        strategy = resolve_strategy(Strategy.from_dict(base) if isinstance(base, Mapping) else base,
                                    {**self.overrides, **job.overrides})
        if self.guidance_checkpointing is not None:
            strategy = strategy.override(guidance_checkpointing=self.guidance_checkpointing)
        if self.step_cache is not None:
            strategy = strategy.override(step_cache=self.step_cache)
        build_components(strategy)
        strategy.check_block(_dit_blocks(self.model_dir))
        return strategy

    def load_backbone(self) -> Backbone:
        """The backbone of ``model_dir`` in these settings' dtype, device, offloading and attention kernel."""
        import torch

        from fastvmt import plugins
        from fastvmt.backbones.offload import OFFLOAD_TO_CPU

        offload = OFFLOAD_TO_CPU if self.offload else None
        options: dict[str, Any] = {"dtype": getattr(torch, self.dtype), "offload": offload,
                                   "attention": self.attention}
        if self.device is not None:
            options["device"] = self.device
        return plugins.get("backbone", BACKBONE).from_pretrained(self.model_dir, **options)

    def pipeline(self, backbone: Backbone, strategy: Strategy) -> MotionTransferPipeline:
        """A pipeline running ``strategy`` on ``backbone`` with these settings' AMF backend."""
        from fastvmt.generation.pipeline import MotionTransferPipeline

        return MotionTransferPipeline(backbone, strategy, None if self.backend == "auto" else self.backend)


@dataclass(frozen=True)
class PreparedTransfer:
    """A run whose outputs are checked and whose reference is read: only the model work is left."""

    job: TransferJob
    settings: TransferSettings
    out: Path
    overwrite: bool
    reference: Video
    #: The job's first frame fitted to the run's size (None without ``image``).
    image: FittedImage | None = None

    @property
    def sidecar(self) -> Path:
        return sidecar_path(self.out)

    def run(self, pipeline: MotionTransferPipeline) -> TransferResult:
        """Generate the video. The report's config also records what replays the run from any folder: the
        resolved reference and model folder, dtype, requested device, offloading, the AMF backend in effect, the
        attention setting (and ``attention_note`` when the guidance forward runs another kernel) and the
        ``environment`` it ran in (:func:`run_environment`)."""
        from fastvmt.backbones.attention import resolve_attention
        from fastvmt.generation.pipeline import DEFAULT_NEGATIVE_PROMPT

        job, settings = self.job, self.settings
        result = pipeline(
            self.reference.frames, job.prompt, negative_prompt=settings.negative_prompt or DEFAULT_NEGATIVE_PROMPT,
            num_inference_steps=settings.num_inference_steps, denoising_strength=settings.denoising_strength,
            cfg_scale=settings.cfg_scale, seed=settings.seed if job.seed is None else job.seed,
            progress=settings.progress, image=None if self.image is None else self.image.frame,
        )
        result.report.config.update(
            reference=str(Path(job.reference).resolve()),
            image=None if job.image is None else str(Path(job.image).resolve()),
            model_dir=str(Path(settings.model_dir).resolve()),
            dtype=settings.dtype, device=settings.device, offload=settings.offload,
            backend=effective_backend(settings.backend), attention=settings.attention,
            environment=run_environment(result.latents.device, settings.attention),
        )
        note = resolve_attention(settings.attention).note
        if note is not None:
            result.report.config["attention_note"] = note
        return result

    def write(self, result: TransferResult, **sections: Any) -> None:
        """Write the MP4 at the reference's frame rate and its sidecar (the report, plus ``sections`` as extra
        top-level keys) as one group (:func:`~fastvmt.outputs.atomic_outputs`): both are written to hidden
        files, then renamed into place, the sidecar last; an error or Ctrl-C leaves both files or neither."""
        from fastvmt.io.video import encode_video

        with atomic_outputs([self.out, self.sidecar], overwrite=self.overwrite) as (video, sidecar):
            encode_video(video, result.frames, fps=self.reference.fps)
            sidecar.write_text(json_text({**result.report.to_dict(), **sections}))


def prepare_transfer(job: TransferJob, settings: TransferSettings, out: str | Path, *,
                     overwrite: bool = False, inputs: Iterable[tuple[str, str | Path | None]] = ()) -> PreparedTransfer:
    """Check the outputs (``out``, an MP4, and its sidecar) and read the job's reference fitted to the settings'
    size and frame count, before any model work. ``inputs``: other files the run reads, as ``(what, path)``
    (a replayed sidecar), which the outputs must not be.

    Raises:
        OutputIsInputError: an output is the reference, one of ``inputs``, or lies in a reference folder.
        FileExistsError: an output exists and ``overwrite`` is false.
        VideoError: a bad output path; a reference that is missing, unreadable or too short.
    """
    from fastvmt.io import check_output_path, read_video

    from fastvmt.io.image import read_image

    if job.image is not None:
        check_takes_image(settings.model_dir, "--image")
    refuse_inputs([out, sidecar_path(out)], [("reference", job.reference), ("image", job.image), *inputs])
    out = check_output_path(out, overwrite=overwrite)
    refuse_overwrite([sidecar_path(out)], overwrite)
    reference = read_video(job.reference, num_frames=settings.num_frames, height=settings.height,
                           width=settings.width)
    image = None if job.image is None else read_image(job.image, settings.height, settings.width)
    return PreparedTransfer(job, settings, out, overwrite, reference, image)


def check_takes_image(model_dir: str | Path, what: str) -> None:
    """``ValueError`` unless ``model_dir`` holds an image-to-video checkpoint: a job's first-frame image (``what``
    gives it, e.g. ``--image``) needs one."""
    from fastvmt.backbones.families import detect_family

    if not (family := detect_family(model_dir)).takes_image:
        raise ValueError(f"{what} needs an image-to-video checkpoint (e.g. Wan2.1-I2V-14B-480P); {model_dir} holds "
                         f"{family.title}")


def replay_options(sidecar: str | Path) -> dict[str, Any]:
    """What a run's sidecar records: its settings (see :meth:`TransferSettings.from_options`), ``seed``,
    ``reference``, ``prompt``, ``environment`` and ``versions``. A relative ``reference`` or ``model_dir`` (a
    sidecar from before paths were recorded resolved, or edited by hand) is read from the sidecar's folder.

    Raises:
        FileNotFoundError: no such file.
        ValueError: the file is not a run's sidecar, or a value in it is bad (the message names the file).
    """
    try:
        record = read_json(sidecar, "config file")
        options = {**record["config"], "seed": record["seed"], "versions": record.get("versions", {})}
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{sidecar} is not a fastvmt run sidecar ({exc})") from None
    for key in ("reference", "image", "model_dir"):
        if isinstance(options.get(key), str):
            options[key] = str(Path(sidecar).resolve().parent / options[key])  # an absolute path stays as it is
    try:
        return check_options(options)
    except ValueError as exc:
        raise ValueError(f"{sidecar}: {exc}") from None


def effective_backend(backend: str) -> str:
    """The AMF backend a run with setting ``backend`` uses: itself, or for ``"auto"`` the ``FASTVMT_BACKEND``
    environment variable when set (what the ops then follow)."""
    from fastvmt.backends.dispatch import ENV_BACKEND

    return backend if backend != "auto" else os.environ.get(ENV_BACKEND) or "auto"


def run_environment(device: Any, attention: str = "auto") -> dict[str, Any]:
    """Where a run computes on ``device`` (a ``torch.device``) with the ``attention`` setting: the device with its
    index, its model name and the DiT's attention kernels (:func:`~fastvmt.backbones.attention.resolve_attention`:
    the one without gradients, the guidance forward's). Recorded in the sidecar; a replay elsewhere is noted
    (:func:`replay_note`)."""
    import torch

    from fastvmt.backbones.attention import resolve_attention

    device, choice = torch.device(device), resolve_attention(attention)
    kernels = {"attention": choice.kernel, "gradient_attention": choice.gradient_kernel}
    if device.type == "cuda":
        index = torch.cuda.current_device() if device.index is None else device.index
        return {"device": f"cuda:{index}", "device_name": torch.cuda.get_device_name(index), **kernels}
    return {"device": str(device), "device_name": platform.machine(), **kernels}


def replay_note(recorded: Mapping[str, Any], settings: TransferSettings, device: Any) -> str | None:
    """A line saying how a replay of ``recorded`` (:func:`replay_options`) with ``settings`` on ``device``
    computes differently from the recorded run (dtype, device, attention kernel, torch or diffsynth version),
    or None when it does not: such a replay runs, but its frames may differ."""
    from fastvmt.generation.report import package_versions

    now = {"dtype": settings.dtype, **run_environment(device, settings.attention)}
    then = {key: recorded[key] for key in ("dtype",) if key in recorded}
    then |= {key: value for key, value in (recorded.get("environment") or {}).items() if key in now}
    versions, recorded_versions = package_versions(), recorded.get("versions") or {}
    now |= {name: versions[name] for name in ("torch", "diffsynth")}
    then |= {name: recorded_versions[name] for name in ("torch", "diffsynth") if name in recorded_versions}
    differences = [f"{key.replace('_', ' ')} {now[key]} (recorded {value})" for key, value in then.items()
                   if value != now[key]]
    if not differences:
        return None
    return f"this replay computes differently from the recorded run: {', '.join(differences)}; its frames may differ"
