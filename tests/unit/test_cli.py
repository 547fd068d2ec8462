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


def test_no_arguments_shows_help(phoebe: PhoebeRunner) -> None:
    result = phoebe()
    assert result.code in (0, 2)
    assert "Usage: phoebe" in result.stdout + result.stderr


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
