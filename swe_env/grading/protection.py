"""What the grader puts back to base_commit before the test patch: the restore policy, pure.

The grader (`grading.Grader`) lists, in its container, what the agent changed and what
base_commit tracks, and asks `paths_to_restore` which of those paths go back: removed, or
checked out from base_commit; this module runs nothing. A changed path is restored when it is one of the
test patch's files, matches a protected glob (`tests.protected` and the runner's own files),
would shadow an importable module (`tests.protect_imports`), or is a `tests.protected_config`
file whose pytest section changed (`pytest_section_changed`; the grader answers that from
the files' two versions).
"""

from __future__ import annotations

import configparser
import functools
import re
import sys
import tomllib
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass

GIT = "git --literal-pathspecs -c core.hooksPath=/dev/null -c core.fsmonitor=false"
"""The grader's git: hooks and fsmonitor are agent-reachable code paths in git; it never runs them. Paths are
literal: a file the patch names `:(exclude)x` or `:(foo)y` is a name, never pathspec magic."""


GIT_READS_FROM_TREE = ["**/.gitattributes"]
"""Files of the work tree the grader's own git steps read (attributes: conversions, encodings): always restored, so the
test patch applies, and the tests run, under base_commit's (the patch's are removed before any of those steps:
`prepare.DROP_PATCH_ATTRIBUTES`; red team rt6b, A3)."""


@dataclass(frozen=True)
class Restore:
    """Which paths go back to base_commit, and how: removed, or checked out."""

    paths: list[str]
    """Every path put back, in the order considered: checked out from base_commit, or removed when it does not track it."""
    reported: list[str]
    """What `GradingReport.restored` lists: `paths` less the test patch's files the agent did not change."""
    removed: list[str]
    """The restored paths base_commit does not track: removed first (a path the agent turned into a link or a file
    may stand where a folder of tracked files was)."""
    checked_out: list[str]
    """base_commit's files put back (every tracked file under a restored folder), sorted."""


def paths_to_restore(
    named: Iterable[str],
    changed: Iterable[str],
    *,
    in_base: Collection[str],
    protected: list[str],
    protected_config: list[str],
    protect_imports: bool,
    test_patch_paths: Iterable[str],
    config_changed: Callable[[str], bool],
    importable: Collection[str] = (),
) -> Restore:
    """The restore step's decision for one grading.

    `named`: the paths the agent's patch names and the files an application method wrote;
    `changed`: the paths git sees changed (status, untracked files included); `in_base`: the
    files base_commit tracks; `protected`: globs restored whenever changed; `protected_config`:
    globs restored when `config_changed(path)` says pytest would read other options from
    them (asked only for such paths, and only when no other rule restores them); `importable`: the
    top-level module names the task's interpreter imports from outside the repository or a clean
    run tried to import (`runner_probe.RunnerFacts.shadowable`), which a new top-level module of the
    same name would shadow. The test patch's paths are always
    put back, but reported only when in `changed`.
    """
    changed, test_patch_paths = list(changed), list(test_patch_paths)
    test_patch = set(test_patch_paths)
    restore = [
        path
        for path in dict.fromkeys([*named, *changed, *test_patch_paths])
        if path in test_patch
        or matches(path, protected)
        or (protect_imports and shadows_a_module(path, in_base, importable))
        or (matches(path, protected_config) and config_changed(path))
    ]
    if not restore:
        return Restore([], [], [], [])
    # A restored path may be a folder the agent replaced (by a link, say): take every tracked file under it.
    # Each tracked path's own folders are looked up in a set: linear in the tracked files, whatever the
    # number of restored paths (the patch chooses that number).
    restored = {path.rstrip("/") for path in restore}
    tracked = {p for p in in_base if p in restored or any(folder in restored for folder in _folders_of(p))}
    by_agent = set(changed)
    return Restore(restore, [p for p in restore if p not in test_patch or p in by_agent], [p for p in restore if p not in tracked], sorted(tracked))


def _folders_of(path: str) -> Iterator[str]:
    """`a/b/c.py` -> `a`, `a/b`."""
    parts = path.split("/")
    for end in range(1, len(parts)):
        yield "/".join(parts[:end])


def pytest_section_changed(path: str, before: str | None, after: str | None) -> bool:
    """Whether pytest would read different options from `after` than from `before` (None: no file).

    pyproject.toml: the `[tool.pytest]` table (ini_options included); setup.cfg: `[tool:pytest]`;
    tox.ini: `[pytest]`. A file that does not parse counts as changed.
    """
    if before == after:
        return False
    try:
        return _pytest_options(path, before) != _pytest_options(path, after)
    except (tomllib.TOMLDecodeError, configparser.Error, UnicodeError):
        return True


def _pytest_options(path: str, text: str | None) -> object:
    if text is None:
        return None
    if path.endswith(".toml"):
        return tomllib.loads(text).get("tool", {}).get("pytest")
    parser = configparser.ConfigParser(interpolation=None, strict=False)
    parser.read_string(text)
    sections = ("tool:pytest", "pytest")
    return {name: dict(parser[name]) for name in sections if parser.has_section(name)} or None


def matches(path: str, patterns: list[str]) -> bool:
    """Glob match on a repository path: `*` and `?` stay within a folder, `**/` spans any folders (or none)."""
    return any(_glob(pattern).fullmatch(path) for pattern in patterns)


@functools.lru_cache(maxsize=256)
def _glob(pattern: str) -> re.Pattern[str]:
    out, i = [], 0
    while i < len(pattern):
        if pattern.startswith("**/", i):
            out.append("(?:.*/)?")
            i += 3
        elif pattern.startswith("/**", i) and i + 3 == len(pattern):
            out.append("(?:/.*)?")
            i += 3
        elif pattern.startswith("**", i):
            out.append(".*")
            i += 2
        elif pattern[i] == "*":
            out.append("[^/]*")
            i += 1
        elif pattern[i] == "?":
            out.append("[^/]")
            i += 1
        else:
            out.append(re.escape(pattern[i]))
            i += 1
    return re.compile("".join(out), re.DOTALL)


# `python -m pytest` puts the repository first on sys.path: a new top-level module named like
# pytest, one of its dependencies or a standard-library module would be imported instead of
# the real one, before any test runs, and could rewrite the results.
_SHADOWABLE = frozenset(sys.stdlib_module_names) | {
    "pytest",
    "_pytest",
    "pluggy",
    "iniconfig",
    "packaging",
    "py",
    "exceptiongroup",
    "tomli",
    "xdist",
    "pytest_timeout",
}


def shadows_a_module(path: str, in_base: Collection[str], importable: Collection[str] = ()) -> bool:
    """A path the agent added at the top level that would shadow an importable module: pytest's, the
    standard library's, or any of `importable` (what the task's own interpreter and test run import)."""
    top = path.split("/", 1)[0]
    name = top.split(".", 1)[0]  # pytest.py, pytest/, argparse.cpython-311-x86_64.so
    if name not in _SHADOWABLE and name not in importable:
        return False
    return not any(p == top or p.startswith(top + "/") for p in in_base)
