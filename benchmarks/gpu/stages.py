"""The kit's stages: one function each, run in its own process by ``kit.py`` with a deadline.

A stage fills ``ctx.results`` (saved after every item, so a stage stopped at its deadline keeps what it measured),
calls ``ctx.fail(message)`` for a check that failed and ``ctx.skip(item, reason)`` for what it did not run.

Methods (stated once here, repeated in results.md):

- time: CUDA events around each call after warm-up calls (the first compiles and autotunes the Triton kernels),
  median of the repeats; on a CPU, ``perf_counter``.
- peak memory: ``torch.cuda.max_memory_allocated`` during the timed calls minus what was allocated before them
  (inputs included in the baseline); not measured on a CPU.
- Triton vs reference: the test file's ``TOLERANCES`` (tests/test_backend_triton.py), applied as it applies them,
  at a benchmark-like shape (D = 128) its hypothesis cases do not reach.
- AMF FLOPs: ``fastvmt.costmodel.amf_flops`` (forward, and forward + backward), at the benchmark's feature width.
- AMF bytes: compulsory traffic, each tensor an op must read or write touched once: forward reads q and k and
  writes the positions (N, S, 2) (windowed: also the window key means (N, P, D)); backward reads q, k and the
  output gradients and writes dq and dk; all in the benchmark dtype. Kernels that re-read tiles move more, so
  GB/s is a lower bound of the achieved bandwidth.
- generation: the pipeline's own phase timings (CUDA-synchronised), ``RunReport.counts`` for block evaluations;
  s/step = (reference features + guidance + denoise) / steps; TFLOP/s = ``fastvmt.costmodel.run_cost`` FLOPs
  of the sampling loop / those seconds (when the cost model counts the gradients the run computed).
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import math
import os
import platform
import re
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path
from typing import Any

#: What ``import fastvmt`` and a run need, checked one by one so a failure names the module that breaks.
IMPORTS = (
    "fastvmt",
    "diffsynth",
    "diffsynth.models.wan_video_dit",
    "diffsynth.models.wan_video_vae",
    "diffsynth.models.wan_video_text_encoder",
    "fastvmt.backbones.modules",
    "fastvmt.backbones.wan",
    "fastvmt.generation.pipeline",
    "fastvmt.ops",
    "fastvmt.costmodel",
    "fastvmt.cli",
    "triton",
    "fastvmt.backends.triton.dense_kernels",
    "fastvmt.backends.triton.windowed_kernels",
)
#: Distributions whose requirements are checked against what is installed.
REQUIREMENT_OWNERS = ("fastvmt", "diffsynth")
VERSIONS = ("torch", "triton", "transformers", "diffsynth", "fastvmt", "numpy", "einops", "jaxtyping", "beartype",
            "safetensors", "tokenizers", "modelscope")

#: The Triton backend's test file: run on the device, and the one statement of its tolerances (``TOLERANCES``).
TRITON_TESTS = "tests/test_backend_triton.py"


class Stage:
    """A stage's results, saved to ``path`` after every change, and its deadline."""

    def __init__(self, name: str, mode: str, device: str, deadline: float, path: Path, repo: Path,
                 save: Callable[[Stage], None], runs: str | None = None):
        self.name, self.mode, self.device, self.deadline, self.runs = name, mode, device, deadline, runs
        self.path, self.repo = path, repo
        self.results: dict[str, Any] = {}
        self.failures: list[str] = []
        self.skipped: list[dict[str, str]] = []
        self._save = save

    @property
    def gpu(self) -> bool:
        return self.mode == "gpu"

    def remaining(self) -> float:
        return self.deadline - time.time()

    def save(self) -> None:
        self._save(self)

    def fail(self, message: str) -> None:
        print(f"[{self.name}] FAILED: {message}", flush=True)
        self.failures.append(message)
        self.save()

    def skip(self, item: str, reason: str) -> None:
        print(f"[{self.name}] skipped {item}: {reason}", flush=True)
        self.skipped.append({"item": item, "reason": reason})
        self.save()


