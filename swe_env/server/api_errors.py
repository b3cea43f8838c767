"""How the server turns a request down: `ApiError` (an HTTP status, a short code, a one-line
message), the status each failure of an env call deserves, and pydantic's errors as one line."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from .. import endings


class ApiError(Exception):
    """A request the server turns down: an HTTP status, a short code and a one-line message."""

    def __init__(self, status: int, code: str, message: str):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message

    def body(self) -> dict[str, Any]:
        return {"error": self.code, "detail": self.message}


def as_api_error(exc: BaseException) -> ApiError:
    """The status a failure of an env call deserves: 4xx for the caller's mistakes, 503 for infrastructure."""
    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, KeyError):
        return ApiError(404, "unknown_task", str(exc.args[0]) if exc.args else "unknown task")
    if isinstance(exc, ValidationError):
        return ApiError(422, "invalid_request", validation_text(exc))
    if isinstance(exc, ValueError):
        return ApiError(422, "invalid_request", str(exc))
    if endings.judge("outside", exc).ours:
        return ApiError(503, "infrastructure", f"infrastructure failure ({type(exc).__name__}): {exc}")
    return ApiError(500, "internal", f"internal error ({type(exc).__name__}): {exc}")


def validation_text(exc: ValidationError) -> str:
    parts = []
    for error in exc.errors():
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body") or "body"
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts)


def request_validation_text(errors: Any) -> str:
    """FastAPI's RequestValidationError as one line, with a hint when the body is not a JSON object."""
    parts = []
    for error in errors:
        where = ".".join(str(part) for part in error.get("loc", ()) if part != "body") or "body"
        message = error.get("msg", "invalid")
        if error.get("type") == "json_invalid":
            where = "body"
        if where == "body" and error.get("type") in ("model_attributes_type", "dict_type", "json_invalid"):
            message += " (send a JSON object with Content-Type: application/json)"
        parts.append(f"{where}: {message}")
    return "; ".join(parts) or "invalid request"
