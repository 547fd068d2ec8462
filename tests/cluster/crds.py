"""Install the Flux CRDs (and the ExternalSecret CRDs) on a control plane, from the Go modules."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from tests.cluster.api import Api
from tests.cluster.build import module_dir
from tests.cluster.versions import CRD_SETS, EXTERNAL_SECRETS_CRDS, CrdSource


def crd_documents(source: CrdSource) -> list[dict[str, Any]]:
    folder = module_dir(source.module, source.version) / source.directory
    files = [folder / name for name in source.files] if source.files else sorted(folder.glob("*.yaml"))
    documents = []
    for path in files:
        if path.name == "kustomization.yaml":
            continue
        for doc in yaml.safe_load_all(Path(path).read_text()):
            if doc and doc.get("kind") == "CustomResourceDefinition":
                documents.append(doc)
    return documents


def crd_set_documents(crd_set: str, *, external_secrets: bool = True) -> list[dict[str, Any]]:
    if crd_set not in CRD_SETS:
        raise ValueError(f"unknown CRD set {crd_set!r} (known: {', '.join(CRD_SETS)})")
    documents = [doc for source in CRD_SETS[crd_set] for doc in crd_documents(source)]
    if external_secrets:
        documents.extend(crd_documents(EXTERNAL_SECRETS_CRDS))
    return documents


def install_crds(api: Api, crd_set: str, *, external_secrets: bool = True) -> list[str]:
    """Server-side apply every CRD of the set (forcing, so one set can replace another) and wait
    until each is Established. Returns the CRD names."""
    documents = crd_set_documents(crd_set, external_secrets=external_secrets)
    for doc in documents:
        doc.get("metadata", {}).pop("creationTimestamp", None)
        doc.pop("status", None)
        api.apply(doc, manager="phoebe-crds")
    names = [doc["metadata"]["name"] for doc in documents]
    api.wait_established(names)
    return names
