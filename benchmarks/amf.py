"""Dense vs windowed AMF per backend: time, peak memory and FLOPs, forward and forward+backward.

    python benchmarks/amf.py [--shapes 21x30x52x128,21x45x80x128] [--backends torch,torch-sdpa,reference]
                             [--repeats 3] [--data moving|random] [--sf 4 --tile 3x4 --window 21] [--device cpu|cuda]

Shapes are ``FxHxWxD`` token grids (21x30x52 = 81 frames at 480x832). The ops are the public
``fastvmt.ops.full_amf`` and ``fastvmt.ops.windowed_amf`` (coarse pass, fine pass and window key means);
forward+backward differentiates ``<displacement, c> + sum(key_means)`` w.r.t. q and k. Backends are registry
names, plus ``torch-sdpa``: the torch backend with its ``scaled_dot_product_attention`` dense kernel (it also
runs the windowed op's coarse pass).

Inputs (``--data``): ``moving`` (default) warps one random feature texture per frame with a growing zoom,
rotation and translation and adds noise, so coarse matches, hence windows, vary across tiles as with real
motion; ``random`` is i.i.d. Gaussian q and k (every window lands near the frame centre: the easiest case
for the torch backend's tile grouping).

Method:
- time: median over ``--repeats`` runs after one warm-up run (wall clock, ``perf_counter``; CUDA synchronised).
- peak memory: each (shape, backend, op, pass) runs in a fresh subprocess. On CPU, tracemalloc does not see
  torch's allocations, so the peak is the process's peak resident set (``ru_maxrss``) minus its resident set
  just before the first run (inputs already allocated): everything the op held at its peak, allocator slack
  included. On CUDA: ``torch.cuda.max_memory_allocated`` minus the allocation before the runs.
- FLOPs by formula (the spec's costs, multiply-add = 2 FLOPs): dense forward ``2*N*S*S*D``, windowed forward
  ``2*N*(S*e_r*e_c + P*S)*D`` (fine pass + coarse pass); forward+backward counts the fine GEMMs three times
  (logits, dq, dk) and the coarse pass once.
- reference runs whose S x S tensors (estimated at ``N*S*S*bytes``) would not fit in half the available memory
  are measured on 2 frames and scaled by the pair count (marked ``~`` in the table).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import statistics
import subprocess
import sys
import time

#: bytes per (pair, query, key) entry the reference backend holds at its peak (float32 logits, probabilities
#: and their gradients; the windowed op also builds an int64 (N, S, S, 2) offset tensor and boolean masks).
REFERENCE_BYTES_PER_ENTRY = {"dense": 12, "windowed": 31}


def parse_shape(text: str) -> tuple[int, int, int, int]:
    parts = tuple(int(p) for p in text.lower().split("x"))
    if len(parts) != 4 or min(parts) < 1:
        raise argparse.ArgumentTypeError(f"shape must be FxHxWxD with positive sizes, got {text!r}")
    return parts


def pair_count(frames: int, sf: int) -> int:
    return sum(min(sf, frames - i) for i in range(frames))


def flops(op: str, shape, sf: int, tile, window: int, backward: bool) -> float:
    f, h, w, d = shape
    n, s = pair_count(f, sf), h * w
    if op == "dense":
        return 2 * n * s * s * d * (3 if backward else 1)
    tiles = (h // tile[0]) * (w // tile[1])
    fine = 2 * n * s * min(window, h) * min(window, w) * d
    coarse = 2 * n * tiles * s * d
    return fine * (3 if backward else 1) + coarse


def available_bytes() -> int:
    with open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    return 0


# --- worker: one measurement in a fresh process -------------------------------------------------------------


def make_features(shape, data: str, device: str, seed: int = 0):
    import torch

    f, h, w, d = shape
    gen = torch.Generator().manual_seed(seed)
    if data == "random":
        return torch.randn(shape, generator=gen).to(device), torch.randn(shape, generator=gen).to(device)
    texture = torch.randn(1, d, h, w, generator=gen)
    frames = []
    for t in range(f):
        zoom, angle = 1.0 - 0.01 * t, 0.01 * t
        cos, sin = zoom * math.cos(angle), zoom * math.sin(angle)
        theta = torch.tensor([[cos, -sin, 0.02 * t], [sin, cos, -0.01 * t]])
        grid = torch.nn.functional.affine_grid(theta[None], [1, d, h, w], align_corners=False)
        warped = torch.nn.functional.grid_sample(texture, grid, padding_mode="reflection", align_corners=False)
        frames.append(warped[0].permute(1, 2, 0))
    scene = torch.stack(frames)
    scene = scene / scene.std()
    noise = lambda: 0.3 * torch.randn(shape, generator=gen)  # noqa: E731
    return (scene + noise()).to(device), (scene + noise()).to(device)


def rss_bytes() -> int:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def run_worker(spec: dict) -> dict:
    import torch

    from fastvmt import ops

    device = spec["device"]
    shape = tuple(spec["shape"])
    backend = spec["backend"]
    if backend == "torch-sdpa":  # this worker process only: the registered torch backend, SDPA dense kernel
        from fastvmt.backends import backend_named

        backend_named("torch").dense_kernel = "sdpa"
        backend = "torch"
    q, k = make_features(shape, spec["data"], device)
    backward = spec["backward"]
    q.requires_grad_(backward)
    k.requires_grad_(backward)
    common = {"sf": spec["sf"], "backend": backend}
    windowed = spec["op"] == "windowed"
    cotangent = torch.randn(pair_count(shape[0], spec["sf"]), shape[1] * shape[2], 2, device=device)

    def once():
        with torch.enable_grad() if backward else torch.no_grad():
            if windowed:
                out = ops.windowed_amf(q, k, tile=tuple(spec["tile"]), window=spec["window"], **common)
                loss = (out.displacement * cotangent).sum() + out.key_means.sum()
            else:
                loss = (ops.full_amf(q, k, **common) * cotangent).sum()
            if backward:
                loss.backward()
                q.grad = k.grad = None
        if device == "cuda":
            torch.cuda.synchronize()

    if device == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        baseline = torch.cuda.memory_allocated()
    else:
        baseline = rss_bytes()
    times = []
    for _ in range(spec["repeats"] + 1):
        start = time.perf_counter()
        once()
        times.append(time.perf_counter() - start)
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() - baseline
    else:
        peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - baseline
    result = {"time": statistics.median(times[1:]), "peak": peak}
    if windowed and backend == "torch":
        result["plan"] = torch_plan(q.detach(), k.detach(), spec)
    return result


def torch_plan(q, k, spec) -> str:
    """How the torch backend packed the tiles for these inputs: tiles per unit and key block of each level."""
    from fastvmt import ops
    from fastvmt.backends.torch_backend.grouping import plan_windows

    starts = ops.window_starts(q, k, sf=spec["sf"], tile=tuple(spec["tile"]), window=spec["window"])
    h, w = q.shape[1:3]
    extent = (min(spec["window"], h), min(spec["window"], w))
    levels = plan_windows(starts, (h, w), tuple(spec["tile"]), extent)
    return ", ".join(f"{lv.pair.numel()}x{lv.tiles_per_unit} tiles in {lv.block[0]}x{lv.block[1]}" for lv in levels)


# --- parent: plan runs, spawn workers, print the table --------------------------------------------------------


def measure(spec: dict) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", json.dumps(spec)], capture_output=True, text=True, check=False
    )
    if out.returncode != 0:
        return {"error": (out.stderr.strip().splitlines() or ["failed"])[-1]}
    return json.loads(out.stdout.strip().splitlines()[-1])


def measure_or_extrapolate(spec: dict) -> dict:
    """Measure; a reference run too big for memory is measured on 2 frames and scaled by the pair count."""
    f, h, w, _ = spec["shape"]
    s, n = h * w, pair_count(f, spec["sf"])
    if spec["backend"] == "reference":
        estimate = n * s * s * REFERENCE_BYTES_PER_ENTRY[spec["op"]]
        if estimate > available_bytes() / 2:
            small = {**spec, "shape": [2, *spec["shape"][1:]]}
            result = measure(small)
            if "error" not in result:
                factor = n / pair_count(2, spec["sf"])
                result = {"time": result["time"] * factor, "peak": result["peak"] * factor, "scaled": True}
            return result
    return measure(spec)


def fmt_time(result: dict) -> str:
    if "error" in result:
        return "error"
    return ("~" if result.get("scaled") else "") + f"{result['time']:.2f}"


def fmt_mem(result: dict) -> str:
    if "error" in result:
        return "error"
    return ("~" if result.get("scaled") else "") + f"{result['peak'] / 2**20:.0f}"


def ratio(a: dict, b: dict, key: str) -> str:
    if "error" in a or "error" in b or b[key] <= 0:
        return "-"
    return ("~" if a.get("scaled") or b.get("scaled") else "") + f"{a[key] / b[key]:.2f}"


def run_all(args, shapes, backends, tile, device) -> dict:
    """Every (shape, backend, op, pass) measurement, keyed by that tuple."""
    results = {}
    for shape in shapes:
        for backend in backends:
            for op in ("dense", "windowed"):
                for backward in (False, True):
                    spec = {"shape": list(shape), "backend": backend, "op": op, "backward": backward,
                            "sf": args.sf, "tile": tile, "window": args.window, "data": args.data,
                            "repeats": args.repeats, "device": device}
                    result = results[(shape, backend, op, backward)] = measure_or_extrapolate(spec)
                    label = f"{'x'.join(map(str, shape))} {backend} {op} {'fwd+bwd' if backward else 'fwd'}"
                    print(f"  measured {label}: {result}", file=sys.stderr, flush=True)
    return results


def print_tables(results, args, shapes, backends, tile) -> None:
    def row(cells):
        print("| " + " | ".join(cells) + " |")

    header = ["shape", "backend", "op", "GFLOP fwd", "GFLOP fwd+bwd", "fwd s", "fwd+bwd s", "peak fwd MiB",
              "peak fwd+bwd MiB", "torch plan (units x tiles in key block)"]
    print()
    row(header)
    row(["---"] * len(header))
    for shape in shapes:
        for backend in backends:
            for op in ("dense", "windowed"):
                fwd, both = results[(shape, backend, op, False)], results[(shape, backend, op, True)]
                gflops = [f"{flops(op, shape, args.sf, tile, args.window, b) / 1e9:.1f}" for b in (False, True)]
                row(["x".join(map(str, shape)), backend, op, *gflops, fmt_time(fwd), fmt_time(both), fmt_mem(fwd),
                     fmt_mem(both), both.get("plan", "")])
    header = ["shape", "backend", "FLOP ratio dense/windowed fwd+bwd", "speed-up fwd", "speed-up fwd+bwd",
              "memory windowed/dense fwd+bwd", "windowed fwd+bwd memory / reference dense"]
    print()
    row(header)
    row(["---"] * len(header))
    for shape in shapes:
        dense_flops = flops("dense", shape, args.sf, tile, args.window, True)
        flop_ratio = dense_flops / flops("windowed", shape, args.sf, tile, args.window, True)
        for backend in backends:
            dense = {b: results[(shape, backend, "dense", b)] for b in (False, True)}
            win = {b: results[(shape, backend, "windowed", b)] for b in (False, True)}
            reference = results.get((shape, "reference", "dense", True))
            row(["x".join(map(str, shape)), backend, f"{flop_ratio:.2f}", ratio(dense[False], win[False], "time"),
                 ratio(dense[True], win[True], "time"), ratio(win[True], dense[True], "peak"),
                 ratio(win[True], reference, "peak") if reference else "-"])
    print("\n~ = measured on 2 frames and scaled by the pair count (the full run's S x S tensors do not fit in memory)")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--shapes", default="21x30x52x128,21x45x80x128")
    parser.add_argument("--backends", default="torch,torch-sdpa,reference")
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--data", choices=["moving", "random"], default="moving")
    parser.add_argument("--sf", type=int, default=4)
    parser.add_argument("--tile", default="3x4")
    parser.add_argument("--window", type=int, default=21)
    parser.add_argument("--device", default=None, help="cpu or cuda (default: cuda when available)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(run_worker(json.loads(args.worker))))
        return
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    tile = [int(t) for t in args.tile.lower().split("x")]
    shapes = [parse_shape(s) for s in args.shapes.split(",")]
    backends = [b.strip() for b in args.backends.split(",") if b.strip()]
    print(f"device {device}, threads {torch.get_num_threads()}, data {args.data}, sf {args.sf}, tile {args.tile}, "
          f"window {args.window}, median of {args.repeats}; times in s, peak memory in MiB, GFLOP by formula")
    print_tables(run_all(args, shapes, backends, tile, device), args, shapes, backends, tile)


if __name__ == "__main__":
    main()
