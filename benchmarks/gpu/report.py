"""results.md: the kit's results as Markdown tables ready for docs/benchmarks.md."""

from __future__ import annotations

from typing import Any

METHOD = """\
Method: times are medians of CUDA-event timings (`perf_counter` on a CPU) after warm-up calls, which compile
and autotune the Triton kernels; peak memory is `torch.cuda.max_memory_allocated` during the timed calls above
what was allocated before them (not measured on a CPU); AMF FLOPs come from `fastvmt.costmodel.amf_flops`, and
GB/s counts compulsory traffic only (q, k, the outputs and their gradients, each once), a lower bound of the
bandwidth achieved. Generation timings
are the pipeline's phase timings on a Wan2.1 DiT with random weights (diffsynth's initialisation) and a
stand-in text encoder (a byte tokenizer and a one-layer random umT5: no umT5 weights are used); s/step is
(reference features + guidance + denoise) / steps, TFLOP/s the cost model's FLOPs of that loop over its time."""


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return lines


def _num(value: Any, digits: int = 2) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.{digits}f}" if abs(value) >= 10**-digits or value == 0 else f"{value:.1e}"
    return str(value)


def _header(results: dict) -> list[str]:
    kit = results["kit"]
    env = results["stages"].get("env", {}).get("results", {})
    versions, device = env.get("versions", {}), env.get("device", {})
    name = device.get("name", kit["device"])
    if "capability" in device:
        name += f" (sm {device['capability']}, {device['memory_gib']} GiB)"
    described = ", ".join(
        f"{package} {versions[package]}" for package in ("torch", "triton", "transformers", "diffsynth", "fastvmt")
        if package in versions
    )
    built = versions.get("torch_cuda")
    cuda = f" (torch built for CUDA {built})" if built not in (None, "None") else ""
    return [
        "# fastvmt measurements" + (" on a GPU" if kit["mode"] == "gpu" else " (CPU mode: tiny sizes, a kit check)"),
        "",
        f"Date: {kit['date']}. Device: {name}. Python {versions.get('python', '?')}; {described}{cuda}.",
        f"Kit: mode {kit['mode']}, {kit.get('total_s', '?')} s of a {kit['budget_s']} s budget.",
    ]


def _stages(results: dict) -> list[str]:
    rows = []
    for name, record in results["stages"].items():
        notes = [record["error"]] if record.get("error") else []
        notes += record.get("failures", [])
        notes += [f"skipped {s['item']}: {s['reason']}" for s in record.get("skipped", [])]
        rows.append([name, record["status"], record.get("seconds", "-"), record.get("budget_s", "-"),
                     "; ".join(notes).replace("|", "/") or "-"])
    return ["", "## Stages", "", *_table(["stage", "status", "seconds", "budget s", "notes"], rows)]


def _triton(results: dict) -> list[str]:
    data = results["stages"].get("triton", {}).get("results", {})
    if not data:
        return []
    shape = "x".join(map(str, data.get("shape", [])))
    rows = [[c["dtype"], c["op"], shape, c["output_dtype"], _num(c["max_position_error"], 4),
             _num(c["position_tolerance"], 4), _num(c["max_grad_error_rel"], 4), _num(c["grad_tolerance_rel"], 4),
             "pass" if c["passed"] else "FAIL"]
            for c in data.get("checks", [])]
    lines = ["", "## Triton backend vs the reference backend (float32, same input values)", "",
             *_table(["dtype", "op", "shape FxHxWxD", "positions in", "max position error (tokens)",
                      "tolerance (tokens)", "max gradient error / max(1, max gradient)", "tolerance", "result"],
                     rows),
             "", "Tolerances: `TOLERANCES` of tests/test_backend_triton.py, applied as there (positions within "
             "tolerance + 1e-5 x abs(reference); gradients within tolerance x (max(1, max abs(reference)) + "
             "abs(reference)))."]
    pytest = data.get("pytest")
    if pytest:
        counts = ", ".join(f"{n} {k}" for k, n in pytest["counts"].items()) or "none"
        state = "finished" if pytest["finished"] else "stopped at the stage's deadline"
        lines += ["", f"`{pytest['command']}` ({pytest['selection']}): {counts}; {state} in {pytest['seconds']} s."]
        if pytest["failed"]:
            lines.append("Failed: " + ", ".join(f"`{name}`" for name in pytest["failed"]))
    return lines


def _amf(results: dict) -> list[str]:
    data = results["stages"].get("amf", {}).get("results", {})
    if not data.get("rows"):
        return []
    rows = [[r["shape"], r["backend"], r["op"], _num(r["forward_s"] * 1e3), _num(r["forward_backward_s"] * 1e3),
             _num(r["forward_backward_peak_mib"], 0), _num(r["forward_backward_gflop"], 1),
             _num(r["forward_tflops"]), _num(r["forward_backward_tflops"]), _num(r["forward_backward_gbps"], 1)]
            for r in data["rows"]]
    title = (f"## AMF ops ({data['dtype']}, span {data['sf']}, tile {data['tile'][0]}x{data['tile'][1]}, "
             f"window {data['window']}, median of {data['repeats']})")
    return ["", title, "", *_table(
        ["shape FxHxWxD", "backend", "op", "fwd ms", "fwd+bwd ms", "peak fwd+bwd MiB", "GFLOP fwd+bwd",
         "TFLOP/s fwd", "TFLOP/s fwd+bwd", "GB/s fwd+bwd"], rows)]


def _generation(results: dict) -> list[str]:
    data = results["stages"].get("generation", {}).get("results", {})
    if not data.get("runs"):
        return []
    rows = []
    for r in data["runs"]:
        phases, counts = r["phases_s"], r["counts"]
        rows.append([
            r["run"], f"{r['frames']}x{r['height']}x{r['width']}", r["steps"], _num(r["total_s"], 1),
            *(_num(phases.get(p), 1) for p in ("encode", "reference_features", "guidance", "denoise", "decode")),
            _num(r["s_per_step"], 3), _num(r["peak_vram_gib"], 1),
            f"{counts['blocks_forward']}/{counts['blocks_backward']}",
            f"{counts['gradients_computed']}/{counts['gradients_reused']}", _num(r["loop_tflops"], 0),
            "yes" if r["finite"] else "NO",
        ])
    title = (f"## Guided generation: Wan2.1 {data['model']} architecture, random weights, {data['dtype']}, "
             f"{data['steps']} steps")
    return ["", title, "", *_table(
        ["run", "video FxHxW", "steps", "total s", "encode s", "reference s", "guidance s", "denoise s", "decode s",
         "s/step", "peak VRAM GiB", "blocks fwd/bwd", "gradients computed/reused", "loop TFLOP/s", "finite"], rows),
        "", f"Model built in {data.get('build_s', '?')} s; AMF backend {data.get('amf_backend', '?')}; text encoder: "
        f"{data.get('text_encoder', '?')}."]


def markdown(results: dict) -> str:
    """The whole results.md."""
    lines = _header(results) + _stages(results) + _triton(results) + _amf(results) + _generation(results)
    return "\n".join(lines + ["", METHOD, ""])
