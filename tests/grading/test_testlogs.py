"""Test result parsing (pure logic)."""

import pytest

from swe_env.grading import testlogs

JUNIT = """<?xml version="1.0" encoding="utf-8"?>
<testsuites><testsuite name="pytest" tests="5">
<testcase classname="tests.test_a" name="test_ok" time="0.01"/>
<testcase classname="tests.test_a" name="test_bad"><failure message="boom">x</failure></testcase>
<testcase classname="tests.test_a.TestGroup" name="test_skip"><skipped message="no"/></testcase>
<testcase classname="tests.test_a" name="test_teardown"/>
<testcase classname="tests.test_a" name="test_teardown"><error message="teardown"/></testcase>
<testcase classname="" name="tests.test_broken"><error message="collection failure"/></testcase>
</testsuite></testsuites>"""


def test_junit_key_matches_pytest_writer():
    assert testlogs.junit_key("tests/test_a.py::test_ok") == ("tests.test_a", "test_ok")
    assert testlogs.junit_key("tests/test_a.py::TestGroup::test_skip") == ("tests.test_a.TestGroup", "test_skip")


def test_statuses_from_junit_with_missing_and_worst_of_duplicates():
    junit = testlogs.parse_junit(JUNIT)
    ids = [
        "tests/test_a.py::test_ok",
        "tests/test_a.py::test_bad",
        "tests/test_a.py::TestGroup::test_skip",
        "tests/test_a.py::test_teardown",
        "tests/test_broken.py::test_never_collected",
    ]
    assert testlogs.statuses_for(ids, junit, log="PASSED tests/test_a.py::test_bad") == {
        ids[0]: "passed",
        ids[1]: "failed",
        ids[2]: "skipped",
        ids[3]: "error",
        ids[4]: "missing",
    }


def test_log_is_only_a_fallback():
    log = "PASSED tests/test_a.py::test_ok\nFAILED tests/test_a.py::test_bad - assert 0\n"
    assert testlogs.statuses_for(["tests/test_a.py::test_ok", "tests/test_a.py::test_bad"], None, log) == {
        "tests/test_a.py::test_ok": "passed",
        "tests/test_a.py::test_bad": "failed",
    }


def test_invalid_xml_is_a_report_error():
    with pytest.raises(testlogs.ReportError):
        testlogs.parse_junit("<testsuite><testcase")


# ---------------------------------------------------------------- SWE-bench's ids, decided from a JUnit report
#
# The fixtures below are written as pytest's xunit1 writer writes them (classname, name, file,
# line; <failure>, <error>, <skipped type="pytest.skip">, <skipped type="pytest.xfail">).


def xunit1(*cases: str) -> str:
    body = "\n".join(cases)
    return (
        '<?xml version="1.0" encoding="utf-8"?><testsuites name="pytest tests">'
        f'<testsuite name="pytest" errors="0" failures="0" skipped="0" tests="{len(cases)}" time="0.1" '
        f'timestamp="2026-01-01T00:00:00.000000+00:00" hostname="grader">\n{body}\n</testsuite></testsuites>'
    )


def case(classname: str, name: str, file: str | None = "tests/test_fields.py", line: int = 10, child: str = "") -> str:
    where = f' file="{file}" line="{line}"' if file is not None else ""
    if not child:
        return f'<testcase classname="{classname}" name="{name}"{where} time="0.001" />'
    return f'<testcase classname="{classname}" name="{name}"{where} time="0.001">{child}</testcase>'


FAILURE = '<failure message="AssertionError: assert 1 == 2">def test(): ...\nE   AssertionError</failure>'
TEARDOWN_ERROR = '<error message="failed on teardown with &quot;RuntimeError: boom&quot;">RuntimeError: boom</error>'
SETUP_ERROR = "<error message=\"failed on setup with &quot;fixture 'db' not found&quot;\">fixture 'db' not found</error>"
SKIP = '<skipped type="pytest.skip" message="no network">/repo/tests/test_fields.py:31: no network</skipped>'
XFAIL = '<skipped type="pytest.xfail" message="known bug" />'


