"""The tool registry: each tool written once — its arguments, what it does, and how it is written.

A `Tool` is its argument model, the function that runs it against one step's `ToolContext`, an
example, and its CWM form both ways (the block body `cwm_body` writes is what `from_cwm` reads back,
so what the CWM export teaches is exactly what the parser accepts). The env calls `run` for every
tool; `submit` too, whose result only asks the env to end the episode and grade.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, get_args

from .args import BashArgs, CreateArgs, EditArgs, SubmitArgs, ToolArgs, ToolResult, TraceArgs, UndoEditArgs, ViewArgs, error_result
from .files import FileTools

if TYPE_CHECKING:  # only for annotations: the tools' names and models load without the engine's SDK
    from ..runtime.sandbox import Sandbox


@dataclass(frozen=True)
class ToolContext:
    """What a tool may use in one step of an episode."""

    sandbox: Sandbox
    files: FileTools
    """The episode's file tools (they keep the undo history)."""
    command_timeout: float
    """Seconds a command may run unless the call asks for less (the task's limit or the env's option)."""
    remaining: float
    """Seconds left in the episode: no command runs past them."""
    output_limit: int
    """Characters of output an observation keeps."""


@dataclass(frozen=True)
class Tool:
    name: str
    args: type[ToolArgs]
    run: Callable[[ToolContext, Any], ToolResult]
    example: dict[str, Any]
    """Arguments shown in the instructions, in every action format."""
    cwm_arguments: str
    """The block's arguments as `cwm_body` writes them, with placeholders in brackets (CWM's system prompt)."""
    cwm_description: str
    """What the tool does, as the CWM system prompt says it."""
    cwm_body: Callable[[dict[str, Any]], str]
    """Arguments (a parsed call's dict) -> the text between `<tool: NAME>` and `</tool>`."""
    from_cwm: Callable[[str], dict[str, Any]]
    """That text -> arguments; ValueError with the agent's fix in its message."""
    runs_commands: bool = False
    """bash and trace: the step's info carries the command's exit code and whether it timed out."""
    default: bool = True
    """Offered unless the env is told otherwise (optional ones, like `trace`, are opt-in)."""
    returns: str = ""
    """What the tool's observation holds (the `Returns:` of the TRL adapter's generated methods)."""


def run(name: str, args: ToolArgs, context: ToolContext) -> ToolResult:
    """Run one validated call (`actions.parse` made `args`): the one entry point of every tool."""
    return REGISTRY[name].run(context, args)


# ------------------------------------------------------------------ what each tool does


def _bash(context: ToolContext, args: BashArgs) -> ToolResult:
    timeout = min(args.timeout or context.command_timeout, context.remaining)
    result = context.sandbox.run(args.command, timeout=timeout)
    return ToolResult(result.output, result.exit_code, error=result.timed_out, notes=result.notes, timed_out=result.timed_out)


def _trace(context: ToolContext, args: TraceArgs) -> ToolResult:
    from ..traces import host as traces  # here: the tracer's host side needs the engine, the registry's names do not

    text, exit_code, error, timed_out = traces.tool_observation(
        context.sandbox, args.command, min(context.command_timeout, context.remaining), context.output_limit
    )
    return ToolResult(text, exit_code, error=error, timed_out=timed_out)


def _submit(_context: ToolContext, args: SubmitArgs) -> ToolResult:
    return ToolResult("", submitted=True, patch=args.patch)


def _file_tool(method: Callable[[FileTools, Any], ToolResult]) -> Callable[[ToolContext, Any], ToolResult]:
    def run_file_tool(context: ToolContext, args: ToolArgs) -> ToolResult:
        try:
            return method(context.files, args)
        except OSError as exc:  # permissions, odd file types: the agent's to read, not an exception
            return error_result(str(exc) or type(exc).__name__)

    return run_file_tool


# ------------------------------------------------------------------ CWM's block bodies, both ways

_SEARCH = "<<<<<<< SEARCH\n"
_DIVIDER = "=======\n"
_REPLACE = ">>>>>>> REPLACE"


def _command_body(arguments: dict[str, Any]) -> str:
    return arguments["command"]


def _command_from(body: str) -> dict[str, Any]:
    return {"command": body}


def _path_body(arguments: dict[str, Any]) -> str:
    return arguments["path"]


def _path_from(body: str) -> dict[str, Any]:
    return {"path": body.partition("\n")[0].strip()}


def _edit_body(arguments: dict[str, Any]) -> str:
    return f"{arguments['path']}\n<<<<<<< SEARCH\n{arguments['old']}\n=======\n{arguments['new']}\n>>>>>>> REPLACE"


