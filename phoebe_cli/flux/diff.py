"""What a change will do: two versions of each object compared, Flux's way.

Pure: objects in, frozen results out. The same comparison serves ``phoebe diff`` against the
cluster (the live object against the server-side-apply dry-run of the checkout's object) and
offline between two Git refs (what a Flux Kustomization builds at the base against the head).

The rules follow kustomize-controller v1.9.6 and fluxcd/pkg/ssa:

- **Noise** is dropped before comparing (``normalize``): server-owned metadata, the whole
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
  reconcile disabled / ssa Ignore, as kustomize-controller's delete exclusions).
- **Secrets** (``v1`` ``Secret``) never show a value: ``stringData`` is merged into ``data``
  (base64-encoded, as the API server does) and the two sides are compared key by key; results
  say which keys were added, removed or changed, and the unified text leaves ``data`` out. A Secret
  that is SOPS-encrypted on either side (a top-level ``sops`` map, or the annotation
  ``phoebe.dev/sops: encrypted`` the repo model puts on its masked copies), and any value that is
  the mask ``***`` itself, is compared by key set only: such keys are ``unknown``.
- **Lists** pair by index, except lists of maps that all have a unique ``name`` (containers,
  env, ports, volumes), which pair by name so that an insertion is one added item.
"""

from __future__ import annotations

import base64
import binascii
import difflib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

import yaml

from phoebe_cli.errors import UsageError
from phoebe_cli.flux.objects import ObjectRef
from phoebe_cli.flux.selectors import parse_selector

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
    "UNCHANGED",
    "DiffReport",
    "FieldChange",
    "IgnoreRule",
    "KustomizationDiff",
    "ObjectDiff",
    "ObjectKey",
    "compare",
    "dump_yaml",
    "ignore_rules",
    "join_path",
    "key_of",
    "normalize",
    "skip_reason",
]

CREATED, CHANGED, DELETED, UNCHANGED, SKIPPED = "created", "changed", "deleted", "unchanged", "skipped"
CHANGE_KINDS = (CREATED, CHANGED, DELETED, SKIPPED, UNCHANGED)  # the order of counts and summaries

SECRET_ADDED, SECRET_REMOVED, SECRET_CHANGED, SECRET_UNCHANGED = "added", "removed", "changed", "unchanged"
SECRET_UNKNOWN = "unknown"  # present on both sides, values not known (SOPS-encrypted or masked)

MASK = "***"  # what a Secret value is shown as; also the repo model's mask, so it means "unknown"

# Label/annotation keys left out of the comparison, as flux-local users pass to --strip-attrs:
# they change with every chart release without saying anything about the change. A key ending
# in "/*" is a prefix: "checksum/*" is every "checksum/..." key (checksum/config, checksum/secret).
DEFAULT_STRIP_ATTRS: tuple[str, ...] = (
    "helm.sh/chart",
    "checksum/*",
    "app.kubernetes.io/version",
    "chart",
)

_FLUX = "kustomize.toolkit.fluxcd.io"
RECONCILE_KEY = f"{_FLUX}/reconcile"
SSA_KEY = f"{_FLUX}/ssa"
PRUNE_KEY = f"{_FLUX}/prune"
SOPS_MARKER = "phoebe.dev/sops"

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
_NOISE_ANNOTATIONS = ("kubectl.kubernetes.io/last-applied-configuration", SOPS_MARKER)


# --- keys -----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ObjectKey:
    api_version: str
    kind: str
    namespace: str
    name: str

    def __str__(self) -> str:
        if self.namespace:
            return f"{self.kind}/{self.namespace}/{self.name}"
        return f"{self.kind}/{self.name}"

    @property
    def group(self) -> str:
        return self.api_version.rpartition("/")[0]

    @property
    def version(self) -> str:
        return self.api_version.rpartition("/")[2]


def key_of(obj: Mapping[str, Any]) -> ObjectKey:
    meta = obj.get("metadata") or {}
    return ObjectKey(
        api_version=str(obj.get("apiVersion", "")),
        kind=str(obj.get("kind", "")),
        namespace=str(meta.get("namespace") or ""),
        name=str(meta.get("name") or ""),
    )


def _is_secret(obj: Mapping[str, Any]) -> bool:
    return obj.get("kind") == "Secret" and obj.get("apiVersion") == "v1"


def _metadata_map(obj: Mapping[str, Any], which: str) -> Mapping[str, Any]:
    meta = obj.get("metadata")
    if not isinstance(meta, Mapping):
        return {}
    found = meta.get(which)
    return found if isinstance(found, Mapping) else {}