def statuses(report: str, *ids: str, **options) -> dict[str, str]:
    return testlogs.statuses_for(list(ids), testlogs.parse_junit(report), log="", **options)


def test_rule1_an_id_cut_at_the_first_whitespace_matches_its_test():
    report = xunit1(
        case("tests.test_fields.TestErrorMessages", "test_make_error[required-Missing data]"),
        case("tests.test_fields", "test_message[x - y]", child=FAILURE),
    )
    assert statuses(
        report,
        "tests/test_fields.py::TestErrorMessages::test_make_error[required-Missing",
        "tests/test_fields.py::TestErrorMessages::test_make_error[required-Missing data]",
        # `FAILED tests/test_fields.py::test_message[x - y] - AssertionError...`: " - " -> " ", then the cut.
        "tests/test_fields.py::test_message[x",
    ) == {
        "tests/test_fields.py::TestErrorMessages::test_make_error[required-Missing": "passed",
        "tests/test_fields.py::TestErrorMessages::test_make_error[required-Missing data]": "passed",
        "tests/test_fields.py::test_message[x": "failed",
    }
    assert testlogs.cut_id("t.py::a[b\tc]") == "t.py::a[b" and testlogs.cut_id("t.py::a[b\xa0c]") == "t.py::a[b"


def test_rule2_the_node_id_comes_from_file_classname_and_name_never_from_splitting_on_colons():
    report = xunit1(
        case("tests.test_x", "test_errors[http://fe80::1]", file="tests/test_x.py"),
        case("tests.test_x.TestOuter.TestInner", "test_deep[a::b c]", file="tests/test_x.py", child=FAILURE),
        # Inherited from a base class in another file: `file` is not the module, so (classname, name) decides.
        case("tests.test_sub.TestSub", "test_base[with space]", file="tests/base.py", child=FAILURE),
        case("", "tests.test_broken", file="tests/test_broken.py", child='<error message="collection failure">E</error>'),
    )
    assert statuses(
        report,
        "tests/test_x.py::test_errors[http://fe80::1]",
        "tests/test_x.py::TestOuter::TestInner::test_deep[a::b",
        "tests/test_sub.py::TestSub::test_base[with space]",
        "tests/test_sub.py::TestSub::test_base[with",
        "tests/test_broken.py",
    ) == {
        "tests/test_x.py::test_errors[http://fe80::1]": "passed",
        "tests/test_x.py::TestOuter::TestInner::test_deep[a::b": "failed",
        "tests/test_sub.py::TestSub::test_base[with space]": "failed",
        "tests/test_sub.py::TestSub::test_base[with": "failed",
        "tests/test_broken.py": "error",
    }
    assert testlogs.node_id_of("tests.test_x", "test_errors[http://fe80::1]", "tests/test_x.py") == "tests/test_x.py::test_errors[http://fe80::1]"
    assert testlogs.node_id_of("tests.test_sub.TestSub", "test_base", "tests/base.py") is None
    # A writer that split parameters on "::" too is read back; the one ambiguity left is documented.
    assert testlogs.node_id_of("tests.test_x.test_errors[http://fe80", "1]", "tests/test_x.py") == "tests/test_x.py::test_errors[http://fe80::1]"
    assert testlogs.node_id_of("m.t[a.b.c", "d]", "m.py") == "m.py::t[a.b.c::d]"  # was m.py::t[a::b.c::d]


def test_rule2_without_file_the_classname_and_name_decide():
    report = xunit1(
        case("tests.test_x.TestG", "test_p[a b]", file=None, child=FAILURE),
        case("tests.test_x", "test_errors[http://fe80::1]", file=None),
    )
    assert statuses(
        report, "tests/test_x.py::TestG::test_p[a b]", "tests/test_x.py::TestG::test_p[a", "tests/test_x.py::test_errors[http://fe80::1]"
    ) == {
        "tests/test_x.py::TestG::test_p[a b]": "failed",
        "tests/test_x.py::TestG::test_p[a": "failed",
        "tests/test_x.py::test_errors[http://fe80::1]": "passed",
    }


