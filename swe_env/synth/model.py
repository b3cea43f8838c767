"""The `model` method: a model behind any OpenAI-compatible endpoint writes the bug.

Two kinds, both about one function the passing tests reach:

- `rewrite_bug`: the model sees the function (and the top of its file) and rewrites it with a
  plausible bug, as SWE-smith's LM rewrite does;
- `mask_body`: the model sees the file with the function's body taken out and writes the body
  again, as SWE-Synth does; a re-implementation that breaks a test is a natural bug.

The answer is untrusted text. `extract_function` finds the function in it (code fences or
not, prose around it, the function inside a class, trailing prose cut off); `splice` puts it in
place of the original (the original's decorators and indentation kept, comments the model added
dropped so none says where the bug is). Every way an answer can fail is a rejected candidate
with a reason (`REASONS`), never an exception: an empty answer, no code, a syntax error, a
function of another name, the function unchanged, and the endpoint's failures (timeout, rate
limit after the retries, HTTP errors, a reply that is not a chat completion).

With `--model` the model also writes each task's problem statement (`statement`), from the
failing tests' names and messages; when that call fails, the template is used.
"""

from __future__ import annotations

import ast
import io
import re
import textwrap
import tokenize
import urllib.error
from dataclasses import dataclass
from typing import Any

from ..chat import ChatClient, ModelError, connection_cause, http_cause, message_text, served_models
from .procedural import file_diff, functions_of

METHOD = "model"
KINDS = ("rewrite_bug", "mask_body")
REASONS = {
    "model_empty": "the answer is empty",
    "model_no_code": "the answer holds no function",
    "model_syntax_error": "the answer's code does not parse",
    "model_wrong_function": "the answer defines a function of another name",
    "model_unchanged": "the answer is the function as it was",
    "model_bad_splice": "the function put back into its file does not parse",
    "model_timeout": "the endpoint did not answer within the timeout",
    "model_rate_limited": "the endpoint kept answering 429 (rate limit) through every retry",
    "model_http_error": "the endpoint answered with an HTTP error",
    "model_connection": "the endpoint could not be reached",
    "model_bad_reply": "the endpoint's reply is not a chat completion",
}
"""Why a model candidate was rejected before any test ran."""
TRANSIENT = {"model_timeout", "model_rate_limited", "model_http_error", "model_connection"}
"""Rejections a later run may not repeat: not recorded as decided, so a re-run asks again."""
MAX_ANSWER_CHARS = 200_000
"""An answer longer than this is cut before it is parsed (a function is far shorter)."""
MAX_CONTEXT_CHARS = 6_000
"""The file's text shown around the function, at most."""
MAX_STATEMENT_CHARS = 6_000

SYSTEM = "You help build training tasks for software-engineering agents. You answer with code only, in one ```python block, unless asked otherwise."
REWRITE = """\
Repository file: {path}
Function: {function}
Task: rewrite

Rewrite the function `{name}` below so that it contains one subtle, plausible bug, the kind a developer
could introduce by mistake (a wrong condition, a missed case, an off-by-one, a wrong value). Keep its name,
signature and docstring. Do not add comments that point at the bug. Answer with the whole function only.

The top of the file:
```python
{context}
```

The function:
```python
{code}
```
"""
MASK = """\
Repository file: {path}
Function: {function}
Task: implement

The body of the function `{name}` was removed from the file below (its signature and docstring are left,
with `...` where the body was). Write the function again, whole, as its name, docstring and the rest of
the file suggest. Answer with the whole function only.

```python
{context}
```
"""
STATEMENT = """\
Task: problem statement

Write the issue a user of the repository `{repository}` would file for the failure below: what they did,
what they expected, what happened. Do not say where in the code the cause is or how to fix it, and do not
name the test functions' files. Answer with the issue's text only (plain prose, a short code example is fine).

Failing tests and their messages:
{failures}
"""


@dataclass(frozen=True)
class Request:
    """One question for the model: which kind, which function of which file (its clean text)."""

    kind: str
    path: str
    function: str
    """The function's qualified name, as `__qualname__` writes it."""
    source: str
    """The file's clean text."""


