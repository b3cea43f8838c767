"""Files in a container: read, write, edit in place, list, remove, through a private bash session.

Files move through a second, private bash session (base64 over the exec socket), so the agent's shell
state (aliases, functions, cwd) cannot interfere and a file operation costs a few milliseconds where
the archive API costs tens; payloads over `_INLINE_LIMIT` go through the archive API. `read_from_engine`
runs no binary of the container: how the host reads what code it does not trust may have replaced.

The rule "inside the work directory" is owned here once: `Files.confined()` is the view the agent's
file tools use, which refuses a path that is outside the workdir as written or once its links are
resolved inside the container.
"""

from __future__ import annotations

import base64
import io
import posixpath
import shlex
import tarfile
import time
import uuid
from dataclasses import dataclass

import docker.errors
import requests

from . import engine
from .lifecycle import CHANGES_CHUNK, Lifecycle, SandboxError
from .shell import CommandResult, ShellSession
from .streams import ChunkReader

_FILE_TIMEOUT = 120.0
_INLINE_LIMIT = 32 * 1024
"""Payloads up to this size go through the private shell; larger ones through the archive API."""
MAX_READ_BYTES = 64 * 1024 * 1024
"""The most one `read_file` brings to the host (and its default): a file is never read whole
because it is large (a sparse `truncate -s 100G` file costs nothing in the container)."""
_FILES_OUTPUT_LIMIT = 4 * (MAX_READ_BYTES // 3 + 1) + 64 * 1024
"""The private shell's output bound: one maximal read in base64 plus its header line."""
SYSTEM_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
"""PATH for host-side commands after the agent acted: system folders only (not the venv)."""
_GO_MODE_DIR = 1 << 31
_GO_MODE_TYPE = _GO_MODE_DIR | 1 << 27 | 1 << 26 | 1 << 25 | 1 << 24 | 1 << 21 | 1 << 19
"""Go's `fs.FileMode` type bits in the engine's stat (dir, symlink, device, pipe, socket, char device, irregular)."""


@dataclass
class FileContent:
    """What `Files.read` brought back: at most its `max_bytes` of the file."""

    data: bytes
    mode: int
    """Permission bits."""
    size: int
    """The whole file's size in bytes (as stat saw it just before the read)."""

    @property
    def truncated(self) -> bool:
        return self.size > len(self.data)


class FileShell:
    """The private bash of one container (started on first use; `reset` after every process was stopped)."""

    def __init__(self, life: Lifecycle):
        self.life = life
        self.session: ShellSession | None = None
        self.ids: tuple[int, int] | None = None

    def run(self, script: str, timeout: float = _FILE_TIMEOUT) -> CommandResult:
        if self.session is None:
            # Only coreutils run here: the system folders, not the image's PATH (it starts with the venv).
            spec = self.life.spec
            self.session = ShellSession(
                engine.client().api,
                self.life.handle.id,
                "/",
                {**dict(spec.env), "PATH": SYSTEM_PATH},
                output_limit=_FILES_OUTPUT_LIMIT,
                strip_ansi=False,
                user=spec.user or "",
                reset_container=self.life.stop_all_processes,
            )
            self.session.start()
        return self.session.run(script, timeout=timeout)

    def oom_kills(self, known: int) -> int:
        """How many processes the kernel has killed for memory in the container (its cgroup's count), or
        `known` when it cannot be read."""
        # cgroup v1 (memory.oom_control) or v2 (memory.events): "oom_kill N".
        script = "cat /sys/fs/cgroup/memory/memory.oom_control /sys/fs/cgroup/memory.events 2>/dev/null | head -c 65536; true"
        try:
            text = self.run(script).output
        except Exception:  # noqa: BLE001 - only a note depends on it
            return known
        counts = [int(line.split()[1]) for line in text.splitlines() if line.startswith("oom_kill ")]
        return max(counts, default=known)

    def close(self, forget: bool = False) -> None:
        if self.session is not None:
            self.session.close()  # its bash is gone; it starts anew on next use
        if forget:
            self.session = None

    def close_and_wait(self, seconds: float) -> bool:
        """Close the bash and wait until the engine says its exec has ended (closing its socket ends bash's input, and
        bash exits a moment later, on a loaded engine a longer one): True once it has, False past `seconds` or when
        the engine cannot tell."""
        exec_id = self.session.exec_id if self.session is not None else None
        self.close()
        if exec_id is None:
            return True
        api, deadline = engine.client().api, time.monotonic() + seconds
        while True:
            try:
                if not api.exec_inspect(exec_id).get("Running"):
                    return True
            except docker.errors.NotFound:
                return True
            except (docker.errors.DockerException, requests.RequestException):
                return False
            if time.monotonic() > deadline:
                return False
            time.sleep(0.01)


class Files:
    """The files of one container; `root` set (`confined()`): only those inside it, links resolved."""

    def __init__(self, shell: FileShell, root: str | None = None):
        self._shell = shell
        self.life = shell.life
        self.workdir = shell.life.spec.workdir
        self.root = root

    def confined(self) -> Files:
        """The view that refuses any path outside the workdir (as written, or once its links are resolved
        in the container: PermissionError): what the agent's file tools go through."""
        return Files(self._shell, self.workdir)

    def run_script(self, script: str, timeout: float = _FILE_TIMEOUT) -> CommandResult:
        """`script` in the private bash (from /, the system PATH, as the sandbox's user, its output bounded; started
        on first use), for the host's own steps: the grader's before the tests run (`grading.prepare`). Not
        through the confined view (PermissionError): the agent's tools run no script."""
        if self.root is not None:
            raise PermissionError(f"the view confined to {self.root} runs no script")
        return self._shell.run(script, timeout=timeout)

    def close_shell(self, wait: float | None = None) -> bool:
        """End the private bash now (its next use starts another). With `wait`, wait up to that many seconds until the
        engine says its exec has ended (`FileShell.close_and_wait`); True once it has (always True without `wait`)."""
        if wait is None:
            self._shell.close()
            return True
        return self._shell.close_and_wait(wait)

    def resolve(self, path: str) -> str:
        """An absolute, normalised path: relative paths are taken from the workdir."""
        if not path.startswith("/"):
            path = posixpath.join(self.workdir, path)
        return posixpath.normpath(path)

    def inside(self, path: str) -> bool:
        """Whether `path` (resolved, links not followed) is the workdir or under it."""
        full = self.resolve(path)
        return full == self.workdir or full.startswith(self.workdir.rstrip("/") + "/")

    def _run(self, script: str, path: str) -> str:
        if self.root is not None:
            if not self.inside(path):
                raise PermissionError(f"{path} is outside the repository ({self.root})")
            # Resolve links inside the container: a link pointing out of the workdir is refused.
            q, root = shlex.quote(path), shlex.quote(self.root)
            script = f'r=$(realpath -m -- {q}) && case "$r" in {root}|{root}/*) : ;; *) echo "__OUTSIDE__ $r"; false ;; esac && {{ {script}\n}}'
        result = self._shell.run(script)
        if result.output.startswith("__OUTSIDE__ "):
            real = result.output.split(" ", 1)[1].strip()
            raise PermissionError(f"{path} resolves to {real}, outside the repository ({self.workdir})")
        if result.exit_code != 0:
            reason = result.output.strip().splitlines()[-1:] or result.notes or ["unknown error"]
            raise OSError(f"{path}: {reason[0].split(': ')[-1]}")
        return result.output

    def read(self, path: str, *, max_bytes: int = MAX_READ_BYTES, tail: bool = False) -> FileContent:
        """At most `max_bytes` of a regular file (links followed): its first bytes, or with
        `tail` its last, with its permission bits and whole size; never more than
        `MAX_READ_BYTES`, whatever the file's size (the container cuts it before it travels).

        FileNotFoundError (also for dangling or looping links), IsADirectoryError, or OSError.
        """
        path = self.resolve(path)
        q = shlex.quote(path)
        count = max(0, min(int(max_bytes), MAX_READ_BYTES))
        cut = f"tail -c {count}" if tail else f"head -c {count}"
        script = (
            f"if [ -d {q} ]; then echo D; elif [ ! -e {q} ]; then echo N; elif [ ! -f {q} ]; then echo S; "
            f"else stat -L -c '%a %s' -- {q} && ( set -o pipefail; {cut} -- {q} | base64 -w0 ); fi"
        )
        head, _, body = self._run(script, path).partition("\n")
        if head == "N":
            raise FileNotFoundError(path)
        if head == "D":
            raise IsADirectoryError(path)
        if head == "S":
            raise OSError(f"{path} is not a regular file")
        try:
            mode, size = head.split()
            data = base64.b64decode(body, validate=True)
        except ValueError:
            raise OSError(f"{path}: the file could not be read") from None
        if len(data) > count:  # head/tail never give more; what the host keeps is bounded all the same
            raise OSError(f"{path}: more bytes came back than were asked for")
        return FileContent(data, int(mode, 8), int(size))

    def read_from_engine(self, path: str, max_bytes: int) -> FileContent:
        """At most `max_bytes` of a regular file, through the engine's archive API: no binary of
        the container runs, so this is how the host reads what code it does not trust may have
        replaced. The size comes first (the engine's stat); a link is not followed (OSError).

        FileNotFoundError, IsADirectoryError, OSError (not a regular file), SandboxError (the engine failed).
        """
        path = self.resolve(path)
        api = engine.client().api
        try:
            try:
                chunks, stat = api.get_archive(self.life.handle.id, path, chunk_size=CHANGES_CHUNK)
            except docker.errors.NotFound:
                raise FileNotFoundError(path) from None
            mode = int(stat.get("mode") or 0)
            if mode & _GO_MODE_DIR:
                raise IsADirectoryError(path)
            if mode & _GO_MODE_TYPE:
                raise OSError(f"{path} is not a regular file")
            stream = ChunkReader(chunks)
            try:
                with tarfile.open(fileobj=stream, mode="r|") as archive:
                    member = archive.next()
                    handle = archive.extractfile(member) if member is not None and member.isfile() else None
                    if handle is None:
                        raise OSError(f"{path} is not a regular file")
                    data = handle.read(max(int(max_bytes), 0))
            finally:
                stream.close()
        except (docker.errors.DockerException, requests.RequestException, tarfile.TarError) as exc:
            raise SandboxError(f"{path} in {self.life.name} could not be read through the engine: {exc}") from None
        return FileContent(data, mode & 0o7777, int(stat.get("size") or len(data)))

    def list_dir(self, path: str, depth: int = 2, max_entries: int = 10_000) -> list[str]:
        """Paths under a folder, `depth` levels deep, sorted, without .git; at most `max_entries`
        (find's first ones; a last entry "..." says there were more)."""
        path = self.resolve(path)
        q = shlex.quote(path)
        limit = max(int(max_entries), 1)
        script = f"find {q} -maxdepth {int(depth)} -not -path '*/.git' -not -path '*/.git/*' | head -n {limit + 1} | head -c {limit * 4096}"
        entries = self._run(script, path).splitlines()
        more = len(entries) > limit
        entries = sorted(entries[:limit])
        return [*entries, "..."] if more else entries

    def remove(self, path: str) -> None:
        path = self.resolve(path)
        self._run(f"rm -f -- {shlex.quote(path)}", path)

    def write(self, path: str, data: bytes, mode: int | None = None) -> None:
        """Write a file, creating parent folders; an existing file keeps its mode unless one is given."""
        path = self.resolve(path)
        if len(data) > _INLINE_LIMIT:
            # bash reads its input one byte at a time: large payloads go through the archive API.
            self._write_large(path, data, mode)
            return
        q = shlex.quote(path)
        encoded = base64.b64encode(data).decode()
        script = f"mkdir -p -- \"$(dirname -- {q})\" && printf %s '{encoded}' | base64 -d > {q}"
        if mode is not None:
            script += f" && chmod {mode & 0o7777:o} {q}"
        self._run(script, path)

    def replace_bytes(self, path: str, start: int, end: int, data: bytes) -> None:
        """Replace bytes [start, end) of an existing file with `data`, sending only `data`.

        An edit of one line in a large file then costs one small round trip, not the file.
        """
        path = self.resolve(path)
        if len(data) > _INLINE_LIMIT:
            content = self.read(path)
            if content.truncated:
                raise OSError(f"{path}: the file is {content.size} bytes, too large to edit in place (at most {MAX_READ_BYTES})")
            self._write_large(path, content.data[:start] + data + content.data[end:], None)
            return
        q = shlex.quote(path)
        encoded = base64.b64encode(data).decode()
        script = (
            f"t=$(mktemp) && {{ head -c {int(start)} -- {q} && printf %s '{encoded}' | base64 -d "
            f'&& tail -c +{int(end) + 1} -- {q}; }} > "$t" && cat -- "$t" > {q}; '
            'rc=$?; rm -f -- "$t"; [ $rc = 0 ]'
        )
        self._run(script, path)

    def write_many(self, files: dict[str, bytes]) -> None:
        """Write several files (path -> bytes; parent folders created, an existing file keeps its mode, a new one
        gets 644) with one archive and one step however large they are, where `write` costs an archive each past
        `_INLINE_LIMIT` (the engine unpacks each in a process of its own: tens of milliseconds quiet, far more
        loaded) and a step each. The grader's recorder files and key are such. The confined view writes them one
        by one (its rule is checked per path)."""
        if self.root is not None or len(files) < 2:
            for path, data in files.items():
                self.write(path, data)
            return
        self._write_staged([(self.resolve(path), data, None) for path, data in files.items()])

    def _write_large(self, path: str, data: bytes, mode: int | None) -> None:
        """Write a large payload: the archive API drops it at an unguessable path in /tmp, then
        the private shell, as the sandbox's user, copies it into place."""
        self._write_staged([(path, data, mode)])

    def _write_staged(self, files: list[tuple[str, bytes, int | None]]) -> None:
        """Write `files` (resolved path, bytes, mode or None): one archive drops them in a folder of an
        unguessable name in /tmp, then one step of the private shell, as the sandbox's user, copies each
        into place and removes the folder.

        The engine unpacks archives as root whatever the user is; copying as the user keeps the
        files' owner right and keeps a link swapped in at the last moment from reaching places
        the user may not write.
        """
        uid, gid = self._user_ids()
        staged = f"/tmp/.swe-env-upload-{uuid.uuid4().hex}"
        buffer = io.BytesIO()
        now = int(time.time())
        with tarfile.open(fileobj=buffer, mode="w") as tar:
            folder = tarfile.TarInfo(staged.lstrip("/"))
            folder.type, folder.mode, folder.mtime, folder.uid, folder.gid = tarfile.DIRTYPE, 0o700, now, uid, gid
            tar.addfile(folder)  # the user's own, so the user can remove what is staged in it
            for index, (_path, data, _mode) in enumerate(files):
                info = tarfile.TarInfo(f"{staged.lstrip('/')}/{index}")
                info.size, info.mode, info.mtime, info.uid, info.gid = len(data), 0o600, now, uid, gid
                tar.addfile(info, io.BytesIO(data))
        first = files[0][0]
        try:
            ok = self.life.handle.put_archive("/", buffer.getvalue())
        except docker.errors.DockerException as exc:
            raise OSError(f"{first}: cannot write ({str(exc).splitlines()[0][:200]})") from None
        if not ok:
            raise OSError(f"{first}: cannot write")
        s = shlex.quote(staged)
        copies = []
        for index, (path, _data, mode) in enumerate(files):
            q = shlex.quote(path)
            # An existing file keeps its mode (cat > file); a new one gets `mode` or 644.
            chmod = f" && chmod {mode & 0o7777:o} {q}" if mode is not None else f' && {{ [ -n "$existed" ] || chmod 644 {q}; }}'
            copies.append(f'existed=$([ -e {q} ] && echo 1); mkdir -p -- "$(dirname -- {q})" && cat -- {s}/{index} > {q}{chmod}')
        script = "{ " + " && ".join(copies) + f"; }}; rc=$?; rm -rf -- {s}; [ $rc = 0 ]"
        self._run(script, first)

    def _user_ids(self) -> tuple[int, int]:
        if self._shell.ids is None and self.life.spec.user in (None, "", "root", "0"):
            self._shell.ids = (0, 0)  # root is uid and gid 0 in any image: no round trip to ask
        if self._shell.ids is None:
            out = Files(self._shell)._run("id -u; id -g", "id").split()
            self._shell.ids = (int(out[0]), int(out[1]))
        return self._shell.ids
