"""Unified diff reading (pure logic)."""

import pytest

from swe_env.grading import diffs

PATCH = """\
diff --git a/pkg/mod.py b/pkg/mod.py
index 1111111..2222222 100644
--- a/pkg/mod.py
+++ b/pkg/mod.py
@@ -1,3 +1,3 @@
 def f(x):
-    return x + 1
+    return x + 2
 
diff --git a/pkg/new.py b/pkg/new.py
new file mode 100644
index 0000000..3333333
--- /dev/null
+++ b/pkg/new.py
@@ -0,0 +1,2 @@
+A = 1
+B = 2
diff --git a/old.txt b/old.txt
deleted file mode 100644
index 4444444..0000000
--- a/old.txt
+++ /dev/null
@@ -1 +0,0 @@
-bye
diff --git a/tail.txt b/tail.txt
--- a/tail.txt
+++ b/tail.txt
@@ -1 +1 @@
-end
\\ No newline at end of file
+end
"""


def test_parse_files_and_hunks():
    files = diffs.parse(PATCH)
    assert [f.path for f in files] == ["pkg/mod.py", "pkg/new.py", "old.txt", "tail.txt"]
    mod, new, old, tail = files
    assert mod.hunks[0].old == "def f(x):\n    return x + 1\n\n"
    assert mod.hunks[0].new == "def f(x):\n    return x + 2\n\n"
    assert new.old_path is None and new.hunks[0].new == "A = 1\nB = 2\n"
    assert old.new_path is None and old.hunks[0].old == "bye\n"
    assert tail.hunks[0].old == "end" and tail.hunks[0].new == "end\n"


def test_touched_paths_in_order_without_duplicates():
    assert diffs.touched_paths(PATCH) == ["pkg/mod.py", "pkg/new.py", "old.txt", "tail.txt"]
    assert diffs.touched_paths("") == []


def test_quoted_paths_are_read_as_git_and_patch_read_them():
    # GNU patch decodes `"a/\056git/config"` to `.git/config`: the grader's `.git/` refusal must see it too.
    patch = 'diff --git "a/\\056git/config" "b/\\056git/config"\n--- "a/\\056git/config"\n+++ "b/\\056git/config"\n@@ -1 +1 @@\n-x\n+y\n'
    assert diffs.touched_paths(patch) == [".git/config"]
    unicode_name = 'diff --git "a/caf\\303\\251.py" "b/caf\\303\\251.py"\n--- "a/caf\\303\\251.py"\n+++ "b/caf\\303\\251.py"\n@@ -1 +1 @@\n-x\n+y\n'
    assert diffs.touched_paths(unicode_name) == ["café.py"]
    assert diffs.touched_paths('--- "a/tab\\there.py"\n+++ "b/tab\\there.py"\n@@ -1 +1 @@\n-x\n+y\n') == ["tab\there.py"]


def test_a_huge_hunk_parses_in_linear_work(monkeypatch):
    # A hunk's text used to grow by `+=` on the Hunk's attribute: a new string per line, so an
    # 800k-line hunk took 37 s. Now each side is joined once; count the writes to the text
    # (a deterministic measure, unlike time): a constant per hunk, not one per line.
    writes = {"old": 0, "new": 0}
    plain_setattr = diffs.Hunk.__setattr__

    def counting(self, name, value):
        if name in writes:
            writes[name] += 1
        plain_setattr(self, name, value)

    monkeypatch.setattr(diffs.Hunk, "__setattr__", counting)
    n = 300_000
    removed = "".join(f"-old {i}\n" for i in range(n))
    added = "".join(f"+new {i}\n" for i in range(n))
    text = (
        f"diff --git a/big.txt b/big.txt\n--- a/big.txt\n+++ b/big.txt\n@@ -1,{n + 1} +1,{n + 1} @@\n"
        f" context\n{removed}{added}\\ No newline at end of file\n"
    )
    (patch,) = diffs.parse(text)
    (hunk,) = patch.hunks
    assert hunk.old == "context\n" + removed.replace("-old", "old")
    assert hunk.new == "context\n" + added.replace("+new", "new")[:-1]  # the last line has no newline
    assert writes["old"] <= 3 and writes["new"] <= 3, writes