@dataclass(frozen=True)
class Answer:
    """A model's bug as a diff, or why there is none (a key of `REASONS`) and the detail."""

    patch: str = ""
    new_source: str = ""
    """The file's text with the bug."""
    reason: str = ""
    detail: str = ""


class ModelMethod:
    """The endpoint and the model: asks for bugs and statements (never raises for an answer's or a request's failure)."""

    def __init__(
        self,
        base_url: str,
        model: str | None = None,
        timeout: float = 120.0,
        retries: int = 2,
        temperature: float = 0.7,
        api_key_env: str = "OPENAI_API_KEY",
        backoff_seconds: float = 1.0,
    ):
        if not base_url.startswith(("http://", "https://")):
            raise ValueError(f"--model: the endpoint must start with http:// or https://, not {base_url!r}")
        self.client = ChatClient(base_url, api_key_env, timeout, retries, backoff_seconds)
        self.model = model or ""
        self.temperature = temperature

    def check(self, timeout: float = 10.0) -> str:
        """Ask the endpoint once whether it answers; the model name (the first one served when none was given).

        ValueError (one line naming the URL and the cause) when it does not answer or does not serve the model."""
        url = self.client.url("/models")
        try:
            listing = self.client.request(url, None, timeout)
        except ModelError as exc:
            raise ValueError(f"--model {self.client.base_url}: {exc}") from None
        except urllib.error.HTTPError as exc:
            if exc.code in (404, 405) and self.model:
                return self.model  # a server without the listing route: the name given is taken as is
            raise ValueError(f"--model {url}: {http_cause(exc, self.client.api_key_env)}") from None
        except OSError as exc:
            raise ValueError(f"--model {url}: {connection_cause(exc)}; is the server running, and is the URL its API root (…/v1)?") from None
        except ValueError as exc:
            raise ValueError(f"--model {url}: {exc}") from None
        served = served_models(listing)
        if not self.model:
            if not served:
                raise ValueError(f"--model {url}: the endpoint names no model; give one with --model-name")
            self.model = served[0]
        elif served and self.model not in served:
            raise ValueError(f"--model {self.client.base_url}: no model {self.model!r}; it serves: {', '.join(served[:10])}")
        return self.model

    def ask(self, prompt: str, system: str = SYSTEM) -> tuple[str, str]:
        """(the answer's text, '') or ('', a rejection reason) for one user prompt."""
        body: dict[str, Any] = {
            "model": self.model,
            "temperature": self.temperature,
            "messages": [{"role": "system", "content": system}, {"role": "user", "content": prompt}],
        }
        try:
            return message_text(self.client.complete(body))[:MAX_ANSWER_CHARS], ""
        except ModelError as exc:
            return "", f"model_{exc.kind}|{str(exc)[:300]}"

    def bug(self, request: Request) -> Answer:
        """The model's bug for `request`, as a diff of its file, or why there is none."""
        prompt = prompt_for(request)
        if prompt is None:
            return Answer(reason="model_no_code", detail=f"{request.function} not found in {request.path}")
        text, failure = self.ask(prompt)
        if failure:
            reason, _, detail = failure.partition("|")
            return Answer(reason=reason, detail=detail)
        return answer_to_patch(request, text)

    def statement(self, repository: str, failing: list[str], messages: dict[str, str]) -> str | None:
        """The model's problem statement for these failing tests, or None when the call or the answer failed."""
        failures = "\n".join(f"- {test}" + (f": {messages[test]}" if messages.get(test) else "") for test in failing[:10])
        text, failure = self.ask(STATEMENT.format(repository=repository, failures=failures), system="You write clear, factual bug reports.")
        text = _unfenced(text).strip()
        return None if failure or not text else text[:MAX_STATEMENT_CHARS]


