"""How replies are written, shared by the HTTP routes and the WebSocket: JSON with `default=str`,
OpenEnv's result shape, and the warning that names ignored request fields."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from fastapi.responses import Response
from pydantic import BaseModel

from .models import Lenient, Observation

if TYPE_CHECKING:
    from .sessions import Session


def json_response(content: Any, status: int = 200) -> Response:
    return Response(json.dumps(content, default=str), status_code=status, media_type="application/json")


def openenv_result(
    session: Session | None,
    observation: str,
    reward: float | None,
    terminated: bool,
    truncated: bool,
    info: dict,
    warnings: list[str] | None = None,
    pending: bool = False,
) -> dict[str, Any]:
    """OpenEnv's result: exactly `observation`, `reward`, `done` (OpenEnv 0.3's models forbid more)."""
    shown = Observation(
        text=observation,
        terminated=terminated,
        truncated=truncated,
        session_id=session.id if session is not None else None,
        pending=pending,
        warnings=warnings or [],
    ).model_dump()
    shown["info"] = info  # as it is (written out with default=str, like every reply)
    return {
        "observation": shown,
        "reward": reward,
        "done": terminated or truncated,
    }


def ignored(body: BaseModel, what: str) -> list[str]:
    names = body.ignored_fields() if isinstance(body, Lenient) else []
    return [f"unknown {what} field{'s' if len(names) > 1 else ''} ignored: {', '.join(names)}"] if names else []
