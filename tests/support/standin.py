"""A controller stand-in that plays Flux's part on the real API server, for tests that need an
exact outcome.

It watches the Flux kinds (and ExternalSecrets) and, when an object it is responsible for gets
a new reconcile request (``reconcile.fluxcd.io/requestedAt`` differs from
``status.lastHandledReconcileAt``; for ExternalSecrets a new ``force-sync``), it writes the
status the test chose: succeed, fail with a message, never answer, answer after a delay, or
wait until its dependencies are Ready. Status goes through the ``/status`` subresource as a
real controller's would.

    with FluxStandIn(api, namespaces={ns}) as standin:
        standin.expect("Kustomization", ns, "app", Outcome.succeed())
        standin.expect("Kustomization", ns, "broken", Outcome.fail("ArtifactFailed", "path not found"))
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import queue
import ssl
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import httpx

from tests.cluster.api import Api, ApiError
from tests.support import fluxstatus

Obj = dict[str, Any]
Key = tuple[str, str, str]  # kind, namespace, name

WATCHED: tuple[tuple[str, str], ...] = (
    ("source.toolkit.fluxcd.io", "GitRepository"),
    ("source.toolkit.fluxcd.io", "OCIRepository"),
    ("source.toolkit.fluxcd.io", "HelmRepository"),
    ("source.toolkit.fluxcd.io", "HelmChart"),
    ("source.toolkit.fluxcd.io", "Bucket"),
    ("kustomize.toolkit.fluxcd.io", "Kustomization"),
    ("helm.toolkit.fluxcd.io", "HelmRelease"),
    ("external-secrets.io", "ExternalSecret"),
)


@dataclass(frozen=True)
class Outcome:
    """What the stand-in does with a reconcile request."""

    action: str  # succeed | fail | never | dependencies
    reason: str = ""
    message: str = ""
    revision: str | None = None
    stalled: bool = False
    retrying: bool = True
    delay: float = 0.0

    @classmethod
    def succeed(cls, revision: str | None = None, message: str | None = None, delay: float = 0.0) -> Outcome:
        return cls("succeed", revision=revision, message=message or "", delay=delay)

    @classmethod
    def fail(
        cls, reason: str, message: str, *, stalled: bool = False, retrying: bool = True, delay: float = 0.0
    ) -> Outcome:
        return cls("fail", reason=reason, message=message, stalled=stalled, retrying=retrying, delay=delay)

    @classmethod
    def never(cls) -> Outcome:
        return cls("never")

    @classmethod
    def after_dependencies(cls, revision: str | None = None) -> Outcome:
        """Ready=False DependencyNotReady until every spec.dependsOn is Ready, then succeed."""
        return cls("dependencies", revision=revision)


class _Countdown:
    def __init__(self, count: int) -> None:
        self.remaining = count
        self.done = threading.Event()
        self._lock = threading.Lock()
        if count <= 0:
            self.done.set()

    def count_down(self) -> None:
        with self._lock:
            self.remaining -= 1
            if self.remaining <= 0:
                self.done.set()


@dataclass
class FluxStandIn:
    api: Api
    namespaces: set[str] | None = None  # act only here; None: everywhere
    default: Outcome | None = None  # for objects with no expectation; None: leave them alone
    outcomes: dict[Key, Outcome] = field(default_factory=dict)
    handled: dict[Key, list[str]] = field(default_factory=dict)  # tokens answered, in order
    journal: list[tuple[float, str, Key]] = field(default_factory=list)  # (monotonic, "seen"|"answered", key)
    _objects: dict[Key, Obj] = field(default_factory=dict)
    _waiting: dict[Key, str] = field(default_factory=dict)  # key -> token, waiting on dependencies
    _queue: queue.Queue[tuple[str, Any]] = field(default_factory=queue.Queue)
    _stop: threading.Event = field(default_factory=threading.Event)
    _threads: list[threading.Thread] = field(default_factory=list)
    _loop: asyncio.AbstractEventLoop | None = None
    _main: asyncio.Task[None] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def expect(self, kind: str, namespace: str, name: str, outcome: Outcome) -> None:
        with self._lock:
            self.outcomes[(kind, namespace, name)] = outcome

    def tokens_for(self, kind: str, namespace: str, name: str) -> list[str]:
        with self._lock:
            return list(self.handled.get((kind, namespace, name), []))

    # --- lifecycle -------------------------------------------------------------------------
    def start(self) -> FluxStandIn:
        served = [(g, k) for g, k in WATCHED if self._served(g, k)]
        listed = _Countdown(len(served))
        self._loop = asyncio.new_event_loop()

        async def watch_all() -> None:
            client = httpx.AsyncClient(
                base_url=self.api.server,
                headers={"Authorization": f"Bearer {self.api.token}"},
                verify=ssl.create_default_context(cafile=self.api.ca_file),
                timeout=httpx.Timeout(30, read=None),
            )
            try:
                await asyncio.gather(*(self._watch(client, group, kind, listed) for group, kind in served))
            finally:
                await client.aclose()

        def run_loop() -> None:
            assert self._loop is not None
            self._main = self._loop.create_task(watch_all())
            with contextlib.suppress(asyncio.CancelledError):
                self._loop.run_until_complete(self._main)
            self._loop.close()

        watcher = threading.Thread(target=run_loop, daemon=True, name="standin-watch")
        watcher.start()
        worker = threading.Thread(target=self._work, daemon=True, name="standin-worker")
        worker.start()
        self._threads.extend([watcher, worker])
        listed.done.wait(timeout=30)  # every watch has listed once
        return self

    def stop(self) -> None:
        self._stop.set()
        self._queue.put(("stop", None))
        if self._loop is not None and self._main is not None:
            self._loop.call_soon_threadsafe(self._main.cancel)
        for thread in self._threads:
            thread.join(timeout=10)

    def __enter__(self) -> FluxStandIn:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def _served(self, group: str, kind: str) -> bool:
        try:
            self._collection(group, kind)
        except (KeyError, ApiError):
            return False
        return True

    def _collection(self, group: str, kind: str) -> str:
        groups = self.api.http.get(f"/apis/{group}").json()
        version = groups["preferredVersion"]["version"]
        return self.api.path(f"{group}/{version}", kind)

    # --- watching --------------------------------------------------------------------------
    async def _watch(self, client: httpx.AsyncClient, group: str, kind: str, listed: _Countdown) -> None:
        path = self._collection(group, kind)
        first = True
        while not self._stop.is_set():
            try:
                listing = (await client.get(path)).json()
                for item in listing.get("items") or []:
                    item.setdefault("kind", kind)
                    self._queue.put(("event", item))
                if first:
                    first = False
                    listed.count_down()
                version = listing["metadata"]["resourceVersion"]
                while not self._stop.is_set():
                    params = {"watch": "1", "resourceVersion": version, "allowWatchBookmarks": "true"}
                    async with client.stream("GET", path, params=params) as stream:
                        gone = False
                        async for line in stream.aiter_lines():
                            if not line:
                                continue
                            event = json.loads(line)
                            obj = event.get("object") or {}
                            if event.get("type") == "ERROR":
                                gone = obj.get("code") == 410
                                break
                            version = obj.get("metadata", {}).get("resourceVersion", version)
                            if event.get("type") in ("ADDED", "MODIFIED"):
                                self._queue.put(("event", obj))
                            elif event.get("type") == "DELETED":
                                self._queue.put(("deleted", obj))
                        if gone:
                            break  # re-list
            except (httpx.HTTPError, KeyError, ValueError):
                await asyncio.sleep(0.2)

    # --- acting ----------------------------------------------------------------------------
    def _work(self) -> None:
        while True:
            kind, item = self._queue.get()
            if kind == "stop":
                return
            try:
                if kind == "event":
                    self._on_object(item)
                elif kind == "deleted":
                    key = _key(item)
                    self._objects.pop(key, None)
                    self._waiting.pop(key, None)
                elif kind == "fire":
                    self._answer(*item)
                self._recheck_waiting()
            except (ApiError, httpx.HTTPError):
                continue  # the object went away or changed under us; the next event retries

    def _outcome_for(self, key: Key) -> Outcome | None:
        with self._lock:
            if key in self.outcomes:
                return self.outcomes[key]
        if self.namespaces is not None and key[1] not in self.namespaces:
            return None
        return self.default

    def _on_object(self, obj: Obj) -> None:
        key = _key(obj)
        self._objects[key] = obj
        token = _pending_token(obj)
        if token is None:
            return
        with self._lock:
            if token in self.handled.get(key, []):
                return
        outcome = self._outcome_for(key)
        if outcome is None or outcome.action == "never":
            return
        with self._lock:
            self.handled.setdefault(key, []).append(token)
            self.journal.append((time.monotonic(), "seen", key))
        if outcome.delay > 0:
            timer = threading.Timer(outcome.delay, self._queue.put, args=(("fire", (key, token, outcome)),))
            timer.daemon = True
            timer.start()
        else:
            self._answer(key, token, outcome)

    def _answer(self, key: Key, token: str, outcome: Outcome) -> None:
        obj = self._objects.get(key)
        if obj is None:
            return
        status_token = token if key[0] != fluxstatus.EXTERNAL_SECRET else None
        if outcome.action == "succeed":
            status = fluxstatus.ready_status(
                obj, token=status_token, revision=outcome.revision, message=outcome.message or None
            )
        elif outcome.action == "fail":
            status = fluxstatus.failed_status(
                obj,
                reason=outcome.reason,
                message=outcome.message,
                token=status_token,
                stalled=outcome.stalled,
                retrying=outcome.retrying,
            )
        elif outcome.action == "dependencies":
            blocker = self._first_unready_dependency(obj)
            if blocker is None:
                status = fluxstatus.ready_status(obj, token=status_token, revision=outcome.revision)
                self._waiting.pop(key, None)
            else:
                status = fluxstatus.dependency_not_ready_status(obj, blocker, token=status_token)
                self._waiting[key] = token
        else:
            return
        self.api.patch_status(obj, status, manager=f"{key[0].lower()}-standin")
        with self._lock:
            self.journal.append((time.monotonic(), "answered", key))

    def first(self, what: str, kind: str, namespace: str, name: str) -> float | None:
        """When the stand-in first saw a request for (or answered) an object."""
        with self._lock:
            return next((t for t, w, k in self.journal if w == what and k == (kind, namespace, name)), None)

    def _recheck_waiting(self) -> None:
        for key, token in list(self._waiting.items()):
            obj = self._objects.get(key)
            if obj is None:
                self._waiting.pop(key, None)
                continue
            if self._first_unready_dependency(obj) is None:
                outcome = self._outcome_for(key) or Outcome.succeed()
                self._waiting.pop(key, None)
                status = fluxstatus.ready_status(obj, token=token, revision=outcome.revision)
                self.api.patch_status(obj, status, manager=f"{key[0].lower()}-standin")

    def _first_unready_dependency(self, obj: Obj) -> str | None:
        namespace = obj["metadata"]["namespace"]
        for dependency in (obj.get("spec") or {}).get("dependsOn") or []:
            dep_namespace = dependency.get("namespace") or namespace
            dep = self._objects.get((obj["kind"], dep_namespace, dependency["name"]))
            if dep is None or not _is_ready(dep):
                return f"{dep_namespace}/{dependency['name']}"
        return None


def _key(obj: Obj) -> Key:
    meta = obj["metadata"]
    return (obj["kind"], meta.get("namespace", ""), meta["name"])


def _pending_token(obj: Obj) -> str | None:
    annotations = obj["metadata"].get("annotations") or {}
    status = obj.get("status") or {}
    if obj["kind"] == fluxstatus.EXTERNAL_SECRET:
        return annotations.get(fluxstatus.FORCE_SYNC)
    token = annotations.get(fluxstatus.REQUESTED_AT)
    if token is None or status.get("lastHandledReconcileAt") == token:
        return None
    return str(token)


def _is_ready(obj: Obj) -> bool:
    for cond in (obj.get("status") or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return bool(cond.get("status") == "True")
    return False


def objects_in(api: Api, kinds: Iterable[tuple[str, str]], namespace: str) -> list[Obj]:
    """Every object of ``kinds`` (apiVersion, kind) in a namespace; a test convenience."""
    found: list[Obj] = []
    for api_version, kind in kinds:
        found.extend(api.list(api_version, kind, namespace))
    return found
