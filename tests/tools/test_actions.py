"""Action parsing (pure logic): every accepted form, and clear errors for the rest."""

import pytest

from swe_env.tools.actions import ActionError, parse


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


def test_cwm_tool_format():
    assert parse("Let me look.\n<tool: bash>\nls -la\n</tool>").to_dict() == {"tool": "bash", "command": "ls -la"}
    edit = parse("<tool: edit>\npkg/a.py\n<<<<<<< SEARCH\n    x = 1\n=======\n    x = 2\n>>>>>>> REPLACE\n</tool>")
    assert edit.to_dict() == {"tool": "edit", "path": "pkg/a.py", "old": "    x = 1", "new": "    x = 2"}
    assert parse("<tool: create>\nnew.py\nA = 1\nB = 2\n</tool>").to_dict() == {"tool": "create", "path": "new.py", "content": "A = 1\nB = 2"}
    assert parse("<tool: view>\nnew.py\n3 9\n</tool>").to_dict() == {"tool": "view", "path": "new.py", "range": [3, 9]}
    assert parse("<tool: undo_edit>\nnew.py\n</tool>").to_dict() == {"tool": "undo_edit", "path": "new.py"}
    assert parse("<tool: submit>\n</tool>").tool == "submit"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("<tool: bash>\nls\n</tool>\n<tool: bash>\npwd\n</tool>", "exactly one"),
        ("<tool: bash>\nls\n", "exactly one"),
        ("<tool: edit>\npkg/a.py\nno markers here\n</tool>", "SEARCH"),
        ("<tool: fly>\nup\n</tool>", "unknown tool 'fly'"),
        ("<tool: view>\na.py\nten twenty\n</tool>", "two line numbers"),
    ],
)
def test_cwm_format_errors(text, message):
    with pytest.raises(ActionError, match=message):
        parse(text)


def test_assistant_message_with_tool_calls():
    call = {"id": "c1", "type": "function", "function": {"name": "view", "arguments": '{"path": "a.py"}'}}
    message = {"role": "assistant", "content": None, "tool_calls": [call]}
    assert parse(message).to_dict() == {"tool": "view", "path": "a.py"}
    with pytest.raises(ActionError, match="2 tool calls"):
        parse({"role": "assistant", "content": None, "tool_calls": [call, call]})
    text_only = {"role": "assistant", "content": "<tool: bash>\nls\n</tool>"}
    assert parse(text_only).to_dict() == {"tool": "bash", "command": "ls"}
    with pytest.raises(ActionError, match="no tool call"):
        parse({"role": "assistant", "content": ""})


@pytest.mark.parametrize(
    "text",
    [
        "<tool:bash>\nls\n</tool>",  # no space after the colon
        "<tool:  bash>\nls\n</tool>",  # two
        "<tool: bash >\nls\n</tool>",
        "<tool: bash>ls</tool>",  # the arguments on the tag lines
        "<tool: bash>\nls</tool>",
        "<tool: bash>ls\n</tool>",
    ],
)
def test_cwm_block_is_exactly_the_taught_form(text):
    with pytest.raises(ActionError, match="a newline, the arguments, a newline and </tool>"):
        parse(text)


def test_cwm_empty_arguments_and_newlines_kept():
    assert parse("<tool: submit>\n</tool>").to_dict() == parse("<tool: submit>\n\n</tool>").to_dict() == {"tool": "submit"}
    assert parse("<tool: bash>\n\nls\n\n</tool>").to_dict() == {"tool": "bash", "command": "\nls\n"}


def test_cwm_reasoning_is_skipped():
    text = "<think>\nMaybe <tool: bash>\nrm -rf x\n</tool>? No.\n</think>\nListing.\n<tool: bash>\nls\n</tool>"
    assert parse(text).to_dict() == {"tool": "bash", "command": "ls"}
    # what follows the first </think> is the answer, even when it mentions the tag again
    assert parse("a\n</think>\n<tool: bash>\ngrep -c '</think>' log\n</tool>").args.command == "grep -c '</think>' log"
    with pytest.raises(ActionError, match="found 0 opening"):
        parse("<think>\n<tool: bash>\nls\n</tool>\n</think>\nno call after thinking")
