"""``phoebe logs``: the Flux controllers' logs, through the API server's ``pods/log``.

The controllers are the Deployments in the Flux namespace labelled
``app.kubernetes.io/part-of=flux`` (and flux-operator's own, for an installation it manages);
their Pods are found by each Deployment's selector, running ones first, container ``manager``.
Without ``--follow`` every stream is read at once and the lines merged by time. With it, the
backlog (what ``--since``/``--tail`` select) is read the same way and printed merged by time
first; then every stream is followed from the last line its backlog held, new Pods (a rollout,
a restart) are picked up from a watch, and a dropped stream reconnects from the last line it
delivered.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from phoebe_cli.errors import ClusterError, NotFound, PhoebeError, RequestRejected
from phoebe_cli.flux.installation import MANAGER_CONTAINER
from phoebe_cli.flux.kinds import kind_named
from phoebe_cli.flux.logs import (
    LogFilter,
    LogLine,
    StreamParser,
    merged,
    parse_object,
    split_kubelet_timestamp,
    time_key,
)
from phoebe_cli.kube.discovery import DEPLOYMENTS, NAMESPACES, PODS
from phoebe_cli.kube.session import Session
from phoebe_cli.kube.watch import DELETED, list_and_watch
from phoebe_cli.usecases.namespaces import require_namespace

FLUX_OPERATOR = "flux-operator"


class PodNotStarted(PhoebeError):
    """A controller's Pod exists but its container has not started: it has no log yet."""


@dataclass(frozen=True)
class LogsOptions:
    object: str | None = None  # KIND, KIND/NAME or KIND/NAMESPACE/NAME
    namespace: str | None = None  # of the objects the lines are about
    controllers: tuple[str, ...] = ()
    level: str = "info"
    since_seconds: int | None = None
    since_time: str | None = None
    tail: int | None = None
    follow: bool = False
    grep: str | None = None


@dataclass(frozen=True)
class ControllerPod:
    controller: str  # the Deployment's name
    namespace: str
    pod: str
    container: str
    running: bool
    waiting_reason: str = ""


def _short(controller: str) -> str:
    return controller.removesuffix("-controller")


def log_filter(options: LogsOptions) -> LogFilter:
    kind, namespace, name = parse_object(options.object)
    return LogFilter(
        kind=kind,
        name=name,
        namespace=namespace or options.namespace,
        min_level=options.level,
        grep=options.grep,
    )


def _wanted(controller: str, options: LogsOptions) -> bool:
    if options.controllers:
        return any(controller in (c, f"{c}-controller") for c in options.controllers)
    kind_name = (options.object or "").split("/")[0]
    kind = kind_named(kind_name) if kind_name else None
    if kind is not None:
        return controller == kind.controller.value  # only the controller that reconciles that kind
    return True


def _matches(selector: Mapping[str, str], labels: Mapping[str, str]) -> bool:
    return all(labels.get(k) == v for k, v in selector.items())


def _is_controller(deployment: Mapping[str, Any]) -> bool:
    labels = (deployment.get("metadata") or {}).get("labels") or {}
    return labels.get("app.kubernetes.io/part-of") == "flux" or labels.get("app.kubernetes.io/name") == FLUX_OPERATOR


def _container_of(pod: Mapping[str, Any]) -> str:
    containers = [c.get("name", "") for c in (pod.get("spec") or {}).get("containers") or []]
    return (
        MANAGER_CONTAINER if MANAGER_CONTAINER in containers else (containers[0] if containers else MANAGER_CONTAINER)
    )


def controller_pod(controller: str, pod: Mapping[str, Any]) -> ControllerPod:
    meta = pod.get("metadata") or {}
    status = pod.get("status") or {}
    container = _container_of(pod)
    waiting = ""
    for state in status.get("containerStatuses") or []:
        if state.get("name") == container:
            waiting = ((state.get("state") or {}).get("waiting") or {}).get("reason", "")
    running = status.get("phase") == "Running" and not waiting
    reason = waiting or str(status.get("phase", "Pending"))
    return ControllerPod(
        controller, str(meta.get("namespace", "")), str(meta.get("name", "")), container, running, reason
    )


