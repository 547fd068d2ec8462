"""Status symbols and their colours, shared by every view."""

from __future__ import annotations

OK = "✓"
FAILED = "✗"
PENDING = "…"
ABSENT = "·"
SUSPENDED = "⏸"

STYLE_OK = "green"
STYLE_FAILED = "bold red"
STYLE_PENDING = "yellow"
STYLE_ABSENT = "dim"
