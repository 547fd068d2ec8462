from __future__ import annotations

import pytest

from phoebe_cli import errors
from phoebe_cli.errors import ExitCode, exit_code_for


@pytest.mark.parametrize(
    ("error", "code"),
    [
        (errors.UsageError("x"), 2),
        (errors.KubeconfigError("x"), 2),
        (errors.ClusterUnreachable("x"), 3),
        (errors.AuthenticationFailed("x", code=401), 3),
        (errors.Forbidden("x", code=403), 4),
        (errors.NotFound("x", code=404), 5),
        (errors.FluxNotInstalled("x"), 5),
        (errors.RequestRejected("x", code=422), 1),
        (errors.ToolMissing("x"), 5),
        (errors.OperationTimedOut("x"), 6),
        (errors.Interrupted(), 130),
        (errors.PhoebeError("x"), 1),
    ],
)
def test_every_error_has_its_documented_exit_code(error: errors.PhoebeError, code: int) -> None:
    assert exit_code_for(error) == code


def test_exit_codes_are_stable() -> None:
    assert {c.name: c.value for c in ExitCode} == {
        "OK": 0,
        "NOT_HEALTHY": 1,
        "USAGE": 2,
        "UNREACHABLE": 3,
        "FORBIDDEN": 4,
        "NOT_FOUND": 5,
        "TIMED_OUT": 6,
        "INTERRUPTED": 130,
    }


def test_a_subclass_without_its_own_entry_inherits_its_parents_code() -> None:
    class ChartMissing(errors.NotFound):
        pass

    assert exit_code_for(ChartMissing("x")) == ExitCode.NOT_FOUND


def test_cluster_errors_keep_the_server_reason() -> None:
    error = errors.Forbidden("forbidden: nope", reason="Forbidden", code=403, detail="HTTP 403 GET /x")
    assert (error.reason, error.code, error.detail, str(error)) == (
        "Forbidden",
        403,
        "HTTP 403 GET /x",
        "forbidden: nope",
    )
