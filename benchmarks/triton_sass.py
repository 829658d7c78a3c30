"""Offline SASS check of the Triton AMF kernels: compile every production kernel and config for Hopper, no GPU.

    python benchmarks/triton_sass.py [--dtypes bfloat16,float32] [--kernels dense_forward,...] [--arch 90]
                                     [--shape 30x52x128] [--jobs N] [--json out.json] [--check]

For every kernel of ``fastvmt/backends/triton`` and every autotune config it would try on a GPU, the kernel is
compiled with Triton's own compiler for ``sm_<arch>`` (``GPUTarget``; no driver needed), keeping the log of
the ``ptxas -v`` Triton runs, and the cubin is disassembled with ``nvdisasm``. Per
(kernel, dtype, config) the table gives:

- ``regs``: registers per thread; ``spill st/ld``: bytes of spill stores / loads per thread (ptxas -v);
- ``smem``: shared memory in KiB (Triton's metadata; Hopper allows 227 KiB a block);
- ``wgmma`` / ``mma``: static counts of ``HGMMA`` (warpgroup) and ``HMMA`` (warp-level ``mma.sync``)
  tensor-core instructions; a kernel with neither multiplies with FMAs;
- ``instrs``: SASS instructions of the kernel; ``loop``: instructions of its hot loop (the backward branch
  enclosing the tensor-core instructions, or the largest loop), the work done per key block.

Kernels are compiled for the production shape (``--shape HxWxD``, 480p's 30 x 52 tokens and D = 128; tile 3x4,
window 21) in the dtypes production passes (``float32`` from the extractors, ``bfloat16`` for direct callers),
with the dot precision ``configs.dot_precision`` picks on a GPU. ``--check`` exits with status 1 when a config
spills, uses no tensor core, or needs more shared memory than Hopper has. Counts are static, not a profile:
what this proves is what the compiler emitted, not how fast it runs (that needs a GPU).

The script compiles, so ``main`` clears ``TRITON_INTERPRET`` for its own process before importing the kernels.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import io
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass

import torch
import triton

#: Kernels checked: name -> (module, attribute).
KERNELS = {
    "dense_forward": ("fastvmt.backends.triton.dense_kernels", "dense_forward_kernel"),
    "dense_argmax": ("fastvmt.backends.triton.dense_kernels", "dense_argmax_kernel"),
    "dense_dq": ("fastvmt.backends.triton.dense_kernels", "dense_dq_kernel"),
    "dense_dk": ("fastvmt.backends.triton.dense_kernels", "dense_dk_kernel"),
    "windowed_forward": ("fastvmt.backends.triton.windowed_kernels", "windowed_forward_kernel"),
    "windowed_dq": ("fastvmt.backends.triton.windowed_kernels", "windowed_dq_kernel"),
    "windowed_dk": ("fastvmt.backends.triton.windowed_kernels", "windowed_dk_kernel"),
}
PRODUCTION_DTYPES = ("float32", "bfloat16")
#: Shared memory a Hopper block may use (227 KiB, opt-in maximum).
HOPPER_SMEM = 227 * 1024
_TYPE = {"float32": "fp32", "bfloat16": "bf16", "float16": "fp16"}
_INDEX_POINTERS = ("pairs_ptr", "starts_ptr", "order_ptr", "offsets_ptr", "entries_ptr")
_INPUT_POINTERS = ("q_ptr", "k_ptr")


@dataclass
class Row:
    """One compiled (kernel, dtype, config)."""

    kernel: str
    dtype: str
    precision: str
    config: str
    regs: int
    spill_stores: int
    spill_loads: int
    smem_kib: float
    wgmma: int
    mma: int
    instrs: int
    loop_instrs: int
    error: str = ""

    def problems(self) -> list[str]:
        """What ``--check`` refuses in this row."""
        found = [self.error] if self.error else []
        if self.spill_stores or self.spill_loads:
            found.append(f"spills {self.spill_stores}/{self.spill_loads} bytes")
        if not self.error and not (self.wgmma or self.mma):
            found.append("no tensor-core instruction")
        if self.smem_kib * 1024 > HOPPER_SMEM:
            found.append(f"{self.smem_kib:.0f} KiB shared memory > 227")
        return found


def _jit_function(kernel):
    """The ``JITFunction`` under the autotune / heuristics wrappers."""
    while not isinstance(kernel, triton.runtime.jit.JITFunction):
        kernel = kernel.fn
    return kernel


def _wrappers(kernel) -> tuple[list, dict]:
    """Autotune configs and heuristics of a kernel object."""
    configs, heuristics = [], {}
    while not isinstance(kernel, triton.runtime.jit.JITFunction):
        if isinstance(kernel, triton.runtime.autotuner.Autotuner):
            configs = kernel.configs
        if isinstance(kernel, triton.runtime.autotuner.Heuristics):
            heuristics.update(kernel.values)
        kernel = kernel.fn
    return configs, heuristics


def _shape_args(h: int, w: int, d: int) -> dict:
    """Runtime shape arguments of the production case (480p: 30 x 52 tokens, tile 3x4, window 21)."""
    return dict(SQ=h * w, H=h, W=w, D=d, th=3, tw=4, eh=min(21, h), ew=min(21, w), scale=1 / d**0.5)


def _compile_job(job: tuple[str, str, int, int, tuple[int, int, int], str]) -> Row:
    """Compile one (kernel, dtype, config index) and measure it."""
    name, dtype_name, index, arch, shape, ptxas_dir = job
    import importlib

    from fastvmt.backends.triton.configs import block_d, dot_precision

    module, attr = KERNELS[name]
    kernel = getattr(importlib.import_module(module), attr)
    configs, heuristics = _wrappers(kernel)
    config = configs[index]
    fn = _jit_function(kernel)
    dtype = getattr(torch, dtype_name)
    h, w, d = shape
    values = {**_shape_args(h, w, d), "BLOCK_D": block_d(d), "PRECISION": dot_precision(dtype), **config.kwargs}
    for key, rule in heuristics.items():
        values[key] = rule(values)
    signature, constants, attrs = {}, {}, {}
    for i, param in enumerate(fn.params):
        arg = param.name
        if param.is_constexpr:
            signature[arg], constants[arg] = "constexpr", values[arg]
        elif arg.endswith("_ptr"):
            kind = "i64" if arg in _INDEX_POINTERS else (_TYPE[dtype_name] if arg in _INPUT_POINTERS else "fp32")
            signature[arg], attrs[(i,)] = f"*{kind}", [["tt.divisibility", 16]]
        elif isinstance(values[arg], float):
            signature[arg] = "fp32"
        else:
            signature[arg] = "i32"
            if values[arg] % 16 == 0:  # as Triton's launcher specialises integers
                attrs[(i,)] = [["tt.divisibility", 16]]
    label = f"{config.kwargs['BLOCK_M']}x{config.kwargs['BLOCK_N']} w{config.num_warps} s{config.num_stages}"
    extra = {k: v for k, v in values.items() if k in heuristics}
    if extra:
        label += " " + " ".join(f"{k}={v}" for k, v in extra.items())
    row = Row(name, dtype_name, values["PRECISION"], label, 0, 0, 0, 0.0, 0, 0, 0, 0)
    try:
        source = triton.compiler.ASTSource(fn, signature, constants, attrs)
        target = triton.backends.compiler.GPUTarget("cuda", arch, 32)
        options = dict(num_warps=config.num_warps, num_stages=config.num_stages)
        triton.knobs.nvidia.dump_ptxas_log = True  # Triton runs ptxas -v and prints its log: keep it
        triton.knobs.compilation.always_compile = True  # a cached kernel would skip ptxas, hence the log
        with contextlib.redirect_stdout(io.StringIO()) as log:
            compiled = triton.compile(source, target=target, options=options)
    except Exception as error:  # reported in the row: a config that does not compile is a finding
        row.error = f"compile failed: {type(error).__name__}: {str(error).splitlines()[0][:200]}"
        return row
    row.smem_kib = compiled.metadata.shared / 1024
    _measure(row, log.getvalue(), compiled.asm["cubin"], ptxas_dir)
    return row


def _measure(row: Row, log: str, cubin: bytes, tools: str) -> None:
    """Fill registers and spills (from the ptxas -v log) and instruction counts (nvdisasm) into ``row``."""
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "k.cubin")
        with open(path, "wb") as handle:
            handle.write(cubin)
        sass = subprocess.run([os.path.join(tools, "nvdisasm"), "-c", path], capture_output=True, text=True, check=True)
        sass = sass.stdout
    row.regs = int(re.search(r"Used (\d+) registers", log).group(1))
    spills = re.search(r"(\d+) bytes spill stores, (\d+) bytes spill loads", log)
    row.spill_stores, row.spill_loads = int(spills.group(1)), int(spills.group(2))
    instructions, labels, branches = _parse_sass(sass)
    row.instrs = len(instructions)
    row.wgmma = sum(op.startswith("HGMMA") for op in instructions)
    row.mma = sum(op.startswith("HMMA") for op in instructions)
    row.loop_instrs = _hot_loop_size(instructions, labels, branches)


_INSTRUCTION = re.compile(r"^\s*/\*([0-9a-f]+)\*/\s+(?:@!?U?P\w+\s+)?([A-Z][\w.]*)")
_LABEL = re.compile(r"^(\.L_x_\d+):")
_BRANCH = re.compile(r"BRA\s+`\((\.L_x_\d+)\)")


def _parse_sass(sass: str) -> tuple[list[str], dict[str, int], list[tuple[int, str]]]:
    """Opcodes in order, label -> index of the next instruction, and (index, target) of every branch."""
    instructions, labels, branches = [], {}, []
    for line in sass.splitlines():
        label = _LABEL.match(line)
        if label:
            labels[label.group(1)] = len(instructions)
            continue
        match = _INSTRUCTION.match(line)
        if match:
            branch = _BRANCH.search(line)
            if branch:
                branches.append((len(instructions), branch.group(1)))
            instructions.append(match.group(2))
    return instructions, labels, branches


def _hot_loop_size(instructions: list[str], labels: dict[str, int], branches: list[tuple[int, str]]) -> int:
    """Instructions of the innermost loop holding a tensor-core instruction (else of the largest loop)."""
    loops = [(labels[target], at) for at, target in branches if target in labels and labels[target] <= at]
    if not loops:
        return 0
    tensor = [i for i, op in enumerate(instructions) if op.startswith(("HGMMA", "HMMA"))]
    holding = [(a, b) for a, b in loops if any(a <= i <= b for i in tensor)]
    if holding:
        start, end = min(holding, key=lambda loop: loop[1] - loop[0])
    else:
        start, end = max(loops, key=lambda loop: loop[1] - loop[0])
    return end - start + 1


def tools_dir() -> tuple[str, str]:
    """Folder of Triton's bundled ``ptxas`` and ``nvdisasm``, or ``("", reason)`` when they are missing."""
    folder = os.path.join(os.path.dirname(triton.__file__), "backends", "nvidia", "bin")
    missing = [tool for tool in ("ptxas", "nvdisasm") if not os.access(os.path.join(folder, tool), os.X_OK)]
    if missing:
        return "", f"{' and '.join(missing)} not found in {folder} (Triton's NVIDIA backend ships them)"
    return folder, ""


