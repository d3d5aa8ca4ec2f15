"""The coordinator's view of its workers: a small interface, so that scale-out
(Ray actors on other machines) is a new transport, not a new engine."""

from __future__ import annotations

from typing import Any, Protocol

from surge.engine.messages import WorkerPlan


class WorkerTransport(Protocol):
    def start(self, plans: list[WorkerPlan]) -> None:
        """Launch one worker per plan (they load their scenario and report Ready)."""

    def poll(self, timeout: float) -> list[Any]:
        """Messages that arrived from any worker within ``timeout`` s."""

    def broadcast(self, message: Any) -> None:
        """Send a command (Start / Stop) to every live worker."""

    def dead(self) -> dict[int, str]:
        """Workers that exited without saying goodbye: index -> reason."""

    def close(self, kill: bool = False) -> None:
        """Wait for (or kill) the workers and release resources."""
