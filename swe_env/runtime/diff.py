"""The agent's work as a diff, taken so that nothing the agent set up in the container takes part.

Also where the record of the installed tree lives (`INSTALLED_TREE`): the image builder writes it,
the diff reads it, so `build` imports it from here (downward).
"""

from __future__ import annotations

from .execute import Executor
from .files import SYSTEM_PATH
from .lifecycle import SandboxError

INSTALLED_TREE = "/etc/swe-env/installed-tree"
"""Where an instance image records the git tree its install left (base_commit plus what a recipe's install
edited): the diff's base, so what install changed is not the agent's work."""
MAX_DIFF_BYTES = 32 * 1024 * 1024
"""A diff larger than this is refused (SandboxError): no real fix is that large."""

_CLEAN_ENV = ("/usr/bin/env", "-i", f"PATH={SYSTEM_PATH}", "HOME=/nonexistent", "LANG=C.UTF-8")
"""Prefix of an argv that runs it with nothing of the image's, the task's or anyone's environment."""
_DIFF_SCRIPT = r"""set -eu
work=$1 base=$2 limit=$3
g=/usr/bin/git; [ -x "$g" ] || g=git
tree=''; read -r -n 40 tree < __INSTALLED_TREE__ 2>/dev/null || true
d=$(mktemp -d); trap 'rm -rf -- "$d"' EXIT
mkdir -p -- "$d/objects/info" "$d/refs" "$d/info"
printf 'ref: refs/heads/main\n' > "$d/HEAD"
printf '[core]\n\trepositoryformatversion = 0\n\tbare = false\n' > "$d/config"
printf '%s\n' "$work/.git/objects" > "$d/objects/info/alternates"
printf '* !text !eol !filter !ident !working-tree-encoding !diff\n' > "$d/info/attributes"
head -c 1048576 -- "$work/.git/info/exclude" > "$d/info/exclude" 2>/dev/null || true
export GIT_DIR="$d" GIT_WORK_TREE="$work" GIT_INDEX_FILE="$d/index" GIT_CONFIG_NOSYSTEM=1 \
  GIT_CONFIG_GLOBAL=/dev/null GIT_ATTR_NOSYSTEM=1 GIT_TERMINAL_PROMPT=0
set -- -c core.hooksPath=/dev/null -c core.fsmonitor=false -c core.untrackedCache=false \
  -c core.attributesFile=/dev/null -c core.excludesFile=/dev/null -c core.autocrlf=false \
  -c core.pager=cat -c safe.directory='*' -c diff.external=
if [[ $tree =~ ^[0-9a-f]{40}$ ]] && "$g" "$@" cat-file -e "$tree^{tree}" 2>/dev/null; then base=$tree; fi
cd -- "$work"
head -c 268435456 -- "$work/.git/index" > "$d/index" 2>/dev/null || rm -f -- "$d/index"
# git add reads every new or changed file whole: first refuse one larger than a diff may be
# (a sparse `truncate -s 100G` file would take minutes to hash and make a huge diff).
big=$("$g" "$@" ls-files -z --others --modified --exclude-standard -- . 2>/dev/null \
  | xargs -0r stat -c '%s %n' -- 2>/dev/null | awk -v max="$limit" '$1 > max { print; exit }') || true
if [ -n "$big" ]; then echo "the work tree has a file over the diff limit of $limit bytes: $big" >&2; exit 3; fi
if ! "$g" "$@" add -A -- . >/dev/null 2>&1; then
  rm -f -- "$d/index"; "$g" "$@" add -A --ignore-errors -- . >/dev/null 2>&1 || true
fi
"$g" "$@" diff --cached --binary --no-color --no-ext-diff --no-textconv "$base" -- > "$d/out"
size=$(stat -c %s -- "$d/out")
if [ "$size" -gt "$limit" ]; then echo "the diff is $size bytes, over the limit of $limit bytes" >&2; exit 3; fi
cat -- "$d/out"
""".replace("__INSTALLED_TREE__", INSTALLED_TREE)
"""The agent's diff, computed so nothing the agent configured runs or changes it: a fresh git
dir of ours (objects borrowed from the repository through `alternates`, the image's ignore
list copied) so the repository's `.git/config` is never read (no filters, `diff.external`,
fsmonitor, hooks, pager); no system or global config; `info/attributes` unsets every
conversion and diff driver the work tree's `.gitattributes` might name; the agent's index
is copied only as a stat cache (a fresh one when git cannot use it); environment cleared."""


def take_diff(executor: Executor, base_commit: str) -> str:
    """`git diff` of the working tree (new files included, binary-safe) against the image's tree.

    That is the tree install left (`INSTALLED_TREE`: base_commit plus what a recipe's install edited),
    or base_commit in images without the record. Nothing the agent set up takes part (see
    `_DIFF_SCRIPT`): git runs by absolute path as the sandbox's user, in a cleared environment, with a
    git dir and index of its own, so the agent's config (filters, `diff.external`, fsmonitor, hooks),
    attributes, staging and environment neither run nor change anything. A record the agent rewrote, or
    objects it replaced, only change the agent's own diff, which it could change by editing files
    anyway. A diff over `MAX_DIFF_BYTES` is refused (SandboxError).
    """
    life = executor.life
    argv = [*_CLEAN_ENV, "/bin/bash", "-c", _DIFF_SCRIPT, "swe-env-diff", life.spec.workdir, base_commit, str(MAX_DIFF_BYTES)]
    result = executor.exec(argv, timeout=120, idempotent=True, max_output=MAX_DIFF_BYTES + 64 * 1024)
    if result.exit_code != 0 or result.cut:
        raise SandboxError(f"git diff failed in {life.name} (exit {result.exit_code}): {result.output[-300:]}")
    return result.stdout