def kill_tree(pid: int) -> None:
    """SIGKILL process ``pid`` and every process descended from it (parents read from /proc). The processes
    stay in the caller's session and group, so an interrupt or a kill of the whole command reaches them too."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        children.setdefault(parent, []).append(int(entry.name))
    stack = [pid]
    while stack:
        victim = stack.pop()
        stack.extend(children.get(victim, []))
        try:
            os.kill(victim, signal.SIGKILL)
        except ProcessLookupError:
            pass


# --- environment ---------------------------------------------------------------------------------------------


def last_line(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}".strip()
    return text.splitlines()[-1] if text else type(exc).__name__


def import_report() -> dict[str, str]:
    """``{module: "ok" | "<exception>: <message>"}`` for each of :data:`IMPORTS`, importing each in turn."""
    report = {}
    for module in IMPORTS:
        try:
            importlib.import_module(module)
            report[module] = "ok"
        except Exception as exc:  # noqa: BLE001 - every failure is reported by name
            report[module] = last_line(exc)
    return report


def requirement_report() -> dict[str, list[str]]:
    """Requirements of :data:`REQUIREMENT_OWNERS` (no extras) that are missing or at a version outside their range."""
    try:
        from packaging.requirements import Requirement
    except ImportError:
        return {"missing": [], "version_mismatch": [], "unchecked": ["packaging is not installed: not checked"]}
    missing, mismatched = [], []
    for owner in REQUIREMENT_OWNERS:
        try:
            requirements = metadata.requires(owner) or []
        except metadata.PackageNotFoundError:
            missing.append(f"{owner} (not installed)")
            continue
        for line in requirements:
            requirement = Requirement(line)
            if requirement.marker is not None and not requirement.marker.evaluate({"extra": ""}):
                continue
            try:
                version = metadata.version(requirement.name)
            except metadata.PackageNotFoundError:
                missing.append(f"{requirement.name} (required by {owner})")
                continue
            if requirement.specifier and not requirement.specifier.contains(version, prereleases=True):
                mismatched.append(f"{requirement.name} {version} (required by {owner}: {requirement.specifier})")
    return {"missing": sorted(set(missing)), "version_mismatch": sorted(set(mismatched))}


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in VERSIONS:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def stage_env(ctx: Stage) -> None:
    """Versions, the device, every import of :data:`IMPORTS`, and missing requirements."""
    ctx.results["versions"] = versions()
    ctx.results["imports"] = imports = import_report()
    for module, outcome in imports.items():
        if outcome != "ok":
            ctx.fail(f"import {module}: {outcome}")
    ctx.results["requirements"] = requirements = requirement_report()
    for item in requirements["missing"]:
        ctx.fail(f"missing requirement: {item}")
    import torch

    ctx.results["versions"]["torch_cuda"] = str(torch.version.cuda)
    ctx.results["threads"] = torch.get_num_threads()
    if ctx.gpu:
        if not torch.cuda.is_available():
            raise RuntimeError("gpu mode, but torch.cuda.is_available() is False")
        device = torch.device(ctx.device)
        props = torch.cuda.get_device_properties(device)
        ctx.results["device"] = {
            "name": torch.cuda.get_device_name(device),
            "capability": ".".join(map(str, torch.cuda.get_device_capability(device))),
            "memory_gib": round(props.total_memory / 2**30, 1),
            "multiprocessors": props.multi_processor_count,
            "allow_tf32_matmul": torch.backends.cuda.matmul.allow_tf32,
        }
    else:
        ctx.results["device"] = {"name": f"CPU ({platform.processor() or platform.machine()}, {os.cpu_count()} cores)"}
    ctx.save()


# --- Triton vs reference -------------------------------------------------------------------------------------


def _features(shape, dtype, device, seed: int):
    """``(q, k)``: one random texture per clip moved by ``(t, 2t)`` tokens per frame, plus noise, so windows land
    off-centre and differ between tiles as with real motion."""
    import torch

    f, h, w, d = shape
    gen = torch.Generator().manual_seed(seed)
    texture = torch.randn(h, w, d, generator=gen)
    scene = torch.stack([torch.roll(texture, shifts=(t, 2 * t), dims=(0, 1)) for t in range(f)])
    q = scene + 0.5 * torch.randn(shape, generator=gen)
    k = scene + 0.5 * torch.randn(shape, generator=gen)
    scale = 1.0 / q.std()
    return (q * scale).to(device, dtype), (k * scale).to(device, dtype)


def test_tolerances(repo: Path) -> dict[str, tuple[float, float]]:
    """``TOLERANCES`` of :data:`TRITON_TESTS` by dtype name: (positions in tokens, gradients relative to their
    largest entry), as that file applies them; ``LookupError`` if it cannot be read."""
    spec = importlib.util.spec_from_file_location("gpu_kit_triton_tests", repo / TRITON_TESTS)
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)
    except (Exception, pytest_skip_exception()) as exc:  # noqa: BLE001 - reported as the reason
        raise LookupError(f"{TRITON_TESTS} does not load: {last_line(exc)}") from exc
    table = getattr(module, "TOLERANCES", None)
    if not isinstance(table, dict):
        raise LookupError(f"{TRITON_TESTS} defines no TOLERANCES table")
    return {str(dtype).removeprefix("torch."): tuple(value) for dtype, value in table.items()}


def pytest_skip_exception() -> type[BaseException]:
    """pytest's ``importorskip`` exception (a BaseException), so loading a test module can be reported."""
    import pytest

    return pytest.skip.Exception


