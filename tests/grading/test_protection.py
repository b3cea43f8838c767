"""The grader's restore policy, pure: which changed paths go back to base_commit, removed or checked out."""

from __future__ import annotations

from swe_env.data.task import DEFAULT_PROTECTED, DEFAULT_PROTECTED_CONFIG
from swe_env.grading import grader as grading
from swe_env.grading.protection import Restore, matches, paths_to_restore, pytest_section_changed, shadows_a_module

BASE = "0123abcd"
IN_BASE = {"pkg/core.py", "pkg/__init__.py", "tests/test_core.py", "tests/conftest.py", "pyproject.toml", "setup.cfg"}


def plan(
    named=(),
    changed=(),
    *,
    in_base=IN_BASE,
    protected=DEFAULT_PROTECTED,
    protect_imports=True,
    test_patch_paths=(),
    config_changed=frozenset(),
    asked: list[str] | None = None,
) -> Restore:
    """`paths_to_restore` with the task defaults; `config_changed`: the configs whose pytest section changed
    (each question is appended to `asked`)."""

    def changed_section(path: str) -> bool:
        if asked is not None:
            asked.append(path)
        return path in config_changed

    return paths_to_restore(
        named,
        changed,
        in_base=in_base,
        protected=list(protected),
        protected_config=list(DEFAULT_PROTECTED_CONFIG),
        protect_imports=protect_imports,
        test_patch_paths=test_patch_paths,
        config_changed=changed_section,
    )


def test_nothing_protected_changed_restores_nothing():
    assert plan(["pkg/core.py"], ["pkg/core.py", "pkg/new.py"]) == Restore([], [], [], [])
    assert plan() == Restore([], [], [], [])


def test_test_patch_paths_go_back_and_count_as_restored_only_when_the_agent_changed_them():
    restore = plan(
        ["pkg/core.py", "tests/test_core.py"],
        ["pkg/core.py", "tests/test_core.py"],
        test_patch_paths=["tests/test_core.py", "tests/test_new.py"],
        protected=[],
    )
    assert restore.paths == ["tests/test_core.py", "tests/test_new.py"]
    assert restore.reported == ["tests/test_core.py"]  # the agent never touched tests/test_new.py
    # The new file of the test patch is not in base_commit: removed, so the test patch can create it.
    assert (restore.removed, restore.checked_out) == (["tests/test_new.py"], ["tests/test_core.py"])


def test_a_test_patch_path_the_patch_names_but_git_does_not_see_changed_is_not_reported():
    restore = plan(["tests/test_core.py"], [], test_patch_paths=["tests/test_core.py"], protected=[])
    assert restore.paths == ["tests/test_core.py"] and restore.reported == []


def test_protected_globs_restore_changed_tracked_files_and_leave_the_rest():
    restore = plan(["pkg/core.py", "tests/conftest.py"], ["pkg/core.py", "tests/conftest.py", "pkg/test_util.py"])
    assert restore.paths == restore.reported == ["tests/conftest.py", "pkg/test_util.py"]
    assert (restore.removed, restore.checked_out) == (["pkg/test_util.py"], ["tests/conftest.py"])
    # The runner's own files come in as globs too (the grader adds them to `tests.protected`).
    assert plan(["tox.ini"], ["tox.ini"], protected=["tox.ini"]).reported == ["tox.ini"]


def test_an_untracked_protected_file_is_removed():
    restore = plan([], ["conftest.py", "pkg/sitecustomize.py"])
    assert restore.paths == restore.reported == ["conftest.py", "pkg/sitecustomize.py"]
    assert (restore.removed, restore.checked_out) == (["conftest.py", "pkg/sitecustomize.py"], [])  # base has neither


def test_a_new_top_level_module_that_shadows_one_is_removed_when_imports_are_protected():
    changed = ["pytest.py", "json/__init__.py", "argparse.cpython-311-x86_64.so", "pkg/json.py", "mylib.py"]
    restore = plan([], changed)
    assert restore.paths == ["pytest.py", "json/__init__.py", "argparse.cpython-311-x86_64.so"]
    assert restore.removed == ["pytest.py", "json/__init__.py", "argparse.cpython-311-x86_64.so"] and not restore.checked_out
    assert plan([], changed, protect_imports=False).paths == []
    # A top-level name base_commit already has is the project's own module, not a shadow.
    assert plan([], ["py/extra.py"], in_base={*IN_BASE, "py/__init__.py"}).paths == []
    assert shadows_a_module("py/extra.py", set()) and not shadows_a_module("py/extra.py", {"py/__init__.py"})


