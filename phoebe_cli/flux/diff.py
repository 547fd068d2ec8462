"""What a change will do: two versions of each object compared, Flux's way.

Pure: objects in, frozen results out. The same comparison serves ``phoebe diff`` against the
cluster (the live object against the server-side-apply dry-run of the checkout's object) and
offline between two Git refs (what a Flux Kustomization builds at the base against the head).

The rules of kustomize-controller v1.9.6 and fluxcd/pkg/ssa it applies live in ``flux/apply.py``
(shared with the cluster side's dry-runs), Secret masking in ``flux/secrets.py``:

- **Noise** is dropped before comparing (``apply.normalize``): server-owned metadata, the whole
  ``status``, kubectl's last-applied annotation, empty label/annotation maps, the labels and
  annotations named by ``strip_attrs`` (on the object and on its pod template), and the JSON
  Pointer paths of the Kustomization's ``spec.ignore`` rules whose target matches the object.
  Target fields are regular expressions matched against the whole value (ssa's ``anchorRegex``),
  label and annotation selectors use the Kubernetes selector grammar, and a rule matches against
  the desired object (the dry-run result; the head), both sides stripped by the same decision.
- **Skipped** objects are those Flux leaves alone: ``kustomize.toolkit.fluxcd.io/reconcile:
  disabled`` or ``kustomize.toolkit.fluxcd.io/ssa: Ignore`` (label or annotation, value compared
  case-insensitively, as ssa's ``AnyInMetadata``); ``ssa: IfNotPresent`` is applied only when the
  object is absent, so it is *created* when there is no object before and skipped otherwise.
  A pruned object is skipped when it carries ``kustomize.toolkit.fluxcd.io/prune: disabled`` (or
  reconcile disabled / ssa Ignore, as kustomize-controller's delete exclusions), and a live one
  when it lacks the Kustomization's owner labels (``owner``: ssa deletes only what it owns).
- **Secrets** (``v1`` ``Secret``) never show a value: ``stringData`` is merged into ``data``
  (base64-encoded, as the API server does) and the two sides are compared key by key; results
  say which keys were added, removed or changed, and the unified text leaves ``data`` out. A Secret
  that is SOPS-encrypted on either side (a top-level ``sops`` map, or the annotation
  ``phoebe.dev/sops: encrypted`` the repo model puts on its masked copies), and any value that is
  the mask ``***`` itself, is compared by key set only: such keys are ``unknown``.
- **Lists** pair by index, except lists of maps that all have a unique ``name`` (containers,
  env, ports, volumes), which pair by name so that an insertion is one added item.
- **Objects** are named by ``inventory.ObjectKey``: API group, kind, namespace and name. Two
  objects of one kind, namespace and name in different groups (the Gateway API's and Istio's
  ``Gateway``) are two objects; ``qualified`` shows the group where the plain name is ambiguous.
- **A failing Kustomization** (against the cluster): an object whose dry-run fails stops
  kustomize-controller's apply — ssa's ``ApplyAllStaged`` applies a stage only when every dry-run
  of it passed, and prunes nothing after a failure. ``KustomizationDiff.failures`` names the
  objects whose dry-run failed, in the controller's words; ``objects`` keeps only what the earlier
  stages still apply, and ``not_applied`` counts the changes the failure holds back.
- **A suspended Kustomization** (against the cluster) applies nothing: ``suspended`` says where
  it is suspended (``cluster`` or ``checkout``); unless asked it is not compared (``compared``).
"""

from __future__ import annotations

import base64
import binascii
import difflib
import json
import re
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import yaml

from phoebe_cli.flux.apply import (
    DEFAULT_STRIP_ATTRS,
    IgnoreRule,
    apply_skip_reason,
    ignore_rules,
    ignored_paths,
    json_equal,
    normalize_paths,
    prune_skip_reason,
)
from phoebe_cli.flux.images import ImageChange, image_changes
from phoebe_cli.flux.inventory import ObjectKey
from phoebe_cli.flux.objects import FluxObject, ObjectRef
from phoebe_cli.flux.secrets import MASK, SOPS_MARK, is_secret, is_sops_encrypted