def prompt_for(request: Request) -> str | None:
    """The user prompt for a request; None when the function is not in the file."""
    node = _find(request.source, request.function)
    if node is None:
        return None
    lines = request.source.splitlines(keepends=True)
    name = request.function.rsplit(".", 1)[-1]
    if request.kind == "mask_body":
        return MASK.format(path=request.path, function=request.function, name=name, context=_around(masked(request.source, node), node.lineno))
    code = textwrap.dedent("".join(lines[node.lineno - 1 : node.end_lineno]))
    top = "".join(lines[: max(0, min(node.lineno - 1, 60))])
    return REWRITE.format(
        path=request.path,
        function=request.function,
        name=name,
        code=code,
        context=top[:MAX_CONTEXT_CHARS] or "# (the function is at the top of the file)",
    )


def masked(source: str, node: ast.FunctionDef | ast.AsyncFunctionDef) -> str:
    """The file with the function's body (after its docstring) replaced by `...`."""
    lines = source.splitlines(keepends=True)
    body = node.body
    keep = body[1:] if body and _is_docstring(body[0]) else body
    if not keep:
        return source
    # After the docstring, comments before the first statement go too (they may say what the body did).
    first = body[0].end_lineno + 1 if keep is not body and body[0].end_lineno else keep[0].lineno
    last = node.end_lineno or keep[-1].lineno
    indent = re.match(r"[ \t]*", lines[keep[0].lineno - 1]).group(0)  # type: ignore[union-attr]
    if first > keep[0].lineno or lines[keep[0].lineno - 1][: keep[0].col_offset].strip():  # `def f(): return x`
        return source
    return "".join(lines[: first - 1]) + f"{indent}...\n" + "".join(lines[last:])


def _around(text: str, line: int) -> str:
    """At most MAX_CONTEXT_CHARS of `text` around `line` (the function near the middle)."""
    if len(text) <= MAX_CONTEXT_CHARS:
        return text
    lines = text.splitlines(keepends=True)
    start = max(0, line - 1 - 40)
    out = "".join(lines[start:])
    return out[:MAX_CONTEXT_CHARS]


def answer_to_patch(request: Request, answer: str) -> Answer:
    """A model's answer for `request` as a diff of the file, or why it is rejected (pure)."""
    name = request.function.rsplit(".", 1)[-1]
    found, reason, detail = extract_function(answer, name)
    if found is None:
        return Answer(reason=reason, detail=detail)
    new_source, reason = splice(request.source, request.function, found)
    if new_source is None:
        return Answer(reason=reason)
    return Answer(patch=file_diff(request.path, request.source, new_source), new_source=new_source)


_FENCE = re.compile(r"^[ \t]*```[^\n`]*\n(.*?)(?:^[ \t]*```[ \t]*$|\Z)", re.S | re.M)


def _unfenced(text: str) -> str:
    """Text without one surrounding code fence (a statement the model fenced)."""
    stripped = text.strip()
    if stripped.startswith("```") and stripped.count("```") <= 2:
        match = _FENCE.search(stripped)
        if match:
            return match.group(1)
    return text


def extract_function(answer: str, name: str) -> tuple[str | None, str, str]:
    """(the function `name`'s code, dedented, its decorators left out; '', '') from a model's answer, or (None, a
    rejection reason, the detail). Code fences are read when there are any, else the whole answer; prose after
    the function is cut off."""
    text = answer.strip()
    if not text:
        return None, "model_empty", ""
    blocks = [block for block in _FENCE.findall(text) if block.strip()] or [text]
    if not any(re.search(r"\bdef\s", block) for block in blocks):
        return None, "model_no_code", text[:100]
    # The block that defines the function first, then the others (a model may show usage in a second block).
    blocks.sort(key=lambda block: 0 if re.search(rf"\bdef\s+{re.escape(name)}\s*\(", block) else 1)
    other_names: list[str] = []
    syntax = ""
    for block in blocks:
        for code in (textwrap.dedent(block), _from_def(block)):
            if not code:
                continue
            try:
                tree = ast.parse(code)
            except SyntaxError as exc:
                syntax = syntax or f"line {exc.lineno}: {exc.msg}"
                continue
            functions = [node for node in ast.walk(tree) if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))]
            match = next((node for node in functions if node.name == name), None)
            if match is not None:
                lines = code.splitlines(keepends=True)
                return textwrap.dedent("".join(lines[match.lineno - 1 : match.end_lineno])), "", ""
            other_names += [node.name for node in functions]
    if other_names:
        return None, "model_wrong_function", f"defines {', '.join(dict.fromkeys(other_names))} instead of {name}"
    if syntax:
        return None, "model_syntax_error", syntax
    return None, "model_no_code", ""


