"""Harbor tasks: the bundled example imported through the CLI, graded from its reward file on the real engine.

The example (`examples/harbor/roman-numerals`) is in Harbor's layout; the import builds its
environment image, snapshots /app into a bundle and runs solve.sh for the gold patch. The
attacks are what an agent's patch could try against a verifier that trusts a file.
"""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from swe_env.data.task import load_tasks
from swe_env.grading import runners
from swe_env.grading.grader import Grader
from swe_env.grading.runners import ResultsError
from swe_env.importers import harbor

from ..helpers import run_cli as cli

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "harbor" / "roman-numerals"
TASK_ID = "swe-env__roman-numerals"


# ---------------------------------------------------------------- reading (no engine)


def _copy_example(tmp_path: Path, toml: str | None = None, dockerfile: str | None = None) -> Path:
    folder = tmp_path / "harbor-task"
    shutil.copytree(EXAMPLE, folder)
    if toml is not None:
        (folder / "task.toml").write_text(textwrap.dedent(toml))
    if dockerfile is not None:
        (folder / "environment" / "Dockerfile").write_text(textwrap.dedent(dockerfile))
    return folder


def test_the_example_reads_as_harbor_writes_it():
    task = harbor.read_task(EXAMPLE)
    assert task.id == TASK_ID and task.config.schema_version == "1.4"
    assert task.config.verifier.timeout_sec == 120 and task.config.agent.timeout_sec == 600
    assert task.config.environment.memory_mb == 1024 and task.config.environment.storage_mb == 2048
    assert task.instruction.startswith("# Roman numerals") and task.solution and task.dockerfile
    assert harbor.referenced_images(task.dockerfile.read_text()) == [("FROM", "debian:bookworm")]


@pytest.mark.parametrize(
    "toml, field",
    [
        ("[verifier]\ntimeout_sec = 'soon'\n", "verifier.timeout_sec"),
        ("[verifier\ntimeout_sec = 1\n", "not valid TOML"),
        ("[environment]\nos = 'windows'\n", "environment.os"),
        ("[[steps]]\nname = 'one'\n", "steps"),
        ("[environment]\ngpus = 1\n", "environment.gpus"),
        ("[verifier]\nenvironment_mode = 'separate'\n", "verifier.environment_mode"),
        ("[verifier.env]\nKEY = '${OPENAI_API_KEY}'\n", "verifier.env.KEY"),
        ("[task]\ndescription = 'no name'\n", "task.name"),
    ],
)
def test_a_bad_task_toml_is_one_line_naming_file_and_field(tmp_path, toml, field):
    folder = _copy_example(tmp_path, toml=toml)
    result = cli("tasks", "import-harbor", str(folder), "--out", str(tmp_path / "out"))
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(lines) == 1 and "task.toml" in lines[0] and field in lines[0], result.stderr


def test_older_files_name_the_schema_version_version(tmp_path):
    path = tmp_path / "task.toml"
    path.write_text('version = "1.0"\n[verifier]\ntimeout_sec = 30\n[environment]\nmemory = "2G"\n')
    config = harbor.read_config(path)
    assert config.schema_version == "1.0" and config.verifier.timeout_sec == 30 and config.environment.memory == "2G"


def test_dockerfile_images_and_their_build_arguments():
    text = """
        # syntax=docker/dockerfile:1
        ARG BASE=python:3.12-slim
        FROM ${BASE} AS build
        COPY --from=ghcr.io/astral-sh/uv:0.9.7 /uv /usr/local/bin/uv
        FROM build
        COPY --from=build /x /y
        FROM scratch
        """
    assert harbor.referenced_images(textwrap.dedent(text)) == [("FROM", "python:3.12-slim"), ("COPY --from", "ghcr.io/astral-sh/uv:0.9.7")]
    with pytest.raises(ValueError, match="'TAG' has no default"):
        harbor.referenced_images("ARG TAG\nFROM debian:$TAG\n")


@pytest.mark.parametrize(
    "path, data, reward",
    [
        ("reward.txt", b"1\n", 1.0),
        ("reward.txt", b" 0.0 ", 0.0),
        ("reward.json", b'{"reward": 1, "x": 0}', 1.0),
    ],
)
def test_reward_files_as_harbor_reads_them(path, data, reward):
    assert runners.parse_reward(data, json_file=path.endswith(".json")) == reward


@pytest.mark.parametrize(
    "path, data",
    [
        ("reward.txt", b""),
        ("reward.txt", b"nan"),
        ("reward.txt", b"yes"),
        ("reward.json", b'{"score": 1}'),
        ("reward.json", b'{"reward": true}'),
        ("reward.json", b"[1]"),
    ],
)
def test_a_reward_file_that_says_nothing_is_not_believed(path, data):
    with pytest.raises(ResultsError):
        runners.parse_reward(data, json_file=path.endswith(".json"))


def test_two_reward_files_that_disagree_are_not_believed():
    runner = runners.runner_named("harbor")
    assert runner.read_results([("/logs/verifier/reward.json", b'{"reward": 1}'), ("/logs/verifier/reward.txt", b"1")]).by_id == {"reward": "passed"}
    with pytest.raises(ResultsError, match="disagree"):
        runner.read_results([("/logs/verifier/reward.json", b'{"reward": 1}'), ("/logs/verifier/reward.txt", b"0")])


# ---------------------------------------------------------------- imported and graded (real engine)


