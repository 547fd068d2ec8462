"""A HelmRelease's values as helm-controller computes them: every ``valuesFrom`` source in order
(a key of a ConfigMap or Secret parsed as YAML and merged, or one value put at ``targetPath``),
then ``spec.values`` over them. Values that come from a Secret are masked leaf by leaf: the diff
shows where a secret value sits, never the value.

Pure: the ConfigMaps and Secrets are looked up among the objects the caller has (the same build).
"""

from __future__ import annotations

import base64
import copy
from collections.abc import Callable, Mapping
from typing import Any

import yaml

from phoebe_cli.flux.secrets import MASK, data_of

DEFAULT_VALUES_KEY = "values.yaml"
Lookup = Callable[[str, str], Mapping[str, Any] | None]  # (kind, name) -> the object, in the release's namespace


def merge(base: dict[str, Any], overlay: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's coalescing of maps: maps merge key by key, anything else replaces."""
    for key, value in overlay.items():
        if isinstance(value, Mapping) and isinstance(base.get(key), dict):
            base[key] = merge(base[key], value)
        else:
            base[key] = copy.deepcopy(value) if isinstance(value, (dict, list)) else value
    return base


def _mask(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_mask(v) for v in value]
    return MASK


def _data(obj: Mapping[str, Any], key: str) -> str | None:
    if obj.get("kind") == "Secret":
        string_data = obj.get("stringData") or {}
        if key in string_data:
            return str(string_data[key])
        raw = data_of(obj).get(key)
        if raw is None:
            return None
        try:
            return base64.b64decode(str(raw)).decode()
        except (ValueError, UnicodeDecodeError):
            return None
    value = data_of(obj).get(key)
    return None if value is None else str(value)


def _set_path(values: dict[str, Any], path: str, value: Any) -> None:
    """helm's strvals for a plain dotted path (``a.b.c``); list indexes are not supported here."""
    parts = [p for p in path.split(".") if p]
    target = values
    for part in parts[:-1]:
        nxt = target.get(part)
        if not isinstance(nxt, dict):
            nxt = {}
            target[part] = nxt
        target = nxt
    if parts:
        target[parts[-1]] = value


def effective_values(
    release: Mapping[str, Any], lookup: Lookup, *, mask: bool = True
) -> tuple[dict[str, Any], list[str]]:
    """The merged values, and notes about sources that could not be read (missing, encrypted).
    ``mask=False`` keeps Secret values as they are: for rendering in memory only, never shown."""
    spec = release.get("spec") or {}
    values: dict[str, Any] = {}
    notes: list[str] = []
    for entry in spec.get("valuesFrom") or []:
        if not isinstance(entry, Mapping):
            continue
        kind, name = str(entry.get("kind", "")), str(entry.get("name", ""))
        key = str(entry.get("valuesKey") or DEFAULT_VALUES_KEY)
        source = lookup(kind, name)
        secret = kind == "Secret" and mask
        if source is None:
            if not entry.get("optional"):
                notes.append(f"valuesFrom {kind}/{name} is not in this build")
            continue
        if kind == "Secret" and ((source.get("metadata") or {}).get("annotations") or {}).get("phoebe.dev/sops"):
            notes.append(f"valuesFrom {kind}/{name} is SOPS-encrypted: its values are not known offline")
            continue
        text = _data(source, key)
        if text is None:
            if not entry.get("optional"):
                notes.append(f"valuesFrom {kind}/{name} has no key {key!r}")
            continue
        target = entry.get("targetPath")
        if target:
            _set_path(values, str(target), MASK if secret else text)
            continue
        try:
            loaded = yaml.safe_load(text) or {}
        except yaml.YAMLError:
            notes.append(f"valuesFrom {kind}/{name} key {key!r} is not YAML")
            continue
        if isinstance(loaded, Mapping):
            merge(values, _mask(loaded) if secret else loaded)
    inline = spec.get("values")
    if isinstance(inline, Mapping):
        merge(values, inline)
    return values, notes


def with_effective_values(release: Mapping[str, Any], lookup: Lookup) -> dict[str, Any]:
    """A copy of the release whose ``spec.values`` are the merged values (when it has valuesFrom)."""
    spec = release.get("spec") or {}
    if not spec.get("valuesFrom"):
        return dict(release)
    values, _ = effective_values(release, lookup)
    result = copy.deepcopy(dict(release))
    result["spec"]["values"] = values
    return result
