"""`create_app`: the FastAPI app for a `ServerConfig` (its manager in `app.state`, the lifespan
that starts the reaper and closes every session, the error handlers, the routers), and `serve`,
which runs it under uvicorn."""

from __future__ import annotations

from contextlib import asynccontextmanager

import uvicorn
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response

from .. import __version__
from ..data.task import load_tasks
from ..runtime import engine
from . import routes, websocket
from .api_errors import ApiError, request_validation_text
from .config import ServerConfig
from .replies import json_response
from .request_bounds import BodyLimit
from .sessions import SessionManager


@asynccontextmanager
async def lifespan(app: FastAPI):
    manager: SessionManager = app.state.manager
    manager.start()
    try:
        yield
    finally:
        await manager.stop()


async def api_error_reply(_request: Request, exc: ApiError) -> Response:
    headers = {"WWW-Authenticate": "Bearer"} if exc.status == 401 else None
    response = json_response(exc.body(), exc.status)
    if headers:
        response.headers.update(headers)
    return response


async def bad_request_reply(_request: Request, exc: RequestValidationError) -> Response:
    return json_response({"error": "invalid_request", "detail": request_validation_text(exc.errors())}, 422)


async def too_deep_reply(_request: Request, _exc: RecursionError) -> Response:
    # JSON nested deeper than the parser recurses: the client's malformed body, not the server's failure.
    return json_response({"error": "invalid_json", "detail": "the JSON body is nested too deeply"}, 400)


def create_app(config: ServerConfig) -> FastAPI:
    """The FastAPI app for `config` (tasks are loaded now, so a bad task folder fails here)."""
    config.check()
    tasks = load_tasks(config.tasks)
    # The docs and the schema are routes of their own, behind the token (`routes.router`).
    app = FastAPI(
        title="swe-env",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
        description="A Dockerized gym environment for software-engineering agents, as a service.",
        exception_handlers={ApiError: api_error_reply, RequestValidationError: bad_request_reply, RecursionError: too_deep_reply},
    )
    app.add_middleware(BodyLimit, limit=config.max_request_bytes)
    app.state.manager = SessionManager(config, tasks)
    app.include_router(routes.public)
    app.include_router(routes.router)
    app.include_router(websocket.router)
    return app


def serve(config: ServerConfig) -> None:
    """Run the server until SIGINT/SIGTERM; on the way out every session's container is removed."""
    config.check()
    engine.client()  # fail now, with the engine's message, rather than on the first reset
    app = create_app(config)
    where = f"http://{config.host}:{config.port}"
    print(
        f"swe-env server on {where} ({len(app.state.manager.tasks)} tasks, max {config.max_sessions} sessions, "
        f"idle timeout {config.idle_timeout:g} s, token {'required' if config.token else 'not required'})",
        flush=True,
    )
    uvicorn.run(
        app, host=config.host, port=config.port, log_level=config.log_level, ws_max_size=config.max_request_bytes, timeout_graceful_shutdown=60
    )
