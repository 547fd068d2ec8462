"""`phoebe explain` usage errors: one line and exit 2, before any request (no cluster, no
kubeconfig needed)."""

from __future__ import annotations

import pytest

from tests.conftest import PhoebeRunner


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("explain", "nope/x"), "phoebe: error: unknown kind 'nope' in 'nope/x'"),
        (
            ("explain", "nope", "x"),
            "phoebe: error: unknown kind 'nope' (use ks, hr, git, oci, helmrepo, chart, bucket or es)",
        ),
        (
            ("explain", "ks"),
            "phoebe: error: name the object to explain: ks/NAME or ks/NAMESPACE/NAME (e.g. hr/media/sonarr)",
        ),
        (
            ("explain", "ks/a/b/c"),
            "phoebe: error: bad object name 'a/b/c': too many '/' (use KIND/NAME or KIND/NAMESPACE/NAME)",
        ),
        (
            ("explain", "ks", "a", "b"),
            "phoebe: error: Got unexpected extra argument(s) (b) (see 'phoebe explain --help')",
        ),
        (
            ("explain", "ks/a", "-o", "yaml"),
            "phoebe: error: Invalid value for '--output' / '-o': 'yaml' is not one of 'text', 'json', 'markdown'. "
            "(see 'phoebe explain --help')",
        ),
    ],
)
def test_usage_errors_before_any_request(phoebe: PhoebeRunner, args: tuple[str, ...], message: str) -> None:
    result = phoebe(*args)
    assert (result.code, result.stdout, result.stderr) == (2, "", message + "\n")
