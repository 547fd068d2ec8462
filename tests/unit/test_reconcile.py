"""The reconcile request and the judgement of its answer."""

from __future__ import annotations

from typing import Any

import pytest

from phoebe_cli.flux import kinds
from phoebe_cli.flux.objects import FluxObject
from phoebe_cli.flux.reconcile import Request, Verdict, judge, judge_applied, new_token, reads_from

TOKEN = "2026-11-26T16:36:29.123456789Z"


def test_token_has_nanoseconds() -> None:
    assert new_token(1_795_019_789_123_456_789) == "2026-11-18T16:36:29.123456789Z"
    assert new_token(1_795_019_789_000_000_001).endswith(".000000001Z")


def test_patches_touch_annotations_only() -> None:
    request = Request(TOKEN, 1_700_000_000, force=True, reset=True)
    assert request.patch(kinds.KUSTOMIZATION) == {
        "metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": TOKEN}}
    }
    assert request.patch(kinds.HELM_RELEASE) == {
        "metadata": {
            "annotations": {
                "reconcile.fluxcd.io/requestedAt": TOKEN,
                "reconcile.fluxcd.io/forceAt": TOKEN,
                "reconcile.fluxcd.io/resetAt": TOKEN,
            }
        }
    }
    assert Request(TOKEN, 1).patch(kinds.HELM_RELEASE) == {
        "metadata": {"annotations": {"reconcile.fluxcd.io/requestedAt": TOKEN}}
    }
    assert request.patch(kinds.EXTERNAL_SECRET) == {"metadata": {"annotations": {"force-sync": "1700000000"}}}


def flux(
    kind: kinds.FluxKind = kinds.KUSTOMIZATION, status: dict[str, Any] | None = None, generation: int = 3
) -> FluxObject:
    return FluxObject.from_api(
        kind,
        {"metadata": {"name": "a", "namespace": "n", "generation": generation}, "spec": {}, "status": status or {}},
    )


def ready(status: str, reason: str = "R", message: str = "m", generation: int = 3) -> dict[str, Any]:
    return {"type": "Ready", "status": status, "reason": reason, "message": message, "observedGeneration": generation}


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        ({}, Verdict.WAITING),
        ({"lastHandledReconcileAt": "older", "conditions": [ready("True")]}, Verdict.WAITING),
        ({"lastHandledReconcileAt": TOKEN, "conditions": [ready("True")]}, Verdict.DONE),
        ({"lastHandledReconcileAt": TOKEN, "conditions": [ready("True", generation=2)]}, Verdict.WAITING),
        ({"lastHandledReconcileAt": TOKEN, "conditions": [ready("Unknown", "Progressing")]}, Verdict.WAITING),
        ({"lastHandledReconcileAt": TOKEN, "conditions": [ready("False", "ArtifactFailed")]}, Verdict.FAILED),
        (
            {
                "lastHandledReconcileAt": TOKEN,
                "observedGeneration": -1,
                "conditions": [
                    ready("False", "ReconciliationFailed"),
                    {"type": "Reconciling", "status": "True", "reason": "ProgressingWithRetry", "message": ""},
                ],
            },
            Verdict.FAILED,
        ),
        ({"lastHandledReconcileAt": TOKEN, "conditions": [ready("False", "DependencyNotReady")]}, Verdict.BLOCKED),
        (
            {
                "lastHandledReconcileAt": TOKEN,
                "conditions": [
                    ready("True"),
                    {"type": "Stalled", "status": "True", "reason": "InvalidPath", "message": "x"},
                ],
            },
            Verdict.FAILED,
        ),
        ({"lastHandledReconcileAt": TOKEN}, Verdict.WAITING),
    ],
)
def test_judge(status: dict[str, Any], verdict: Verdict) -> None:
    assert judge(flux(status=status), Request(TOKEN, 0)).verdict is verdict


def test_judge_keeps_the_controllers_message() -> None:
    status = {"lastHandledReconcileAt": TOKEN, "conditions": [ready("False", "ArtifactFailed", "path not found")]}
    judgement = judge(flux(status=status), Request(TOKEN, 0))
    assert (judgement.reason, judgement.message) == ("ArtifactFailed", "path not found")


def test_forced_release_waits_for_the_force_to_be_handled() -> None:
    request = Request(TOKEN, 0, force=True)
    status: dict[str, Any] = {"lastHandledReconcileAt": TOKEN, "conditions": [ready("True")]}
    assert judge(flux(kinds.HELM_RELEASE, status), request).verdict is Verdict.WAITING
    status["lastHandledForceAt"] = TOKEN
    assert judge(flux(kinds.HELM_RELEASE, status), request).verdict is Verdict.DONE


def test_external_secret_is_done_after_a_refresh() -> None:
    request = Request(TOKEN, 1_800_000_000)
    before = {"refreshTime": "2027-01-15T08:00:00Z", "conditions": [ready("True", "SecretSynced")]}
    after = {"refreshTime": "2027-01-15T08:00:01Z", "conditions": [ready("True", "SecretSynced")]}
    # 1_800_000_000 is 2027-01-15T08:00:00Z
    assert (
        judge(flux(kinds.EXTERNAL_SECRET, {"refreshTime": "2027-01-15T07:59:59Z"}), request).verdict is Verdict.WAITING
    )
    assert judge(flux(kinds.EXTERNAL_SECRET, before), request).verdict is Verdict.DONE
    assert judge(flux(kinds.EXTERNAL_SECRET, after), request).verdict is Verdict.DONE


def test_judge_applied_for_cascade() -> None:
    rev = "main@sha1:" + "b" * 40
    assert (
        judge_applied(flux(status={"lastAppliedRevision": "main@sha1:old", "conditions": [ready("True")]}), rev).verdict
        is Verdict.WAITING
    )
    assert (
        judge_applied(flux(status={"lastAppliedRevision": rev, "conditions": [ready("True")]}), rev).verdict
        is Verdict.DONE
    )
    failed = {"lastAppliedRevision": "old", "lastAttemptedRevision": rev, "conditions": [ready("False", "BuildFailed")]}
    assert judge_applied(flux(status=failed), rev).verdict is Verdict.FAILED


def test_reads_from() -> None:
    ks = FluxObject.from_api(
        kinds.KUSTOMIZATION,
        {
            "metadata": {"name": "a", "namespace": "apps"},
            "spec": {"sourceRef": {"kind": "GitRepository", "name": "flux-system", "namespace": "flux-system"}},
        },
    )
    assert reads_from(ks, "GitRepository", "flux-system", "flux-system")
    assert not reads_from(ks, "OCIRepository", "flux-system", "flux-system")
