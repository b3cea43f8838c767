#!/usr/bin/env python3
"""Build the bundled sample repositories and their task.yaml files.

Usage:  python tasks/repos/build_samples.py [--keep DIR]

For every sample repository described in ``src/<name>_repo.py`` this script

* replays the repository history in a scratch git repository under a temp dir
  (fixed author, committer and dates, so commit shas are the same every run),
* writes ``tasks/repos/<name>.bundle`` (``git bundle create --all``, branch
  ``main``),
* writes ``tasks/<task-id>/task.yaml`` for every task of the repository.

A history step is either a commit (``message`` plus ``write`` / ``edit`` /
``append`` file operations) or ``{"task": id}``.  A task step records the
current HEAD as the task's base commit and then commits the task's fix: the
source edits plus the new tests.  ``gold_patch`` is the diff of that commit
outside ``tests/``, ``test_patch`` the diff inside ``tests/``.
``fail_to_pass`` are the test functions added by the fix commit and
``pass_to_pass`` all tests that already existed at the base commit.

Only the standard library and the ``git`` executable are needed.
"""

import argparse
import ast
import importlib.util
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

sys.dont_write_bytecode = True  # keep src/ free of __pycache__

HERE = Path(__file__).resolve().parent
TASKS_DIR = HERE.parent
SRC_DIR = HERE / "src"

REPOS = ["minicsv", "ledger", "slugkit"]

AUTHOR_NAME = "swe-env sample"
AUTHOR_EMAIL = "samples@swe-env.invalid"
# 2024-03-04 09:00:00 UTC; every commit is one hour after the previous one,
# and every repository starts on its own day.
EPOCH = 1709542800
PIP_PACKAGES = ["pytest==8.3.5"]
COMMAND = "python -m pytest -rA -p no:cacheprovider"


# --------------------------------------------------------------------------
# git helpers


def _git_env():
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_AUTHOR_NAME=AUTHOR_NAME,
        GIT_AUTHOR_EMAIL=AUTHOR_EMAIL,
        GIT_COMMITTER_NAME=AUTHOR_NAME,
        GIT_COMMITTER_EMAIL=AUTHOR_EMAIL,
        LC_ALL="C",
    )
    return env