def _from_def(block: str) -> str:
    """From the first `def`/`async def`/decorator line at the block's least indentation: that line and the ones
    indented under it (prose after the function, unindented, is cut off); '' when there is no such line."""
    lines = block.splitlines(keepends=True)
    for index, line in enumerate(lines):
        stripped = line.lstrip()
        if stripped.startswith(("def ", "async def ", "@")):
            indent = len(line) - len(stripped)
            kept = [line]
            for follow in lines[index + 1 :]:
                body = follow.strip()
                if (
                    body
                    and len(follow) - len(follow.lstrip()) <= indent
                    and not kept[-1].lstrip().startswith("@")
                    and not body.startswith((")", "]", "}"))
                ):
                    break
                kept.append(follow)
            return textwrap.dedent("".join(kept))
    return ""


def splice(source: str, qualname: str, function: str) -> tuple[str | None, str]:
    """`source` with the function `qualname` (its `def` line to its end; decorators stay) replaced by `function`
    (dedented code, decorators dropped), comments the model added taken out: (new source, '') or (None, reason)."""
    node = _find(source, qualname)
    if node is None:
        return None, "model_bad_splice"
    try:
        new_tree = ast.parse(function)
    except SyntaxError:
        return None, "model_syntax_error"
    new_node = next((n for n in new_tree.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))), None)
    if new_node is None:
        return None, "model_no_code"
    new_lines = function.splitlines(keepends=True)[new_node.lineno - 1 : new_node.end_lineno]
    lines = source.splitlines(keepends=True)
    original = "".join(lines[node.lineno - 1 : node.end_lineno])
    code = _without_new_comments(textwrap.dedent("".join(new_lines)), _comments(textwrap.dedent(original)))
    indent = re.match(r"[ \t]*", lines[node.lineno - 1]).group(0)  # type: ignore[union-attr]
    code = "".join(indent + line if line.strip() else line for line in code.splitlines(keepends=True))
    if not code.endswith("\n"):
        code += "\n"
    new_source = "".join(lines[: node.lineno - 1]) + code + "".join(lines[node.end_lineno :])
    new_node_in_file = _find(new_source, qualname)
    if new_node_in_file is None:
        return None, "model_bad_splice"
    if ast.dump(new_node_in_file) == ast.dump(node):
        return None, "model_unchanged"
    return new_source, ""


def _comments(code: str) -> set[str]:
    try:
        return {tok.string.strip() for tok in tokenize.generate_tokens(io.StringIO(code).readline) if tok.type == tokenize.COMMENT}
    except (tokenize.TokenError, SyntaxError):
        return set()


def _without_new_comments(code: str, known: set[str]) -> str:
    """`code` without the comments that are not among `known` (a line left empty by one goes too)."""
    try:
        tokens = [
            tok for tok in tokenize.generate_tokens(io.StringIO(code).readline) if tok.type == tokenize.COMMENT and tok.string.strip() not in known
        ]
    except (tokenize.TokenError, SyntaxError):
        return code
    lines = code.splitlines(keepends=True)
    dropped: set[int] = set()
    for tok in sorted(tokens, key=lambda t: t.start, reverse=True):
        row, column = tok.start
        line = lines[row - 1]
        rest = line[:column].rstrip()
        if rest:
            lines[row - 1] = rest + ("\n" if line.endswith("\n") else "")
        else:
            dropped.add(row - 1)
    return "".join(line for index, line in enumerate(lines) if index not in dropped)


def _find(source: str, qualname: str) -> ast.FunctionDef | ast.AsyncFunctionDef | None:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    for name, node in functions_of(tree):
        if name == qualname and isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            return node
    return None


def _is_docstring(statement: ast.stmt) -> bool:
    return isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Constant) and isinstance(statement.value.value, str)
