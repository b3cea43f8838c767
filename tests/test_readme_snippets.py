"""Every ```python snippet of the README and of the pages under docs/ runs as written (on the real engine), so the
examples stay true.

A snippet that cannot run here is marked in its page, on the line before its fence:
`<!-- snippet: skip (why) -->` (it needs TRL, a model, ...). `<!-- snippet: server -->` runs it
against a `swe-env serve` started by the test, at the address the snippet names replaced by the
server's. An unmarked snippet runs in a fresh interpreter in the repository's root.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import uuid
from dataclasses import dataclass

import pytest

from swe_env.runtime import engine

from .helpers import ROOT, free_port, wait_until_answers

_MARK = re.compile(r"<!--\s*snippet:\s*(\w+)\s*(?:\((.*?)\))?\s*-->")


@dataclass
class Snippet:
    page: str
    line: int
    code: str
    mark: str | None
    why: str | None

    @property
    def where(self) -> str:
        return f"{self.page} line {self.line}"


def pages() -> list[str]:
    """The README and every page under docs/ (bench/README.md holds commands, not snippets)."""
    return ["README.md", *sorted(str(path.relative_to(ROOT)) for path in (ROOT / "docs").rglob("*.md"))]


def page_snippets(page: str) -> list[Snippet]:
    lines = (ROOT / page).read_text().splitlines()
    found, index = [], 0
    while index < len(lines):
        fence = lines[index].strip()
        if fence == "```python":
            indent = len(lines[index]) - len(lines[index].lstrip())
            end = next(i for i in range(index + 1, len(lines)) if lines[i].strip() == "```")
            code = "\n".join(line[indent:] for line in lines[index + 1 : end])
            previous = next((lines[i] for i in range(index - 1, -1, -1) if lines[i].strip()), "")
            mark = _MARK.search(previous)
            found.append(Snippet(page, index + 1, code, mark.group(1) if mark else None, mark.group(2) if mark else None))
            index = end
        index += 1
    return found


SNIPPETS = [snippet for page in pages() for snippet in page_snippets(page)]


def test_the_docs_have_runnable_snippets_and_every_skip_says_why():
    assert sum(s.mark is None for s in SNIPPETS if s.page == "README.md") >= 1
    assert sum(s.mark is None for s in SNIPPETS) >= 2
    for snippet in SNIPPETS:
        assert snippet.mark in (None, "skip", "server"), f"{snippet.where}: unknown mark {snippet.mark!r}"
        assert snippet.mark != "skip" or snippet.why, f"{snippet.where}: a skipped snippet must say why"


def _run(code: str) -> subprocess.CompletedProcess:
    """Run a snippet under a run id of its own; a container it leaves behind fails the test (and is removed)."""
    run_id = f"snippet-{uuid.uuid4().hex[:8]}"
    try:
        result = subprocess.run(
            [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=900, env={**os.environ, "SWE_ENV_RUN_ID": run_id}
        )
    finally:
        left = engine.collect_garbage(everything=True, labels={"run": run_id})
    assert not left, f"the snippet left containers behind (it should close what it opens): {left}"
    return result


@pytest.mark.docker
@pytest.mark.parametrize("snippet", SNIPPETS, ids=[f"{s.page}-line-{s.line}" for s in SNIPPETS])
def test_docs_snippet_runs(snippet: Snippet):
    if snippet.mark == "skip":
        pytest.skip(f"marked in {snippet.page}: {snippet.why}")
    if snippet.mark != "server":
        result = _run(snippet.code)
        assert result.returncode == 0, f"{snippet.where}:\n{result.stderr[-3000:]}"
        return
    address = re.search(r"127\.0\.0\.1:(\d+)", snippet.code)
    assert address, f"{snippet.where}: a server snippet names 127.0.0.1:PORT"
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "swe_env.cli", "serve", "--port", str(port), "--log-level", "warning"],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "SWE_ENV_TOKEN": ""},
    )
    try:
        assert wait_until_answers(f"http://127.0.0.1:{port}/health", server, 120), server.stderr.read() if server.stderr else ""
        result = _run(snippet.code.replace(address.group(0), f"127.0.0.1:{port}"))
        assert result.returncode == 0, f"{snippet.where}:\n{result.stderr[-3000:]}"
    finally:
        server.terminate()
        server.wait(timeout=120)