def test_rule3_xfail_passes_a_real_skip_fails_and_failure_error_are_themselves():
    report = xunit1(
        case("tests.test_fields", "test_xfail", child=XFAIL),
        case("tests.test_fields", "test_skip", child=SKIP),
        case("tests.test_fields", "test_collection_skip", child='<skipped message="collection skipped">why</skipped>'),
        case("tests.test_fields", "test_fail", child=FAILURE),
        case("tests.test_fields", "test_setup_error", child=SETUP_ERROR),
        case("tests.test_fields", "test_xpass_not_strict"),  # written as a plain pass
    )
    ids = ["test_xfail", "test_skip", "test_collection_skip", "test_fail", "test_setup_error", "test_xpass_not_strict"]
    got = statuses(report, *(f"tests/test_fields.py::{name}" for name in ids))
    assert [got[f"tests/test_fields.py::{name}"] for name in ids] == ["passed", "skipped", "skipped", "failed", "error", "passed"]


def test_rule4_cases_that_cut_to_one_id_give_the_worst_status():
    report = xunit1(
        case("tests.test_fields", "test_p[same a]"),
        case("tests.test_fields", "test_p[same b]", child=FAILURE),
        case("tests.test_fields", "test_p[same c]", child=XFAIL),
        case("tests.test_fields", "test_t"),  # a failing call, then a teardown error: two testcases
        case("tests.test_fields", "test_t", child=FAILURE),
        case("tests.test_fields", "test_t", child=TEARDOWN_ERROR),
        case("tests.test_fields", "test_q[x y]", child=SKIP),
        case("tests.test_fields", "test_q[x z]"),
    )
    assert statuses(
        report,
        "tests/test_fields.py::test_p[same",
        "tests/test_fields.py::test_t",
        "tests/test_fields.py::test_q[x",
        "tests/test_fields.py::test_p[same a]",
    ) == {
        "tests/test_fields.py::test_p[same": "failed",
        "tests/test_fields.py::test_t": "error",
        "tests/test_fields.py::test_q[x": "skipped",
        "tests/test_fields.py::test_p[same a]": "passed",  # the full id is its own test
    }


def test_rule5_a_path_parameter_also_matches_as_swebench_options_parser_shortens_it():
    report = xunit1(
        case("tests.test_x", "test_open[/tmp/abc/file.txt]", file="tests/test_x.py"),
        case("tests.test_x", "test_url[//server/share/f.txt]", file="tests/test_x.py"),
        case("tests.test_x", "test_glob[/tmp/*/f.txt]", file="tests/test_x.py"),
        case("tests.test_sub", "test_open[/var/tmp/abc/data.bin]", file="tests/base.py", child=FAILURE),
    )
    got = statuses(
        report,
        "tests/test_x.py::test_open[/file.txt]",
        "tests/test_x.py::test_open[/tmp/abc/file.txt]",
        "tests/test_x.py::test_url[/f.txt]",
        "tests/test_x.py::test_glob[/f.txt]",
        "tests/test_sub.py::test_open[/data.bin]",
    )
    assert got == {
        "tests/test_x.py::test_open[/file.txt]": "passed",
        "tests/test_x.py::test_open[/tmp/abc/file.txt]": "passed",
        "tests/test_x.py::test_url[/f.txt]": "missing",  # "//" is left alone
        "tests/test_x.py::test_glob[/f.txt]": "missing",  # so is a parameter with "*"
        "tests/test_sub.py::test_open[/data.bin]": "failed",
    }
    assert testlogs.path_alias("t.py::test_x[/tmp/a b]") == "t.py::test_x[/a b]"
    assert testlogs.path_alias("t.py::test_x[/tmp/a") == "t.py::test_x[/tmp/a"  # cut before its "]": no option