def _compare(op: str, dtype, shape, device, tile, window, sf: int, tolerance: tuple[float, float]) -> dict[str, Any]:
    """Positions and gradients of the triton backend in ``dtype`` against the reference in float32 on the same
    values, judged as the test file judges them: positions within ``atol + 1e-5 |ref|`` tokens, gradients within
    ``rel * (max(1, max |ref|) + |ref|)``."""
    import torch

    from fastvmt import ops
    from fastvmt.backends import backend_named

    triton, reference = backend_named("triton"), backend_named("reference")
    q, k = _features(shape, dtype, device, seed=1)
    q32, k32 = (t.float().requires_grad_() for t in (q, k))
    q.requires_grad_()
    k.requires_grad_()
    f, h, w, d = shape
    pairs = ops.frame_pairs(f, sf, device=device)
    scale = 1.0 / math.sqrt(d)
    if op == "dense":
        out = triton.dense_positions(q.reshape(f, h * w, d), k, pairs, scale)
        ref = reference.dense_positions(q32.reshape(f, h * w, d), k32, pairs, scale)
    else:
        extent = (min(window, h), min(window, w))
        with torch.no_grad():
            starts = ops.window_starts(q32, k32, sf=sf, tile=tile, window=window, backend="reference")
        out = triton.windowed_positions(q, k, pairs, starts, tile, extent, scale)
        ref = reference.windowed_positions(q32, k32, pairs, starts, tile, extent, scale)
    cotangent = torch.randn(ref.shape, generator=torch.Generator().manual_seed(2)).to(device)
    got = torch.autograd.grad(out, (q, k), cotangent.to(out.dtype))
    want = torch.autograd.grad(ref, (q32, k32), cotangent)
    atol, rel = tolerance
    error = (out.float() - ref).abs()
    positions_ok = bool((error <= atol + 1e-5 * ref.abs()).all().item())
    grads_ok, grad_error = True, 0.0
    for g, r in zip(got, want):
        scale_r = max(1.0, r.abs().max().item())
        difference = (g.float() - r).abs()
        grads_ok &= bool((difference <= rel * scale_r + rel * r.abs()).all().item())
        grad_error = max(grad_error, difference.max().item() / scale_r)
    return {
        "max_position_error": error.max().item(), "position_tolerance": atol,
        "max_grad_error_rel": grad_error, "grad_tolerance_rel": rel,
        "output_dtype": str(out.dtype).removeprefix("torch."), "passed": positions_ok and grads_ok,
    }


