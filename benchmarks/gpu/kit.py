"""fastvmt's GPU measurement kit: environment, Triton correctness, AMF benchmark and full-size generations.

    python benchmarks/gpu/kit.py [--mode gpu|cpu] [--device cuda] [--out gpu-results] [--budget 435]
                                 [--stages env,triton,amf,generation] [--runs fastvmt@81,...]
    python benchmarks/gpu/kit.py --check-imports

Each stage (``stages.py``) runs in its own process with its share of ``--budget`` seconds: it skips what its
deadline leaves no time for (and says so), and is killed a little past it, keeping what it had saved. A failing
stage does not stop the others. ``results.json`` and ``results.md`` under ``--out`` are rewritten after every
stage. ``--mode cpu`` runs the same stages at tiny sizes on the CPU (Triton in its interpreter), as
tests/test_gpu_kit.py does. On a machine without network, ``bash benchmarks/gpu/run.sh`` installs the
wheelhouse first and then runs this.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
import traceback
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))

import report  # noqa: E402
import stages  # noqa: E402

#: Each stage's share of the budget (seconds at the default budget), per mode. On a GPU the triton stage pays for
#: compiling and autotuning the kernels; the amf stage finds them in Triton's on-disk cache.
SHARES = {
    "gpu": {"env": 15, "triton": 95, "amf": 55, "generation": 270},
    "cpu": {"env": 60, "triton": 90, "amf": 60, "generation": 120},  # ceilings for a busy 2-core machine
}
#: Seconds past its deadline before a stage's process is killed.
GRACE = {"gpu": 20, "cpu": 30}


def write_json(path: Path, data: dict) -> None:
    """Write ``data`` atomically (a reader never sees half a file)."""
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(json.dumps(data, indent=2, default=str) + "\n")
    temporary.replace(path)


def stage_environment(mode: str) -> dict[str, str]:
    """The stage processes' environment: Triton's interpreter on a CPU, compiled kernels on a GPU."""
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    if mode == "cpu":
        env["TRITON_INTERPRET"] = "1"
    else:
        env.pop("TRITON_INTERPRET", None)
    return env


def run_child(args: argparse.Namespace) -> int:
    """Run one stage in this process, saving its record to ``--partial`` as it goes."""
    path = Path(args.partial)

    def save(stage: stages.Stage, status: str = "running", **extra) -> None:
        write_json(path, {"status": status, "results": stage.results, "failures": stage.failures,
                          "skipped": stage.skipped, **extra})

    ctx = stages.Stage(args.stage, args.mode, args.device, args.deadline, path, REPO, save, runs=args.runs)
    if args.mode == "cpu":
        import torch

        torch.set_num_threads(1)  # tiny shapes: a second thread only adds synchronisation
    try:
        stages.STAGES[args.stage](ctx)
    except Exception as exc:  # noqa: BLE001 - recorded, the parent goes on with the next stage
        traceback.print_exc()
        save(ctx, "error", error=stages.last_line(exc), traceback=traceback.format_exc().splitlines()[-12:])
        return 0
    save(ctx, "failed" if ctx.failures else "ok")
    return 0


def run_stage(name: str, budget: float, args: argparse.Namespace, scratch: Path) -> dict:
    """Run stage ``name`` in a child process; its record, with status ``timeout`` or ``error`` when it died."""
    partial = scratch / f"{name}.json"
    start = time.time()
    cpu_before = _children_cpu()
    deadline = start + budget
    command = [sys.executable, str(Path(__file__).resolve()), "--stage", name, "--mode", args.mode,
               "--device", args.device, "--deadline", repr(deadline), "--partial", str(partial)]
    if args.runs:
        command += ["--runs", args.runs]
    print(f"\n=== stage {name}: budget {budget:.0f} s ===", flush=True)
    process = subprocess.Popen(command, cwd=REPO, env=stage_environment(args.mode))
    limit = budget + GRACE[args.mode]
    try:
        returncode = process.wait(timeout=limit)
        timed_out = False
    except subprocess.TimeoutExpired:
        stages.kill_tree(process.pid)
        returncode = process.wait()
        timed_out = True
    record = json.loads(partial.read_text()) if partial.exists() else {"results": {}, "failures": [], "skipped": []}
    if timed_out:
        record["status"] = "timeout"
        record["error"] = f"killed after {limit:.0f} s (budget {budget:.0f} s + {GRACE[args.mode]} s grace)"
    elif record.get("status") in (None, "running"):
        record["status"] = "error"
        how = f"signal {-returncode}" if returncode < 0 else f"exit code {returncode}"
        record["error"] = f"the stage process ended with {how} before finishing (see the log)"
    record["seconds"] = round(time.time() - start, 1)
    record["cpu_s"] = round(_children_cpu() - cpu_before, 1)
    record["budget_s"] = round(budget, 1)
    print(f"=== stage {name}: {record['status']} in {record['seconds']} s ===", flush=True)
    return record


def _children_cpu() -> float:
    """CPU seconds (user + system) of this process's finished children so far."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def check_imports() -> int:
    """Print each import of ``stages.IMPORTS`` and each missing requirement; 1 if any is broken."""
    broken = 0
    for module, outcome in stages.import_report().items():
        print(f"  import {module:42s} {outcome}")
        broken += outcome != "ok"
    requirements = stages.requirement_report()
    for item in requirements["missing"]:
        print(f"  missing requirement: {item}")
    for item in requirements["version_mismatch"]:
        print(f"  version outside the required range (may still work): {item}")
    for item in requirements.get("unchecked", []):
        print(f"  requirements: {item}")
    broken += len(requirements["missing"])
    print("imports: all ok" if not broken else f"imports: {broken} problem(s) above")
    return 1 if broken else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--mode", choices=["gpu", "cpu"], default="gpu")
    parser.add_argument("--device", help="torch device (default: cuda in gpu mode, cpu in cpu mode)")
    parser.add_argument("--out", default=os.environ.get("OUT") or "gpu-results")
    parser.add_argument("--budget", type=float, help="total seconds, shared by the stages (default: 435 on a "
                        "GPU, 330 on a CPU)")
    parser.add_argument("--stages", default=",".join(stages.STAGES))
    parser.add_argument("--runs", help="generations, comma-separated strategy[+backbone_option][@frames] "
                        f"(default on a GPU: {stages.DEFAULT_RUNS['gpu']})")
    parser.add_argument("--check-imports", action="store_true", help="only check the imports and requirements")
    parser.add_argument("--stage", help=argparse.SUPPRESS)
    parser.add_argument("--deadline", type=float, help=argparse.SUPPRESS)
    parser.add_argument("--partial", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    args.device = args.device or ("cuda" if args.mode == "gpu" else "cpu")
    if args.check_imports:
        return check_imports()
    if args.stage:
        return run_child(args)

    names = [n.strip() for n in args.stages.split(",") if n.strip()]
    unknown = [n for n in names if n not in stages.STAGES]
    if unknown:
        parser.error(f"unknown stage(s) {', '.join(unknown)}; stages: {', '.join(stages.STAGES)}")
    shares = SHARES[args.mode]
    scale = (args.budget / sum(shares[n] for n in names)) if args.budget else 1.0
    out = Path(args.out).resolve()
    out.mkdir(parents=True, exist_ok=True)
    started = time.time()
    results = {
        "kit": {
            "mode": args.mode, "device": args.device,
            "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
            "budget_s": round(sum(shares[n] for n in names) * scale), "command": " ".join(sys.argv),
        },
        "stages": {},
    }
    with tempfile.TemporaryDirectory(prefix="fastvmt-gpu-kit-") as scratch:
        for name in names:
            results["stages"][name] = run_stage(name, shares[name] * scale, args, Path(scratch))
            results["kit"]["total_s"] = round(time.time() - started, 1)
            write_json(out / "results.json", results)
            (out / "results.md").write_text(report.markdown(results))
    print(f"\nresults: {out / 'results.json'}, {out / 'results.md'} ({results['kit']['total_s']} s)")
    statuses = {name: record["status"] for name, record in results["stages"].items()}
    print("stages: " + ", ".join(f"{name} {status}" for name, status in statuses.items()))
    return 0 if all(status == "ok" for status in statuses.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