def test_rule6_ids_no_report_can_produce_are_ignored_and_odd_but_possible_ones_are_missing():
    report = xunit1(
        case("tests.my dir.test_a", "test_ok", file="tests/my dir/test_a.py"),  # cut id: "tests/my"
        case("tests.test_fields", "test_ok"),
    )
    ignored = ["[100%]", "[", "[2]", "root:conftest.py:12", "tests/test_fields.py -k ok", "", "test_ok"]
    missing = ["tests/test_fields.py::test_gone", "tests/test_gone.py", "tests/test_fields.py::test_x[a b]", "tests/test_fields.py::"]
    got = statuses(report, *ignored, *missing, "tests/my", "tests/test_fields.py::test_ok")
    assert got == {
        **dict.fromkeys(ignored, "ignored"),
        **dict.fromkeys(missing, "missing"),
        "tests/my": "passed",
        "tests/test_fields.py::test_ok": "passed",
    }
    # A list that would lose every id keeps them, as missing, when told to (the grader's FAIL_TO_PASS).
    assert statuses(report, "[100%]", "[2]", allow_all_ignored=False) == {"[100%]": "missing", "[2]": "missing"}
    # Without a report nothing is ignored: the log is read as it is.
    assert testlogs.statuses_for(["[100%]"], None, "PASSED [100%]\n") == {"[100%]": "passed"}


def test_rule7_exact_id_first_then_the_cut_id_then_the_path_alias():
    report = xunit1(
        case("tests.test_fields", "test_p[a"),  # a test whose full id is what another's cuts to
        case("tests.test_fields", "test_p[a b]", child=FAILURE),
        case("tests.test_fields", "test_f[/file.txt]"),
        case("tests.test_fields", "test_f[/tmp/file.txt]", child=FAILURE),
        case("tests.test_fields", "test_g[/x/a b]", child=FAILURE),
        case("tests.test_fields", "test_g[/a]"),
    )
    assert statuses(
        report,
        "tests/test_fields.py::test_p[a",
        "tests/test_fields.py::test_p[a b]",
        "tests/test_fields.py::test_f[/file.txt]",
        "tests/test_fields.py::test_g[/x/a",
    ) == {
        "tests/test_fields.py::test_p[a": "passed",  # exact, not the worst with test_p[a b]
        "tests/test_fields.py::test_p[a b]": "failed",
        "tests/test_fields.py::test_f[/file.txt]": "passed",  # exact, not the alias of test_f[/tmp/file.txt]
        "tests/test_fields.py::test_g[/x/a": "failed",  # the cut id; its alias would be test_g[/a]
    }


REAL_TESTS = """\
import pytest


@pytest.mark.parametrize("value", ["required-Missing data", "http://fe80::1", "x - y", "/tmp/abc/file.txt",
                                   "same a", "same b", "//srv/share", "tab\\tin it"])
def test_param(value):
    assert value not in ("x - y", "same b")


@pytest.fixture
def broken():
    raise RuntimeError("setup fails")


@pytest.fixture
def bad_teardown():
    yield
    raise RuntimeError("teardown fails")


def test_setup_error(broken):
    pass


def test_fails_then_teardown_errors(bad_teardown):
    assert False


class TestGroup:
    class TestNested:
        @pytest.mark.parametrize("path", ["/var/lib/x y/data.bin", "plain"])
        def test_nested(self, path):
            pass

    @pytest.mark.xfail(reason="known - bug")
    def test_xfail(self):
        assert False

    @pytest.mark.xfail(reason="not strict")
    def test_xpass(self):
        pass

    @pytest.mark.skip(reason="not here")
    def test_skip(self):
        pass
"""
VERDICT = {"PASSED": "passed", "XFAIL": "passed", "FAILED": "failed", "ERROR": "error"}