def _pytest(ctx: Stage, timeout: float) -> dict[str, Any]:
    """Run tests/test_backend_triton.py in a child process (it picks CUDA when available) and count outcomes."""
    command = [sys.executable, "-m", "pytest", TRITON_TESTS, "-v", "-p", "no:cacheprovider"]
    if not ctx.gpu:
        command += ["-k", "test_triton_runs_in_this_test_setup"]
    env = {**os.environ, "HYPOTHESIS_PROFILE": "ci", "PYTHONUNBUFFERED": "1"}
    start = time.time()
    process = subprocess.Popen(command, cwd=ctx.repo, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                               text=True)
    try:
        output, _ = process.communicate(timeout=timeout)
        finished = True
    except subprocess.TimeoutExpired:
        kill_tree(process.pid)
        output, _ = process.communicate()
        finished = False
    outcomes: dict[str, list[str]] = {}
    for match in re.finditer(r"^(tests/\S+::\S+) (PASSED|FAILED|SKIPPED|ERROR|XFAIL|XPASS)", output, re.M):
        outcomes.setdefault(match.group(2).lower(), []).append(match.group(1).split("::", 1)[1])
    summary = re.findall(r"^=+ (.+ in [\d.]+s.*?) =+$", output, re.M)
    return {
        "command": "python " + " ".join(command[1:]),
        "selection": "whole file" if ctx.gpu else "test_triton_runs_in_this_test_setup (CI runs the whole file "
        "under Triton's interpreter)",
        "finished": finished,
        "returncode": process.returncode if finished else None,
        "seconds": round(time.time() - start, 1),
        "counts": {key: len(names) for key, names in outcomes.items()},
        "failed": outcomes.get("failed", []) + outcomes.get("error", []),
        "summary": summary[-1] if summary else "",
        "tail": output.strip().splitlines()[-15:] if (not finished or process.returncode) else [],
    }


def stage_triton(ctx: Stage) -> None:
    """The triton backend against the reference in float32, bfloat16 and float16 at a benchmark-like shape, then
    the backend's test file on the device."""
    import torch

    from fastvmt.backends import Case, backend_named

    device = torch.device(ctx.device)
    shape, tile, window = ((3, 30, 52, 128), (3, 4), 21) if ctx.gpu else ((2, 6, 8, 16), (3, 4), 5)
    ctx.results["shape"] = list(shape)
    checks = ctx.results["checks"] = []
    reserve = 30.0 if ctx.gpu else 8.0  # for the test file
    try:
        tolerances = ctx.results["tolerances"] = test_tolerances(ctx.repo)
    except LookupError as exc:
        ctx.skip("triton vs reference at the benchmark shape", str(exc))
        tolerances = {}
    for dtype in (torch.bfloat16, torch.float16, torch.float32) if tolerances else ():
        name = str(dtype).removeprefix("torch.")
        ok, reason = backend_named("triton").supports(Case("windowed", device, dtype, shape, True))
        if not ok or name not in tolerances:
            ctx.skip(f"triton {name}", reason or f"{TRITON_TESTS} states no {name} tolerance")
            continue
        for op in ("windowed", "dense"):
            if ctx.remaining() < reserve:
                ctx.skip(f"triton {name} {op}", f"budget: {ctx.remaining():.0f} s left, {reserve:.0f} s kept for "
                         "the test file")
                continue
            start = time.time()
            result = {"dtype": name, "op": op,
                      **_compare(op, dtype, shape, device, tile, window, sf=4, tolerance=tolerances[name])}
            result["seconds"] = round(time.time() - start, 2)
            checks.append(result)
            ctx.save()
            if not result["passed"]:
                ctx.fail(f"triton {name} {op} differs from the reference: positions max error "
                         f"{result['max_position_error']:.3g}, gradients {result['max_grad_error_rel']:.3g} relative")
    timeout = ctx.remaining() - 2.0
    if timeout < 5.0:
        ctx.skip(TRITON_TESTS, f"budget: {ctx.remaining():.0f} s left")
        return
    ctx.results["pytest"] = report = _pytest(ctx, timeout)
    ctx.save()
    if report["failed"] or (report["finished"] and report["returncode"] not in (0, 5)):
        ctx.fail(f"{TRITON_TESTS}: {report['summary'] or 'exit code ' + str(report['returncode'])}")
    elif not report["finished"]:
        counts = ", ".join(f"{n} {k}" for k, n in report["counts"].items()) or "no test finished"
        ctx.skip(f"{TRITON_TESTS} (rest)", f"budget: stopped after {report['seconds']} s ({counts})")


