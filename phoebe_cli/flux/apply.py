"""What kustomize-controller does to an object when it applies it, and what phoebe leaves out when
it compares two versions of one — pure, the one home of these rules for the cluster side
(``kube/apply.py``: server-side-apply dry-runs) and the offline comparison (``flux/diff.py``).

The rules follow kustomize-controller v1.9.6 and ``github.com/fluxcd/pkg/ssa`` v0.78.0:

- **Before applying** (``normalize_for_apply``, ssa ``normalize.UnstructuredList``): ports
  without a protocol get ``TCP``, a Secret's ``stringData`` is folded into ``data``
  (``fold_string_data``), ``creationTimestamp`` is null and ``status`` dropped (CRDs keep it);
  Roles and ClusterRoles are left alone. The controller's owner labels (``set_owner_labels``),
  a CRD's invalid conversion ``caBundle`` removed (``without_invalid_ca_bundle``), and the order
  objects are applied in (``apply_stage``).
- **Skipped** objects (``apply_skip_reason``, ssa ``shouldSkipDiff``): ``kustomize.toolkit.fluxcd.io/
  reconcile: disabled`` or ``…/ssa: Ignore`` on the desired or the live object, ``…/ssa:
  IfNotPresent`` on the desired one when the object exists; labels or annotations, values
  compared ignoring case (``AnyInMetadata``). Pruning (``prune_skip_reason``, ssa ``Delete``):
  only objects that carry the Kustomization's owner labels, and not those marked ``…/prune:
  disabled``, reconcile disabled or ssa Ignore.
- **Drift** (``has_drifted``, ssa ``hasDriftedWithIgnore``): the dry-run object is new, or its
  labels or annotations differ (empty and missing alike), or anything outside ``metadata`` and
  ``status`` differs, once the paths of ``spec.ignore`` rules (``IgnoreRule``) are removed from
  both; values are equal as Go compares decoded JSON (``json_equal``: 1 is neither 1.0 nor true).
- **Noise** (``normalize``), for showing a change: server-owned metadata, ``status``, kubectl's
  last-applied annotation, the SOPS metadata, empty label and annotation maps, the ``strip_attrs``
  labels and annotations (on the object and its pod templates) and the ignored paths.
"""

from __future__ import annotations

import base64
import binascii
import copy
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from phoebe_cli.errors import UsageError
from phoebe_cli.flux.inventory import RBAC_GROUP, ObjectKey
from phoebe_cli.flux.secrets import SOPS_MARK, is_secret
from phoebe_cli.flux.selectors import parse_selector

__all__ = [
    "DEFAULT_STRIP_ATTRS",
    "EXCLUSIONS",
    "FORCE",
    "FORCE_KEY",
    "IF_NOT_PRESENT",
    "OWNER_GROUP",
    "PRUNE_KEY",
    "RECONCILE_KEY",
    "SSA_KEY",
    "IgnoreRule",
    "any_in_metadata",
    "apply_skip_reason",
    "apply_stage",
    "exclusion_reason",
    "fold_string_data",
    "force_enabled",
    "has_drifted",
    "ignore_rules",
    "ignored_paths",
    "is_cluster_role",
    "is_crd",
    "is_immutable_error",
    "is_namespace",
    "json_equal",
    "normalize",
    "normalize_for_apply",
    "normalize_paths",
    "owned_by",
    "owner_labels",
    "prune_skip_reason",
    "remove_pointer",
    "set_owner_labels",
    "skip_reason",
    "without_invalid_ca_bundle",
]

OWNER_GROUP = "kustomize.toolkit.fluxcd.io"
RECONCILE_KEY = f"{OWNER_GROUP}/reconcile"
SSA_KEY = f"{OWNER_GROUP}/ssa"
PRUNE_KEY = f"{OWNER_GROUP}/prune"
FORCE_KEY = f"{OWNER_GROUP}/force"

# kustomize-controller's selectors (ApplyOptions, DiffOptions, DeleteOptions)
EXCLUSIONS: Mapping[str, str] = {RECONCILE_KEY: "disabled", SSA_KEY: "Ignore"}
IF_NOT_PRESENT: Mapping[str, str] = {SSA_KEY: "IfNotPresent"}
FORCE: Mapping[str, str] = {FORCE_KEY: "Enabled"}

