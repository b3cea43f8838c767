"""`swe-env serve`: the env over HTTP and WebSocket (the `server` extra)."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.markup import escape as _e

from .common import TasksOption, err, friendly_errors


def serve(
    tasks: Path = TasksOption,
    host: str = typer.Option("127.0.0.1", "--host", help="Address to bind; anything but loopback needs a token."),
    port: int = typer.Option(8000, "--port", "-p", min=0, max=65535),
    token: str | None = typer.Option(
        None, "--token", envvar="SWE_ENV_TOKEN", show_envvar=True, help="Bearer token clients must send (prefer the environment variable)."
    ),
    operator_token: str | None = typer.Option(
        None,
        "--operator-token",
        envvar="SWE_ENV_OPERATOR_TOKEN",
        show_envvar=True,
        help="Bearer token that lists and reaches every session (clients see only their own).",
    ),
    client_tokens_file: Path | None = typer.Option(
        None,
        "--client-tokens-file",
        help="File of clients' own tokens, one per line: each is a client of its own "
        "(clients sharing --token on one address share their default session).",
    ),
    max_sessions: int = typer.Option(64, "--max-sessions", min=1, help="Sessions (containers) open at once."),
    max_sessions_per_client: int | None = typer.Option(
        None, "--max-sessions-per-client", min=1, help="Sessions one client (one token) may hold at once."
    ),
    idle_timeout: float = typer.Option(600.0, "--idle-timeout", min=0.1, help="Seconds before an idle session is closed."),
    trajectory_path: Path | None = typer.Option(None, "--trajectory-path", help="Append every episode to this JSONL file."),
    log_level: str = typer.Option("info", "--log-level", help="uvicorn log level: warning, info, debug, ..."),
    max_request_bytes: int = typer.Option(
        16 * 1024 * 1024, "--max-request-bytes", min=64 * 1024, help="Largest request body or WebSocket message read (larger: HTTP 413)."
    ),
    max_output_limit: int = typer.Option(
        1_000_000, "--max-output-limit", min=200, help="Largest output_limit a client may ask for (more: HTTP 422)."
    ),
    max_command_timeout: float = typer.Option(
        3600.0, "--max-command-timeout", min=0.1, help="Largest command_timeout (seconds) a client may ask for (more: HTTP 422)."
    ),
    max_episode_timeout: float = typer.Option(
        4 * 3600.0, "--max-episode-timeout", min=0.1, help="Largest episode_timeout (seconds) a client may ask for (more: HTTP 422)."
    ),
    max_episode_steps: int = typer.Option(1000, "--max-episode-steps", min=1, help="Largest max_steps a client may ask for (more: HTTP 422)."),
) -> None:
    """Serve the env over HTTP and WebSocket (sessions, OpenEnv routes); needs the `server` extra."""
    try:
        from .. import server
    except ImportError as exc:
        err.print(f"[bold red]error:[/] {_e(str(exc))}", highlight=False, soft_wrap=True)
        raise typer.Exit(2) from None
    with friendly_errors():
        options = {"trajectory_path": str(trajectory_path)} if trajectory_path else {}
        client_tokens = _client_tokens(client_tokens_file) if client_tokens_file else []
        server.serve(
            server.ServerConfig(
                tasks=str(tasks),
                host=host,
                port=port,
                token=token or None,
                operator_token=operator_token or None,
                client_tokens=client_tokens,
                max_sessions=max_sessions,
                max_sessions_per_client=max_sessions_per_client,
                idle_timeout=idle_timeout,
                env_options=options,
                log_level=log_level,
                max_request_bytes=max_request_bytes,
                max_output_limit=max_output_limit,
                max_command_timeout=max_command_timeout,
                max_episode_timeout=max_episode_timeout,
                max_episode_steps=max_episode_steps,
            )
        )


def _client_tokens(path: Path) -> list[str]:
    """The clients' tokens: one per line; blank lines and lines starting with # are skipped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ValueError(f"{path}: the client tokens cannot be read: {exc}") from None
    return [line.strip() for line in lines if line.strip() and not line.strip().startswith("#")]
