"""Layered image builds: os → base → env → instance, each tagged by a hash of its inputs.

- os: the configured OS image; pulled if a registry answers, otherwise bootstrapped
  offline with debootstrap (Debian images only) and imported.
- base: python3, venv, git and patch on top of the OS image.
- env: the task's apt and pip packages in a virtualenv at /opt/swe-env/venv.
- instance: the scrubbed repository at base_commit in the workdir, installed.

A layer whose tag exists is not rebuilt, so a second build is a lookup, and a new task
of a known repository builds only its instance layer.

Why one module of this size: the four layers share one hashing and build routine and the
offline bootstrap they fall back to; split by layer, each would carry a copy of both.
"""

from __future__ import annotations

import hashlib
import io
import os
import shlex
import shutil
import subprocess
import tarfile
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

import docker.errors

from ..data.task import Environment, Task
from ..errors import InfrastructureError
from ..runtime import engine
from ..runtime.diff import INSTALLED_TREE
from . import registry as registries
from . import repos, store
from .registry import ImagesMode

VENV = "/opt/swe-env/venv"
BASE_PACKAGES = ["python3", "python3-venv", "git", "patch", "ca-certificates"]
IGNORED_IN_DIFFS = ["__pycache__/", "*.pyc", ".pytest_cache/", "*.egg-info/", ".coverage"]
"""Build and test debris that never belongs in an agent's diff (written to .git/info/exclude)."""

Progress = Callable[[str], None]
SWEBENCH_ACTIVATE = "source /opt/miniconda3/bin/activate && conda activate testbed"
"""How SWE-bench's instance images activate their environment (the default `environment.activate`)."""
_UNBAKED = frozenset({"PWD", "OLDPWD", "SHLVL", "_", "HOSTNAME", "HOME", "TERM", "PS1"})

_build_locks: dict[str, threading.Lock] = {}
_guard = threading.Lock()


class ImageBuildError(InfrastructureError):
    """An image layer failed to build; the message names the task and the log file."""


def log_dir() -> Path:
    return repos.cache_dir() / "build-logs"


def ca_bundle() -> Path | None:
    """The host's CA bundle, trusted by pip during builds (TLS-intercepting proxies)."""
    for var in ("SWE_ENV_CA_BUNDLE", "PIP_CERT", "SSL_CERT_FILE", "REQUESTS_CA_BUNDLE"):
        value = os.environ.get(var)
        if value and Path(value).is_file():
            return Path(value)
    default = Path("/etc/ssl/certs/ca-certificates.crt")
    return default if default.is_file() else None


def image_exists(name: str) -> bool:
    try:
        engine.client().images.get(name)
        return True
    except docker.errors.ImageNotFound:
        return False


# ---------------------------------------------------------------- os layer


def ensure_os_image(name: str, progress: Progress | None = None) -> str:
    """Make sure the OS image exists locally: present, pulled, or bootstrapped offline."""
    with _lock(name):
        if image_exists(name):
            return name
        say = progress or (lambda _msg: None)
        say(f"pulling {name}")
        try:
            engine.client().images.pull(name)
            return name
        except docker.errors.DockerException as exc:
            pull_error = str(exc).splitlines()[0][:200]
        suite = _debian_suite(name)
        if suite is None:
            raise ImageBuildError(
                f"base image {name} is not available and cannot be pulled ({pull_error}); "
                "pull or build it yourself, or use a Debian image (debian:<suite>), which is bootstrapped offline"
            )
        say(f"no registry answers; bootstrapping {name} with debootstrap (about a minute)")
        bootstrap_debian(name, suite)
        return name


def _debian_suite(name: str) -> str | None:
    repo, _, tag = name.partition(":")
    if repo not in ("debian", "docker.io/library/debian", "library/debian"):
        return None
    suite = (tag or "bookworm").removesuffix("-slim")
    return suite if suite.isalpha() else None


