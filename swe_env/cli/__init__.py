"""The `swe-env` command: parses arguments, calls the rooms, prints tables. No logic of its own.

One module per group of commands (`setup`, `tasks`, `synth`, `images`, `runs`, `traces`, `serve`; what they share
in `common`); this module is the command list, in the order `swe-env --help` shows it, and the entry point.
"""

from __future__ import annotations

import sys

import typer

from .. import __version__
from . import images, runs, serve, setup, synth, tasks, traces
from .common import err

app = typer.Typer(add_completion=False, no_args_is_help=True, help="A Dockerized gym environment for software-engineering agents.")
tasks_app = typer.Typer(no_args_is_help=True, help="Inspect task specs.")
app.add_typer(tasks_app, name="tasks")
images_app = typer.Typer(no_args_is_help=True, help="swe-env's images: list, prune to a disk budget, push to a registry.")
app.add_typer(images_app, name="images")


def _version(value: bool) -> None:
    if value:
        print(f"swe-env {__version__}")
        raise typer.Exit()


@app.callback()
def _main(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True, help="Print the version and exit.")) -> None:
    """A Dockerized gym environment for software-engineering agents."""


# The command list: the order here is the order of `swe-env --help`.
app.command()(setup.setup)
app.command()(synth.synthesize)
app.command()(images.build)
app.command()(tasks.validate)
app.command()(runs.rollout)
app.command()(runs.export)
app.command()(runs.demo)
app.command()(runs.evaluate)
app.command()(setup.gc)
app.command()(traces.trace)
app.command("trace-corpus")(traces.trace_corpus)
app.command()(serve.serve)
tasks_app.command("list")(tasks.tasks_list)
tasks_app.command("new")(tasks.tasks_new)
tasks_app.command("import-swebench")(tasks.tasks_import_swebench)
tasks_app.command("import-harbor")(tasks.tasks_import_harbor)
images_app.command("ls")(images.images_ls)
images_app.command("prune")(images.images_prune)
images_app.command("push")(images.images_push)


def main(argv: list[str] | None = None) -> None:
    # SIGTERM unwinds the main thread through every `finally` (containers closed); the atexit
    # hook in sandbox.py then closes what worker threads still hold.
    try:
        from ..runtime import handle_termination_signals

        handle_termination_signals()
        app(args=argv if argv is not None else sys.argv[1:], prog_name="swe-env")
    except KeyboardInterrupt:
        # Ctrl-C before a command's own handling (while modules load or options are read): one line, no traceback.
        err.print("[yellow]interrupted[/]")
        raise SystemExit(130) from None
