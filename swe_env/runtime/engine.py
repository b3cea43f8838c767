"""The connection to the Docker engine, and the labels every managed object carries.

One client per process: the SDK's HTTP connection pool is thread-safe and reusing it
saves the version handshake on every sandbox.
"""

from __future__ import annotations

import contextlib
import os
import socket
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import docker
import docker.errors
import requests

from ..errors import InfrastructureError
from . import allocator

MANAGED_LABEL = "swe_env.managed"
"""Every container and image swe-env creates carries this label (value "1")."""

DEFAULT_TTL_SECONDS = 4 * 3600
"""How long a container may live: its main process ends it then, and past its `swe_env.expires` label
`collect_garbage` (`swe-env gc`) removes it from the host even when code inside froze that process."""

RUN_ID = os.environ.get("SWE_ENV_RUN_ID") or uuid.uuid4().hex[:12]
"""Identifies this process's run in container labels (override with SWE_ENV_RUN_ID)."""


class EngineUnavailable(InfrastructureError):
    """No Docker engine answers: an infrastructure problem, not the user's or the agent's."""


_client: docker.DockerClient | None = None
_lock = threading.Lock()
_extra_labels: dict[str, str] = {}


def client() -> docker.DockerClient:
    """The process-wide Docker client; raises EngineUnavailable with a clear message."""
    global _client
    with _lock:
        if _client is None:
            try:
                candidate = docker.from_env(timeout=120, max_pool_size=64)
                candidate.ping()
            except docker.errors.DockerException as exc:
                raise EngineUnavailable(
                    "no Docker engine answers "
                    f"({os.environ.get('DOCKER_HOST', 'unix:///var/run/docker.sock')}): {_short(exc)}. "
                    "Run `make setup` (installs and starts Debian's docker.io when run as root), "
                    "or install Docker and start it."
                ) from None
            _client = candidate
            allocator.keep_large_buffers_out_of_arenas()  # this process drives containers: see allocator
        return _client


def managed_labels(kind: str, ttl_seconds: float = DEFAULT_TTL_SECONDS, **extra: str) -> dict[str, str]:
    """Labels for a container or image: managed flag, kind, run, owner and expiry (now + `ttl_seconds`:
    `collect_garbage` removes the container past it from the host, whatever runs or is frozen inside)."""
    labels = {
        MANAGED_LABEL: "1",
        "swe_env.kind": kind,
        "swe_env.run": RUN_ID,
        "swe_env.owner": f"{socket.gethostname()}:{os.getpid()}",
        "swe_env.expires": str(int(time.time() + ttl_seconds)),
        **_extra_labels,
    }
    labels.update({f"swe_env.{key}": str(value) for key, value in extra.items()})
    return labels


@contextlib.contextmanager
def labelled(**extra: str):
    """Add `swe_env.<key>` labels to every container this process starts meanwhile (process-wide: a Ray
    worker runs one episode at a time and labels its containers with the episode's attempt)."""
    saved = dict(_extra_labels)
    _extra_labels.update({f"swe_env.{key}": str(value) for key, value in extra.items()})
    try:
        yield
    finally:
        _extra_labels.clear()
        _extra_labels.update(saved)


# ---------------------------------------------------------------- a container's lifetime
# Every container swe-env makes is created here and removed here. Sandboxes (episodes, graders,
# traces, corpora) start theirs with `run_container`; the image builder's probe and the Harbor
# importer's copy-out make throw-away ones with `create_container`. All carry `managed_labels`, so
# `collect_garbage`, the CLI's `gc` and the TTL in each sandbox's main process find what a crash
# left; all removal is `remove_container` (the sandbox's close, close-all at exit, the pool, gc,
# evaluate's stop, a lost Ray attempt's clean-up).


def run_container(image: str, command: list[str], labels: dict[str, str], **options: Any) -> Any:
    """Start a detached container of ours: `labels` are the `managed_labels` the caller made (a sandbox
    keeps them to find its container again); `options` are the SDK's `containers.run` keywords (name,
    limits, network, ...). Two engine calls, create and start: the SDK's `run` inspects the new container
    too, and pulls an image it lacks; the caller inspects when it needs to (`Container.reload`), and a
    missing image is `ImageNotFound` at once."""
    container = _created(image, command, labels, options)
    client().api.start(container.id)
    return container


def run_attached(image: str, command: list[str], labels: dict[str, str], **options: Any) -> tuple[Any, Any]:
    """`run_container` with the container's stdin open and its stdio attached before it starts (as `docker run
    -i` does): three engine calls, create, attach and start, no exec. Returns the container and the attached
    stream (the SDK's socket: stdout and stderr multiplexed in frames; `raw_socket` gives the socket). The
    container's stdin closes when that stream does (StdinOnce); use a log driver of `none`, or all the stream
    carries is also written to the engine's log."""
    container = _created(image, command, labels, {**options, "stdin_open": True})
    stream = client().api.attach_socket(container.id, params={"stdin": 1, "stdout": 1, "stderr": 1, "stream": 1})
    try:
        client().api.start(container.id)
    except BaseException:
        stream.close()
        raise
    return container, stream


def _created(image: str, command: list[str], labels: dict[str, str], options: dict[str, Any]) -> Any:
    from docker.models.containers import _create_container_args  # the SDK's own mapping of run's keywords

    engine = client()
    created = engine.api.create_container(
        **_create_container_args({**options, "image": image, "command": command, "labels": labels, "version": engine.api._version})
    )
    return engine.containers.prepare_model({"Id": created["Id"]})


