"""TRL's `environment_factory` with `swe_env.integrations.trl`, on the real engine, in two parts.

The real TRL (the `trl` extra, which `make test` installs): `GRPOTrainer` trains one step on the CPU with
a tiny scripted Qwen2 model against our class — what TRL extracted, the schemas transformers built, its
tool-calling loop running our methods in our containers, our grader's reward in its log.

The contract, for what one deterministic GRPO step does not reach (a rollout that never submits, pooled
instances reused across batches, tool errors and bad arguments, timeouts): what `GRPOTrainer` (TRL 1.8
to 1.17) does with an environment, as its source and docs say, repeated here step by step —

1. `factory()` with no arguments; one instance per concurrent rollout, pooled and reused;
2. tools = the class's functions (`inspect.getmembers(type(instance), inspect.isfunction)`) whose names
   are not `reset`/`get_reward` and do not start with `_`, bound to the instance; each must carry type
   hints and a Google-style docstring (transformers' `get_json_schema` reads them into the schema);
3. `reset(**row)` with the dataset row's columns, its string appended to the last user message;
4. each tool call `tools[name](**arguments)`, the result `str()`'d, an exception turned into
   `{"error": str(e)}`;
5. `get_reward()` (no argument, sync or async) once per finished rollout, weight 1.
"""

from __future__ import annotations

import inspect
import json
import os
import re
import typing

import pytest

from swe_env.grading import diffs
from swe_env.integrations import trl as swe_trl

from ..helpers import TASKS_DIR, container_exists, run_containers

pytestmark = pytest.mark.docker

RESERVED = ("reset", "get_reward")


def trl_tools(instance) -> dict:
    """Step 2, as GRPOTrainer builds its per-rollout tool dict."""
    return {
        name: getattr(instance, name)
        for name, _ in inspect.getmembers(type(instance), predicate=inspect.isfunction)
        if name not in RESERVED and not name.startswith("_")
    }


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
            assert (
                required
                == {
                    "bash": ["command"],
                    "view": ["path"],
                    "edit": ["path", "old", "new"],
                    "create": ["path", "content"],
                    "undo_edit": ["path"],
                    "submit": [],
                }[name]
            )
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
    for _batch in range(2):
        for environment, row in zip(pool, rows, strict=True):
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


# ---------------------------------------------------------------- the real TRL: GRPOTrainer on the CPU

# The JSON schemas transformers' `get_json_schema` builds from the adapter's methods, pinned: their shape (names,
# types, required, nullable) is what the hand-written methods gave before they were generated from the registry;
# every description is the registry's (the argument model's docstring, its fields' descriptions, `Tool.returns`).
_STR, _NULL = {"type": "string"}, {"nullable": True}
EXPECTED_SHAPES = {
    "bash": ({"command": _STR, "timeout": {"type": "number", **_NULL}}, ["command"]),
    "edit": ({"path": _STR, "old": _STR, "new": _STR}, ["path", "old", "new"]),
    "undo_edit": ({"path": _STR}, ["path"]),
    "view": ({"path": _STR, "view_range": {"type": "array", "items": {"type": "integer"}, **_NULL}}, ["path"]),
    "create": ({"path": _STR, "content": _STR}, ["path", "content"]),
    "submit": ({"patch": {"type": "string", **_NULL}}, []),
}


def expected_schema(name: str) -> dict:
    from swe_env.tools.registry import REGISTRY

    tool = REGISTRY[name]
    shape, required = EXPECTED_SHAPES[name]
    fields = {swe_trl.TRL_ARGUMENT_NAMES.get((name, field), field): info for field, info in tool.args.model_fields.items()}
    properties = {arg: {**spec, "description": fields[arg].description} for arg, spec in shape.items()}
    parameters = {"type": "object", "properties": properties, **({"required": required} if required else {})}
    return {
        "type": "function",
        "function": {
            "name": name,
            "description": tool.args.__doc__.strip(),
            "parameters": parameters,
            "return": {"type": "string", "description": tool.returns},
        },
    }


def need_trl() -> None:
    """The real-TRL tests need the `trl` extra; CI installs it (the Makefile), so there its absence fails."""
    if not os.environ.get("CI"):
        pytest.importorskip("trl", reason="the `trl` extra: pip install -e '.[trl]'")


def test_transformers_builds_the_pinned_schemas_from_the_generated_methods():
    need_trl()
    import transformers

    for name in swe_trl.TOOL_NAMES:
        assert transformers.utils.get_json_schema(getattr(swe_trl.SWEEnvTRL, name)) == expected_schema(name), name


