"""`swe-env setup` (the engine checked, base images and the native seal ready) and `swe-env gc`."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape as _e

from .common import TasksOption, console, err, friendly_errors


def setup(tasks: Path = TasksOption) -> None:
    """Check the Docker engine and prepare base images for the tasks (offline bootstrap if needed)."""
    with friendly_errors():
        from ..build import images
        from ..data.task import DEFAULT_BASE_IMAGE, load_tasks
        from ..runtime import engine

        engine.client()
        found = load_tasks(tasks) if tasks.exists() else []
        for name in sorted({task.environment.os_image for task in found} or {DEFAULT_BASE_IMAGE}):
            images.ensure_os_image(name, progress=lambda message: err.print(f"[cyan]setup:[/] {_e(message)}"))
            console.print(f"base image [bold]{_e(name)}[/] is ready")
        from ..grading import native

        built = native.build()  # here, so parallel gradings (and tests) find it built
        if built.data is None:
            err.print(f"[yellow]setup:[/] the native seal is not built ({_e(built.reason)}): gradings use the weaker pure-Python seal")
        else:
            console.print(f"native seal [bold]{_e(str(native.target()))}[/] is ready")


def gc(everything: bool = typer.Option(False, "--all", help="Remove every swe-env container, not only orphans.")) -> None:
    """Remove swe-env containers whose owner is gone or whose time-to-live has passed."""
    with friendly_errors():
        from ..runtime import engine

        removed = engine.collect_garbage(everything=everything)
    console.print(f"removed {len(removed)} container(s)" + (f": {', '.join(removed)}" if removed else ""), markup=False, highlight=False)
