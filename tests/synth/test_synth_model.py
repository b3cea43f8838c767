"""The `model` synthesis method against an OpenAI-compatible server this test starts on 127.0.0.1.

The server is real HTTP (`http.server` in a thread) and answers `/v1/models` and
`/v1/chat/completions` with fixed rewrites, chosen by the function and the task the prompt names:
valid bugs (fenced with prose around, or bare with prose after, a comment pointing at the bug),
and answers that must be rejected with their reason (empty, no code, a syntax error, another
function's name, the function unchanged, HTTP 429 through every retry, HTTP 500, no answer within
the timeout). Only the model is a stand-in: the repository (the bundled slugkit), its image, the
validation in containers, the written tasks and `validate` are real.
"""

from __future__ import annotations

import ast
import json
import re

import pytest

from swe_env.build.images import ImageBuilder
from swe_env.data.task import Environment, load_tasks
from swe_env.grading.grader import Grader
from swe_env.run import validation
from swe_env.synth import model as model_method
from swe_env.synth import pipeline, writer

from ..helpers import ROOT, ScriptedModel, free_port

SAMPLE_ENV = Environment(pip_packages=["pytest==8.3.5"])
STATEMENT = "Converting identifiers and counting words gives wrong text: `snake_case('getHTTPResponse')` is not what I expect."

SNAKE_BUG = """Sure. Here is the rewritten function:

```python
def snake_case(text):
    # BUG: the separator is a dash now
    return "-".join(word.lower() for word in split_words(text))
```

The bug is subtle."""
KEBAB_BUG = """def kebab_case(text):
    return "_".join(word.lower() for word in split_words(text))

This joins with the wrong separator."""
QUANTIFY_BUG = '''```py
def quantify(count, word, plural=None):
    """'1 file', '3 files', '0 files'."""
    return f"{count} {pluralize(word, plural=plural)}"
```'''
CAMEL_RIGHT = """```python
def camel_case(text):
    parts = split_words(text)
    if not parts:
        return ""
    head, *rest = parts
    return head.lower() + "".join(part.capitalize() for part in rest)
```"""

# (task, function) -> (HTTP status, answer text, seconds to wait first)
ANSWERS = {
    ("rewrite", "snake_case"): (200, SNAKE_BUG, 0),
    ("rewrite", "kebab_case"): (200, KEBAB_BUG, 0),
    ("implement", "quantify"): (200, QUANTIFY_BUG, 0),
    ("implement", "camel_case"): (200, CAMEL_RIGHT, 0),
    ("rewrite", "shorten"): (200, "", 0),  # the fixture puts the function as it is here: an unchanged answer
    ("rewrite", "pascal_case"): (200, "```python\ndef to_pascal(text):\n    return text.title()\n```", 0),
    ("rewrite", "camel_case"): (200, "```python\ndef camel_case(text):\n    return (text\n```", 0),
    ("rewrite", "split_words"): (200, "", 0),
    ("rewrite", "pluralize"): (200, "I would rather not introduce bugs.", 0),
    ("rewrite", "quantify"): (429, "", 0),
    ("rewrite", "_match_case"): (500, "", 0),
    ("rewrite", "wrap"): (200, "too late", 3.0),
}
FUNCTIONS = sorted({function for _task, function in ANSWERS})
EXPECTED = {
    ("rewrite_bug", "pascal_case"): "model_wrong_function",
    ("rewrite_bug", "camel_case"): "model_syntax_error",
    ("rewrite_bug", "split_words"): "model_empty",
    ("rewrite_bug", "pluralize"): "model_no_code",
    ("rewrite_bug", "shorten"): "model_unchanged",
    ("mask_body", "camel_case"): "no_failing_test",
}
"""The recorded outcome of each rejected answer (the endpoint's failures are not recorded: a re-run asks again)."""


