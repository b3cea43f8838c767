#!/usr/bin/env python3
"""Validate the bundled sample tasks.

Usage:  python tasks/repos/check_samples.py [TASK_ID ...]

For every ``tasks/<id>/task.yaml`` (or only the given ids) this checks that

* the file has exactly the expected keys and sane values (id == folder name,
  pytest node ids without parametrization, at least 3 pass_to_pass ids, ...),
* the bundle contains branch ``main`` and ``base_commit`` is a strict
  ancestor of it (so there are "future" commits for the env to hide),
* every gold_patch hunk's old text (context + removed lines) occurs exactly
  once in its file at base_commit,
* the gold patch touches neither ``tests/`` nor any file of the test patch,
* after ``git apply`` of the test patch the command makes every fail_to_pass
  id fail and every pass_to_pass id pass, and after also applying the gold
  patch every listed id passes; each test session must take less than 2
  seconds (as reported by pytest, so interpreter start-up is not counted).

Test runs set PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 so that pytest plugins
installed on the host do not interfere (the task environment only has pytest).

Prints one line per task (``OK`` or the problems) and exits non-zero if any
task has a problem.  Stdlib only; needs ``git``.  The leading ``python`` of
the test command is replaced by the interpreter running this script.
"""

import json
import os
import re
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
TASKS_DIR = HERE.parent

TOP_KEYS = {"id", "repo", "base_commit", "problem_statement", "environment", "tests", "gold_patch"}
ENV_KEYS = {"pip_packages", "install"}
TEST_KEYS = {"test_patch", "fail_to_pass", "pass_to_pass", "command"}
REQUIRED_TEST_KEYS = TEST_KEYS - {"command"}
DEFAULT_COMMAND = "python -m pytest -rA -p no:cacheprovider"
ID_RE = re.compile(r"^[a-z0-9]+(?:-[a-z0-9]+)*$")
NODE_RE = re.compile(r"^tests/[\w/.-]+\.py(?:::\w+)+$")
RESULT_RE = re.compile(r"^(PASSED|FAILED|ERROR|SKIPPED|XFAIL|XPASS) (\S+)")
DURATION_RE = re.compile(r"^=+ .* in (\d+(?:\.\d+)?)s(?: \([^)]*\))? =+$")
MAX_SECONDS = 2.0


# --------------------------------------------------------------------------
# A tiny YAML reader for the subset written by build_samples.py:
# nested mappings, literal block scalars (|), block sequences of scalars,
# flow sequences in JSON syntax and plain or double-quoted scalars.


class YamlError(ValueError):
    pass


def _indent(line):
    return len(line) - len(line.lstrip(" "))


def _scalar(text):
    text = text.strip()
    if text.startswith(("[", '"')):
        try:
            return json.loads(text)
        except ValueError as exc:
            raise YamlError(f"bad flow value {text!r}: {exc}") from None
    if text.startswith(("'", "{", "&", "*", "!", "|", ">")):
        raise YamlError(f"unsupported value {text!r}")
    return text


def parse_yaml(text):
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    value, pos = _parse_mapping(lines, 0, 0)
    while pos < len(lines) and not lines[pos].strip():
        pos += 1
    if pos != len(lines):
        raise YamlError(f"line {pos + 1}: unexpected content {lines[pos]!r}")
    return value


def _parse_mapping(lines, pos, indent):
    result = {}
    while pos < len(lines):
        line = lines[pos]
        if not line.strip() or line.lstrip().startswith("#"):
            pos += 1
            continue
        if _indent(line) < indent:
            break
        if _indent(line) > indent:
            raise YamlError(f"line {pos + 1}: unexpected indentation")
        key, sep, rest = line.strip().partition(":")
        if not sep or (rest and not rest.startswith(" ")):
            raise YamlError(f"line {pos + 1}: expected 'key: value'")
        if key in result:
            raise YamlError(f"line {pos + 1}: duplicate key {key!r}")
        rest = rest.strip()
        pos += 1
        if rest in ("|", "|-", "|+"):
            result[key], pos = _parse_block(lines, pos, indent, rest)
        elif rest:
            result[key] = _scalar(rest)
        else:
            nxt = pos
            while nxt < len(lines) and not lines[nxt].strip():
                nxt += 1
            if nxt < len(lines) and _indent(lines[nxt]) >= indent and lines[nxt].lstrip().startswith("- "):
                result[key], pos = _parse_sequence(lines, nxt, _indent(lines[nxt]))
            elif nxt < len(lines) and _indent(lines[nxt]) > indent:
                result[key], pos = _parse_mapping(lines, nxt, _indent(lines[nxt]))
            else:
                result[key] = None
    return result, pos


def _parse_sequence(lines, pos, indent):
    items = []
    while pos < len(lines):
        line = lines[pos]
        if not line.strip():
            pos += 1
            continue
        if _indent(line) != indent or not line.lstrip().startswith("- "):
            break
        items.append(_scalar(line.strip()[2:]))
        pos += 1
    return items, pos