GIT_READS = {
    "rename": "diff --git a/x b/z\nsimilarity index 90%\nrename from x\nrename to z\n--- a/x\n+++ b/z\n@@ -1 +1 @@\n-a\n+b\n",
    "form feed in a line": "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\x0c\n",
    "U+2028 in a line": "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\u2028c\n",
    "a header after a form feed": (
        "diff --git a/x b/x\n--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n\x0cdiff --git a/c.py b/c.py\n"
        "new file mode 100644\n--- /dev/null\n+++ b/c.py\n@@ -0,0 +1 @@\n+x\n"
    ),
    "quoted name": 'diff --git "a/sp ace" "b/sp ace"\nnew file mode 100644\n--- /dev/null\n+++ "b/sp ace"\n@@ -0,0 +1 @@\n+x\n',
    "CRLF": "diff --git a/x b/x\r\n--- a/x\r\n+++ b/x\r\n@@ -1 +1 @@\r\n-a\r\n+b\r\n",
    "header and names disagree": "diff --git a/x b/x\n--- a/y\n+++ b/y\n@@ -1 +1 @@\n-a\n+b\n",
    "no git header": "--- a/x\n+++ b/x\n@@ -1 +1 @@\n-a\n+b\n",
}


@pytest.mark.parametrize("name", list(GIT_READS))
def test_every_path_git_reads_in_a_patch_is_one_we_read(tmp_path, name):
    """The grader restores what it knows a patch touches: git's own reading (`git apply --numstat`) must be covered."""
    import subprocess

    subprocess.run(["git", "init", "-q", str(tmp_path)], check=True)
    read = (
        subprocess.run(["git", "apply", "--numstat", "-z", "-"], input=GIT_READS[name].encode(), cwd=tmp_path, capture_output=True, check=True)
        .stdout.decode()
        .split("\0")
    )
    git_paths = {entry.split("\t", 2)[2] for entry in read if entry.count("\t") == 2 and entry.split("\t", 2)[2]}
    assert git_paths and git_paths <= set(diffs.touched_paths(GIT_READS[name]))


def test_a_patch_is_read_once_and_shared():
    from swe_env.grading import suspicion
    from swe_env.grading.rewards import patch_similarity

    text = (
        "diff --git a/conftest.py b/conftest.py\nnew file mode 100644\n--- /dev/null\n+++ b/conftest.py\n@@ -0,0 +1,2 @@\n+import os\n+os._exit(0)\n"
    )
    patch = diffs.Patch.read(text)
    assert diffs.Patch.read(patch) is patch and patch.error is None
    assert patch.paths == diffs.touched_paths(text) == ["conftest.py"] and patch.created == ["conftest.py"]
    assert suspicion.flags(patch) == suspicion.flags(text) != []
    assert patch_similarity(patch, text) == patch_similarity(text, text) == 1.0
    calls = []
    assert patch.derived("x", lambda read: calls.append(1) or len(read.files)) == 1
    assert patch.derived("x", lambda read: calls.append(1) or 0) == 1 and calls == [1]  # computed once
    broken = diffs.Patch.read("@@ -1 +1 @@\n")
    assert broken.files == [] and broken.paths == [] and suspicion.flags(broken) == []
    unreadable = diffs.Patch.read("--- a/x\n+++ b/x\n@@ -1,2 +1,2 @@\n?odd\n")
    assert unreadable.error and unreadable.files == []


def test_changed_lines_are_the_new_side_of_each_hunk_of_the_files_asked():
    """The seal's key file charges frame reads to these lines: context included (a deletion lies inside one),
    created, deleted and binary files left out (changed as a whole), only the paths asked for."""
    text = (
        "diff --git a/a.py b/a.py\n--- a/a.py\n+++ b/a.py\n@@ -1,3 +1,2 @@\n x\n-y\n z\n"
        "@@ -10,2 +9,3 @@\n p\n+q\n r\n"
        "diff --git a/b.py b/b.py\n--- a/b.py\n+++ b/b.py\n@@ -5 +5 @@\n-old\n+new\n"
        "diff --git a/new.py b/new.py\nnew file mode 100644\n--- /dev/null\n+++ b/new.py\n@@ -0,0 +1 @@\n+n\n"
        "diff --git a/gone.py b/gone.py\ndeleted file mode 100644\n--- a/gone.py\n+++ /dev/null\n@@ -1 +0,0 @@\n-g\n"
        "diff --git a/img.png b/img.png\nBinary files a/img.png and b/img.png differ\n"
    )
    patch = diffs.Patch.read(text)
    everything = ["a.py", "b.py", "new.py", "gone.py", "img.png"]
    assert patch.changed_lines(everything) == {"a.py": [(1, 2), (9, 11)], "b.py": [(5, 5)]}
    assert patch.changed_lines(["b.py"]) == {"b.py": [(5, 5)]}
    assert diffs.Patch.read("not a diff").changed_lines(everything) == {}
