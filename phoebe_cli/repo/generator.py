"""The kustomization.yaml kustomize-controller writes before it builds a Flux Kustomization.

Ported from github.com/fluxcd/pkg/kustomize v1.41.0 ``kustomize_generator.go``:

- a path without a kustomization file gets one listing every Kubernetes YAML file below it and
  every sub-directory that has a kustomization file (not descending into those); an empty one
  gets ``namespace: _placeholder``;
- a kept kustomization without resources gets ``buildMetadata: [originAnnotations]``;
- then the Flux Kustomization's spec is merged in: ``targetNamespace`` (as ``namespace``),
  ``namePrefix``, ``nameSuffix``, ``patches``, ``components`` (relative to the path; missing ones
  skipped with ``ignoreMissingComponents``), ``patchesStrategicMerge``, ``patchesJson6902``,
  ``images`` (merged by name) and ``buildMetadata``.

``commonMetadata``, decryption and ``postBuild`` are not part of it: the controller applies them
to the built objects.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from phoebe_cli.repo.scan import is_remote, kustomization_file
from phoebe_cli.repo.yamlio import YamlError, load_documents

KUSTOMIZATION_API = "kustomize.config.k8s.io/v1beta1"


class GeneratorError(Exception):
    pass


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
        kus: dict[str, Any] = dict(documents[0].data) if documents and isinstance(documents[0].data, dict) else {}
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
    for patch in spec.get("patchesStrategicMerge") or []:
        kus.setdefault("patchesStrategicMerge", []).append(json.dumps(patch))
    for patch in spec.get("patchesJson6902") or []:
        if isinstance(patch, dict):
            kus.setdefault("patchesJson6902", []).append(
                {"patch": json.dumps(patch.get("patch")), "target": _selector(patch.get("target")) or {}}
            )
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
