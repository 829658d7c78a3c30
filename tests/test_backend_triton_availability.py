"""The Triton backend says when and why it cannot run, and ``fastvmt backends`` shows it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest
import torch
from typer.testing import CliRunner

from fastvmt.backends.base import Case
from fastvmt.backends.dispatch import BackendUnavailable, select_backend
from fastvmt.backends.triton import TritonBackend
from fastvmt.cli import app

pytest.importorskip("triton")

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")
TRITON = TritonBackend()


def _case(op="windowed", dtype=torch.float32, d=64, device=DEVICE):
    return Case(op, device, dtype, (2, 6, 8, d), True)


def _triton_row(output: str) -> list[str]:
    rows = [line.split(None, 4) for line in output.splitlines() if line.startswith("triton ")]
    assert len(rows) == 1, output
    return rows[0]


@pytest.mark.parametrize(
    ("case", "named"),
    [
        (_case(dtype=torch.float64), "float64"),
        (_case(d=512), "512"),
        (_case(op="sparse"), "sparse"),
    ],
)
def test_refusals_name_the_problem(case, named):
    ok, reason = TRITON.supports(case)
    assert not ok
    assert named in reason


def test_interpreter_refuses_bfloat16_with_the_reason():
    from fastvmt.backends.triton import configs

    if not configs.INTERPRETED:
        pytest.skip("kernels are compiled for a GPU here, bfloat16 is supported")
    ok, reason = TRITON.supports(_case(dtype=torch.bfloat16))
    assert not ok and "interpreter" in reason and "bfloat16" in reason


def test_direct_call_with_unsupported_input_raises_before_running():
    q = torch.zeros(1, 3, 4, 16, dtype=torch.float64, device=DEVICE)
    starts = torch.zeros(1, 1, 2, dtype=torch.long, device=DEVICE)
    pairs = torch.zeros(1, 2, dtype=torch.long, device=DEVICE)
    with pytest.raises(BackendUnavailable, match="float64"):
        TRITON.windowed_positions(q, q, pairs, starts, (3, 4), (3, 4), 0.25)


@pytest.mark.skipif(not TRITON.supports(_case())[0], reason="triton cannot run here")
def test_windows_outside_the_grid_are_refused_in_check_mode_before_the_kernel_reads_them():
    from fastvmt.ops import checks_enabled

    q = torch.zeros(1, 3, 4, 16, device=DEVICE)
    pairs = torch.zeros(1, 2, dtype=torch.long, device=DEVICE)
    outside = torch.tensor([[[1, 0]]], device=DEVICE)  # a 3-row window starting at row 1 of 3 rows
    with checks_enabled(), pytest.raises(ValueError, match="inside the 3x4 grid"):
        TRITON.windowed_positions(q, q, pairs, outside, (3, 4), (3, 4), 0.25)
    with pytest.raises(ValueError, match="must divide the grid"):
        TRITON.windowed_positions(q, q, pairs, outside, (2, 4), (3, 4), 0.25)


def test_triton_runs_when_named_and_is_never_chosen_automatically_for_cpu_tensors():
    if TRITON.supports(_case(device=torch.device("cpu")))[0]:
        assert select_backend(_case(device=torch.device("cpu")), "triton").name == "triton"
    try:
        chosen = select_backend(_case(device=torch.device("cpu"))).name
    except BackendUnavailable:  # no CPU backend registered besides reference (never auto)
        chosen = None
    assert chosen != "triton"


def test_backends_command_lists_triton_with_its_availability():
    result = CliRunner().invoke(app, ["backends"])

    assert result.exit_code == 0, result.output
    row = _triton_row(result.output)
    ok, reason = TRITON.supports(_case())
    assert row[3] == ("yes" if ok else "no")
    assert "reference" in result.output


def test_registering_the_backend_imports_no_triton():
    script = "import sys; from fastvmt import plugins; plugins.names('backend'); print('triton' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


@pytest.mark.skipif(torch.cuda.is_available(), reason="with CUDA the compiled kernels run: no refusal to show")
def test_without_gpu_or_interpreter_the_reason_says_what_to_set():
    script = textwrap.dedent(
        """
        import os
        import torch
        from typer.testing import CliRunner
        from fastvmt.backends.base import Case
        from fastvmt.backends.triton import TritonBackend
        from fastvmt.cli import app

        print(CliRunner().invoke(app, ["backends"]).output)
        os.environ["TRITON_INTERPRET"] = "1"  # too late: the kernels were imported for the GPU above
        print("late:", TritonBackend().supports(Case("dense", torch.device("cpu"), torch.float32, (1, 2, 2, 8), False)))
        """
    )
    env = {key: value for key, value in os.environ.items() if key != "TRITON_INTERPRET"}
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)

    assert done.returncode == 0, done.stderr
    row = _triton_row(done.stdout)
    assert row[3] == "no" and "TRITON_INTERPRET=1" in row[4]
    late = done.stdout.split("late:", 1)[1]
    assert "False" in late and "after" in late