__all__ = [
    "CHANGED",
    "CHANGE_KINDS",
    "CREATED",
    "DEFAULT_STRIP_ATTRS",
    "DELETED",
    "MASK",
    "SECRET_ADDED",
    "SECRET_CHANGED",
    "SECRET_REMOVED",
    "SECRET_UNCHANGED",
    "SECRET_UNKNOWN",
    "SKIPPED",
    "SOPS_MARK",
    "SUSPENDED_IN_CHECKOUT",
    "SUSPENDED_ON_CLUSTER",
    "UNCHANGED",
    "DiffReport",
    "FieldChange",
    "IgnoreRule",
    "KustomizationDiff",
    "ObjectDiff",
    "ObjectFailure",
    "ObjectKey",
    "ReleaseDiff",
    "ambiguous_keys",
    "compare",
    "compare_sets",
    "dump_yaml",
    "ignore_rules",
    "join_path",
]

CREATED, CHANGED, DELETED, UNCHANGED, SKIPPED = "created", "changed", "deleted", "unchanged", "skipped"
CHANGE_KINDS = (CREATED, CHANGED, DELETED, SKIPPED, UNCHANGED)  # the order of counts and summaries

SECRET_ADDED, SECRET_REMOVED, SECRET_CHANGED, SECRET_UNCHANGED = "added", "removed", "changed", "unchanged"
SECRET_UNKNOWN = "unknown"  # present on both sides, values not known (SOPS-encrypted or masked)


def ambiguous_keys(keys: Iterable[ObjectKey]) -> frozenset[ObjectKey]:
    """The keys whose plain name (Kind/namespace/name) another key of ``keys`` shares in another
    API group: to be shown with their group (``compare(..., qualify=...)``)."""
    groups: dict[str, set[str]] = {}
    unique = set(keys)
    for key in unique:
        groups.setdefault(key.subject, set()).add(key.group)
    return frozenset(key for key in unique if len(groups[key.subject]) > 1)


def _skip(
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    before_is_live: bool,
    prune: bool,
    owner: tuple[str, str] | None,
) -> str | None:
    if after is None:
        assert before is not None
        reason = prune_skip_reason(before, owner if before_is_live else None)
        if reason is None and not prune:
            reason = "prune disabled on the Kustomization"
        return reason
    return apply_skip_reason(after, before, existing_is_live=before_is_live)


# --- results --------------------------------------------------------------------------------------
Op = Literal["added", "removed", "changed"]


@dataclass(frozen=True)
class FieldChange:
    """One difference at ``path`` ("spec.template.spec.containers[name=app].image"; map keys
    that are not plain words are quoted: 'metadata.labels["app.kubernetes.io/name"]'; items of
    lists paired by name are ``[name=...]``, others ``[index]``). For Secret data the values are
    ``"***"``, never the value."""

    path: str
    op: Op
    before: Any = None
    after: Any = None


@dataclass(frozen=True)
class ObjectDiff:
    key: ObjectKey
    change: str
    fields: tuple[FieldChange, ...] = ()
    unified: str = ""
    secret_keys: Mapping[str, str] = field(default_factory=dict)
    reason: str = ""
    truncated: bool = False
    qualified: bool = False  # another object of the comparison has this kind, namespace and name
    # a workload created, changed or deleted: the containers whose image that moves
    images: tuple[ImageChange, ...] = ()

    @property
    def is_secret(self) -> bool:
        return self.key.kind == "Secret" and self.key.group == ""

    @property
    def subject(self) -> str:
        """How the object is named to the user: Kind/namespace/name, with the API group when
        that alone would be ambiguous (``Gateway.gateway.networking.k8s.io/net/main``)."""
        return self.key.qualified_subject if self.qualified else self.key.subject


@dataclass(frozen=True)
class ObjectFailure:
    """An object kustomize-controller cannot apply: its dry-run fails. ``message`` is in the
    controller's words (``ConfigMap/apps/x dry-run failed (422 Invalid): ...``), as its Ready
    condition will say."""

    key: ObjectKey
    message: str
    qualified: bool = False

    @property
    def subject(self) -> str:
        return self.key.qualified_subject if self.qualified else self.key.subject


SUSPENDED_ON_CLUSTER, SUSPENDED_IN_CHECKOUT = "cluster", "checkout"


