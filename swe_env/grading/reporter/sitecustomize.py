"""swe-env's sealed results writer, loaded at interpreter start-up in the grader's container only.

Standard library only, Python 3.6+ syntax (it runs under the task's interpreter; sealing needs
3.8+). When the grader's variables are set (SWE_ENV_RESULTS: the results channel,
SWE_ENV_RUNNER, SWE_ENV_KEY: where the per-grading key waits), it installs one audit hook
(PEP 578) before any repository code runs. The hook alone, in closure cells reachable only
through `gc` or frames (both audited), holds:

- the writer: every record is one line `SEQ PAYLOAD MAC` on the channel, MAC = HMAC-SHA256
  of `SEQ PAYLOAD` under the key, computed with C functions captured here (nothing looked up
  in a module or in builtins at call time, so code under test cannot run inside the hook);
- the key, read once and unlinked when the runner announces itself: pytest's plugin
  (`swe_env_seal`, loaded with `-p` before conftest and collection) when it is imported, or,
  for Django and sympy, this module itself at start-up in the test command's first process
  (`take_key_at_start_up`). A second pytest session in the same run finds no key and writes
  nothing: its tests are missing;
- tamper evidence: events charged to code from a file the patch changed (frame access, `gc`
  walks, `ctypes`, tracers, another audit hook, `/proc` memory, descriptors and environments,
  signals, replacing a function's code, forging code objects) are written as `flag` records
  the moment they happen, so killing the process afterwards cannot hide them.

Outcomes reach the hook as `sys.audit("swe_env.<event>", ...)`; it believes one only when the
frame calling `sys.audit` runs our code (its code object, captured when the plugin was imported,
or this file's) and no frame on the stack is from a patched file, and, for pytest, when the
report is the one pytest's own `call_and_report` holds. Then the process is made undumpable
(PR_SET_DUMPABLE 0: other processes cannot read its memory through /proc/<pid>/mem) and core
dumps are turned off, and this module leaves `sys.modules` (an empty module takes its place) and its
variables `os.environ`.

Django: every outcome that reaches `unittest.TestResult` under the ids SWE-bench's datasets use
(`name (module.Class)`, `name (module.Class.name)`, the docstring's first line), "failed" for a test whose
class changed after it joined a suite or whose method is not its test file's code (`_recorder`'s `closed`);
sympy: every outcome its `PyTestReporter` reports, as the function's name and `file:name`, "failed" when
the reporter's outcome methods were redirected (`redirected`). Either is also flagged (`swe_env.tampered`). Statuses:
passed, failed, error, skipped, xfailed, xpassed. Before 3.8 nothing is sealed: one line
`unsealed python X.Y` says so, and the grader believes nothing.

Why one module of this size: it is copied into the test process's import path and loaded at its start
before anything else, standard library only; its hooks share closures the code under test must not reach,
so they cannot be spread over importable modules.
"""

import os
import sys

# unittest leaves frames of modules that define this out of the tracebacks it prints: the recorder's hook of
# `TestCase._callTestMethod` stands between unittest's `run` and the test's method.
__unittest = True


def _native(fd, results, runner, key_path, plugin_file, stdlib, here):
    """The native seal's module, installed (its C audit hook added), or None: then this file's hook is the
    seal (the begin record says which). The shared object is loaded from this folder by path only."""
    path = os.path.join(here, "_swe_env_native.abi3.so")
    if not os.path.exists(path):
        return None
    try:
        import importlib.util

        spec = importlib.util.spec_from_file_location("_swe_env_native", path)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        sys.modules.pop("_swe_env_native", None)  # loading registered it: the raw run has no such module
        if not module.install(results, runner, key_path, plugin_file, stdlib):
            return None
    except Exception as exc:  # an interpreter it does not serve: the Python hook seals, and says so
        os.write(
            fd,
            (
                "- note " + ("the native seal did not load: %s: %s" % (type(exc).__name__, exc))[:300].encode("utf-8", "replace").hex() + " -\n"
            ).encode(),
        )
        return None
    return module


