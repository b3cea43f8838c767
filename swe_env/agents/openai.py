"""An agent that asks any OpenAI-compatible chat-completions endpoint (vLLM, SGLang, OpenAI, ...).

    swe-env rollout --agent openai --base-url http://gpu-node:8000/v1 --model facebook/cwm

Two ways to talk tools: `native` sends the tool schemas and reads `tool_calls`; `cwm` asks for
CWM's text blocks (`<tool: bash>\\n...\\n</tool>`) and hands the model's text to the env, which
parses it. Budgets like CWM's keep a conversation in bounds: a turn limit (then it submits),
a cap per observation (head and tail kept) and a context cap (the oldest outputs are elided).
There is no default endpoint: `base_url` (or $OPENAI_BASE_URL) names it, and `check()` (which
`rollout` calls before any container starts) asks it once, with a short timeout, whether it answers
and serves the model. Requests are retried a few times with exponential backoff on 429, 5xx and
connection errors (`swe_env.chat`, the client synthesis shares), each retry logged as one warning line. The raw
reply reaches the trajectory as the step's `raw` (the whole assistant message in native mode,
the text in cwm mode). Only the standard library is used (urllib).
"""

from __future__ import annotations

import json
import os
import urllib.error
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from .. import tools
from ..chat import ChatClient, ModelError, connection_cause, http_cause, message_text, served_models
from ..exports import SYSTEM_PROMPT

__all__ = ["CHARS_PER_TOKEN", "EndpointCheckError", "ModelError", "OpenAIAgent", "OpenAIAgentConfig"]
CHARS_PER_TOKEN = 4
"""Token counts are estimated from characters (no tokenizer is needed to keep within budgets)."""
_ELIDED = "[output elided to keep the conversation within its context budget]"


class EndpointCheckError(ValueError):
    """The endpoint named by `base_url` does not answer, refuses the key, or does not serve the model
    (the user's setting to fix, found before any container starts)."""


class OpenAIAgentConfig(BaseModel):
    """Options of the openai agent (`make_agent("openai", tasks, **options)`)."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(default_factory=lambda: os.environ.get("OPENAI_MODEL", ""))
    """Model name sent with each request (default: $OPENAI_MODEL)."""
    base_url: str = Field(default_factory=lambda: os.environ.get("OPENAI_BASE_URL", ""))
    """The API root, up to and including /v1 (default: $OPENAI_BASE_URL); there is no built-in default, so no
    request goes to an endpoint the user did not name."""
    api_key_env: str = "OPENAI_API_KEY"
    """Environment variable holding the API key (sent as a bearer token; never recorded)."""
    tool_format: Literal["native", "cwm"] = "native"
    """native: function calling with tool schemas; cwm: CWM's <tool: NAME> text blocks."""
    max_turns: int = Field(default=50, ge=1)
    """Model calls per episode; after the last one the agent submits."""
    max_observation_tokens: int = Field(default=4096, ge=64)
    """An observation longer than this (estimated) keeps its head and tail only."""
    max_context_tokens: int = Field(default=100_000, ge=1024)
    """When the conversation grows past this (estimated), the oldest tool outputs are elided."""
    temperature: float = 0.0
    """Sampling temperature."""
    max_tokens: int | None = 4096
    """Tokens per reply (None: the server's default)."""
    request_timeout: float = Field(default=600.0, gt=0)
    """Seconds to wait for one reply."""
    max_retries: int = Field(default=3, ge=0)
    """Retries of a request after 429, 5xx, a timeout or a dropped connection (each logged as a warning)."""
    backoff_seconds: float = Field(default=1.0, ge=0)
    """First retry delay; it doubles each retry (with jitter, at most 60 s, or what Retry-After asks)."""
    check_timeout: float = Field(default=10.0, gt=0)
    """Seconds `check()` waits for the endpoint's answer before the run starts."""
    system_prompt: str = SYSTEM_PROMPT
    """The system message."""
    extra_body: dict[str, Any] = {}
    """More fields for each request body (e.g. vLLM's `top_k`, `chat_template_kwargs`)."""


