"""A small repository written here that behaves like the SWE-bench instances we saw fail.

`urlkit` needs Python 3.9 (it imports `collections.Mapping`, gone in 3.10, as requests <= 2.9
did), runs its suite through tox with tox-current-env (as sphinx does), and its pytest ids have
everything SWE-bench's log parsers cut or rewrite: spaces, `::` and `" - "` inside parameters,
a parameter that is a path, an xfail. Its one instance lists ids exactly as SWE-bench's
datasets would write them. `write_sample` makes the git repository, a SWE-bench JSONL file and
a recipes file; it uses only git and the standard library.
"""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

REPO = "swe-env/urlkit"

INIT = '''\
"""urlkit: small URL helpers."""

from collections import Mapping  # gone in Python 3.10: this version of urlkit needs 3.9


def host_of(url):
    """The host of a URL: 'http://example.com:80/a' -> 'example.com'."""
    netloc = url.split("://", 1)[1].split("/", 1)[0]
    return netloc.split(":")[0]


def join(*parts):
    """Join path parts with single slashes."""
    return "/".join(part.strip("/") for part in parts if part)


def basename(path):
    return path.rstrip("/").rsplit("/", 1)[-1]


def merge(base, extra):
    if not isinstance(extra, Mapping):
        raise TypeError("extra must be a mapping")
    return {**base, **extra}
'''

FIXED_HOST = '''\
def host_of(url):
    """The host of a URL: 'http://example.com:80/a' -> 'example.com'; IPv6 hosts lose their brackets."""
    netloc = url.split("://", 1)[1].split("/", 1)[0]
    if netloc.startswith("["):
        return netloc[1:].split("]", 1)[0]
    return netloc.split(":")[0]
'''

TESTS = """\
import pytest

from urlkit import basename, host_of, join, merge


@pytest.mark.parametrize("url, host", [
    ("http://example.com/a b", "example.com"),
    ("https://example.org:8080/x", "example.org"),
])
def test_host_of(url, host):
    assert host_of(url) == host


@pytest.mark.parametrize("parts", ["a - b", "c"])
def test_join(parts):
    assert join(parts, "x") == parts + "/x"


@pytest.mark.parametrize("path", ["/tmp/data/file.txt"])
def test_basename(path):
    assert basename(path) == "file.txt"


def test_merge():
    assert merge({"a": 1}, {"b": 2}) == {"a": 1, "b": 2}


@pytest.mark.xfail(reason="idna hosts are not decoded yet", strict=True)
def test_idna_host():
    assert host_of("http://xn--caf-dma.example/") == "cafe.example"


@pytest.mark.skip(reason="never runs")
def test_skipped():
    pass
"""

NEW_TESTS = """

@pytest.mark.parametrize("url, host", [
    ("http://[fe80::1]:80/", "fe80::1"),
    ("http://[::1] /x", "::1"),
])
def test_host_of_ipv6(url, host):
    assert host_of(url) == host
"""

FILES = {
    "urlkit/__init__.py": INIT,
    "tests/test_urls.py": TESTS,
    "pyproject.toml": '[build-system]\nrequires = ["setuptools>=61"]\nbuild-backend = "setuptools.build_meta"\n\n'
    '[project]\nname = "urlkit"\nversion = "0.3"\n\n[tool.setuptools]\npackages = ["urlkit"]\n',
    # No passenv for PYTEST_ADDOPTS and a setenv that replaces it, as in sphinx's tox.ini: the grader must get its report anyway.
    "tox.ini": "[tox]\nenvlist = py39\n\n[testenv]\nsetenv =\n    PYTEST_ADDOPTS = --color yes\ncommands = pytest -rA {posargs}\n",
}

