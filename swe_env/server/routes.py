"""The HTTP routes, on module-level routers that `create_app` includes: `/health` (open), and
behind the token the information routes, `/docs` and `/openapi.json`, the session routes (the
gym-shaped API), OpenEnv's `/reset` `/step` `/state` and `/mcp`. Each route gets the app's
`SessionManager` as a dependency, and the session routes the `Caller`: a client reaches only
the sessions it opened, the operator every one."""

from __future__ import annotations

import hashlib

from fastapi import APIRouter, Depends, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import Response

from .. import __version__, tools
from .api_errors import ApiError
from .dependencies import Authorized, Manager, require_token
from .discovery import action_schema, mcp_reply
from .models import CreateSessionBody, Observation, OpenEnvResetBody, OpenEnvStepBody, ResetBody, SessionState, StepBody
from .replies import ignored, json_response, openenv_result

SESSION_COOKIE = "swe_env_session"
"""The cookie naming an HTTP client's default session on OpenEnv's `/reset`, `/step` and `/state`."""

public = APIRouter()
"""Routes anyone may call: `/health`."""
# Everything but /health (and /ws, which checks the token itself) is behind the token.
router = APIRouter(dependencies=[Depends(require_token)])


@public.get("/health")
async def health() -> dict:
    return {"status": "healthy"}


# -- information


@router.get("/metadata")
async def metadata() -> dict:
    return {
        "name": "swe_env",
        "version": __version__,
        "description": f"Fix a repository at a commit so that hidden tests pass ({'/'.join(tools.DEFAULT_TOOLS)}).",
        "documentation_url": None,
        "readme_content": None,
        "author": None,
    }


@router.get("/tasks")
async def list_tasks(manager: Manager) -> list[dict]:
    return [
        {"id": task.id, "repo": task.repo, "base_commit": task.base_commit, "workdir": task.environment.workdir, "max_steps": task.limits.max_steps}
        for task in manager.tasks
    ]


@router.get("/schema")
async def schema() -> dict:
    return {"action": action_schema(), "observation": Observation.model_json_schema(), "state": SessionState.model_json_schema()}


# -- sessions (the gym-shaped API)


@router.post("/sessions", status_code=201)
async def create_session(body: CreateSessionBody, manager: Manager, caller: Authorized) -> Response:
    session, observation, info = await manager.create("http", body, caller)
    return json_response({"session_id": session.id, "observation": observation, "info": info}, 201)


@router.get("/sessions")
async def list_sessions(request: Request, manager: Manager, caller: Authorized) -> dict:
    """Capacity, how many sessions are open, and the sessions the caller may see (`SessionManager.visible`)."""
    shown = manager.visible(caller, caller_of(request), request.cookies.get(SESSION_COOKIE))
    return {
        "max_sessions": manager.config.max_sessions,
        "idle_timeout": manager.config.idle_timeout,
        "open": len(manager.sessions),
        "sessions": [session.state().model_dump() for session in shown],
    }


@router.get("/sessions/{session_id}")
async def session_state(session_id: str, manager: Manager, caller: Authorized) -> dict:
    return manager.get(session_id, caller).state().model_dump()


@router.post("/sessions/{session_id}/reset")
async def reset_session(session_id: str, body: ResetBody, manager: Manager, caller: Authorized) -> Response:
    session = manager.get(session_id, caller)
    observation, info = await manager.reset(session, body)
    return json_response({"session_id": session.id, "observation": observation, "info": info})


@router.post("/sessions/{session_id}/step")
async def step_session(session_id: str, body: StepBody, manager: Manager, caller: Authorized) -> Response:
    observation, reward, terminated, truncated, info = await manager.step(manager.get(session_id, caller), body)
    return json_response({"observation": observation, "reward": reward, "terminated": terminated, "truncated": truncated, "info": info})


@router.get("/sessions/{session_id}/trajectory")
async def session_trajectory(session_id: str, manager: Manager, caller: Authorized) -> Response:
    return json_response(await manager.trajectory(manager.get(session_id, caller)))


@router.delete("/sessions/{session_id}")
async def delete_session(session_id: str, manager: Manager, caller: Authorized) -> dict:
    manager.get(session_id, caller)
    await manager.close(session_id, "closed by its client")
    return {"session_id": session_id, "closed": True}


# -- OpenEnv's HTTP routes


def caller_of(request: Request) -> str:
    """Who an HTTP request comes from, for its default session: the client's address and credentials."""
    host = request.client.host if request.client is not None else "-"
    credentials = hashlib.sha256((request.headers.get("authorization") or "").encode()).hexdigest()[:16]
    return f"{host}|{credentials}"


@router.post("/reset")
async def openenv_reset(request: Request, manager: Manager, caller: Authorized, body: OpenEnvResetBody | None = None) -> Response:
    body = body or OpenEnvResetBody()
    warnings = ignored(body, "reset")
    default_of = caller_of(request)
    session = manager.resolve(default_of, body.session_id, request.cookies.get(SESSION_COOKIE), for_reset=True, caller=caller)
    # Refused requests leave the caller's session as it was: checked before it is reset or replaced.
    manager.check_task(body.task_id, running=session is not None and session.episode_id is not None)
    if session is not None and body.config:
        if body.session_id is not None:
            raise ApiError(422, "invalid_request", "config can only be given when a session is opened")
        manager.options(body.config)
        # The caller's default session with other options: it is replaced by a new one.
        await manager.close(session.id, "replaced by a reset with a new config")
        session = None
    if session is not None:
        observation, info = await manager.reset(session, body)
    else:
        session, observation, info = await manager.create("http", body, caller)
        manager.defaults[default_of] = session.id
    response = json_response(openenv_result(session, observation, None, False, False, info, warnings))
    response.set_cookie(SESSION_COOKIE, session.id, httponly=True, samesite="strict")
    return response


@router.post("/step")
async def openenv_step(request: Request, body: OpenEnvStepBody, manager: Manager, caller: Authorized) -> Response:
    session = manager.resolve(caller_of(request), body.session_id, request.cookies.get(SESSION_COOKIE), caller=caller)
    if session is None:
        raise ApiError(409, "no_episode", "no session for this client: POST /reset first (or pass session_id)")
    observation, reward, terminated, truncated, info = await manager.step(session, body)
    return json_response(openenv_result(session, observation, reward, terminated, truncated, info, ignored(body, "step")))


@router.get("/state")
async def openenv_state(request: Request, manager: Manager, caller: Authorized, session_id: str | None = None) -> dict:
    session = manager.resolve(caller_of(request), session_id, request.cookies.get(SESSION_COOKIE), caller=caller)
    # No session yet: OpenEnv's answer for a fresh env (no episode, no steps).
    return (session.state() if session is not None else SessionState()).model_dump()


@router.get("/openapi.json", include_in_schema=False)
async def openapi(request: Request) -> dict:
    """The API's OpenAPI schema, behind the token like every route but /health."""
    return request.app.openapi()


@router.get("/docs", include_in_schema=False)
async def docs() -> Response:
    """Swagger UI (a browser fetches /openapi.json without the token: use it on a server without one)."""
    return get_swagger_ui_html(openapi_url="/openapi.json", title="swe-env")


@router.post("/mcp")
async def mcp(request: Request) -> dict:
    return mcp_reply(await request.body())
