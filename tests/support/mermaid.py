"""Mermaid's own parser, to check that what phoebe draws parses as GitHub and Forgejo will read it.

The mermaid npm package (pinned) and jsdom (mermaid needs a DOM even to parse) are installed once
with ``npm install --prefix`` under ``~/.cache/phoebe/mermaid/<versions>``, behind a file lock
so parallel test runs share one install; CI on a clean clone installs it itself (node and npm
are needed, nothing from apt). mermaid's CLI would render to SVG but needs a browser; the
parser is the part that decides whether the text is a diagram, and it also runs the flowchart's
database (a ``linkStyle`` index past the last edge is an error there).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

MERMAID_VERSION = "11.12.0"
JSDOM_VERSION = "26.1.0"

_CHECK = """\
import { JSDOM } from "jsdom";
import { readFileSync } from "node:fs";
const dom = new JSDOM("<!doctype html><html><body></body></html>", { pretendToBeVisual: true });
globalThis.window = dom.window;
globalThis.document = dom.window.document;
for (const name of ["Element", "HTMLElement", "Node", "DOMParser", "XMLSerializer", "SVGElement"]) {
  if (!(name in globalThis)) globalThis[name] = dom.window[name];
}
const { default: mermaid } = await import("mermaid");
mermaid.initialize({ startOnLoad: false });
try {
  const parsed = await mermaid.parse(readFileSync(0, "utf8"));
  process.stdout.write(parsed.diagramType + "\\n");
} catch (error) {
  process.stderr.write(String(error.message || error) + "\\n");
  process.exit(1);
}
"""


@dataclass(frozen=True)
class Parsed:
    ok: bool
    diagram_type: str  # "flowchart-v2" when ok
    error: str


# Fixed at import (collection), like the harness's binaries: a test's own XDG_CACHE_HOME must not
# make npm install the parser again.
_CACHE_BASE = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache")


def _cache_dir() -> Path:
    return _CACHE_BASE / "phoebe" / "mermaid" / f"mermaid-{MERMAID_VERSION}-jsdom-{JSDOM_VERSION}"


def mermaid_parser() -> Path | None:
    """The directory holding the parser script and its node_modules, installed on first use;
    None when node or npm is not installed."""
    node, npm = shutil.which("node"), shutil.which("npm")
    if node is None or npm is None:
        return None
    where = _cache_dir()
    script = where / "check.mjs"
    done = where / ".installed"
    if done.exists():
        return where
    where.mkdir(parents=True, exist_ok=True)
    with open(where.parent / f"{where.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            if not done.exists():
                subprocess.run(
                    [
                        npm,
                        "install",
                        "--prefix",
                        str(where),
                        "--no-audit",
                        "--no-fund",
                        "--no-save",
                        f"mermaid@{MERMAID_VERSION}",
                        f"jsdom@{JSDOM_VERSION}",
                    ],
                    check=True,
                    capture_output=True,
                    timeout=600,
                )
                script.write_text(_CHECK)
                done.write_text("ok\n")
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)
    return where


def parse(text: str) -> Parsed:
    where = mermaid_parser()
    if where is None:
        raise RuntimeError("node and npm are needed to check mermaid output")
    node = shutil.which("node")
    assert node is not None
    done = subprocess.run(
        [node, str(where / "check.mjs")],
        input=text,
        capture_output=True,
        text=True,
        cwd=where,
        timeout=120,
        check=False,
    )
    if done.returncode == 0:
        return Parsed(True, done.stdout.strip(), "")
    return Parsed(False, "", " ".join(done.stderr.split()))
