"""The kustomization.yaml kustomize-controller writes before it builds a Flux Kustomization.

Ported from github.com/fluxcd/pkg/kustomize v1.41.0 ``kustomize_generator.go`` (the same code as
v1.35.7, which kustomize-controller v1.9.6 uses, and v1.35.6, the flux CLI v2.9.5's):

- a path without a kustomization file gets one listing every Kubernetes YAML file below it and
  every sub-directory that has a kustomization file (not descending into those); an empty one
  gets ``namespace: _placeholder``;
- a kept kustomization file is read into kustomize's ``Kustomization`` type and written out again:
  what that type does not know (a misspelt field, at any depth) is silently dropped — kustomize on
  its own refuses it — and field names match case-insensitively, as Go's JSON decoding does;
- a kept kustomization without resources gets ``buildMetadata: [originAnnotations]``;
- then the Flux Kustomization's spec is merged in: ``targetNamespace`` (as ``namespace``),
  ``namePrefix``, ``nameSuffix``, ``patches``, ``components`` (relative to the path; missing ones
  skipped with ``ignoreMissingComponents``), ``images`` (merged by name) and ``buildMetadata``.
  ``patchesStrategicMerge`` and ``patchesJson6902`` are gone from the ``v1`` API: the API server
  prunes them and the controller never sees them, so they are ignored here too (the generator
  would still honour them, were they there).

``commonMetadata``, decryption and ``postBuild`` are not part of it: the controller applies them
to the built objects.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from phoebe_cli.repo.scan import is_remote, kustomization_file
from phoebe_cli.repo.yamlio import YamlError, load_documents

KUSTOMIZATION_API = "kustomize.config.k8s.io/v1beta1"


class GeneratorError(Exception):
    pass


# kustomize's ``types.Kustomization`` (sigs.k8s.io/kustomize/api v0.21.1) as Go's JSON decoding sees
# it: field -> its type (None: a value kept as it is, a map or a scalar; a dict: a struct; a
# one-element list: a list of it). Embedded (",inline") structs are spread into their parent.
_Schema = dict[str, Any]
_GVK: _Schema = {"group": None, "version": None, "kind": None}
_RES_ID: _Schema = {**_GVK, "name": None, "namespace": None}
_SELECTOR: _Schema = {**_RES_ID, "annotationSelector": None, "labelSelector": None}
_PATCH: _Schema = {
    "path": None,
    "patch": None,
    "target": _SELECTOR,
    "options": {"allowNameChange": None, "allowKindChange": None},
}
_IMAGE: _Schema = dict.fromkeys(("name", "newName", "tagSuffix", "newTag", "digest"))
_FIELD_OPTIONS: _Schema = dict.fromkeys(("delimiter", "index", "encoding", "create"))
_GENERATOR_OPTIONS: _Schema = dict.fromkeys(("labels", "annotations", "disableNameSuffixHash", "immutable"))
_GENERATOR: _Schema = {
    **dict.fromkeys(("namespace", "name", "behavior", "literals", "files", "envs", "env")),
    "options": _GENERATOR_OPTIONS,
}
_KUSTOMIZATION: _Schema = {
    "kind": None,
    "apiVersion": None,
    "metadata": dict.fromkeys(("name", "namespace", "labels", "annotations")),
    "openapi": None,
    "namePrefix": None,
    "nameSuffix": None,
    "namespace": None,
    "commonLabels": None,
    "labels": [
        {
            "pairs": None,
            "includeSelectors": None,
            "includeTemplates": None,
            "fields": [{**_GVK, "path": None, "create": None}],
        }
    ],
    "commonAnnotations": None,
    "patchesStrategicMerge": None,
    "patchesJson6902": [_PATCH],
    "patches": [_PATCH],
    "images": [_IMAGE],
    "imageTags": [_IMAGE],
    "replacements": [
        {
            "source": {**_RES_ID, "fieldPath": None, "options": _FIELD_OPTIONS},
            "targets": [{"select": _SELECTOR, "reject": [_SELECTOR], "fieldPaths": None, "options": _FIELD_OPTIONS}],
            "sourceValue": None,
            "path": None,
        }
    ],
    "replicas": [{"name": None, "count": None}],
    "vars": [{"name": None, "objref": {"apiVersion": None, **_RES_ID}, "fieldref": {"fieldPath": None}}],
    "sortOptions": {"order": None, "legacySortOptions": {"orderFirst": None, "orderLast": None}},
    **dict.fromkeys(("resources", "components", "crds", "bases")),
    "configMapGenerator": [_GENERATOR],
    "secretGenerator": [{**_GENERATOR, "type": None}],
    "helmGlobals": {"chartHome": None, "configHome": None},
    "helmCharts": [
        dict.fromkeys(
            (
                "name",
                "version",
                "repo",
                "releaseName",
                "namespace",
                "additionalValuesFiles",
                "valuesFile",
                "valuesInline",
                "valuesMerge",
                "skipHooks",
                "apiVersions",
                "kubeVersion",
                "nameTemplate",
                "skipTests",
                "debug",
                "devel",
            )
        )
    ],
    "helmChartInflationGenerator": [
        dict.fromkeys(
            (
                "chartName",
                "chartVersion",
                "chartRepoUrl",
                "chartHome",
                "chartRepoName",
                "helmBin",
                "helmHome",
                "values",
                "valuesLocal",
                "valuesMerge",
                "releaseName",
                "releaseNamespace",
                "extraArgs",
            )
        )
    ],
    "generatorOptions": _GENERATOR_OPTIONS,
    **dict.fromkeys(("configurations", "generators", "transformers", "validators", "buildMetadata")),
}


def _as_kustomize_type(value: Any, schema: _Schema | list[Any] | None) -> Any:
    """``value`` read into ``schema``'s Go type and written out again (non-strict ``yaml.Unmarshal``,
    then ``yaml.Marshal``): unknown fields dropped, names matched case-insensitively (the last of
    two spellings wins), nulls gone. A value of the wrong shape is kept for kustomize to refuse."""
    if schema is None:
        return value
    if isinstance(schema, list):
        return [_as_kustomize_type(item, schema[0]) for item in value] if isinstance(value, list) else value
    if not isinstance(value, dict):
        return value
    folded = {name.lower(): name for name in schema}
    typed: dict[str, Any] = {}
    for key, item in value.items():
        name = key if key in schema else folded.get(str(key).lower())
        if name is not None and item is not None:
            typed[name] = _as_kustomize_type(item, schema[name])
    return typed


def _manifest_files(base: Path) -> list[str]:
    """Flux's scanManifests: YAML files (each must hold Kubernetes objects) and kustomization dirs."""
    found: list[str] = []

    def walk(directory: Path) -> None:
        for entry in sorted(directory.iterdir(), key=lambda p: p.name):
            if entry.is_dir():
                if entry.name == ".git":
                    continue
                if kustomization_file(entry) is not None:
                    found.append(entry.as_posix())
                    continue
                walk(entry)
            elif entry.suffix in (".yaml", ".yml"):
                try:
                    documents = load_documents(entry)
                except YamlError as error:
                    raise GeneratorError(f"failed to decode Kubernetes YAML from {entry}: {error.message}") from error
                for document in documents:
                    if not isinstance(document.data, dict) or not document.data.get("kind"):
                        raise GeneratorError(
                            f"failed to decode Kubernetes YAML from {entry}: missing kind (line {document.line})"
                        )
                found.append(entry.as_posix())

    walk(base)
    prefix = base.as_posix()
    return [path.replace(prefix, ".", 1) for path in found]