def _edit_from(body: str) -> dict[str, Any]:
    """The path on the first line, `<<<<<<< SEARCH`, the old lines up to the first `=======` line,
    the new lines up to the closing `>>>>>>> REPLACE` (only whitespace after it); the line break
    before each marker belongs to the marker.

    Found with str.find, in linear time: a lazy regex over the same shape backtracks quadratically
    on a body of many `=======` lines without a closing marker."""
    path, _, rest = body.partition("\n")
    tail = rest.rstrip()
    divider = rest.find(_DIVIDER)
    if not rest.startswith(_SEARCH) or not tail.endswith(_REPLACE) or divider < len(_SEARCH):
        raise ValueError("edit: expected the path on the first line, then <<<<<<< SEARCH, the old lines, =======, the new lines and >>>>>>> REPLACE")
    old_end = divider - 1 if divider > len(_SEARCH) and rest[divider - 1] == "\n" else divider
    new_start, new_end = divider + len(_DIVIDER), len(tail) - len(_REPLACE)
    if new_end > new_start and rest[new_end - 1] == "\n":
        new_end -= 1
    if new_end < new_start:
        raise ValueError("edit: expected the path on the first line, then <<<<<<< SEARCH, the old lines, =======, the new lines and >>>>>>> REPLACE")
    return {"path": path.strip(), "old": rest[len(_SEARCH) : old_end], "new": rest[new_start:new_end]}


def _create_body(arguments: dict[str, Any]) -> str:
    return f"{arguments['path']}\n{arguments['content']}"


def _create_from(body: str) -> dict[str, Any]:
    path, _, content = body.partition("\n")
    return {"path": path.strip(), "content": content}


def _view_body(arguments: dict[str, Any]) -> str:
    return arguments["path"] + ("\n{} {}".format(*arguments["range"]) if arguments.get("range") else "")


def _view_from(body: str) -> dict[str, Any]:
    path, _, rest = body.partition("\n")
    numbers = rest.split()
    if numbers and not (len(numbers) == 2 and all(n.lstrip("-").isdigit() for n in numbers)):
        raise ValueError("view: the optional second line must be two line numbers: FIRST LAST")
    return {"path": path.strip(), **({"range": [int(n) for n in numbers]} if numbers else {})}


def _no_body(_arguments: dict[str, Any]) -> str:
    return ""


def _nothing_from(_body: str) -> dict[str, Any]:
    return {}


# ------------------------------------------------------------------ the tools

_TOOLS = [
    Tool(
        "bash",
        BashArgs,
        _bash,
        {"command": "python -m pytest -q tests/test_x.py"},
        "[command(s)]",
        "Runs [command(s)] in a persistent bash shell in the repository: the working directory "
        "and exported variables are kept between calls. [command(s)] can be any non-interactive bash command(s), "
        "single or multi-line.",
        _command_body,
        _command_from,
        runs_commands=True,
        returns="The command's combined output, then its exit code.",
    ),
    Tool(
        "edit",
        EditArgs,
        _file_tool(FileTools.edit),
        {"path": "pkg/mod.py", "old": "exact old lines", "new": "new lines"},
        "[path]\n<<<<<<< SEARCH\n[search_lines]\n=======\n[replacement_lines]\n>>>>>>> REPLACE",
        "Replaces [search_lines] in the file at [path] with [replacement_lines]; [search_lines] must match the "
        "file's text exactly, indentation included, and occur in it exactly once.",
        _edit_body,
        _edit_from,
        returns="The edited region of the file, or why nothing was changed.",
    ),
    Tool(
        "undo_edit",
        UndoEditArgs,
        _file_tool(FileTools.undo_edit),
        {"path": "pkg/mod.py"},
        "[path]",
        "Undoes the last edit or create made to the file at [path] with the edit tools.",
        _path_body,
        _path_from,
        returns="What was restored.",
    ),
    Tool(
        "view",
        ViewArgs,
        _file_tool(FileTools.view),
        {"path": "pkg/mod.py", "range": [1, 40]},
        "[path]\n[first] [last]",
        "Shows the file at [path] with line numbers, or lists the directory at [path] "
        "two levels deep. The second line is optional: lines [first] to [last] of a file ([last] may be -1 for "
        "the end).",
        _view_body,
        _view_from,
        returns="The numbered lines, or the directory listing.",
    ),
    Tool(
        "create",
        CreateArgs,
        _file_tool(FileTools.create),
        {"path": "pkg/new.py", "content": "file content..."},
        "[path]\n[content]",
        "Creates a new file at [path] with [content] (missing parent folders are made); it is an error if [path] exists.",
        _create_body,
        _create_from,
        returns="What was created.",
    ),
    Tool(
        "submit",
        SubmitArgs,
        _submit,
        {},
        "",
        "Finishes the episode: the repository as it is now is graded by hidden tests. Takes no arguments.",
        _no_body,
        _nothing_from,
        returns="The verdict.",
    ),
    Tool(
        "trace",
        TraceArgs,
        _trace,
        {"command": "python -m pytest tests/test_x.py::test_y"},
        "[command]",
        "Runs the Python program [command] (python ..., pytest ...) under a line tracer and shows "
        "each executed line of the repository with the local variables it changed.",
        _command_body,
        _command_from,
        runs_commands=True,
        default=False,
        returns="Each executed line of the repository with the locals it changed, then the exit code.",
    ),
]
REGISTRY: dict[str, Tool] = {tool.name: tool for tool in _TOOLS}
TOOLS: dict[str, type[ToolArgs]] = {tool.name: tool.args for tool in _TOOLS}
"""Each tool's argument model, by name."""
DEFAULT_TOOLS = [tool.name for tool in _TOOLS if tool.default]
"""The tools an env offers unless told otherwise (optional ones, like `trace`, are opt-in)."""
ALWAYS_OFFERED = "submit"
"""The tool offered whatever the env is told (an episode must be able to end)."""