def fixed_rewrites(body: dict) -> tuple[int, dict, float]:
    """The answer to one chat request: from `ANSWERS` by the task and function its prompt names."""
    prompt = body["messages"][-1]["content"]
    if "Task: problem statement" in prompt:
        status, text, delay = 200, f"```\n{STATEMENT}\n```", 0.0
    else:
        task = re.search(r"^Task: (\w+)", prompt, re.M)
        function = re.search(r"^Function: (\S+)", prompt, re.M)
        status, text, delay = ANSWERS.get((task.group(1) if task else "", function.group(1) if function else ""), (200, "", 0.0))
    if status != 200:
        return status, {"error": {"message": "rate limited" if status == 429 else "server error"}}, delay
    return (
        200,
        {
            "id": "x",
            "object": "chat.completion",
            "model": "fixed-rewrites",
            "choices": [{"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1},
        },
        delay,
    )


@pytest.fixture(scope="module")
def synthesized(tmp_path_factory, docker_client):
    out = tmp_path_factory.mktemp("synth-model") / "tasks"
    ANSWERS[("rewrite", "shorten")] = (200, f"```python\n{_function_of('slugkit/wrap.py', 'shorten')}```", 0.0)
    with ScriptedModel(fixed_rewrites, models=("fixed-rewrites",)) as endpoint:
        config = pipeline.SynthConfig(
            repo=str(ROOT / "tasks/repos/slugkit.bundle"),
            environment=SAMPLE_ENV,
            out=out,
            max_tasks=10,
            max_candidates=60,
            workers=1,
            methods=["model", "combine"],
            functions=FUNCTIONS,
            model=endpoint.url,
            model_timeout=1.0,
            model_retries=1,
        )
        summary = pipeline.synthesize(config)
    records = [json.loads(line) for line in (out / pipeline.STATE_FILE).read_text().splitlines()]
    statements = sum("Task: problem statement" in r["messages"][-1]["content"] for r in endpoint.requests)
    return out, summary, records, statements


def _function_of(path: str, name: str) -> str:
    """A function's text as the bundled slugkit has it (the "unchanged" answer)."""
    git_dir = writer.mirrored(str(ROOT / "tasks/repos/slugkit.bundle"))
    source = writer.git(git_dir, "show", f"HEAD:{path}")
    node = next(n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef) and n.name == name)
    return "".join(source.splitlines(keepends=True)[node.lineno - 1 : node.end_lineno])


@pytest.mark.docker
def test_valid_rewrites_become_tasks_with_the_models_statement(synthesized):
    out, summary, records, statements = synthesized
    found = {task.meta["function"]: task for task in load_tasks(out)}
    singles = {f: t for f, t in found.items() if t.meta["method"] == "model"}
    assert sorted(singles) == ["kebab_case", "quantify", "snake_case"], (sorted(found), summary)
    assert singles["snake_case"].meta["kind"] == "rewrite_bug" and singles["quantify"].meta["kind"] == "mask_body"
    for task in singles.values():
        assert task.meta["model"] == "fixed-rewrites" and task.meta["file"].startswith("slugkit/")
        assert task.tests.fail_to_pass and not set(task.tests.fail_to_pass) & set(task.tests.pass_to_pass)
    assert "tests/test_case.py::test_conversions" in singles["snake_case"].tests.fail_to_pass
    assert "tests/test_plural.py::test_quantify" in singles["quantify"].tests.fail_to_pass
    # The comment the model added to point at the bug is not in the buggy tree (nor in the gold patch undoing it).
    assert '+    return "_".join(word.lower() for word in split_words(text))' in singles["snake_case"].gold_patch
    assert "BUG" not in singles["snake_case"].gold_patch
    # With --model every task's problem statement is the model's (its code fence taken off).
    assert all(task.problem_statement == STATEMENT and task.meta["statement"] == "model" for task in found.values())
    assert statements >= len(found)
    # Two validated bugs made one combined task: its failing tests are the union of theirs.
    combined = [task for task in found.values() if task.meta["method"] == "combine"]
    assert len(combined) == 1, sorted(found)
    parts = [next(t for t in singles.values() if t.id == part) for part in combined[0].meta["combined"].split(",")]
    assert set(combined[0].tests.fail_to_pass) >= {test for part in parts for test in part.tests.fail_to_pass}
    assert summary.per_method["model"]["validated"] == 3 and summary.per_method["combine"]["validated"] == 1


@pytest.mark.docker
def test_invalid_answers_are_rejected_with_their_reason(synthesized):
    _out, summary, records, _statements = synthesized
    outcome = {(r["kind"], r["function"]): r["outcome"] for r in records if r["method"] == "model"}
    assert {key: outcome.get(key) for key in EXPECTED} == EXPECTED
    assert "defines to_pascal instead of pascal_case" in next(
        r["detail"] for r in records if r.get("function") == "pascal_case" and r["kind"] == "rewrite_bug"
    )
    # The endpoint's failures are counted by cause, and not recorded as decided.
    assert summary.rejected["model_rate_limited"] == 1 and summary.rejected["model_http_error"] == 1
    assert summary.rejected["model_timeout"] == 1
    assert not {("rewrite_bug", "quantify"), ("rewrite_bug", "_match_case"), ("rewrite_bug", "wrap")} & set(outcome)
    assert summary.candidates == summary.validated + sum(summary.rejected.values()) + summary.not_needed


@pytest.mark.docker
def test_the_model_tasks_pass_validate(synthesized):
    out, _summary, _records, _statements = synthesized
    found = load_tasks(out)
    builder = ImageBuilder()
    results = validation.validate_tasks(found, workers=2, builder=builder, grader=Grader(builder=builder))
    assert [(r.task_id, r.verdict, r.violations) for r in results if r.verdict != "valid"] == []


def test_a_dead_endpoint_stops_synthesis_before_anything_is_built(tmp_path):
    url = f"http://127.0.0.1:{free_port()}/v1"
    with pytest.raises(pipeline.SynthesisError, match=r"--model .*cannot connect"):
        pipeline.synthesize(pipeline.SynthConfig(repo=str(ROOT / "tasks/repos/slugkit.bundle"), out=tmp_path / "o", model=url, model_retries=0))
    with pytest.raises(pipeline.SynthesisError, match="--methods model needs an endpoint"):
        pipeline.synthesize(pipeline.SynthConfig(repo=str(ROOT / "tasks/repos/slugkit.bundle"), out=tmp_path / "o", methods=["model"]))


SOURCE = '''import os


class Box:
    @property
    def size(self):
        """How big."""
        # measured in litres
        return self._size * 2


def helper(x):
    return x + 1
'''


@pytest.mark.parametrize(
    "answer, reason",
    [
        ("", "model_empty"),
        ("No.", "model_no_code"),
        ("```python\ndef size(self):\n    return (\n```", "model_syntax_error"),
        ("```python\ndef volume(self):\n    return 1\n```", "model_wrong_function"),
        ('def size(self):\n    """How big."""\n    return self._size * 2\n', "model_unchanged"),
    ],
)
def test_answers_that_are_no_bug_are_rejected(answer, reason):
    request = model_method.Request("rewrite_bug", "pkg/box.py", "Box.size", SOURCE)
    assert model_method.answer_to_patch(request, answer).reason == reason


def test_an_answer_is_spliced_in_place_of_the_method():
    request = model_method.Request("rewrite_bug", "pkg/box.py", "Box.size", SOURCE)
    # The whole class back, the decorator repeated, prose after it and a new comment: only the method is taken.
    answer = (
        'Here:\n```python\nclass Box:\n    @property\n    def size(self):\n        """How big."""\n'
        "        # measured in litres\n        return self._size * 3  # wrong factor\n```\nDone."
    )
    found = model_method.answer_to_patch(request, answer)
    assert not found.reason, found
    assert found.new_source == SOURCE.replace("* 2", "* 3")
    changed = [line for line in found.patch.splitlines() if line[:1] in "+-" and line[:3] not in ("+++", "---")]
    assert changed == ["-        return self._size * 2", "+        return self._size * 3"]
    masked = model_method.prompt_for(model_method.Request("mask_body", "pkg/box.py", "Box.size", SOURCE))
    assert masked is not None and '"""How big."""\n        ...\n' in masked and "self._size * 2" not in masked
