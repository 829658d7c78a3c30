"""Following a run step by step: progress lines from the pipeline's :class:`~fastvmt.interfaces.StepState`, and
stopping it between two denoising steps when the page's Cancel button asks."""

from __future__ import annotations

import threading
from collections.abc import Callable

from fastvmt.interfaces import StepState

__all__ = ["CancelSwitch", "RunCancelled", "step_callback", "step_line"]


class RunCancelled(Exception):
    """The run was cancelled after ``step`` of ``num_steps`` denoising steps."""

    def __init__(self, step: int, num_steps: int):
        super().__init__(f"cancelled after step {step} of {num_steps}")
        self.step, self.num_steps = step, num_steps


class CancelSwitch:
    """Which session's run is going, and whether that session asked to cancel it (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._idle = threading.Condition(self._lock)
        self._running: str | None = None
        self._cancelled = False

    def start(self, session: str) -> None:
        """``session``'s run starts (one run at a time)."""
        with self._lock:
            if self._running is not None:
                raise RuntimeError(f"a run of session {self._running} is still going")
            self._running, self._cancelled = session, False

    def finish(self) -> None:
        with self._lock:
            self._running, self._cancelled = None, False
            self._idle.notify_all()

    def cancel(self, session: str) -> bool:
        """Ask to stop ``session``'s run; False when that session has no run going."""
        with self._lock:
            if self._running != session:
                return False
            self._cancelled = True
            return True

    @property
    def busy(self) -> bool:
        with self._lock:
            return self._running is not None

    def stop(self) -> None:
        """Cancel the run going, whoever started it, and wait until it has stopped."""
        with self._lock:
            self._cancelled = self._running is not None
            while self._running is not None:
                self._idle.wait()

    @property
    def cancelled(self) -> bool:
        with self._lock:
            return self._cancelled


def step_line(state: StepState) -> str:
    """``step 3/20 (guided) · loss 0.123 · gradients 4 computed / 6 reused``."""
    loss = "-" if state.loss is None else f"{state.loss:.4g}"
    guided = " (guided)" if state.guided else ""
    return (f"step {state.step + 1}/{state.num_steps}{guided} · loss {loss} · gradients "
            f"{state.gradients_computed} computed / {state.gradients_reused} reused")


def step_callback(report: Callable[[StepState], None], switch: CancelSwitch) -> Callable[[StepState], None]:
    """A pipeline callback: ``report(state)`` after every step, then :class:`RunCancelled` if cancel was asked."""

    def callback(state: StepState) -> None:
        report(state)
        if switch.cancelled:
            raise RunCancelled(state.step + 1, state.num_steps)

    return callback
