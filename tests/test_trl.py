"""TRL's `environment_factory` contract, driven as TRL documents it drives an environment (no TRL installed).

TRL needs torch, too heavy for CI, so this file is the contract, not TRL's code: what
`GRPOTrainer` (TRL 1.8 to 1.17, and main) does with an environment, per its docstring and
`docs/source/grpo_trainer.md` ("Environments"), repeated here step by step —

1. `factory()` with no arguments; one instance per concurrent rollout, pooled and reused;
2. tools = `inspect.getmembers(instance, predicate=inspect.ismethod)` whose names are not
   `reset`/`get_reward` and do not start with `_`; each must carry type hints and a Google-style
   docstring (transformers' `get_json_schema` reads them into the schema the model sees);
3. `reset(**row)` with the dataset row's columns, its string appended to the last user message;
4. each tool call `tools[name](**arguments)`, the result `str()`'d, an exception turned into
   `{"error": str(e)}`;
5. `get_reward()` (no argument, sync or async) once per finished rollout, weight 1.

— and the episodes run for real in our containers against the real engine.
"""

from __future__ import annotations

import inspect
import re
import typing

import pytest

from swe_env.grading import diffs
from swe_env.integrations import trl as swe_trl

from .helpers import TASKS_DIR

pytestmark = pytest.mark.docker

RESERVED = ("reset", "get_reward")


def trl_tools(instance) -> dict:
    """Step 2, as GRPOTrainer builds its per-rollout tool dict."""
    return {name: member for name, member in inspect.getmembers(instance, predicate=inspect.ismethod)
            if name not in RESERVED and not name.startswith("_")}


def trl_call(tools: dict, name: str, arguments: dict):
    """Step 4, as GRPOTrainer's `_tool_call_loop` calls a sync tool."""
    try:
        if name not in tools:
            raise ValueError(f"Tool {name} not found.")
        return str(tools[name](**arguments))
    except Exception as exc:  # noqa: BLE001 - what TRL does
        return str({"error": str(exc)})


def docstring_args(doc: str) -> dict[str, str]:
    """The `Args:` section of a Google-style docstring, as transformers' get_json_schema parses it."""
    match = re.search(r"\n\s*Args:\n(.*?)(?:\n\s*\n|\n\s*Returns:|\Z)", doc, re.DOTALL)
    assert match, "no Args: section"
    entries = re.findall(r"^\s+(\w+):\s*(\S.*)$", match.group(1), re.MULTILINE)
    return dict(entries)


@pytest.fixture(scope="module")
def factory():
    return swe_trl.environment_factory(TASKS_DIR, max_steps=20)


def test_the_class_has_exactly_the_tools_and_the_reserved_methods(factory, image):
    environment = factory()  # step 1: no arguments
    try:
        members = dict(inspect.getmembers(environment, predicate=inspect.ismethod))
        assert callable(members.get("reset")) and callable(members.get("get_reward"))
        tools = trl_tools(environment)
        assert sorted(tools) == sorted(swe_trl.TOOL_NAMES)
        reset = inspect.signature(environment.reset)
        assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in reset.parameters.values())
        assert inspect.signature(environment.reset).return_annotation in (str, "str")
        get_reward = inspect.signature(environment.get_reward)
        assert not get_reward.parameters and not inspect.iscoroutinefunction(environment.get_reward)
        for name, tool in tools.items():
            hints = typing.get_type_hints(tool)
            parameters = inspect.signature(tool).parameters
            assert "return" in hints and hints["return"] is str, name
            assert all(p in hints for p in parameters), f"{name}: every argument needs a type hint"
            doc = inspect.getdoc(tool)
            assert doc and doc.split("\n")[0].strip(), f"{name}: a description first"
            assert set(docstring_args(doc)) == set(parameters), f"{name}: each argument described under Args:"
            required = [p for p, v in parameters.items() if v.default is inspect.Parameter.empty]
            assert required == {"bash": ["command"], "view": ["path"], "edit": ["path", "old", "new"],
                                "create": ["path", "content"], "undo_edit": ["path"], "submit": []}[name]
    finally:
        swe_trl.close_all()


