"""httpx, imported without its optional command-line client.

httpx's ``_main`` imports click, rich and pygments when they happen to be installed (~50 ms);
phoebe never uses it, and httpx falls back cleanly when it cannot be imported.
"""

import sys

sys.modules.setdefault("httpx._main", None)  # type: ignore[arg-type]

import httpx  # noqa: E402 - after the line above, on purpose

__all__ = ["httpx"]