# --- FLOPs: fastvmt.costmodel is their one source -------------------------------------------------------------


def amf_flops_of(op: str, shape, tile, window: int, sf: int):
    """``AMFFlops`` of one AMF op on ``(F, H, W, D)`` features: the registered extractor of that op with
    ``heads="mean_qk"``, whose feature width is the head width, on a one-head DiT of width ``D``."""
    from fastvmt import plugins
    from fastvmt.backbones.architecture import DiTConfig
    from fastvmt.costmodel import amf_flops
    from fastvmt.interfaces import TokenGrid

    f, h, w, d = shape
    if op == "windowed":
        extractor = plugins.get("extractor", "windowed_amf")(heads="mean_qk", sf=sf, tile=tuple(tile), window=window)
    else:
        extractor = plugins.get("extractor", "dense_amf")(heads="mean_qk", sf=sf)
    return amf_flops(extractor, DiTConfig(dim=d, ffn_dim=d, num_heads=1, num_layers=1), TokenGrid(f, h, w))


def loop_flops(strategy, config, frames: int, height: int, width: int, steps: int) -> tuple[int, int]:
    """``(FLOPs, gradients)`` of a run's sampling loop by the cost model: ``run_cost`` of the strategy itself
    (early exit, as this package runs it), or the CFG denoising alone for an unguided strategy."""
    from fastvmt.costmodel import Depth, GuidanceRecipe, Sampling, forward_flops, run_cost
    from fastvmt.geometry import token_grid

    grid = token_grid(frames, height, width)
    if strategy.guided:
        cost = run_cost(GuidanceRecipe(strategy.name, strategy), config, grid, Sampling(num_steps=steps))
        return cost.total, cost.gradients
    passes = 1 if strategy.cfg_scale == 1.0 else 2
    return steps * passes * forward_flops(config, grid, Depth.full(config)), 0


# --- AMF benchmark -------------------------------------------------------------------------------------------


def _register_sdpa_backend() -> None:
    """Register ``torch-sdpa`` in this process: the torch backend with its SDPA dense kernel."""
    import fastvmt
    from fastvmt import plugins

    torch_backend = plugins.get("backend", "torch")

    class TorchSDPABackend(torch_backend):
        name = "torch-sdpa"

        def __init__(self):
            super().__init__(dense_kernel="sdpa")

    class Plugin:
        @fastvmt.hookimpl
        def fastvmt_register_backends(self, register):
            register("torch-sdpa", TorchSDPABackend)

    if "torch-sdpa" not in plugins.names("backend"):
        plugins.register_plugin(Plugin(), name="gpu-kit-torch-sdpa")


def _timer(device):
    """``measure(fn) -> seconds`` with CUDA events on a GPU, ``perf_counter`` on a CPU."""
    import torch

    if device.type == "cuda":
        def measure(fn):
            start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
            start.record()
            fn()
            end.record()
            end.synchronize()
            return start.elapsed_time(end) / 1000

        return measure

    def measure_cpu(fn):
        start = time.perf_counter()
        fn()
        return time.perf_counter() - start

    return measure_cpu