# Label/annotation keys left out of the comparison, as flux-local users pass to --strip-attrs:
# they change with every chart release without saying anything about the change. A key ending
# in "/*" is a prefix: "checksum/*" is every "checksum/..." key (checksum/config, checksum/secret).
DEFAULT_STRIP_ATTRS: tuple[str, ...] = (
    "helm.sh/chart",
    "checksum/*",
    "app.kubernetes.io/version",
    "chart",
)

_NOISE_METADATA = (
    "managedFields",
    "resourceVersion",
    "generation",
    "uid",
    "creationTimestamp",
    "selfLink",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
)
_NOISE_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration", SOPS_MARK)


def _metadata_map(obj: Mapping[str, Any] | None, which: str) -> Mapping[str, Any]:
    meta = obj.get("metadata") if obj is not None else None
    if not isinstance(meta, Mapping):
        return {}
    found = meta.get(which)
    return found if isinstance(found, Mapping) else {}


# --- equality -------------------------------------------------------------------------------------
def json_equal(a: Any, b: Any) -> bool:
    """Deep equality of decoded JSON as Go's ``apiequality.Semantic.DeepEqual`` compares
    unstructured objects: maps regardless of key order, lists in order, scalars of one type only
    (an int64 is neither a float64 nor a bool: 1, 1.0 and true all differ), null only equals null.
    (Empty and missing label or annotation maps are alike too, but ``has_drifted`` reads those.)"""
    if isinstance(a, dict) and isinstance(b, dict):
        return a.keys() == b.keys() and all(json_equal(a[k], b[k]) for k in a)
    if isinstance(a, list) and isinstance(b, list):
        return len(a) == len(b) and all(json_equal(x, y) for x, y in zip(a, b, strict=True))
    return type(a) is type(b) and bool(a == b)


# --- labels and annotations Flux reads ------------------------------------------------------------
def any_in_metadata(obj: Mapping[str, Any] | None, wanted: Mapping[str, str]) -> bool:
    """ssa ``utils.AnyInMetadata``: a label or annotation with one of the ``wanted`` values,
    non-empty, equal ignoring case."""
    if not obj:
        return False
    for which in ("labels", "annotations"):
        found = _metadata_map(obj, which)
        for key, value in wanted.items():
            have = found.get(key)
            if isinstance(have, str) and have and have.casefold() == value.casefold():
                return True
    return False


def exclusion_reason(obj: Mapping[str, Any] | None) -> str | None:
    """Why Flux leaves ``obj`` alone entirely: "reconcile disabled" or "ssa: Ignore"."""
    if any_in_metadata(obj, {RECONCILE_KEY: EXCLUSIONS[RECONCILE_KEY]}):
        return "reconcile disabled"
    if any_in_metadata(obj, {SSA_KEY: EXCLUSIONS[SSA_KEY]}):
        return "ssa: Ignore"
    return None


def skip_reason(obj: Mapping[str, Any], *, deleting: bool = False) -> str | None:
    """Why Flux would leave ``obj`` alone, from its own labels and annotations, or None.

    Applying: "reconcile disabled", "ssa: Ignore", or "ssa: IfNotPresent" (which only holds when
    the object already exists: ``apply_skip_reason`` decides that). Pruning (``deleting=True``):
    "prune disabled", "reconcile disabled" or "ssa: Ignore".
    """
    if deleting:
        if any_in_metadata(obj, {PRUNE_KEY: "disabled"}):
            return "prune disabled"
        return exclusion_reason(obj)
    excluded = exclusion_reason(obj)
    if excluded:
        return excluded
    if any_in_metadata(obj, IF_NOT_PRESENT):
        return "ssa: IfNotPresent"
    return None