def _parse_block(lines, pos, parent_indent, style):
    block = []
    content_indent = None
    while pos < len(lines):
        line = lines[pos]
        if line.strip() == "":
            if content_indent is not None and len(line) > content_indent:
                block.append(line[content_indent:])
            else:
                block.append("")
            pos += 1
            continue
        ind = _indent(line)
        if content_indent is None:
            if ind <= parent_indent:
                break
            content_indent = ind
        if ind < content_indent:
            break
        block.append(line[content_indent:])
        pos += 1
    trailing = 0
    while block and block[-1] == "":
        block.pop()
        trailing += 1
    text = "\n".join(block)
    if style == "|" and block:
        text += "\n"
    elif style == "|+":
        text += "\n" * (trailing + (1 if block else 0))
    return text, pos


def load_task(path):
    text = path.read_text(encoding="utf-8")
    data = parse_yaml(text)
    try:
        import yaml  # optional cross-check when PyYAML happens to be installed
    except ImportError:
        pass
    else:
        if yaml.safe_load(text) != data:
            raise YamlError("PyYAML reads this file differently than the built-in reader")
    return data


# --------------------------------------------------------------------------
# patches


def parse_patch(patch):
    """Return {path: [(old_text, new_text), ...]} for a git-format diff."""
    files = {}
    current = None
    hunk = None
    for line in patch.split("\n"):
        if line.startswith("diff --git "):
            current = None
            hunk = None
        elif line.startswith("--- "):
            hunk = None
        elif line.startswith("+++ "):
            name = line[4:].strip()
            if name == "/dev/null":
                current = None
            else:
                current = name[2:] if name.startswith("b/") else name
                files.setdefault(current, [])
        elif line.startswith("@@"):
            if current is None:
                # deleted file: track by the old name
                current = "<deleted>"
                files.setdefault(current, [])
            hunk = ([], [])
            files[current].append(hunk)
        elif hunk is not None and line[:1] in (" ", "-", "+"):
            if line[:1] in (" ", "-"):
                hunk[0].append(line[1:])
            if line[:1] in (" ", "+"):
                hunk[1].append(line[1:])
    return {path: [("\n".join(o), "\n".join(n)) for o, n in hunks] for path, hunks in files.items()}


def patch_paths(patch):
    paths = set()
    for line in patch.split("\n"):
        m = re.match(r"^diff --git a/(\S+) b/(\S+)$", line)
        if m:
            paths.update(m.groups())
    return paths


# --------------------------------------------------------------------------
# running