def _install():
    environ = os.environ
    results, runner, key_path = environ.get("SWE_ENV_RESULTS"), environ.get("SWE_ENV_RUNNER"), environ.get("SWE_ENV_KEY")
    if not results or not runner or not key_path:
        return None
    try:
        fd = os.open(results, os.O_WRONLY | os.O_APPEND)
    except OSError:
        return None
    if not hasattr(sys, "addaudithook"):
        os.write(fd, ("unsealed python %d.%d\n" % sys.version_info[:2]).encode())
        os.close(fd)
        return None
    import _thread
    import dis

    here = os.path.dirname(os.path.abspath(__file__))
    plugin_file = os.path.join(here, "swe_env_seal.py")
    cwd = os.getcwd()
    stdlib = os.path.dirname(os.__file__) + "/"
    # The native seal (`_seal.c`), when the grader shipped it and this Python loads it: it alone then
    # holds the key and the descriptor and writes every record; this hook keeps the integrity checks
    # and can only add flags through it.
    native = _native(fd, results, runner, key_path, plugin_file, stdlib, here)
    if native is not None:
        # The C hook opens the channel for each record; a descriptor kept here would only be one more number the code
        # under test could write to or `dup2` onto.
        os.close(fd)
        fd = -1
    # Everything the hook calls, captured now: later lookups could reach code of the patch's.
    _write, _read, _open, _close, _unlink, _getpid = os.write, os.read, os.open, os.close, os.unlink, os.getpid
    _getframe, _ident, _audit = sys._getframe, _thread.get_ident, sys.audit
    _sha = None
    if native is None:  # only this hook's own writer hashes: with the native seal, hashlib is not imported at all
        before = set(sys.modules)
        import hashlib

        _sha = hashlib.sha256
        _forget_imports(before)
    _linestarts = dis.findlinestarts
    _str, _bytes, _int, _tuple, _type, _len, _isinstance, _id = str, bytes, int, tuple, type, len, isinstance, id
    _encode, _hex, _fromhex = str.encode, bytes.hex, bytes.fromhex
    _class_dict, _dict, _zip, _getattr = type.__dict__["__dict__"].__get__, dict, zip, getattr
    _mro = type.__dict__["__mro__"].__get__
    _module_type = _type(os)
    _module_dict = _module_type.__dict__["__dict__"].__get__
    _property, _staticmethod, _classmethod = property, staticmethod, classmethod
    _kept = (_type(lambda: None), _type, _classmethod, _staticmethod, _property, _type(len), _type("".join))
    _startswith, _endswith, _split = str.startswith, str.endswith, str.split
    O_RDONLY = os.O_RDONLY

    state = {"key": None, "tried": False, "pid": None, "seq": 0, "ended": False, "plugin": None, "runner_is_repo": False, "protected": False}
    patched = set()
    charged_cache = {}
    # A patched file's changed lines (the new side of each hunk, context included), by absolute path; a
    # patched file without an entry (created, or written by other means) is changed as a whole.
    changed_lines = {}
    runner_places = []  # the key file's `@runner` paths: the runner's own files when the patch changes the runner
    spans = {}
    busy = set()
    ours = set()  # this file's code objects: the recorder's hooks
    plugin_codes = {}  # co_name -> code object of the pytest plugin

    def codes_of(code, into):
        stack = [code]
        while stack:
            item = stack.pop()
            into.append(item)
            for const in item.co_consts:
                if _type(const) is _type(code):
                    stack.append(const)

    def emit(kind, text=b""):
        """One record (or, before the key is loaded, an unsealed line the grader counts as tampering)."""
        if native is not None:  # the C hook writes the results itself; anything here is only a flag
            if kind == b"flag":
                native.flag(text)
            return
        key = state["key"]
        payload = kind + (b" " + text if text else b"")
        if key is None:
            body = b"- " + payload
            line = body + b" -\n"
        else:
            pid = _getpid()
            if pid == state["pid"]:
                if state["ended"]:
                    return
                seq = b"%d" % state["seq"]
                state["seq"] += 1
            elif kind != b"flag":  # a forked child only ever reports tampering
                return
            else:
                seq = b"c%d" % pid
            body = seq + b" " + payload
            inner, outer = key
            line = body + b" " + _encode(_sha(outer + _sha(inner + body).digest()).hexdigest()) + b"\n"
        try:
            while line:
                line = line[_write(fd, line) :]
        except OSError:
            pass

    def hexs(text):
        return _hex(_encode(text, "utf-8", "surrogatepass"))

    def flag(why, frame):
        filename = frame.f_code.co_filename
        where = (filename if _type(filename) is _str else "?") + ":" + _str(frame.f_lineno) + provenance(frame.f_code)
        emit(b"flag", _encode(hexs(why + " (" + where + ")")))

    def load_key():
        if state["tried"]:
            return False
        state["tried"] = True
        me = _ident()
        busy.add(me)  # the hook's own reading of the key is not an event to judge
        try:
            return read_key()
        finally:
            busy.discard(me)

    def read_key():
        if native is not None:
            return read_native_key()
        try:
            handle = _open(key_path, O_RDONLY)
            try:
                data = _read(handle, 1 << 22)
            finally:
                _close(handle)
            _unlink(key_path)
        except OSError:
            return False
        lines = _split(data.decode("utf-8", "surrogateescape"), "\n")
        key = _fromhex(lines[0])
        state["runner_is_repo"] = lines[1] == "runner_is_repo"
        take_patched(lines[2:])
        block = key + b"\0" * (64 - _len(key))
        state["key"] = (_bytes(b ^ 0x36 for b in block), _bytes(b ^ 0x5C for b in block))
        state["pid"] = _getpid()
        state["thread"] = _ident()
        # Other processes (root without CAP_SYS_PTRACE) cannot read this one's memory; no core file holds the key.
        before = set(sys.modules)
        try:
            import resource

            resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
        except Exception:
            pass
        try:
            import ctypes

            ctypes.CDLL(None, use_errno=True).prctl(4, 0, 0, 0, 0)  # PR_SET_DUMPABLE, 0
        except Exception:
            emit(b"flag", _encode(hexs("the grader could not make the test process undumpable")))
        _forget_imports(before)
        for name in ("SWE_ENV_RESULTS", "SWE_ENV_RUNNER", "SWE_ENV_KEY"):
            environ.pop(name, None)
        emit(b"begin", _encode(runner + " %d" % state["pid"]))
        return True

    def take_patched(entries):
        """The key file's patched files, and `@lines PATH<TAB>START-END,...` entries (`seal.key_file`)."""
        for entry in entries:
            if not entry:
                continue
            if _startswith(entry, "@runner /"):
                runner_places.append(entry[8:])
            elif _startswith(entry, "@lines "):
                path, _tab, ranges = entry[7:].partition("\t")
                found = []
                for part in ranges.split(","):
                    first, _dash, last = part.partition("-")
                    if first.isdigit() and last.isdigit():
                        found.append((_int(first), _int(last)))
                changed_lines[path] = _tuple(found)
            else:
                patched.add(entry)

    def code_changed(code):
        """Whether the lines of this code object (a function's first line to its last) meet a changed line
        of its file: frame reads by code the patch left as it was, in a file it changed, are not its own."""
        filename = code.co_filename
        absolute = filename if _startswith(filename, "/") else cwd + "/" + filename
        ranges = changed_lines.get(absolute)
        if ranges is None:
            return True
        span = spans.get(code)
        if span is None:
            numbers = [line for _offset, line in _linestarts(code) if line is not None]
            span = spans[code] = (code.co_firstlineno, max(numbers) if numbers else code.co_firstlineno)
        for first, last in ranges:
            if first <= span[1] and last >= span[0]:
                return True
        return False

    def read_native_key():
        _audit("swe_env.start")  # from this file's code: the C hook reads the key (once per process)
        if not native.ready():
            return False
        is_repo, paths = native.patched()
        state["runner_is_repo"] = is_repo
        take_patched(paths)
        state["key"] = "native"  # a marker: the key itself is in C memory only
        state["pid"] = _getpid()
        state["thread"] = _ident()
        for name in ("SWE_ENV_RESULTS", "SWE_ENV_RUNNER", "SWE_ENV_KEY"):
            environ.pop(name, None)
        return True

    def is_patched(filename):
        """Whether code from this file is the patch's: a file it changed, or (`swe_env_integrity`) one
        written during the run, code such code compiled, code with a pseudo file name."""
        if _type(filename) is not _str:
            return False
        absolute = charged_cache.get(filename)
        if absolute is None:
            absolute = charged_cache[filename] = (
                filename if _startswith(filename, "/") else (filename if _startswith(filename, "<") else cwd + "/" + filename)
            )
        return absolute in patched or tainted(absolute)

    def charged(frame, skip_stdlib):
        """The frame an event is charged to: for frame-handing events, the first frame outside the
        stdlib that took the frame itself or through a stdlib function that hands frames out
        (`swe_env_integrity.frame_receiver`); for other events, the innermost frame outside the stdlib."""
        if not skip_stdlib:
            return frame_receiver(frame)
        depth = 0
        while frame is not None and depth < 200:
            filename = frame.f_code.co_filename
            if _type(filename) is not _str or code_patched(frame.f_code):
                return frame
            if not (_startswith(filename, stdlib) or _startswith(filename, "<frozen")):
                return frame
            frame = frame.f_back
            depth += 1
        return None

    def runner_file(filename):
        """A file of the runner's own packages (when the patch changes the runner, its code there is on every stack):
        one of the key file's `@runner` paths (the grader's runner probe, asked in the task's image before any patch)
        or a file under one, never a module's `__file__`, which the patched runner could set before the hello."""
        if _type(filename) is not _str or _startswith(filename, "<"):
            return False
        absolute = filename if _startswith(filename, "/") else cwd + "/" + filename
        for place in runner_places:
            if absolute == place or _startswith(absolute, place + "/"):
                return True
        return False

    def own_test_frame(nodeid, filenames):
        """The innermost traceback entry (outermost first) that is the test's own code, its module's or a conftest's
        not changed by the patch, or -1. When the patch changes the runner, its frames outside that entry are only the
        runner calling the test (pytest-dev__pytest-8399 patches `_pytest/python.py`, through which every setup and
        call reaches the test: a `setup_module` calling `pytest.importorskip` was charged to it)."""
        own = "/" + _split(nodeid, "::")[0]
        at = _len(filenames) - 1
        while at >= 0:
            name = filenames[at]
            if _type(name) is _str and (_endswith(name, own) or _endswith(name, "/conftest.py")) and not is_patched(name):
                return at
            at -= 1
        return -1

    def patched_on_stack(frame):
        depth = 0
        while frame is not None and depth < 2000:
            if code_patched(frame.f_code) and not (state["runner_is_repo"] and runner_file(frame.f_code.co_filename)):
                return frame
            frame = frame.f_back
            depth += 1
        return None

    def held_by_pytest(frame, report):
        """pytest's `call_and_report` frame that holds this report, or None."""
        depth = 0
        while frame is not None and depth < 50:
            code = frame.f_code
            if code.co_name == "call_and_report" and _endswith(code.co_filename, "_pytest/runner.py"):
                try:
                    return frame if frame.f_locals.get("report") is report else None
                except Exception:
                    return None
            frame = frame.f_back
            depth += 1
        return None

    def runs(frame, name, suffix):
        return frame is not None and frame.f_code.co_name == name and _endswith(frame.f_code.co_filename, suffix)

    def refused(held, caller):
        """Why a report pytest's `call_and_report` holds is not believed (the native hook's rules, `_seal.c`), or None:
        that call must come from pytest's own `runtestprotocol` for the same item, one pytest collected, inside
        pytest's `wrap_session`."""
        outer = held.f_back
        if not runs(outer, "runtestprotocol", "_pytest/runner.py"):
            return "a report was handed over from a call_and_report that pytest's runtestprotocol did not call"
        try:
            item = held.f_locals.get("item")
            same = item is outer.f_locals.get("item")
        except Exception:
            return "a report was handed over for another item than the one pytest's runtestprotocol runs"
        if not same:
            return "a report was handed over for another item than the one pytest's runtestprotocol runs"
        if _id(item) not in collected_ids:
            return "a report was handed over for an item pytest did not collect"
        frame, depth = caller, 0
        while frame is not None and depth < 2000:
            if runs(frame, "wrap_session", "_pytest/main.py"):
                return None
            frame, depth = frame.f_back, depth + 1
        return "a report was handed over outside pytest's session (no wrap_session on the stack)"

    def past_pluggy(frame):
        depth = 0
        while frame is not None and depth < 50:
            filename = frame.f_code.co_filename
            if not (_type(filename) is _str and ("/pluggy/" in filename or _endswith(filename, "/pluggy.py"))):
                return frame
            frame, depth = frame.f_back, depth + 1
        return None

    collected_ids = set()
    collected_items = []

    # The integrity checks (standard library only, its own module; it holds its references in closures).
    try:
        import swe_env_integrity  # type: ignore[import-not-found]
    except ImportError:
        emit(b"flag", _encode(hexs("the grader's integrity checks (swe_env_integrity) could not be loaded")))
        return None
    if native is not None:
        # The seal's own functions' closures and globals (this module's, the plugin's, the integrity checks') are
        # watched from now on: a read by any other code is flagged (rt7: cells swapped through `__closure__`).
        native.guard(swe_env_integrity.make)
    (
        tainted,
        code_patched,
        provenance,
        frame_receiver,
        integrity_event,
        integrity_outcomes,
        integrity_machinery,
        integrity_collected,
        integrity_changed,
        reading,
        reported,
        unittest_seen,
        item_changed,
        import_made,
        made_as,
        doctest_seen,
        subtest_seen,
        withheld,
    ) = swe_env_integrity.make(stdlib, is_patched, flag, lambda: state["runner_is_repo"], native, runner_file)
    sys.modules.pop("swe_env_integrity", None)  # a later import gets a fresh module that holds nothing of ours
    del swe_env_integrity

    # Events charged to the code that caused them: (why, charged to innermost non-stdlib frame?).
    frame_events = {"sys._getframe": "takes a frame (sys._getframe)", "sys._current_frames": "takes every thread's frame (sys._current_frames)"}
    other_events = {
        "gc.get_objects": "walks every object (gc.get_objects)",
        "gc.get_referrers": "walks objects' referrers (gc.get_referrers)",
        "gc.get_referents": "walks objects' referents (gc.get_referents)",
        "sys.settrace": "installs a tracer (sys.settrace)",
        "sys.setprofile": "installs a profiler (sys.setprofile)",
        "sys.monitoring.register_callback": "installs a monitoring callback (sys.monitoring)",
        "sys.addaudithook": "adds an audit hook",
        "sys._settraceallthreads": "installs a tracer in every thread (sys._settraceallthreads)",
        "sys._setprofileallthreads": "installs a profiler in every thread (sys._setprofileallthreads)",
        "os.kill": "sends a signal (os.kill)",
        "os.killpg": "signals a process group (os.killpg)",
        "signal.pthread_kill": "signals a thread (signal.pthread_kill)",
        "code.__new__": "makes a code object",
    }
    frame_attributes = {"f_code": 1, "tb_frame": 1, "gi_frame": 1, "gi_code": 1, "cr_frame": 1, "cr_code": 1, "ag_frame": 1, "ag_code": 1}
    proc_names = ("/mem", "/environ", "/fd", "/fd/", "/maps", "/pagemap")

    def proc_path(path):
        if _type(path) is _bytes:
            path = path.decode("utf-8", "replace")
        if _type(path) is not _str or not _startswith(path, "/proc/"):
            return False
        for name in proc_names:
            if _endswith(path, name) or "/fd/" in path or "/task/" in path:
                return True
        return False

    def on_event(event, args):
        if _type(event) is not _str:
            return
        if _startswith(event, "swe_env."):
            return on_ours(event, args, _getframe(2))
        integrity_event(event, args, _getframe(2))
        why = frame_events.get(event)
        skip_stdlib = False
        if why is None:
            if event == "object.__getattr__" or event == "object.__setattr__":
                if _len(args) < 2 or _type(args[1]) is not _str:
                    return
                if event == "object.__setattr__":
                    if args[1] == "__class__":
                        return reclassed(args[0], _getframe(2))
                    if args[1] not in ("__code__", "__defaults__", "__kwdefaults__"):
                        return
                    why, skip_stdlib = "replaces a function's " + args[1], True
                elif args[1] in frame_attributes:
                    why = "reads a frame or code (" + args[1] + ")"
                else:
                    return
            elif event == "open" or event == "os.listdir" or event == "os.scandir":
                path = args[0] if args else None
                if _type(path) is _str and path == key_path and state["key"] is None:
                    return flag("opens the grader's key before the runner read it", _getframe(2))
                if not proc_path(path):
                    return
                why, skip_stdlib = (
                    "opens another process's memory, descriptors or environment (" + (path if _type(path) is _str else "/proc/...") + ")",
                    True,
                )
            elif _startswith(event, "ctypes."):
                why, skip_stdlib = "uses ctypes (" + event + ")", True
            else:
                why = other_events.get(event)
                if why is None:
                    return
                if event == "code.__new__" and _startswith(_getframe(2).f_code.co_filename, "<frozen importlib"):
                    return  # marshal (3.8-3.10) announces each code object an import reads from a .pyc: not forged
                skip_stdlib = True
        # A code object is charged to the code that made it: 3.9 raises code.__new__ for each one its
        # importer's marshal loads, under the frame of whoever imports.
        frame = _getframe(2) if event == "code.__new__" else charged(_getframe(2), skip_stdlib)
        if frame is not None and event == "code.__new__" and state["runner_is_repo"] and runner_file(frame.f_code.co_filename):
            return  # the patched runner's own marshal of its caches (3.9: pytest's `_read_pyc`, pytest-dev__pytest-11143)
        if frame is not None and code_patched(frame.f_code) and (skip_stdlib or code_changed(frame.f_code)):
            flag("code the patch changed " + why, frame)

    machinery_names = ("pytest", "_pytest", "pluggy", "unittest", "django.test")

    def reclassed(target, caller):
        """`obj.__class__ = ...` (audited, unlike any other attribute set on a class or module): flagged when code the
        patch changed re-classes an object it does not own, one of the standard library's or the test machinery's (red
        team rt5, R2's route: `os.environ` given a subclass whose `__setitem__` runs when pytest writes
        PYTEST_CURRENT_TEST between the check before the call phase and the call), or a module other than its own
        files' (a module's class decides what reading its attributes runs)."""
        if caller.f_code.co_filename in ("<frozen importlib.util>",) or _endswith(caller.f_code.co_filename, "importlib/util.py"):
            return  # LazyLoader's own switch of a module it loads to and from _LazyModule
        frame = charged(caller, True)
        if frame is None or not code_patched(frame.f_code):
            return
        if state["runner_is_repo"] and runner_file(frame.f_code.co_filename):
            return
        if _module_type in _mro(_type(target)):
            filename = _module_dict(target).get("__file__")
            if _type(filename) is _str and is_patched(filename):
                return
            what = "the module " + _str(_module_dict(target).get("__name__"))
        else:
            owner = _class_dict(_type(target)).get("__module__")
            module = _modules.get(owner) if _type(owner) is _str else None
            filename = _module_dict(module).get("__file__") if _type(module) is _module_type else None
            theirs = _type(owner) is _str and (owner in ("builtins", "os", "sys") or any_prefix(owner, machinery_names))
            if not theirs and not (_type(filename) is _str and _startswith(filename, stdlib) and "-packages/" not in filename):
                return
            what = "an object of " + _str(owner) + "." + _str(_getattr(_type(target), "__qualname__", "?"))
        flag("code the patch changed re-classes " + what + " (__class__ assignment)", frame)

    def any_prefix(name, prefixes):
        for prefix in prefixes:
            if name == prefix or _startswith(name, prefix + "."):
                return True
        return False

    def on_ours(event, args, caller):
        code = caller.f_code
        if event == "swe_env.hello":  # the pytest plugin, imported with -p
            if state["plugin"] is not None or code.co_filename != plugin_file or code.co_name != "<module>":
                return flag("something else announced itself as the grader's pytest plugin", caller)
            found = []
            codes_of(code, found)
            for item in found:
                plugin_codes[item.co_name] = item
            state["plugin"] = code
            load_key()
            witness_monkeypatch()
            return
        if event == "swe_env.monkeypatched":  # pytest's own MonkeyPatch set or put back something (`witness_monkeypatch`)
            if code in ours and _len(args) == 2:
                witnessed(args[0], args[1], caller)
            return
        if event == "swe_env.outcomes":  # from the plugin's import, before conftest files: pytest's outcome classes
            if code is state["plugin"] and _len(args) == 1 and _type(args[0]) is _tuple:
                integrity_outcomes(args[0])
            return
        if event == "swe_env.tampered":  # the recorder found a test or the runner's reporter changed (`_recorder`)
            if code in ours and _len(args) == 1 and _type(args[0]) is _str:
                flag(args[0], caller)
            return
        if event == "swe_env.checkpoint":  # a recorder's comparison right before a test runs (sympy's entering_test)
            if code in ours and _len(args) == 1 and _type(args[0]) is _str and state["key"] is not None and _getpid() == state["pid"]:
                what = changed() or integrity_changed(())
                if what is not None:
                    flag("the test runner's machinery was changed during the run (" + what + "), seen at " + args[0], caller)
            return
        if event == "swe_env.imported":  # unittest, just imported by the test process (`_recorder`'s import hook)
            if code in ours and _len(args) == 1 and _type(args[0]) is _module_type:
                imported_unittest(args[0], caller)
            return
        if state["key"] is None or _getpid() != state["pid"]:
            return
        if event == "swe_env.unittest":  # a part of a unittest test's run, from the recorder's wrappers (`_recorder`)
            if code in ours and _len(args) == 5:
                unittest_seen(*args)
            return
        if event == "swe_env.doctest":  # a doctest run's end, from the recorder's wrapper of DocTestRunner.run
            if code in ours and _len(args) == 4:
                doctest_seen(*args)
            return
        if event == "swe_env.subtest":  # a subtest's report (pytest 9): part of its test's call phase, never a result
            if plugin_codes.get("pytest_runtest_logreport") is code and _len(args) == 3 and _type(args[2]) is _str:
                subtest_seen(caller.f_back, args[2])
            return
        if event == "swe_env.swallowed":  # what pytest's subtests context manager caught (`observe_pytest_subtests`)
            if code in ours and _len(args) == 1:
                subtest_seen(caller.f_back, args[0])
            return
        if event == "swe_env.protect":  # once, from the plugin's import: pytest's machinery as it is now
            if plugin_codes.get("pytest_configure") is code and not state["protected"] and _len(args) == 1 and _type(args[0]) is _tuple:
                state["protected"] = True
                protect(args[0])
                for value in args[0]:
                    if (
                        _type in _mro(_type(value))
                        and _class_dict(value).get("__module__") == "_pytest.python"
                        and _class_dict(value).get("__qualname__", _getattr(value, "__qualname__", None)) == "Function"
                    ):
                        state["function_class"] = value
                integrity_machinery(args[0])
            return
        if event == "swe_env.collected":  # once, after collection: the test modules, items and fixtures
            if plugin_codes.get("pytest_collection_finish") is code and _len(args) in (1, 2) and _type(args[0]) is _tuple:
                if not collected_items and _ident() == state.get("thread"):
                    collected_items.append(args[0])  # kept alive: their ids stay theirs
                    collected_ids.update(_id(item) for item in args[0])
                    must_start.update(_id(item) for item in args[0] if calls_its_function(item))
                what = integrity_collected(args[0])
                if what is not None:
                    flag("a test module was changed before its tests ran (" + what + ")", caller)
            return
        if event == "swe_env.started":  # right before pytest calls a test function (the plugin's pytest_pyfunc_call)
            if plugin_codes.get("pytest_pyfunc_call") is code and _len(args) == 1:
                test_started(args[0], caller)
            elif _len(args) == 2 and _type(args[1]) is _str and plugin_codes.get(code.co_name) is code:
                test_entered(args[0], args[1], code.co_name, caller)
            return
        if event == "swe_env.check":  # after a test's call phase and at the end
            if plugin_codes.get(code.co_name) is code and _len(args) == 1 and _type(args[0]) is _str:
                package = _modules.get("unittest")
                if _type(package) is _module_type and _id(package) not in seen_unittest and runner == "pytest":
                    seen_unittest.add(_id(package))  # said once
                    flag(
                        "unittest was imported past the grader's import hook (a finder or a sys.modules entry of the patch's), seen after " + args[0],
                        caller,
                    )
                # What the test's own `monkeypatch` set is the test's (undone at its teardown), in both checks.
                exempt = monkeypatch_exemptions()
                what = changed(exempt) if snapshots else None
                if what is not None:
                    del snapshots[:]  # said once
                else:
                    what = integrity_changed(exempt)
                if what is not None:
                    flag("the test runner's machinery was changed during the run (" + what + "), seen after " + args[0], caller)
            return
        if native is not None:
            # The C hook alone decides on hand-overs (and flags the refused ones) and has already written
            # this result; the integrity checks stay here and can only add a flag: an outcome pytest's
            # report states better than the exception it caught (`reading`), a changed runner.
            if event == "swe_env.test" and runner == "pytest":
                if plugin_codes.get("pytest_runtest_logreport") is code and _len(args) == 3:
                    report, nodeid, status = args
                    held = held_by_pytest(caller.f_back, report) if _type(nodeid) is _str and _type(status) is _str else None
                    if held is not None:
                        status, why = reading(held, status)
                        if why is not None:
                            flag(why + " in " + nodeid, caller)
                        # The C hook wrote the result, under the id the item had when collected; what the seal saw
                        # of a unittest test's run can add a failed result (the host keeps a test's worst) and a flag.
                        recorded, found, why = reported(held, nodeid, status)
                        if why is not None:
                            flag(why + " in " + nodeid, caller)
                            if found == "failed" and recorded == nodeid:
                                native.failed(recorded)
                        why = not_started(held, status)
                        if why is not None:
                            flag(why + " in " + nodeid, caller)
                            if recorded == nodeid:
                                native.failed(recorded)
                        hold, why = withheld(held, found)
                        if why is not None:
                            flag(why + " in " + nodeid, caller)
                        if hold and recorded == nodeid:
                            native.failed(recorded)
            elif event == "swe_env.test" and code in ours:
                what = changed() or integrity_changed(())
                if what is not None:
                    flag("the test runner's machinery was changed during the run (" + what + ")", caller)
            return
        if event in ("swe_env.test", "swe_env.end") and _ident() != state.get("thread"):
            return flag("a result was handed over from another thread than the one that runs the tests", caller)
        bad = patched_on_stack(caller)
        if bad is not None:
            return flag("a result was handed over with code the patch changed on the stack", bad)
        if event == "swe_env.test" and runner == "pytest":
            if plugin_codes.get("pytest_runtest_logreport") is not code or _len(args) != 3:
                return flag("a result was handed over by code that is not the grader's plugin", caller)
            report, nodeid, status = args
            if _type(nodeid) is not _str or _type(status) is not _str:
                return
            held = held_by_pytest(caller.f_back, report)
            if held is None:
                return flag("a report pytest's call_and_report does not hold was handed over", caller)
            why = refused(held, caller)
            if why is not None:
                return flag(why, caller)
            status, why = reading(held, status)  # the outcome as the exception pytest caught says it
            if why is not None:
                flag(why + " in " + nodeid, caller)
            why = not_started(held, status)
            if why is not None:
                status = "failed"
                flag(why + " in " + nodeid, caller)
            # Under the id the item had when collected, once per phase; a unittest test's pass as unittest gave it.
            recorded, status, why = reported(held, nodeid, status)
            if why is not None:
                flag(why + " in " + recorded, caller)
            hold, why = withheld(held, status)  # a failed subtest, a doctest's own count, an item of no known kind
            if why is not None:
                flag(why + " in " + recorded, caller)
            if hold:
                status = "failed"
            emit(b"test", _encode(status + " " + hexs(recorded)))
        elif event == "swe_env.test":
            if code not in ours or _len(args) != 2 or _type(args[1]) is not _str or _type(args[0]) is not _tuple:
                return flag("a result was handed over by code that is not the grader's recorder", caller)
            what = changed() or integrity_changed(())
            if what is not None:
                return flag("the test runner's machinery was changed during the run (" + what + ")", caller)
            ids = [hexs(item) for item in args[0] if _type(item) is _str and item]
            if ids:
                emit(b"test", _encode(args[1] + " " + ",".join(ids)))
        elif event == "swe_env.raised":  # a skip, xfail or exit raised from patched code fails its test
            if plugin_codes.get("pytest_runtest_makereport") is not code or _len(args) != 2:
                return
            nodeid, filenames = args
            if _type(nodeid) is not _str or _type(filenames) is not _tuple:
                return
            tests_code = own_test_frame(nodeid, filenames)
            at = -1
            for filename in filenames:
                at += 1
                if at < tests_code and state["runner_is_repo"] and runner_file(filename):
                    continue  # the patched runner calling the test's own code, which raised (pytest's own suite)
                if is_patched(filename):
                    emit(b"test", _encode("failed " + hexs(nodeid)))
                    emit(b"flag", _encode(hexs("a skip, xfail or exit was raised from code the patch changed (" + filename + ") in " + nodeid)))
                    return
        elif event == "swe_env.end":
            allowed = plugin_codes.get("pytest_sessionfinish") if runner == "pytest" else None
            if runner == "pytest" and not runs(past_pluggy(caller.f_back), "wrap_session", "_pytest/main.py"):
                return flag("the end record was handed over by other code than pytest's wrap_session", caller)
            if runner != "pytest" and caller.f_back is not None:
                return flag("the end record was handed over before the interpreter's exit", caller)
            if (code is allowed or (runner != "pytest" and code in ours)) and _len(args) == 1 and _type(args[0]) is _int:
                emit(b"end", b"%d" % args[0])
                state["ended"] = True

    must_start = set()  # ids of the collected items whose call phase runs pytest's Function.runtest
    state["function_class"] = None
    state["started"] = None  # (id(item), its call_and_report frame) when pytest's runtest reached the test function

    def calls_its_function(item):
        """Whether an item's call phase is pytest's `Function.runtest`, which calls the test function through the
        `pytest_pyfunc_call` hook (the plugin's innermost wrapper of it hands over `swe_env.started`): a pytest Function,
        or a subclass that does not define its own runtest (unittest's TestCaseFunction does; plugins' items may)."""
        function_class = state["function_class"]
        if function_class is None:
            return False
        for klass in _mro(_type(item)):
            if klass is function_class:
                return True
            if "runtest" in _class_dict(klass):
                return False
        return False

    def pytests_call(item, caller):
        """pytest's `call_and_report` frame of this item's call phase that called its `Function.runtest`, which reached
        the plugin's wrapper through pluggy with no code the patch changed on the stack; or why not (a string)."""
        if patched_on_stack(caller) is not None:
            return "the test function was called with code the patch changed on the stack"
        frame, depth, runtest = caller.f_back, 0, False
        while frame is not None and depth < 300:
            code = frame.f_code
            if not runtest and code.co_name == "runtest" and _endswith(code.co_filename, "_pytest/python.py"):
                if frame.f_locals.get("self") is not item:
                    return "the test function was called for another item than the one pytest's runtest runs"
                runtest = True
            elif code.co_name == "call_and_report" and _endswith(code.co_filename, "_pytest/runner.py"):
                local = frame.f_locals
                if runtest and local.get("item") is item and local.get("when") == "call":
                    return frame
                break
            frame, depth = frame.f_back, depth + 1
        return "the test function was not called by pytest's runtest of its call phase"

    def test_started(item, caller):
        """pytest is about to call the item's test function (red team rt5, R2: the machinery was replaced after the
        check before the call phase and put back by itself): remember that pytest's own runtest of this call phase got
        here, and compare the machinery and the items again at this last point before the test function runs (from
        here to its call only pytest's `pytest_pyfunc_call` runs, which reads what was just compared)."""
        if _id(item) not in must_start:
            return  # an inner session's item (pytester): the outer test's call phase is the one judged
        state["started"] = None
        found = pytests_call(item, caller)
        if _type(found) is _str:
            return flag(found + " (" + _str(_getattr(item, "nodeid", "?")) + ")", caller)
        state["started"] = (_id(item), found)  # the frame is kept alive: no later call phase's frame can be it
        exempt = monkeypatch_exemptions()
        what = changed(exempt) if snapshots else None
        if what is not None:
            del snapshots[:]  # said once
        else:
            what = item_changed(item, exempt)
        if what is not None:
            flag(
                "the test runner's machinery was changed during the run (" + what + "), seen right before the test "
                "function of " + _str(_getattr(item, "nodeid", "?")) + " was called",
                caller,
            )

    # What the plugin's wrapper of the test function saw (red team rt6a, F1, F1b, F1c): the `started` entry of the call
    # phase it was set up (wrapped), called (entered) or raised out of (raised) in.
    entered = {"wrapped": None, "entered": None, "raised": None}
    entered_by = {"wrapped": "pytest_pyfunc_call", "entered": "swe_env_entered", "raised": "swe_env_entered"}

    def test_entered(item, what, name, caller):
        """The plugin wrapped the item's test function for its call (`wrapped`), or that wrapper was called (`entered`)
        or the test function raised out of it (`raised`), in the call phase `test_started` saw reach the plugin's
        `pytest_pyfunc_call` wrapper: remembered for `not_started`. The wrapping counts from pytest's runtest of that
        same call phase (its call_and_report frame on the stack); the start from the runner's thread with no code the
        patch changed on the stack (a plugin may run the test in its event loop's task or a greenlet, whose frames do
        not lead back to pytest's); a raise from anywhere. Evidence from the test function's own start, not from
        reaching a hook wrapper that other implementations of that firstresult hook come after."""
        started = state["started"]
        if what not in entered or entered_by[what] != name[: _len(entered_by[what])] or started is None or started[0] != _id(item):
            return
        if what == "wrapped" and pytests_call(item, caller) is not started[1]:
            return
        if what == "entered" and (_ident() != state.get("thread") or patched_on_stack(caller) is not None):
            return
        entered[what] = started

    def not_started(held, status):
        """Why a passing call phase did not run its test (pytest's runtest of that call phase never reached the test
        function: `test_started`), or None. Judged from what ran, not from the machinery's state at check points."""
        if status not in ("passed", "xpassed"):
            return None
        try:
            local = held.f_locals
            item, when = local.get("item"), local.get("when")
        except Exception:
            return None
        if when != "call" or _id(item) not in must_start:
            return None
        started = state["started"]
        if started is not None and started[0] == _id(item) and started[1] is held:
            return entered_problem(started, status)
        return "pytest's report says " + status + " but its call phase never called the test function"

    def entered_problem(started, status):
        """Why a passing call phase whose test function the plugin wrapped did not run or pass it: the wrapper was never
        called (an implementation of `pytest_pyfunc_call` returned first), or the test function raised; or None."""
        if entered["wrapped"] is started and entered["entered"] is not started:
            why = " but the test function never started (a pytest_pyfunc_call implementation returned without calling it)"
            return "pytest's report says " + status + why
        if entered["raised"] is started:
            return "pytest's report says " + status + " but the test function raised"
        return None

    monkeypatches = {}  # id(a MonkeyPatch pytest's fixture made) -> (it, {(id(object), name)} it set for test code)

    def witness_monkeypatch():
        """Class C (red team rt5, R3): what a test's monkeypatch set is the test's (undone at its teardown) only when
        pytest's own `MonkeyPatch` methods were seen setting it, called by code that is not the patch's: wrapped here,
        when the plugin is imported (before conftest files and any test code; pytest imported the class with its
        default plugins), with references to the originals taken now. Never read from the item's `funcargs` or a
        patcher's `_setattr` afterwards, which the code under test can write."""
        module = _modules.get("_pytest.monkeypatch")
        klass = _module_dict(module).get("MonkeyPatch") if _type(module) is _module_type else None
        home = _module_dict(module).get("__file__") if klass is not None else None
        if _type(klass) is not _type or _type(home) is not _str:
            return
        held = _class_dict(klass)
        state["monkeypatch_home"] = home
        for name, entries in (
            ("__init__", None),
            ("setattr", "_setattr"),
            ("delattr", "_setattr"),
            ("setitem", "_setitem"),
            ("delitem", "_setitem"),
            ("undo", None),
        ):
            original = held.get(name)
            if _type(original) is not _type(witness_monkeypatch) or original.__code__.co_filename != home:
                continue
            if code_patched(original.__code__) and not (state["runner_is_repo"] and runner_file(home)):
                continue
            _type.__setattr__(klass, name, witnessing(original, entries, name))

    _instance_dict, _list = object.__getattribute__, list

    def witnessing(original, entries, name):
        said = {"__init__": "created", "undo": "undone"}.get(name, ())

        def witness(self, *args, **kwargs):
            try:
                held = _instance_dict(self, "__dict__").get(entries) if entries else None
            except Exception:
                held = None
            before = _len(held) if _type(held) is _list else 0
            result = original(self, *args, **kwargs)
            _audit("swe_env.monkeypatched", self, _tuple(held[before:]) if _type(held) is _list else said)
            return result

        witness.__name__, witness.__qualname__ = original.__name__, original.__qualname__
        witness.__doc__, witness.__wrapped__ = original.__doc__, original
        return witness

    def witnessed(patcher, entries, caller):
        """Note a MonkeyPatch that pytest's own `monkeypatch` fixture made (`entries` "created": the caller of its
        `__init__` is that fixture's code), record what such a one set (`entries`: its own records of the call just
        made), or forget it when it undid its changes (`entries` "undone"; pytest undoes the fixture's at the test's
        teardown). Not recorded: a call with code the patch changed anywhere on the stack, or one made by the standard
        library (a finalizer, a callback) rather than by a test's or pytest's own code. A MonkeyPatch of a test's own
        making (`pytest.MonkeyPatch()`, which nothing undoes) exempts nothing, as before."""
        outer = caller.f_back
        if entries == "undone":
            monkeypatches.pop(_id(patcher), None)
            return
        if entries == "created":
            if outer is not None and outer.f_code.co_name == "monkeypatch" and outer.f_code.co_filename == state.get("monkeypatch_home"):
                monkeypatches[_id(patcher)] = (patcher, set())
            return
        found = monkeypatches.get(_id(patcher))
        if _type(entries) is not _tuple or found is None or found[0] is not patcher:
            return
        if outer is None or patched_on_stack(caller) is not None:
            return
        filename = outer.f_code.co_filename
        if _type(filename) is not _str or _startswith(filename, "<") or (_startswith(filename, stdlib) and "-packages/" not in filename):
            return
        seen = found[1]
        for entry in entries:
            if _type(entry) is _tuple and _len(entry) >= 2 and _type(entry[1]) is _str:
                seen.add((_id(entry[0]), entry[1]))

    def monkeypatch_exemptions():
        """(id(object), name) that pytest's MonkeyPatch set for a test and has not yet undone."""
        found = set()
        for _patcher, seen in monkeypatches.values():
            found |= seen
        return found

    snapshots = []  # (object, {name: value}) taken when the recorder hooked them; closures: (function, contents)
    _modules = sys.modules  # the interpreter's own table (rebinding `sys.modules` does not change it)
    seen_unittest = set()  # ids of the unittest packages the import hook saw (kept alive in `snapshots`)

    def imported_unittest(package, caller):
        """unittest's package and submodules, just executed by the standard import (pytest runs): they are
        checked to be the standard library's (no function of the patch's in them), protected like pytest's
        machinery from now on, and (the first ones) what the test modules' imports of unittest must have given.
        The plugin does not import unittest itself: the sealed run's modules are the raw run's."""
        if _module_dict(package).get("__name__") != "unittest" or _id(package) in seen_unittest:
            return
        seen_unittest.add(_id(package))
        found = [package]
        for name, module in _tuple(_modules.items()):
            if _type(name) is _str and _startswith(name, "unittest.") and _type(module) is _module_type:
                found.append(module)
        objects = []
        for module in found:
            objects.append(module)
            own = _module_dict(module).get("__name__")
            for value in _tuple(_module_dict(module).values()):
                if _type(value) is _type and _class_dict(value).get("__module__") == own:
                    objects.append(value)
        for item in objects:
            contents = _module_dict(item) if _type(item) is _module_type else _class_dict(item)
            for attribute, value in _tuple(contents.items()):
                function = _getattr(value, "__func__", value) if _type(value) in (classmethod, staticmethod) else value
                if _type(function) is _type(imported_unittest) and code_patched(function.__code__):
                    return flag("unittest's " + _str(attribute) + " was the patch's code when unittest was imported", caller)
        protect(objects)
        integrity_machinery(_tuple(objects))

    def protect(objects):
        """Remember what these classes and our hooks hold now; any later change is flagged at each outcome."""
        for item in objects:
            cells = _getattr(item, "__closure__", None)
            name = _str(_getattr(item, "__name__", "?"))
            if cells is not None:
                snapshots.append((0, item, _tuple(cell.cell_contents for cell in cells), name))
            elif _type(item) is _module_type:
                # A module: its functions and classes (not its state, which the runner rebinds as it runs).
                held = _dict((key, value) for key, value in _module_dict(item).items() if _isinstance(value, _kept))
                snapshots.append((1, item, held, name))
            else:  # a class: its methods and descriptors, and (at each check) nothing added that hides a base's
                held = _dict((key, value) for key, value in _class_dict(item).items() if _isinstance(value, _kept))
                snapshots.append((2, item, (held, _len(_class_dict(item))), name))

    def changed(exempt=()):
        """The first protected binding that changed, or None; (id(object), name) pairs in `exempt` (what the running
        test's `monkeypatch` fixture set: pytest's own suite patches its runner's modules so) do not count."""
        for kind, item, held, name in snapshots:
            if kind == 0:
                now = item.__closure__
                if _len(now) != _len(held):
                    return "the grader's recorder hook " + name
                for cell, value in _zip(now, held):
                    if cell.cell_contents is not value:
                        return "the grader's recorder hook " + name
                continue
            if (kind == 3 or kind == 4) and state["runner_is_repo"]:
                continue  # Django's django/test/ changed by the patch: that runner's code is the patch's anyway
            if kind == 1 or kind == 3:
                now = _module_dict(item)
            else:
                now = _class_dict(item)
                held, size = held
                if _len(now) != size:
                    # Added: only a method or descriptor that hides a base class's changes behaviour.
                    for attribute, value in now.items():
                        if attribute not in held and _type(attribute) is _str and _type(value) in _kept and (_id(item), attribute) not in exempt:
                            for base in _mro(item)[1:]:
                                if attribute in _class_dict(base):
                                    return name + "." + attribute
            for attribute, value in held.items():
                found = now.get(attribute, held)
                if found is not value and not same_binding(found, value) and (_id(item), attribute) not in exempt:
                    return name + "." + attribute
        return runner_module_replaced()

    runner_modules = {}  # name -> the Django or sympy runner module its recorder snapshotted when it was imported
    expected_modules = []  # the names of those whose module must be the one snapshotted

    def protect_namespace(module, expected, runner_own=False):
        """Class D (red team rt5, D3 and S3): remember a runner module's namespace (its functions and classes, as
        `protect` does for a module) the moment the import hook saw it executed, before any code could rebind what
        the runner looks up there at call time (`unittest.case._Outcome`, `sympy.testing.runtests.raise_on_deprecated`;
        a module-dict write raises no audit event). `expected` names every module that must then be the one
        snapshotted (one imported past the import hook, or swapped in `sys.modules`, is a change too). A module of
        the runner's own package (`runner_own`: django.test) is not compared when the patch changes that package."""
        for name in expected:
            if name not in expected_modules:
                expected_modules.append(name)
        own = _module_dict(module).get("__name__")
        if _type(own) is _str and not runner_own:
            runner_modules[own] = module
        held = _dict((key, value) for key, value in _module_dict(module).items() if kept_kind(value))
        snapshots.append((3 if runner_own else 1, module, held, _str(own)))

    def kept_kind(value):
        """`isinstance(value, _kept)` from the value's own type: `isinstance` reads `__class__`, which a lazy object
        (Django's `settings` in django.test.utils and .testcases) answers by setting itself up, and raised there
        (ImproperlyConfigured, before the runner configured the settings): those modules went unsnapshotted."""
        mro = _mro(_type(value))
        for kind in _kept:
            if kind in mro:
                return True
        return False

    def protect_runner_classes(module, runner_own=True):
        """Red team rt6b, D2: the classes a runner module defines (Django's `SimpleTestCase` and its kin), each class's
        dict remembered as `protect` remembers a class, the moment the import hook saw the module executed: before
        the code under test could import it and set `assert*`, `__init_subclass__`, `_pre_setup` or `__call__` there
        (an attribute set on a class raises no audit event; a test class's bases were remembered only when its first
        test joined a suite, after the library's import). Compared at each outcome as the module's namespace is; a
        module of the runner's own package (`runner_own`: django.test) not when the patch changes that package."""
        own = _module_dict(module).get("__name__")
        for value in _tuple(_module_dict(module).values()):
            if _type in _mro(_type(value)) and _class_dict(value).get("__module__") == own:
                held = _dict((key, item) for key, item in _class_dict(value).items() if kept_kind(item))
                name = _str(own) + "." + _str(_class_dict(_type).get("__qualname__").__get__(value))
                snapshots.append((4 if runner_own else 2, value, (held, _len(_class_dict(value))), name))

    def the_patchs_code(code):
        """Whether a code object is the patch's: its file's (or a pseudo file's) and, where the change is known by
        hunks, its lines meet them (the recorders' test classes and defs: rt6b, D1). When the patch changes Django's
        runner (`django/test/`), that package's code is the runner's (its class decorators set a test class's `setUp`
        to a closure of django/test/utils.py), as for the namespaces' comparison."""
        if _type(code) is not _type(the_patchs_code.__code__) or not (code_patched(code) and code_changed(code)):
            return False
        return not (state["runner_is_repo"] and runner == "django" and "/django/test/" in _str(code.co_filename))

    def runner_module_replaced():
        """The first expected runner module that is not the one its recorder snapshotted, or None."""
        for name in expected_modules:
            found = _modules.get(name)
            if found is not None and runner_modules.get(name) is not found:
                return "sys.modules[" + name + "] (not the module the grader's import hook saw)"
        return None

    def same_binding(found, held):
        """Whether a class's or module's binding, now another object, still binds the very same code: a property with
        the same getter, setter and deleter, a static or class method of the same function. pytest's legacypath makes
        such a new property (`Config.invocation_dir`, `rootdir`, `inifile`, `Session.startdir`, `Node.fspath`) at every
        configure, pytester's inner sessions' included, and puts the outer one back at their unconfigure, which for
        `getitems` comes at the test's teardown (calibration, pytest-dev__pytest-10081): a new object that runs
        nothing new is no change."""
        kind = _type(found)
        if kind is not _type(held):
            return False
        if kind is _property:
            return found.fget is held.fget and found.fset is held.fset and found.fdel is held.fdel
        if kind is _staticmethod or kind is _classmethod:
            return found.__func__ is held.__func__
        return False

    # The standard library's modules whose code Django's (unittest's) and sympy's runners call at run time to decide an
    # outcome, with the names in them that honest code rebinds and no outcome depends on (`catch_warnings(record=True)`
    # and `logging.captureWarnings` rebind how warnings are shown).
    stdlib_outcome_modules = (
        ("contextlib", ()),
        ("functools", ()),
        ("warnings", ("showwarning", "_showwarnmsg", "_showwarnmsg_impl", "formatwarning", "_formatwarnmsg", "_formatwarnmsg_impl")),
    )

    def protect_stdlib():
        """Red team rt6b, D3 and S2: unittest's `_Outcome.testPartExecutor` and sympy's `raise_on_deprecated` are
        `contextlib.contextmanager`s, so whether a test's exception is recorded or swallowed is decided by
        `contextlib._GeneratorContextManager.__exit__` (and, inside `raise_on_deprecated`, `warnings.catch_warnings`'s):
        standard-library class dicts the runner-module snapshots never held, set by library code with no audit event.
        Here, at start-up, before any repository code runs, each such module's namespace (its functions and classes) and
        the class dict of every class it defines are snapshotted with `protect`, and each module must stay the one in
        `sys.modules` (`runner_module_replaced`); every outcome compares them (`changed`), as the runner modules'."""
        for name, rebound in stdlib_outcome_modules:
            module = _modules.get(name)
            if module is None:
                __import__(name)  # before the hook is added: the runner imports it anyway
                module = _modules.get(name)
            if _type(module) is not _module_type:
                continue
            runner_modules[name] = module
            if name not in expected_modules:
                expected_modules.append(name)
            held = _dict((key, value) for key, value in _module_dict(module).items() if _isinstance(value, _kept) and key not in rebound)
            snapshots.append((1, module, held, name))
            protect([value for value in held.values() if _type in _mro(_type(value)) and _class_dict(value).get("__module__") == name])

    def hook(event, args):
        me = _ident()
        if me in busy:
            return
        busy.add(me)
        try:
            on_event(event, args)
        except Exception as exc:
            # Our own events are the grader's checks: one that raises (an object of the patch's whose __hash__ or
            # __eq__ raises inside a snapshot, red team rt2) is itself evidence, never silence.
            if _type(event) is _str and _startswith(event, "swe_env."):
                try:
                    flag("the grader's check raised " + _str(_type(exc).__name__) + " during " + event, _getframe(1))
                except Exception:
                    pass
        finally:
            busy.discard(me)

    if runner in ("django", "sympy"):
        protect_stdlib()
    found = []
    codes_of(_getframe(1).f_code, found)
    ours.update(found)
    sys.addaudithook(hook)
    sys.addaudithook(_cache_guard(_run_started_ns(), patched_on_stack))
    return load_key, protect, protect_namespace, import_made, made_as, protect_runner_classes, the_patchs_code