def bootstrap_debian(name: str, suite: str, mirror: str = "http://deb.debian.org/debian") -> None:
    """Build a minimal Debian root with debootstrap and `docker import` it as `name`."""
    if shutil.which("debootstrap") is None:
        raise ImageBuildError(f"cannot bootstrap {name}: debootstrap is not installed (apt-get install debootstrap), and no registry answered")
    log = log_dir() / f"bootstrap-{suite}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="swe-env-debootstrap-") as tmp:
        root = Path(tmp) / "root"
        with open(log, "w") as out:
            result = subprocess.run(
                ["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}", suite, str(root), mirror],
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        if result.returncode != 0:
            raise ImageBuildError(f"debootstrap of {suite} failed (exit {result.returncode}); see {log}")
        archive = Path(tmp) / "root.tar"
        with tarfile.open(archive, "w") as tar:
            tar.add(root, arcname=".")
        repository, _, tag = name.partition(":")
        labels = f"LABEL {engine.MANAGED_LABEL}=1 swe_env.kind=os swe_env.bootstrapped=debootstrap"
        engine.client().api.import_image(
            src=str(archive),
            repository=repository,
            tag=tag or "latest",
            changes=[labels, "ENV LANG=C.UTF-8", 'CMD ["bash"]'],
        )


# ---------------------------------------------------------------- layered builds


def base_dockerfile(os_image: str) -> str:
    packages = " ".join(BASE_PACKAGES)
    return f"""FROM {os_image}
ENV LANG=C.UTF-8 DEBIAN_FRONTEND=noninteractive
RUN if ! (command -v python3 && command -v git && command -v patch && python3 -c 'import venv, ensurepip') >/dev/null 2>&1; then \\
      apt-get update -qq && apt-get install -y -qq --no-install-recommends {packages} && rm -rf /var/lib/apt/lists/*; \\
    fi
"""


HOST_CA = "/usr/local/share/swe-env/host-ca.crt"


PIP_FOR_CUTOFF = "pip==26.0.1"
"""The pip installed where a task sets `pip_uploaded_prior_to`: it has `--uploaded-prior-to` and is the last to run on Python 3.9."""


def env_dockerfile(base_tag: str, environment: Environment, requirements: tuple[str, ...] = ()) -> str:
    lines = [f"FROM {base_tag}"]
    # The host's CA bundle (possibly empty) is copied in and named by a build argument, so pip
    # trusts a TLS-intercepting proxy during the build without the setting reaching the image's ENV.
    lines.append(f"COPY ca.crt {HOST_CA}")
    lines.append("ARG PIP_CERT")
    if environment.apt_packages:
        packages = " ".join(shlex.quote(p) for p in environment.apt_packages)
        lines.append(f"RUN apt-get update -qq && apt-get install -y -qq --no-install-recommends {packages} && rm -rf /var/lib/apt/lists/*")
    # The base interpreter sees the venv's packages too: tools that run it through a link of
    # their own (tox-current-env's `.tox/<env>/bin/python`, as sphinx's suite does) find no
    # pyvenv.cfg beside that link and would otherwise get a Python without pytest. A conda
    # prefix, which SWE-bench's images use, has no such split.
    lines.append(
        f"RUN python3 -m venv {VENV} && mkdir -p /usr/lib/python3/dist-packages && {VENV}/bin/python -c 'import sysconfig; print(sysconfig.get_paths()[\"purelib\"])' "
        "> /usr/lib/python3/dist-packages/swe-env-venv.pth"
    )
    lines.append(f"ENV VIRTUAL_ENV={VENV} PATH={VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    lines.append("ENV PYTHONDONTWRITEBYTECODE=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PIP_NO_CACHE_DIR=1")
    if environment.pip_uploaded_prior_to:
        # In ENV, not only for this layer: the instance layer's `pip install -e .` resolves the
        # repository's own dependencies, and must see the same past as the pinned packages.
        cutoff = environment.pip_uploaded_prior_to
        cutoff = cutoff if "T" in cutoff else f"{cutoff}T00:00:00Z"
        lines.append(f"RUN pip install -q {shlex.quote(PIP_FOR_CUTOFF)}")
        lines.append(f"ENV PIP_UPLOADED_PRIOR_TO={cutoff}")
    pip_packages = [*environment.pip_packages, *requirements]
    if pip_packages:
        lines.append(f"RUN pip install -q {' '.join(shlex.quote(p) for p in pip_packages)}")
    lines.extend(f"RUN {command}" for command in environment.env_setup)
    return "\n".join(lines) + "\n"


def instance_dockerfile(env_tag: str, task: Task) -> str:
    workdir = task.environment.workdir
    lines = [f"FROM {env_tag}", "ARG PIP_CERT", "ADD repo.tar /", f"WORKDIR {workdir}"]
    lines.extend(f"RUN {command}" for command in task.environment.install)
    if task.environment.user:
        lines.append(_user_line(task.environment.user, workdir))
    lines.extend(tree_record_lines())
    return "\n".join(lines) + "\n"


def tree_record_lines() -> list[str]:
    """Dockerfile lines (run in the workdir) that keep install debris out of diffs and record the installed tree."""
    ignored = "\\n".join(IGNORED_IN_DIFFS)
    return [
        # Whatever install left untracked is part of the environment, not of anyone's diff.
        f"RUN printf '{ignored}\\n' >> .git/info/exclude && "
        "git status --porcelain --untracked-files=normal | sed -n 's|^?? |/|p' >> .git/info/exclude",
        # What install changed in tracked files (a recipe's sed of setup.py or tox.ini) is the
        # environment's, not the agent's: the agent's diff is taken against this tree, so the
        # grader, whose container starts from the same tree, gets only the agent's own changes.
        f"RUN mkdir -p {INSTALLED_TREE.rsplit('/', 1)[0]} && index=$(mktemp) && export GIT_INDEX_FILE=$index && "
        f"git read-tree HEAD && git add -A && git write-tree > {INSTALLED_TREE} && rm -f $index",
    ]


def _user_line(user: str, workdir: str) -> str:
    # root (the grader, the diff) works in a tree it does not own: tell git that is fine.
    return f"RUN useradd --create-home --shell /bin/bash {user} && chown -R {user}: {workdir} && git config --system --add safe.directory '*'"


# An image someone else built may hold the repository's whole history (SWE-bench's clone it, then
# reset to base_commit): everything but base_commit's own history goes, as in our checkouts.
_SCRUB = r"""set -e
head=$(git rev-parse HEAD)
case "$head" in __BASE__*) ;; *) echo "the image's repository is at $head, not the task's base_commit __BASE__" >&2; exit 3;; esac
branch=$(git symbolic-ref -q HEAD || true)
for remote in $(git remote); do git remote remove "$remote"; done
git for-each-ref --format='%(refname)' | while read -r ref; do [ "$ref" = "$branch" ] || git update-ref -d "$ref"; done
rm -rf .git/logs .git/ORIG_HEAD .git/FETCH_HEAD .git/MERGE_HEAD .git/CHERRY_PICK_HEAD .git/refs/original
git reflog expire --expire=now --all
git -c gc.reflogExpire=now -c gc.reflogExpireUnreachable=now gc -q --prune=now
test "$(git rev-list --all | sort)" = "$(git rev-list HEAD | sort)"
"""


def published_dockerfile(published: str, task: Task, activated: dict[str, str]) -> str:
    """The thin layer over a published instance image: activation baked in, later history removed, tree recorded."""
    environment = task.environment
    lines = [f"FROM {published}", "USER root", f"WORKDIR {environment.workdir}"]
    if activated:
        lines.append("ENV " + " ".join(f"{name}={shlex.quote(value)}" for name, value in sorted(activated.items())))
    lines.append("ENV PYTHONDONTWRITEBYTECODE=1")
    lines.append("COPY scrub.sh /tmp/swe-env-scrub.sh")
    lines.append("RUN bash /tmp/swe-env-scrub.sh && rm -f /tmp/swe-env-scrub.sh")
    if environment.user:
        lines.append(_user_line(environment.user, environment.workdir))
    lines.extend(tree_record_lines())
    return "\n".join(lines) + "\n"


def probe_published(image: str, activate: str | None, workdir: str) -> tuple[dict[str, str], str]:
    """The variables `activate` sets or changes in `image` (default: SWE-bench's line when the image has it),
    and the commit its repository at `workdir` is at ("" when there is none).

    Runs one short container (no network, removed after) that writes the commit and the
    environment before and after the activation to a file, read once it has stopped."""
    probe = (
        f"{{ git -C {shlex.quote(workdir)} rev-parse HEAD 2>/dev/null; printf '\\0'; "
        "env -0; printf '\\0--swe-env--\\0'; "
        + (f"{activate}" if activate else f"if [ -f /opt/miniconda3/bin/activate ]; then {SWEBENCH_ACTIVATE}; fi")
        + f" >/dev/null 2>&1 </dev/null && env -0 && printf -- '--swe-env-end--'; }} >{_PROBE_ANSWER}"
    )
    # The answer goes to a file read from the stopped container, not to its log: Docker 20.10
    # now and then hands back an empty log of a container that ended quickly, even thrice in
    # a row under load. The end marker still tells a whole answer from a cut one.
    container = engine.create_container(image, ["timeout", "120", "bash", "-c", probe], "image-probe", network_mode="none", user="root")
    try:
        container.start()
        exit_code = container.wait(timeout=180).get("StatusCode", -1)
        output = _read_probe_answer(container) if exit_code == 0 else ""
    finally:
        engine.remove_quietly(container.id)
    if exit_code != 0:
        raise ImageBuildError(f"activating the environment of {image} failed (exit {exit_code}): {activate or SWEBENCH_ACTIVATE}")
    before_text, marker, after_text = output.partition("\0--swe-env--\0")
    if not (marker and after_text.endswith("--swe-env-end--")):
        raise ImageBuildError(f"could not read the environment of {image} (the probe's answer was cut short)")
    after_text = after_text.removesuffix("--swe-env-end--")
    head, _, before_text = before_text.partition("\0")
    before, after = _env_table(before_text), _env_table(after_text)
    return {name: value for name, value in after.items() if before.get(name) != value and name not in _UNBAKED and "\n" not in value}, head.strip()


_PROBE_ANSWER = "/tmp/swe-env-probe-answer"
_PROBE_ANSWER_LIMIT = 8 << 20


def _read_probe_answer(container) -> str:
    """The probe's answer file, at most `_PROBE_ANSWER_LIMIT` bytes of it."""
    chunks, size = [], 0
    stream, _stat = container.get_archive(_PROBE_ANSWER)
    for chunk in stream:
        chunks.append(chunk)
        size += len(chunk)
        if size > _PROBE_ANSWER_LIMIT + 4096:
            break
    with tarfile.open(fileobj=io.BytesIO(b"".join(chunks))) as archive:
        member = archive.next()
        handle = archive.extractfile(member) if member is not None else None
        return handle.read(_PROBE_ANSWER_LIMIT).decode("utf-8", "replace") if handle else ""


def _env_table(text: str) -> dict[str, str]:
    return dict(entry.split("=", 1) for entry in text.split("\0") if "=" in entry)


def _digest(*parts: str) -> str:
    return hashlib.sha256("\0".join(parts).encode()).hexdigest()[:16]


class ImageBuilder:
    """Builds and caches the three layers of a task's image."""

    def __init__(
        self, progress: Progress | None = None, images: ImagesMode = "auto", registry: str | None = None, published_namespace: str | None = None
    ):
        self.progress = progress or (lambda _msg: None)
        self.images: ImagesMode = images
        """Where tasks with `environment.image` get their image (see `ImagesMode`)."""
        self.registry = registries.check_registry(registry) if registry else None
        """`HOST[:PORT][/NAMESPACE]` our layers are pulled from before building (unless `images` is build)."""
        self.published_namespace = registries.check_namespace(published_namespace) if published_namespace else None
        """Where published images are looked up instead of their own names (see `registry.mirrored_name`)."""
        self._requirements: dict[tuple[str, str, tuple[str, ...]], tuple[str, ...]] = {}

    # Tags are pure functions of the inputs, so a cache hit costs one image lookup per layer.
    def base_tag(self, environment: Environment) -> str:
        return f"swe-env/base:{_digest(environment.os_image, base_dockerfile(environment.os_image))}"

    def env_tag(self, environment: Environment, requirements: tuple[str, ...] = ()) -> str:
        base = self.base_tag(environment)
        return f"swe-env/env:{_digest(base, env_dockerfile(base, environment, requirements))}"

    def requirements_for(self, task: Task) -> tuple[str, ...]:
        """The entries of the task's requirement files (read once per repository, commit and paths)."""
        environment = task.environment
        if not environment.requirements:
            return ()
        task.check_repo()
        key = (task.repo_location(), environment.requirements_commit or task.base_commit, tuple(environment.requirements))
        with _guard:
            cached = self._requirements.get(key)
        if cached is None:
            cached = tuple(repos.read_requirements(key[0], key[1], list(key[2])))
            with _guard:
                self._requirements[key] = cached
        return cached

    def instance_tag(self, task: Task) -> str:
        """Keyed by what the image holds, never by the task's id: tasks on one repository, commit, environment
        and install share one image. A full sha names the repository's content by itself (the checkout is
        that commit and its history, nothing else); an abbreviated one is qualified by the repository."""
        env = self.env_tag(task.environment, self.requirements_for(task))
        source = "" if len(task.base_commit) == 40 else task.repo
        digest = _digest(env, source, task.base_commit, instance_dockerfile(env, task))
        return f"swe-env/instance:{digest}"

    def ensure(self, task: Task) -> str:
        """The instance image tag for `task`: derived from its published image, pulled, or built (whichever layers are missing)."""
        tag = self._ensure(task)
        store.record_use(tag, task.id, task.repo)
        return tag

    def _pulled(self, tag: str, kind: str) -> bool:
        """Whether `tag` came from the registry (a failure is one note, and the caller builds)."""
        if not self.registry or self.images == "build":
            return False
        why = registries.pull(tag, self.registry, kind, self.progress)
        if why is not None:
            self.progress(f"{tag}: not pulled from {self.registry} ({why}); building it")
        return why is None

    def _ensure(self, task: Task) -> str:
        published = task.environment.image
        if published and self.images != "build" and self.published_namespace:
            published = registries.mirrored_name(published, self.published_namespace)
        if published and self.images != "build":
            found, why = self._find_published(published)
            if found:
                return self._derive(task, published)
            if self.images == "published":
                raise ImageBuildError(
                    f"task '{task.id}': published image {published} is not on the engine "
                    f"and cannot be pulled ({why}); use --images build or auto to build it"
                )
            self.progress(f"{task.id}: {published} is not available ({why}); building from the recipe")
        tag = self.instance_tag(task)
        if image_exists(tag) or self._pulled(tag, "instance"):
            return tag
        environment = task.environment
        ensure_os_image(environment.os_image, self.progress)
        base = self._build(self.base_tag(environment), base_dockerfile(environment.os_image), task, kind="base")
        ca = ca_bundle()
        build_args = {"PIP_CERT": HOST_CA} if ca else {}
        requirements = self.requirements_for(task)
        env = self._build(
            self.env_tag(environment, requirements),
            env_dockerfile(base, environment, requirements),
            task,
            kind="env",
            files={"ca.crt": ca.read_bytes() if ca else b""},
            build_args=build_args,
        )
        with tempfile.TemporaryDirectory(prefix="swe-env-ctx-") as tmp:
            repo_tar = Path(tmp) / "repo.tar"
            self.progress(f"{task.id}: checking out {task.base_commit[:12]}")
            sha = repos.checkout_tarball(task, repo_tar, arcname=environment.workdir.lstrip("/"))
            return self._build(
                tag,
                instance_dockerfile(env, task),
                task,
                kind="instance",
                files={"repo.tar": repo_tar},
                labels={"swe_env.commit": sha},  # no task id: the image serves every task with these contents
                build_args=build_args,
            )

    def _find_published(self, name: str) -> tuple[bool, str]:
        """Whether the engine has `name` or can pull it, and why not."""
        with _lock(name):
            if image_exists(name):
                return True, ""
            self.progress(f"pulling {name}")
            try:
                engine.client().images.pull(name)
                return True, ""
            except docker.errors.DockerException as exc:
                return False, str(exc).splitlines()[0][:200]

    def _derive(self, task: Task, published: str) -> str:
        source_id = engine.client().images.get(published).id
        scrub = _SCRUB.replace("__BASE__", task.base_commit)
        key = _digest(source_id, scrub, task.environment.workdir, task.environment.user or "", task.environment.activate or "")
        tag = f"swe-env/published:{key}"  # by content, as instance images are
        if image_exists(tag) or self._pulled(tag, "published"):
            return tag
        activated, head = probe_published(published, task.environment.activate, task.environment.workdir)
        if not head.startswith(task.base_commit):
            found = f"is at {head[:12]}" if head else "is not a git repository"
            raise ImageBuildError(
                f"task '{task.id}': {task.environment.workdir} in published image {published} "
                f"{found}, not the task's base_commit {task.base_commit[:12]}"
            )
        return self._build(
            tag,
            published_dockerfile(published, task, activated),
            task,
            kind="published",
            files={"scrub.sh": scrub.encode()},
            labels={"swe_env.commit": task.base_commit, "swe_env.published": published},
        )

    def _build(
        self,
        tag: str,
        dockerfile: str,
        task: Task,
        kind: str,
        files: dict[str, bytes | Path] | None = None,
        labels: dict[str, str] | None = None,
        build_args: dict[str, str] | None = None,
    ) -> str:
        with _lock(tag):
            if image_exists(tag) or self._pulled(tag, kind):
                return tag
            self.progress(f"{task.id}: building {kind} layer {tag}")
            all_labels = {engine.MANAGED_LABEL: "1", "swe_env.kind": f"image-{kind}", **(labels or {})}
            error, log_path = build_image(
                tag, all_labels, dockerfile + "\n----\n", fileobj=_context(dockerfile, files or {}), custom_context=True, buildargs=build_args or {}
            )
            if error is not None:
                raise ImageBuildError(f"task '{task.id}': building the {kind} layer failed: {error}; log: {log_path}")
            return tag


def build_image(tag: str, labels: dict[str, str], header: str = "", **context) -> tuple[str | None, Path]:
    """One `docker build` of `tag` (context: the engine API's `fileobj`/`path` arguments), logged to a file.

    Returns (the last line of the error, or None; the log file). A failed build never leaves the
    tag behind, so a later run cannot reuse half an image."""
    log_path = log_dir() / f"{tag.replace('/', '_').replace(':', '_')}.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    error = None
    with open(log_path, "w") as log:
        log.write(header)
        try:
            for chunk in engine.client().api.build(tag=tag, labels=labels, rm=True, forcerm=True, decode=True, **context):
                if "stream" in chunk:
                    log.write(chunk["stream"])
                if "error" in chunk:
                    error = chunk["error"].strip()
                    log.write(f"ERROR: {error}\n")
        except docker.errors.DockerException as exc:
            error = str(exc)
            log.write(f"ERROR: {error}\n")
    if error is None:
        return None, log_path
    try:
        engine.client().images.remove(tag, force=True)
    except docker.errors.DockerException:
        pass
    return (error.splitlines()[-1][:300] if error else "unknown error"), log_path


def _context(dockerfile: str, files: dict[str, bytes | Path]) -> io.BytesIO | tempfile.SpooledTemporaryFile:
    buffer = tempfile.SpooledTemporaryFile(max_size=32 * 1024 * 1024)
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        _add_bytes(tar, "Dockerfile", dockerfile.encode())
        for name, content in files.items():
            if isinstance(content, Path):
                tar.add(content, arcname=name)
            else:
                _add_bytes(tar, name, content)
    buffer.seek(0)
    return buffer


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    info.mode = 0o644
    tar.addfile(info, io.BytesIO(data))


def _lock(key: str) -> threading.Lock:
    with _guard:
        return _build_locks.setdefault(key, threading.Lock())