def run(cmd, cwd, stdin=None, check=True):
    proc = subprocess.run(cmd, cwd=cwd, input=stdin, text=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if check and proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{proc.stdout}")
    return proc


def run_tests(command, cwd):
    argv = shlex.split(command)
    if argv and argv[0] in ("python", "python3"):
        argv[0] = sys.executable
    env = dict(os.environ, PYTHONDONTWRITEBYTECODE="1", COLUMNS="200", PYTEST_DISABLE_PLUGIN_AUTOLOAD="1")
    env.pop("PYTEST_ADDOPTS", None)
    start = time.monotonic()
    proc = subprocess.run(argv, cwd=cwd, env=env, text=True, timeout=300, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    elapsed = time.monotonic() - start
    results = {}
    for line in proc.stdout.splitlines():
        m = RESULT_RE.match(line)
        if m:
            results[m.group(2)] = m.group(1)
        m = DURATION_RE.match(line)
        if m:
            elapsed = float(m.group(1))
    return results, elapsed, proc.stdout


def check_task(task_dir, scratch):
    problems = []
    data = load_task(task_dir / "task.yaml")

    if set(data) != TOP_KEYS:
        problems.append(f"top-level keys {sorted(data)}")
        return problems
    env, tests = data["environment"], data["tests"]
    if not isinstance(env, dict) or set(env) != ENV_KEYS:
        problems.append("environment must have exactly pip_packages and install")
    elif not all(isinstance(env[k], list) for k in ENV_KEYS):
        problems.append("environment values must be lists")
    if not isinstance(tests, dict) or not REQUIRED_TEST_KEYS <= set(tests) <= TEST_KEYS:
        problems.append(f"tests keys {sorted(tests) if isinstance(tests, dict) else tests}")
        return problems
    if data["id"] != task_dir.name or not ID_RE.match(task_dir.name):
        problems.append(f"id {data['id']!r} does not match folder {task_dir.name!r}")
    if not re.fullmatch(r"[0-9a-f]{40}", str(data["base_commit"])):
        problems.append("base_commit is not a 40-hex sha")
        return problems
    for key in ("problem_statement", "gold_patch"):
        if not isinstance(data[key], str) or not data[key].strip():
            problems.append(f"{key} is empty")
    if not isinstance(tests["test_patch"], str) or not tests["test_patch"].strip():
        problems.append("test_patch is empty")
    if problems:
        return problems

    f2p, p2p = tests["fail_to_pass"], tests["pass_to_pass"]
    command = tests.get("command", DEFAULT_COMMAND)
    for name, ids in (("fail_to_pass", f2p), ("pass_to_pass", p2p)):
        if not isinstance(ids, list) or not all(isinstance(i, str) for i in ids):
            problems.append(f"{name} must be a list of strings")
            return problems
        bad = [i for i in ids if not NODE_RE.match(i)]
        if bad:
            problems.append(f"{name} has malformed node ids {bad}")
        if len(set(ids)) != len(ids):
            problems.append(f"{name} has duplicates")
    if not f2p:
        problems.append("fail_to_pass is empty")
    if len(p2p) < 3:
        problems.append("fewer than 3 pass_to_pass ids")
    if set(f2p) & set(p2p):
        problems.append("fail_to_pass and pass_to_pass overlap")

    # --- repository and history
    bundle = (task_dir / data["repo"]).resolve()
    if not bundle.is_file():
        problems.append(f"bundle {data['repo']} not found")
        return problems
    heads = run(["git", "bundle", "list-heads", str(bundle)], scratch).stdout
    if not re.search(r" refs/heads/main$", heads, re.M):
        problems.append("bundle has no refs/heads/main")
        return problems
    repo = scratch / data["id"]
    run(["git", "clone", "-q", "--no-checkout", str(bundle), str(repo)], scratch)
    base = data["base_commit"]
    if run(["git", "cat-file", "-e", f"{base}^{{commit}}"], repo, check=False).returncode:
        problems.append("base_commit not in bundle")
        return problems
    if run(["git", "merge-base", "--is-ancestor", base, "origin/main"], repo, check=False).returncode:
        problems.append("base_commit is not an ancestor of main")
    future = run(["git", "rev-list", "--count", f"{base}..origin/main"], repo).stdout.strip()
    if future == "0":
        problems.append("main has no commits after base_commit")
    run(["git", "-c", "advice.detachedHead=false", "checkout", "-q", base], repo)

    # --- patch shape
    gold, test_patch = data["gold_patch"], tests["test_patch"]
    gold_paths, test_paths = patch_paths(gold), patch_paths(test_patch)
    if not gold_paths:
        problems.append("gold_patch touches no files")
    if gold_paths & test_paths:
        problems.append(f"gold and test patch share files {sorted(gold_paths & test_paths)}")
    if any(p.startswith("tests/") for p in gold_paths):
        problems.append("gold_patch touches tests/")
    for path, hunks in parse_patch(gold).items():
        file = repo / path
        content = file.read_text(encoding="utf-8") if file.is_file() else ""
        for number, (old, _new) in enumerate(hunks, 1):
            count = content.count(old) if old else 0
            if count != 1:
                problems.append(f"gold hunk {number} of {path}: old text occurs {count} times")

    # --- behaviour
    applies = True
    for name, patch in (("test_patch", test_patch), ("gold_patch", gold)):
        if run(["git", "apply", "--check", "-"], repo, stdin=patch, check=False).returncode:
            problems.append(f"{name} does not apply to base_commit")
            applies = False
    if not applies:
        return problems

    run(["git", "apply", "-"], repo, stdin=test_patch)
    before, seconds, output = run_tests(command, repo)
    if seconds > MAX_SECONDS:
        problems.append(f"test run took {seconds:.1f}s (base + tests)")
    passed_early = [i for i in f2p if before.get(i) == "PASSED"]
    if passed_early:
        problems.append(f"fail_to_pass already pass before the fix: {passed_early}")
    not_passing = [i for i in p2p if before.get(i) != "PASSED"]
    if not_passing:
        problems.append(f"pass_to_pass not passing before the fix: {not_passing}")

    run(["git", "apply", "-"], repo, stdin=gold)
    after, seconds, output = run_tests(command, repo)
    if seconds > MAX_SECONDS:
        problems.append(f"test run took {seconds:.1f}s (after gold patch)")
    failing = [i for i in f2p + p2p if after.get(i) != "PASSED"]
    if failing:
        problems.append(f"not passing after the gold patch: {failing}")
    if not after:
        problems.append("no test results parsed:\n" + output[-2000:])
    return problems


def main(argv):
    wanted = set(argv)
    task_dirs = sorted(p.parent for p in TASKS_DIR.glob("*/task.yaml"))
    if wanted:
        task_dirs = [d for d in task_dirs if d.name in wanted]
        missing = wanted - {d.name for d in task_dirs}
        for name in sorted(missing):
            print(f"{name}: no such task")
        if missing:
            return 1
    if not task_dirs:
        print("no tasks found")
        return 1
    failures = 0
    with tempfile.TemporaryDirectory(prefix="swe-env-check-") as tmp:
        for task_dir in task_dirs:
            scratch = Path(tmp) / task_dir.name
            scratch.mkdir()
            try:
                problems = check_task(task_dir, scratch)
            except Exception as exc:  # report and carry on with the next task
                problems = [f"{type(exc).__name__}: {exc}"]
            if problems:
                failures += 1
                print(f"{task_dir.name}: FAIL: " + "; ".join(problems))
            else:
                print(f"{task_dir.name}: OK")
            sys.stdout.flush()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