def run(kernels: list[str], dtypes: list[str], arch: int, shape: tuple[int, int, int], jobs: int) -> list[Row]:
    """Compile and measure every config of ``kernels`` in ``dtypes``."""
    import importlib

    folder, reason = tools_dir()
    if not folder:
        raise SystemExit(reason)
    work = []
    for name in kernels:
        module, attr = KERNELS[name]
        configs, _ = _wrappers(getattr(importlib.import_module(module), attr))
        work += [(name, dtype, i, arch, shape, folder) for dtype in dtypes for i in range(len(configs))]
    if jobs <= 1:
        return [_compile_job(job) for job in work]
    with concurrent.futures.ProcessPoolExecutor(jobs) as pool:
        return list(pool.map(_compile_job, work))


def table(rows: list[Row]) -> str:
    """Markdown table of the rows."""
    head = "| kernel | dtype (dot) | config | regs | spill st/ld B | smem KiB | wgmma | mma | instrs | loop |"
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        if r.error:
            lines.append(f"| {r.kernel} | {r.dtype} ({r.precision}) | {r.config} | {r.error} |||||||")
            continue
        lines.append(
            f"| {r.kernel} | {r.dtype} ({r.precision}) | {r.config} | {r.regs} | {r.spill_stores}/{r.spill_loads} "
            f"| {r.smem_kib:.0f} | {r.wgmma} | {r.mma} | {r.instrs} | {r.loop_instrs} |"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--kernels", default=",".join(KERNELS), help="comma-separated, from: " + ", ".join(KERNELS))
    parser.add_argument("--dtypes", default=",".join(PRODUCTION_DTYPES))
    parser.add_argument("--arch", type=int, default=90, help="compute capability x 10 (90: Hopper)")
    parser.add_argument("--shape", default="30x52x128", help="HxWxD of the token grid")
    parser.add_argument("--jobs", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--json", help="also write the rows to this file")
    parser.add_argument("--check", action="store_true", help="exit 1 on spills, no tensor cores, too much smem")
    args = parser.parse_args(argv)
    os.environ.pop("TRITON_INTERPRET", None)  # before the kernel modules load: this script compiles them
    kernels = args.kernels.split(",")
    unknown = [k for k in kernels if k not in KERNELS]
    if unknown:
        parser.error(f"unknown kernels {unknown}; choose from {', '.join(KERNELS)}")
    shape = tuple(int(x) for x in args.shape.split("x"))
    rows = run(kernels, args.dtypes.split(","), args.arch, shape, args.jobs)
    print(table(rows))
    if args.json:
        with open(args.json, "w") as handle:
            json.dump([asdict(r) for r in rows], handle, indent=1)
    problems = [f"{r.kernel} {r.dtype} {r.config}: {', '.join(r.problems())}" for r in rows if r.problems()]
    if args.check and problems:
        print("\n".join(["", "FAILED:", *problems]), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
