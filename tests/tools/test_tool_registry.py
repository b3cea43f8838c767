"""The tool registry: each tool once, its CWM form read back as written, and the light imports (no Docker needed)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import typing

import pytest

from swe_env import tools
from swe_env.config import EnvConfig
from swe_env.exports import cwm_system_prompt
from swe_env.tools import actions

from ..helpers import ROOT


@pytest.mark.parametrize("name", list(tools.REGISTRY))
def test_each_tools_example_reads_back_in_every_format(name):
    tool = tools.REGISTRY[name]
    expected = tool.args.model_validate(tool.example).model_dump(exclude_none=True)
    for action_format in ("dict", "cwm"):
        shown = tools.example(name, action_format)
        parsed = actions.parse(shown, allowed=list(tools.REGISTRY))
        assert parsed.tool == name and parsed.args.model_dump(exclude_none=True) == expected, (action_format, shown)
    assert json.loads(tools.example(name, "dict")) == {"tool": name, **tool.example}


@pytest.mark.parametrize("name", list(tools.REGISTRY))
def test_the_cwm_system_prompt_announces_what_the_parser_reads(name):
    tool = tools.REGISTRY[name]
    prompt = cwm_system_prompt([name])
    block = f"<tool: {name}>\n" + (f"{tool.cwm_arguments}\n" if tool.cwm_arguments else "") + "</tool>"
    assert f"{block}\n{tool.cwm_description}" in prompt


def test_the_registry_is_the_one_list_of_tools():
    assert list(tools.TOOLS) == list(tools.REGISTRY)
    assert all(tools.TOOLS[name] is tool.args for name, tool in tools.REGISTRY.items())
    assert tools.DEFAULT_TOOLS == ["bash", "edit", "undo_edit", "view", "create", "submit"]
    assert {name for name, tool in tools.REGISTRY.items() if tool.runs_commands} == {"bash", "trace"}
    assert [schema["function"]["name"] for schema in tools.schemas()] == tools.DEFAULT_TOOLS


def test_the_action_formats_are_declared_once():
    """The env's option, the server's body and the instructions all take `tools.ActionFormat`'s formats."""
    from swe_env.server.models import ResetBody  # the `server` extra

    assert tools.ACTION_FORMATS == typing.get_args(tools.ActionFormat) == ("dict", "cwm", "openai")
    assert EnvConfig.model_fields["action_format"].annotation is tools.ActionFormat
    assert typing.get_args(ResetBody.model_fields["action_format"].annotation) == (tools.ActionFormat, type(None))
    for action_format in tools.ACTION_FORMATS:
        assert tools.instructions("/testbed", action_format).startswith("The repository is checked out at /testbed.")
    assert tools.offered(["bash"]) == ["bash", tools.ALWAYS_OFFERED] and tools.offered(tools.DEFAULT_TOOLS) == tools.DEFAULT_TOOLS


@pytest.mark.parametrize(
    ("page", "start", "end"),
    [
        ("README.md", "acts through tools (", ");"),
        ("docs/integrations.md", "its\nmethods ", " are the model's"),
        ("docs/architecture.md", "tools.run (", ")"),
    ],
)
def test_the_pages_that_list_the_tools_name_the_registrys_defaults(page, start, end):
    listed = (ROOT / page).read_text().split(start, 1)[1].split(end, 1)[0]
    assert {word for word in re.findall(r"[a-z_]+", listed) if word in tools.REGISTRY} == set(tools.DEFAULT_TOOLS)


def test_submit_only_asks_the_env_to_grade():
    result = tools.run("submit", tools.SubmitArgs(patch="diff"), context=None)
    assert result.submitted and result.patch == "diff" and result.output == ""


def test_a_bad_cwm_body_is_the_agents_error():
    with pytest.raises(actions.ActionError, match="two line numbers"):
        actions.parse("<tool: view>\na.py\n1 x\n</tool>")
    with pytest.raises(actions.ActionError, match="SEARCH"):
        actions.parse("<tool: edit>\na.py\nno markers\n</tool>")


def _fresh_python(code: str) -> str:
    """What `code` prints in a new interpreter (imports made by this test run do not count)."""
    return subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout


def test_the_client_and_the_options_load_without_the_engines_sdk():
    printed = _fresh_python(
        "import sys, swe_env, swe_env.client, swe_env.config; swe_env.client.RemoteSWEEnv; swe_env.EnvConfig(max_steps=3); "
        "print(sorted(m for m in ('docker', 'swe_env.runtime.sandbox', 'swe_env.grading.grader', 'swe_env.build.images') if m in sys.modules))"
    )
    assert printed.strip() == "[]"


def test_public_names_load_on_first_use_and_stay_the_functions():
    printed = _fresh_python(
        "import importlib, types, swe_env; importlib.import_module('swe_env.run.rollout'); "
        "importlib.import_module('swe_env.run.evaluate'); "
        "print(*(callable(f) and not isinstance(f, types.ModuleType) for f in (swe_env.rollout, swe_env.evaluate)), "
        "swe_env.SWEEnv.__name__)"
    )
    assert printed.split() == ["True", "True", "SWEEnv"]
