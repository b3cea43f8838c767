"""`swe-env serve`: the env over HTTP and WebSocket (the `server` extra)."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer
from rich.markup import escape as _e

from .common import TasksOption, err, friendly_errors


def serve(
    tasks: Path = TasksOption,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; anything but loopback needs a token."),
    port: int = typer.Option(8000, "--port", "-p", min=0, max=65535),
    token: Optional[str] = typer.Option(None, "--token", envvar="SWE_ENV_TOKEN", show_envvar=True,
                                        help="Bearer token clients must send (prefer the environment variable)."),
    operator_token: Optional[str] = typer.Option(
        None, "--operator-token", envvar="SWE_ENV_OPERATOR_TOKEN", show_envvar=True,
        help="Bearer token that lists and reaches every session (clients see only their own)."),
    max_sessions: int = typer.Option(64, "--max-sessions", min=1, help="Sessions (containers) open at once."),
    idle_timeout: float = typer.Option(600.0, "--idle-timeout", min=0.1, help="Seconds before an idle session is closed."),
    trajectory_path: Optional[Path] = typer.Option(None, "--trajectory-path", help="Append every episode to this JSONL file."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level: warning, info, debug, ..."),
    max_request_bytes: int = typer.Option(16 * 1024 * 1024, "--max-request-bytes", min=64 * 1024,
                                          help="Largest request body or WebSocket message read (larger: HTTP 413)."),
) -> None:
    """Serve the env over HTTP and WebSocket (sessions, OpenEnv routes); needs the `server` extra."""
    try:
        from .. import server
    except ImportError as exc:
        err.print(f"[bold red]error:[/] {_e(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    with friendly_errors():
        options = {"trajectory_path": str(trajectory_path)} if trajectory_path else {}
        server.serve(server.ServerConfig(tasks=str(tasks), host=host, port=port, token=token or None,
                                         operator_token=operator_token or None, max_sessions=max_sessions, idle_timeout=idle_timeout,
                                         env_options=options, log_level=log_level,
                                         max_request_bytes=max_request_bytes))