async def find_pods(session: Session, options: LogsOptions) -> list[ControllerPod]:
    """The Pods of the selected controllers, running ones first (the newest first)."""
    kube = session.kube
    namespace = session.flux_namespace
    # Both lists at once: one round trip instead of two before the first log request.
    (deployments, _), (pods, _) = await asyncio.gather(
        kube.list_all(DEPLOYMENTS.collection_path(namespace), what=f"Deployments in {namespace}"),
        kube.list_all(PODS.collection_path(namespace), what=f"Pods in {namespace}"),
    )
    controllers = [d for d in deployments if _is_controller(d)]
    if not controllers:
        try:
            await kube.get_json(NAMESPACES.object_path(None, namespace))
        except NotFound:
            raise NotFound(
                f"namespace {namespace} not found: is Flux installed elsewhere? "
                "(--flux-namespace, $FLUX_SYSTEM_NAMESPACE)"
            ) from None
        except ClusterError:
            pass
        raise NotFound(
            f"no Flux controllers in namespace {namespace} (Deployments labelled app.kubernetes.io/part-of=flux)"
        )
    selected = [d for d in controllers if _wanted(str(d["metadata"]["name"]), options)]
    if not selected:
        names = ", ".join(sorted(_short(str(d["metadata"]["name"])) for d in controllers))
        wanted = ", ".join(options.controllers) or options.object or ""
        raise NotFound(f"no Flux controller for {wanted} in {namespace} (controllers there: {names})")
    found: list[ControllerPod] = []
    for deployment in selected:
        name = str(deployment["metadata"]["name"])
        selector = ((deployment.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        mine = [p for p in pods if selector and _matches(selector, (p.get("metadata") or {}).get("labels") or {})]
        mine.sort(key=lambda p: str((p.get("metadata") or {}).get("creationTimestamp", "")), reverse=True)
        found.extend(controller_pod(name, p) for p in mine if not (p.get("metadata") or {}).get("deletionTimestamp"))
    if not found:
        names = ", ".join(sorted(str(d["metadata"]["name"]) for d in selected))
        raise NotFound(f"no Pods for {names} in {namespace}")
    return found


def _log_params(
    pod: ControllerPod, options: LogsOptions, *, follow: bool, since_time: str | None = None
) -> dict[str, Any]:
    params: dict[str, Any] = {"container": pod.container, "timestamps": True}
    if follow:
        params["follow"] = True
    if since_time:
        params["sinceTime"] = since_time
    elif options.since_time:
        params["sinceTime"] = options.since_time
    elif options.since_seconds:
        params["sinceSeconds"] = options.since_seconds
    if options.tail is not None and not since_time:
        params["tailLines"] = options.tail
    return params


def _log_path(pod: ControllerPod) -> str:
    return f"{PODS.object_path(pod.namespace, pod.pod)}/log"


def _not_started(pod: ControllerPod, error: RequestRejected | None = None) -> PodNotStarted:
    why = pod.waiting_reason or (error.message if error else "not running")
    return PodNotStarted(f"{pod.controller}: Pod {pod.pod} has not started ({why}); it has no log yet")


@dataclass
class _Backlog:
    """One Pod's log up to now: the lines kept, the parser (a continuation may follow), and the
    kubelet time of the last line read (kept or not), to follow on from."""

    lines: list[LogLine]
    parser: StreamParser
    last: str


async def read_pod(session: Session, pod: ControllerPod, options: LogsOptions) -> list[LogLine]:
    return (await _read_backlog(session, pod, options)).lines


async def _read_backlog(session: Session, pod: ControllerPod, options: LogsOptions) -> _Backlog:
    try:
        response = await session.kube.request(
            "GET",
            _log_path(pod),
            params=_log_params(pod, options, follow=False),
            accept="application/json, */*",
            what=f"the log of {pod.pod}",
        )
    except RequestRejected as error:
        if error.code == 400:
            raise _not_started(pod, error) from error
        raise
    parser = StreamParser(pod.controller, pod.pod)
    keep = log_filter(options)
    lines = []
    last = ""
    for line in response.text.splitlines():
        received, text = split_kubelet_timestamp(line)
        last = received or last
        parsed = parser.kept(text, received, keep)
        if parsed is not None:
            lines.append(parsed)
    return _Backlog(lines, parser, last)


@dataclass(frozen=True)
class LogsResult:
    lines: tuple[LogLine, ...]
    pods: tuple[ControllerPod, ...]
    skipped: tuple[str, ...]  # why a Pod gave no lines (not started)


async def read_logs(session: Session, options: LogsOptions) -> LogsResult:
    """Every selected Pod's log, merged in time order, filtered."""
    log_filter(options)  # a bad OBJECT fails before any request
    pods = await find_pods(session, options)
    running = [p for p in pods if p.running]
    # one Pod per controller unless several run (sharding, a rollout in progress)
    by_controller: dict[str, list[ControllerPod]] = {}
    for pod in running:
        by_controller.setdefault(pod.controller, []).append(pod)
    skipped = [str(_not_started(p)) for p in pods if not p.running and p.controller not in by_controller]
    if not running:
        raise _not_started(pods[0])
    streams = await asyncio.gather(*(read_pod(session, p, options) for p in running), return_exceptions=True)
    kept: list[list[LogLine]] = []
    for result in streams:
        if isinstance(result, PodNotStarted):
            skipped.append(str(result))
        elif isinstance(result, BaseException):
            raise result
        else:
            kept.append(result)
    lines = merged(kept)
    if not lines and options.namespace:  # -n a namespace that does not exist: exit 5, not silence
        await require_namespace(session, options.namespace)
    return LogsResult(tuple(lines), tuple(running), tuple(skipped))


class _Follower:
    """Follows every selected controller's Pods until cancelled (Ctrl-C)."""

    def __init__(self, session: Session, options: LogsOptions, emit: Callable[[LogLine], None]) -> None:
        self.session = session
        self.options = options
        self.emit = emit
        self.keep = log_filter(options)
        self.streaming: dict[str, asyncio.Task[None]] = {}
        self.started_with: set[str] = set()
        self.selectors: dict[str, Mapping[str, str]] = {}
        self.failure: asyncio.Future[None] | None = None
        self.backlogs: dict[str, _Backlog] = {}  # Pod -> where its backlog ended

    async def run(self) -> None:
        if self.options.namespace:
            await require_namespace(self.session, self.options.namespace)
        pods = await find_pods(self.session, self.options)
        self.started_with = {p.pod for p in pods}
        await self._backlog([p for p in pods if p.running])
        controllers = {p.controller for p in pods}
        namespace = self.session.flux_namespace
        deployments, _ = await self.session.kube.list_all(DEPLOYMENTS.collection_path(namespace))
        self.selectors = {
            str(d["metadata"]["name"]): ((d.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
            for d in deployments
            if str(d["metadata"]["name"]) in controllers
        }
        self.failure = asyncio.get_running_loop().create_future()
        watcher = asyncio.create_task(self._watch_pods())
        try:
            await asyncio.wait({watcher, self.failure}, return_when=asyncio.FIRST_COMPLETED)
            if self.failure.done():
                self.failure.result()
            watcher.result()
        finally:
            watcher.cancel()
            for task in self.streaming.values():
                task.cancel()
            await asyncio.gather(watcher, *self.streaming.values(), return_exceptions=True)

    async def _backlog(self, pods: list[ControllerPod]) -> None:
        """Every Pod's lines up to now, merged in time order across controllers, before any
        stream is followed (following alone prints each stream's backlog as it arrives)."""
        read = await asyncio.gather(
            *(_read_backlog(self.session, p, self.options) for p in pods), return_exceptions=True
        )
        kept: list[list[LogLine]] = []
        for pod, result in zip(pods, read, strict=True):
            if isinstance(result, PodNotStarted):
                continue  # no log yet: followed from its first line once it runs
            if isinstance(result, BaseException):
                raise result
            self.backlogs[pod.pod] = result
            kept.append(result.lines)
        for line in merged(kept):
            self.emit(line)

    async def _watch_pods(self) -> None:
        """New Pods (a rollout, a restart) are followed from their first line; gone ones dropped."""
        path = PODS.collection_path(self.session.flux_namespace)
        async for change in list_and_watch(self.session.kube, path):
            labels = (change.object.get("metadata") or {}).get("labels") or {}
            owner = next((name for name, sel in self.selectors.items() if sel and _matches(sel, labels)), None)
            if owner is None:
                continue
            pod = controller_pod(owner, change.object)
            if change.type == DELETED:
                task = self.streaming.pop(pod.pod, None)
                if task is not None:
                    task.cancel()
                continue
            task = self.streaming.get(pod.pod)
            if pod.running and (task is None or task.done()):
                self.streaming[pod.pod] = asyncio.create_task(self._guarded(pod, pod.pod in self.started_with))

    async def _guarded(self, pod: ControllerPod, first: bool) -> None:
        try:
            await self._stream(pod, first)
        except asyncio.CancelledError:
            raise
        except BaseException as error:  # noqa: BLE001 - handed to run(), which raises it
            if self.failure is not None and not self.failure.done():
                self.failure.set_exception(error)

    async def _stream(self, pod: ControllerPod, first: bool) -> None:
        backlog = self.backlogs.pop(pod.pod, None)
        parser = backlog.parser if backlog is not None else StreamParser(pod.controller, pod.pod)
        last = backlog.last if backlog is not None else ""
        attempts = 0
        while True:
            options = self.options if first else LogsOptions()  # a new Pod: from its first line
            params = _log_params(pod, options, follow=True, since_time=last or None)
            try:
                path = _log_path(pod)
                async for raw in self.session.kube.stream_lines(path, params=params, what=f"the log of {pod.pod}"):
                    received, text = split_kubelet_timestamp(raw)
                    if last and received and time_key(received) <= time_key(last):
                        continue  # already delivered (the backlog, or before the reconnect)
                    last = received or last
                    line = parser.kept(text, received, self.keep)
                    if line is not None:
                        self.emit(line)
                    attempts = 0
            except RequestRejected as error:
                if error.code == 400:
                    return  # the container is not running (any more): the Pod watch takes over
                raise
            except NotFound:
                return  # the Pod is gone
            except ClusterError:
                attempts += 1
                if attempts > 5:
                    raise
            await asyncio.sleep(min(0.2 * 2**attempts, 3.0))
            first = False


async def follow_logs(session: Session, options: LogsOptions, emit: Callable[[LogLine], None]) -> None:
    """Follow every selected controller's Pods until cancelled (Ctrl-C)."""
    await _Follower(session, options, emit).run()
