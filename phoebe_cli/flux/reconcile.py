"""Asking Flux to reconcile, and judging the answer. Pure: no I/O, no clock of its own.

The request is a JSON merge patch of ``metadata.annotations`` only: ``requestedAt`` = one token
per run (RFC 3339 with nanoseconds), plus ``forceAt``/``resetAt`` = the same token for a forced
or reset HelmRelease (helm-controller acts only when they equal ``requestedAt``).
ExternalSecrets get ``force-sync=<unix seconds>`` instead.

An object is done when ``status.lastHandledReconcileAt`` equals the token and Ready is True for
the current generation; it failed when, after the token is handled, Ready is False or Stalled is
True (a Kustomization retrying with Reconciling=True ProgressingWithRetry is a failure).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from phoebe_cli.flux.kinds import EXTERNAL_SECRET, HELM_RELEASE, KUSTOMIZATION, FluxKind
from phoebe_cli.flux.objects import DEPENDENCY_NOT_READY, FORCE_AT, REQUESTED_AT, RESET_AT, FluxObject

FORCE_SYNC = "force-sync"
FIELD_MANAGER = "flux-client-side-apply"  # kustomize-controller keeps fields of this manager on re-apply


def new_token(epoch_ns: int) -> str:
    """RFC 3339 with nanoseconds, UTC: 2026-11-26T16:36:29.123456789Z."""
    seconds, nanos = divmod(epoch_ns, 1_000_000_000)
    stamp = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{stamp}.{nanos:09d}Z"


@dataclass(frozen=True)
class Request:
    """One run's reconcile request: the token, and what it asks of HelmReleases."""

    token: str
    epoch_seconds: int  # for ExternalSecret force-sync
    force: bool = False
    reset: bool = False

    def patch(self, kind: FluxKind) -> dict[str, Any]:
        """The merge patch for one object of ``kind``; it touches metadata.annotations only."""
        if kind is EXTERNAL_SECRET:
            return {"metadata": {"annotations": {FORCE_SYNC: str(self.epoch_seconds)}}}
        annotations = {REQUESTED_AT: self.token}
        if kind is HELM_RELEASE:
            if self.force:
                annotations[FORCE_AT] = self.token
            if self.reset:
                annotations[RESET_AT] = self.token
        return {"metadata": {"annotations": annotations}}

    def carried_by(self, obj: FluxObject) -> bool:
        """Whether ``obj`` holds this run's patch: every annotation it sets, with its value (to
        learn, after Ctrl-C, whether a patch that got no answer landed)."""
        wanted = self.patch(obj.kind)["metadata"]["annotations"]
        annotations = obj.annotations
        return all(annotations.get(key) == value for key, value in wanted.items())

    def handled(self, obj: FluxObject) -> bool:
        """Whether the controller has taken this request."""
        if obj.kind is EXTERNAL_SECRET:
            return _external_secret_refreshed(obj, self.epoch_seconds)
        if obj.last_handled_reconcile_at != self.token:
            return False
        if obj.kind is HELM_RELEASE:
            if self.force and obj.status.get("lastHandledForceAt") != self.token:
                return False
            if self.reset and obj.status.get("lastHandledResetAt") != self.token:
                return False
        return True


class Verdict(StrEnum):
    WAITING = "waiting"
    DONE = "done"
    FAILED = "failed"
    BLOCKED = "blocked"  # handled, but a dependency is not ready yet: may still become done
    TIMED_OUT = "timed-out"
    SKIPPED = "skipped"
    DELETED = "deleted"


@dataclass(frozen=True)
class Judgement:
    verdict: Verdict
    message: str = ""
    reason: str = ""


def judge(obj: FluxObject, request: Request) -> Judgement:
    """Where an object stands on this run's request."""
    if not request.handled(obj):
        return Judgement(Verdict.WAITING)
    ready = obj.ready
    if obj.stalled:
        stalled = obj.condition("Stalled")
        return Judgement(Verdict.FAILED, obj.message, stalled.reason if stalled else "Stalled")
    if ready is None:
        return Judgement(Verdict.WAITING)
    if ready.is_true:
        if obj.ready_is_current:
            return Judgement(Verdict.DONE, ready.message, ready.reason)
        return Judgement(Verdict.WAITING)
    if ready.is_false:
        if ready.reason == DEPENDENCY_NOT_READY:
            return Judgement(Verdict.BLOCKED, ready.message, ready.reason)
        return Judgement(Verdict.FAILED, ready.message, ready.reason)
    return Judgement(Verdict.WAITING, ready.message, ready.reason)


def judge_applied(kustomization: FluxObject, revision: str) -> Judgement:
    """--cascade: has a Kustomization applied ``revision`` of its source (or failed trying)?"""
    status = kustomization.status
    ready = kustomization.ready
    if status.get("lastAppliedRevision") == revision and ready is not None and ready.is_true:
        return Judgement(Verdict.DONE, ready.message, ready.reason)
    if ready is not None and ready.is_false and ready.reason == DEPENDENCY_NOT_READY:
        # kustomize-controller does not attempt a revision while a dependency is not ready
        return Judgement(Verdict.BLOCKED, ready.message, ready.reason)
    if status.get("lastAttemptedRevision") == revision and ready is not None and ready.is_false:
        return Judgement(Verdict.FAILED, ready.message, ready.reason)
    if kustomization.stalled:
        return Judgement(Verdict.FAILED, kustomization.message, "Stalled")
    return Judgement(Verdict.WAITING)


def _external_secret_refreshed(obj: FluxObject, since_epoch: int) -> bool:
    """external-secrets refreshes on a new force-sync value and stamps status.refreshTime."""
    refreshed = obj.status.get("refreshTime")
    if not refreshed:
        return False
    try:
        when = datetime.fromisoformat(str(refreshed).replace("Z", "+00:00"))
    except ValueError:
        return False
    return when.timestamp() >= since_epoch


def reads_from(obj: FluxObject, source_kind: str, namespace: str, name: str) -> bool:
    """Whether a Kustomization reads from the given source (for --cascade)."""
    if obj.kind is not KUSTOMIZATION:
        return False
    ref = obj.source_ref
    return ref is not None and (ref.kind, ref.namespace, ref.name) == (source_kind, namespace, name)
