"""The problem statement of a synthesized task: a template filled from the failing tests' names and messages.

A user replaces it by writing their own `problem_statement`; `TEMPLATE` is the text, `write` fills it.
"""

from __future__ import annotations

TEMPLATE = """\
{count} test(s) of {repository} fail that used to pass.

{failures}

The cause is in the library code, not in the tests: fix it so that these tests pass again,
without changing the tests, and keep the rest of the suite passing.
"""
MAX_LISTED = 10


def write(repository: str, failing: list[str], messages: dict[str, str], hidden: bool = False) -> str:
    """The statement for tests `failing` (node ids) with their failure messages (first lines)."""
    lines = []
    for test in failing[:MAX_LISTED]:
        message = messages.get(test, "")
        lines.append(f"- `{test}`" + (f": {message}" if message else ""))
    if len(failing) > MAX_LISTED:
        lines.append(f"- and {len(failing) - MAX_LISTED} more")
    failures = ("Failing checks (the tests are not in your copy of the repository):\n" if hidden else "Failing tests:\n") + "\n".join(lines)
    return TEMPLATE.format(count=len(failing), repository=repository, failures=failures)
