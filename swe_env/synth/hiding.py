"""`--hide-tests`: the failing tests taken out of the agent's tree; they come back through the test patch."""

from __future__ import annotations

import ast
from pathlib import Path

from .procedural import file_diff
from .writer import git


def hide_patch(repo: str | Path, rev: str, tests: list[str]) -> str:
    """A diff against `rev` removing the test functions behind `tests` (node ids; every parameter of a
    parametrized test goes with it). Tests whose function cannot be found are left in place."""
    by_file: dict[str, set[tuple[str, ...]]] = {}
    for test in tests:
        path, *names = test.split("::")
        if names:
            names[-1] = names[-1].split("[", 1)[0]
            by_file.setdefault(path, set()).add(tuple(names))
    patches = []
    for path, wanted in sorted(by_file.items()):
        try:
            source = git(repo, "show", f"{rev}:{path}")
        except ValueError:
            continue
        removed = _without(source, wanted)
        if removed is not None and removed != source:
            patches.append(file_diff(path, source, removed))
    return "".join(patches)


def _without(source: str, wanted: set[tuple[str, ...]]) -> str | None:
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return None
    lines = source.splitlines(keepends=True)
    spans: list[tuple[int, int, str | None]] = []

    def visit(body: list[ast.stmt], prefix: tuple[str, ...], indent_if_empty: str | None) -> None:
        chosen = [node for node in body if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)) and prefix + (node.name,) in wanted]
        for function in chosen:
            first = min([function.lineno, *(d.lineno for d in function.decorator_list)])
            spans.append((first, function.end_lineno or function.lineno, None))
        if chosen and len(chosen) == len(body) and indent_if_empty is not None:
            spans.append((chosen[0].lineno, chosen[0].lineno, indent_if_empty + "pass\n"))  # a class left empty
        for node in body:
            if isinstance(node, ast.ClassDef):
                indent = " " * (node.body[0].col_offset if node.body else 4)
                visit(node.body, prefix + (node.name,), indent)

    visit(tree.body, (), None)
    if not spans:
        return None
    drop: set[int] = set()
    insert: dict[int, str] = {}
    for first, last, text in spans:
        if text is None:
            drop.update(range(first, last + 1))
        else:
            insert[first] = text
    out = []
    for number, line in enumerate(lines, start=1):
        if number in insert:
            out.append(insert[number])
        if number not in drop:
            out.append(line)
    return "".join(out)