# --- ignore rules ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class IgnoreRule:
    """One entry of a Flux Kustomization's ``spec.ignore``: RFC 6901 JSON Pointers left out of
    the comparison of the objects its target selects (every object when it has no target).

    ``group``, ``version``, ``kind``, ``name`` and ``namespace`` are regular expressions matched
    against the whole value; ``label_selector`` and ``annotation_selector`` are Kubernetes label
    selectors. Empty means "any". The pointer ``""`` is the whole object.
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
        key = key_of(obj)
        for pattern, value in (
            (self.namespace, key.namespace),
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


def _ignored_paths(rules: Iterable[IgnoreRule], obj: Mapping[str, Any]) -> list[str]:
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


def _remove_pointer(doc: dict[str, Any], pointer: str) -> None:
    """Remove what ``pointer`` points at, in place; a path that is not there is fine."""
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


# --- normalizing ----------------------------------------------------------------------------------
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


def _b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def _merge_string_data(obj: dict[str, Any]) -> None:
    """``stringData`` into ``data``, base64-encoded, as the API server does (stringData wins).
    A masked value stays the mask, so that it still reads as unknown."""
    string_data = obj.pop("stringData", None)
    if not isinstance(string_data, dict) or not string_data:
        return
    data = obj.get("data")
    data = dict(data) if isinstance(data, dict) else {}
    for key, value in string_data.items():
        text = "" if value is None else str(value)
        data[key] = MASK if text == MASK else _b64(text)
    obj["data"] = data


def _normalize(obj: Mapping[str, Any], strip_attrs: Sequence[str], paths: Iterable[str]) -> dict[str, Any]:
    doc = _plain(obj)
    if not isinstance(doc, dict):
        return {}
    if isinstance(doc.get("sops"), dict):
        del doc["sops"]  # SOPS metadata: the controller decrypts and drops it before applying
    if _is_secret(doc):
        _merge_string_data(doc)
    for path in paths:
        if path == "":
            return {}
        _remove_pointer(doc, path)
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
) -> dict[str, Any]:
    """A deep copy of ``obj`` without what says nothing about the change (see the module doc).

    Secret values are kept (merged into ``data``): ``compare`` is what keeps them out of sight.
    """
    return _normalize(obj, strip_attrs, _ignored_paths(ignore, obj))


# --- skipping -------------------------------------------------------------------------------------
def _in_metadata(obj: Mapping[str, Any], key: str, value: str) -> bool:
    """ssa's AnyInMetadata for one pair: a label or annotation, non-empty, equal ignoring case."""
    for which in ("labels", "annotations"):
        found = _metadata_map(obj, which).get(key)
        if found is not None and str(found) != "" and str(found).casefold() == value.casefold():
            return True
    return False


def _excluded(obj: Mapping[str, Any]) -> str | None:
    if _in_metadata(obj, RECONCILE_KEY, "disabled"):
        return "reconcile disabled"
    if _in_metadata(obj, SSA_KEY, "Ignore"):
        return "ssa: Ignore"
    return None


def skip_reason(obj: Mapping[str, Any], *, deleting: bool = False) -> str | None:
    """Why Flux would leave ``obj`` alone, from its labels and annotations, or None.

    Applying: "reconcile disabled", "ssa: Ignore", or "ssa: IfNotPresent" (which only holds when
    the object already exists; ``compare`` decides that). Pruning (``deleting=True``):
    "prune disabled", "reconcile disabled" or "ssa: Ignore".
    """
    if deleting:
        if _in_metadata(obj, PRUNE_KEY, "disabled"):
            return "prune disabled"
        return _excluded(obj)
    excluded = _excluded(obj)
    if excluded:
        return excluded
    if _in_metadata(obj, SSA_KEY, "IfNotPresent"):
        return "ssa: IfNotPresent"
    return None


def _skip(
    before: Mapping[str, Any] | None,
    after: Mapping[str, Any] | None,
    before_is_live: bool,
    prune: bool,
) -> str | None:
    if after is None:
        assert before is not None
        reason = skip_reason(before, deleting=True)
        if reason is None and not prune:
            reason = "prune disabled on the Kustomization"
        return reason
    reason = _excluded(after)
    if reason is None and before is not None and before_is_live:
        reason = _excluded(before)
    if reason is None and before is not None and _in_metadata(after, SSA_KEY, "IfNotPresent"):
        reason = "ssa: IfNotPresent"
    return reason


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

    @property
    def is_secret(self) -> bool:
        return self.key.kind == "Secret" and self.key.api_version == "v1"