TEST_FILE = "tests/test_urls.py"
FAIL_TO_PASS = [
    f"{TEST_FILE}::test_host_of_ipv6[http://[fe80::1]:80/-fe80::1]",  # `::` inside a parameter
    f"{TEST_FILE}::test_host_of_ipv6[http://[::1]",  # cut at its first space
]
PASS_TO_PASS = [
    f"{TEST_FILE}::test_host_of[http://example.com/a",  # cut at the space
    f"{TEST_FILE}::test_host_of[https://example.org:8080/x-example.org]",
    f"{TEST_FILE}::test_join[a",  # "a - b": cut at the first space
    f"{TEST_FILE}::test_join[c]",
    f"{TEST_FILE}::test_basename[/file.txt]",  # a path parameter as requests' parser rewrites it
    f"{TEST_FILE}::test_merge",
    f"{TEST_FILE}::test_idna_host",  # XFAIL counts as a pass
]
RECIPES = """\
defaults: {pip_uploaded_prior_to: "2024-10-15"}
"swe-env/urlkit":
  "0.3":
    python: "3.9"
    pip_packages: ["pytest==8.3.3", "tox==4.16.0", "tox-current-env==0.0.11"]
    pre_install: ["sed -i 's/^commands = pytest -rA/commands = pytest -rA --tb=short/' tox.ini"]
    install: ["python -m pip install -e ."]
    test_command: "tox --current-env -epy39 -v -- {test_files}"
"""


def _git(repo: Path, *args: str) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        GIT_CONFIG_NOSYSTEM="1",
        GIT_CONFIG_GLOBAL=os.devnull,
        GIT_AUTHOR_NAME="swe-env sample",
        GIT_AUTHOR_EMAIL="samples@swe-env.invalid",
        GIT_COMMITTER_NAME="swe-env sample",
        GIT_COMMITTER_EMAIL="samples@swe-env.invalid",
        GIT_AUTHOR_DATE="2024-05-01T09:00:00Z",
        GIT_COMMITTER_DATE="2024-05-01T09:00:00Z",
    )
    return subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True, text=True, env=env).stdout


def write_sample(folder: Path, python: str | None = None) -> tuple[Path, Path, Path]:
    """The dataset file, the mirror folder (`swe-env__urlkit`) and the recipes file, under `folder`.

    `python` overrides the recipe's version (to show that the instance needs 3.9).
    """
    mirror = folder / "mirror"
    repo = mirror / "swe-env__urlkit"
    repo.mkdir(parents=True)
    _git(repo, "init", "-q", "-b", "main")
    for path, text in FILES.items():
        (repo / path).parent.mkdir(parents=True, exist_ok=True)
        (repo / path).write_text(text)
    _git(repo, "add", "-A")
    _git(repo, "commit", "-qm", "urlkit 0.3")
    base = _git(repo, "rev-parse", "HEAD").strip()
    source = repo / "urlkit/__init__.py"
    start = INIT.index("def host_of")
    end = INIT.index("def join")
    source.write_text(INIT[:start] + FIXED_HOST + "\n\n" + INIT[end:])
    (repo / TEST_FILE).write_text(TESTS + NEW_TESTS)
    gold = _git(repo, "diff", "--", "urlkit")
    test_patch = _git(repo, "diff", "--", "tests")
    _git(repo, "commit", "-qam", "IPv6 hosts")  # the fix is in the history, after base_commit
    record = {
        "instance_id": "swe-env__urlkit-1",
        "repo": REPO,
        "base_commit": base,
        "patch": gold,
        "test_patch": test_patch,
        "problem_statement": "host_of('http://[fe80::1]:80/') returns '[fe80'.",
        "FAIL_TO_PASS": json.dumps(FAIL_TO_PASS),
        "PASS_TO_PASS": json.dumps(PASS_TO_PASS),
        "version": "0.3",
        "environment_setup_commit": base,
        "log_parser": "parse_log_requests",
    }
    dataset = folder / "urlkit.jsonl"
    dataset.write_text(json.dumps(record) + "\n")
    recipes = folder / "recipes.yaml"
    recipes.write_text(
        RECIPES if python is None else RECIPES.replace('python: "3.9"', f'python: "{python}"').replace("-epy39", f"-epy{python.replace('.', '')}")
    )
    return dataset, mirror, recipes
