"""Integrity checks of the sealed test run, called by the grader's sealed hook (`sitecustomize`).

Standard library only, Python 3.6+ syntax. `make(...)` is called once by the hook at start-up,
before any repository code runs; everything it returns holds its references in closure cells
(reachable only through `gc` or frames, both audited), and this module leaves `sys.modules`.
It decides three things the hook then writes as records:

- **Whose code is it.** A file the patch changed, a file created or changed during the run
  (its ctime is later than the run's start: not forgeable without the clock), code compiled by
  such code (under any name: `compile`/`exec` with a borrowed file name), and code with a
  pseudo file name (`<string>`: `exec` of text) are the patch's (`tainted`).
- **Who receives a frame.** Any way to a frame object is audited (`sys._getframe`,
  `sys._current_frames`, `tb_frame`, `gi_frame`, ...); the standard library's own uses (logging's
  `findCaller`, `warnings`, `namedtuple`, ...) consume the frame and return none, while a few of
  its functions hand frames (or objects holding them) back to their caller: `logging.currentframe`,
  `inspect.stack/trace/currentframe/getouterframes/getinnerframes/get*locals`,
  `traceback.walk_stack/walk_tb`, asyncio's task stacks. An event is charged to the first
  non-stdlib frame when it happened directly there or through one of those (`frame_receiver`).
- **What decided the outcome.** Test modules' bindings the tests resolve at run time (pytest's
  rewrite helpers, names bound to pytest's or unittest's objects, names that shadow the builtins
  the outcome depends on, names the module's own code never binds), each item's test function
  (which must be code of a test file's own module code as its import ran it: `not_defined`)
  and markers, fixture definitions, and those builtins are compared with what they were
  (`collected`, `changed`); each phase's outcome is read again from the exception pytest caught,
  with references taken before any repository code ran, and a report that reads better than
  that exception is recorded as the exception says and flagged (`reading`).

Why one module of this size: the integrity checks are made by one `make` call into closures that share
the snapshots and the provenance test; as importable modules they would be within the code under test's reach.
"""


class _Probe(object):
    def method(self):
        pass


