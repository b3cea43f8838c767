"""Sharing built images through a registry: push ours, pull them (and mirrored published images) instead of building.

A registry is written `HOST[:PORT][/NAMESPACE]`; `swe-env/instance:x` lives there as
`HOST:PORT/NAMESPACE/swe-env/instance:x`, so every machine that builds the same inputs looks up the
same name (tags are content hashes). A pull is only a shortcut: any failure (the registry is down,
the image is missing, a layer fails the engine's digest check, the image is not one of our layers)
is a one-line reason and the caller builds instead. Plain-http registries are what Docker allows
on loopback; others need TLS or the engine's `insecure-registries`.

The names' checks and `ImagesMode` are imported by `config.EnvConfig`, which must load without the engine's SDK,
so the SDK is imported where an image moves, not at the top.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Literal, get_args

from ..errors import InfrastructureError

ImagesMode = Literal["auto", "published", "build"]
"""Where a task with `environment.image` gets its image: `auto` that image when the engine has it or
can pull it, else a build from the recipe; `published` that image or an error; `build` always a build."""
IMAGES_MODES: tuple[ImagesMode, ...] = get_args(ImagesMode)

Progress = Callable[[str], None]
_REGISTRY = re.compile(r"(?P<host>[A-Za-z0-9.-]+|\[[0-9a-fA-F:]+\])(:(?P<port>\d{1,5}))?(?P<namespace>(/[a-z0-9]+([._-][a-z0-9]+)*)*)")


class RegistryError(InfrastructureError):
    """A push to a registry failed (the message names the image, the registry and the engine's reason)."""


def check_registry(value: str) -> str:
    """`value` as `HOST[:PORT][/NAMESPACE]` (no scheme, no trailing slash), or a ValueError saying why not."""
    text = value.strip()
    host = text.split("/")[0]
    # Docker reads a first component without a dot or a port as a Docker Hub user, not a registry.
    if "://" in text or not _REGISTRY.fullmatch(text) or not ("." in host or ":" in host or host == "localhost"):
        raise ValueError(
            f"registry {value!r}: expected HOST[:PORT][/NAMESPACE] (e.g. 127.0.0.1:5000/team), "
            "a host with a dot or a port, no scheme, lowercase namespace"
        )
    return text


def check_namespace(value: str) -> str:
    """`value` as `[HOST[:PORT]/]NAMESPACE` (a Docker Hub user, or a path in a registry), or a ValueError."""
    text = value.strip().rstrip("/")
    if "://" in text or not text or not _REGISTRY.fullmatch(text):
        raise ValueError(f"published namespace {value!r}: expected [HOST[:PORT]/]NAMESPACE (e.g. swebench, or 127.0.0.1:5000/mirror), no scheme")
    return text


def remote_name(tag: str, registry: str) -> str:
    """Where `tag` (one of our `swe-env/...:...` names) lives in `registry`."""
    return f"{check_registry(registry)}/{tag}"


def mirrored_name(published: str, namespace: str) -> str:
    """A published image (`swebench/sweb.eval.x86_64.django_1776_django-11099:latest`) under another namespace
    (`127.0.0.1:5000/mirror/sweb.eval.x86_64.django_1776_django-11099:latest`): the last path component kept."""
    return f"{namespace.rstrip('/')}/{published.rsplit('/', 1)[-1]}"


def _split(name: str) -> tuple[str, str]:
    repository, _, tag = name.rpartition(":")
    if "/" in tag or not repository:  # a port, not a tag
        return name, "latest"
    return repository, tag


def _first_error(chunks) -> str | None:
    for chunk in chunks:
        if isinstance(chunk, dict) and chunk.get("error"):
            return str(chunk["error"]).strip().splitlines()[0][:300]
    return None


def push(tag: str, registry: str, progress: Progress | None = None) -> str:
    """Push the local image `tag` to `registry`; returns the remote name. Raises RegistryError."""
    import docker.errors

    from ..runtime import engine

    say = progress or (lambda _message: None)
    remote = remote_name(tag, registry)
    api = engine.client().api
    repository, version = _split(remote)
    say(f"pushing {tag} to {remote}")
    try:
        api.tag(tag, repository, version)
        try:
            error = _first_error(api.push(repository, version, stream=True, decode=True))
        finally:
            _untag(remote)
    except docker.errors.DockerException as exc:
        error = str(exc).strip().splitlines()[0][:300]
    if error:
        raise RegistryError(f"pushing {tag} to {registry} failed: {error}")
    return remote


def pull(tag: str, registry: str, kind: str, progress: Progress | None = None) -> str | None:
    """Pull `tag` from `registry` and name it `tag` locally, if it is there and is our `kind` of layer.

    Returns None when it now exists, else the one-line reason it could not be pulled (nothing is left behind)."""
    import docker.errors

    from ..runtime import engine

    say = progress or (lambda _message: None)
    remote = remote_name(tag, registry)
    repository, version = _split(remote)
    api = engine.client().api
    say(f"pulling {remote}")
    try:
        # The engine checks every layer against its digest: a corrupt or missing blob fails the pull.
        error = _first_error(api.pull(repository, version, stream=True, decode=True))
        if error is None:
            labels = (api.inspect_image(remote).get("Config") or {}).get("Labels") or {}
            if labels.get(engine.MANAGED_LABEL) != "1" or labels.get("swe_env.kind") != f"image-{kind}":
                error = f"{remote} is not a swe-env {kind} layer (labels {labels.get('swe_env.kind', 'none')})"
            else:
                api.tag(remote, *_split(tag))
    except docker.errors.DockerException as exc:
        error = str(exc).strip().splitlines()[0][:300]
    _untag(remote)
    return error


def _untag(name: str) -> None:
    """Drop the registry-qualified name (the image stays under its own name, or goes if it has none)."""
    import docker.errors

    from ..runtime import engine

    try:
        engine.client().api.remove_image(name, noprune=False)
    except docker.errors.DockerException:
        pass