@dataclass(frozen=True)
class KustomizationDiff:
    ref: ObjectRef
    objects: tuple[ObjectDiff, ...]  # everything but the unchanged
    unchanged: int
    warnings: tuple[str, ...] = ()
    build_state: str = ""  # "" built at both sides; "base-only" / "head-only"

    @property
    def differs(self) -> bool:
        """Anything Flux would do: created, changed or deleted objects (skipped ones are not),
        or a Kustomization built at one side only."""
        return bool(self.build_state) or any(o.change in (CREATED, CHANGED, DELETED) for o in self.objects)

    @property
    def counts(self) -> dict[str, int]:
        counts = dict.fromkeys(CHANGE_KINDS, 0)
        for obj in self.objects:
            counts[obj.change] = counts.get(obj.change, 0) + 1
        counts[UNCHANGED] += self.unchanged
        return counts


@dataclass(frozen=True)
class DiffReport:
    mode: Literal["cluster", "refs"]
    base: str  # labels shown to the user: "cluster" / "checkout", "main (1a2b3c4d)" / "HEAD (5e6f7a8b)"
    head: str
    kustomizations: tuple[KustomizationDiff, ...]
    warnings: tuple[str, ...] = ()

    @property
    def differs(self) -> bool:
        return any(k.differs for k in self.kustomizations)

    @property
    def counts(self) -> dict[str, int]:
        """Objects per change kind, every kind present, in ``CHANGE_KINDS`` order."""
        counts = dict.fromkeys(CHANGE_KINDS, 0)
        for kustomization in self.kustomizations:
            for kind, n in kustomization.counts.items():
                counts[kind] = counts.get(kind, 0) + n
        return counts


# --- comparing ------------------------------------------------------------------------------------
def _category(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "bool"
    if isinstance(value, dict):
        return "map"
    if isinstance(value, list):
        return "list"
    return type(value).__name__


def _equal(a: Any, b: Any) -> bool:
    """Equal as documents: maps regardless of key order, lists in order, 1 is neither 1.0 nor true."""
    if _category(a) != _category(b):
        return False
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_equal(a[k], b[k]) for k in a)
    if isinstance(a, list):
        return len(a) == len(b) and all(_equal(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


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
    if not _equal(before, after):
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
    key: ObjectKey,
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
            fromfile=f"{key} ({sides[0]})" if before is not None else "/dev/null",
            tofile=f"{key} ({sides[1]})" if after is not None else "/dev/null",
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
def _is_sops(obj: Mapping[str, Any] | None) -> bool:
    if obj is None:
        return False
    marker = _metadata_map(obj, "annotations").get(SOPS_MARKER)
    return isinstance(obj.get("sops"), Mapping) or str(marker) == "encrypted"


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
) -> ObjectDiff:
    """What applying ``after`` over ``before`` does to one object.

    ``None`` before: created; ``None`` after: deleted (pruned); equal once normalized: unchanged;
    otherwise changed, with the fields and a unified diff of the normalized YAML (``sides`` name
    the two in its ---/+++ headers), cut after ``limit_bytes`` bytes. Objects Flux would leave
    alone are skipped, with the reason, unless they are equal anyway. ``before_is_live``: the
    before side is the live object (cluster mode), whose exclusion annotations Flux honours too.
    ``prune``: the Kustomization's ``spec.prune``; without it, removed objects are skipped.
    """
    if before is None and after is None:
        raise ValueError("compare needs an object on at least one side")
    desired = after if after is not None else before
    assert desired is not None
    key = key_of(desired)
    rules = list(ignore)
    paths = _ignored_paths(rules, desired)
    old = _normalize(before, strip_attrs, paths) if before is not None else None
    new = _normalize(after, strip_attrs, paths) if after is not None else None
    secret = _is_secret(desired)
    by_key_set = secret and (_is_sops(before) or _is_sops(after))

    states: dict[str, str] = _secret_keys(old, new, by_key_set) if secret else {}
    shown_old = _without_data(old) if secret else old
    shown_new = _without_data(new) if secret else new

    fields: list[FieldChange] = []
    if old is not None and new is not None:
        assert shown_old is not None and shown_new is not None
        _walk(shown_old, shown_new, "", fields)
        fields.extend(_secret_fields(states))

    reason = _skip(before, after, before_is_live, prune)
    if reason is not None:
        if old is not None and new is not None and not fields:
            return ObjectDiff(key, UNCHANGED)
        return ObjectDiff(key, SKIPPED, reason=reason)

    if old is None:
        change = CREATED
    elif new is None:
        change = DELETED
    elif not fields:
        return ObjectDiff(key, UNCHANGED)
    else:
        change = CHANGED
    unified = _unified(shown_old, shown_new, key, sides)
    if change == CHANGED and shown_old is not None and shown_new is not None and _equal(shown_old, shown_new):
        unified = ""  # only Secret data changed: its keys say what
    unified, truncated = _truncate(unified, limit_bytes)
    return ObjectDiff(
        key,
        change,
        fields=tuple(fields),
        unified=unified,
        secret_keys=states,
        truncated=truncated,
    )
