"""The entry point: run the Typer app and turn every outcome into one exit code.

This is the one place where errors become exit codes (through ``errors.exit_code_for``) and
one line on stderr. Tracebacks appear only for bugs, and only with ``-v``.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from typing import NoReturn

from phoebe_cli.errors import ExitCode, Interrupted, PhoebeError, exit_code_for


def _verbosity(argv: Sequence[str]) -> int:
    count = 0
    for arg in argv:
        if arg == "--verbose":
            count += 1
        elif arg.startswith("-") and not arg.startswith("--") and set(arg[1:]) == {"v"}:
            count += len(arg) - 1
    return count


def _no_color(argv: Sequence[str]) -> bool:
    return "--no-color" in argv


def run(argv: Sequence[str] | None = None) -> int:
    """Run phoebe with ``argv`` (default: sys.argv[1:]) and return the exit code."""
    from phoebe_cli.cli import help_cache

    args = _optional_values(list(sys.argv[1:] if argv is None else argv))
    if not args:
        args = ["--help"]  # bare `phoebe`: the help, on stdout, exit 0 (as git and kubectl do)
    if help_cache.remembered(args):
        return int(ExitCode.OK)  # the help Typer printed last time, without importing it
    if args == ["--version"]:
        from phoebe_cli import __version__

        sys.stdout.write(f"phoebe {__version__}\n")  # what the --version option prints, without Typer
        return int(ExitCode.OK)

    import typer

    from phoebe_cli.cli.app import build_app
    from phoebe_cli.console import Terminal

    terminal = Terminal(no_color=_no_color(args), verbose=_verbosity(args))
    command = typer.main.get_command(build_app())

    def show() -> int:
        shown = command.main(args=args, prog_name="phoebe", standalone_mode=False)
        return shown if isinstance(shown, int) else int(ExitCode.OK)

    try:
        result = help_cache.recording(args, show)
    except Interrupted:
        return int(ExitCode.INTERRUPTED)  # Ctrl-C ends a watch or a follow: nothing to explain
    except PhoebeError as error:
        terminal.error(error.message, error.detail)
        return int(exit_code_for(error))
    except typer.Abort:
        return int(ExitCode.INTERRUPTED)
    except KeyboardInterrupt:
        return int(ExitCode.INTERRUPTED)
    except typer.TyperException as error:  # Click usage errors: bad flags, missing arguments
        terminal.error(_usage_line(error, _command_named(command, args)))
        return int(getattr(error, "exit_code", ExitCode.USAGE))
    except BrokenPipeError:
        _silence_stdout()
        return int(ExitCode.OK)
    except Exception as error:  # noqa: BLE001 - the last guard: a bug must still end in one line
        terminal.error(f"internal error: {type(error).__name__}: {error} (run with -v for the traceback)")
        if terminal.verbose:
            import traceback

            traceback.print_exc(file=sys.stderr)
        return int(ExitCode.NOT_HEALTHY)
    if isinstance(result, int):
        return result
    return int(ExitCode.OK)


def _command_named(group: object, args: Sequence[str]) -> str:
    """The command path a usage error is about, for the "see --help" hint."""
    commands = getattr(group, "commands", {}) or {}
    for arg in args:
        if arg in commands:
            return f"phoebe {arg}"
    return "phoebe"


# Options whose value may be left out: `--repo` alone means the checkout around the current
# directory, `--show-completion` alone the current shell. Click has no optional option values,
# so an empty one is put in before parsing.
OPTIONAL_VALUES = ("--repo", "--show-completion", "--install-completion")


def _optional_values(args: list[str]) -> list[str]:
    result: list[str] = []
    for index, arg in enumerate(args):
        result.append(arg)
        if arg in OPTIONAL_VALUES:
            following = args[index + 1] if index + 1 < len(args) else None
            if following is None or following.startswith("-"):
                result.append("")
    return result


def _usage_line(error: Exception, fallback_path: str) -> str:
    message = error.format_message() if hasattr(error, "format_message") else str(error)
    ctx = getattr(error, "ctx", None)
    command_path = getattr(ctx, "command_path", None) if ctx is not None else None
    return f"{message} (see '{command_path or fallback_path} --help')"


def _silence_stdout() -> None:
    # Output was cut short by a closed pipe (`phoebe ... | head`): not an error.
    import os

    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())


def main() -> NoReturn:
    sys.exit(run())