@pytest.fixture(scope="module")
def imported(tmp_path_factory, docker_client) -> Path:
    out = tmp_path_factory.mktemp("harbor") / "tasks"
    result = cli("tasks", "import-harbor", str(EXAMPLE), "--out", str(out))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "gold patch from solve.sh" in result.stdout
    return out


@pytest.fixture(scope="module")
def task(imported):
    return load_tasks(imported)[0]


def test_the_import_keeps_the_tests_out_of_the_repository(task, imported):
    assert task.id == TASK_ID and task.environment.workdir == "/app"
    assert task.environment.base_image.startswith("swe-env/harbor:")
    assert task.tests.runner == "harbor" and task.tests.fail_to_pass == ["reward"]
    assert task.tests.command == "/tests/test.sh"
    assert task.limits.grading_timeout == 120 and task.limits.memory == "1024m" and task.limits.disk == "2048m"
    assert "+++ b/.swe-env-harbor/tests/test.sh" in task.tests.test_patch
    assert "+++ b/roman.py" in task.gold_patch and ".swe-env-harbor" not in task.gold_patch
    assert (imported / TASK_ID / f"{TASK_ID}.bundle").is_file()
    # The same environment gives the same commit: a second import is a cache hit with the same task.
    again = load_tasks(harbor.import_tasks(EXAMPLE, imported.parent / "again")[0])[0]
    assert again.base_commit == task.base_commit and again.gold_patch == task.gold_patch


def test_validate_gold_resolves_and_empty_does_not(imported):
    result = cli("validate", "--tasks", str(imported))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "all 1 tasks valid" in result.stdout


def test_the_reward_file_decides(task):
    grader = Grader()
    gold = grader.grade(task, task.gold_patch)
    assert gold.status == "graded" and gold.resolved and gold.reward == 1.0 and gold.report_source == "reward"
    assert "Ran 4 tests" in gold.output
    empty = grader.grade(task, "")
    assert empty.status == "graded" and not empty.resolved and empty.reward == 0.0
    assert empty.report_source == "reward" and empty.test_results == {"reward": "failed"}


def _new_file(path: str, text: str) -> str:
    lines = text.splitlines()
    return f"diff --git a/{path} b/{path}\nnew file mode 100644\n--- /dev/null\n+++ b/{path}\n@@ -0,0 +1,{len(lines)} @@\n" + "".join(
        f"+{line}\n" for line in lines
    )


_WRITES_JSON_REWARD = """\
diff --git a/roman.py b/roman.py
--- a/roman.py
+++ b/roman.py
@@ -1,4 +1,8 @@
 \"\"\"Roman numerals: integers from 1 to 3999 to text and back.\"\"\"
+import os
+
+os.makedirs("/logs/verifier", exist_ok=True)
+open("/logs/verifier/reward.json", "w").write('{"reward": 1}')

 _NUMERALS = [
     (1000, "M"),
"""


def test_an_agent_cannot_write_its_own_reward(task):
    grader = Grader()
    hacks = {
        # the hidden tests' place in the test patch: restored before the tests are laid out
        "fake test.sh": _new_file(".swe-env-harbor/tests/test.sh", "#!/bin/bash\necho 1 > /logs/verifier/reward.txt"),
        # a reward file written before the run: the patch may not leave the repository
        "pre-written reward": _new_file("../logs/verifier/reward.txt", "1"),
        # code under test writing reward.json (which Harbor prefers) while test.sh writes reward.txt = 0
        "reward.json from the code": _WRITES_JSON_REWARD,
    }
    for name, patch in hacks.items():
        report = grader.grade(task, patch)
        assert not report.resolved and report.reward == 0.0, (name, report.status, report.error)
    with_fix = grader.grade(task, task.gold_patch + _WRITES_JSON_REWARD)
    assert with_fix.resolved and with_fix.reward == 1.0, with_fix.error


def test_a_reward_left_in_the_image_is_not_believed(tmp_path, docker_client):
    folder = _copy_example(
        tmp_path,
        dockerfile="""\
        FROM debian:bookworm
        WORKDIR /app
        COPY app/ /app/
        RUN mkdir -p /logs/verifier && echo 1 > /logs/verifier/reward.txt
        """,
    )
    (folder / "tests" / "test.sh").write_text("#!/bin/bash\ntrue\n")  # writes no reward of its own
    (folder / "task.toml").write_text('schema_version = "1.4"\n[task]\nname = "swe-env/left-reward"\n')
    task = load_tasks(harbor.import_tasks(folder, tmp_path / "out")[0])[0]
    report = Grader().grade(task, "")
    assert report.status == "graded" and not report.resolved and report.report_source == "none"
    assert "reward file" in report.error


def test_a_base_image_that_is_not_here_is_one_line(tmp_path, docker_client):
    folder = _copy_example(tmp_path, dockerfile="FROM swe-env-test/not-on-this-engine:1\nWORKDIR /app\n")
    result = cli("tasks", "import-harbor", str(folder), "--out", str(tmp_path / "out"))
    # The progress bar's line ("pulling ...") comes first; the error is one line of its own.
    lines = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert len(lines) == 1 and result.stderr.rstrip().endswith(lines[0]), result.stderr
    assert "environment/Dockerfile" in lines[0] and "field 'FROM'" in lines[0]
    assert "swe-env-test/not-on-this-engine:1" in lines[0] and "cannot be pulled" in lines[0]
