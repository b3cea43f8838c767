"""What a client can learn before an episode: the JSON schema of the actions (`GET /schema`) and
MCP's discovery over JSON-RPC (`POST /mcp`: initialize, ping, tools/list)."""

from __future__ import annotations

import json
from typing import Any

from .. import __version__, tools

MCP_PROTOCOL_VERSION = "2025-06-18"


def action_schema(names: list[str] | None = None) -> dict[str, Any]:
    """JSON schema of the actions: a tool-call object, or text the parser understands."""
    calls = []
    for schema in tools.schemas(names or list(tools.TOOLS)):
        function = schema["function"]
        parameters = function["parameters"]
        calls.append(
            {
                "type": "object",
                "title": function["name"],
                "description": function["description"],
                "properties": {"tool": {"const": function["name"]}, **parameters.get("properties", {})},
                "required": ["tool", *parameters.get("required", [])],
                "additionalProperties": False,
                **({"$defs": parameters["$defs"]} if "$defs" in parameters else {}),
            }
        )
    text = {"type": "string", "description": "A JSON tool call, a ```bash block, or CWM <tool: NAME> blocks."}
    openai_call = {"type": "object", "description": "An OpenAI function call or an assistant message with tool_calls."}
    return {"title": "Action", "anyOf": [*calls, text, openai_call]}


def mcp_reply(raw: bytes) -> dict[str, Any]:
    """`POST /mcp`: JSON-RPC 2.0 as MCP speaks it, for discovery (initialize, ping, tools/list).

    tools/call is refused with a JSON-RPC error: a tool call belongs to an episode, which lives
    in a session (`/ws`, `/reset` + `/step`, `/sessions`).
    """

    def error(request_id: Any, code: int, message: str) -> dict[str, Any]:
        return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message}}

    try:
        request = json.loads(raw or b"")
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        return error(None, -32700, f"Parse error: {exc}")
    request_id = request.get("id") if isinstance(request, dict) else None
    if not isinstance(request, dict) or request.get("jsonrpc") != "2.0" or not isinstance(request.get("method"), str):
        return error(request_id, -32600, 'Invalid Request: expected {"jsonrpc": "2.0", "method": ..., "id": ...}')
    method = request["method"]
    if method == "initialize":
        result: dict[str, Any] = {
            "protocolVersion": MCP_PROTOCOL_VERSION,
            "capabilities": {"tools": {"listChanged": False}},
            "serverInfo": {"name": "swe_env", "version": __version__},
        }
    elif method == "ping" or method.startswith("notifications/"):
        result = {}
    elif method == "tools/list":
        result = {
            "tools": [
                {
                    "name": schema["function"]["name"],
                    "description": schema["function"]["description"],
                    "inputSchema": schema["function"]["parameters"],
                }
                for schema in tools.schemas()
            ]
        }
    elif method == "tools/call":
        return error(
            request_id,
            -32000,
            "tools/call is not offered over /mcp: a tool call belongs to an episode; "
            "open one with the WebSocket /ws, POST /reset + /step, or POST /sessions",
        )
    else:
        return error(request_id, -32601, f"Method not found: {method}")
    return {"jsonrpc": "2.0", "id": request_id, "result": result}