def _forget_imports(before, _modules=sys.modules):
    """Take the modules imported since `before` back out of `sys.modules` (the pure-Python seal's `hashlib`, `ctypes`,
    `resource`): a raw run has not imported them, and a test's own inner pytest run must import them afresh as
    there (pytester drops what an inner run imported). What the seal took from them stays usable."""
    for name in [name for name in _modules if name not in before]:
        _modules.pop(name, None)


def _run_started_ns():
    """When the test command started, as far as this process can tell: this file's ctime (the grader writes it into
    the container just before the run, after the patch was applied, so a cache the patch itself ships is older), or,
    when it cannot be read, this process's start less a second (file times lag the clock by a tick). So a later
    Python process of the same command (tox's, a test's own subprocess) refuses a cache written after the run began,
    not only after its own start (the review of c3). Code that changes this file's ctime later (a `touch`) can only
    move that line back to when it did so."""
    now = _now_ns()
    try:
        changed = os.stat(__file__).st_ctime_ns
    except (OSError, NameError, AttributeError):
        return now - 10**9
    return changed if changed <= now else now - 10**9


def _now_ns():
    import time

    return time.time_ns() if hasattr(time, "time_ns") else int(time.time() * 1e9)


def _cache_guard(
    started,
    patched_on_stack=lambda frame: None,
    _stat=os.stat,
    _fspath=os.fsdecode,
    _getframe=sys._getframe,
    _endswith=str.endswith,
    _str=str,
    _type=type,
    _len=len,
    _now_ns=_now_ns,
    _abspath=os.path.abspath,
):
    """An audit hook refusing to open for reading a `.pyc` changed after this process started that this process
    did not write itself (red team rt3 c3): a child the patch's code started (no hook there) may have written it,
    pytest's rewrite cache of a test module compiled without asserts. pytest's `_read_pyc` and importlib's loaders
    take the OSError as "no cache" and compile the source again. A cache counts as this process's when it was
    renamed into place (importlib, py_compile, pytest all write a temporary file and rename it) with no code of
    the patch's on the stack, or this process opened it for writing with none on the stack (a test writing `.pyc`
    bytes itself), and the file read is still that one (same inode, not changed since). Paths are
    taken absolute when seen: a cache renamed under a relative name and opened under an absolute one (pytest's own
    test_orphaned_pyc_file: py_compile, then os.rename to ./orphan.pyc, then an import) is the same file."""
    written = {}  # .pyc path -> (st_dev, st_ino, when) of the file this process renamed there or wrote in place

    def guard(event, args):
        if event == "os.rename" and _len(args) >= 2:
            try:
                source, path = _fspath(args[0]), _fspath(args[1])
            except Exception:
                return
            if _type(path) is _str and _endswith(path, ".pyc"):
                path = _abspath(path)
                written.pop(path, None)
                try:
                    info = _stat(source)
                except (OSError, ValueError):
                    return
                if patched_on_stack(_getframe(1)) is None:
                    written[path] = (info.st_dev, info.st_ino, _now_ns() + 2 * 10**9)  # the rename's own ctime
            return
        if event != "open" or not args:
            return
        try:
            path = _fspath(args[0])
        except Exception:
            return
        mode, flags = args[1], args[2]
        if _type(path) is not _str or not _endswith(path, ".pyc"):
            return
        if flags & 3 or (_type(mode) is _str and ("w" in mode or "a" in mode or "x" in mode or "+" in mode)):
            # This process writing a cache in place (pytest's own test_read_pyc_more_invalid writes `.pyc` bytes
            # with `write_bytes` and reads them back: pytest-dev__pytest-11143, calib4): its own, as a rename is.
            if patched_on_stack(_getframe(1)) is None:
                path = _abspath(path)
                try:
                    info = _stat(path)
                    where = (info.st_dev, info.st_ino)  # an open for writing keeps the file's inode
                except (OSError, ValueError):
                    where = (None, None)  # created by this open
                written[path] = where + (_now_ns() + 2 * 10**9,)
            return
        try:
            info = _stat(path)
            path = _abspath(path)
        except (OSError, ValueError):
            return
        changed = info.st_ctime_ns
        if changed < started:
            return
        ours = written.get(path)
        if ours is not None and (ours[0] is None or (ours[0] == info.st_dev and ours[1] == info.st_ino)) and changed <= ours[2]:
            return
        raise PermissionError(13, "swe-env: a .pyc another process changed during the test run is not read", path)

    return guard