def apply_skip_reason(
    desired: Mapping[str, Any], existing: Mapping[str, Any] | None, *, existing_is_live: bool = True
) -> str | None:
    """Why Flux would not apply ``desired`` over ``existing`` (ssa ``shouldSkipDiff``), or None:
    the desired object excluded, or the live one (``existing_is_live``: the existing object is
    what the cluster holds, not another build), or ``ssa: IfNotPresent`` when the object exists."""
    reason = exclusion_reason(desired)
    if reason is None and existing is not None and existing_is_live:
        reason = exclusion_reason(existing)
    if reason is None and existing is not None and any_in_metadata(desired, IF_NOT_PRESENT):
        reason = "ssa: IfNotPresent"
    return reason


def owner_labels(name: str, namespace: str) -> dict[str, str]:
    """The labels kustomize-controller puts on everything it applies (ssa ``GetOwnerLabels``)."""
    return {f"{OWNER_GROUP}/name": name, f"{OWNER_GROUP}/namespace": namespace}


def owned_by(obj: Mapping[str, Any], name: str, namespace: str) -> bool:
    """Whether ``obj`` carries the owner labels of the Kustomization ``namespace/name``."""
    labels = _metadata_map(obj, "labels")
    return all(labels.get(key) == value for key, value in owner_labels(name, namespace).items())


def prune_skip_reason(existing: Mapping[str, Any], owner: tuple[str, str] | None = None) -> str | None:
    """Why Flux would not prune ``existing`` (ssa ``Delete``, kustomize-controller's
    ``deleteObjects``), or None. ``owner`` (name, namespace of the Kustomization): a live object
    is deleted only when it carries that Kustomization's owner labels (``Inclusions``) — another
    Kustomization that applies it now, or labels removed by hand, keep it. Then the exclusions:
    ``prune: disabled``, reconcile disabled, ssa Ignore."""
    if owner is not None and not owned_by(existing, *owner):
        labels = _metadata_map(existing, "labels")
        other_name, other_namespace = labels.get(f"{OWNER_GROUP}/name"), labels.get(f"{OWNER_GROUP}/namespace")
        if isinstance(other_name, str) and isinstance(other_namespace, str) and other_name and other_namespace:
            return f"owned by Kustomization {other_namespace}/{other_name}"
        return "without this Kustomization's owner labels"
    return skip_reason(existing, deleting=True)


def force_enabled(desired: Mapping[str, Any], live: Mapping[str, Any] | None) -> bool:
    """``kustomize.toolkit.fluxcd.io/force: enabled`` on the desired or the live object."""
    return any_in_metadata(desired, FORCE) or any_in_metadata(live, FORCE)


_IMMUTABLE = (re.compile(r"is\simmutable"), re.compile(r"immutable\sfield"))


def is_immutable_error(code: int | None, reason: str | None, message: str) -> bool:
    """ssa ``errors.IsImmutableError``: a conflict or invalid answer, or an admission/CEL message
    saying a field is immutable."""
    if code in (409, 422) or reason in ("Conflict", "Invalid"):
        return True
    return any(pattern.search(message) for pattern in _IMMUTABLE)


# --- before applying ------------------------------------------------------------------------------
def set_owner_labels(obj: Mapping[str, Any], name: str, namespace: str) -> dict[str, Any]:
    """A copy of ``obj`` with the owner labels of the Kustomization ``namespace/name``. Leaving
    them out of a dry-run would show them removed from every object Flux applied."""
    out = copy.deepcopy(dict(obj))
    meta = out.setdefault("metadata", {})
    meta["labels"] = {**(meta.get("labels") or {}), **owner_labels(name, namespace)}
    return out


_POD_SPECS: dict[tuple[str, str], tuple[str, ...]] = {
    ("v1", "Pod"): ("spec",),
    ("apps/v1", "Deployment"): ("spec", "template", "spec"),
    ("apps/v1", "StatefulSet"): ("spec", "template", "spec"),
    ("apps/v1", "DaemonSet"): ("spec", "template", "spec"),
    ("apps/v1", "ReplicaSet"): ("spec", "template", "spec"),
    ("batch/v1", "Job"): ("spec", "template", "spec"),
    ("batch/v1", "CronJob"): ("spec", "jobTemplate", "spec", "template", "spec"),
}


