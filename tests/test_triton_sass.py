"""The Triton kernels compiled offline for Hopper (sm_90) use the tensor cores and do not spill.

Runs ``benchmarks/triton_sass.py --check`` in a subprocess (it compiles, so it runs without Triton's
interpreter) over every kernel and autotune config, in the production dtypes (float32 through a TF32 dot,
bfloat16). Skipped, with the reason, where Triton or its bundled ptxas / nvdisasm are missing. Static counts
only: whether the kernels are fast needs a GPU.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

triton = pytest.importorskip("triton")

SCRIPT = Path(__file__).resolve().parent.parent / "benchmarks" / "triton_sass.py"
TOOLS = Path(triton.__file__).parent / "backends" / "nvidia" / "bin"


def _tools_reason() -> str:
    missing = [tool for tool in ("ptxas", "nvdisasm") if not os.access(TOOLS / tool, os.X_OK)]
    return f"{', '.join(missing)} not found in {TOOLS}" if missing else ""


@pytest.mark.slow
@pytest.mark.skipif(bool(_tools_reason()), reason=_tools_reason() or "tools present")
def test_every_production_config_uses_tensor_cores_without_spills(tmp_path):
    out = tmp_path / "sass.json"
    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    result = subprocess.run(
        [sys.executable, str(SCRIPT), "--check", "--json", str(out), "--jobs", str(os.cpu_count() or 1)],
        capture_output=True, text=True, env=env, timeout=3600,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout + result.stderr
    rows = json.loads(out.read_text())
    kernels = {row["kernel"] for row in rows}
    assert kernels == {
        "dense_forward", "dense_argmax", "dense_dq", "dense_dk", "windowed_forward", "windowed_dq", "windowed_dk"
    }  # fmt: skip
    assert {(row["dtype"], row["precision"]) for row in rows} == {("float32", "tf32"), ("bfloat16", "ieee")}
    for row in rows:
        assert row["wgmma"] > 0, f"{row['kernel']} {row['dtype']} {row['config']} falls back from wgmma"
        assert row["spill_stores"] == row["spill_loads"] == 0, row


def test_sass_parser_finds_tensor_core_loop():
    """The disassembly parser: opcodes behind predicates, labels, and the innermost loop around the HGMMA."""
    sys.path.insert(0, str(SCRIPT.parent))
    try:
        import triton_sass
    finally:
        sys.path.remove(str(SCRIPT.parent))
    sass = "\n".join([
        "        /*0000*/                   MOV R1, c[0x0][0x28] ;",
        ".L_x_1:",
        "        /*0010*/                   IMAD R2, R3, R4, RZ ;",
        ".L_x_0:",
        "        /*0020*/                   HGMMA.64x64x16.F32.BF16 R24, gdesc[UR8], RZ, !UPT ;",
        "        /*0030*/              @!P1 BRA `(.L_x_0) ;",
        "        /*0040*/               @P0 BRA `(.L_x_1) ;",
        "        /*0050*/                   EXIT ;",
    ])  # fmt: skip
    instructions, labels, branches = triton_sass._parse_sass(sass)
    assert instructions == ["MOV", "IMAD", "HGMMA.64x64x16.F32.BF16", "BRA", "BRA", "EXIT"]
    assert triton_sass._hot_loop_size(instructions, labels, branches) == 2