_sealed = _install()


# ------------------------------------------------------------------ Django's and sympy's runners
# The hooks below hand outcomes to the sealed hook (`sys.audit`); what they hold is not secret.


def _recorder(load_key, protect, runner, audit, protect_namespace, import_made, made_as, protect_runner_classes=None, the_patchs_code=None):
    import _functools  # type: ignore[import-not-found]  # CPython's C module behind functools.partial
    import _weakref
    import builtins
    import types

    # `functools.partial`'s own docstring, from the C type (whose `__doc__` cannot be set), taken before any repository
    # code runs: a `partial` the patch's code put in `functools` would otherwise choose the id below.
    partial_doc = _functools.partial.__doc__
    _getframe = sys._getframe
    _class_dict = type.__dict__["__dict__"].__get__
    _instance_dict = object.__getattribute__
    _function = types.FunctionType
    _bindings = (_function, staticmethod, classmethod, property, types.BuiltinFunctionType)
    classes = {}  # a test class -> (its MRO, {class: its bindings}) as when its first test joined a suite
    tampered = {}  # id(test) -> test (kept alive) whose method or class changed: its outcome is "failed"
    observed = []  # unittest's TestCase classes whose runs tell the seal what they raised (`observe_unittest`)
    _qualname = type.__dict__["__qualname__"].__get__
    _bases = type.__dict__["__bases__"].__get__
    _mro = type.__dict__["__mro__"].__get__
    _code = types.CodeType
    made_by = {}  # id(class) -> (a weak reference to it, its body's code, its bases, its dict): what class statements made
    fixed = {}  # id(test) -> (a weak reference to it, its ids, why not its test file's, its class, its name): `fixed_ids`
    subtests = []  # unittest's `_SubTest`: its outcomes are its test's
    builders = []  # the grader's `builtins.__build_class__` (`record_class_statements`)
    test_cases = []  # unittest's `TestCase`, as its module defined it

    def record_class_statements():
        """Red team rt6b, D1: which class statement made each class. Every class statement calls
        `builtins.__build_class__` with its body as a function; the body's code object, held by identity, tells the
        file and the place (the qualified name) the class was written at, which nothing the code under test sets
        afterwards changes (`__module__`, `__qualname__`, a name in the test module's namespace are data; a class made
        by `type()`, or by a library's code, has no such body in a test file)."""
        original = builtins.__build_class__
        ref = _weakref.ref

        def __build_class__(func, name, *bases, **kwds):  # noqa: N807 - the builtin's own name
            cls = original(func, name, *bases, **kwds)
            try:
                # Only a class statement's own call: the body's code is a constant of the code that called (not a
                # wrapper of the patch's, set on builtins, running a test class's body again with other bases).
                caller = _getframe(1).f_code
                if type(func) is _function and type in _mro(type(cls)) and any(const is func.__code__ for const in caller.co_consts):
                    made_by[id(cls)] = (ref(cls), func.__code__, _bases(cls), dict(_class_dict(cls)))
            except (TypeError, ValueError):
                pass
            return cls

        builtins.__build_class__ = __build_class__
        builders.append(__build_class__)
        protect([__build_class__])

    def docstring(code):
        """A def's docstring as its code holds it (the first constant; 3.14 marks it), not the function's `__doc__`."""
        consts = code.co_consts
        if not consts or type(consts[0]) is not str or code.co_name == "<lambda>":
            return None
        if sys.version_info >= (3, 14) and not code.co_flags & 0x4000000:  # CO_HAS_DOCSTRING
            return None
        return consts[0]

    def statement_of(cls):
        """The body code, bases and dict of the class statement that made `cls` (as it made it), or None."""
        entry = made_by.get(id(cls))
        return entry[1:] if entry is not None and entry[0]() is cls else None

    def written_at(cls):
        """Why `cls` is not a class a test file's class statement made, at the place its `__qualname__` says, in the
        module its `__module__` names (the module of that file, as its import ran it), with its bases as made; or
        None. A class written inside a function (a test's own inner suite) must say so (`<locals>`): its ids then
        name no test of a module's."""
        made = statement_of(cls)
        qualname = _qualname(cls)
        module = _class_dict(cls).get("__module__")
        where = "%s.%s" % (module, qualname)
        if made is None:
            return "the test class %s was not made by a class statement" % where
        code, bases, _dict = made
        if the_patchs_code is not None and the_patchs_code(code):
            return "the test class %s is the patch's code, not a test file's" % where
        if _bases(cls) != bases or any(now is not then for now, then in zip(_bases(cls), bases)):
            return "the test class %s's bases were changed after its class statement" % where
        if type(module) is not str or type(qualname) is not str:
            return "the test class %s names itself with something else than a str" % where
        stem = code.co_filename[:-3] if code.co_filename.endswith(".py") else code.co_filename
        path = "/" + module.replace(".", "/")
        if not (stem.endswith(path) or stem.endswith(path + "/__init__")):
            return "the test class %s was written in %s, not in that module" % (where, code.co_filename)
        home = getattr(sys.modules.get(module), "__dict__", None)
        if type(home) is not dict:
            return "the test class %s's module is not loaded" % where
        cells = tuple(types.CellType() for _name in code.co_freevars) if code.co_freevars else None
        probe = _function(code, home, qualname, None, cells)  # its body under its module's dict: never called
        if "<locals>" in qualname:
            made_here = import_made(probe)
        else:
            made_here = made_as(probe, qualname)
        if not made_here:
            return "the test class %s is not the class its file's code wrote under that name" % where
        return None

    def def_under(owner, name):
        """Why the function `owner` holds under the test's name is not the def its class statement made under that
        name (when it made one: an alias or a generated test is judged by `runs_its_own_code` only), or None."""
        made = statement_of(owner)
        defs = [c for c in made[0].co_consts if type(c) is _code and c.co_name == name] if made is not None else []
        function = _class_dict(owner).get(name)
        function = getattr(function, "__func__", function) if isinstance(function, (staticmethod, classmethod)) else function
        # The def itself, or a decorator's wrapper of it: through `__wrapped__` or the wrapper's closure (Django's own
        # `mock_inputs` in auth_tests wraps without functools.wraps).
        todo, seen = [(function, 0)], set()
        while todo and len(seen) < 64:
            function, depth = todo.pop()
            if type(function) is not _function or id(function) in seen:
                continue
            seen.add(id(function))
            code = function.__code__
            if the_patchs_code is not None and the_patchs_code(code):
                return "the test method %s is the patch's code" % name
            if any(code is made for made in defs):
                return None
            if depth < 4:
                todo.append((getattr(function, "__wrapped__", None), depth + 1))
                for cell in function.__closure__ or ():
                    try:
                        todo.append((cell.cell_contents, depth + 1))
                    except ValueError:  # an empty cell
                        pass
        return "the test method %s is not the def its class statement made under that name" % name if defs else None

    def grafted(cls):
        """Why a class of the test's MRO binds code of the patch's that its class statement did not bind (red team
        rt6b, D2: every `assert*` of `django.test.SimpleTestCase` set to a function of the library's before the suite
        was built; the same set on the test's own class), or None. The patch's own classes (a library's base test class
        it changed) hold their own code, and what a class's body bound (`helper = staticmethod(a_library_function)`)
        is its own; a class no class statement made (`type()`) is not judged here."""
        for klass in _mro(cls):
            made = statement_of(klass)
            if made is None or the_patchs_code(made[0]):
                continue
            for key, value in list(_class_dict(klass).items()):
                if made[2].get(key, made) is value:
                    continue
                if isinstance(value, (staticmethod, classmethod)):
                    value = value.__func__
                elif isinstance(value, property):
                    value = value.fget
                code = getattr(value, "__code__", None) if type(value) is _function else None
                if code is not None and the_patchs_code(code):
                    return "%s.%s is the patch's code, set on a class it did not write" % (_qualname(klass), key)
        return None

    def judged_ids(test):
        """The ids of a test as its test file wrote it, and why it is not that file's own test (or None)."""
        cls = type(test)
        try:
            own = _instance_dict(test, "__dict__")
        except AttributeError:
            own = {}
        name, doc = own.get("_testMethodName"), own.get("_testMethodDoc")
        module, qualname = _class_dict(cls).get("__module__"), _qualname(cls)
        plain, where = text(name), "%s.%s" % (text(module), text(qualname))
        ids = ("%s (%s)" % (plain, where), "%s (%s.%s)" % (plain, where, plain))
        if type(name) is not str:
            return ids, "the test's name is not a str in " + ids[0]
        owner = next((klass for klass in _mro(cls) if name in _class_dict(klass)), None)
        why = written_at(cls) or (owner is not None and owner is not cls and written_at(owner)) or None
        why = why or (def_under(owner, name) if owner is not None else None)
        why = why or (grafted(cls) if the_patchs_code is not None else None)
        if why is None and type(doc) is str and doc:
            function = _class_dict(owner).get(name) if owner is not None else None
            if partial_method(function) is not None and doc == partial_doc:
                # A `functools.partialmethod` test (Django's serializers tests): unittest describes it by
                # `functools.partial`'s own docstring, which SWE-bench lists (django__django-12209); no code chooses it.
                ids += (doc.strip().split("\n")[0].strip(),)
            for _depth in range(20):  # the def the decorators wrap: its code's docstring is the one believed
                if type(function) is not _function:
                    break
                if docstring(function.__code__) == doc:
                    ids += (doc.strip().split("\n")[0].strip(),)
                    break
                function = getattr(function, "__wrapped__", None)
        elif why is not None and owner is not None:
            # Refused (so recorded failed): also under the docstring of the def its class statement wrote, if any.
            made = statement_of(owner)
            for code in made[0].co_consts if made is not None else ():
                if type(code) is _code and code.co_name == name and docstring(code):
                    ids += (docstring(code).strip().split("\n")[0].strip(),)
                    break
        return ids, why

    def text(value):
        """A str's own characters (a subclass's `__str__` is not called), or what the object is."""
        return str.__str__(value) if str in _mro(type(value)) else object.__repr__(value)

    def fixed_ids(test):
        """(ids, why not its test file's) of a test, fixed the first time it is judged: when it joins a suite, else
        at its start (red team rt6b, D1: ids built at the outcome from the class's `__module__` and `__qualname__`,
        the method's name and the docstring (`_testMethodDoc`, which a `setUp` could set to a hidden test's id) let a
        library's do-nothing tests pass under every hidden test's id). Held for as long as the test lives."""
        entry = fixed.get(id(test))
        if entry is not None and entry[0]() is test:
            return entry[1], entry[2]
        try:
            ids, why = judged_ids(test)
        except Exception as exc:
            ids, why = unittest_ids(test), "the test could not be judged (%s)" % type(exc).__name__
        try:
            own = _instance_dict(test, "__dict__")
            fixed[id(test)] = (_weakref.ref(test), ids, why, type(test), own.get("_testMethodName"))
        except TypeError:
            pass
        return ids, why

    def judged_wrong(test):
        """Why a test (not a subtest or a class's set-up) is not its test file's own as it joined a suite (`fixed_ids`),
        or why class statements may no longer be told (`builtins.__build_class__` replaced), or None."""
        if not builders or builtins.__dict__.get("__build_class__") is not builders[0]:
            return "builtins.__build_class__ is not the grader's (class statements can no longer be told)"
        try:
            named = "_testMethodName" in _instance_dict(test, "__dict__")
        except AttributeError:
            named = False
        if not (test_cases and isinstance(test, test_cases[0]) and named):
            return None
        return fixed_ids(test)[1] or as_fixed(test)

    def as_fixed(test):
        """Why the test is no longer the one whose ids were fixed (its class or its `_testMethodName` changed since:
        unittest runs the method of the name it reads then, which the ids would no longer name), or None."""
        entry = fixed.get(id(test))
        if entry is None or entry[0]() is not test:
            return None
        try:
            name = _instance_dict(test, "__dict__").get("_testMethodName")
        except AttributeError:
            name = None
        if type(test) is not entry[3] or type(name) is not str or name != entry[4]:
            return "the test's class or name was changed after its ids were fixed"
        return None

    def outcome_of(test):
        """The test an outcome is for: a subtest's (unittest's own `_SubTest` only) its test's."""
        if subtests and type(test) is subtests[0]:
            return _instance_dict(test, "__dict__").get("test_case", test)
        return test

    def recorded_ids(test):
        """The ids an outcome is recorded under: a test's fixed ids; something else (a class's set-up failing) its
        string, as unittest prints it."""
        case = outcome_of(test)
        if test_cases and isinstance(case, test_cases[0]) and "_testMethodName" in _instance_dict(case, "__dict__"):
            return fixed_ids(case)[0]
        return unittest_ids(case)

    def tampered_with(value, why):
        """Tell the sealed hook (it flags: `swe_env.tampered`); the caller records the test as failed."""
        audit("swe_env.tampered", why)
        tampered[id(value)] = value

    def bindings(cls, names):
        """What a class holds that running a test calls: its methods and descriptors, and any value under
        a test method's name (a class or a callable object there is called too)."""
        held = {}
        for key, value in _class_dict(cls).items():
            if key in names or (isinstance(value, _bindings) or (callable(value) and not isinstance(value, type))):
                held[key] = value
        return held

    def remember(test):
        """The test's class as it is when the suite is built: the test file's classes are closed from here on."""
        cls = type(test)
        if cls in classes:
            return
        mro = cls.__mro__
        names = set(name for klass in mro for name in _class_dict(klass) if isinstance(name, str) and name.startswith("test"))
        classes[cls] = (mro, names, dict((klass, bindings(klass, names)) for klass in mro if klass is not object))
        for was in classes[cls][2].values():
            for value in was.values():
                partial_method(value)

    partials = {}  # id(partialmethod) -> (it, kept alive; its func, args, keywords as when its class joined a suite)

    def partial_method(value):
        """(func, args, keywords) of a `functools.partialmethod` a test class holds, as when its class joined a suite,
        or None for any other value. Django's serializers tests make their tests so (`register_tests` sets
        `partialmethod(test_func, format)` under `test_<format>_...`: django__django-12209, calib6); its attributes
        are plain ones, so they are read once, not at the test's start."""
        kind = getattr(sys.modules.get("functools"), "partialmethod", None)
        if kind is None or type(value) is not kind:
            return None
        if id(value) not in partials:
            partials[id(value)] = (value, value.func, tuple(value.args), dict(value.keywords))
        return partials[id(value)][1:]

    def calls_partial(test, method, held):
        """Whether `method` is what the held partialmethod gives the test: `functools.partial` (exactly) of its func
        bound to this test, with its very arguments."""
        func, args, keywords = held
        bound = getattr(method, "func", None)
        return (
            type(method) is getattr(sys.modules.get("functools"), "partial", None)
            and type(bound) is types.MethodType
            and bound.__self__ is test
            and bound.__func__ is func
            and len(method.args) == len(args)
            and all(given is kept for given, kept in zip(method.args, args))
            and sorted(method.keywords) == sorted(keywords)
            and all(method.keywords[key] is kept for key, kept in keywords.items())
        )

    def method_file(owner):
        module = sys.modules.get(getattr(owner, "__module__", None) or "")
        path = getattr(module, "__file__", None)
        return os.path.abspath(path) if isinstance(path, str) else None

    def converted(test, name, value):
        """The method Django runs for an async test: `SimpleTestCase._setup_and_call` sets asgiref's
        `async_to_sync(method)` on the test object before unittest's `run`. The bound method it wraps when
        `value` is exactly asgiref's AsyncToSync of this test, else None."""
        sync = getattr(sys.modules.get("asgiref.sync"), "AsyncToSync", None)
        inner = getattr(value, "awaitable", None) if sync is not None and type(value) is sync else None
        return inner if getattr(inner, "__self__", None) is test else None

    def runs_its_own_code(test, name):
        """Why the method about to run is not the test file's own, or None: it must be a function whose code (or,
        through decorators' `__wrapped__`, a function it wraps) comes from the file of the class that defines it,
        and is a def that file's module code made as an import ran it (`import_made`; red team rt5, D2: methods
        replaced by code compiled under the test file's own name, in a second run of the module, before the suite
        was built). A file name is the code's own choice (`compile`), the code object an import ran is not."""
        mro = type(test).__mro__
        owner = next((klass for klass in mro if name in _class_dict(klass)), None)
        if owner is None:
            return "the test method " + name + " is not its class's"
        expected = method_file(owner)
        function = getattr(test, name)
        function = converted(test, name, function) or function
        held = partial_method(_class_dict(owner)[name])
        if held is not None:  # the def the partial runs (`method_called` checks unittest calls exactly that partial)
            function = held[0]
        function = getattr(function, "__func__", function)
        for _depth in range(20):
            if type(function) is not _function:
                break
            code = function.__code__
            if expected is None or os.path.abspath(code.co_filename) == expected:
                if import_made(function):
                    return None
                return "the test method " + name + " about to run is not a def its test file's code made as the module was imported"
            function = getattr(function, "__wrapped__", None)
        return "the test method " + name + " about to run is not code of its test file"

    def closed(test):
        """Why the test about to run is not the one its test file defined when the suite was built, or None."""
        cls = type(test)
        name = getattr(test, "_testMethodName", None)
        if cls not in classes:
            remember(test)
        mro, names, held = classes[cls]
        if cls.__mro__ != mro:
            return "the test class's bases were changed after the suite was built"
        for klass, was in held.items():
            now = _class_dict(klass)
            if name in was and now.get(name, was) is not was[name]:  # the test's own method, named first
                return "%s.%s was changed after the suite was built" % (klass.__qualname__, name)
            for key, value in was.items():
                if now.get(key, was) is not value:
                    return "%s.%s was changed after the suite was built" % (klass.__qualname__, key)
            if len(now) != len(was):
                for key, value in now.items():
                    if key not in was and (
                        key in names or key == name or isinstance(value, _bindings) or (callable(value) and not isinstance(value, type))
                    ):
                        if any(key in _class_dict(base) for base in klass.__mro__[1:]) or key == name:
                            return "%s.%s was added after the suite was built" % (klass.__qualname__, key)
        try:
            own = _instance_dict(test, "__dict__")
        except AttributeError:
            own = {}
        if isinstance(name, str) and name in own:
            inner = converted(test, name, own[name])
            if inner is None or getattr(inner, "__func__", None) is not getattr(type(test), name, None):
                return "the test's " + name + " was set on the test object itself"
        if not isinstance(name, str) or not name.startswith("test"):
            return None
        return runs_its_own_code(test, name)

    called = {}  # id(test) -> test whose method unittest called through `_callTestMethod` as its class held it

    def held_binding(test, name):
        """What the test's class (or the first class of its MRO that has `name`) held under `name` when the suite was
        built, or None."""
        cls = type(test)
        if cls not in classes:
            remember(test)
        mro, names, held = classes[cls]
        for klass in mro:
            if klass is not object and name in held.get(klass, {}):
                return held[klass][name]
            if name in _class_dict(klass):
                return None
        return None

    def method_called(test, method):
        """Why the method unittest is about to call (`_callTestMethod`'s argument) is not the one the test's class
        held under the test's name when the suite was built, or None (red team rt5, D1: the method replaced after
        `startTest`'s check, by code that ran when the runner wrote the test's name, and put back by itself)."""
        # Only the method itself: the class's other bindings were compared at `startTest`, and the test's setUp (run
        # since) may patch its own class; unittest took the method before setUp.
        name = getattr(test, "_testMethodName", None)
        changed_since = as_fixed(test)  # rt6b D1: the name or class changed after the ids were fixed
        if changed_since is not None:
            return changed_since
        expected = held_binding(test, name) if isinstance(name, str) else None
        held = partial_method(expected)
        if held is not None:
            return (
                None
                if calls_partial(test, method, held)
                else "unittest was about to call another function than the test's class held for " + str(name)
            )
        if isinstance(expected, (staticmethod, classmethod)):
            expected = expected.__func__
        function = converted(test, name, method) or method
        function = getattr(function, "__func__", function)
        if expected is None or function is not expected:
            return "unittest was about to call another function than the test's class held for " + str(name)
        return None

    def not_run_here(test):
        """Why a pass reported for `test` is not believed, or None: it must be a test case (a TestCase instance with
        its own `_testMethodName`) whose method unittest called here through `_callTestMethod` as its class held it
        (`method_called`), or, for a class whose `_callTestMethod` is its own (not unittest's hooked one: it calls
        its method some other way), one this process started (`startTest`). Red team rt8b: stand-ins calling
        `result.addSuccess` with a plain object naming a test (D1), and passes replayed by a Django
        `ParallelTestSuite` from what worker processes sent (D2, D3: the workers run the code under test)."""
        try:
            named = "_testMethodName" in _instance_dict(test, "__dict__")
        except AttributeError:
            named = False
        if not (test_cases and isinstance(test, test_cases[0]) and named):
            return "unittest's report says passed for something that is not a test case (%s)" % type(test).__name__
        try:  # read from the instances' own dicts: no code of anyone's runs in the check (a getattr could run some)
            held_failure = _instance_dict(_instance_dict(test, "__dict__").get("_outcome"), "__dict__").get("expectedFailure")
        except (AttributeError, TypeError):
            held_failure = None
        if held_failure is not None:
            # unittest reports an expected failure for a test it expects to fail; a pass with one held means the
            # outcome's `expecting_failure` was switched on during the test (red team rt9b, D1).
            return "unittest's report says passed for a test whose failure was recorded as expected in " + unittest_ids(test)[0]
        if called.get(id(test)) is test:
            return None
        frame = _getframe(1)
        for _depth in range(60):
            if frame is None:
                break
            code = frame.f_code
            if (
                code.co_name == "run"
                and code.co_filename.endswith("django/test/runner.py")
                and type(frame.f_locals.get("self")).__name__ == "ParallelTestSuite"
            ):
                return (
                    "a pass replayed from Django's parallel test workers, which the seal cannot verify (run the tests "
                    "with --parallel 1), in " + unittest_ids(test)[0]
                )
            frame = frame.f_back
        held = held_binding(test, "_callTestMethod")
        if (
            started.get(id(test)) is test
            and isinstance(held, _function)
            and held not in ours_call
            and not (the_patchs_code is not None and the_patchs_code(held.__code__))
        ):
            # A class's own def of `_callTestMethod` (unittest's `IsolatedAsyncioTestCase`) calls its method some other
            # way; a builtin or the patch's function put there does not run it (red team rt9b, D4: `staticmethod(bool)`).
            return None
        return "unittest's report says passed but the test's method was never called through unittest's _callTestMethod in " + unittest_ids(test)[0]

    started = {}  # id(test) -> test that unittest's TestResult.startTest was called for in this process

    ours_call = []  # the hook of `TestCase._callTestMethod`

    def hook_case(module):
        """unittest's `TestCase._callTestMethod(method)` (3.8+: what `run` calls the test's method through) checks the
        method unittest took against the class as remembered, right before calling it; then TestCase and _Outcome are
        snapshotted as they are (with the hook)."""
        case = getattr(module, "TestCase", None)
        original = _class_dict(case).get("_callTestMethod") if isinstance(case, type) else None
        if isinstance(original, _function):

            def _callTestMethod(self, method):  # noqa: N802 - unittest's name
                try:
                    why = method_called(self, method)
                except Exception as exc:
                    why = "the test could not be checked (%s)" % type(exc).__name__
                if why is not None:
                    tampered_with(self, why + " in " + unittest_ids(self)[0])
                else:
                    called[id(self)] = self
                return original(self, method)

            case._callTestMethod = _callTestMethod
            ours_call.append(_callTestMethod)
            protect([_callTestMethod])
        if isinstance(case, type) and not test_cases:
            test_cases.append(case)
            subtests.extend(value for value in (getattr(module, "_SubTest", None),) if isinstance(value, type))
        snapshot("TestCase", "_Outcome")(module)

    def unittest_ids(test):
        test = getattr(test, "test_case", test)  # a subtest: the test it belongs to
        cls = type(test)
        name = getattr(test, "_testMethodName", None)
        where = "%s.%s" % (cls.__module__, getattr(cls, "__qualname__", cls.__name__))
        ids = []
        if name:
            ids += ["%s (%s)" % (name, where), "%s (%s.%s)" % (name, where, name)]
        else:
            ids.append(str(test))
        try:
            doc = test.shortDescription()
        except Exception:
            doc = None
        if doc:
            ids.append(doc.strip())
        return tuple(str(i) for i in ids)

    def hook_unittest(module):
        result_class = module.TestResult
        if getattr(result_class, "_swe_env_hooked", False):
            return
        result_class._swe_env_hooked = True
        wrapped = []

        def wrap(method_name, status_of):
            original = getattr(result_class, method_name)

            def hooked(self, test, *args):
                status = status_of(*args)
                if status is not None:
                    case = outcome_of(test)
                    ids = recorded_ids(test)
                    if id(case) in tampered or (ids is not None and judged_wrong(case)):
                        status = "failed"  # what ran was not the test file's own test
                    elif status in ("passed", "xpassed"):
                        why = not_run_here(case)
                        if why is not None:
                            audit("swe_env.tampered", why)
                            status = "failed"
                    called.pop(id(case), None)
                    audit("swe_env.test", ids, status)
                return original(self, test, *args)

            hooked.__name__ = original.__name__
            setattr(result_class, method_name, hooked)
            wrapped.append(hooked)

        original_start = result_class.startTest

        def start_test(self, test):
            # unittest's `run` takes the method right after this: it must be what the test file defined.
            try:
                why = closed(test) or judged_wrong(test)
            except Exception as exc:
                why = "the test could not be checked (%s)" % type(exc).__name__
            if why is not None:
                tampered_with(test, why + " in " + recorded_ids(test)[0])
            started[id(test)] = test
            return original_start(self, test)

        result_class.startTest = start_test
        wrapped.append(start_test)
        wrap("addSuccess", lambda: "passed")
        wrap("addFailure", lambda err: "failed")
        wrap("addError", lambda err: "error")
        wrap("addSkip", lambda reason: "skipped")
        wrap("addExpectedFailure", lambda err: "xfailed")
        wrap("addUnexpectedSuccess", lambda: "xpassed")
        # A failing subtest fails its test (recorded under the test's ids); a passing one says nothing.
        wrap("addSubTest", lambda subtest, err: None if err is None else ("failed" if issubclass(err[0], subtest.failureException) else "error"))
        protect([result_class] + wrapped)

    def hook_suite(module):
        """A test joining a suite: its class is remembered as it is (`closed` compares at its start)."""
        suite = module.BaseTestSuite
        original_add = suite.addTest

        def add_test(self, test):
            if not isinstance(test, suite) and isinstance(getattr(test, "_testMethodName", None), str):
                try:
                    remember(test)
                    recorded_ids(test)  # its ids fixed now, as its test file wrote it
                except Exception:
                    pass
            return original_add(self, test)

        suite.addTest = add_test
        protect([getattr(module, name) for name in ("TestSuite", "BaseTestSuite") if hasattr(module, name)] + [add_test])

    def hook_sympy(module):
        reporter = getattr(module, "PyTestReporter", None)
        if reporter is None or getattr(reporter, "_swe_env_hooked", False):
            return
        reporter._swe_env_hooked = True
        wrapped = []

        entered_ids = {}  # id(reporter) -> the ids of the test it entered last, fixed then (`entering_test`)
        answered = {}  # id(reporter) -> whether the test it entered last has had its outcome recorded

        def current(self):
            """The ids of the test being run: fixed when sympy entered it, from the def its file made (red team rt6b,
            S1: built at the outcome from `f.__name__`, a str subclass whose `__str__` named a failing test the
            second time a passing one ran)."""
            return entered_ids.get(id(self), ())

        def wrap(method_name, status):
            original = getattr(reporter, method_name, None)
            if original is None:
                return

            def hooked(self, *args, **kwargs):
                # A doctest's outcomes come with no active test function: they are not recorded.
                if getattr(self, "_swe_env_in_test", False):
                    why = redirected(self) or refused.get(id(self))
                    if why is not None and status == "skipped" and redirected(self) is None:
                        # A test that is not its file's def under its name but only skips earns nothing: sympy's own
                        # `@tooslow` returns a wrapper that skips and does not hold the test (calibration, sympy 1.14).
                        why = None
                    if why is not None:
                        audit("swe_env.tampered", why + " (" + method_name + " called for " + (current(self) or ("a test",))[-1] + ")")
                    audit("swe_env.test", current(self), status if why is None else "failed")
                    self._swe_env_in_test = False
                    answered[id(self)] = True
                elif answered.get(id(self)):
                    # sympy reports each test it entered once: another outcome before the next test is entered came
                    # from something else its loop called (red team rt8b, S1: `random.seed`, which the loop calls
                    # before the test, rebound to the reporter's `test_pass`, so a pass was recorded before the test
                    # ran). The test fails (the worst record wins) and the run is flagged.
                    audit(
                        "swe_env.tampered",
                        "a second outcome (" + method_name + ") for " + (current(self) or ("a test",))[-1] + " after its first was recorded",
                    )
                    audit("swe_env.test", current(self), "failed")
                return original(self, *args, **kwargs)

            hooked.__name__ = original.__name__
            setattr(reporter, method_name, hooked)
            wrapped.append(hooked)

        outcomes = ("test_pass", "test_fail", "test_exception", "test_skip", "test_xfail", "test_xpass", "entering_test")

        def redirected(self):
            """Why sympy's call may not have reached the method it named, or None: the reporter's outcome methods are
            the hooked class's, not an attribute of the instance or of a subclass (an alias of `test_pass`)."""
            try:
                own = _instance_dict(self, "__dict__")
            except AttributeError:
                own = {}
            for name in outcomes:
                if name in own:
                    return "the test reporter's " + name + " was set on the reporter itself"
            for klass in type(self).__mro__:
                if klass is reporter:
                    return None
                for name in outcomes:
                    if name in _class_dict(klass):
                        return "the test reporter's " + name + " is " + klass.__qualname__ + "'s, not sympy's"
            return "the test reporter is not sympy's PyTestReporter"

        original_entering = reporter.entering_test
        refused = {}  # id(reporter) -> why the test it entered last is not the test file's own def of its name

        def not_its_own(f, path, name):
            """Why the function sympy is about to run is not the def its test file's code made under the name sympy
            reports (`f.__name__`), or None (red team rt5, S2: the namespace sympy gathers tests from, which it exec'd
            the file in, rebound through a replaced `inspect.isfunction` to `FunctionType(<a passing test's code>,
            <that namespace>, <a new test's name>)`: same file, same globals, another def). sympy's own decorators
            (`XFAIL`, `SKIP`, ...) and a test file's own are looked into through their closures. `name` is the exact
            str of the name sympy reports, or None when that is not a str."""
            try:
                if name is not None and made_as(f, name):
                    return None
            except Exception as exc:
                return "the test function could not be checked (%s) in %s:%s" % (type(exc).__name__, path, name)
            return "the test function sympy is about to run as %s:%s is not the def its test file made under that name" % (path, name)

        def plain(value):
            """A str's own characters (a subclass's `__str__` and `__eq__` are not called), else None."""
            return str.__str__(value) if str in type.__dict__["__mro__"].__get__(type(value)) else None

        def entering_test(self, f):
            start()
            self._swe_env_in_test = True
            answered[id(self)] = False
            name, path = getattr(f, "__name__", None), plain(getattr(self, "_active_file", "")) or ""
            path = path.replace(os.sep, "/")
            exact = plain(name)
            entered_ids[id(self)] = (exact, "%s:%s" % (path, exact)) if exact else ()
            why = not_its_own(f, path, exact)
            if why is None and type(name) is not str:
                why = "the test function sympy is about to run as %s:%s is named by a %s, not a str" % (path, exact, type(name).__name__)
            refused[id(self)] = why  # flagged with the outcome: a skip (sympy's `@tooslow` wrapper only skips) is none
            entered = original_entering(self, f)
            # Class D: the runner's namespaces once more after sympy's own `entering_test`, right before its loop looks
            # up `raise_on_deprecated` and calls the test (nothing of anyone else's runs in between): a rebinding must
            # already be there, and is seen, however soon after the test it is put back.
            audit("swe_env.checkpoint", ("the start of " + current(self)[-1]) if current(self) else "a test's start")
            return entered

        reporter.entering_test = entering_test
        for method_name, status in (
            ("test_pass", "passed"),
            ("test_fail", "failed"),
            ("test_exception", "error"),
            ("test_skip", "skipped"),
            ("test_xfail", "xfailed"),
            ("test_xpass", "xpassed"),
        ):
            wrap(method_name, status)
        protect([reporter, entering_test] + wrapped)

    def start():
        """Take the key (the first time, in this process) and write the end record at a normal exit; whether it was
        taken now. Django's and sympy's recorders take it at start-up (`take_key_at_start_up`): a later call is the
        runner announcing itself, flagged in a process that found no key at its start."""
        if load_key():
            import atexit

            def end():
                audit("swe_env.end", 0)

            atexit.register(end)
            return True
        if unclaimed and not unclaimed[0]:
            unclaimed[0] = True  # said once
            audit(
                "swe_env.tampered",
                "a second process announced itself as the grader's %s recorder (pid %d; the key is the test command's "
                "first process's, taken at its start)" % (runner, os.getpid()),
            )
        return False

    unclaimed = []  # [said]: this process had the grader's variables but no key at its start

    def take_key_at_start_up():
        """Red team rt6b, S3: the key of a Django or sympy run is taken here, at the interpreter's start-up in the first
        process of the test command that has the grader's variables, before any repository code runs, and the variables
        leave the environment at once (the key file is unlinked as it is read): no process the code under test starts
        can take it, and only this process writes results. (It was taken when Django's runner was imported or sympy's
        runner entered its first test, so a child the library started before that took it first and ran a suite of its
        making.) sympy's `test()` re-runs the tests in a child for a random hash seed unless PYTHONHASHSEED is set: the
        grader sets one (`runners.SympyRunner`), so the tests run here. A process that still has the variables and finds
        no key (one the code under test gave them) records nothing and is flagged when its runner announces itself."""
        if start():
            return
        unclaimed.append(False)
        for name in ("SWE_ENV_RESULTS", "SWE_ENV_RUNNER", "SWE_ENV_KEY"):
            os.environ.pop(name, None)

    def observe_unittest(module):
        """pytest runs a unittest test by calling its TestCase with the item as the result; unittest catches what the
        test's parts raise and tells the item, which keeps it as data (`_excinfo`) that code under test can rewrite
        before pytest reads it (red team rt4, a3). So the seal sees the exceptions themselves: each TestCase class of
        `module` (unittest's, or the asyncio one's overrides) gets wrappers of `run` and of the parts it calls, which
        hand the sealed hook the run's result and each part's exception as it propagates (`swe_env.unittest`).
        The wrappers run under globals holding `__unittest`, so unittest's and pytest's tracebacks leave them out
        as they leave out unittest's own frames."""
        for cls in (getattr(module, "TestCase", None), getattr(module, "IsolatedAsyncioTestCase", None)):
            if not isinstance(cls, type) or any(seen is cls for seen in observed):
                continue
            observed.append(cls)
            running = []  # (test case, result) of the runs in progress, innermost last
            for name in ("run", "_callSetUp", "_callTestMethod", "_callTearDown", "_callCleanup", "subTest"):
                original = _class_dict(cls).get(name)
                if isinstance(original, _function):
                    if name == "subTest":
                        wrapper = observed_subtest(original, running)
                    elif name == "_callTestMethod" and cls is getattr(module, "IsolatedAsyncioTestCase", None):
                        wrapper = observed_awaited(original, running, getattr(sys.modules.get("inspect"), "iscoroutinefunction", None))
                    else:
                        wrapper = observed_run(original, running) if name == "run" else observed_part(original, name, running)
                    setattr(
                        cls,
                        name,
                        _function(wrapper.__code__, {"__unittest": True, "__builtins__": builtins}, name, wrapper.__defaults__, wrapper.__closure__),
                    )

    def observed_run(original, running, _audit=audit):
        def run(self, result=None):
            running.append((self, result))
            _audit("swe_env.unittest", result, "run", self, None, None)
            try:
                return original(self, result)
            finally:
                running.pop()

        return run

    def observed_part(original, name, running, _audit=audit, _base=BaseException):
        def part(self, *args, **kwargs):
            try:
                value = original(self, *args, **kwargs)
            except _base as exc:
                tell(self, args, exc)
                raise
            tell(self, args, None)
            return value

        def tell(self, args, raised):
            for case, result in running[::-1]:
                if case is self:
                    _audit("swe_env.unittest", result, name, self, args[0] if args else None, raised)
                    return

        return part

    def observed_first(then, observe=None):
        """`observe` (`observe_raise_on_deprecated` unless given), then `then` (which snapshots the module's namespace
        and classes with the observer in them)."""

        def hook(module):
            try:
                (observe or observe_raise_on_deprecated)(module)
            finally:
                then(module)

        return hook

    def observe_part_executor(module):
        """Red team rt6b, D3: unittest runs each part of a test as `with outcome.testPartExecutor(self): ...`, a
        `contextmanager` whose generator records the exception (`success` False, the failure handed to the result) when
        `__exit__` throws it in; a `__exit__` of the standard library's replaced inside the test (and put back as it
        swallows, so no comparison sees it) can swallow it unrecorded. So `_Outcome.testPartExecutor` is wrapped, before
        unittest.case's classes are snapshotted, in the recorder's own context manager, whose `__exit__` the interpreter
        calls first with the part's exception: when what runs inside says "handled" but the outcome recorded nothing
        (not failed, not an expected failure), the test is flagged and recorded as failed (`tampered_with`)."""
        outcome_class = _instance_dict(module, "__dict__").get("_Outcome")
        original = _class_dict(outcome_class).get("testPartExecutor") if isinstance(outcome_class, type) else None
        if not isinstance(original, _function):
            return

        class ObservedPart(object):
            __slots__ = ("inner", "outcome", "test")

            def __init__(self, inner, outcome, test):
                self.inner, self.outcome, self.test = inner, outcome, test

            def __enter__(self):
                return self.inner.__enter__()

            def __exit__(self, kind, value, traceback):
                handled = self.inner.__exit__(kind, value, traceback)
                if kind is None or not handled:
                    return handled
                outcome = self.outcome
                if getattr(outcome, "success", True) is False:
                    return handled
                if getattr(outcome, "expecting_failure", False) and getattr(outcome, "expectedFailure", None) is not None:
                    return handled
                case = getattr(self.test, "test_case", self.test)
                tampered_with(
                    case,
                    "unittest's testPartExecutor swallowed the exception the test raised (%s) and recorded nothing in %s"
                    % (getattr(kind, "__name__", "?"), unittest_ids(case)[0]),
                )
                return handled

        def testPartExecutor(self, test_case, *args, **kwargs):  # noqa: N802 - unittest's name
            return ObservedPart(original(self, test_case, *args, **kwargs), self, test_case)

        testPartExecutor.__wrapped__ = original
        testPartExecutor.__doc__ = original.__doc__
        type.__setattr__(outcome_class, "testPartExecutor", testPartExecutor)
        protect([ObservedPart, testPartExecutor])

    def observe_raise_on_deprecated(module):
        """Red team rt6b, S2: sympy's loop runs each test as `with raise_on_deprecated(): f()` and reports a pass when
        nothing leaves that block, so whatever decides the block's `__exit__` decides the outcome (the standard library's
        `_GeneratorContextManager.__exit__`, `warnings.catch_warnings.__exit__`; snapshots compare those at each outcome,
        but not a replacement made inside the test and put back as it swallows). So the module's `raise_on_deprecated`
        is wrapped in this file's own context manager, before the namespace is snapshotted: the interpreter calls its
        `__exit__` first, bound when the block is entered (the checkpoint right after `entering_test` compares it just
        before), with the test's exception itself. sympy's `raise_on_deprecated` never swallows one: when what it runs
        says "swallowed", that is flagged and the exception goes on to sympy's runner, which reports the failure."""
        contents = _instance_dict(module, "__dict__")
        original = contents.get("raise_on_deprecated")
        if not isinstance(original, _function):
            return

        class ObservedBlock(object):
            __slots__ = ("inner",)

            def __init__(self, inner):
                self.inner = inner

            def __enter__(self):
                return self.inner.__enter__()

            def __exit__(self, kind, value, traceback):
                swallowed = self.inner.__exit__(kind, value, traceback)
                if kind is None or not swallowed:
                    return swallowed
                audit(
                    "swe_env.tampered",
                    "sympy's raise_on_deprecated swallowed the exception its test raised (%s); it was passed on to "
                    "sympy's runner" % getattr(kind, "__name__", "?"),
                )
                return False

        def raise_on_deprecated(*args, **kwargs):
            return ObservedBlock(original(*args, **kwargs))

        raise_on_deprecated.__wrapped__ = original
        raise_on_deprecated.__doc__ = original.__doc__
        contents["raise_on_deprecated"] = raise_on_deprecated
        protect([ObservedBlock, raise_on_deprecated])

    def observed_awaited(original, running, iscoroutinefunction, _audit=audit, _base=BaseException, _callable=callable):
        """An async test's method (red team rt6a, F2): that unittest's asyncio runner returned says only that the
        Task it ran is done, and the code under test can mark the Task done (`Future.set_result` on the running
        Task) while the test goes on to fail. So the seal hands unittest its own coroutine function, which awaits
        the test's coroutine and notes that the await returned: the coroutine's own end is the evidence."""

        def _callTestMethod(self, method):  # noqa: N802 - unittest's name
            if not _callable(iscoroutinefunction) or not iscoroutinefunction(method):
                returned = None
                given = method
            else:
                returned = []

                async def given(*args, **kwargs):
                    value = await method(*args, **kwargs)
                    returned.append(True)
                    return value

            try:
                value = original(self, given)
            except _base as exc:
                tell(self, method, exc)
                raise
            if returned is not None:
                tell(self, method, None, "awaited", not not returned)
            tell(self, method, None)
            return value

        def tell(self, method, raised, name="_callTestMethod", finished=None):
            for case, result in running[::-1]:
                if case is self:
                    _audit("swe_env.unittest", result, name, self, method, raised if finished is None else finished)
                    return

        return _callTestMethod

    def observed_subtest(original, running, _audit=audit, _base=BaseException):
        """unittest's `subTest` (red team rt6a, F5): when the result has `addSubTest` (pytest 9's item, or one the
        code under test gave it), unittest catches a failing subtest inside the test's method and tells only the
        result, so the method returns normally. The seal's context manager stands between the test's `with` and
        unittest's, and tells the sealed hook the exception unittest's swallowed (or turned into another)."""

        class Watched(object):
            __slots__ = ("inner", "case")

        def enter(watched):
            return watched.inner.__enter__()

        def exit_(watched, kind, value, tb):
            try:
                swallowed = watched.inner.__exit__(kind, value, tb)
            except _base as other:
                if value is not None and other is not value:
                    tell(watched.case, value)
                raise
            if value is not None and swallowed:
                tell(watched.case, value)
            return swallowed

        def tell(self, raised):
            for case, result in running[::-1]:
                if case is self:
                    _audit("swe_env.unittest", result, "subTest", self, None, raised)
                    return

        home = {"__unittest": True, "__builtins__": builtins}
        Watched.__enter__ = _function(enter.__code__, home, "__enter__", None, enter.__closure__)
        Watched.__exit__ = _function(exit_.__code__, home, "__exit__", None, exit_.__closure__)

        def subTest(self, *args, **kwargs):  # noqa: N802 - unittest's name
            watched = Watched()
            watched.inner, watched.case = original(self, *args, **kwargs), self
            return watched

        return subTest

    def observe_doctest(module):
        """pytest runs a doctest (`--doctest-modules`, `test*.txt`) through the standard library's DocTestRunner, whose
        instance the code under test reaches while its examples run (`linecache.getlines.__self__`) and can make
        report nothing (red team rt6a, F3). The seal takes the runner's own count instead: `DocTestRunner.run` gets a
        wrapper that hands the sealed hook what it returned (`TestResults(failed, attempted)`, counted in its own
        locals) or raised (`swe_env.doctest`)."""
        observe_method(getattr(module, "DocTestRunner", None), "run", observed_doctest)

    def observe_pytest_subtests(module):
        """pytest 9's `subtests` fixture (and pytest-subtests') catches a failing subtest in its context manager and
        reports it through the hook relay the fixture object holds, which the code under test can reach (the item's
        funcargs) and replace: the seal takes the exception the context manager swallowed from its own wrapper of
        `__exit__` (`swe_env.swallowed`), whatever becomes of the report."""
        observe_method(getattr(module, "_SubTestContextManager", None), "__exit__", observed_swallow)

    def observe_method(cls, name, make_wrapper):
        """`cls.<name>` replaced, once per class, by `make_wrapper(original)` run under globals of its own (unittest's
        `__unittest` mark, so a traceback leaves the wrapper's frames out)."""
        if not isinstance(cls, type) or any(seen is cls for seen in observed):
            return
        observed.append(cls)
        original = _class_dict(cls).get(name)
        if isinstance(original, _function):
            wrapper = make_wrapper(original)
            home = {"__unittest": True, "__builtins__": builtins}
            setattr(cls, name, _function(wrapper.__code__, home, name, wrapper.__defaults__, wrapper.__closure__))

    def observed_swallow(original, _audit=audit):
        def __exit__(self, kind, value, tb):
            swallowed = original(self, kind, value, tb)
            if value is not None and swallowed:
                _audit("swe_env.swallowed", value)
            return swallowed

        return __exit__

    def observed_doctest(original, _audit=audit, _base=BaseException):
        def run(self, test, *args, **kwargs):
            try:
                value = original(self, test, *args, **kwargs)
            except _base as exc:
                _audit("swe_env.doctest", self, test, None, exc)
                raise
            _audit("swe_env.doctest", self, test, value, None)
            return value

        return run

    def snapshot(*names):
        return lambda module: protect([getattr(module, name) for name in names if hasattr(module, name)])

    def classes_of(module):
        """rt6b D2: django.test's classes (`SimpleTestCase`, `TestCase`, ...), as its module made them."""
        if protect_runner_classes is not None:
            protect_runner_classes(module)

    def stdlib_classes(module):
        """Every class `module` defines, snapshotted as it is now (unittest's modules, through `with_classes`; the
        standard library's `contextlib`, `functools` and `warnings` are snapshotted at start-up: `protect_stdlib`)."""
        if protect_runner_classes is not None:
            protect_runner_classes(module, runner_own=False)

    def with_classes(then):
        """rt6b S2/D2: `then` (the recorder's own hooks), and after it every class the module defines snapshotted as it
        is then (unittest.runner's `TextTestResult`, whose `getDescription` is handed each test inside `startTest`,
        after the recorder's check; the loader's and the suite's classes)."""

        def hook(module):
            if then is not None:
                then(module)
            stdlib_classes(module)

        return hook

    def namespace(then, expected=(), runner_own=False):
        """Class D (rt5 D3, S3): the module's namespace snapshotted as soon as it is executed, then `then`."""

        def hook(module):
            protect_namespace(module, expected, runner_own)
            return then(module) if then is not None else None

        return hook

    unittest_modules = ("unittest", "unittest.case", "unittest.result", "unittest.suite", "unittest.loader", "unittest.runner")
    hooks = {}
    if runner == "django":
        record_class_statements()
        for name in unittest_modules:
            hooks[name] = namespace(with_classes(None), unittest_modules)
        hooks["unittest.result"] = namespace(with_classes(hook_unittest), unittest_modules)
        hooks["unittest.case"] = observed_first(namespace(with_classes(hook_case), unittest_modules), observe_part_executor)
        hooks["unittest.suite"] = namespace(with_classes(hook_suite), unittest_modules)
        hooks["django.test.utils"] = hooks["django.test.testcases"] = namespace(classes_of, runner_own=True)
        # Not django.test.runner's classes: Django's own tests/runtests.py sets `ParallelTestSuite.process_setup`.
        hooks["django.test.runner"] = namespace(lambda module: start(), runner_own=True)
    elif runner == "pytest":
        # unittest's machinery is protected from its first import on (the plugin does not import it: `swe_env_seal`),
        # with the wrappers that tell the seal what a unittest test's run raised.
        def imported(module):
            observe_unittest(sys.modules.get("unittest.case"))
            observe_unittest(sys.modules.get("unittest.async_case"))
            audit("swe_env.imported", module)

        hooks["unittest"] = imported
        hooks["unittest.async_case"] = observe_unittest
        hooks["doctest"] = observe_doctest
        hooks["_pytest.subtests"] = hooks["pytest_subtests.plugin"] = observe_pytest_subtests
    elif runner == "sympy":
        # The key was taken at start-up (`take_key_at_start_up`); entering a test only announces the runner.
        sympy_modules = ("sympy.testing.runtests", "sympy.utilities.runtests", "sympy.testing.pytest", "sympy.utilities.pytest")
        for name in sympy_modules:
            hooks[name] = namespace(hook_sympy if name.endswith(".runtests") else None, sympy_modules)
            if name.endswith(".runtests"):
                hooks[name] = observed_first(hooks[name])

    class AfterImport(object):
        """A meta path entry that finds nothing itself: it wraps the loader of a hooked module."""

        def find_spec(self, name, path=None, target=None):
            hook = hooks.get(name)
            if hook is None:
                return None
            import importlib.machinery

            spec = importlib.machinery.PathFinder.find_spec(name, path)
            if spec is None or spec.loader is None or not hasattr(spec.loader, "exec_module"):
                return spec
            loader = spec.loader
            original_exec = loader.exec_module

            def exec_module(module):
                original_exec(module)
                try:
                    hook(module)
                except Exception:
                    pass

            loader.exec_module = exec_module
            return spec

    for name, hook in list(hooks.items()):
        if name in sys.modules:  # already imported before start-up finished
            hook(sys.modules[name])
    if hooks:
        sys.meta_path.insert(0, AfterImport())
    if runner in ("django", "sympy"):
        take_key_at_start_up()


if _sealed is not None:
    _recorder(_sealed[0], _sealed[1], os.environ.get("SWE_ENV_RUNNER"), sys.audit, _sealed[2], _sealed[3], _sealed[4], *_sealed[5:])
del _install, _sealed, _recorder
# An empty module takes this one's place: before 3.11 the import that runs sitecustomize reads its
# entry back afterwards, and without one every interpreter started under the tests (a test's own
# subprocess too) prints "Error in sitecustomize ... KeyError" on its stderr.
sys.modules[__name__] = type(sys)(__name__)