def offered(names: list[str]) -> list[str]:
    """The tools an episode offers when told `names`: those, and `ALWAYS_OFFERED` (each once, in order)."""
    return list(dict.fromkeys([*names, ALWAYS_OFFERED]))


# ------------------------------------------------------------------ the action formats

ActionFormat = Literal["dict", "cwm", "openai"]
"""How the env's instructions ask the agent to write its actions (every form is accepted whatever the format:
`actions.parse`): a JSON object, a CWM `<tool: NAME>` block, or OpenAI function calling."""
ACTION_FORMATS: tuple[ActionFormat, ...] = get_args(ActionFormat)


# ------------------------------------------------------------------ what the agent reads about them

_FORMAT_INTRO: dict[ActionFormat, str] = {
    "dict": "Send exactly one action per step as a JSON object:",
    "cwm": "Send exactly one tool call per step as a <tool: NAME> ... </tool> block:",
    "openai": "Call exactly one of these functions per step (function calling):",
}


def cwm_call(action: dict[str, Any]) -> str:
    """A parsed action (`ToolCall.to_dict()`) written as a CWM tool-call block, the form `actions.parse`
    reads back: `<tool: NAME>`, a newline, the arguments, a newline and `</tool>`; a call without
    arguments (submit) is `<tool: NAME>`, a newline and `</tool>`."""
    name = action["tool"]
    body = REGISTRY[name].cwm_body(action) if name in REGISTRY else ""
    return f"<tool: {name}>\n{body}\n</tool>" if body else f"<tool: {name}>\n</tool>"


def example(name: str, action_format: ActionFormat) -> str | None:
    """The tool's example call in an action format (None for openai: its schema is the example)."""
    tool = REGISTRY[name]
    if action_format == "dict":
        return json.dumps({"tool": name, **tool.example})
    if action_format == "cwm":
        return cwm_call({"tool": name, **tool.example})
    return None


def schemas(names: list[str] | None = None) -> list[dict]:
    """The tools in OpenAI's function-calling `tools` format."""
    result = []
    for name in names or DEFAULT_TOOLS:
        model = TOOLS[name]
        parameters = model.model_json_schema()
        parameters.pop("title", None)
        parameters.pop("description", None)
        for prop in parameters.get("properties", {}).values():
            prop.pop("title", None)
        result.append(
            {
                "type": "function",
                "function": {"name": name, "description": (model.__doc__ or "").strip(), "parameters": parameters},
            }
        )
    return result


def instructions(workdir: str, action_format: ActionFormat = "dict", names: list[str] | None = None) -> str:
    """Plain-text description of the tools in the requested action format, for the first observation."""
    lines = [f"The repository is checked out at {workdir}. {_FORMAT_INTRO[action_format]}"]
    for name in names or DEFAULT_TOOLS:
        doc = (TOOLS[name].__doc__ or "").strip()
        shown = example(name, action_format)
        if shown is None:
            lines.append(f"- {name}: {doc}")
        elif "\n" in shown:
            lines.append(f"- {name}: {doc}\n{shown}")
        else:
            lines.append(f"- {name}: {doc}  e.g. {shown}")
    return "\n".join(lines)