def make(stdlib, is_patched, flag_text, runner_is_repo=lambda: False, native=None, runner_file=lambda name: False):
    """The checks; `stdlib` is the standard library's folder ("/.../lib/python3.X/"), `is_patched`
    the hook's own test of a file name, `flag_text(why, frame)` writes a flag; `native` the native seal's
    module, told what this module learns of the patch's code (files it wrote or compiled code under, code it
    ran from a string, processes it started) so that the C hook's acceptance counts that code as the patch's."""
    import __future__

    import builtins
    import dis
    import functools
    import os
    import time

    _type, _len, _str, _tuple, _dict, _getattr, _id = type, len, str, tuple, dict, getattr, id
    _bool, _float, _enumerate, _partial = bool, float, enumerate, functools.partial
    _set, _zip, _compile, _int, _bytes, _range = set, zip, compile, int, bytes, range
    _list = list
    _name_of = type.__dict__["__name__"].__get__
    _getcwd = os.getcwd
    _normpath, _realpath = os.path.normpath, os.path.realpath
    opcodes = _dict(dis.opmap)
    HAVE_ARGUMENT = dis.HAVE_ARGUMENT
    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND
    _mro = type.__dict__["__mro__"].__get__
    _qualname_of = type.__dict__["__qualname__"].__get__
    _class_dict = type.__dict__["__dict__"].__get__
    _module_type = _type(os)
    _module_dict = _module_type.__dict__["__dict__"].__get__
    _function_type = _type(make)
    _function_globals = _function_type.__dict__["__globals__"].__get__
    import sys as _sys_module

    _loaded = _sys_module.modules  # the dict itself: what `import` fills (held now, not looked up later)
    _code_type = _type(make.__code__)
    _method_type = _type(_Probe().method)
    _startswith, _endswith = str.startswith, str.endswith
    _stat, _open, _read = os.stat, os.open, os.read
    _close = os.close
    _mark = _getattr(native, "mark", None) or (lambda path, folder=False: None)
    _mark_code = _getattr(native, "mark_code", None) or (lambda code: None)
    _spawned = _getattr(native, "spawned", None) or (lambda: None)
    _now = time.time_ns if hasattr(time, "time_ns") else (lambda _time=time.time, _i=int: _i(_time() * 1e9))
    builtins_dict = _module_dict(builtins)
    # The builtins an outcome depends on (pytest's own decisions and the tests' `raises`, `isinstance`):
    # every exception class, and the functions that classify objects.
    watched = _dict(
        (name, value)
        for name, value in builtins_dict.items()
        if (_type(value) is _type and BaseException in _mro(value))
        or name in ("isinstance", "issubclass", "type", "hasattr", "getattr", "callable", "super", "object", "bool", "id", "len", "iter", "next")
    )

    compiled = _set()  # file names (real paths) code of the patch's compiled code under
    pseudo = {}  # pseudo file name ("<string>") -> {(co_name, co_firstlineno, co_code)} of code the patch compiled under it
    pseudo_whole = _set()  # pseudo names under which the patch compiled what could not be read again
    budget = [64 << 20]  # source bytes the hook compiles again, at most
    annotations_flag = _getattr(_getattr(__future__, "annotations", None), "compiler_flag", 0)
    fresh = {}  # file name -> missing or changed since the patch's code started a process?
    written = _set()  # files the patch's code wrote, renamed, linked or copied to
    own_pycs = _set()  # compiled files this process wrote itself
    pending_inodes = []  # written names not yet looked up
    written_inodes = _set()  # (device, inode) of the files written
    inode_cache = {}  # file name -> (device, inode) or None
    written_folders = []  # folders the patch's code moved, copied or unpacked into (with a trailing "/")
    state = {"outcomes": None, "machinery": {}, "since": None, "spawned_at": "?", "pyc_said": False}
    modules = []  # (module, {name: value}, binding rules) of the test modules, as collected
    items = []  # (item, its __dict__, obj, closure contents, markers, node chain) as collected
    functions = {}  # id(item) -> (item, its test function as collected)
    fixtures = []  # (definitions dict, {name: (defs tuple, funcs tuple)})
    module_codes = {}  # file name -> the module code objects imports ran from it (at most 8)
    code_trees = {}  # file name -> {id(code): its place} of every code object within those (`placements`)
    run_homes = {}  # id(module code held) -> the dict its import ran it in (`run_globals`), or None
    code_homes = {}  # file name -> {id(code): the dict its module code ran in, or None} (`placements`)
    files_homes = {}  # file name -> the dicts of the loaded modules of that file, as last looked up (`rebuilt`)
    binding_rules = {}  # file name -> `bound_names` of its module code as run
    codes = {}  # id(item) -> its test function's code as collected
    test_files = _set()  # the collected test modules' files
    hooks = []  # (hook name, its caller, its implementations, their functions) as collected

    # ------------------------------------------------------------------ whose code is it

    def tainted(absolute):
        """Whether code from this file name is the patch's though the patch did not change the file."""
        if absolute in compiled:
            return True
        if _startswith(absolute, "<"):
            return False  # shared by everyone's generated code (namedtuple, dataclasses, `python -c`): see code_patched
        if absolute in written:
            return True
        for folder in written_folders:
            if _startswith(absolute, folder):
                return True
        if written and same_file_written(absolute):
            _mark(absolute)
            return True
        found = fresh.get(absolute)
        if found is not None:
            return found
        since = state["since"]
        if ".egg/" in absolute or ".zip/" in absolute or ".whl/" in absolute:
            found = False
        else:
            try:
                info = _stat(absolute)
                if since is None:
                    found = False
                else:  # a process the patch's code started may have written it: its ctime says when it changed
                    changed = _getattr(info, "st_ctime_ns", None)
                    if changed is None:
                        changed = _int(info.st_ctime * 1e9)
                    found = changed >= since
            except OSError:
                found = False  # no such source (deleted, or a name the patch invented: `compiled` holds those)
        if found or since is None:  # after a process started, any file may change at any time
            fresh[absolute] = found
        if found:
            _mark(absolute)
        return found

    def inode(path):
        try:
            info = _stat(path)
        except (OSError, ValueError):
            return None
        return (info.st_dev, info.st_ino)

    def same_file_written(absolute):
        """Whether this file is one the patch's code wrote under another name (compared by device and inode)."""
        while pending_inodes:
            found = inode(pending_inodes.pop())
            if found is not None:
                written_inodes.add(found)
        if absolute not in inode_cache:
            inode_cache[absolute] = inode(absolute)
        return inode_cache[absolute] in written_inodes

    def patched_anywhere(frame):
        """Whether a frame of the patch's code is anywhere on the stack (not only the innermost one outside the stdlib)."""
        depth = 0
        while frame is not None and depth < 2000:
            if code_patched(frame.f_code):
                return True
            frame, depth = frame.f_back, depth + 1
        return False

    def not_its_file(source, filename):
        """Whether an import's compile of `filename` compiles other text than the file holds (rt3, c1: code laundered
        through `SourceFileLoader.source_to_code(text, some_unpatched_file)`)."""
        if _type(source) is _str:
            source = source.encode("utf-8", "surrogatepass")
        if _type(source) is not _bytes:
            return False  # a syntax tree: the import system compiles files' bytes
        try:
            handle = _open(filename, os.O_RDONLY)
        except (OSError, ValueError):
            return True
        try:
            chunks, size = [], 0
            while size <= _len(source):
                chunk = _read(handle, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
                size += _len(chunk)
        finally:
            _close(handle)
        return _bytes().join(chunks) != source

    def provenance(code):
        """Why code the patch did not change counts as the patch's (for a flag's text), or ""."""
        filename = code.co_filename
        if _type(filename) is not _str:
            return ""
        if filename in compiled:
            return " [compiled under this name by the patch's code]"
        if filename in written:
            return " [a file the patch's code wrote]"
        for folder in written_folders:
            if _startswith(filename, folder):
                return " [in a folder the patch's code wrote: " + folder + "]"
        if fresh.get(filename):
            return " [changed after the patch's code started a process]"
        if filename in pseudo:
            return " [compiled or run by the patch's code]"
        return ""

    def code_patched(code):
        """Whether this code object is the patch's: from a file that `is_patched`, or compiled by the patch's
        code under a pseudo file name (told apart from others' code of that name, `python -c`'s or
        namedtuple's, by its name, first line and bytecode)."""
        filename = code.co_filename
        if is_patched(filename):
            return True
        if _type(filename) is _str and filename in pseudo:
            if filename in pseudo_whole:
                return True
            return (code.co_name, code.co_firstlineno, code.co_code) in pseudo[filename]
        return False

    def remember_pseudo(source, name):
        marks = pseudo.get(name)
        if marks is None:
            marks = pseudo[name] = _set()
        if _type(source) not in (_str, _bytes):
            return  # a syntax tree: its code is marked when it is run (`exec`), below
        if _len(source) > budget[0]:
            pseudo_whole.add(name)
            return
        budget[0] -= 4 * _len(source)
        for mode in ("exec", "eval", "single"):
            compiled_any = False
            # The caller's flags and optimisation level are not in the event: every combination that changes bytecode.
            for flags in (0, annotations_flag):
                for optimize in (0, 2):
                    try:
                        top = _compile(source, name, mode, flags, True, optimize)
                    except Exception:
                        continue
                    compiled_any = True
                    todo = [top]
                    while todo:
                        code = todo.pop()
                        marks.add((code.co_name, code.co_firstlineno, code.co_code))
                        todo.extend(const for const in code.co_consts if _type(const) is _type(top))
            if compiled_any:
                return
        # Source that compiles in no mode made no code (the caller got a SyntaxError): nothing to mark.

    def in_stdlib(filename):
        if not ((_startswith(filename, stdlib) and "-packages/" not in filename) or _startswith(filename, "<frozen")):
            return False
        return not is_patched(filename)  # code of the patch's under a stdlib file's name is not the stdlib's

    # The standard library's functions that hand a frame, or objects holding frames, to their caller.
    providers = {
        "logging/__init__.py": ("currentframe", "<lambda>"),
        "inspect.py": (
            "currentframe",
            "stack",
            "trace",
            "getouterframes",
            "getinnerframes",
            "getgeneratorlocals",
            "getcoroutinelocals",
            "getasyncgenlocals",
        ),
        "traceback.py": ("walk_stack", "walk_tb"),
        "asyncio/base_tasks.py": ("_task_get_stack",),
        "asyncio/tasks.py": ("get_stack",),
    }

    def frame_receiver(frame):
        """The frame a frame-handing event is charged to: the first frame outside the standard library
        when it took the frame itself or through a function that hands frames out; else None."""
        entry, depth = None, 0
        while frame is not None and depth < 400:
            filename = frame.f_code.co_filename
            if _type(filename) is not _str:
                return frame
            if not in_stdlib(filename):
                if entry is None:
                    return frame
                code = entry.f_code
                if code.co_name in providers.get(code.co_filename[_len(stdlib) :], ()):
                    return frame
                return None
            entry = frame
            frame = frame.f_back
            depth += 1
        return None

    def outside_stdlib(frame):
        depth = 0
        while frame is not None and depth < 400:
            filename = frame.f_code.co_filename
            if _type(filename) is not _str or not in_stdlib(filename):
                return frame
            frame = frame.f_back
            depth += 1
        return None

    def by_patch(frame):
        frame = outside_stdlib(frame)
        return frame if frame is not None and code_patched(frame.f_code) else None

    # Events that put content at a path: (index of the destination argument, whether it may be a folder).
    writes = {
        "os.rename": (1, True),
        "os.link": (1, False),
        "os.symlink": (1, True),
        "os.truncate": (0, False),
        "shutil.copyfile": (1, False),
        "shutil.move": (1, True),
        "shutil.copytree": (1, True),
        "shutil.unpack_archive": (1, True),
    }

    def mark_written(path, folder):
        if _type(path) is _bytes:
            path = path.decode("utf-8", "surrogateescape")
        if _type(path) is not _str or not path:
            return  # a descriptor (already open), or a path object the stdlib turned into a string before
        absolute = path if _startswith(path, "/") else _getcwd() + "/" + path
        # Every spelling the code under test may later run it by: as given, normalised (`a/./b`, `a//b`, `..`), and
        # through links (rt3, c2); other spellings (another link, a hard link) are matched by inode in `tainted`.
        for name in _set((absolute, _normpath(absolute), _realpath(absolute))):
            written.add(name)
            pending_inodes.append(name)
            _mark(name)
            if folder:
                written_folders.append(name.rstrip("/") + "/")
                _mark(name, True)

    def compiled_by_us(path):
        """A compiled file (`.pyc`) this process writes itself (the import system's cache, pytest's rewrite cache)."""
        if _type(path) is _str and (_endswith(path, ".pyc") or ".pyc." in path):
            own_pycs.add(_normpath(path if _startswith(path, "/") else _getcwd() + "/" + path))

    def pyc_read(path, caller):
        """A compiled file read (to be run: an import, pytest's rewrite cache) that changed after the patch's code started
        a process and that this process did not write: code compiled by the patch's process under the name of code it
        did not change (rt3, c3: test modules' rewrite cache written by a child with their asserts stripped). One
        record for the run, however many such files are read (one child forges the cache of every test module): it
        names the first file read and where the patch's code started the process."""
        if state["pyc_said"] or _type(path) is not _str or not _endswith(path, ".pyc"):
            return
        absolute = _normpath(path if _startswith(path, "/") else _getcwd() + "/" + path)
        if absolute in own_pycs:
            return
        try:
            info = _stat(absolute)
        except (OSError, ValueError):
            return
        changed = _getattr(info, "st_ctime_ns", None)
        if changed is None:
            changed = _int(info.st_ctime * 1e9)
        if changed >= state["since"]:
            state["pyc_said"] = True
            flag_text(
                "reads compiled code written by another process after the patch's code started one at "
                + state["spawned_at"]
                + " ("
                + absolute
                + "; later such reads are not flagged again)",
                caller,
            )

    spawns = ("subprocess.Popen", "os.system", "os.posix_spawn", "os.spawn", "os.exec", "os.fork", "os.forkpty", "pty.spawn")

    def on_event(event, args, caller):
        """Events this module judges (the hook passes every event; most return at once)."""
        if event == "open":
            mode = args[1] if _len(args) > 1 else None
            flags = args[2] if _len(args) > 2 else 0
            if (_type(mode) is _str and ("w" in mode or "a" in mode or "x" in mode or "+" in mode)) or (_type(flags) is _int and flags & write_flags):
                fresh.clear()  # what was read before may be missing no more
                compiled_by_us(args[0] if args else None)
                if by_patch(caller) is not None:
                    mark_written(args[0] if args else None, False)
            elif state["since"] is not None and args:
                pyc_read(args[0], caller)
            return
        target = writes.get(event)
        if target is not None:
            fresh.clear()
            if _len(args) > target[0]:
                compiled_by_us(args[target[0]])
            if _len(args) > target[0] and by_patch(caller) is not None:
                mark_written(args[target[0]], target[1])
            return
        if event in spawns:
            # Started from a file the patch changed (not from code it compiled: pytest's own skipif conditions,
            # compiled by a patched pytest, may start `platform`'s helper processes).
            frame = by_patch(caller)
            if state["since"] is None and frame is not None and is_patched(frame.f_code.co_filename):
                state["since"] = _now()
                state["spawned_at"] = _str(frame.f_code.co_filename) + ":" + _str(frame.f_lineno)
                _spawned()
            fresh.clear()
            return
        if event == "compile":
            if _len(args) < 2 or _type(args[1]) is not _str:
                return
            rewrite_compiles(args[1], caller)
            if _startswith(caller.f_code.co_filename, "<frozen importlib"):
                # An import compiling a module's own source file: that file's state decides, unless the text is not
                # the file's and the patch's code is anywhere on the stack (it called the import machinery itself).
                if not _startswith(args[1], "<") and patched_anywhere(caller) and not_its_file(args[0], args[1]):
                    absolute = args[1] if _startswith(args[1], "/") else _getcwd() + "/" + args[1]
                    compiled.add(absolute)
                    _mark(absolute)
                    fresh.pop(args[1], None)
                return
            frame = by_patch(caller)
            if frame is not None and not _startswith(args[1], "<") and runner_is_repo() and runner_file(frame.f_code.co_filename):
                # The patched runner compiling a module's own source file (pytest's assertion rewriter is an importer
                # too): that file's state decides, as for importlib's own compile. When the patch changes the runner
                # its files are trusted this far already (their hook implementations); marking here made every test
                # module the patch's (calibration, pytest-dev__pytest-11143 and 5103).
                return
            if frame is not None:
                name = args[1]
                if _startswith(name, "<"):
                    remember_pseudo(args[0], name)
                else:
                    absolute = name if _startswith(name, "/") else _getcwd() + "/" + name
                    compiled.add(absolute)
                    _mark(absolute)
                    fresh.pop(name, None)
            return
        if event == "exec":  # exec() or eval() of a code object: the patch's, when the patch's code runs it
            code = args[0] if args else None
            if (
                code is not None
                and _type(code) is _code_type
                and code.co_name == "<module>"
                and _type(code.co_filename) is _str
                and not _startswith(code.co_filename, "<")
            ):
                if not exec_by_patch(caller):  # an import's run, not the patch's own `exec` of code under a file's name
                    module_run(code, run_globals(caller, code))
                rewrite_compiles(code.co_filename, caller)
            if (
                code is not None
                and _type(code) is _code_type
                and _type(code.co_filename) is _str
                and _startswith(code.co_filename, "<")
                and by_patch(caller) is not None
            ):
                marks = pseudo.get(code.co_filename)
                if marks is None:
                    marks = pseudo[code.co_filename] = _set()
                todo = [code]
                while todo:
                    inner = todo.pop()
                    marks.add((inner.co_name, inner.co_firstlineno, inner.co_code))
                    todo.extend(const for const in inner.co_consts if _type(const) is _code_type)
                _mark_code(code)
            return
        if event == "marshal.loads" or event == "marshal.load":
            code = caller.f_code
            if code.co_name == "_compile_bytecode" and _startswith(code.co_filename, "<frozen"):
                try:
                    local = caller.f_locals
                    source, bytecode = local.get("source_path"), local.get("bytecode_path")
                except Exception:
                    return
                if source is None and _type(bytecode) is _str and (is_patched(bytecode) or tainted(bytecode)):
                    flag_text("imports compiled code written during the run (" + bytecode + ")", caller)
                return
            frame = by_patch(caller)
            if frame is not None and runner_is_repo() and runner_file(frame.f_code.co_filename):
                return  # the patched runner reading its own caches (pytest's `_read_pyc`: pytest-dev__pytest-11143)
            if frame is not None:
                flag_text("code the patch changed loads code objects (" + event + ")", frame)

    def module_run(code, home):
        """A module's own code about to run (an import: the assertion rewriter's or importlib's `exec`): its code
        objects are the only ones its functions can hold (red team rt4, b1: test functions rebound from pytest's
        probe of a patched class's metaclass, after the import and before the items are made). `home` is the dict it
        runs in (`run_globals`), or None: the only globals its functions have as its import made them."""
        held = module_codes.get(code.co_filename)
        if held is None:
            held = module_codes[code.co_filename] = []
        for kept in held:
            if kept is code:  # by identity: a module run again from its .pyc runs an equal but other code object
                return
        if _len(held) < 8:  # kept alive: their ids stay theirs
            held.append(code)
            run_homes[_id(code)] = home
            code_trees.pop(code.co_filename, None)

    def exec_by_patch(caller):
        """Whether the frame that called `exec` is the patch's code (red team rt5, D2: `exec(compile(<a def>, <the test
        file's name>, "exec"), <a dict>)`): what it runs is not a module's code as an import ran it. The patched runner
        itself (its assertion rewriter) when the patch changes the runner is an importer still."""
        if caller is None or not code_patched(caller.f_code):
            return False
        return not (runner_is_repo() and runner_file(caller.f_code.co_filename))

    def run_globals(caller, code):
        """The module dict an import is about to run a module's code in, read from the frame that called `exec`
        (importlib's `_call_with_frames_removed(exec, code, module.__dict__)`, the assertion rewriter's
        `exec(co, module.__dict__)`, runpy's `exec(code, run_globals)`): the one dict or module among its locals
        whose `__file__` is the code's file. None when the patch's code called `exec` itself, or when not one such
        dict is found (then `rebuilt` looks among the loaded modules by file)."""
        if caller is None or exec_by_patch(caller):
            return None
        try:
            local = caller.f_locals
            values = _tuple(local.values())
        except Exception:
            return None
        found = []
        for value in values:
            for one in value if _type(value) is _tuple else (value,):
                if _type(one) is _dict:
                    candidate = one
                elif _module_type in _mro(_type(one)):
                    candidate = _module_dict(one)
                else:
                    continue
                if candidate.get("__file__") == code.co_filename and not any(seen is candidate for seen in found):
                    found.append(candidate)
        return found[0] if _len(found) == 1 else None

    NESTED = "<nested>"  # the placement of code nested in a function (a factory's or decorator's inner function)

    def placements(filename):
        """{id(code): its place} for every code object of a file's module code as its imports ran it: a def at module
        level is placed at its name, a def in a class body at the class's qualified name and its own ("A.B.test_x"),
        anything within a function at NESTED (the module's and class bodies' own code at their names too)."""
        tree = code_trees.get(filename)
        if tree is None:
            tree, homes = {}, {}
            todo = [(code, "", run_homes.get(_id(code))) for code in module_codes.get(filename, ())]
            while todo and _len(tree) < 100000:
                inner, place, home = todo.pop()
                tree[_id(inner)] = place
                homes[_id(inner)] = home
                nested = place == NESTED or (inner.co_flags & 1 and inner.co_name != "<module>")  # CO_OPTIMIZED: a function
                for const in inner.co_consts:
                    if _type(const) is _code_type:
                        todo.append((const, NESTED if nested else (place + "." if place else "") + const.co_name, home))
            code_trees[filename] = tree
            code_homes[filename] = homes
        return tree

    def own_code(code):
        """Whether a code object was compiled from its file's module code as run by an import in this process."""
        return _id(code) in placements(code.co_filename)

    def import_made(function):
        """Whether a function is a def a module's own code made as an import ran it (red team rt5, D2: a Django test
        method replaced, before the suite was built, by code compiled under its test file's own name, in a copy of
        the module run again): its code object is one of those an import's run of its file's module code holds (by
        identity: `module_run`, which holds no module code the patch's code ran with `exec` itself), the patch's code
        neither compiled code under its file's name nor wrote that file during the run, and it runs under the dict that
        import ran its module in (`rebuilt`). A test file the patch's diff changed is its test file still (an agent
        adding a test to a file the hidden tests do not replace): its code is judged as the import ran it."""
        if _type(function) is not _function_type:
            return False
        code = function.__code__
        filename = code.co_filename
        return _type(filename) is _str and own_code(code) and not (_startswith(filename, "/") and tainted(filename)) and not rebuilt(function, code)

    def made_as(function, place):
        """Whether a test function is, or wraps, the def its file's module code made at `place` (a module-level
        def's place is its name) as that code was run by an import or a runner's own `exec` (`import_made`): red team
        rt5, S2, sympy's gathered tests rebound to `FunctionType(<another test's code>, <the file's namespace>,
        <the new test's name>)`. A wrapper is looked into through its closure (what it can call), not `__wrapped__`,
        and only one that is not the patch's code and that `decorates` (sympy's `XFAIL`, a test file's own
        decorator; of the standard library's, only the decorating modules')."""
        todo, seen = [(function, 0)], _set()
        while todo and _len(seen) < 64:
            inner, depth = todo.pop()
            inner = function_of(inner)
            if _type(inner) is not _function_type or _id(inner) in seen:
                continue
            seen.add(_id(inner))
            code = inner.__code__
            filename = code.co_filename
            if _type(filename) is not _str:
                continue
            if import_made(inner) and placements(filename).get(_id(code)) == place:
                return True
            if depth >= 4 or code_patched(code) or not decorates(inner, code):
                continue
            for value in closure_of(inner):
                todo.append((value, depth + 1))
        return False

    def module_file(module):
        found = _module_dict(module).get("__file__") if module is not None else None
        return found if _type(found) is _str else None

    def home_file(klass):
        """The file of the module a class says it was defined in (its `__module__`, as the type holds it)."""
        name = _class_dict(klass).get("__module__")
        module = _loaded.get(name) if _type(name) is _str else None
        return module_file(module) if module is not None and _module_type in _mro(_type(module)) else None

    def named_places(item, chain):
        """Where the item's own test function must have been defined, for R1 (red team rt5: a test function swapped
        for a sibling test function passed, since any test file's own code was believed): (the files whose nested
        functions stand for it, {(file, place)} of its def, the name an import gave it or None, whether nothing can
        be required: the name is bound by other code than a def or an import, an alias `test_b = test_a` or a factory's
        result, and any of its module's own code is believed as before)."""
        name = _getattr(item, "originalname", None)
        if _type(name) is not _str or not name:
            name = _str(_getattr(item, "name", "")).split("[")[0]
        module, classes = None, []
        for node in chain:
            obj = (_getattr(node, "__dict__", None) or {}).get("_obj")
            if obj is None:
                continue
            if _type in _mro(_type(obj)):
                classes.append(obj)
            elif _module_type in _mro(_type(obj)) and module is None:
                module = obj
        own = module_file(module)
        if classes:
            wanted, files = _set(), _set()
            for klass in _mro(classes[0]):
                if klass is object:
                    continue
                filename = home_file(klass)
                if filename is not None:
                    files.add(filename)
                    wanted.add((filename, _qualname_of(klass) + "." + name))
            found = any(place in placements(filename).values() for filename, place in wanted)
            return files, wanted, None, not found
        if own is None:
            return _set(), _set(), None, True
        if name in placements(own).values():
            return _set((own,)), _set(((own, name),)), None, False
        held = module_codes.get(own)
        if not held:
            return _set((own,)), _set(), None, True
        rules = binding_rules.get(own)
        if rules is None:
            rules = binding_rules[own] = bound_names(held[0])
        stored, imported, star = rules[0], rules[1], rules[2]
        if name in imported:
            return _set((own,)), _set(), imported[name][1] or name, False
        if name not in stored and star:
            return _set((own,)), _set(), name, False
        return _set((own,)), _set(), None, True

    def not_defined(item, obj, chain=()):
        """A test function that is not the one its module's own code defined for it, or None (red team rt4, b1; rt5,
        R1). The function, or a function a wrapper holds in its closure, directly or through other wrappers' closures
        (`mock.patch`, `functools.wraps` decorators, hypothesis's `given`; a `__wrapped__` attribute alone proves
        nothing: `functools.wraps(test)(any_function)` sets it), must be code of a test module's own module code, run
        under that module's globals, and: when a def of a module or class is reachable so, the def its own module's
        code made under the item's name (`originalname`; in its class's body, or a base class's; for a name its module
        imported, a module-level def of that name in a test file); else a function nested in a function of its own
        module or class's module (a factory's test). A name its module binds otherwise (an alias, a factory's result)
        requires no more than its module's own code."""
        if obj is None:
            return None  # unittest's items hold none after teardown; their class's method is read below
        nodeid = _str(_getattr(item, "nodeid", "?"))
        if _type(obj) is not _function_type:
            return "the test function of " + nodeid + " is not a function its module defined (" + _str(_name_of(_type(obj))) + ")"
        files, wanted, imported_as, lenient = named_places(item, chain)
        todo, seen = [(obj, 0)], _set()
        defs, nested = [], []
        while todo and _len(seen) < 64:
            function, depth = todo.pop()
            if _id(function) in seen:
                continue
            seen.add(_id(function))
            code = function.__code__
            if test_file(code.co_filename) and own_code(code) and not rebuilt(function, code):
                place = placements(code.co_filename)[_id(code)]
                (nested if place == NESTED else defs).append((code.co_filename, place))
            if code is skip_wrapper():
                return None  # `unittest.skip` put its wrapper in the method's place: it only raises SkipTest
            if depth < 4 and decorates(function, code):
                for value in closure_of(function):
                    value = function_of(value)
                    if _type(value) is _function_type:
                        todo.append((value, depth + 1))
        if lenient and (defs or nested):
            return None
        for filename, place in defs:
            if (filename, place) in wanted or (imported_as is not None and place == imported_as):
                return None
        if not defs:
            for filename, _place in nested:
                if filename in files:
                    return None
        code = obj.__code__
        name = code.co_filename if _type(code.co_filename) is _str else "?"
        return "a test function was replaced after its module was imported (" + nodeid + ": runs " + _str(code.co_name) + " of " + name + ")"

    # The standard library's modules whose functions wrap a test (mock.patch, a ContextDecorator, unittest's skips).
    decorating = (
        "unittest/mock.py",
        "contextlib.py",
        "unittest/case.py",
        "unittest/async_case.py",
        "functools.py",
        "asyncio/coroutines.py",
        "typing.py",
        "warnings.py",
    )

    def decorates(function, code):
        """Whether a wrapper's closure may stand for the test it holds (red team rt5, R1b: `types.FunctionType(<a
        standard-library closure's code that never calls its cell>, vars(types), name, None, (cell(test),))`): its
        code runs under its own module's globals (not rebuilt), and a standard-library wrapper is one of the modules
        that decorate tests."""
        if rebuilt(function, code):
            return False
        filename = code.co_filename
        if _type(filename) is not _str or not in_stdlib(filename):
            return True
        for suffix in decorating:
            if _endswith(filename, "/" + suffix):
                return True
        return False

    def skip_wrapper():
        """The code of the function `unittest.skip` puts in place of a test it skips (nested in `skip`'s code), from
        unittest as the test process first imported it, or None. Such a test is skipped, never passed, so it is no
        forge (calibration: `@unittest.skip` on a TestCase method was flagged as a replaced test function)."""
        case = state["machinery"].get("unittest.case")
        skip = _module_dict(case).get("skip") if case is not None else None
        todo = [skip.__code__] if _type(skip) is _function_type else []
        while todo:
            code = todo.pop()
            if code.co_name == "skip_wrapper":
                return code
            todo.extend(const for const in code.co_consts if _type(const) is _code_type)
        return None

    def test_file(filename):
        """A collected test module's file, or one named as test code outside the standard library and the installed
        packages (a base module the tests import theirs from): not a library's function that does nothing."""
        if _type(filename) is not _str or _startswith(filename, "<") or in_stdlib(filename) or "-packages/" in filename:
            return False
        if filename in test_files:
            return True
        parts = filename.split("/")
        base = parts[-1]
        return (
            _startswith(base, "test")
            or _endswith(base, "_test.py")
            or _endswith(base, "tests.py")
            or "test" in parts[:-1]
            or "tests" in parts[:-1]
            or "testing" in parts[:-1]
        )

    def has_module(chain):
        """Whether a node of the item's chain is a module (pytest's `Module`): its test functions are checked, and its
        file is a test module's."""
        found = False
        for node in chain:
            module = (_getattr(node, "__dict__", None) or {}).get("_obj")
            if module is not None and _module_type in _mro(_type(module)):
                filename = _module_dict(module).get("__file__")
                if _type(filename) is _str:
                    test_files.add(filename)
                found = True
        return found

    # ------------------------------------------------------------------ what decided the outcome

    def outcomes(values):
        """pytest's outcome exceptions and `xfail`'s code, from the plugin's import (before conftest files)."""
        if state["outcomes"] is None and _len(values) == 6:
            state["outcomes"] = values
            protect_rewrite_path()

    def machinery(objects):
        """The runner's modules, the first time each is handed over (pytest's at configure; unittest's when the test
        process first imports it, which may be again inside a test's own inner pytest run: the first is the one
        the collected test modules imported). unittest's SkipTest, when the plugin's import came before unittest's."""
        for item in objects:
            if _type(item) is _module_type:
                name = _module_dict(item).get("__name__")
                if _type(name) is _str and name not in state["machinery"]:
                    state["machinery"][name] = item
                    found = state["outcomes"]
                    skip_test = _module_dict(item).get("SkipTest") if name == "unittest.case" else None
                    if found is not None and found[5] is None and _type(skip_test) is _type:
                        state["outcomes"] = found[:5] + (skip_test,)

    STORE_NAME, STORE_GLOBAL = opcodes.get("STORE_NAME"), opcodes.get("STORE_GLOBAL")
    IMPORT_NAME, IMPORT_FROM = opcodes.get("IMPORT_NAME"), opcodes.get("IMPORT_FROM")
    IMPORT_STAR, INTRINSIC_1 = opcodes.get("IMPORT_STAR"), opcodes.get("CALL_INTRINSIC_1")
    EXTENDED_ARG = opcodes.get("EXTENDED_ARG")
    STORE_ATTR, LOAD_FAST, CACHE = opcodes.get("STORE_ATTR"), opcodes.get("LOAD_FAST"), opcodes.get("CACHE")
    # Between an import and the store of its name only these come (a `from` import's names, its cleanup).
    passing_ops = _set(
        opcodes.get(name) for name in ("IMPORT_FROM", "POP_TOP", "LOAD_CONST", "EXTENDED_ARG", "CACHE", "SWAP", "COPY", "ROT_TWO", "NOP")
    )

    def instructions(code):
        """(opcode, argument) of a code object, read from its bytes (not `dis`: Python code an import could replace)."""
        raw, extended = code.co_code, 0
        for offset in _range(0, _len(raw) - 1, 2):
            op, arg = raw[offset], raw[offset + 1] | extended
            if op == EXTENDED_ARG:
                extended = arg << 8
                continue
            extended = 0
            yield op, (arg if op >= HAVE_ARGUMENT else None)

    def bound_names(code):
        """(names the module's own code binds, names bound by `import` -> (module, attribute), star?, dynamic?,
        names its functions rebind with `global`)."""
        stored, imported, star, dynamic, rebound = _set(), {}, False, False, _set()
        names, pending = code.co_names, None
        for op, arg in instructions(code):
            if op == IMPORT_NAME:
                pending = (names[arg], None)
            elif op == IMPORT_FROM and pending is not None:
                pending = (pending[0], names[arg])
            elif op == IMPORT_STAR or (op == INTRINSIC_1 and arg == 2):  # 3.12+: INTRINSIC_IMPORT_STAR
                star = True
            elif op == STORE_NAME or op == STORE_GLOBAL:
                stored.add(names[arg])
                if pending is not None:
                    imported[names[arg]] = pending
                    if pending[1] is None:
                        pending = None
            elif op not in passing_ops:
                pending = None
        todo = [const for const in code.co_consts if _type(const) is _type(code)]
        while todo:
            inner = todo.pop()
            if "globals" in inner.co_names or "vars" in inner.co_names:
                dynamic = True
            for op, arg in instructions(inner):
                if op == STORE_GLOBAL:
                    stored.add(inner.co_names[arg])
                    rebound.add(inner.co_names[arg])
            todo.extend(const for const in inner.co_consts if _type(const) is _type(code))
        for name in ("globals", "vars", "setattr", "exec"):
            if name in code.co_names:
                dynamic = True
        for inner in code.co_consts:
            if _type(inner) is _type(code) and inner.co_name in xunit_module_functions:
                stored.update(names_set_on_argument(inner))
        return stored, imported, star, dynamic, rebound

    # A test module's own module-level setup and teardown, which pytest (and nose before it) hands the module object.
    xunit_module_functions = ("setup_module", "teardown_module", "setUpModule", "tearDownModule")

    def names_set_on_argument(code):
        """The names a function binds on its first argument (`def setup_module(mod): mod.x = ...`: names the test
        module's own code binds, through the module object pytest hands it; calib3's cause G, pytest-dev__pytest-5103's
        `test_assertrewrite._old_reprcompare`)."""
        found, previous = _set(), None
        if code.co_argcount < 1:
            return found
        for op, arg in instructions(code):
            if op == STORE_ATTR and previous == (LOAD_FAST, 0):
                found.add(code.co_names[arg])
            if op != CACHE:
                previous = (op, arg)
        return found

    def module_code(module):
        path = _module_dict(module).get("__file__")
        if _type(path) is not _str or not _endswith(path, ".py"):
            return None
        try:
            return _compile(read_source(path), path, "exec", 0, True)
        except Exception:
            return None

    def same(first, second):
        """Whether two tuples hold the same objects (identity, not equality: `__eq__` is anyone's code)."""
        if _len(first) != _len(second):
            return False
        for a, b in _zip(first, second):
            if a is not b:
                return False
        return True

    def name_of(module):
        name = _module_dict(module).get("__name__")
        return name if _type(name) is _str else "?"

    def expected(imported, name):
        """What an `import` of pytest's or unittest's machinery bound `name` to, or None when it is not theirs."""
        source, attribute = imported[name]
        if _type(source) is not _str:
            return None
        found = state["machinery"]
        if attribute is None:
            # `import a.b` binds `a`, `import a.b as c` binds `a.b`: either is what the import gave.
            top = source.split(".")[0]
            if top not in found and source not in found:
                return None
            return (found.get(top), found.get(source))
        module = found.get(source)
        if module is None:
            return None
        # `from a import b` gives a's attribute b or the submodule a.b; `import a.b as c` (3.7+) the submodule.
        options = (_module_dict(module).get(attribute), found.get(source + "." + attribute), module if _endswith(source, "." + attribute) else None)
        for option in options:
            if option is not None:
                return options
        return None

    def module_problem(module, held, rules, exempt):
        now = _module_dict(module)
        stored, imported, star, dynamic, rebound = rules
        rewrite = state["machinery"].get("_pytest.assertion.rewrite")
        mine = _id(module)
        for name, value in now.items():
            if _type(name) is not _str:
                return "a name that is not a string"
            if (mine, name) in exempt:
                continue
            if name == "@pytest_ar":
                if rewrite is not None and value is not rewrite:
                    return "@pytest_ar"
                continue
            if name == "@py_builtins":
                if value is not builtins:
                    return "@py_builtins"
                continue
            if name == "__builtins__":
                if value is not builtins and value is not builtins_dict:
                    return "__builtins__"
                continue
            if _startswith(name, "__") and _endswith(name, "__"):
                continue
            if name in watched and value is not watched[name] and name not in stored:
                return name + " (it shadows the builtin)"
            if name not in stored and not star and not dynamic and name not in held and not pytests_xunit(name, value):
                return name + " (the module's code never binds it)"
            # A binding of the module's own (an import, a definition) now holding the patch's code, that the
            # module's functions never rebind (`global`) and the test's monkeypatch did not set (red team rt2, b8c:
            # `Money` rebound during setup to a class of the patch's, put back at teardown).
            if not dynamic and name not in rebound and name in held and value is not held[name] and the_patchs(value):
                return name + " (rebound to the patch's code)"
            if name in imported:
                wanted = expected(imported, name)
                if wanted is not None:
                    for option in wanted:
                        if option is not None and value is option:
                            break
                    else:
                        return name + " (not what its import of the test machinery gave)"
        for name in ("@pytest_ar", "@py_builtins"):
            if name in held and name not in now:
                return name
        return None

    def pytests_xunit(name, value):
        """Whether a test module's name is the one pytest before 8 binds on it at collection for its `setup_module` or
        `setup_function` (`self.obj.__pytest_setup_module = ...` in class `Module`, so name-mangled), holding pytest's
        own xunit fixture: `_pytest/python.py`'s function, or `_pytest/fixtures.py`'s wrapper of it (calib4:
        pytest-dev__pytest-5103's `test_assertrewrite`, 8399's `test_nose`). Nothing else under that name is."""
        if name not in ("_Module__pytest_setup_module", "_Module__pytest_setup_function"):
            return False
        found = state["machinery"]
        python, fixtures = found.get("_pytest.python"), found.get("_pytest.fixtures")
        if python is None or fixtures is None:
            return False
        python_file, fixtures_file = _module_dict(python).get("__file__"), _module_dict(fixtures).get("__file__")
        if _type(value) is not _function_type or _type(python_file) is not _str:
            return False
        inner = [value]
        if value.__code__.co_filename == fixtures_file:
            # `fixture()`'s wrapper holds the function in its closure, or (pytest 4-7) as `__pytest_wrapped__.obj`.
            inner.extend(closure_of(value))
            wrapped = (_getattr(value, "__dict__", None) or {}).get("__pytest_wrapped__")
            compat = found.get("_pytest.compat")
            kind = _module_dict(compat).get("_PytestWrapper") if compat is not None else None
            if kind is not None and _type(wrapped) is kind:
                held = _getattr(wrapped, "__dict__", None)
                if _type(held) is _dict:
                    inner.append(held.get("obj"))
        for function in inner:
            if (
                _type(function) is _function_type
                and function.__code__.co_filename == python_file
                and _startswith(function.__code__.co_name, "xunit_setup_")
            ):
                return True
        return False

    def the_patchs(value, depth=0):
        """Whether a value is the patch's code: a function, method or code object of its, a partial of one, a class
        (or an instance of one) with a method of its, or an object whose own attributes hold one (a mock whose
        `side_effect` is the patch's function). Read with the types' own getters, identity only."""
        kind = _type(value)
        if kind is _function_type:
            return code_patched(value.__code__)
        if kind is _method_type:
            return the_patchs(value.__func__, depth + 1)
        if kind is _code_type:
            return code_patched(value)
        if depth > 3 or value is None or kind in (_int, _str, _bytes, _bool, _float):
            return False
        if kind is _partial:
            for part in (value.func,) + _tuple(value.args) + _tuple((value.keywords or {}).values()):
                if the_patchs(part, depth + 1):
                    return True
            return False
        klass = value if _type in _mro(kind) else kind
        for base in _mro(klass)[:20]:
            if base is object:
                break
            for count, attribute in _enumerate(_tuple(_class_dict(base).values())):
                if count > 200:
                    break
                inner = attribute
                if _type(attribute) in (classmethod, staticmethod):
                    inner = attribute.__func__
                elif _type(attribute) is property:
                    inner = attribute.fget
                if _type(inner) is _function_type and code_patched(inner.__code__):
                    return True
        if klass is value:
            return False
        try:
            own = _getattr(value, "__dict__", None)
        except Exception:
            return False
        if _type(own) is _dict:
            for count, (key, attribute) in _enumerate(_tuple(own.items())):
                if count > 200:
                    break
                if _type(key) is _str and _startswith(key, "_spec"):
                    continue  # a mock's spec (`autospec=True` of the real class) constrains it, it does not run it
                if _type(attribute) in (_function_type, _method_type, _partial) or _type in _mro(_type(attribute)):
                    if the_patchs(attribute, depth + 1):
                        return True
        return False

    def function_of(obj):
        """A test's function: a method's function (pytest binds a class's tests to a new instance per test)."""
        return obj.__func__ if _type(obj) is _method_type else obj

    def markers_of(chain):
        return _tuple(_tuple(_getattr(node, "own_markers", ()) or ()) for node in chain)

    def closure_of(obj):
        cells = obj.__closure__ if _type(obj) is _function_type else None
        return _tuple(cell.cell_contents for cell in cells) if cells else ()

    def collected(objects):
        """Snapshot after collection (the test modules, the items, the fixture definitions); a problem already there, or None."""
        if items or modules:
            return None
        seen = _set()
        problem = None
        for item in objects:
            node_dict = _getattr(item, "__dict__", None)
            if _type(node_dict) is not _dict:
                continue
            chain, node = [], item
            while node is not None and _len(chain) < 50:
                chain.append(node)
                node = _getattr(node, "parent", None)
            obj = function_of(node_dict.get("_obj", node_dict.get("obj")))
            remember_item(item)
            items.append((item, node_dict, obj, closure_of(obj), markers_of(chain), chain))
            functions[_id(item)] = (item, obj)
            if _type(obj) is _function_type:
                codes[_id(item)] = obj.__code__
            if problem is None:
                problem = foreign_function(item, obj)
            if problem is None and has_module(chain):
                problem = not_defined(item, obj, chain)
            for node in chain:
                module = (_getattr(node, "__dict__", None) or {}).get("_obj")
                if module is None or _module_type not in _mro(_type(module)) or _id(module) in seen:
                    continue
                seen.add(_id(module))
                code = module_code(module)
                if code is None:
                    continue
                rules = bound_names(code)
                modules.append((module, _dict(_module_dict(module)), rules))
                found = module_problem(module, {}, rules, ())
                if found is not None and problem is None:
                    problem = name_of(module) + "." + found
                dropped = asserts_dropped(module)
                if dropped is not None and problem is None:
                    problem = "the code run for test module " + name_of(module) + " has fewer raise paths than its file in " + dropped
            if problem is None and not hooks:
                found = rewrite_path_changed()
                if found is not None:
                    problem = "what pytest's assertion rewriter runs (" + found + ")"
            if not hooks:
                found = hook_state(_getattr(_getattr(item, "session", None), "config", None))
                if found and problem is None:
                    problem = found
            if not fixtures:
                manager = _getattr(_getattr(item, "session", None), "_fixturemanager", None)
                definitions = _getattr(manager, "_arg2fixturedefs", None)
                if _type(definitions) is _dict:
                    fixtures.append((definitions, fixture_state(definitions)))
        return problem

    # ------------------------------------------------------------------ class S: what pytest compiled of a test file
    # (red team rt6a, F4: `ast.iter_fields` rebound by library code during collection, so that pytest's assertion
    # rewriter compiled every later test module with its asserts turned into `pass`; nothing of the patch's on the
    # stack at the compile, and the tampering undone again before any test ran.)

    rewrite_path = []  # (name, its live namespace, {key: value} held, its size or None for a module)
    _probe = _compile("async def f():\n    assert (x, 1)\n", "<swe-env probe>", "exec", 0x400, True)  # PyCF_ONLY_AST
    _async_def = _type(_probe.body[0])
    _assert = _type(_probe.body[0].body[0])
    _tuple_node = _type(_probe.body[0].body[0].test)
    _constant = _type(_probe.body[0].body[0].test.elts[1])
    _probe = _compile("@d\nclass C:\n    def f(self):\n        return lambda: 0\n", "<swe-env probe>", "exec", 0x400, True)
    _class_def = _type(_probe.body[0])
    _def = _type(_probe.body[0].body[0])
    _lambda = _type(_probe.body[0].body[0].body[0].value)
    _ast_base = _mro(_def)[-2]
    _node_dict = _class_dict(_ast_base)["__dict__"].__get__
    del _probe
    RAISE_VARARGS = opcodes.get("RAISE_VARARGS")
    _linestarts = dis.findlinestarts

    def protect_rewrite_path():
        """What pytest's assertion rewriter runs besides its own module, as it is at the plugin's import (before conftest
        files and collection, so before any of the repository's code): `ast`'s functions and every class it defines
        (the node classes' `_fields` included), and the rewriter's own module and classes (unless the patch changes
        the runner: then they are the patch's anyway). Compared each time the rewriter compiles a test module."""
        names = ["ast", "_ast"] + ([] if runner_is_repo() else ["_pytest.assertion.rewrite"])
        for name in names:
            module = _loaded.get(name)
            if module is None or _module_type not in _mro(_type(module)):
                continue
            contents = _module_dict(module)
            # `__warningregistry__` is the warnings machinery's cache, dropped and remade by honest suites (astropy's
            # `treat_deprecations_as_exceptions` deletes every module's; astropy-7166's gold patch was flagged, calib8).
            held = _dict((key, value) for key, value in contents.items() if key != "__warningregistry__")
            rewrite_path.append((name, contents, held, None))
            for key, value in _tuple(contents.items()):
                if _type(key) is _str and _type in _mro(_type(value)) and _class_dict(value).get("__module__") in ("ast", "_ast", name):
                    inner = _class_dict(value)
                    rewrite_path.append((name + "." + key, inner, _dict(inner), _len(inner)))

    def rewrite_path_changed():
        """The first binding of the rewriter's path that is not what it was at the plugin's import, or None."""
        for name, now, held, size in rewrite_path:
            if size is not None and _len(now) != size:
                return name + " (an attribute added or removed)"
            for key, value in held.items():
                if now.get(key, rewrite_path) is not value:
                    return name + "." + _str(key)
        return None

    def by_rewriter(frame):
        """Whether a frame is pytest's assertion rewriter reading a test file (`_rewrite_test`) or running its code
        (`exec_module`), or `ast.parse` called by the former."""
        code = _getattr(frame, "f_code", None)
        if code is not None and code.co_name == "parse" and _endswith(code.co_filename, "/ast.py"):
            frame = frame.f_back
            code = _getattr(frame, "f_code", None)
            if code is None or code.co_name != "_rewrite_test":
                return False
        return code is not None and code.co_name in ("_rewrite_test", "exec_module") and _endswith(code.co_filename, "_pytest/assertion/rewrite.py")

    def rewrite_compiles(filename, caller):
        """pytest's assertion rewriter parses a test file (its `compile` of the syntax tree it made raises no audit
        event) or runs the code it made of it: that code must be what its own path makes of the file, so that path
        must be as it was before any repository code ran."""
        if not by_rewriter(caller):
            return
        what = rewrite_path_changed()
        if what is not None and not state.get("rewrite_said"):
            state["rewrite_said"] = True  # said once
            flag_text("what pytest's assertion rewriter runs was changed (" + what + ") when it compiled " + filename, caller)

    def code_key(code):
        """A code object's place in its file: its name and first line (a module's code: line 0, whatever the version)."""
        return (code.co_name, 0 if code.co_name == "<module>" else code.co_firstlineno)

    def raise_lines(code):
        """The lines of a code object's `raise` instructions (a line once: 3.12+ compilers copy a small raising block
        into each jump to it, so one assert can give several raises on its line)."""
        starts = _dict(_linestarts(code))
        raw, line, found = code.co_code, None, _set()
        for offset in _range(0, _len(raw) - 1, 2):
            line = starts.get(offset, line)
            if raw[offset] == RAISE_VARARGS:
                found.add(line)
        return found

    def raise_counts(code):
        """{code_key: the number of lines with a `raise` instruction} over a module's code and every code object in it."""
        lines, todo = {}, [code]
        while todo and _len(lines) < 100000:
            inner = todo.pop()
            held = lines.get(code_key(inner))
            if held is None:
                held = lines[code_key(inner)] = _set()
            held.update(raise_lines(inner))
            todo.extend(const for const in inner.co_consts if _type(const) is _code_type)
        return _dict((key, _len(found)) for key, found in lines.items())

    def constant_asserts(tree):
        """{code_key: the number of asserts whose test is a constant or a tuple} of a module's syntax tree: a compiler
        may drop those (always true) from the plain code and from the rewritten code alike, or not, by version."""
        found, todo = {}, [(tree, ("<module>", 0))]
        while todo and _len(todo) < 1000000:
            node, key = todo.pop()
            kind = _type(node)
            fields = _node_dict(node)
            if kind is _def or kind is _async_def or kind is _class_def:
                lines = [fields.get("lineno", 0)] + [_getattr(d, "lineno", 0) for d in fields.get("decorator_list", ())]
                key = (fields.get("name"), min(lines))
            elif kind is _lambda:
                key = ("<lambda>", fields.get("lineno", 0))
            elif kind is _assert and _type(fields.get("test")) in (_constant, _tuple_node):
                found[key] = found.get(key, 0) + 1
            for value in fields.values():
                for one in value if _type(value) is _list else (value,):
                    if _ast_base in _mro(_type(one)):
                        todo.append((one, key))
        return found

    def read_source(path):
        handle = _open(path, os.O_RDONLY)
        try:
            chunks = []
            while True:
                chunk = _read(handle, 1 << 20)
                if not chunk:
                    break
                chunks.append(chunk)
        finally:
            _close(handle)
        return _bytes().join(chunks)

    def asserts_dropped(module):
        """Whether the code an import ran for a test module has `raise` instructions on fewer lines in one of its
        functions than the same file compiled here (builtin `compile`, captured at start-up) has, less the asserts a
        compiler may drop: every assert of the file's gives a raise on its line in both, whatever pytest's rewriter
        made of its test. The name of
        that function, or None (also when nothing ran is known for the file)."""
        contents = _module_dict(module)
        path = contents.get("__file__")
        if _type(path) is not _str or not _endswith(path, ".py"):
            return None
        held = module_codes.get(path) or ()
        ran = [code for code in held if run_homes.get(_id(code)) is contents] or _list(held)
        if not ran:
            return None
        try:
            source = read_source(path)
            expected = raise_counts(_compile(source, path, "exec", 0, True))
            tolerated = constant_asserts(_compile(source, path, "exec", 0x400, True))
        except Exception:
            return None
        for code in ran:
            found = raise_counts(code)
            for key, count in expected.items():
                if found.get(key, 0) < count - tolerated.get(key, 0):
                    return _str(key[0]) + " (line " + _str(key[1]) + ")"
        return None

    def implementations(caller):
        """A pluggy hook caller's implementations (pluggy 1.x `_hookimpls`, 0.13 `_nonwrappers` + `_wrappers`;
        slots or a __dict__), read as attributes pluggy's classes define (their integrity is checked too)."""
        found = _getattr(caller, "_hookimpls", None)
        if found is None:
            found = [*(_getattr(caller, "_nonwrappers", None) or ()), *(_getattr(caller, "_wrappers", None) or ())]
        return _tuple(found)

    def rebuilt(function, code):
        """Whether a function runs a module's own code under globals that are not that module's own dict (red team
        rt4, a1: `types.FunctionType(pytest_runtest_makereport.__code__, copy)` with `TestReport` replaced in the
        copy, registered as a plugin: pytest's code object, so not the patch's; rt5, A1b: the same with the copy's
        `__name__` renamed, which the globals' own name decided before). The module is found from the code, never
        from the globals: the dict its import ran that code in (`module_run`), else, for a module imported before
        the hook (or in a way `run_globals` cannot read), the dicts of the loaded modules whose file is the code's."""
        found = _function_globals(function)
        filename = code.co_filename
        if _type(filename) is not _str or _startswith(filename, "<"):
            return False
        if _id(code) in placements(filename):
            home = code_homes[filename].get(_id(code))
            if home is not None:
                return home is not found
        homes = files_homes.get(filename)
        if homes is None or not any(home is found for home in homes):
            homes = files_homes[filename] = _list(
                _module_dict(module) for module in _tuple(_loaded.values()) if _module_type in _mro(_type(module)) and module_file(module) == filename
            )
        return _len(homes) > 0 and not any(home is found for home in homes)

    def hook_state(config):
        """Snapshot every pytest hook's implementations and their functions (red team, 7 December: a plugin
        registered on the live config, or a HookImpl's `function` replaced, decides outcomes before pytest's
        own); an implementation that is code the patch changed, or None."""
        # The plugin manager's own relay: pytest 7-8's `config.hook` is a proxy that caches only the hooks used.
        relay = _getattr(_getattr(config, "pluginmanager", None), "hook", None)
        relay_dict = _getattr(relay, "__dict__", None)
        if _type(relay_dict) is not _dict:
            return None
        problem = None
        for name, caller in _tuple(relay_dict.items()):
            impls = implementations(caller)
            funcs = _tuple(_getattr(impl, "function", None) for impl in impls)
            hooks.append((name, caller, impls, funcs))
            for function in funcs:
                code = _getattr(function, "__code__", None)
                # When the patch changes the runner itself (pytest's own tasks), its hooks are the patch's code.
                runner_own = code is not None and runner_is_repo() and runner_file(code.co_filename)
                if problem is None and code is not None and code_patched(code) and not runner_own:
                    problem = "pytest hook " + _str(name) + " implemented by code the patch changed (" + _str(code.co_filename) + ")"
                if problem is None and code is not None and _type(function) is _function_type and rebuilt(function, code):
                    problem = "pytest hook " + _str(name) + " implemented by a module's own code under other globals (" + _str(code.co_filename) + ")"
        return problem

    def method_shadowed(item, node_dict):
        """A name in the item's own __dict__ that its class defines as a function (`runtest`, `setup`, ...): an
        instance attribute that replaces how the test runs (red team rt2, b10), or None. pytest sets none."""
        for name in _tuple(node_dict):
            if _type(name) is not _str or name[:2] == "__":
                continue
            for klass in _mro(_type(item)):
                value = _class_dict(klass).get(name)
                if value is not None:
                    if _type(value) is _function_type:
                        return name
                    break
        return None

    def foreign_function(item, obj):
        """A test function (or a wrapper of it) that is code the patch changed or compiled, or None."""
        depth = 0
        while _type(obj) is _function_type and depth < 20:
            filename = obj.__code__.co_filename
            if code_patched(obj.__code__):
                return (
                    "the test function of "
                    + _str(_getattr(item, "nodeid", "?"))
                    + " is code the patch changed ("
                    + (filename if _type(filename) is _str else "?")
                    + ")"
                )
            manager = patched_manager(obj)
            if manager is not None:
                return (
                    "the test function of "
                    + _str(_getattr(item, "nodeid", "?"))
                    + " runs inside a context manager whose "
                    + manager
                    + " is code the patch changed"
                )
            obj = (obj.__dict__ or {}).get("__wrapped__")
            depth += 1
        return None

    def patched_manager(wrapper):
        """For a standard-library wrapper of the test (`contextlib.ContextDecorator`'s `inner`), the method of the
        context manager in its closure that is code the patch changed, as "Class.__exit__", or None (red team rt8a,
        F1b: a library test decorator made from `ContextDecorator` whose `__exit__` swallowed the test's raise; the
        same decorator written as a plain function of the patched file is the patch's code by its own code)."""
        filename = wrapper.__code__.co_filename
        if _type(filename) is not _str or not _startswith(filename, stdlib):
            return None
        for cell in wrapper.__closure__ or ():
            try:
                held = cell.cell_contents
            except ValueError:
                continue
            for klass in _mro(_type(held)):
                if klass is object:
                    break
                for name in ("__enter__", "__exit__", "__aenter__", "__aexit__"):
                    method = _class_dict(klass).get(name)
                    if _type(method) is _function_type and code_patched(method.__code__):
                        return _str(_qualname_of(klass)) + "." + name
        return None

    def fixture_state(definitions):
        held = {}
        for name, defs in definitions.items():
            defs = _tuple(defs)
            held[name] = (defs, _tuple(_getattr(d, "func", None) for d in defs))
        return held

    def changed(exempt=()):
        """What changed since the snapshots (but the (id(object), name) a test's monkeypatch set), or None;
        said once: after a change is reported, nothing more is."""
        if state.get("said"):
            return None
        what = change(exempt)
        if what is not None:
            state["said"] = True
        return what

    def change(exempt):
        mine = _id(builtins)
        for name, value in watched.items():
            if builtins_dict.get(name, watched) is not value and (mine, name) not in exempt:
                return "builtins." + name
        for module, held, rules in modules:
            found = module_problem(module, held, rules, exempt)
            if found is not None:
                return name_of(module) + "." + found
        for item, node_dict, obj, contents, markers, chain in items:
            nodeid = _str(_getattr(item, "nodeid", "?"))
            found = function_changed(item, node_dict, obj, contents, nodeid, False)
            if found is not None:
                return found
            now = markers_of(chain)
            if _len(now) != _len(markers):
                return "the markers of " + nodeid
            for a, b in _zip(now, markers):
                if not same(a, b):
                    return "the markers of " + nodeid
        for name, caller, impls, funcs in hooks:
            now = implementations(caller)
            if not same(now, impls):
                return "the implementations of pytest hook " + _str(name)
            if not same(_tuple(_getattr(impl, "function", None) for impl in now), funcs):
                return "the function of an implementation of pytest hook " + _str(name)
        for definitions, held in fixtures:
            if _set(definitions) != _set(held):
                return "the fixture definitions"
            for name, (defs, funcs) in held.items():
                if not same(_tuple(definitions[name]), defs):
                    return "the definitions of fixture " + _str(name)
                if not same(_tuple(_getattr(d, "func", None) for d in defs), funcs):
                    return "the function of fixture " + _str(name)
        return None

    def function_changed(item, node_dict, obj, contents, nodeid, right_before_call):
        """What changed of an item's test function since collection (the function in its place, its code, its
        closure, a method of its class shadowed on the item), or None. Between phases an item may hold no function
        (unittest's drop it at teardown); right before the call it must hold the collected one, or a wrapper an outer
        `pytest_pyfunc_call` wrapper made of it that holds it (pytest-asyncio's)."""
        now = function_of(node_dict.get("_obj", node_dict.get("obj")))
        if right_before_call:
            replaced = obj is not None and now is not obj and not holds(now, obj)
        else:
            replaced = obj is not None and now is not None and now is not obj
        if replaced:
            return "the test function of " + nodeid
        if _type(obj) is _function_type and obj.__code__ is not codes.get(_id(item), obj.__code__):
            return "the code of the test function of " + nodeid
        if contents and not same(closure_of(obj), contents):
            return "the test function's closure of " + nodeid
        shadowed = method_shadowed(item, node_dict)
        if shadowed is not None:
            return "the item " + nodeid + " got its own " + shadowed + ", hiding its class's method"
        return None

    def item_changed(item, exempt):
        """What changed of one item since collection, right before pytest calls its test function (red team rt5, R2):
        its test function (or a wrapper an outer `pytest_pyfunc_call` wrapper made of it, pytest-asyncio's, that holds
        it in its closure), that function's code and closure, a method of its class shadowed on it, its test module's
        bindings; or None."""
        for entry in items:
            if entry[0] is item:
                break
        else:
            return None
        item, node_dict, obj, contents, markers, chain = entry
        nodeid = _str(_getattr(item, "nodeid", "?"))
        found = function_changed(item, node_dict, obj, contents, nodeid, True)
        if found is not None:
            return found
        for node in chain:
            own = (_getattr(node, "__dict__", None) or {}).get("_obj")
            for module, held, rules in modules:
                if module is own:
                    found = module_problem(module, held, rules, exempt)
                    if found is not None:
                        return name_of(module) + "." + found
        return None

    def holds(wrapper, function):
        """Whether a function holds `function` in its closure, directly or through other functions' closures."""
        todo, seen = [(wrapper, 0)], _set()
        while todo and _len(seen) < 64:
            found, depth = todo.pop()
            if found is function:
                return True
            if _type(found) is not _function_type or _id(found) in seen or depth > 4:
                continue
            seen.add(_id(found))
            todo.extend((function_of(value), depth + 1) for value in closure_of(found))
        return False

    def kind_of(excinfo):
        """What the exception pytest caught says: None (none), "skip", "xfail", "exit" or "fail", and its name."""
        if excinfo is None:
            return None, None
        value = _getattr(excinfo, "value", None)
        found = state["outcomes"]
        name = _name_of(_type(value))
        if found is None:
            return "fail", name
        skipped, xfailed, failed, exited, xfail_code, skip_test = found
        classes = _mro(_type(value))
        if xfailed in classes:
            # Only pytest's own `xfail()` raises it: the rewritten `assert` of a module whose
            # `AssertionError` was rebound, or a raise by hand, is not an expected failure.
            tb, last, depth = _getattr(excinfo, "tb", None), None, 0
            while tb is not None and depth < 10000:
                last, tb = tb, tb.tb_next
                depth += 1
            code = last.tb_frame.f_code if last is not None else None
            if code is not None and (code is xfail_code or (xfail_code is None and _endswith(_str(code.co_filename), "_pytest/outcomes.py"))):
                return "xfail", name
            return "forged", name + " raised by other code than pytest.xfail()"
        if skipped in classes or (skip_test is not None and skip_test in classes):
            return "skip", name
        if exited in classes:
            return "exit", name
        return "fail", name

    passing = ("passed", "xfailed", "xpassed")

    def reading(frame, status):
        """(status to record, why it differs from pytest's or None), from pytest's `call_and_report` frame."""
        try:
            local = frame.f_locals
            call, item = local.get("call"), local.get("item")
        except Exception:
            return status, None
        when = _getattr(call, "when", None)
        failing = "failed" if when == "call" else "error"
        held = functions.get(_id(item))
        if held is not None and held[0] is item and held[1] is not None:
            node_dict = _getattr(item, "__dict__", None) or {}
            now = function_of(node_dict.get("_obj", node_dict.get("obj")))
            if now is not None and now is not held[1]:
                return failing, "the test function was replaced after collection"
        kind, what = kind_of(_getattr(call, "excinfo", None))
        if kind == "forged" or (kind == "fail" and status in passing + ("skipped",) and not (status == "xfailed" and xfail_marked(item))):
            if status in ("failed", "error"):
                return status, None
            return failing, "pytest's report says " + status + " but the " + _str(when) + " phase raised " + _str(what)
        if kind == "skip" and status in ("passed", "xpassed"):
            return "skipped", "pytest's report says " + status + " but the " + _str(when) + " phase raised a skip"
        return status, None

    # ------------------------------------------------------------------ whose report it is (red team rt4, a3 and a4)

    # What each item was when collected: its node id and, for a unittest test, its TestCase class and method name.
    # Records are written under that id (rt4 a4: every item's `_nodeid` relabelled during the run and one passing
    # item re-run under each listed id), and each phase of an item is reported once.
    collected_as = {}  # id(item) -> (item, node id as collected, (TestCase class, method name) or None)
    phases = _set()  # (id(item), phase) already reported
    # What the seal saw of each collected unittest test's run (rt4 a3: pytest takes the call's exception from the
    # item's `_excinfo` list, which the code under test can prime with `None`): the exceptions out of the test's
    # parts as they propagated, through the recorder's wrappers of unittest's TestCase (`sitecustomize`).
    unittest_runs = {}  # id(item) -> {"raised": first exception's class name, "ran": bool, "why": str or None}
    run_parts = ("_callSetUp", "_callTestMethod", "_callTearDown", "_callCleanup")

    def unittest_case(item):
        """(the TestCase class, the test method's name) of a pytest unittest item as collected, or None."""
        for klass in _mro(_type(item)):
            if _name_of(klass) == "TestCaseFunction" and _class_dict(klass).get("__module__") == "_pytest.unittest":
                cls, name = _getattr(_getattr(item, "parent", None), "obj", None), _getattr(item, "name", None)
                return (cls, name) if _type(cls) is _type and _type(name) is _str else None
        return None

    def remember_item(item):
        nodeid = _getattr(item, "nodeid", None)
        if _type(nodeid) is _str and _id(item) not in collected_as:
            collected_as[_id(item)] = (item, nodeid, unittest_case(item))
            remember_kind(item)

    # ------------------------------------------------------------------ what ran, by item kind (red team rt6a, F3)

    # The item kinds the seal has evidence for: pytest's Function (its test function's call, `test_started`; a
    # unittest test also unittest's run, `unittest_seen`) and pytest's DoctestItem (the standard library's doctest
    # runner's own count, `doctest_seen`). Any other item's pass is not believed (`withheld`).
    item_kinds = {}  # id(item) -> "function", "doctest" or None
    _object = object
    doctest_items = {}  # id(its DocTest) -> (item, the DocTest, its examples as collected)
    doctest_runs = {}  # id(item) -> {"failed": examples failed or runs raised, "ran": bool, "why": str or None}

    def remember_kind(item):
        """A pytest Function (its subclasses too: their runtest is judged on the Function path) or a DoctestItem
        whose runtest is pytest's own (pytest-doctestplus's old text-file items run `doctest.testfile` their own
        way: no evidence), else None."""
        kind, overridden = None, False
        for klass in _mro(_type(item)):
            module, name = _class_dict(klass).get("__module__"), _name_of(klass)
            if module == "_pytest.python" and name == "Function":
                kind = "function"
                break
            if module == "_pytest.doctest" and name == "DoctestItem":
                kind = None if overridden else "doctest"
                break
            overridden = overridden or "runtest" in _class_dict(klass)
        item_kinds[_id(item)] = kind
        dtest = (_getattr(item, "__dict__", None) or {}).get("dtest") if kind == "doctest" else None
        if dtest is not None:
            doctest_items[_id(dtest)] = (item, dtest, examples_of(dtest))

    def examples_of(dtest):
        """What a doctest's examples say (source, expected output and exception, options, line), to compare later:
        the code under test reaches them while they run (the runner's `test`)."""
        found = []
        for example in _tuple(_getattr(dtest, "examples", None) or ()):
            options = _getattr(example, "options", None)
            found.append(
                (
                    plain(_getattr(example, "source", None)),
                    plain(_getattr(example, "want", None)),
                    plain(_getattr(example, "exc_msg", None)),
                    _tuple((plain(key), plain(on)) for key, on in _tuple(_dict.items(options))) if _type(options) is _dict else None,
                    plain(_getattr(example, "lineno", None)),
                )
            )
        return _tuple(found)

    def plain(value):
        """A value compared by the seal: a str, int, bool or None as it is; anything else by its identity (a
        subclass's `__eq__` decides nothing)."""
        kind = _type(value)
        return value if any(kind is known for known in plain_types) else ("object", _id(value))

    plain_types = (_str, _int, _bool, _type(None))

    def own_shadowing(obj):
        """A name set on the object itself that a class of its (not `object`) defines: an instance attribute that
        replaces how it works (rt6a F3: the doctest runner's `report_failure` set to `print`), or None."""
        own = _getattr(obj, "__dict__", None)
        if _type(own) is not _dict:
            return None
        for name in _tuple(own):
            if _type(name) is not _str or name[:2] == "__":
                continue
            for klass in _mro(_type(obj)):
                if klass is not _object and name in _class_dict(klass):
                    return name
        return None

    def doctest_seen(runner, test, value, raised):
        """The standard library's `DocTestRunner.run` ended for a collected doctest (the recorder's wrapper): with
        what it counted (`TestResults(failed, attempted)`, kept in its own locals while it ran) or what it raised."""
        held = doctest_items.get(_id(test))
        if held is None or held[1] is not test:
            return  # a doctest a test runs itself
        run = doctest_runs.get(_id(held[0]))
        if run is None:
            run = doctest_runs[_id(held[0])] = {"failed": 0, "ran": False, "why": None}
        if run["why"] is None:
            for what, obj in (
                ("runner", runner),
                ("output checker", _getattr(runner, "_checker", None)),
                ("output", _getattr(runner, "_fakeout", None)),
            ):
                name = own_shadowing(obj) if obj is not None else None
                if name is not None:
                    run["why"] = "the doctest " + what + " got its own " + name + ", hiding its class's"
                    break
        if run["why"] is None and examples_of(test) != held[2]:
            run["why"] = "the doctest's examples were changed after collection"
        failed = value[0] if raised is None and _tuple in _mro(_type(value)) and _len(value) >= 2 else None
        if raised is not None or _type(failed) is not _int:
            run["failed"] += 1
        else:
            run["failed"] += failed if failed > 0 else 0
        run["ran"] = True

    def subtest_seen(frame, status):
        """A subtest's report (pytest 9's subtests, unittest's subTest under pytest 9, pytest-subtests), or the
        exception pytest's subtests context manager swallowed: a failed one fails the test whose call phase it is
        part of (`withheld`); it is never a result of its own."""
        if _type(status) is not _str:
            status = "failed" if not_failing(status) is None else "not a failure"
        depth = 0
        while frame is not None and depth < 100:
            code = frame.f_code
            if code.co_name == "call_and_report" and _endswith(code.co_filename, "_pytest/runner.py"):
                local = frame.f_locals
                item = local.get("item")
                held = collected_as.get(_id(item))
                if status == "failed" and held is not None and held[0] is item and local.get("when") == "call":
                    if _id(item) not in subtest_failures:
                        subtest_failures[_id(item)] = "a subtest's report says failed"
                return
            frame, depth = frame.f_back, depth + 1

    def withheld(frame, status):
        """(whether a call phase's pass is recorded as failed, why that is tampering or None), from pytest's
        `call_and_report` frame: a subtest of the test failed (the worst wins); a doctest's pass that its runner's
        own count, its examples or its runner's methods do not bear out; an item of a kind the seal has no
        evidence for (neither pytest's Function nor its DoctestItem: plugins' items) is not believed."""
        try:
            local = frame.f_locals
            item, when = local.get("item"), local.get("when")
        except Exception:
            return False, None
        held = collected_as.get(_id(item))
        if held is None or held[0] is not item or when != "call":
            return False, None
        failure = subtest_failures.pop(_id(item), None)
        run = doctest_runs.pop(_id(item), None)
        if status not in ("passed", "xpassed"):
            return False, None
        if failure is not None:
            return True, None
        kind = item_kinds.get(_id(item))
        if kind == "doctest":
            said = "pytest's report says " + status + " but "
            if run is None or not run["ran"]:
                return True, said + "the doctest runner never ran its examples"
            if run["why"] is not None:
                return True, said + run["why"]
            if run["failed"]:
                return True, said + _str(run["failed"]) + " of its examples failed as doctest's runner ran them"
            return False, None
        return kind is None, None

    def unittest_seen(result, part, case, method, raised):
        """A part of a unittest test's run, told by the recorder's wrapper of unittest's TestCase: `run` entered
        with `result` (pytest's item for a test it runs), or a part (setUp, the test method, tearDown, a cleanup)
        done, with the exception it raised or None."""
        held = collected_as.get(_id(result))
        if held is None or held[0] is not result or held[2] is None:
            return  # a TestCase run by a test itself, or inside a test's own inner pytest session
        run = unittest_runs.get(_id(result))
        if part == "run":
            if run is None:
                unittest_runs[_id(result)] = {"raised": None, "ran": False, "why": not_its_test(case, held[2], None)}
            return
        if run is None:
            return
        if run["why"] is None:
            run["why"] = result_probe_shadowed(result)
        if part == "subTest":
            if not_failing(raised) is None and _id(result) not in subtest_failures:
                subtest_failures[_id(result)] = "a subtest raised " + _name_of(_type(raised)) + " (unittest's subTest caught it)"
            if run["why"] is None:
                run["why"] = outcome_redirected(case, result)
            return
        if part == "awaited":  # the seal's awaiting coroutine of an async test method: did the await return?
            if raised is not True and run["why"] is None:
                run["why"] = "the test's coroutine never returned, yet unittest's asyncio runner did (its Task was ended by other code)"
            return
        if part not in run_parts:
            return
        if raised is not None and run["raised"] is None:
            run["raised"] = _name_of(_type(raised))
        if run["why"] is None:
            run["why"] = not_its_test(case, held[2], method if part == "_callTestMethod" else None)
        if part == "_callTestMethod" and raised is None and run["why"] is None:
            run["ran"] = True

    # What pytest's result object (the item) is asked by unittest while it runs a test (`failfast`, `addSubTest`, ...):
    # pytest defines these on its class or not at all; an instance attribute of such a name on an item is the code
    # under test's (red team rt6a, F5: `item.addSubTest = print` made unittest hand every failing subtest to print).
    result_probes = _set(("failfast", "shouldStop", "buffer", "tb_locals", "startTest", "stopTest", "startTestRun", "stopTestRun"))

    def result_probe_shadowed(result):
        """Why the result unittest reports to has an attribute of its own that unittest probes, or None."""
        own = _getattr(result, "__dict__", None)
        if _type(own) is not _dict:
            return None
        for name in _tuple(own):
            if _type(name) is _str and (name in result_probes or (_startswith(name, "add") and name[3:4].isupper())):
                return "the item unittest reports to got its own " + name + " (unittest asks its result for it)"
        return None

    subtest_failures = {}  # id(item) -> why its call phase failed by a subtest the runner caught (worst wins)

    def outcome_redirected(case, result):
        """Why the outcome unittest's subTest reported to is not unittest's own, for this run's result, or None
        (read from the instances' own dicts: no attribute lookup that could run code of the patch's)."""
        outcome = (_getattr(case, "__dict__", None) or {}).get("_outcome")
        module = state["machinery"].get("unittest.case")
        expected = _module_dict(module).get("_Outcome") if _type(module) is _module_type else None
        if expected is None or _type(outcome) is not expected:
            return None if expected is None else "the test case's _outcome is not unittest's"
        own = _getattr(outcome, "__dict__", None) or {}
        if own.get("result") is not result:
            return "unittest's subtests reported to another result than the item"
        return None

    def not_failing(raised):
        """None when an exception a subtest's runner caught fails the test; else what it is (a skip, an expected
        failure of pytest's, unittest's own stop signal)."""
        found = state["outcomes"]
        classes = _mro(_type(raised))
        case = state["machinery"].get("unittest.case")
        own = _module_dict(case) if _type(case) is _module_type else {}
        for klass in classes:  # by identity: a metaclass's `__eq__` decides nothing here
            for name in ("SkipTest", "_ShouldStop"):
                if own.get(name) is klass:
                    return "unittest's"
            if found is not None and (klass is found[0] or klass is found[1]):
                return "pytest's"
        return None

    def not_its_test(case, collected, method):
        """Why the TestCase unittest runs for an item is not the one collected, or None: an instance of the
        collected class running the collected method (the very function its class defines), with none of the
        run's parts set on the instance itself."""
        cls, name = collected
        if _type(case) is not cls:
            return "unittest ran another TestCase than the collected " + _name_of(cls)
        own = _getattr(case, "__dict__", None) or {}
        if own.get("_testMethodName") != name:
            return "unittest ran another test method than the collected " + name
        for part in run_parts + ("subTest",):
            if part in own:
                return "the test case's " + part + " was set on the test case itself"
        if method is not None:
            function = None
            for klass in _mro(cls):
                if name in _class_dict(klass):
                    function = _class_dict(klass)[name]
                    break
            if _type(method) is not _method_type or method.__self__ is not case or method.__func__ is not function:
                return "unittest called another function than the collected " + name
        return None

    def reported(frame, nodeid, status):
        """(node id to record, status to record, why that is not pytest's report as it stands or None), from pytest's
        `call_and_report` frame: the id the item had when collected, failed when the item's id changed since, the
        item was already reported for this phase, or (a unittest test) pytest reports a pass the run did not give."""
        try:
            local = frame.f_locals
            item, when = local.get("item"), local.get("when")
        except Exception:
            return nodeid, status, None
        held = collected_as.get(_id(item))
        if held is None or held[0] is not item:
            return nodeid, status, None  # not collected: refused before this
        failing = "failed" if when == "call" else "error"
        if held[1] != nodeid:
            return held[1], failing, ("a report's node id (" + nodeid + ") is not the one its item was collected with (" + held[1] + ")")
        key = (_id(item), _str(when))
        if key in phases:
            return nodeid, failing, "the item was run again: its " + _str(when) + " phase was already reported"
        phases.add(key)
        if when != "call" or held[2] is None or status not in ("passed", "xpassed"):
            return nodeid, status, None
        run = unittest_runs.pop(_id(item), None)
        if run is None:
            why = "unittest never ran the test with its item as the result"
        elif run["why"] is not None:
            why = run["why"]
        elif run["raised"] is not None:
            why = "the test raised " + run["raised"] + " as unittest ran it"
        elif not run["ran"]:
            why = "the test method did not complete through unittest's TestCase"
        else:
            return nodeid, status, None
        return nodeid, "failed", "pytest's report says " + status + " but " + why

    def xfail_marked(item):
        try:
            for _mark in item.iter_markers(name="xfail"):
                return True
        except Exception:
            return False
        return False

    return (
        tainted,
        code_patched,
        provenance,
        frame_receiver,
        on_event,
        outcomes,
        machinery,
        collected,
        changed,
        reading,
        reported,
        unittest_seen,
        item_changed,
        import_made,
        made_as,
        doctest_seen,
        subtest_seen,
        withheld,
    )
