"""Watch events as read from a stream line: a broken-off line is a dropped connection (the watch
resumes), never an internal error."""

from __future__ import annotations

import pytest

from phoebe_cli.errors import ClusterUnreachable
from phoebe_cli.kube.watch import parse_event


def test_a_whole_event() -> None:
    assert parse_event('{"type":"ADDED","object":{"metadata":{"name":"a"}}}', "/x") == {
        "type": "ADDED",
        "object": {"metadata": {"name": "a"}},
    }


@pytest.mark.parametrize("line", ['{"type":"MODIFIED","object":{"metadata":{"na', "[1, 2]", "null"])
def test_a_broken_line_is_a_dropped_connection(line: str) -> None:
    with pytest.raises(ClusterUnreachable, match=r"^watch of /apis/x: "):
        parse_event(line, "/apis/x")
