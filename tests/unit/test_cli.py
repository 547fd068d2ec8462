"""The entry point without a cluster: help, version, usage errors, colour and output rules."""

from __future__ import annotations

import pytest

from phoebe_cli import __version__
from tests.conftest import PhoebeRunner


def test_version(phoebe: PhoebeRunner) -> None:
    result = phoebe("--version")
    assert (result.code, result.stdout, result.stderr) == (0, f"phoebe {__version__}\n", "")


def test_help_lists_commands_and_shared_options(phoebe: PhoebeRunner) -> None:
    result = phoebe("--help")
    assert result.code == 0
    for text in ("check", "--kubeconfig", "--context", "--flux-namespace", "--no-color", "--verbose", "--version"):
        assert text in result.stdout


def test_command_help_has_the_shared_options(phoebe: PhoebeRunner) -> None:
    result = phoebe("check", "--help")
    assert result.code == 0
    for text in ("--output", "text|json|yaml", "--kubeconfig", "--context", "--request-timeout"):
        assert text in result.stdout


def test_no_arguments_shows_help_on_stdout(phoebe: PhoebeRunner) -> None:
    """D10: bare `phoebe` printed its help to stderr as 'phoebe: error: Usage:…' (exit 2)."""
    result = phoebe()
    assert (result.code, result.stderr) == (0, "")
    assert result.stdout == phoebe("--help").stdout
    assert result.stdout.startswith("Usage: phoebe")


@pytest.mark.parametrize(
    ("shell", "marker"),
    [("fish", "complete --command phoebe"), ("zsh", "#compdef phoebe"), ("bash", "_phoebe_completion()")],
)
def test_show_completion_for_the_shell_named(phoebe: PhoebeRunner, shell: str, marker: str) -> None:
    """D10: `--show-completion fish` printed the bash script (the shell word was ignored)."""
    result = phoebe("--show-completion", shell)
    assert (result.code, result.stderr) == (0, "")
    assert marker in result.stdout
    others = {"fish": "complete --command", "zsh": "#compdef", "bash": "COMPREPLY"}
    assert not any(text in result.stdout for name, text in others.items() if name != shell)


def test_show_completion_of_an_unknown_shell(phoebe: PhoebeRunner) -> None:
    result = phoebe("--show-completion", "tcsh")
    assert result.code == 2
    assert result.stderr == (
        "phoebe: error: no completion for shell 'tcsh': use one of bash, zsh, fish, powershell, pwsh\n"
    )


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # D11: a name no object can have is a usage error, not "not found" (exit 5)
        (["sync", "ks", ""], "phoebe: error: bad object name '': the name is empty"),
        (["sync", "ks", "a/b/c"], "phoebe: error: bad object name 'a/b/c': too many '/'"),
        (["sync", "ks/a/b/c"], "phoebe: error: bad object name 'a/b/c': too many '/'"),
        (["suspend", "ks", "", "--all"], "phoebe: error: bad object name '': the name is empty"),
        (["status", "ks", ""], "phoebe: error: bad object name '': the name is empty"),
        (["events", "ks/"], "phoebe: error: bad object name '': the name is empty"),
        (["logs", "ks", "a/b/c"], "phoebe: error: bad object name 'a/b/c': too many '/'"),
        # D11: -n '' meant all namespaces in status
        (["status", "-n", ""], "phoebe: error: Invalid value for '-n': the namespace is empty (-A means all"),
        (["sync", "ks", "-n", ""], "phoebe: error: Invalid value for '-n': the namespace is empty"),
        (["events", "-n", ""], "phoebe: error: Invalid value for '-n': the namespace is empty"),
        (["logs", "-n", "Apps"], "phoebe: error: Invalid value for '-n': 'Apps' is not a namespace name"),
        (["status", "-n", "a", "-A"], "phoebe: error: Invalid value for '--all-namespaces': use -n NAMESPACE or -A"),
        # D4: a bad selector is exit 2 everywhere, before any request (no kubeconfig needed here)
        (["sync", "ks", "-l", "a in (b"], "phoebe: error: invalid label selector 'a in (b': found the end"),
        (["suspend", "ks", "-l", "a//b"], "phoebe: error: invalid label selector 'a//b': key 'a//b' has more"),
        (["resume", "ks", "-l", "=x"], "phoebe: error: invalid label selector '=x': found '='"),
        (["status", "-l", "a>x"], "phoebe: error: invalid label selector 'a>x': '>' needs an integer"),
        (["sync", "nope/web"], "phoebe: error: unknown kind 'nope' in 'nope/web'"),
        (["sync", "ks/web", "hr/db"], "phoebe: error: 'hr/db': after 'ks/web', name each object as ks/NAME"),
    ],
)
def test_usage_errors_before_any_request(phoebe: PhoebeRunner, args: list[str], message: str) -> None:
    result = phoebe(*args, kubeconfig="/nonexistent/kubeconfig")  # never read: the error comes first
    assert (result.code, result.stdout) == (2, "")
    assert len(result.stderr.splitlines()) == 1, result.stderr
    assert result.stderr.startswith(message), result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["nope"], "phoebe: error: No such command 'nope'. (see 'phoebe --help')"),
        (["check", "--bogus"], "phoebe: error: No such option: --bogus"),
        (["check", "-o"], "phoebe: error: Option '-o' requires an argument. (see 'phoebe check --help')"),
        (["check", "--request-timeout", "0"], "phoebe: error: Invalid value for '--request-timeout'"),
    ],
)
def test_usage_errors_are_one_line_and_exit_2(phoebe: PhoebeRunner, args: list[str], message: str) -> None:
    result = phoebe(*args)
    assert result.code == 2
    assert result.stdout == ""
    assert len(result.stderr.splitlines()) == 1
    assert result.stderr.startswith(message)


def test_verbose_adds_the_cause(phoebe: PhoebeRunner, tmp_path) -> None:  # type: ignore[no-untyped-def]
    import yaml

    from tests.cluster.controlplane import free_port, kubeconfig_document

    path = tmp_path / "kubeconfig"
    path.write_text(yaml.safe_dump(kubeconfig_document(f"https://127.0.0.1:{free_port()}", tmp_path / "ca", "t")))
    quiet = phoebe("check", kubeconfig=path)
    loud = phoebe("check", "-v", kubeconfig=path)
    assert quiet.code == loud.code
    assert len(quiet.stderr.splitlines()) == 1
    assert len(loud.stderr.splitlines()) >= 1