@dataclass(frozen=True)
class ReleaseDiff:
    """The objects a HelmRelease's chart renders, compared object by object: between two refs,
    or between the manifest helm-controller last deployed (Helm's storage) and the checkout's
    render — what the next upgrade changes. ``charts``: (before, after) as "name version" ("" when
    not known). ``note``: what the reader must know (not installed yet, a side not rendered).
    ``compared`` False: a side could not be rendered, nothing is compared (``note`` says why).

    Against the cluster, when helm-controller will upgrade: ``live`` holds what the upgrade's
    server-side apply does to objects that exist (each changed one compared live → dry-run answer:
    fields changed on the cluster that the upgrade puts back, beside the manifest's changes), and
    ``failures`` the objects whose dry-run fails (the upgrade fails)."""

    ref: ObjectRef  # the HelmRelease
    objects: tuple[ObjectDiff, ...]  # everything but the unchanged
    unchanged: int
    charts: tuple[str, str] = ("", "")
    note: str = ""
    compared: bool = True
    live: tuple[ObjectDiff, ...] = ()
    failures: tuple[ObjectFailure, ...] = ()

    @property
    def failing(self) -> bool:
        """helm-controller's upgrade of it fails: a dry-run of its objects fails."""
        return bool(self.failures)

    @property
    def differs(self) -> bool:
        return self.failing or _changes_anything(self.objects) or _changes_anything(self.live)

    @property
    def counts(self) -> dict[str, int]:
        return _counts(self.objects, self.unchanged)


def _changes_anything(objects: Iterable[ObjectDiff]) -> bool:
    return any(o.change in (CREATED, CHANGED, DELETED) for o in objects)


def _counts(objects: Iterable[ObjectDiff], unchanged: int) -> dict[str, int]:
    """Objects per change kind, every kind present, in ``CHANGE_KINDS`` order."""
    counts = dict.fromkeys(CHANGE_KINDS, 0)
    for obj in objects:
        counts[obj.change] = counts.get(obj.change, 0) + 1
    counts[UNCHANGED] += unchanged
    return counts


@dataclass(frozen=True)
class KustomizationDiff:
    ref: ObjectRef
    objects: tuple[ObjectDiff, ...]  # everything but the unchanged
    unchanged: int
    warnings: tuple[str, ...] = ()
    build_state: str = ""  # "" built at both sides; "base-only" / "head-only"
    # against the cluster: the objects whose dry-run fails (then the apply stops: ``objects``
    # holds only what earlier stages apply) and how many changes that holds back
    failures: tuple[ObjectFailure, ...] = ()
    not_applied: int = 0
    suspended: str = ""  # "" / SUSPENDED_ON_CLUSTER / SUSPENDED_IN_CHECKOUT
    compared: bool = True  # False: suspended, and not compared (nothing in objects)
    releases: tuple[ReleaseDiff, ...] = ()  # its HelmReleases rendered and compared (with changes)

    @property
    def failing(self) -> bool:
        """kustomize-controller's apply of it fails: a dry-run fails."""
        return bool(self.failures)

    @property
    def differs(self) -> bool:
        """Anything Flux would do: created, changed or deleted objects (skipped ones are not),
        a Kustomization built at one side only, or one whose apply fails."""
        return (
            bool(self.build_state)
            or self.failing
            or _changes_anything(self.objects)
            or any(r.differs for r in self.releases)
        )

    @property
    def counts(self) -> dict[str, int]:
        counts = _counts(self.objects, self.unchanged)
        for release in self.releases:  # rendered objects count as objects
            for kind, n in release.counts.items():
                counts[kind] += n
        return counts


@dataclass(frozen=True)
class DiffReport:
    mode: Literal["cluster", "refs"]
    base: str  # labels shown to the user: "cluster" / "checkout", "main (1a2b3c4d)" / "HEAD (5e6f7a8b)"
    head: str
    kustomizations: tuple[KustomizationDiff, ...]
    warnings: tuple[str, ...] = ()
    # the head side's Flux objects (the checkout's, as declared), for the graph a markdown report
    # draws of what changes; not compared, not in json/yaml
    flux_objects: Mapping[ObjectRef, FluxObject] = field(default_factory=dict, compare=False, repr=False)

    @property
    def differs(self) -> bool:
        return any(k.differs for k in self.kustomizations)

    @property
    def touched(self) -> tuple[ObjectRef, ...]:
        """The Kustomizations and rendered HelmReleases with a difference (for the graph)."""
        from phoebe_cli.flux.kinds import kind_of

        refs: list[ObjectRef] = []
        for kustomization in self.kustomizations:
            if kustomization.differs:
                refs.append(kustomization.ref)
            refs.extend(release.ref for release in kustomization.releases if release.objects or release.differs)
            for diff in kustomization.objects:  # Flux objects it applies that change themselves
                kind = kind_of(diff.key.group, diff.key.kind)
                if kind is not None:
                    refs.append(ObjectRef(kind.kind, diff.key.namespace or "", diff.key.name))
        return tuple(dict.fromkeys(refs))

    @property
    def failing(self) -> int:
        """How many Kustomizations fail to apply (a dry-run fails)."""
        return sum(1 for k in self.kustomizations if k.failing)

    @property
    def not_compared(self) -> int:
        """How many suspended Kustomizations were left uncompared."""
        return sum(1 for k in self.kustomizations if not k.compared)

    @property
    def counts(self) -> dict[str, int]:
        """Objects per change kind, every kind present, in ``CHANGE_KINDS`` order."""
        counts = dict.fromkeys(CHANGE_KINDS, 0)
        for kustomization in self.kustomizations:
            for kind, n in kustomization.counts.items():
                counts[kind] = counts.get(kind, 0) + n
        return counts


