"""Every name the docs give in backticks still exists, so a rename or a move cannot leave a page pointing at nothing.

Checked in README.md, docs/ (decisions included), bench/README.md and tasks/README.md:

- dotted names under `swe_env` (`swe_env.tools.schemas()`, `swe_env.grading.grader.compute_reward`): the module
  imports and each attribute after it exists (a pydantic field counts); a one-part name that is not a module
  (`swe_env.managed`) must be a container label the package writes;
- paths (`swe_env/grading/rule.py`, `tests/runtime/test_layer.py`, `bench/soak.py`, and in the architecture map the package's
  own `runtime/sandbox.py`): the file or folder exists;
- `Class.attr` and `module.attr` where the class or module is the package's own (`Sandbox.diff`,
  `errors.GRADING_KINDS`): the attribute exists;
- `swe-env` commands, in backticks and in fenced shell blocks: the command (and sub-command) exists and every
  `--option` given is one of its options.

Pure: imports the package, starts nothing.
"""

from __future__ import annotations

import dataclasses
import importlib
import inspect
import pkgutil
import re
import shlex
from pathlib import Path

import gymnasium
import pytest
import typer.main

import swe_env
from swe_env.cli import app

from .helpers import ROOT

PAGES = sorted([ROOT / "README.md", ROOT / "bench" / "README.md", ROOT / "tasks" / "README.md", *(ROOT / "docs").rglob("*.md")])

_SPAN = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
_DOTTED = re.compile(r"\bswe_env(?:\.[A-Za-z_][A-Za-z0-9_]*)+")
_PATH = re.compile(r"^(?:swe_env|tests|bench|scripts|tasks|examples|images|docs)/[\w./-]*$")
_PACKAGE_PATH = re.compile(r"^(?:[a-z_]+/)+[a-z_]+\.py$")
_QUALIFIED = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)\.([A-Za-z_][A-Za-z0-9_]*)(?:\(.*\))?$")


def _modules() -> dict[str, object]:
    found = {}
    for info in pkgutil.walk_packages(swe_env.__path__, "swe_env."):
        if ".reporter." in info.name or ".tracer." in info.name:
            continue  # copied into containers and run there (the standard library only): not the host's to import
        found[info.name] = importlib.import_module(info.name)
    return found


MODULES = _modules()
SHORT_MODULES: dict[str, list[object]] = {}
for _name, _module in MODULES.items():
    SHORT_MODULES.setdefault(_name.rpartition(".")[2], []).append(_module)
CLASSES: dict[str, list[type]] = {}
for _module in MODULES.values():
    for _name, _value in vars(_module).items():
        if inspect.isclass(_value) and _value.__module__.startswith("swe_env"):
            CLASSES.setdefault(_name, []).append(_value)
FILES = [path for path in (ROOT / "swe_env").rglob("*") if path.is_file()]
SOURCE = "\n".join(path.read_text() for path in FILES if path.suffix == ".py")
EXTENSIONS = {"py", "toml", "yaml", "yml", "md", "json", "jsonl", "txt", "cfg", "ini", "sh"}
# Names the docs give to instances, not to our modules (`env.step`, `sandbox.run`, `config.warm_pool`, `app.state`).
VARIABLES = {"env", "sandbox", "config", "app", "task", "vector", "trainer", "client", "images"}
# git's configuration sections, which the docs cite as keys (`diff.external`, `core.pager`), not our modules.
VARIABLES |= {"core", "diff", "filter", "include", "merge", "user", "http", "remote", "branch", "url", "protocol"}
# Paths that are someone else's files, not ours: Django's runner and settings and flask's test file in their own
# repositories, a Harbor task's test script, CWM's debugger demo, the CA bundle a user copies in before building the
# server's image, and files of real repositories that benchmark figures name (sphinx's and pytest's tests, Django's
# and flask's sources where a calibration flag was charged).
NOT_OURS = {
    "tests/runtests.py",
    "tests/test_sqlite.py",
    "tests/test_config.py",
    "tests/test.sh",
    "demos/cwmdbg.py",
    "images/server/host-ca.crt",
    "tests/test_util_inspect.py",
    "tests/test_decorators.py",
    "django/db/migrations/loader.py",
    "src/flask/cli.py",
}


