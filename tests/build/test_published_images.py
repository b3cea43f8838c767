"""Published instance images: an image laid out as SWE-bench's are, used with no build of our own.

No registry answers here, so the image is a mimic built locally: SWE-bench's layout (the repository
at /testbed with its whole history, checked out at base_commit; a `/opt/miniconda3/bin/activate`
script and a `testbed` environment, here a venv, since no conda is needed to copy the layout).
Verified only against this mimic; SWE-bench's real images were not pulled.
"""

from __future__ import annotations

import io
import subprocess
import tarfile
import tempfile
import uuid
from pathlib import Path

import pytest

from swe_env import SWEEnv
from swe_env.build import images
from swe_env.build.images import ImageBuilder, ImageBuildError
from swe_env.grading.grader import Grader
from swe_env.importers import swebench
from swe_env.runtime import engine

pytestmark = pytest.mark.docker

# A stand-in for conda's activate script: `conda activate NAME` puts a venv under envs/ first on PATH.
ACTIVATE = """\
conda() {
    if [ "$1" = activate ] && [ -d "/opt/miniconda3/envs/$2" ]; then
        export CONDA_DEFAULT_ENV="$2" CONDA_PREFIX="/opt/miniconda3/envs/$2" PATH="/opt/miniconda3/envs/$2/bin:$PATH"
    else
        echo "conda: cannot $*" >&2
        return 1
    fi
}
"""


def _mimic_dockerfile(base_commit: str, later: str, pytest_pin: str) -> str:
    return "\n".join(
        [
            "FROM debian:bookworm",
            f"COPY ca.crt {images.HOST_CA}",
            "ARG PIP_CERT",
            "RUN mkdir -p /opt/miniconda3/bin /opt/miniconda3/envs && python3 -m venv /opt/miniconda3/envs/testbed "
            f"&& /opt/miniconda3/envs/testbed/bin/pip install -q {pytest_pin}",
            "COPY activate /opt/miniconda3/bin/activate",
            "ADD repo.tar /",
            "WORKDIR /testbed",
            # As SWE-bench's images: a full clone reset to base_commit, later commits still in the object store.
            f"RUN git -c advice.detachedHead=false checkout -q {base_commit} && git branch -f main {base_commit} "
            f"&& git checkout -q main && git branch later {later}",
            "",
        ]
    )


def _tar_of(files: dict[str, bytes], folder: Path | None = None, arcname: str = "") -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for name, data in files.items():
            info = tarfile.TarInfo(name)
            info.size, info.mode = len(data), 0o644
            tar.addfile(info, io.BytesIO(data))
        if folder is not None:
            tar.add(folder, arcname=arcname)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def published(tasks):
    """(task, image name, the commit after base_commit that the image's history holds)."""
    task = next(t for t in tasks if t.id == "minicsv-quoted-newline")
    with tempfile.TemporaryDirectory() as tmp:
        clone = Path(tmp) / "testbed"
        subprocess.run(["git", "clone", "-q", task.repo_location(), str(clone)], check=True)
        later = subprocess.run(["git", "-C", str(clone), "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
        ca = images.ca_bundle()
        context = _tar_of(
            {
                "Dockerfile": _mimic_dockerfile(task.base_commit, later, task.environment.pip_packages[0]).encode(),
                "activate": ACTIVATE.encode(),
                "ca.crt": ca.read_bytes() if ca else b"",
                "repo.tar": _tar_of({}, clone, "testbed"),
            }
        )
    name = f"swe-env-test/sweb.eval.x86_64.{task.id}:{uuid.uuid4().hex[:8]}"
    engine.client().images.build(
        fileobj=io.BytesIO(context),
        custom_context=True,
        tag=name,
        rm=True,
        forcerm=True,
        labels={engine.MANAGED_LABEL: "1", "swe_env.kind": "test-mimic"},
        buildargs={"PIP_CERT": images.HOST_CA} if ca else {},
    )
    as_published = task.model_copy(
        update={
            "environment": task.environment.model_copy(
                update={
                    "image": name,
                    "activate": swebench.eval_script_activation(
                        "#!/bin/bash\nset -uxo pipefail\nsource /opt/miniconda3/bin/activate\nconda activate testbed\ncd /testbed\n"
                    ),
                }
            )
        }
    )
    yield as_published, name, later
    engine.client().images.remove(name, force=True)


def test_the_published_image_is_used_with_its_environment_and_without_later_history(published):
    task, name, later = published
    assert later != task.base_commit
    tag = ImageBuilder(images="published").ensure(task)
    assert tag.startswith("swe-env/published:")
    assert engine.client().images.get(tag).labels["swe_env.published"] == name
    env = SWEEnv(tasks=[task])
    try:
        env.reset(options={"task_id": task.id})
        which = env.step({"tool": "bash", "command": "command -v python; echo $CONDA_DEFAULT_ENV"})[0]
        assert "/opt/miniconda3/envs/testbed/bin/python" in which and "testbed" in which
        history = env.step(
            {"tool": "bash", "command": f"git cat-file -t {later} 2>&1; git rev-list --all | wc -l; git branch -a; git reflog | wc -l"}
        )[0]
        assert "commit" not in history.splitlines()[0]  # the later commit is gone, not only unreferenced
        assert "later" not in history
        _, reward, terminated, _, info = env.step({"tool": "submit"})
        assert terminated and reward == 0.0  # nothing changed: the hidden tests fail
    finally:
        env.close()


def test_the_gold_patch_resolves_in_the_published_image_and_the_empty_one_does_not(published):
    task, _, _ = published
    grader = Grader(builder=ImageBuilder(images="published"))
    gold = grader.grade(task, task.gold_patch)
    assert gold.status == "graded" and gold.resolved and gold.reward == 1.0, gold.log
    empty = grader.grade(task, "")
    assert empty.status == "graded" and not empty.resolved


def test_auto_uses_the_image_when_present_and_builds_when_absent(published):
    task, _, _ = published
    assert ImageBuilder(images="auto").ensure(task).startswith("swe-env/published:")
    absent = task.model_copy(update={"environment": task.environment.model_copy(update={"image": "swe-env-test/never-published:nope"})})
    notes = []
    built = ImageBuilder(images="auto", progress=notes.append).ensure(absent)
    assert built.startswith("swe-env/instance:") and any("not available" in n for n in notes)
    with pytest.raises(ImageBuildError, match="never-published.*cannot be pulled"):
        ImageBuilder(images="published").ensure(absent)
    assert ImageBuilder(images="build").ensure(task).startswith("swe-env/instance:")


def test_an_image_at_another_commit_is_refused_with_a_clear_error(published):
    task, _, later = published
    wrong = task.model_copy(update={"base_commit": later, "id": "minicsv-wrong-commit"})
    with pytest.raises(ImageBuildError, match="published image .* is at .*, not the task.s base_commit"):
        ImageBuilder(images="published").ensure(wrong)