def tiny_tokenizer(tool_calls: list[str]):
    """A character-level tokenizer (printable ASCII, newline, tab and Qwen's markers: ~100 entries) with TRL's
    copy of Qwen3's chat template, plus one token per scripted tool call (the tiny model emits them in order)."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast
    from trl.chat_template_utils import qwen3_chat_template

    specials = ["<|endoftext|>", "<|im_start|>", "<|im_end|>", "[UNK]"]
    vocab = {token: i for i, token in enumerate(specials + [chr(c) for c in range(32, 127)] + ["\n", "\t"])}
    core = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    core.add_special_tokens([AddedToken(token, special=True, normalized=False) for token in specials])
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, eos_token="<|im_end|>", pad_token="<|endoftext|>", unk_token="[UNK]")
    tokenizer.add_tokens([AddedToken(call, special=False, normalized=False) for call in tool_calls])
    tokenizer.chat_template = qwen3_chat_template
    return tokenizer


def scripted_model(tokenizer, chain: list[str]):
    """A random-shaped Qwen2 causal LM (one layer, 64 wide) whose weights are set so that it is a bigram model:
    after the generation prompt's last character it emits `chain` token by token, then `<|im_end|>`.

    The attention and MLP outputs are zeroed, so each position's hidden state is its token's embedding; a
    scripted token's embedding is its own axis, every other token's is axis 0; the output row of the next
    token points along that axis (logit ~160, the rest 0: sampling at temperature 1 picks it)."""
    import torch
    from transformers import Qwen2Config, Qwen2ForCausalLM

    torch.manual_seed(0)
    config = Qwen2Config(
        vocab_size=len(tokenizer),
        hidden_size=64,
        intermediate_size=64,
        num_hidden_layers=1,
        num_attention_heads=2,
        num_key_value_heads=1,
        max_position_embeddings=32768,
        tie_word_embeddings=False,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        bos_token_id=None,
    )
    model = Qwen2ForCausalLM(config)
    ids = [tokenizer.convert_tokens_to_ids(token) for token in ["\n", *chain]]
    following = [tokenizer.convert_tokens_to_ids(token) for token in chain] + [tokenizer.eos_token_id]
    with torch.no_grad():
        embed, head = model.model.embed_tokens.weight, model.lm_head.weight
        embed.zero_()
        embed[:, 0] = 1.0
        head.zero_()
        head[tokenizer.eos_token_id, 0] = 20.0
        for axis, (token, after) in enumerate(zip(ids, following, strict=True), start=1):
            embed[token] = 0.0
            embed[token, axis] = 1.0
            head[after, axis] = 20.0
        for layer in model.model.layers:
            layer.self_attn.o_proj.weight.zero_()
            layer.mlp.down_proj.weight.zero_()
    return model


def test_grpo_trainer_trains_a_step_on_our_environment(task, tmp_path, docker_client):
    """GRPOTrainer itself, one step on the CPU: its tool extraction, its chat template with our schemas, its
    tool-calling loop calling our methods in our containers, and our grader's reward in its log."""
    need_trl()
    os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
    from transformers.utils import get_json_schema
    from trl import GRPOConfig, GRPOTrainer

    # The model's one turn: a look, the gold patch replayed through view/edit/create, then submit.
    calls: list[dict] = [{"name": "bash", "arguments": {"command": "git status --short"}}]
    for patch in diffs.parse(task.gold_patch):
        if patch.old_path is None:
            calls.append({"name": "create", "arguments": {"path": patch.new_path, "content": "".join(h.new for h in patch.hunks)}})
            continue
        calls.append({"name": "view", "arguments": {"path": patch.path, "view_range": [1, 3]}})
        calls += [{"name": "edit", "arguments": {"path": patch.path, "old": h.old, "new": h.new}} for h in patch.hunks]
    calls.append({"name": "submit", "arguments": {}})
    chain = [f"<tool_call>\n{json.dumps(call)}\n</tool_call>" for call in calls]
    tokenizer = tiny_tokenizer(chain)
    model = scripted_model(tokenizer, chain)

    made, resets, rewards, containers = [], [], [], []
    inner = swe_trl.environment_factory(TASKS_DIR, max_steps=len(calls) + 5)

    def factory():
        environment = inner()
        made.append(environment)
        reset, get_reward = environment.reset, environment.get_reward

        def recorded_reset(**row):
            text = reset(**row)
            resets.append(row)
            containers.append(environment.swe_env.sandbox.id)
            return text

        def recorded_get_reward():
            rewards.append(get_reward())
            return rewards[-1]

        environment.reset, environment.get_reward = recorded_reset, recorded_get_reward
        return environment

    args = GRPOConfig(
        output_dir=str(tmp_path),
        use_cpu=True,
        max_steps=1,
        per_device_train_batch_size=2,
        num_generations=2,
        max_completion_length=8192,
        max_tool_calling_iterations=1,
        logging_steps=1,
        save_strategy="no",
        report_to="none",
        seed=0,
        bf16=False,
    )
    before = set(run_containers(docker_client))
    try:
        trainer = GRPOTrainer(
            model=model, processing_class=tokenizer, args=args, train_dataset=swe_trl.task_dataset([task]), environment_factory=factory
        )
        # What TRL extracted from our class: exactly the registry's tools, as bound methods of an instance we made.
        extracted = trainer._env_tools[None]
        assert sorted(tool.__name__ for tool in extracted) == sorted(swe_trl.TOOL_NAMES)
        assert all(tool.__self__ is made[0] for tool in extracted)
        assert trainer.reward_func_names[-1] == "SWEEnvTRL"  # get_reward became a reward column
        # The schemas transformers builds from TRL's objects for the prompt are the pinned ones.
        assert [get_json_schema(tool) for tool in extracted] == [expected_schema(tool.__name__) for tool in extracted]
        trainer.train()
    finally:
        swe_trl.close_all()
    # Both rollouts of the group were reset on the row's task, ran our tools, and were graded by our grader.
    assert len(resets) == 2 and all(row["task_id"] == task.id for row in resets)
    assert rewards == [1.0, 1.0]
    rolled = [e for e in made if e.report is not None]
    assert len(rolled) == 2 and all(e.report["resolved"] for e in rolled)
    for environment in rolled:
        trajectory = environment.swe_env.trajectory
        assert [step.action["tool"] for step in trajectory.steps] == [call["name"] for call in calls]
        assert trajectory.termination == "submitted"
    logged = trainer.state.log_history[0]
    assert logged["rewards/SWEEnvTRL/mean"] == 1.0 and logged["reward"] == 1.0
    # Graded and gone: neither the rollouts' containers nor the graders' are left.
    assert containers and not any(container_exists(docker_client, container) for container in containers)
    assert set(run_containers(docker_client)) <= before