def _is_label(key: str) -> bool:
    return any(form in SOURCE for form in (f'"swe_env.{key}"', f'"{key}"', f"labelled({key}="))


def _has(owner: object, name: str) -> bool:
    if hasattr(owner, name):
        return True
    fields = getattr(owner, "model_fields", None)  # pydantic: fields are not class attributes
    if isinstance(fields, dict) and name in fields:
        return True
    if inspect.isclass(owner) and dataclasses.is_dataclass(owner):
        return name in {field.name for field in dataclasses.fields(owner)}
    return inspect.isclass(owner) and any(name in getattr(k, "__annotations__", {}) for k in owner.__mro__)


def _dotted_exists(name: str) -> bool:
    parts = name.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            owner: object = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        for attribute in parts[cut:]:
            if not _has(owner, attribute):
                return False
            owner = getattr(owner, attribute, None)
        return True
    return False


def _spans(path: Path) -> list[tuple[int, str]]:
    spans, fence = [], False
    for number, line in enumerate(path.read_text().splitlines(), 1):
        if line.lstrip().startswith("```"):
            fence = not fence
            continue
        if not fence:
            spans += [(number, match.group(1)) for match in _SPAN.finditer(line)]
    return spans


def _shell_commands(path: Path) -> list[tuple[int, str]]:
    """`swe-env ...` lines of fenced sh/bash blocks, continuation lines joined."""
    found, fence, pending, start = [], None, "", 0
    for number, line in enumerate(path.read_text().splitlines(), 1):
        stripped = line.strip()
        if stripped.startswith("```"):
            fence = None if fence is not None else stripped[3:]
            continue
        if fence not in ("sh", "bash", "console"):
            continue
        if pending:
            pending += " " + stripped
        elif stripped.startswith("swe-env ") or re.match(r"^\w+=\S+ swe-env ", stripped):
            pending, start = stripped, number
        if pending and not pending.endswith("\\"):
            found.append((start, pending))
            pending = ""
        elif pending:
            pending = pending[:-1]
    return found


def _problems_in_name(page: str, number: int, span: str) -> list[str]:
    where, problems = f"{page}:{number}", []
    for name in _DOTTED.findall(span):
        parts = name.split(".")
        if len(parts) == 2 and f"swe_env.{parts[1]}" not in MODULES and _is_label(parts[1]):
            continue  # a container label the package writes (`swe_env.managed`, `swe_env.attempt=<id>`)
        if not _dotted_exists(name):
            problems.append(f"{where}: `{span}`: {name} does not exist")
    text = span.strip().rstrip(",.;:")
    gym_id = re.fullmatch(r"swe_env/[\w-]+-v\d+", text)
    if gym_id:
        if text not in gymnasium.registry:
            problems.append(f"{where}: `{span}`: no such Gymnasium id")
    elif _PATH.match(text):
        if "<" not in text and "*" not in text and text not in NOT_OURS and not (ROOT / text).exists():
            problems.append(f"{where}: `{span}`: no such file")
    elif page.startswith("docs/") and _PACKAGE_PATH.match(text) and text not in NOT_OURS:
        if not any(str(path).endswith("/" + text) for path in FILES):
            problems.append(f"{where}: `{span}`: no such file in swe_env/")
    qualified = _QUALIFIED.match(text)
    if qualified and not text.startswith("swe_env."):
        owner, attribute = qualified.groups()
        owners = [] if attribute in EXTENSIONS else CLASSES.get(owner) or ([] if owner in VARIABLES else SHORT_MODULES.get(owner, []))
        if owners and not any(_has(candidate, attribute) for candidate in owners):
            problems.append(f"{where}: `{span}`: {owner} has no {attribute}")
    return problems


def _command_tree():
    return typer.main.get_command(app)  # a click command (typer may carry its own copy of click)