# --- comparing ------------------------------------------------------------------------------------
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_-]*")


def join_path(path: str, key: Any) -> str:
    """``path`` and a map key as FieldChange paths write them: ``a.b``, ``a["b.c"]``."""
    if isinstance(key, str) and _WORD.fullmatch(key):
        return f"{path}.{key}" if path else key
    return f"{path}[{json.dumps(key if isinstance(key, str) else str(key), ensure_ascii=False)}]"


def _token(name: Any) -> str:
    return json.dumps(name, sort_keys=True, default=str)


def _names(items: list[Any]) -> list[Any] | None:
    """The names of a list of named maps, or None when it is not one (or names repeat)."""
    if not all(isinstance(item, dict) and "name" in item for item in items):
        return None
    names = [item["name"] for item in items]
    keys = [_token(n) for n in names]
    return names if len(set(keys)) == len(keys) else None


def _named_pairing(before: list[Any], after: list[Any]) -> tuple[list[Any], list[Any]] | None:
    if not before and not after:
        return None
    before_names, after_names = _names(before), _names(after)
    if before_names is None or after_names is None:
        return None
    return before_names, after_names


def _name_token(name: Any) -> str:
    return f"name={name}"


def _walk(before: Any, after: Any, path: str, out: list[FieldChange]) -> None:
    if isinstance(before, dict) and isinstance(after, dict):
        for key in after:
            child = join_path(path, key)
            if key in before:
                _walk(before[key], after[key], child, out)
            else:
                out.append(FieldChange(child, "added", None, after[key]))
        for key in before:
            if key not in after:
                out.append(FieldChange(join_path(path, key), "removed", before[key], None))
        return
    if isinstance(before, list) and isinstance(after, list):
        pairing = _named_pairing(before, after)
        if pairing is not None:
            _walk_named(before, after, pairing, path, out)
            return
        for index, item in enumerate(after):
            child = f"{path}[{index}]"
            if index < len(before):
                _walk(before[index], item, child, out)
            else:
                out.append(FieldChange(child, "added", None, item))
        for index in range(len(after), len(before)):
            out.append(FieldChange(f"{path}[{index}]", "removed", before[index], None))
        return
    if not json_equal(before, after):
        out.append(FieldChange(path, "changed", before, after))


def _walk_named(
    before: list[Any], after: list[Any], pairing: tuple[list[Any], list[Any]], path: str, out: list[FieldChange]
) -> None:
    before_names, after_names = pairing
    by_name = {_token(n): i for i, n in enumerate(before_names)}
    seen = set()
    start = len(out)
    for item, name in zip(after, after_names, strict=True):
        token = _token(name)
        child = f"{path}[{_name_token(name)}]"
        if token in by_name:
            seen.add(token)
            _walk(before[by_name[token]], item, child, out)
        else:
            out.append(FieldChange(child, "added", None, item))
    for item, name in zip(before, before_names, strict=True):
        if _token(name) not in seen:
            out.append(FieldChange(f"{path}[{_name_token(name)}]", "removed", item, None))
    common_before = [n for n in before_names if _token(n) in seen]
    common_after = [n for n in after_names if _token(n) in seen]
    if len(out) == start and common_before != common_after:
        # Same items, another order: the order of containers, env and the like can matter.
        out.append(FieldChange(path, "changed", common_before, common_after))


