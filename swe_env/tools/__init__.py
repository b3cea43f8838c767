"""The agent's tools: the registry (each tool's arguments, what it does, how it is written), the
argument models, the file tools, and what agents read about them (schemas, instructions, CWM blocks).

Loads without the engine's SDK (the client and the env's options use the names and models).
"""

from .args import MAX_ACTION_CHARS, BashArgs, CreateArgs, EditArgs, SubmitArgs, ToolArgs, ToolResult, TraceArgs, UndoEditArgs, ViewArgs, error_result
from .files import MAX_EDIT_BYTES, MAX_VIEW_BYTES, MAX_VIEW_CHARS, SNIPPET_CONTEXT, FileTools, escape_control
from .registry import (
    ACTION_FORMATS,
    ALWAYS_OFFERED,
    DEFAULT_TOOLS,
    REGISTRY,
    TOOLS,
    ActionFormat,
    Tool,
    ToolContext,
    cwm_call,
    example,
    instructions,
    offered,
    run,
    schemas,
)

__all__ = [
    "ACTION_FORMATS",
    "ALWAYS_OFFERED",
    "ActionFormat",
    "BashArgs",
    "CreateArgs",
    "MAX_ACTION_CHARS",
    "DEFAULT_TOOLS",
    "EditArgs",
    "FileTools",
    "MAX_EDIT_BYTES",
    "MAX_VIEW_BYTES",
    "MAX_VIEW_CHARS",
    "REGISTRY",
    "SNIPPET_CONTEXT",
    "SubmitArgs",
    "TOOLS",
    "Tool",
    "ToolArgs",
    "ToolContext",
    "ToolResult",
    "TraceArgs",
    "UndoEditArgs",
    "ViewArgs",
    "cwm_call",
    "error_result",
    "escape_control",
    "example",
    "instructions",
    "offered",
    "run",
    "schemas",
]