def _problems_in_command(page: str, number: int, text: str) -> list[str]:
    where = f"{page}:{number}"
    try:
        words = shlex.split(text.split(" #", 1)[0].replace("[", " ").replace("]", " ").replace("|", " "))
    except ValueError:
        words = text.split()
    while words and words[0] != "swe-env":
        words.pop(0)
    if len(words) < 2 or words[1].startswith("-"):
        return []
    command = _command_tree()
    for word in words[1:]:
        if word.startswith("-") or not hasattr(command, "commands"):
            break
        if word == "...":
            return []
        found = command.commands.get(word)
        if found is None:
            if word.isupper() or "<" in word:
                break
            return [f"{where}: `{text}`: no command {word!r}"]
        command = found
    options = {opt for param in command.params for opt in [*param.opts, *param.secondary_opts]}
    problems = []
    for word in words:
        if word == "--":
            break
        option = word.split("=", 1)[0]
        if option.startswith("--") and len(option) > 2 and option not in options:
            problems.append(f"{where}: `{text}`: {command.name} has no option {option}")
    return problems


def _all_problems() -> list[str]:
    problems = []
    for path in PAGES:
        page = str(path.relative_to(ROOT))
        for number, span in _spans(path):
            problems += _problems_in_name(page, number, span)
            if span.startswith("swe-env "):
                problems += _problems_in_command(page, number, span)
        for number, command in _shell_commands(path):
            problems += _problems_in_command(page, number, command)
    return problems


def test_the_pages_exist_and_hold_names():
    names = [span for path in PAGES for _, span in _spans(path) if "swe_env" in span or span.startswith("swe-env ")]
    assert len(names) > 100


def test_every_backticked_name_still_exists():
    problems = _all_problems()
    assert not problems, f"{len(problems)} names in the docs point at nothing:\n" + "\n".join(problems)


@pytest.mark.parametrize(
    "span, exists",
    [
        ("swe_env.tools.schemas()", True),
        ("swe_env.tools.no_such_thing", False),
        ("swe_env.managed", True),
        ("swe_env/grading/rule.py", True),
        ("swe_env/grading/nothing.py", False),
        ("Sandbox.no_such_method", False),
        ("swe-env images prune --max-disk 200G", True),
        ("swe-env images prune --no-such-flag", False),
        ("swe-env no-such-command", False),
    ],
)
def test_the_checker_tells_a_missing_name(span: str, exists: bool):
    problems = _problems_in_name("docs/x.md", 1, span)
    if span.startswith("swe-env "):
        problems += _problems_in_command("docs/x.md", 1, span)
    assert (not problems) == exists, problems


_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")


def _anchor(heading: str) -> str:
    """GitHub's anchor of a heading: lower case, punctuation but `-` and `_` dropped, spaces as `-`."""
    text = re.sub(r"[`*]", "", heading.strip().lstrip("#").strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def _anchors(path: Path) -> set[str]:
    headings, fence = [], False
    for line in path.read_text().splitlines():
        if line.lstrip().startswith("```"):
            fence = not fence
        elif not fence and line.startswith("#"):
            headings.append(_anchor(line))
    return set(headings)


def test_every_link_between_the_pages_arrives():
    """Relative links (README → docs, docs → docs, bench) reach a file, and a `#anchor` a heading of it."""
    problems = []
    for path in PAGES:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for target in _LINK.findall(line):
                if re.match(r"^[a-z]+:", target):
                    continue  # https:, mailto: ...
                file, _, anchor = target.partition("#")
                destination = (path.parent / file).resolve() if file else path
                where = f"{path.relative_to(ROOT)}:{number}: ({target})"
                if not destination.exists():
                    problems.append(f"{where}: no such file")
                elif anchor and destination.is_file() and anchor not in _anchors(destination):
                    problems.append(f"{where}: no heading #{anchor} there")
    assert not problems, "\n".join(problems)


def test_the_readme_stays_a_front_page():
    """What it is, the two commands, an example, a task file, the commands, where to go next: the rest is in docs/."""
    lines = (ROOT / "README.md").read_text().splitlines()
    assert len(lines) <= 200, f"README.md has {len(lines)} lines: put the new section in its page under docs/"