def test_a_rollout_fixed_through_the_tools_gets_reward_1(factory, task, docker_client):
    environment = factory()
    row = {"prompt": [{"role": "user", "content": "Fix this repository."}], "task_id": task.id}
    text = environment.reset(**row)  # step 3
    assert isinstance(text, str) and text.startswith("\n\n")  # apart from the row's own words when appended
    assert task.problem_statement.strip()[:60] in text and "submit" in text
    container = environment.swe_env.sandbox.id
    tools = trl_tools(environment)
    # The model's calls, as TRL makes them: the gold patch replayed through edit/create, with a look first.
    assert trl_call(tools, "bash", {"command": "git status --short"}).endswith("[exit code 0]")
    for patch in diffs.parse(task.gold_patch):
        if patch.old_path is None:
            out = trl_call(tools, "create", {"path": patch.new_path, "content": "".join(h.new for h in patch.hunks)})
            assert out.startswith("created"), out
            continue
        shown = trl_call(tools, "view", {"path": patch.path, "view_range": [1, 5]})
        assert shown.lstrip().startswith("1\t"), shown
        for hunk in patch.hunks:
            out = trl_call(tools, "edit", {"path": patch.path, "old": hunk.old, "new": hunk.new})
            assert out.startswith("edited"), out
    trl_call(tools, "bash", {"command": "echo scratch > notes.txt"})
    verdict = trl_call(tools, "submit", {})
    assert "resolved" in verdict and "not resolved" not in verdict
    assert environment.get_reward() == 1.0  # step 5
    assert environment.report["resolved"] and environment.reward == 1.0
    assert environment.swe_env.trajectory.termination == "submitted"
    # Graded and gone: a finished rollout holds no container.
    assert not docker_client.containers.list(all=True, filters={"id": container})
    # A tool called after the end gets text, not an exception.
    assert "over" in trl_call(tools, "bash", {"command": "ls"})


def test_a_rollout_that_never_submits_is_graded_by_get_reward(factory, task, docker_client):
    environment = factory()
    environment.reset(task_id=task.id, prompt=[{"role": "user", "content": ""}])
    tools = trl_tools(environment)
    assert "[exit code 0]" in trl_call(tools, "bash", {"command": "true"})
    container = environment.swe_env.sandbox.id
    assert environment.get_reward() == 0.0  # nothing changed: graded now, reward 0
    assert environment.report is not None and environment.report["patch_is_empty"]
    assert environment.get_reward() == 0.0  # once graded, asking again grades nothing more
    assert not docker_client.containers.list(all=True, filters={"id": container})


def test_pooled_instances_reused_across_batches_with_a_reward_function(factory, tasks, task, docker_client):
    """Two rollouts of one row (a GRPO group), then the same instances reset for the next batch (TRL's pool)."""
    pool = [factory(), factory()]
    rows = swe_trl.task_rows([task]) * 2
    for batch in range(2):
        for environment, row in zip(pool, rows):
            assert environment.reset(**row).startswith(task.problem_statement.strip()[:40])  # empty prompt: no gap
        containers = {environment.swe_env.sandbox.id for environment in pool}
        assert len(containers) == 2
        # Rollout 0 submits the gold patch through `submit(patch=...)`, rollout 1 breaks nothing and submits.
        assert "resolved" in trl_call(trl_tools(pool[0]), "submit", {"patch": task.gold_patch})
        trl_call(trl_tools(pool[1]), "submit", {})
        # What GRPOTrainer wraps get_reward in, and a reward function reading `environments=`.
        rewards = [environment.get_reward() for environment in pool]
        assert rewards == [1.0, 0.0]

        def resolved_reward(completions=None, environments=None, **kwargs):
            return [float(e.report["resolved"]) for e in environments]

        assert resolved_reward(completions=["", ""], environments=pool) == [1.0, 0.0]
        for container in containers:
            assert not docker_client.containers.list(all=True, filters={"id": container})


def test_tool_errors_and_bad_arguments_are_what_trl_expects(factory, task):
    environment = factory()
    try:
        assert "no rollout" in trl_call(trl_tools(environment), "bash", {"command": "ls"})
        environment.reset(task_id=task.id)
        tools = trl_tools(environment)
        assert trl_call(tools, "view", {"path": "no/such/file.py"}).startswith("Error:")
        assert trl_call(tools, "edit", {"path": "../../etc/passwd", "old": "root", "new": "x"}).startswith("Error:")
        # Arguments that do not fit the signature raise, and TRL turns that into an error result.
        assert "error" in trl_call(tools, "bash", {"cmd": "ls"})
        assert "error" in trl_call(tools, "fly", {})
        timed = trl_call(tools, "bash", {"command": "sleep 10", "timeout": 1})
        assert "timed out" in timed
    finally:
        swe_trl.close_all()
    assert environment.swe_env.sandbox is None


def test_the_factory_checks_tasks_at_once(tmp_path):
    with pytest.raises(Exception, match="task"):
        swe_trl.environment_factory(tmp_path / "missing")
    rows = swe_trl.task_rows(TASKS_DIR, repeat=2)
    assert len(rows) == 2 * len(list(TASKS_DIR.glob("*/task.yaml")))
    assert rows[0] == {"prompt": [{"role": "user", "content": ""}], "task_id": rows[0]["task_id"]}


def test_task_dataset_is_a_datasets_dataset_of_the_rows():
    dataset = swe_trl.task_dataset(TASKS_DIR)
    assert dataset.column_names == ["prompt", "task_id"]
    assert [row for row in dataset] == swe_trl.task_rows(TASKS_DIR)
