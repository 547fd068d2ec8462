"""The kinds phoebe knows: Flux's own, plus ExternalSecret, with the names people type for them.

Pure data. Versions are NOT here: which versions a cluster serves, and which it prefers, is
asked of the cluster's discovery once per run (older Flux releases serve deprecated versions).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class Controller(StrEnum):
    SOURCE = "source-controller"
    KUSTOMIZE = "kustomize-controller"
    HELM = "helm-controller"
    NOTIFICATION = "notification-controller"
    IMAGE_REFLECTOR = "image-reflector-controller"
    IMAGE_AUTOMATION = "image-automation-controller"
    EXTERNAL_SECRETS = "external-secrets"


SOURCE_GROUP = "source.toolkit.fluxcd.io"
KUSTOMIZE_GROUP = "kustomize.toolkit.fluxcd.io"
HELM_GROUP = "helm.toolkit.fluxcd.io"
NOTIFICATION_GROUP = "notification.toolkit.fluxcd.io"
IMAGE_GROUP = "image.toolkit.fluxcd.io"
EXTERNAL_SECRETS_GROUP = "external-secrets.io"


@dataclass(frozen=True)
class FluxKind:
    """One kind of object phoebe can list, and the names a user may call it by."""

    kind: str
    group: str
    plural: str
    names: tuple[str, ...]  # accepted on the command line, lower case; the first is the short one
    controller: Controller
    reconcilable: bool  # has a reconcile loop that honours reconcile.fluxcd.io/requestedAt
    is_source: bool = False
    part_of_flux: bool = True  # False for kinds from other projects (external-secrets)

    @property
    def short_name(self) -> str:
        return self.names[0]

    @property
    def api_group_kind(self) -> str:
        return f"{self.kind}.{self.group}"


GIT_REPOSITORY = FluxKind(
    "GitRepository",
    SOURCE_GROUP,
    "gitrepositories",
    ("git", "gitrepo", "gitrepos", "gitrepository", "gitrepositories"),
    Controller.SOURCE,
    reconcilable=True,
    is_source=True,
)
OCI_REPOSITORY = FluxKind(
    "OCIRepository",
    SOURCE_GROUP,
    "ocirepositories",
    ("oci", "ocirepo", "ocirepos", "ocirepository", "ocirepositories"),
    Controller.SOURCE,
    reconcilable=True,
    is_source=True,
)
HELM_REPOSITORY = FluxKind(
    "HelmRepository",
    SOURCE_GROUP,
    "helmrepositories",
    ("helmrepo", "helmrepos", "helmrepository", "helmrepositories"),
    Controller.SOURCE,
    reconcilable=True,
    is_source=True,
)
HELM_CHART = FluxKind(
    "HelmChart",
    SOURCE_GROUP,
    "helmcharts",
    ("chart", "charts", "hc", "helmchart", "helmcharts"),
    Controller.SOURCE,
    reconcilable=True,
    is_source=True,
)
BUCKET = FluxKind(
    "Bucket",
    SOURCE_GROUP,
    "buckets",
    ("bucket", "buckets"),
    Controller.SOURCE,
    reconcilable=True,
    is_source=True,
)
KUSTOMIZATION = FluxKind(
    "Kustomization",
    KUSTOMIZE_GROUP,
    "kustomizations",
    ("ks", "kustomization", "kustomizations"),
    Controller.KUSTOMIZE,
    reconcilable=True,
)
HELM_RELEASE = FluxKind(
    "HelmRelease",
    HELM_GROUP,
    "helmreleases",
    ("hr", "helmrelease", "helmreleases"),
    Controller.HELM,
    reconcilable=True,
)
ALERT = FluxKind(
    "Alert", NOTIFICATION_GROUP, "alerts", ("alert", "alerts"), Controller.NOTIFICATION, reconcilable=False
)
PROVIDER = FluxKind(
    "Provider",
    NOTIFICATION_GROUP,
    "providers",
    ("provider", "providers", "alert-provider"),
    Controller.NOTIFICATION,
    reconcilable=False,
)
RECEIVER = FluxKind(
    "Receiver",
    NOTIFICATION_GROUP,
    "receivers",
    ("receiver", "receivers"),
    Controller.NOTIFICATION,
    reconcilable=True,
)
IMAGE_REPOSITORY = FluxKind(
    "ImageRepository",
    IMAGE_GROUP,
    "imagerepositories",
    ("imagerepo", "imagerepos", "imagerepository", "imagerepositories"),
    Controller.IMAGE_REFLECTOR,
    reconcilable=True,
)
IMAGE_POLICY = FluxKind(
    "ImagePolicy",
    IMAGE_GROUP,
    "imagepolicies",
    ("imagepolicy", "imagepolicies"),
    Controller.IMAGE_REFLECTOR,
    reconcilable=True,
)
IMAGE_UPDATE_AUTOMATION = FluxKind(
    "ImageUpdateAutomation",
    IMAGE_GROUP,
    "imageupdateautomations",
    ("iua", "imageupdate", "imageupdateautomation", "imageupdateautomations"),
    Controller.IMAGE_AUTOMATION,
    reconcilable=True,
)
EXTERNAL_SECRET = FluxKind(
    "ExternalSecret",
    EXTERNAL_SECRETS_GROUP,
    "externalsecrets",
    ("es", "externalsecret", "externalsecrets"),
    Controller.EXTERNAL_SECRETS,
    reconcilable=True,
    part_of_flux=False,
)

ALL_KINDS: tuple[FluxKind, ...] = (
    GIT_REPOSITORY,
    OCI_REPOSITORY,
    HELM_REPOSITORY,
    HELM_CHART,
    BUCKET,
    KUSTOMIZATION,
    HELM_RELEASE,
    ALERT,
    PROVIDER,
    RECEIVER,
    IMAGE_REPOSITORY,
    IMAGE_POLICY,
    IMAGE_UPDATE_AUTOMATION,
    EXTERNAL_SECRET,
)

FLUX_GROUPS: frozenset[str] = frozenset(k.group for k in ALL_KINDS if k.part_of_flux)

_BY_NAME: dict[str, FluxKind] = {}
for _kind in ALL_KINDS:
    for _name in (*_kind.names, _kind.kind.lower(), _kind.plural, _kind.api_group_kind.lower()):
        _BY_NAME.setdefault(_name, _kind)


def kind_named(name: str) -> FluxKind | None:
    """The kind a user means by ``name`` (case-insensitive: ks, Kustomization, kustomizations ...)."""
    return _BY_NAME.get(name.strip().lower())


def kind_of(group: str, kind: str) -> FluxKind | None:
    """The registry entry for an object's apiVersion group and kind."""
    for candidate in ALL_KINDS:
        if candidate.group == group and candidate.kind == kind:
            return candidate
    return None


def plural(kind: str) -> str:
    """The English plural of a kind's name: HelmRepository -> HelmRepositories."""
    if kind.endswith("y") and kind[-2:-1] not in ("a", "e", "i", "o", "u"):
        return kind[:-1] + "ies"
    if kind.endswith(("s", "x", "ch", "sh")):
        return kind + "es"
    return kind + "s"


def counted(number: int, kind: str) -> str:
    """``1 GitRepository``, ``2 GitRepositories``."""
    return f"{number} {kind if number == 1 else plural(kind)}"
