"""``phoebe logs`` output: aligned text (coloured on a terminal), JSON lines, or the raw lines.

Plain text is built as strings (a follow can print thousands of lines a second); Rich is used
only for colour on a terminal.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from phoebe_cli.flux.kinds import kind_named
from phoebe_cli.flux.logs import LogLine

if TYPE_CHECKING:
    from rich.text import Text

LEVEL_STYLES = {"error": "bold red", "warn": "yellow", "warning": "yellow", "debug": "dim", "info": "green"}


def _time(stamp: str) -> str:
    """HH:MM:SS.mmm of an RFC 3339 time (UTC, as the controllers log)."""
    if len(stamp) < 19:
        return " " * 12
    clock = stamp[11:19]
    fraction = stamp[20:23] if len(stamp) > 20 and stamp[19] == "." else "000"
    return f"{clock}.{fraction.ljust(3, '0')}"


def _object(line: LogLine) -> str:
    if not line.kind:
        return ""
    kind = kind_named(line.kind)
    short = kind.short_name if kind is not None else line.kind
    if line.namespace and line.name:
        return f"{short}/{line.namespace}/{line.name}"
    return f"{short}/{line.name}" if line.name else short


def _level(line: LogLine) -> str:
    return (line.level or "-")[:5].ljust(5)


def short_controller(name: str) -> str:
    return name.removesuffix("-controller")


class TextLayout:
    """Columns: time, level, controller (padded to the widest selected), object, message."""

    def __init__(self, controllers: list[str]) -> None:
        self.width = max((len(short_controller(c)) for c in controllers), default=6)
        self.indent = " " * (12 + 1 + 5 + 1 + self.width + 1)

    def plain(self, line: LogLine) -> str:
        if line.continuation:
            return f"{self.indent}{line.raw.lstrip()}"
        head = f"{_time(line.stamp)} {_level(line)} {short_controller(line.controller).ljust(self.width)} "
        if not line.is_json:
            return head + line.raw
        target = _object(line)
        text = f"{head}{target}  {line.message}" if target else f"{head}{line.message}"
        if line.error:
            first, *rest = line.error.rstrip("\n").split("\n")
            text += f": {first}"
            for more in rest:
                text += f"\n{self.indent}{more}"
        return text

    def styled(self, line: LogLine) -> Text:
        from rich.text import Text  # only on a terminal: piped output never loads Rich

        plain = self.plain(line)
        text = Text(plain)
        if line.continuation:
            text.stylize("dim red" if line.level == "error" else "dim")
            return text
        text.stylize("dim", 0, 12)
        text.stylize(LEVEL_STYLES.get(line.level, ""), 13, 18)
        text.stylize("cyan", 19, 19 + self.width)
        if line.error:
            start = plain.find(": " + line.error.split("\n")[0])
            if start > 0:
                text.stylize("red", start + 2)
        return text


def json_line(line: LogLine) -> str:
    """The controller's own fields as it wrote them, plus the Deployment and Pod it came from
    ("controller" is taken: controller-runtime names its reconciler there)."""
    if line.fields is not None:
        record: dict[str, Any] = dict(line.fields)
        record.setdefault("ts", line.stamp)
    else:
        record = {"ts": line.stamp, "raw": line.raw}
        if line.continuation:
            record["continuation"] = True
    record["deployment"] = line.controller
    record["pod"] = line.pod
    return json.dumps(record, ensure_ascii=False)
