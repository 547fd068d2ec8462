"""Log line parsing, filtering, merging and rendering (pure; width pinned)."""

from __future__ import annotations

import json

from phoebe_cli.flux.logs import LogFilter, StreamParser, merged, parse_object, split_kubelet_timestamp, time_key
from phoebe_cli.render.logs import TextLayout, json_line


def parse(*lines: str, controller: str = "kustomize-controller") -> list:  # type: ignore[type-arg]
    parser = StreamParser(controller, "pod-1")
    return [parser.parse(line, "2026-11-26T10:00:00.5Z") for line in lines]


def test_json_line_fields() -> None:
    (line,) = parse(
        json.dumps(
            {
                "level": "error",
                "ts": "2026-11-26T10:00:01.123Z",
                "msg": "Reconciler error",
                "controllerKind": "Kustomization",
                "Kustomization": {"name": "web", "namespace": "apps"},
                "error": "boom",
                "reconcileID": "x",
            }
        )
    )
    assert (line.level, line.message, line.error, line.kind, line.namespace, line.name) == (
        "error",
        "Reconciler error",
        "boom",
        "Kustomization",
        "apps",
        "web",
    )
    assert line.stamp == "2026-11-26T10:00:01.123Z"
    assert line.fields is not None and line.fields["reconcileID"] == "x"


def test_older_keys_and_epoch_time() -> None:
    (line,) = parse(
        json.dumps(
            {
                "level": "INFO",
                "ts": 1795082401.5,
                "msg": "m",
                "reconciler kind": "HelmRelease",
                "name": "web",
                "namespace": "apps",
            }
        )
    )
    assert (line.kind, line.level, line.stamp) == ("HelmRelease", "info", "2026-11-19T10:00:01.500000Z")


def test_raw_lines_and_continuations() -> None:
    first, broken, _error, trace, frame, standalone = parse(
        "not json",
        '{"broken',
        json.dumps({"level": "error", "msg": "e", "controllerKind": "Kustomization", "name": "a", "namespace": "b"}),
        "goroutine 7 [running]:",
        "\tmain.main()",
        "plain again",
    )
    assert (first.is_json, first.level, first.stamp, first.continuation) == (False, "", "2026-11-26T10:00:00.5Z", False)
    assert (broken.is_json, broken.raw) == (False, '{"broken')
    assert (trace.continuation, trace.level, trace.kind, trace.name) == (True, "error", "Kustomization", "a")
    assert frame.continuation
    assert not standalone.continuation


def test_filter_levels_are_minimums() -> None:
    debug, info, error, raw = parse(
        *(json.dumps({"level": lvl, "msg": lvl}) for lvl in ("debug", "info", "error")), "raw text"
    )
    assert [LogFilter(min_level="error").keeps(x) for x in (debug, info, error, raw)] == [False, False, True, False]
    assert [LogFilter(min_level="info").keeps(x) for x in (debug, info, error, raw)] == [False, True, True, True]
    assert [LogFilter(min_level="debug").keeps(x) for x in (debug, info, error, raw)] == [True, True, True, True]


def test_filter_objects_and_grep() -> None:
    (line,) = parse(
        json.dumps(
            {
                "level": "info",
                "msg": "applied web",
                "controllerKind": "Kustomization",
                "name": "web",
                "namespace": "apps",
            }
        )
    )
    assert LogFilter(kind="kustomization", name="web", namespace="apps").keeps(line)
    assert not LogFilter(kind="HelmRelease").keeps(line)
    assert not LogFilter(namespace="other").keeps(line)
    assert LogFilter(grep="applied").keeps(line)
    assert not LogFilter(grep="APPLIED").keeps(line)


def test_parse_object() -> None:
    assert parse_object("ks") == ("Kustomization", None, None)
    assert parse_object("hr/web") == ("HelmRelease", None, "web")
    assert parse_object("GitRepository/flux-system/flux-system") == ("GitRepository", "flux-system", "flux-system")


def test_kubelet_timestamps_and_ordering() -> None:
    assert split_kubelet_timestamp("2026-11-26T10:00:00.12Z hello world") == ("2026-11-26T10:00:00.12Z", "hello world")
    assert split_kubelet_timestamp("hello world") == ("", "hello world")
    assert time_key("2026-11-26T10:00:00.12Z") < time_key("2026-11-26T10:00:00.123456789Z")
    assert time_key("2026-11-26T10:00:00Z") < time_key("2026-11-26T10:00:00.000000001Z")
    a = parse(json.dumps({"ts": "2026-11-26T10:00:02Z", "msg": "2"}))
    b = parse(json.dumps({"ts": "2026-11-26T10:00:01.5Z", "msg": "1"}), controller="helm-controller")
    assert [line.message for line in merged([a, b])] == ["1", "2"]


def test_text_layout_at_80_columns() -> None:
    layout = TextLayout(["kustomize-controller", "helm-controller"])
    (line,) = parse(
        json.dumps(
            {
                "level": "error",
                "ts": "2026-11-26T10:00:01.123Z",
                "msg": "Reconciler error",
                "controllerKind": "Kustomization",
                "name": "web",
                "namespace": "apps",
                "error": "build failed:\nmissing resource",
            }
        )
    )
    assert layout.plain(line) == (
        "10:00:01.123 error kustomize ks/apps/web  Reconciler error: build failed:\n" + " " * 29 + "missing resource"
    )
    styled = layout.styled(line)
    assert styled.plain == layout.plain(line)
    assert any("red" in str(span.style) for span in styled.spans)


def test_json_output_keeps_every_key() -> None:
    (line,) = parse(json.dumps({"level": "info", "msg": "m", "controller": "kustomization", "custom": 1}))
    out = json.loads(json_line(line))
    assert out == {
        "level": "info",
        "msg": "m",
        "controller": "kustomization",
        "custom": 1,
        "ts": "2026-11-26T10:00:00.5Z",
        "deployment": "kustomize-controller",
        "pod": "pod-1",
    }


def test_kept_drops_rejected_lines_with_their_continuations() -> None:
    parser = StreamParser("kustomize-controller", "pod")
    keep = LogFilter(min_level="info")
    lines = [
        json.dumps({"level": "debug", "msg": "noisy"}),
        "goroutine 1 [running]:",
        "\tmain.main()",
        json.dumps({"level": "error", "msg": "bad", "error": "x"}),
        "panic: oops",
        "standalone text",
    ]
    kept = [line for text in lines if (line := parser.kept(text, "", keep)) is not None]
    assert [(k.message, k.continuation) for k in kept] == [
        ("bad", False),
        ("panic: oops", True),
        ("standalone text", False),
    ]
    by_name = LogFilter(name="web")
    parser = StreamParser("kustomize-controller", "pod")
    assert parser.kept(json.dumps({"level": "info", "msg": "m", "name": "web"}), "", by_name) is not None
    assert parser.kept(json.dumps({"level": "info", "msg": "m", "name": "webhook"}), "", by_name) is None