def git(repo, *args, env=None):
    proc = subprocess.run(
        ["git", "-c", "core.autocrlf=false", "-c", "commit.gpgsign=false", *args],
        cwd=repo,
        env=env or _git_env(),
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed:\n{proc.stderr}")
    return proc.stdout


def git_diff(repo, base, head, *pathspec):
    return git(
        repo,
        "diff",
        "--no-color",
        "--no-ext-diff",
        "--no-renames",
        "--full-index",
        "--src-prefix=a/",
        "--dst-prefix=b/",
        base,
        head,
        "--",
        *pathspec,
    )


# --------------------------------------------------------------------------
# history replay


def load_repo_module(name):
    path = SRC_DIR / f"{name}_repo.py"
    spec = importlib.util.spec_from_file_location(f"_swe_env_sample_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def apply_operations(workdir, step):
    for rel, content in step.get("write", {}).items():
        path = workdir / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(content.encode("utf-8"))
    for rel, old, new in step.get("edit", []):
        path = workdir / rel
        text = path.read_bytes().decode("utf-8")
        count = text.count(old)
        if count != 1:
            raise RuntimeError(f"edit of {rel}: old text found {count} times:\n{old}")
        path.write_bytes(text.replace(old, new).encode("utf-8"))
    for rel, extra in step.get("append", {}).items():
        path = workdir / rel
        text = path.read_bytes().decode("utf-8") if path.exists() else ""
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes((text + extra).encode("utf-8"))


def collect_tests(workdir):
    """Return pytest node ids of the test functions under tests/, in file order."""
    ids = []
    for path in sorted((workdir / "tests").rglob("test_*.py")):
        rel = path.relative_to(workdir).as_posix()
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test"):
                ids.append(f"{rel}::{node.name}")
            elif isinstance(node, ast.ClassDef) and node.name.startswith("Test"):
                for item in node.body:
                    if isinstance(item, ast.FunctionDef) and item.name.startswith("test"):
                        ids.append(f"{rel}::{node.name}::{item.name}")
    return ids


class Builder:
    def __init__(self, workdir, day):
        self.workdir = workdir
        self.clock = EPOCH + day * 86400
        self.env = _git_env()

    def commit(self, message):
        self.clock += 3600
        stamp = f"{self.clock} +0000"
        env = dict(self.env, GIT_AUTHOR_DATE=stamp, GIT_COMMITTER_DATE=stamp)
        git(self.workdir, "add", "-A", env=env)
        git(self.workdir, "commit", "-q", "--no-verify", "-m", message, env=env)
        return git(self.workdir, "rev-parse", "HEAD").strip()


def build_repo(name, day, scratch):
    module = load_repo_module(name)
    workdir = scratch / name
    workdir.mkdir()
    git(workdir, "init", "-q")
    git(workdir, "symbolic-ref", "HEAD", "refs/heads/main")
    builder = Builder(workdir, day)

    tasks = []
    for step in module.HISTORY:
        if "task" in step:
            task_id = step["task"]
            spec = module.TASKS[task_id]
            base = git(workdir, "rev-parse", "HEAD").strip()
            before = collect_tests(workdir)
            apply_operations(workdir, spec)
            after = collect_tests(workdir)
            fix = builder.commit(spec["fix_message"])
            test_patch = git_diff(workdir, base, fix, "tests")
            gold_patch = git_diff(workdir, base, fix, ".", ":(exclude)tests")
            if not test_patch or not gold_patch:
                raise RuntimeError(f"{task_id}: empty test or gold patch")
            missing = [t for t in before if t not in after]
            if missing:
                raise RuntimeError(f"{task_id}: fix commit removes tests {missing}")
            tasks.append(
                {
                    "id": task_id,
                    "repo": f"../repos/{name}.bundle",
                    "base_commit": base,
                    "problem_statement": spec["problem_statement"],
                    "test_patch": test_patch,
                    "gold_patch": gold_patch,
                    "fail_to_pass": [t for t in after if t not in before],
                    "pass_to_pass": before,
                }
            )
        else:
            apply_operations(workdir, step)
            builder.commit(step["message"])

    if set(module.TASKS) != {t["id"] for t in tasks}:
        raise RuntimeError(f"{name}: TASKS and HISTORY disagree")
    bundle = HERE / f"{name}.bundle"
    if bundle.exists():
        bundle.unlink()
    git(workdir, "bundle", "create", "-q", str(bundle), "--all")
    git(workdir, "bundle", "verify", "-q", str(bundle))
    return git(workdir, "rev-parse", "main").strip(), tasks


# --------------------------------------------------------------------------
# task.yaml


def _block(text, indent):
    if not text.endswith("\n") or text.endswith("\n\n"):
        raise ValueError(f"block text must end with exactly one newline: {text[-40:]!r}")
    lines = text[:-1].split("\n")
    if not lines[0] or lines[0][0] in " \t":
        raise ValueError("block text must not start with whitespace or a blank line")
    if "\t" in text:
        raise ValueError("block text contains tabs")
    pad = " " * indent
    return "|\n" + "".join((pad + line if line else "") + "\n" for line in lines)


def _seq(items, indent):
    if not items:
        return "[]\n"
    pad = " " * indent
    return "\n" + "".join(f"{pad}- {json.dumps(item)}\n" for item in items)


def render_task_yaml(task):
    return (
        f"id: {task['id']}\n"
        f"repo: {task['repo']}\n"
        f"base_commit: {task['base_commit']}\n"
        f"problem_statement: {_block(task['problem_statement'], 2)}"
        "environment:\n"
        f"  pip_packages: {json.dumps(PIP_PACKAGES)}\n"
        "  install: []\n"
        "tests:\n"
        f"  test_patch: {_block(task['test_patch'], 4)}"
        f"  fail_to_pass:{_seq(task['fail_to_pass'], 4)}"
        f"  pass_to_pass:{_seq(task['pass_to_pass'], 4)}"
        f"  command: {json.dumps(COMMAND)}\n"
        f"gold_patch: {_block(task['gold_patch'], 2)}"
    )


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", metavar="DIR", help="build the scratch repositories in DIR and keep them")
    args = parser.parse_args(argv)

    if args.keep:
        scratch = Path(args.keep).resolve()
        if scratch.exists():
            shutil.rmtree(scratch)
        scratch.mkdir(parents=True)
        cleanup = None
    else:
        cleanup = tempfile.TemporaryDirectory(prefix="swe-env-samples-")
        scratch = Path(cleanup.name)

    try:
        for day, name in enumerate(REPOS):
            head, tasks = build_repo(name, day, scratch)
            print(f"{name}: main={head} -> {HERE.name}/{name}.bundle")
            for task in tasks:
                task_dir = TASKS_DIR / task["id"]
                task_dir.mkdir(exist_ok=True)
                (task_dir / "task.yaml").write_bytes(render_task_yaml(task).encode("utf-8"))
                print(f"  {task['id']}: base={task['base_commit']} f2p={len(task['fail_to_pass'])} p2p={len(task['pass_to_pass'])}")
    finally:
        if cleanup is not None:
            cleanup.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