def create_container(image: str, command: list[str], kind: str, **options: Any) -> Any:
    """Create (not start) a throw-away container of ours, labelled as `kind`; remove it with `remove_container`."""
    return client().containers.create(image, command, labels=managed_labels(kind), **options)


_REMOVE_ATTEMPTS = 3
"""Tries of a removal the engine fails with an error of its own (a loaded engine's "Could not kill running
container ..., did not receive an exit event"), `_REMOVE_BACKOFF` seconds times the try apart."""
_REMOVE_BACKOFF = 0.5


def remove_container(container: str, wait: float = 15.0) -> bool:
    """Remove a container (name or id) and everything it holds; True once it is gone (or was never
    there), False when the engine cannot be reached (its restart ends our auto-remove containers, and
    atexit or gc tries again). A removal already under way (auto-remove got there first) is waited
    out for up to `wait` seconds (with `wait=0` it counts as done: gc and the quiet remove do not wait).
    An error of the engine's own is tried again (`_REMOVE_ATTEMPTS`, only when `wait` is not 0); other
    engine errors are raised."""
    for attempt in range(1, _REMOVE_ATTEMPTS + 1):
        try:
            client().api.remove_container(container, force=True)
        except docker.errors.NotFound:
            return True
        except docker.errors.APIError as exc:
            if "already in progress" not in str(exc):
                if exc.is_server_error() and wait > 0 and attempt < _REMOVE_ATTEMPTS:
                    time.sleep(_REMOVE_BACKOFF * attempt)
                    continue
                raise
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline:
                try:
                    client().api.inspect_container(container)
                except docker.errors.NotFound:
                    return True
                time.sleep(0.05)
        except requests.exceptions.ConnectionError:
            return False
        return True
    return True  # not reached: the last try returns or raises


def remove_quietly(container: str) -> None:
    """`remove_container`, ignoring any error (best effort: the TTL and gc catch what is left)."""
    try:
        remove_container(container, wait=0)
    except Exception:  # noqa: BLE001 - best effort; the TTL and gc catch what is left
        pass


# ---------------------------------------------------------------- what docker-py has no public call for
# The SDK's private helpers, wrapped once here (a new SDK version breaks this block, nowhere else).


@contextlib.contextmanager
def container_changes(container_id: str, timeout: float, chunk: int) -> Iterator[Iterator[bytes]]:
    """The engine's list of a container's changes (`docker diff`) as a stream of JSON chunks of at most
    `chunk` bytes, closed when the caller is done (so it may stop reading at any point; the SDK's `diff()`
    reads the whole list into memory). `timeout`: seconds the engine may take to start answering."""
    api = client().api
    response = api._get(api._url("/containers/{0}/changes", container_id), stream=True, timeout=timeout)
    try:
        api._raise_for_status(response)
        yield response.iter_content(chunk)
    finally:
        response.close()


def stat_path(container_id: str, path: str, timeout: float) -> requests.Response:
    """The engine's answer to a HEAD of a container's archive at `path` (its stat in a header, no
    content: `streams.path_stat` reads it; 404 when there is no such path)."""
    api = client().api
    return api.head(api._url("/containers/{0}/archive", container_id), params={"path": path}, timeout=timeout)


def raw_socket(response: Any) -> Any:
    """The socket under the SDK's wrapper of an attached exec (`exec_start(socket=True)`)."""
    return getattr(response, "_sock", response)


def is_local() -> bool:
    """Whether the engine is this machine's (reached through its local socket)."""
    return client().api.base_url == "http+docker://localhost"


def _short(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else type(exc).__name__


def collect_garbage(everything: bool = False, labels: dict[str, str] | None = None) -> list[str]:
    """Remove managed containers whose owner process is gone or whose time-to-live has passed.

    With `everything`, remove every managed container. With `labels` (`swe_env.<key>` values), only
    containers carrying all of them are looked at, and with `everything` all of those go (a rollout
    removes what a lost Ray worker left of one episode this way). Returns the removed names.
    """
    host = socket.gethostname()
    removed = []
    wanted = [f"{MANAGED_LABEL}=1", *(f"swe_env.{key}={value}" for key, value in (labels or {}).items())]
    # One list call (not the SDK's per-container inspect): containers may vanish meanwhile.
    for entry in client().api.containers(all=True, filters={"label": wanted}):
        labels = entry.get("Labels") or {}
        if "swe_env.owner" not in labels and not everything:
            # Image labels are inherited: a container someone started from one of our images
            # (a compose service, a debugging shell) carries swe_env.managed but is not ours.
            continue
        owner_host, _, owner_pid = labels["swe_env.owner"].partition(":") if "swe_env.owner" in labels else ("", "", "")
        expires = labels.get("swe_env.expires", "")
        expired = expires.isdigit() and int(expires) < time.time()
        orphaned = owner_host == host and owner_pid.isdigit() and not _pid_alive(int(owner_pid))
        if everything or expired or orphaned or entry.get("State") in ("exited", "dead"):
            try:
                if remove_container(entry["Id"], wait=0):
                    removed.append((entry.get("Names") or [entry["Id"][:12]])[0].lstrip("/"))
            except (docker.errors.DockerException, requests.RequestException):
                pass  # one container the engine cannot remove now (it timed out on it) holds up no other
    return removed


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
