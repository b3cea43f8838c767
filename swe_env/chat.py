"""One OpenAI-compatible chat-completions endpoint over urllib: the client the `openai` agent and synthesis's
`model` method share.

Requests are retried a few times with exponential backoff on 408/409/425/429, 5xx, timeouts and
connection errors, each retry logged as one warning line naming the URL and the cause; the key
is read from an environment variable and sent as a bearer token, never recorded. A reply is read
up to `MAX_REPLY_BYTES`. Failures are `ModelError`s whose `kind` says what went wrong (so a caller
can count them by cause) and whose text is one line naming the URL.
"""

from __future__ import annotations

import json
import logging
import os
import random
import socket
import time
import urllib.error
import urllib.request
from typing import Any, Literal

_log = logging.getLogger(__name__)
_RETRY_STATUS = {408, 409, 425, 429}
MAX_REPLY_BYTES = 16 * 1024 * 1024
"""A reply longer than this is cut there (and then is no JSON): an endpoint cannot fill the host's memory."""

FailureKind = Literal["timeout", "rate_limited", "http_error", "connection", "bad_reply"]


class ModelError(OSError):
    """The endpoint refused the request or kept failing after every retry (an infrastructure failure of the
    run, so a resumed rollout runs the episode again). `kind` is the last failure's cause."""

    def __init__(self, message: str, kind: FailureKind = "http_error"):
        super().__init__(message)
        self.kind: FailureKind = kind


class ChatClient:
    """Requests to one endpoint (`base_url`, up to and including /v1); `usage` counts requests and retries."""

    def __init__(
        self, base_url: str, api_key_env: str = "OPENAI_API_KEY", request_timeout: float = 600.0, max_retries: int = 3, backoff_seconds: float = 1.0
    ):
        self.base_url = base_url
        self.api_key_env = api_key_env
        self.request_timeout = request_timeout
        self.max_retries = max_retries
        self.backoff_seconds = backoff_seconds
        self.usage = {"prompt_tokens": 0, "completion_tokens": 0, "requests": 0, "retries": 0}

    def url(self, path: str) -> str:
        return self.base_url.rstrip("/") + path

    def request(self, url: str, body: dict[str, Any] | None, timeout: float) -> Any:
        """One request (GET without a body, POST with one) and its JSON answer; ValueError when it is not JSON."""
        headers = {"Content-Type": "application/json"}
        key = os.environ.get(self.api_key_env)
        if key:
            headers["Authorization"] = f"Bearer {key}"
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(url, data=data, headers=headers, method="POST" if data is not None else "GET")
        with urllib.request.urlopen(request, timeout=timeout) as response:
            text = response.read(MAX_REPLY_BYTES).decode("utf-8", errors="replace")
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"a reply that is not JSON ({exc.msg}): {text[:100]!r}") from None

    def post(self, path: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST `body` to `path` with retries; the JSON answer, or ModelError after the last attempt."""
        url = self.url(path)
        attempt = 0
        while True:
            self.usage["requests"] += 1
            retry_after = None
            kind: FailureKind
            try:
                return self.request(url, body, self.request_timeout)
            except urllib.error.HTTPError as exc:
                if exc.code not in _RETRY_STATUS and exc.code < 500:
                    raise ModelError(f"{url}: {http_cause(exc, self.api_key_env)}", "http_error") from None
                failure = f"HTTP {exc.code}: {_body_of(exc)}"
                kind = "rate_limited" if exc.code == 429 else "http_error"
                retry_after = _seconds(exc.headers.get("Retry-After") if exc.headers else None)
            except (urllib.error.URLError, ConnectionError, TimeoutError) as exc:
                failure = connection_cause(exc)
                kind = "timeout" if failure == _NO_ANSWER else "connection"
            except ValueError as exc:
                failure, kind = str(exc), "bad_reply"
            if attempt >= self.max_retries:
                raise ModelError(f"{url}: {failure} (after {attempt + 1} attempts)", kind)
            delay = min(60.0, self.backoff_seconds * 2**attempt) * (0.5 + random.random() / 2)
            delay = min(retry_after, 60.0) if retry_after is not None else delay
            _log.warning("model endpoint %s: %s; retry %d of %d in %.1f s", url, failure, attempt + 1, self.max_retries, delay)
            time.sleep(delay)
            attempt += 1
            self.usage["retries"] += 1

    def complete(self, body: dict[str, Any]) -> dict[str, Any]:
        """POST /chat/completions: the reply's `choices[0].message` (usage counted); ModelError without one."""
        reply = self.post("/chat/completions", body)
        try:
            message = reply["choices"][0]["message"]
            if not isinstance(message, dict):
                raise TypeError
        except (KeyError, IndexError, TypeError):
            raise ModelError(f"{self.base_url}: a reply without choices[0].message: {str(reply)[:300]}", "bad_reply") from None
        usage = reply.get("usage") or {}
        for key in ("prompt_tokens", "completion_tokens"):
            try:
                self.usage[key] += int(usage.get(key) or 0)
            except (TypeError, ValueError, AttributeError):
                pass
        return message


def message_text(message: dict[str, Any]) -> str:
    """The text of an assistant message (a string, or content parts joined); '' when it has none."""
    content = message.get("content")
    if isinstance(content, list):
        content = "".join(part.get("text", "") for part in content if isinstance(part, dict))
    return content if isinstance(content, str) else ""


_NO_ANSWER = "no answer within the timeout"


def served_models(listing: Any) -> list[str]:
    """The model names a `GET …/models` answer lists (OpenAI's `{"data": [{"id": ...}]}`); [] for anything else."""
    if not isinstance(listing, dict):
        return []
    return [str(entry.get("id")) for entry in (listing.get("data") or []) if isinstance(entry, dict)]


def _body_of(exc: urllib.error.HTTPError) -> str:
    try:
        return exc.read(300).decode("utf-8", errors="replace").strip()
    except OSError:
        return ""


def http_cause(exc: urllib.error.HTTPError, key_env: str) -> str:
    """`HTTP 401: <the body's start>`, with a hint naming the key's variable for 401 and 403."""
    hint = f" (is ${key_env} set to a key this endpoint accepts?)" if exc.code in (401, 403) else ""
    detail = _body_of(exc)
    return f"HTTP {exc.code}{': ' + detail if detail else ''}{hint}"


def connection_cause(exc: BaseException) -> str:
    """The operating system's words for a failed connection (`Connection refused`, `Name or service not known`)."""
    reason = getattr(exc, "reason", exc)
    if isinstance(reason, (socket.timeout, TimeoutError)):
        return _NO_ANSWER
    text = getattr(reason, "strerror", None) or str(reason) or type(reason).__name__
    return f"cannot connect ({text})"


def _seconds(value: str | None) -> float | None:
    try:
        return max(float(value), 0.0) if value is not None else None
    except ValueError:
        return None