def test_a_folder_replaced_by_a_link_gets_every_tracked_file_under_it_back():
    in_base = {*IN_BASE, "tests/data/a.json", "testsuite/x.py"}
    # git sees the tracked files deleted and the link `tests` untracked; the protected glob names the folder.
    changed = ["tests/conftest.py", "tests/data/a.json", "tests/test_core.py", "tests"]
    restore = plan([], changed, in_base=in_base, protected=["tests"])
    assert restore.paths == ["tests"]
    # The link goes first, then base_commit's files under the folder (not testsuite/, which only shares the prefix).
    assert restore.removed == ["tests"]
    assert restore.checked_out == ["tests/conftest.py", "tests/data/a.json", "tests/test_core.py"]
    assert plan([], ["tests/"], in_base=in_base, protected=["tests/"]).checked_out == ["tests/conftest.py", "tests/data/a.json", "tests/test_core.py"]


def test_config_files_go_back_only_when_their_pytest_section_changed():
    changed = ["pyproject.toml", "setup.cfg", "sub/tox.ini", "pkg/core.py"]
    asked: list[str] = []
    restore = plan([], changed, config_changed={"pyproject.toml", "sub/tox.ini"}, asked=asked)
    assert restore.paths == restore.reported == ["pyproject.toml", "sub/tox.ini"]
    assert (restore.removed, restore.checked_out) == (["sub/tox.ini"], ["pyproject.toml"])
    assert asked == ["pyproject.toml", "setup.cfg", "sub/tox.ini"]  # only configs are asked about
    assert plan([], changed).paths == []


def test_a_config_restored_by_another_rule_is_not_asked_about():
    asked: list[str] = []
    restore = plan([], ["tox.ini"], protected=["tox.ini"], asked=asked)
    assert restore.paths == ["tox.ini"] and asked == []


def test_candidates_are_each_considered_once_in_order_and_odd_names_are_kept_as_they_are():
    restore = plan(["conftest.py", "a b/test_x.py"], ["a b/test_x.py", "conftest.py", "it's/conftest.py"], test_patch_paths=["conftest.py"])
    assert restore.paths == ["conftest.py", "a b/test_x.py", "it's/conftest.py"]
    # The names go to the container NUL-separated in a file (`prepare.remove_listed`), never through a shell's quoting.
    assert restore.removed == ["conftest.py", "a b/test_x.py", "it's/conftest.py"]


def test_the_grader_still_exports_the_policy_helpers():
    assert grading.matches is matches and grading.pytest_section_changed is pytest_section_changed


def test_protected_globs():
    patterns = list(DEFAULT_PROTECTED)
    for path in (
        "conftest.py",
        "a/b/conftest.py",
        "tests/helpers/data.json",
        "pkg/tests/x.py",
        "test_a.py",
        "src/pkg/test_util.py",
        "a/b_test.py",
        "pytest.ini",
        "sub/pytest.ini",
        "sitecustomize.py",
        "hack-1.0.dist-info/entry_points.txt",
        "src/x.egg-info/entry_points.txt",
        "a/__pycache__/m.cpython-311.pyc",
        "m.pyc",
        "evil.pth",
    ):
        assert matches(path, patterns), path
    for path in (
        "ledger/dates.py",
        "src/test_utils/core.py",
        "mytests/x.py",
        "pyproject.toml",
        "setup.cfg",
        "contest.py",
        "django/test/testcases.py",
    ):
        assert not matches(path, patterns), path
    assert matches("conftest.py", ["conftest.py"]) and not matches("a/conftest.py", ["conftest.py"])


def test_pytest_section_comparison():
    base = '[project]\nname = "x"\n\n[tool.pytest.ini_options]\ntestpaths = ["tests"]\n'
    assert not pytest_section_changed("pyproject.toml", base, base.replace('"x"', '"y"'))
    assert pytest_section_changed("pyproject.toml", base, base + 'addopts = "-p evil"\n')
    assert pytest_section_changed("pyproject.toml", base, base + "[[[broken")
    assert pytest_section_changed("pyproject.toml", '[project]\nname = "x"\n', base)
    assert not pytest_section_changed("setup.cfg", None, "[metadata]\nname = x\n")
    assert pytest_section_changed("setup.cfg", None, "[tool:pytest]\naddopts = -p evil\n")
    assert pytest_section_changed("tox.ini", "[tox]\nenvlist = py3\n", "[tox]\nenvlist = py3\n[pytest]\naddopts = -x\n")
    assert not pytest_section_changed("tox.ini", "[tox]\nenvlist = py3\n", "[tox]\nenvlist = py3,py311\n")