def _align(before: Any, after: Any) -> Any:
    """``before`` with its maps' keys in ``after``'s order (keys only in ``before`` last), so that
    the unified text shows changes, not the order two writers happened to use."""
    if isinstance(before, dict) and isinstance(after, dict):
        ordered = {k: _align(before[k], after[k]) for k in after if k in before}
        ordered.update((k, v) for k, v in before.items() if k not in after)
        return ordered
    if isinstance(before, list) and isinstance(after, list):
        pairing = _named_pairing(before, after)
        if pairing is not None:
            by_name = {_token(n): item for n, item in zip(pairing[1], after, strict=True)}
            return [_align(item, by_name.get(_token(n))) for item, n in zip(before, pairing[0], strict=True)]
        return [_align(b, after[i]) if i < len(after) else b for i, b in enumerate(before)]
    return before


class _Dumper(yaml.SafeDumper):
    """PyYAML's safe dumper; multi-line strings as literal blocks, so a diff shows their lines."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _represent_str(dumper: yaml.SafeDumper, data: str) -> yaml.ScalarNode:
    if "\n" in data:
        return dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|")
    return dumper.represent_scalar("tag:yaml.org,2002:str", data)


_Dumper.add_representer(str, _represent_str)


def dump_yaml(doc: Any) -> str:
    """One document as the unified text shows it: document order, block style, no folding."""
    if doc is None or doc == {}:
        return ""
    return yaml.dump(
        doc,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=True,
        width=1 << 30,
    )


def _unified(
    before: dict[str, Any] | None,
    after: dict[str, Any] | None,
    subject: str,
    sides: tuple[str, str],
) -> str:
    if before is not None and after is not None:
        before = _align(before, after)
    old = dump_yaml(before).splitlines() if before is not None else []
    new = dump_yaml(after).splitlines() if after is not None else []
    lines = list(
        difflib.unified_diff(
            old,
            new,
            fromfile=f"{subject} ({sides[0]})" if before is not None else "/dev/null",
            tofile=f"{subject} ({sides[1]})" if after is not None else "/dev/null",
            lineterm="",
        )
    )
    return "".join(line + "\n" for line in lines)


def _truncate(text: str, limit_bytes: int | None) -> tuple[str, bool]:
    if limit_bytes is None or limit_bytes <= 0:
        return text, False
    raw = text.encode()
    if len(raw) <= limit_bytes:
        return text, False
    cut = raw[:limit_bytes]
    newline = cut.rfind(b"\n")
    # Whole lines when one fits; else as many whole characters as fit.
    cut = cut[: newline + 1] if newline >= 0 else cut.decode(errors="ignore").encode()
    kept = cut.decode()
    if kept and not kept.endswith("\n"):
        kept += "\n"
    return f"{kept}... truncated ({len(raw) - len(cut)} more bytes)\n", True


# --- Secrets --------------------------------------------------------------------------------------
def _secret_values(doc: Mapping[str, Any] | None) -> dict[str, bytes | None]:
    """Key -> decoded value, None when the value is not known (the mask)."""
    if doc is None:
        return {}
    data = doc.get("data")
    if not isinstance(data, Mapping):
        return {}
    values: dict[str, bytes | None] = {}
    for key, value in data.items():
        text = "" if value is None else str(value)
        if text == MASK:
            values[str(key)] = None
            continue
        try:
            values[str(key)] = base64.b64decode("".join(text.split()), validate=True)
        except (binascii.Error, ValueError):
            values[str(key)] = text.encode()  # not base64: compared as written
    return values


def _secret_keys(before: Mapping[str, Any] | None, after: Mapping[str, Any] | None, by_key_set: bool) -> dict[str, str]:
    old, new = _secret_values(before), _secret_values(after)
    states = {}
    for key in sorted(set(old) | set(new)):
        if key not in old:
            states[key] = SECRET_ADDED
        elif key not in new:
            states[key] = SECRET_REMOVED
        elif by_key_set or old[key] is None or new[key] is None:
            states[key] = SECRET_UNKNOWN
        else:
            states[key] = SECRET_UNCHANGED if old[key] == new[key] else SECRET_CHANGED
    return states


def _without_data(doc: dict[str, Any] | None) -> dict[str, Any] | None:
    if doc is None:
        return None
    return {k: v for k, v in doc.items() if k not in ("data", "stringData")}


def _secret_fields(states: Mapping[str, str]) -> list[FieldChange]:
    fields = []
    for key, state in states.items():
        path = join_path("data", key)
        if state == SECRET_ADDED:
            fields.append(FieldChange(path, "added", None, MASK))
        elif state == SECRET_REMOVED:
            fields.append(FieldChange(path, "removed", MASK, None))
        elif state == SECRET_CHANGED:
            fields.append(FieldChange(path, "changed", MASK, MASK))
    return fields


# --- compare --------------------------------------------------------------------------------------
def compare_sets(
    before: Mapping[ObjectKey, Mapping[str, Any]], after: Mapping[ObjectKey, Mapping[str, Any]], **options: Any
) -> tuple[tuple[ObjectDiff, ...], int]:
    """Two sets of objects paired by key (order never matters), each pair ``compare``d with
    ``options``: the differences in key order, and how many are unchanged."""
    keys = set(before) | set(after)
    options.setdefault("qualify", ambiguous_keys(keys))
    results = []
    unchanged = 0
    for key in sorted(keys, key=lambda k: k.sort_key):
        result = compare(before.get(key), after.get(key), **options)
        if result.change == UNCHANGED:
            unchanged += 1
        else:
            results.append(result)
    return tuple(results), unchanged


def compare(
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    *,
    sides: tuple[str, str] = ("base", "head"),
    strip_attrs: Sequence[str] = DEFAULT_STRIP_ATTRS,
    ignore: Iterable[IgnoreRule] = (),
    limit_bytes: int | None = None,
    before_is_live: bool = False,
    prune: bool = True,
    owner: tuple[str, str] | None = None,
    qualify: Collection[ObjectKey] = (),
) -> ObjectDiff:
    """What applying ``after`` over ``before`` does to one object.

    ``None`` before: created; ``None`` after: deleted (pruned); equal once normalized: unchanged;
    otherwise changed, with the fields and a unified diff of the normalized YAML (``sides`` name
    the two in its ---/+++ headers), cut after ``limit_bytes`` bytes. Objects Flux would leave
    alone are skipped, with the reason, unless they are equal anyway. ``before_is_live``: the
    before side is the live object (cluster mode), whose exclusion annotations Flux honours too.
    ``prune``: the Kustomization's ``spec.prune``; without it, removed objects are skipped.
    ``owner``: (name, namespace) of the Kustomization; with ``before_is_live``, a live object
    without its owner labels is not pruned (skipped). ``qualify``: keys named with their API
    group (``ambiguous_keys``), in the result and in the unified text's headers.
    """
    if before is None and after is None:
        raise ValueError("compare needs an object on at least one side")
    desired = after if after is not None else before
    assert desired is not None
    key = ObjectKey.of(desired)
    qualified = key in qualify
    paths = ignored_paths(ignore, desired)
    old = normalize_paths(before, strip_attrs, paths, keep=MASK) if before is not None else None
    new = normalize_paths(after, strip_attrs, paths, keep=MASK) if after is not None else None
    secret = is_secret(desired)
    by_key_set = secret and (is_sops_encrypted(before) or is_sops_encrypted(after))

    states: dict[str, str] = _secret_keys(old, new, by_key_set) if secret else {}
    shown_old = _without_data(old) if secret else old
    shown_new = _without_data(new) if secret else new

    fields: list[FieldChange] = []
    if old is not None and new is not None:
        assert shown_old is not None and shown_new is not None
        _walk(shown_old, shown_new, "", fields)
        fields.extend(_secret_fields(states))

    reason = _skip(before, after, before_is_live, prune, owner)
    if reason is not None:
        if old is not None and new is not None and not fields:
            return ObjectDiff(key, UNCHANGED, qualified=qualified)
        return ObjectDiff(key, SKIPPED, reason=reason, qualified=qualified)

    if old is None:
        change = CREATED
    elif new is None:
        change = DELETED
    elif not fields:
        return ObjectDiff(key, UNCHANGED, qualified=qualified)
    else:
        change = CHANGED
    subject = key.qualified_subject if qualified else key.subject
    unified = _unified(shown_old, shown_new, subject, sides)
    if change == CHANGED and shown_old is not None and shown_new is not None and json_equal(shown_old, shown_new):
        unified = ""  # only Secret data changed: its keys say what
    unified, truncated = _truncate(unified, limit_bytes)
    return ObjectDiff(
        key,
        change,
        fields=tuple(fields),
        unified=unified,
        secret_keys=states,
        truncated=truncated,
        qualified=qualified,
        images=image_changes(old, new),
    )
