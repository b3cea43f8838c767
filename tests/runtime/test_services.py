"""Services beside the tests (`environment.services`, `environment.env_setup`): a local HTTP server in every container."""

from __future__ import annotations

import pytest

from swe_env import SWEEnv
from swe_env.data.task import Service
from swe_env.grading.grader import Grader
from swe_env.runtime.sandbox import SandboxError

pytestmark = pytest.mark.docker

PORT = 8099
FETCH = (
    "python3 -c 'import urllib.request, sys; "
    f'sys.exit(0 if b"hello service" in urllib.request.urlopen("http://127.0.0.1:{PORT}/", timeout=5).read() else 1)\''
)
SERVICE = Service(run=f"python3 -m http.server {PORT} --bind 127.0.0.1 --directory /srv/site", ready=FETCH)


def _with_service(task, services, command_prefix=""):
    environment = task.environment.model_copy(
        update={"env_setup": ["mkdir -p /srv/site && echo 'hello service' > /srv/site/index.html"], "services": services}
    )
    tests = task.tests.model_copy(update={"command": command_prefix + task.tests.command})
    return task.model_copy(update={"environment": environment, "tests": tests})


def test_the_grader_runs_the_tests_beside_the_service(task):
    """The test command needs the service (it fetches a page first): gold resolves with it, not without."""
    grader = Grader()
    served = _with_service(task, [SERVICE], f"{FETCH} && ")
    report = grader.grade(served, served.gold_patch)
    assert report.status == "graded" and report.resolved, (report.error, report.log_tail[-500:])
    unserved = _with_service(task, [], f"{FETCH} && ")
    report = grader.grade(unserved, unserved.gold_patch)
    assert report.status == "graded" and not report.resolved


def test_the_agents_shell_reaches_the_service(task):
    served = _with_service(task, [SERVICE])
    env = SWEEnv(tasks=[served])
    try:
        env.reset(options={"task_id": served.id})
        _, _, _, _, info = env.step({"tool": "bash", "command": FETCH})
        assert info["exit_code"] == 0
    finally:
        env.close()


def test_a_service_that_never_gets_ready_is_an_environment_fault_with_its_log(task):
    broken = _with_service(task, [Service(run="echo starting; exit 3", ready="false", ready_timeout=1)])
    env = SWEEnv(tasks=[broken])
    try:
        with pytest.raises(SandboxError, match="was not ready after 1 s.*starting"):
            env.reset(options={"task_id": broken.id})
    finally:
        env.close()
    report = Grader().grade(broken, broken.gold_patch)
    assert report.status == "infra_error" and report.infrastructure_failure and "was not ready" in report.error
