"""``fastvmt ui``: the local web page (the optional extra ``fastvmt[ui]``, gradio)."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Annotated, Optional

import typer

from fastvmt.cli.app import app
from fastvmt.cli.errors import user_errors
from fastvmt.cli.options import Attention, Device, Dtype, ModelDir
from fastvmt.ui.model import BACKBONES


def _check_port(host: str, port: int) -> None:
    """``ValueError`` when ``host:port`` cannot be listened on (checked before the model loads)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server does
        try:
            probe.bind((host, port))
        except OSError as error:
            raise ValueError(f"cannot listen on {host}:{port} ({error.strerror}); choose another --port or --host")


@app.command()
@user_errors
def ui(
    model_dir: ModelDir = None,
    backbone: Annotated[Optional[str], typer.Option(
        "--backbone", help=f"A model without weights instead of --model-dir: {', '.join(BACKBONES)} (random "
                           "weights: its imagery means nothing).")] = None,
    runs: Annotated[Path, typer.Option("--runs", help="Folder the runs are saved in.")] = Path("fastvmt-runs"),
    host: Annotated[str, typer.Option(
        "--host", help="Address to listen on; the default lets only this computer in.")] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port to listen on.")] = 7860,
    dtype: Dtype = None,
    device: Device = None,
    attention: Attention = None,
    offload: Annotated[bool, typer.Option(
        "--offload/--no-offload", help="Offload model weights to the CPU between uses (low-VRAM GPUs).")] = False,
) -> None:
    """Serve a web page for motion transfer: upload a reference, write a prompt, run, watch, download.

    The model is loaded once. Runs queue one at a time and are saved in --runs, each with the sidecar that
    fastvmt transfer --config replays. Ctrl-C stops the server and cancels a run in progress.
    """
    from fastvmt.ui.model import check_model_choice, load_served_model

    check_model_choice(model_dir, backbone)
    _check_port(host, port)
    try:
        from fastvmt.ui.app import address_line, build_app, launch
    except ModuleNotFoundError as missing:
        if missing.name != "gradio":
            raise
        raise ImportError("fastvmt ui needs gradio: pip install 'fastvmt[ui]'") from None
    from fastvmt.ui.runner import UIRunner
    from fastvmt.ui.runs import RunFolder

    typer.echo(f"loading {model_dir or backbone}...")
    model = load_served_model(runs=runs, model_dir=model_dir, backbone=backbone, dtype=dtype, device=device,
                              attention=attention, offload=offload)
    folder = RunFolder(runs)
    runner = UIRunner(model, folder)
    page = build_app(runner, host=host, port=port)
    launch(page, runner, host=host, port=port)
    typer.echo(f"fastvmt ui: {address_line(host, port)} Runs are saved in {folder.root}. Ctrl-C stops.")
    page.block_thread()
    if runner.busy:
        typer.echo("stopping: the run in progress is cancelled after its current step...")
    runner.stop()