def normalize_for_apply(obj: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``obj`` normalised as kustomize-controller does before applying
    (``ssa/normalize.UnstructuredList``):

    - container ports of Pods and of the pod templates of Deployments, StatefulSets, DaemonSets,
      ReplicaSets, Jobs and CronJobs, and Service ports, get ``protocol: TCP`` when they have none
      (ports are keyed by port and protocol in server-side apply);
    - a Secret's ``stringData`` moves into ``data`` (``fold_string_data``), so that keys removed
      from stringData are removed from the object;
    - ``metadata.creationTimestamp`` is null, and ``status`` is dropped except on CRDs;
    - Roles and ClusterRoles are left as they are (Flux skips them: a serialisation bug).

    Flux gets there by converting built-in kinds to their Go types and back, which also drops
    fields those types do not know; phoebe has no Go types and sends such fields, and the server
    refuses them ("field not declared in schema").
    """
    out = copy.deepcopy(dict(obj))
    api_version, kind = out.get("apiVersion"), out.get("kind")
    if api_version == f"{RBAC_GROUP}/v1" and kind in ("Role", "ClusterRole"):
        return out
    pod_spec_path = _POD_SPECS.get((str(api_version), str(kind)))
    if pod_spec_path is not None:
        spec = _nested(out, pod_spec_path)
        if isinstance(spec, dict):
            for container in _dicts(spec.get("containers")):
                _default_protocol(container.get("ports"))
    elif (api_version, kind) == ("v1", "Service"):
        spec = out.get("spec")
        if isinstance(spec, dict):
            _default_protocol(spec.get("ports"))
    elif (api_version, kind) == ("v1", "Secret"):
        fold_string_data(out)
    meta = out.get("metadata")
    if meta is None:
        meta = out["metadata"] = {}
    if isinstance(meta, dict):
        meta["creationTimestamp"] = None
    if not is_crd(out):
        out.pop("status", None)
    return out


def _nested(obj: Mapping[str, Any], path: Iterable[str]) -> Any:
    current: Any = obj
    for step in path:
        if not isinstance(current, Mapping):
            return None
        current = current.get(step)
    return current


def _dicts(items: Any) -> list[dict[str, Any]]:
    return [item for item in items if isinstance(item, dict)] if isinstance(items, list) else []


def _default_protocol(ports: Any) -> None:
    for port in _dicts(ports):
        if not port.get("protocol"):
            port["protocol"] = "TCP"


def fold_string_data(secret: dict[str, Any], *, keep: str | None = None) -> None:
    """A Secret's ``stringData`` into ``data``, base64-encoded, in place (ssa
    ``normalizeSecret``: stringData wins over data for a key in both).

    As Flux's typed conversion does: a null value is ""; an empty ``stringData`` is dropped; a
    value that is not a string (a number, a map) fails the conversion, and then Flux leaves the
    Secret as it is, so it stays. A value equal to ``keep`` (the mask) is kept as it is: it
    stands for a value not known, and must still read as unknown.
    """
    string_data = secret.get("stringData")
    if isinstance(string_data, dict) and not string_data:
        del secret["stringData"]  # an empty map does not survive Flux's typed round trip either
        return
    if not isinstance(string_data, dict) or not all(v is None or isinstance(v, str) for v in string_data.values()):
        return
    data = secret.get("data")
    data = dict(data) if isinstance(data, dict) else {}
    for key, value in string_data.items():
        text = value or ""
        data[key] = text if keep is not None and text == keep else base64.b64encode(text.encode()).decode()
    secret["data"] = data
    del secret["stringData"]


def is_crd(obj: Mapping[str, Any]) -> bool:
    return str(obj.get("kind", "")).lower() == "customresourcedefinition" and str(obj.get("apiVersion", "")).startswith(
        "apiextensions.k8s.io/"
    )


def is_namespace(obj: Mapping[str, Any]) -> bool:
    return str(obj.get("kind", "")).lower() == "namespace" and obj.get("apiVersion") == "v1"


def is_cluster_role(obj: Mapping[str, Any]) -> bool:
    return str(obj.get("kind", "")).lower() == "clusterrole" and str(obj.get("apiVersion", "")).startswith(
        f"{RBAC_GROUP}/"
    )


def apply_stage(obj: Mapping[str, Any]) -> int:
    """ssa ``ApplyAllStaged``: CRDs, Namespaces and ClusterRoles first (0), then kinds named
    *Class (1), then the rest (2)."""
    if is_crd(obj) or is_namespace(obj) or is_cluster_role(obj):
        return 0
    if str(obj.get("kind", "")).endswith("Class"):
        return 1
    return 2


def without_invalid_ca_bundle(obj: dict[str, Any]) -> dict[str, Any]:
    """Flux removes a CRD's conversion webhook caBundle that Kubernetes 1.31+ would reject
    (``utils.RemoveCABundleFromCRD``): not base64, or no PEM certificate in it. A copy when it
    does, else ``obj`` itself."""
    if not is_crd(obj):
        return obj
    client_config = _nested(obj, ("spec", "conversion", "webhook", "clientConfig"))
    bundle = client_config.get("caBundle") if isinstance(client_config, dict) else None
    if not isinstance(bundle, str) or not bundle or _valid_ca_bundle(bundle):
        return obj
    out = copy.deepcopy(obj)
    del out["spec"]["conversion"]["webhook"]["clientConfig"]["caBundle"]
    return out


def _valid_ca_bundle(bundle: str) -> bool:
    import ssl  # parses the certificates in memory; only CRDs with a caBundle need it

    try:
        pem = base64.b64decode(bundle, validate=True).decode()
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        context.load_verify_locations(cadata=pem)
    except (binascii.Error, UnicodeDecodeError, ssl.SSLError, ValueError):
        return False
    return True


# --- ignore rules (spec.ignore) -------------------------------------------------------------------
@dataclass(frozen=True)
class IgnoreRule:
    """One entry of a Flux Kustomization's ``spec.ignore``: RFC 6901 JSON Pointers left out of
    the comparison of the objects its target selects (every object when it has no target).

    ``group``, ``version``, ``kind``, ``name`` and ``namespace`` are regular expressions matched
    against the whole value (ssa's ``anchorRegex``); ``label_selector`` and
    ``annotation_selector`` are Kubernetes label selectors. Empty means "any". The pointer ``""``
    is the whole object.
    """

    paths: tuple[str, ...]
    group: str = ""
    version: str = ""
    kind: str = ""
    name: str = ""
    namespace: str = ""
    label_selector: str = ""
    annotation_selector: str = ""

    def matches(self, obj: Mapping[str, Any]) -> bool:
        key = ObjectKey.of(obj)
        for pattern, value in (
            (self.namespace, key.namespace or ""),
            (self.name, key.name),
            (self.group, key.group),
            (self.version, key.version),
            (self.kind, key.kind),
        ):
            if pattern and _regex(pattern).fullmatch(value) is None:
                return False
        if self.label_selector and not _selector(self.label_selector)(_str_map(_metadata_map(obj, "labels"))):
            return False
        return not (
            self.annotation_selector
            and not _selector(self.annotation_selector)(_str_map(_metadata_map(obj, "annotations")))
        )


@lru_cache(maxsize=256)
def _regex(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern)


@lru_cache(maxsize=256)
def _selector(selector: str) -> Callable[[Mapping[str, str]], bool]:
    return parse_selector(selector)


def _str_map(values: Mapping[str, Any]) -> dict[str, str]:
    return {str(k): "" if v is None else str(v) for k, v in values.items()}


def ignore_rules(kustomization_spec: Mapping[str, Any]) -> list[IgnoreRule]:
    """The rules of ``spec.ignore``; a rule that Flux would refuse raises ``UsageError``."""
    rules = []
    for index, raw in enumerate(kustomization_spec.get("ignore") or ()):
        where = f"spec.ignore[{index}]"
        if not isinstance(raw, Mapping):
            raise UsageError(f"{where}: not a map")
        paths = raw.get("paths") or ()
        if isinstance(paths, str) or not all(isinstance(p, str) for p in paths):
            raise UsageError(f"{where}.paths: not a list of JSON Pointers")
        for path in paths:
            if path and not path.startswith("/"):
                raise UsageError(f"{where}.paths: {path!r} is not a JSON Pointer (RFC 6901): it must start with '/'")
        target = raw.get("target") or {}
        if not isinstance(target, Mapping):
            raise UsageError(f"{where}.target: not a map")
        rule = IgnoreRule(
            paths=tuple(paths),
            group=str(target.get("group") or ""),
            version=str(target.get("version") or ""),
            kind=str(target.get("kind") or ""),
            name=str(target.get("name") or ""),
            namespace=str(target.get("namespace") or ""),
            label_selector=str(target.get("labelSelector") or ""),
            annotation_selector=str(target.get("annotationSelector") or ""),
        )
        for name in ("group", "version", "kind", "name", "namespace"):
            pattern = getattr(rule, name)
            try:
                _regex(pattern)
            except re.error as exc:
                raise UsageError(f"{where}.target.{name}: invalid regular expression {pattern!r}: {exc}") from exc
        for name in ("label_selector", "annotation_selector"):
            selector = getattr(rule, name)
            if selector:
                try:
                    _selector(selector)
                except UsageError as exc:
                    raise UsageError(f"{where}.target: {exc}") from exc
        rules.append(rule)
    return rules


def ignored_paths(rules: Iterable[IgnoreRule], obj: Mapping[str, Any]) -> list[str]:
    """The JSON Pointers of the rules whose target selects ``obj`` (the desired object: both
    sides are stripped by the same decision, as ssa's ``removeIgnoredFields``)."""
    return [path for rule in rules if rule.matches(obj) for path in rule.paths]


def _pointer_tokens(pointer: str) -> list[str]:
    return [token.replace("~1", "/").replace("~0", "~") for token in pointer[1:].split("/")]


def _list_index(token: str, length: int) -> int | None:
    if not re.fullmatch(r"-?[0-9]+", token):
        return None
    index = int(token)
    if index < 0:
        index += length  # negative indices, as Flux's JSON patch options allow
    return index if 0 <= index < length else None


def remove_pointer(doc: dict[str, Any], pointer: str) -> None:
    """Remove what ``pointer`` points at, in place; a path that is not there is fine
    (``AllowMissingPathOnRemove``)."""
    tokens = _pointer_tokens(pointer)
    parent: Any = doc
    for token in tokens[:-1]:
        if isinstance(parent, dict):
            if token not in parent:
                return
            parent = parent[token]
        elif isinstance(parent, list):
            index = _list_index(token, len(parent))
            if index is None:
                return
            parent = parent[index]
        else:
            return
    last = tokens[-1]
    if isinstance(parent, dict):
        parent.pop(last, None)
    elif isinstance(parent, list):
        index = _list_index(last, len(parent))
        if index is not None:
            del parent[index]


def _without_paths(obj: Mapping[str, Any], paths: Sequence[str]) -> dict[str, Any]:
    """A copy of ``obj`` without ``paths``; the pointer "" is the whole object."""
    if "" in paths:
        return {}
    out = copy.deepcopy(dict(obj))
    for path in paths:
        remove_pointer(out, path)
    return out


# --- drift ----------------------------------------------------------------------------------------
def has_drifted(live: Mapping[str, Any] | None, dry_run: Mapping[str, Any], ignore: Iterable[IgnoreRule] = ()) -> bool:
    """Whether applying would change the live object (ssa ``hasDriftedWithIgnore``): the dry-run
    object is new, or — the paths of the ``ignore`` rules that select the dry-run object removed
    from both — its labels or annotations differ (an empty map is no map), or anything outside
    ``metadata`` and ``status`` differs (``json_equal``). Other metadata (managedFields,
    resourceVersion, generation, ownerReferences ...) is not compared."""
    if not (dry_run.get("metadata") or {}).get("resourceVersion") or live is None:
        return True
    paths = ignored_paths(ignore, dry_run)
    if paths:
        live, dry_run = _without_paths(live, paths), _without_paths(dry_run, paths)
    dry_meta = dry_run.get("metadata") or {}
    live_meta = live.get("metadata") or {}
    for which in ("labels", "annotations"):
        if not json_equal(dry_meta.get(which) or {}, live_meta.get(which) or {}):
            return True
    return not json_equal(_comparable(dry_run), _comparable(live))


def _comparable(obj: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in obj.items() if k not in ("metadata", "status")}
    if out.get("kind") == "HorizontalPodAutoscaler" and out.get("apiVersion") == "autoscaling/v2":
        # ssa normalize.DryRunUnstructured: Kubernetes < 1.27 answered dry-runs with the first
        # metric repeated and an empty one appended (kubernetes#118293).
        spec = out.get("spec")
        if isinstance(spec, dict) and isinstance(spec.get("metrics"), list):
            metrics: list[Any] = []
            for metric in spec["metrics"]:
                if isinstance(metric, dict) and metric.get("type") and not any(json_equal(metric, m) for m in metrics):
                    metrics.append(metric)
            out["spec"] = {**spec, "metrics": metrics}
    return out


# --- noise: what says nothing about a change ------------------------------------------------------
def _plain(value: Any) -> Any:
    """A deep copy made of plain dicts, lists and built-in scalars (str/int subclasses too)."""
    if isinstance(value, Mapping):
        return {str(k) if isinstance(k, str) else k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, bool):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    return value


def _stripped(key: str, strip_attrs: Sequence[str]) -> bool:
    for attr in strip_attrs:
        if attr.endswith("/*"):
            if key.startswith(attr[:-1]):
                return True
        elif key == attr:
            return True
    return False


def _clean_metadata(meta: Any, strip_attrs: Sequence[str], noise: bool) -> None:
    if not isinstance(meta, dict):
        return
    if noise:
        for name in _NOISE_METADATA:
            meta.pop(name, None)
    for which in ("labels", "annotations"):
        values = meta.get(which)
        if isinstance(values, dict):
            for key in list(values):
                if _stripped(str(key), strip_attrs) or (noise and which == "annotations" and key in _NOISE_ANNOTATIONS):
                    del values[key]
        if which in meta and not meta[which]:
            del meta[which]


def _pod_template_metadata(obj: dict[str, Any]) -> list[Any]:
    """Metadata of the templates an object stamps out: pod templates, CronJob job templates."""
    found = []
    spec = obj.get("spec")
    if isinstance(spec, dict):
        template = spec.get("template")
        if isinstance(template, dict):
            found.append(template.get("metadata"))
        job = spec.get("jobTemplate")
        if isinstance(job, dict):
            found.append(job.get("metadata"))
            job_spec = job.get("spec")
            if isinstance(job_spec, dict) and isinstance(job_spec.get("template"), dict):
                found.append(job_spec["template"].get("metadata"))
    return found


def normalize_paths(
    obj: Mapping[str, Any], strip_attrs: Sequence[str], paths: Iterable[str], *, keep: str | None = None
) -> dict[str, Any]:
    """``normalize`` with the ignored ``paths`` already chosen (for both sides of one
    comparison); ``keep``: a Secret value left as it is when folding stringData (the mask)."""
    doc = _plain(obj)
    if not isinstance(doc, dict):
        return {}
    if isinstance(doc.get("sops"), dict):
        del doc["sops"]  # SOPS metadata: the controller decrypts and drops it before applying
    if is_secret(doc):
        fold_string_data(doc, keep=keep)
    for path in paths:
        if path == "":
            return {}
        remove_pointer(doc, path)
    doc.pop("status", None)
    _clean_metadata(doc.get("metadata"), strip_attrs, noise=True)
    for meta in _pod_template_metadata(doc):
        _clean_metadata(meta, strip_attrs, noise=False)
    return doc


def normalize(
    obj: Mapping[str, Any],
    *,
    strip_attrs: Sequence[str] = DEFAULT_STRIP_ATTRS,
    ignore: Iterable[IgnoreRule] = (),
    keep: str | None = None,
) -> dict[str, Any]:
    """A deep copy of ``obj`` without what says nothing about the change (see the module doc).

    Secret values are kept (``stringData`` folded into ``data``): comparing is what keeps them
    out of sight.
    """
    return normalize_paths(obj, strip_attrs, ignored_paths(ignore, obj), keep=keep)