def _selector(target: Any) -> dict[str, Any] | None:
    if not isinstance(target, dict):
        return None
    keys = ("group", "version", "kind", "name", "namespace", "labelSelector", "annotationSelector")
    return {k: target[k] for k in keys if target.get(k)}


def flux_kustomization(directory: Path, spec: dict[str, Any]) -> tuple[dict[str, Any], bool]:
    """The kustomization for ``directory`` as kustomize-controller would write it for ``spec``,
    and whether it was generated (the directory had none)."""
    kfile = kustomization_file(directory)
    generated = kfile is None
    if kfile is not None:
        try:
            documents = load_documents(kfile)
        except YamlError as error:
            raise GeneratorError(str(error)) from error
        kus: dict[str, Any] = (
            _as_kustomize_type(documents[0].data, _KUSTOMIZATION)
            if documents and isinstance(documents[0].data, dict)
            else {}
        )
        if not kus.get("resources"):
            kus["buildMetadata"] = ["originAnnotations"]
    else:
        kus = {"apiVersion": KUSTOMIZATION_API, "kind": "Kustomization"}
        resources = _manifest_files(directory)
        if resources:
            kus["resources"] = resources
        else:
            kus["namespace"] = "_placeholder"
    kus.setdefault("apiVersion", KUSTOMIZATION_API)
    kus.setdefault("kind", "Kustomization")
    if isinstance(spec.get("targetNamespace"), str):
        kus["namespace"] = spec["targetNamespace"]
    for key in ("namePrefix", "nameSuffix"):
        if isinstance(spec.get(key), str):
            kus[key] = spec[key]
    for patch in spec.get("patches") or []:
        if isinstance(patch, dict):
            entry: dict[str, Any] = {"patch": patch.get("patch", "")}
            target = _selector(patch.get("target"))
            if target is not None:
                entry["target"] = target
            kus.setdefault("patches", []).append(entry)
    ignore_missing = bool(spec.get("ignoreMissingComponents"))
    for component in spec.get("components") or []:
        if not isinstance(component, str):
            continue
        if is_remote(component) or component.startswith("/"):
            raise GeneratorError(f"component path '{component}' must be local and relative")
        if not (directory / component).exists() and ignore_missing:
            continue
        kus.setdefault("components", []).append(component)
    _merge_images(kus, spec)
    if spec.get("buildMetadata"):
        kus["buildMetadata"] = list(spec["buildMetadata"])
    return kus, generated


def _merge_images(kus: dict[str, Any], spec: dict[str, Any]) -> None:
    """spec.images over the kustomization's own, by name (Flux's checkKustomizeImageExists)."""
    images: list[dict[str, Any]] = list(kus.get("images") or [])
    for image in spec.get("images") or []:
        if not isinstance(image, dict):
            continue
        existing = next((i for i in images if i.get("name") == image.get("name")), None)
        if existing is None:
            images.append({k: v for k, v in image.items() if k in ("name", "newName", "newTag", "digest") and v})
            continue
        if image.get("newName"):
            existing["newName"] = image["newName"]
        if image.get("newTag") or image.get("digest"):
            existing["newTag"] = image.get("newTag", "")
            existing["digest"] = image.get("digest", "")
    if images:
        kus["images"] = images
