"""Action parsing (pure logic): every accepted form, and clear errors for the rest."""

import pytest

from swe_env.actions import ActionError, parse


@pytest.mark.parametrize(
    "action",
    [
        {"tool": "bash", "command": "ls"},
        {"tool": "bash", "args": {"command": "ls"}},
        {"name": "bash", "arguments": '{"command": "ls"}'},
        {"type": "function", "function": {"name": "bash", "arguments": {"command": "ls"}}},
        '{"tool": "bash", "command": "ls"}',
        "I will list the files.\n```bash\nls\n```\n",
    ],
)
def test_accepted_forms(action):
    call = parse(action)
    assert call.tool == "bash" and call.args.command == "ls"
    assert call.to_dict() == {"tool": "bash", "command": "ls"}


def test_submit_needs_no_arguments():
    assert parse({"tool": "submit"}).tool == "submit"


@pytest.mark.parametrize(
    ("action", "message"),
    [
        ({"tool": "rm_rf"}, "unknown tool 'rm_rf'"),
        ({"tool": "edit", "path": "a.py", "old": "x"}, "missing argument 'new'"),
        ({"tool": "bash", "command": "ls", "colour": 1}, "unexpected argument 'colour'"),
        ({"command": "ls"}, "names no tool"),
        ("{not json", "not valid JSON"),
        ("just some words", "no action found"),
        ("```bash\nls\n```\n```bash\npwd\n```", "2 ```bash blocks"),
        (42, "must be a JSON object"),
        ({"tool": "bash", "command": "ls", "timeout": -1}, "timeout"),
    ],
)
def test_rejected_with_a_clear_message(action, message):
    with pytest.raises(ActionError, match=message.replace("(", r"\(").replace("`", "`")):
        parse(action)


def test_tools_can_be_restricted():
    with pytest.raises(ActionError, match="available tools: bash, submit"):
        parse({"tool": "edit", "path": "a", "old": "b", "new": "c"}, allowed=["bash", "submit"])