def test_a_real_pytest_report_gives_swebench_verdicts_for_its_own_summary(tmp_path):
    import os
    import subprocess
    import sys

    (tmp_path / "tests").mkdir()
    (tmp_path / "tests" / "test_real.py").write_text(REAL_TESTS)
    (tmp_path / "pytest.ini").write_text("[pytest]\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            f"--junitxml={tmp_path / 'junit.xml'}",
            "-o",
            "junit_family=xunit1",
            "-rA",
            "-p",
            "no:cacheprovider",
            "-p",
            "no:randomly",
            "tests",
        ],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    junit = testlogs.parse_junit((tmp_path / "junit.xml").read_text())

    # SWE-bench's parse_log_pytest, and parse_log_pytest_options' path alias on top; the worst of repeated ids.
    expected: dict[str, str] = {}
    aliases: dict[str, str] = {}
    rank = ["passed", "skipped", "failed", "error"].index
    for line in run.stdout.splitlines():
        word = line.split(" ", 1)[0]
        if word not in VERDICT:
            continue
        test_id = (line.replace(" - ", " ") if word == "FAILED" else line).split()[1]
        for table, key in ((expected, test_id), (aliases, testlogs.path_alias(test_id))):
            if key not in table or rank(VERDICT[word]) > rank(table[key]):
                table[key] = VERDICT[word]
    assert "tests/test_real.py::test_param[required-Missing" in expected
    assert "tests/test_real.py::test_param[http://fe80::1]" in expected
    assert expected["tests/test_real.py::test_param[same"] == "failed"
    assert expected["tests/test_real.py::test_fails_then_teardown_errors"] == "error"
    assert aliases["tests/test_real.py::test_param[/file.txt]"] == "passed"
    assert "tests/test_real.py::TestGroup::TestNested::test_nested[/var/lib/x" in expected
    assert testlogs.statuses_for(list(expected), junit, "") == expected
    assert testlogs.statuses_for(list(aliases), junit, "") == aliases

    # Full node ids too; the skip counts as failed (SWE-bench never finds it: `SKIPPED [1] file:line: reason`),
    # the non-strict XPASS as passed (SWE-bench skips XPASS lines: a documented difference).
    full = {
        "tests/test_real.py::test_param[required-Missing data]": "passed",
        "tests/test_real.py::test_param[x - y]": "failed",
        "tests/test_real.py::test_param[tab\\tin it]": "passed",
        "tests/test_real.py::TestGroup::TestNested::test_nested[/var/lib/x y/data.bin]": "passed",
        "tests/test_real.py::TestGroup::test_skip": "skipped",
        "tests/test_real.py::TestGroup::test_xpass": "passed",
        "tests/test_real.py::TestGroup::test_xfail": "passed",
        "tests/test_real.py::test_setup_error": "error",
    }
    assert testlogs.statuses_for(list(full), junit, "") == full
    assert "SKIPPED [1] tests/test_real.py" in run.stdout
    assert testlogs.statuses_for(["[1]"], junit, "") == {"[1]": "ignored"}


def test_a_cut_id_is_not_matched_by_a_test_that_just_closes_its_bracket():
    report = testlogs.parse_junit("""<testsuite>
<testcase classname="t" name="test_x[a]" file="t.py" line="1" />
<testcase classname="t" name="test_x[a b]" file="t.py" line="1"><failure message="no" /></testcase>
</testsuite>""")
    assert testlogs.statuses_for(["t.py::test_x[a"], report, "") == {"t.py::test_x[a": testlogs.FAILED}
    assert testlogs.statuses_for(["t.py::test_x[a]"], report, "") == {"t.py::test_x[a]": testlogs.PASSED}


def test_another_files_test_with_the_same_junit_key_does_not_stand_in():
    # `testing/python/collect/TestModule.py::test_x` and `testing/python/collect.py::TestModule::test_x`
    # both write classname testing.python.collect.TestModule, name test_x.
    report = testlogs.parse_junit("""<testsuite>
<testcase classname="testing.python.collect.TestModule" name="test_x" file="testing/python/collect/TestModule.py" line="1" />
</testsuite>""")
    listed = "testing/python/collect.py::TestModule::test_x"
    assert testlogs.statuses_for([listed], report, "") == {listed: testlogs.MISSING}
