"""Watching: lists followed by watches that survive the server closing the stream.

``list_and_watch`` yields every object of a collection once, then every change. When the server
ends a watch (its timeout, a restart, a dropped connection) it resumes from the last
resourceVersion it saw; when that version is too old (410 Gone) it lists again and reports what
changed meanwhile, so a consumer never misses a final state.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

from phoebe_cli.errors import ClusterUnreachable
from phoebe_cli.kube.client import JSON, KubeClient

ADDED = "ADDED"
MODIFIED = "MODIFIED"
DELETED = "DELETED"
LISTED = "LISTED"  # an object as found by a (re-)list

WATCH_TIMEOUT_SECONDS = 300
MAX_RECONNECTS = 8


class ResourceExpired(Exception):
    """410 Gone: the resourceVersion to resume from is no longer in the server's window."""


@dataclass(frozen=True)
class Change:
    type: str  # LISTED, ADDED, MODIFIED, DELETED
    object: JSON

    @property
    def key(self) -> tuple[str, str]:
        meta = self.object.get("metadata") or {}
        return (str(meta.get("namespace", "")), str(meta.get("name", "")))


def parse_event(line: str, path: str) -> JSON:
    """One watch event. A line that is not a whole JSON object (the connection dropped in the middle
    of it) is ClusterUnreachable: the watch resumes from the last version it saw."""
    try:
        event = json.loads(line)
    except ValueError:
        raise ClusterUnreachable(f"watch of {path}: the stream broke off in the middle of an event") from None
    if not isinstance(event, dict):
        raise ClusterUnreachable(f"watch of {path}: the server sent something that is not an event")
    return event


async def watch_from(
    kube: KubeClient,
    path: str,
    resource_version: str,
    *,
    params: Mapping[str, str] | None = None,
    timeout_seconds: int | None = None,
) -> AsyncIterator[Change]:
    """Changes after ``resource_version``; resumes on its own when the stream ends. Raises
    ResourceExpired on 410 (the caller lists again)."""
    version = resource_version
    timeout_seconds = timeout_seconds or WATCH_TIMEOUT_SECONDS
    failures = 0
    while True:
        query: dict[str, str | int | bool] = {
            "watch": True,
            "allowWatchBookmarks": True,
            "resourceVersion": version,
            "timeoutSeconds": timeout_seconds,
            **(params or {}),
        }
        try:
            async for line in kube.stream_lines(path, params=query, what=f"watch {path}"):
                if not line:
                    continue
                event = parse_event(line, path)
                kind = event.get("type")
                obj = event.get("object") or {}
                if kind == "ERROR":
                    if obj.get("code") == 410:
                        raise ResourceExpired(obj.get("message", "resource version too old"))
                    raise ClusterUnreachable(f"watch of {path} failed: {obj.get('message', obj)}", code=obj.get("code"))
                version = str((obj.get("metadata") or {}).get("resourceVersion") or version)
                failures = 0
                if kind == "BOOKMARK":
                    continue
                yield Change(str(kind), obj)
        except ClusterUnreachable:
            failures += 1
            if failures > MAX_RECONNECTS:
                raise
            await asyncio.sleep(min(0.1 * 2**failures, 3.0))
        # the server ended the stream (timeoutSeconds or otherwise): resume from `version`


async def list_and_watch(
    kube: KubeClient,
    path: str,
    *,
    params: Mapping[str, str] | None = None,
    timeout_seconds: int | None = None,
    initial: tuple[list[JSON], str] | None = None,
) -> AsyncIterator[Change]:
    """Every object as LISTED, then changes; after a 410 the collection is listed again: objects
    come again as LISTED and those gone meanwhile as DELETED. ``initial`` (items, resourceVersion)
    stands for the first list when the caller has just made it."""
    known: dict[tuple[str, str], JSON] = {}
    while True:
        if initial is not None:
            items, version = initial
            initial = None
        else:
            items, version = await kube.list_all(path, params=params, what=f"list {path}")
        current: dict[tuple[str, str], JSON] = {}
        for item in items:
            change = Change(LISTED, item)
            current[change.key] = item
            yield change
        for key in set(known) - set(current):
            yield Change(DELETED, known[key])
        known = current
        try:
            async for change in watch_from(kube, path, version, params=params, timeout_seconds=timeout_seconds):
                if change.type == DELETED:
                    known.pop(change.key, None)
                else:
                    known[change.key] = change.object
                yield change
        except ResourceExpired:
            continue