def _amf_bytes(op: str, shape, pairs: int, tiles: int, element: int) -> dict[str, int]:
    """Compulsory traffic of one forward and one forward + backward (see the module docstring)."""
    f, h, w, d = shape
    features = f * h * w * d * element  # one of q, k, dq, dk
    outputs = pairs * h * w * 2 * element + (pairs * tiles * d * element if op == "windowed" else 0)
    forward = 2 * features + outputs
    backward = 2 * features + outputs + 2 * features
    return {"forward": forward, "forward_backward": forward + backward}


def _amf_case(ctx: Stage, shape, backend: str, op: str, dtype, tile, window: int, sf: int, repeats: int):
    import torch

    from fastvmt import ops

    device = torch.device(ctx.device)
    f, h, w, d = shape
    q, k = _features(shape, dtype, device, seed=0)
    q.requires_grad_()
    k.requires_grad_()
    pairs = ops.frame_pairs(f, sf).shape[0]
    cotangent = torch.randn(pairs, h * w, 2, generator=torch.Generator().manual_seed(3)).to(device, dtype)

    def forward():
        if op == "windowed":
            out = ops.windowed_amf(q, k, sf=sf, tile=tile, window=window, backend=backend)
            return (out.displacement * cotangent).sum() + out.key_means.sum()
        return (ops.full_amf(q, k, sf=sf, backend=backend) * cotangent).sum()

    def forward_only():
        with torch.no_grad():
            forward()

    def forward_backward():
        torch.autograd.grad(forward(), (q, k))

    measure = _timer(device)
    result: dict[str, Any] = {"shape": "x".join(map(str, shape)), "backend": backend, "op": op,
                              "dtype": str(dtype).removeprefix("torch.")}
    for label, fn in (("forward", forward_only), ("forward_backward", forward_backward)):
        fn()  # warm-up: compiles and autotunes
        if device.type == "cuda":
            torch.cuda.synchronize()
            baseline = torch.cuda.memory_allocated()
            torch.cuda.reset_peak_memory_stats()
        times = [measure(fn) for _ in range(repeats)]
        result[f"{label}_s"] = statistics.median(times)
        result[f"{label}_peak_mib"] = (
            (torch.cuda.max_memory_allocated() - baseline) / 2**20 if device.type == "cuda" else None
        )
    flops = amf_flops_of(op, shape, tile, window, sf)
    tiles = (h // tile[0]) * (w // tile[1])
    moved = _amf_bytes(op, shape, pairs, tiles, torch.empty((), dtype=dtype).element_size())
    for label, count in (("forward", flops.forward), ("forward_backward", flops.forward + flops.backward)):
        result[f"{label}_gflop"] = count / 1e9
        result[f"{label}_tflops"] = count / result[f"{label}_s"] / 1e12
        result[f"{label}_gbps"] = moved[label] / result[f"{label}_s"] / 1e9
    return result


def stage_amf(ctx: Stage) -> None:
    """Dense and windowed AMF forward and forward + backward per backend: time, memory, TFLOP/s, GB/s."""
    import torch

    _register_sdpa_backend()
    if ctx.gpu:
        shapes, dtype, repeats, window = [(21, 30, 52, 128), (21, 45, 80, 128)], torch.bfloat16, 5, 21
    else:
        shapes, dtype, repeats, window = [(2, 6, 8, 16), (3, 6, 8, 16)], torch.float32, 1, 5
    tile, sf = (3, 4), 4
    cases = [("triton", "windowed"), ("triton", "dense"), ("torch", "windowed"), ("torch", "dense"),
             ("torch-sdpa", "dense")]
    ctx.results.update(dtype=str(dtype).removeprefix("torch."), tile=list(tile), window=window, sf=sf,
                       repeats=repeats, rows=[])
    seconds: dict[tuple[str, str], tuple[float, float]] = {}  # (backend, op) -> (wall s, GFLOP) at the last shape
    from fastvmt.backends import Case, backend_named

    for shape in shapes:
        for backend, op in cases:
            label = f"{backend} {op} {'x'.join(map(str, shape))}"
            ok, reason = backend_named(backend).supports(Case(op, torch.device(ctx.device), dtype, shape, True))
            if not ok:
                ctx.skip(label, reason)
                continue
            if (backend, op) in seconds:  # scale the last shape's wall time by the FLOP ratio
                wall, gflop = seconds[(backend, op)]
                flops = amf_flops_of(op, shape, tile, window, sf)
                estimate = wall * (flops.forward + flops.backward) / 1e9 / gflop
                if estimate > ctx.remaining() - 2:
                    ctx.skip(label, f"budget: estimated {estimate:.0f} s, {ctx.remaining():.0f} s left")
                    continue
            start = time.time()
            try:
                row = _amf_case(ctx, shape, backend, op, dtype, tile, window, sf, repeats)
            except Exception as exc:  # noqa: BLE001 - one case failing does not stop the others
                ctx.fail(f"{label}: {last_line(exc)}")
                continue
            finally:
                if torch.cuda.is_available():
                    torch.cuda.empty_cache()
            row["wall_s"] = round(time.time() - start, 2)
            seconds[(backend, op)] = (row["wall_s"], row["forward_backward_gflop"])
            ctx.results["rows"].append(row)
            ctx.save()
            print(f"[amf] {label}: fwd+bwd {row['forward_backward_s'] * 1e3:.2f} ms", flush=True)


# --- guided generation ---------------------------------------------------------------------------------------


#: The generations, in order: ``strategy[+backbone_option...][@frames]`` (frames default to the mode's size).
#: ``+cfg_batch`` runs classifier-free guidance as one batch (``WanBackbone(cfg_batch=True)``), the one speed
#: option the backbone has; the large run goes last, when the budget allows it.
DEFAULT_RUNS = {"gpu": "no_transfer,fastvmt,ditflow,fastvmt+cfg_batch,fastvmt@81",
                "cpu": "no_transfer,fastvmt,ditflow,fastvmt+cfg_batch,fastvmt@9"}


@dataclasses.dataclass(frozen=True)
class RunSpec:
    """One generation: a registered strategy at a size, on a backbone built with ``options``."""

    strategy: str
    frames: int
    options: tuple[tuple[str, Any], ...] = ()

    @classmethod
    def parse(cls, text: str, frames: int) -> RunSpec:
        """``strategy[+option...][@frames]``, each ``+option`` a backbone keyword set to True."""
        head, _, count = text.strip().partition("@")
        strategy, *options = head.split("+")
        if not strategy or not all(options) or (count and not count.isdigit()):
            raise ValueError(f"run {text!r} is not strategy[+backbone_option...][@frames]")
        return cls(strategy, int(count) if count else frames, tuple((option, True) for option in options))

    @property
    def label(self) -> str:
        return self.strategy + "".join(f" +{key}" for key, _ in self.options)


def stage_generation(ctx: Stage) -> None:
    """Full-size guided generations on a random-weight Wan2.1 (the 1.3B on a GPU, the tiny test DiT on a CPU)."""
    import torch

    from fastvmt import MotionTransferPipeline, plugins
    from fastvmt.backbones.architecture import RELEASED_DITS
    from fastvmt.backbones.tiny import TINY_DIT, TINY_VAE
    from fastvmt.synthetic import moving_scene
    from randomwan import random_wan, share_networks

    device = torch.device(ctx.device)
    if ctx.gpu:
        model, config, vae_dim, dtype, steps = "1.3B", RELEASED_DITS["1.3B"], 96, torch.bfloat16, 50
        (height, width), frames = (480, 832), 33
    else:
        model, config, vae_dim, dtype, steps = "tiny", TINY_DIT, TINY_VAE.dim, torch.float32, 2
        (height, width), frames = (48, 64), 5
    runs = [RunSpec.parse(text, frames) for text in (ctx.runs or DEFAULT_RUNS[ctx.mode]).split(",")]
    ctx.results.update(model=model, dtype=str(dtype).removeprefix("torch."), steps=steps, vae_dim=vae_dim, runs=[],
                       amf_backend="auto (triton for the CUDA cases it runs, else torch)",
                       text_encoder="stand-in: byte tokenizer + 1-layer random umT5 of width "
                       f"{config.text_dim} (no umT5 weights)")
    start = time.time()
    backbone = random_wan(config, vae_dim=vae_dim, device=device, dtype=dtype)
    cuda = device.type == "cuda"
    if cuda:
        torch.cuda.synchronize()
        ctx.results["weights_gib"] = torch.cuda.memory_allocated() / 2**30
    ctx.results["build_s"] = round(time.time() - start, 1)
    ctx.save()
    backbones = {(): backbone}
    rate = None  # FLOP/s of the sampling loops so far (the slowest)
    outside = None  # (seconds outside the sampling loop, frames) of the last run
    for spec in runs:
        label = f"{spec.label} {spec.frames}x{height}x{width}"
        strategy = plugins.get("strategy", spec.strategy)
        flops, gradients = loop_flops(strategy, config, spec.frames, height, width, steps)
        if rate is not None and outside is not None:
            estimate = flops / rate + outside[0] * spec.frames / outside[1]
            if estimate > ctx.remaining() - 5:
                ctx.skip(label, f"budget: estimated {estimate:.0f} s, {ctx.remaining():.0f} s left")
                continue
        try:
            if spec.options not in backbones:
                backbones[spec.options] = share_networks(backbone, **dict(spec.options))
            began = time.time()
            reference, _ = moving_scene(num_frames=spec.frames, height=height, width=width)
            scene = time.time() - began
            pipe = MotionTransferPipeline(backbones[spec.options], strategy=strategy)
            if cuda:
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            began = time.time()
            result = pipe(reference, "a red fox runs through fresh snow", num_inference_steps=steps, seed=0,
                          progress=False)
            total = time.time() - began
        except Exception as exc:  # noqa: BLE001 - one run failing does not stop the others
            ctx.fail(f"{label}: {last_line(exc)}")
            continue
        report = result.report
        loop = sum(report.seconds.get(name, 0.0) for name in ("reference_features", "guidance", "denoise"))
        counts = dataclasses.asdict(report.counts)
        latents = result.latents.float()
        row = {
            "run": spec.label, "strategy": spec.strategy, "options": dict(spec.options), "frames": spec.frames,
            "height": height, "width": width, "steps": steps, "total_s": round(total, 2),
            "phases_s": {name: round(value, 3) for name, value in report.seconds.items()},
            "s_per_step": loop / steps, "peak_vram_gib": torch.cuda.max_memory_allocated() / 2**30 if cuda else None,
            "counts": counts, "loop_tflop": flops / 1e12, "cost_model_gradients": gradients,
            "loop_tflops": flops / loop / 1e12 if loop > 0 and gradients == counts["gradients_computed"] else None,
            "finite": bool(torch.isfinite(latents).all().item()), "latent_std": latents.std().item(),
        }
        ctx.results["runs"].append(row)
        ctx.save()
        print(f"[generation] {label}: {total:.1f} s, {row['s_per_step']:.3f} s/step", flush=True)
        if not row["finite"]:
            ctx.fail(f"{label}: the final latents are not finite")
        if gradients != counts["gradients_computed"]:
            ctx.fail(f"{label}: the cost model counts {gradients} gradients, the run computed "
                     f"{counts['gradients_computed']}")
        if loop > 0:
            rate = min(rate or math.inf, flops / loop)
        outside = (total - loop + scene, spec.frames)
        del result, pipe
        if cuda:
            torch.cuda.empty_cache()


STAGES: dict[str, Callable[[Stage], None]] = {
    "env": stage_env,
    "triton": stage_triton,
    "amf": stage_amf,
    "generation": stage_generation,
}