class OpenAIAgent:
    """A chat-completions model behind the Agent protocol (see the module docstring)."""

    name = "openai"

    def __init__(self, **options: Any):
        try:
            self.config = OpenAIAgentConfig(**options)
        except ValidationError as exc:
            error = exc.errors()[0]
            field = ".".join(str(part) for part in error["loc"]) or "options"
            raise ValueError(f"openai agent: option {field!r}: {error['msg']}") from None
        if not self.config.base_url:
            raise ValueError(
                "the openai agent needs an endpoint: --base-url URL (e.g. http://localhost:8000/v1) or $OPENAI_BASE_URL; there is no default"
            )
        if not self.config.base_url.startswith(("http://", "https://")):
            raise ValueError(f"openai agent: base_url must start with http:// or https://, not {self.config.base_url!r}")
        if not self.config.model:
            raise ValueError("the openai agent needs a model name (--model, or $OPENAI_MODEL)")
        self.model = self.config.model
        self.action_format = "openai" if self.config.tool_format == "native" else "cwm"
        self.messages: list[dict[str, Any]] = []
        self.client = ChatClient(
            self.config.base_url, self.config.api_key_env, self.config.request_timeout, self.config.max_retries, self.config.backoff_seconds
        )
        self.usage = self.client.usage
        self._tools: list[dict] = []
        self._turns = 0
        self._answer_to: list[str] | None = None  # tool_call ids the next observation answers; [] = a user turn

    # ------------------------------------------------------------ before the run

    def check(self) -> None:
        """Ask the endpoint once, with a short timeout, whether it answers and serves the model;
        EndpointCheckError (one line naming the URL and the cause) otherwise.

        GET /models names the served models; a server without that route is asked for one token."""
        url = self._url("/models")
        try:
            listing = self.client.request(url, None, self.config.check_timeout)
        except urllib.error.HTTPError as exc:
            if exc.code in (404, 405):
                self._check_by_completion()
                return
            raise EndpointCheckError(f"model endpoint {url}: {http_cause(exc, self.config.api_key_env)}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise EndpointCheckError(f"model endpoint {url}: {connection_cause(exc)}; is the server running, and is --base-url right?") from None
        except ValueError as exc:
            raise EndpointCheckError(f"model endpoint {url}: {exc}; is --base-url the API root (…/v1)?") from None
        served = served_models(listing)
        if served and self.model not in served:
            from ..errors import did_you_mean

            shown = ", ".join(served[:10]) + (f" ... ({len(served) - 10} more)" if len(served) > 10 else "")
            raise EndpointCheckError(
                f"model endpoint {self.config.base_url}: no model {self.model!r}{did_you_mean(self.model, served)}; it serves: {shown}"
            )

    def _check_by_completion(self) -> None:
        url = self._url("/chat/completions")
        body = {"model": self.model, "messages": [{"role": "user", "content": "ping"}], "max_tokens": 1}
        try:
            self.client.request(url, body, self.config.check_timeout)
        except urllib.error.HTTPError as exc:
            hint = "; is --base-url the API root, up to and including /v1?" if exc.code == 404 else ""
            raise EndpointCheckError(f"model endpoint {url}: {http_cause(exc, self.config.api_key_env)}{hint}") from None
        except (urllib.error.URLError, OSError) as exc:
            raise EndpointCheckError(f"model endpoint {url}: {connection_cause(exc)}") from None
        except ValueError as exc:
            raise EndpointCheckError(f"model endpoint {url}: {exc}") from None

    # ------------------------------------------------------------ the Agent protocol

    def reset(self, observation: str, info: dict[str, Any]) -> None:
        self._tools = info.get("tool_schemas") or tools.schemas(info.get("tools"))
        self.messages = [
            {"role": "system", "content": self.config.system_prompt},
            {"role": "user", "content": observation},
        ]
        self._turns = 0
        self._answer_to = None

    def act(self, observation: str) -> Any:
        if self._answer_to is not None:
            self._add_observation(observation)
        if self._turns >= self.config.max_turns:
            return {"tool": "submit"}
        self._turns += 1
        self._fit_context()
        message = self.client.complete(self._request_body())
        content = message_text(message) or None
        calls = message.get("tool_calls") or []
        if self.config.tool_format == "native" and calls:
            self.messages.append({"role": "assistant", "content": content, "tool_calls": calls})
            self._answer_to = [str(call.get("id", "")) for call in calls]
            return {key: value for key, value in message.items() if value is not None}
        self.messages.append({"role": "assistant", "content": content or ""})
        self._answer_to = []
        return content or ""

    # ------------------------------------------------------------ conversation

    def _add_observation(self, observation: str) -> None:
        text = _cut(observation, self.config.max_observation_tokens * CHARS_PER_TOKEN)
        if self._answer_to:
            self.messages.extend({"role": "tool", "tool_call_id": call_id, "content": text} for call_id in self._answer_to)
        else:
            self.messages.append({"role": "user", "content": text})
        self._answer_to = None

    def _fit_context(self) -> None:
        budget = self.config.max_context_tokens * CHARS_PER_TOKEN
        size = sum(len(json.dumps(m, ensure_ascii=False)) for m in self.messages)
        # Oldest outputs first; the system message, the task and the last exchange stay whole.
        for message in self.messages[2:-2]:
            if size <= budget:
                return
            if message["role"] in ("tool", "user") and message["content"] != _ELIDED:
                size += len(_ELIDED) - len(message["content"])
                message["content"] = _ELIDED

    def _request_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": self.messages,
            "temperature": self.config.temperature,
            **self.config.extra_body,
        }
        if self.config.max_tokens is not None:
            body["max_tokens"] = self.config.max_tokens
        if self.config.tool_format == "native":
            body["tools"] = self._tools
        return body

    def _url(self, path: str) -> str:
        return self.client.url(path)


def _cut(text: str, limit: int) -> str:
    if len(text) <= limit:
        return text
    half = limit // 2
    return f"{text[:half]}\n[... {len(text) - 2 * half} characters cut ...]\n{text[-half:]}"
