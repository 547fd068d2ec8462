"""kustomize's (and kubectl kustomize's) error output, reduced to the one line phoebe shows."""

from __future__ import annotations

import pytest

from phoebe_cli.repo.kustomize import _message


@pytest.mark.parametrize(
    ("stderr", "expected"),
    [
        ("Error: accumulating resources: boom\n\nUsage:\n  kustomize build [flags]\n", "accumulating resources: boom"),
        ("error: accumulating resources: boom\n", "accumulating resources: boom"),  # kubectl kustomize
        (
            'E1203 10:33:01.123456   42 run.go:72] "command failed" '
            'err="accumulating resources: \\"x.yaml\\" missing"\n',
            'accumulating resources: "x.yaml" missing',  # kubectl's klog line, unquoted
        ),
        ("something else\nthe last line\n", "the last line"),
        ("", ""),
    ],
    ids=["kustomize", "kubectl", "klog", "other", "empty"],
)
def test_the_error_line(stderr: str, expected: str) -> None:
    assert _message(stderr) == expected
