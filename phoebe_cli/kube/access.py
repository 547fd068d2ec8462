"""Asking the API server what the current user may do (SelfSubjectAccessReview)."""

from __future__ import annotations

from dataclasses import dataclass

from phoebe_cli.kube.client import KubeClient

_REVIEWS = "/apis/authorization.k8s.io/v1/selfsubjectaccessreviews"


@dataclass(frozen=True)
class Permission:
    verb: str
    group: str
    resource: str
    namespace: str | None  # None: cluster-wide (every namespace)

    def describe(self) -> str:
        where = f'in the namespace "{self.namespace}"' if self.namespace else "cluster-wide"
        group = self.group or "core"
        return f"{self.verb} {self.resource} ({group}) {where}"


async def allowed(kube: KubeClient, permission: Permission) -> bool:
    """True when RBAC (or another authorizer) allows it; never raises for a plain "no"."""
    attributes = {"verb": permission.verb, "group": permission.group, "resource": permission.resource}
    if permission.namespace:
        attributes["namespace"] = permission.namespace
    review = {
        "apiVersion": "authorization.k8s.io/v1",
        "kind": "SelfSubjectAccessReview",
        "spec": {"resourceAttributes": attributes},
    }
    answer = await kube.send_json("POST", _REVIEWS, review, what="an access review")
    return bool((answer.get("status") or {}).get("allowed"))
