"""The sources of the sample repository, served for real on 127.0.0.1: what the real
source-controller reads in the e2e stack, ``just demo`` and ``just cluster-up --flux``.

- a Git server (``git http-backend``, tests/support/gitserver.py) serving the work tree as
  ``home-ops.git``, branch ``main``;
- a Helm HTTP repository per ``HelmRepository`` of the sample (tests/support/chartrepo.py);
- the distribution registry (tests/cluster/registry.py) for every ``OCIRepository`` and every
  ``HelmRepository`` of ``type: oci``.

The sample names charts on public sites (ghcr.io, charts.rook.io, ...). ``SampleSources.prepare``
rewrites a *copy* of the sample in place so every source points at these servers (OCI ones get
``insecure: true``: the registry speaks plain HTTP; the GitRepository loses its SSH deploy key),
publishes the fixture chart (tests/fixtures/charts/app-template) under every chart name and
version a HelmRelease or OCIRepository asks for, commits the tree and pushes it:

    sources = SampleSources(workdir).start()
    repo = sources.prepare(git_dir)        # a GitWorkTree: edit files, then repo.commit("...")
    ...
    sources.stop()
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from tests.cluster.registry import Registry, helm_push
from tests.support.chartrepo import CHARTS_DIR, ChartRepository, package_chart
from tests.support.gitserver import GitServer, GitWorkTree

__all__ = ["GIT_REPOSITORY_FILE", "SampleSources"]

GIT_REPOSITORY_FILE = "kubernetes/flux/cluster/gitrepository.yaml"
FIXTURE_CHART = CHARTS_DIR / "app-template"
REPO_NAME = "home-ops"

Obj = dict[str, Any]


def _documents(root: Path) -> list[tuple[Path, Obj]]:
    found = []
    for path in sorted((root / "kubernetes").rglob("*.yaml")):
        if path.name.endswith(".sops.yaml"):
            continue
        try:
            docs = list(yaml.safe_load_all(path.read_text()))
        except yaml.YAMLError:
            continue
        found += [(path, doc) for doc in docs if isinstance(doc, dict) and doc.get("kind")]
    return found


def _source_kind(doc: Obj, kind: str) -> bool:
    return doc.get("kind") == kind and str(doc.get("apiVersion", "")).startswith("source.toolkit.fluxcd.io/")


@dataclass
class SampleSources:
    workdir: Path
    git: GitServer = field(init=False)
    charts: ChartRepository = field(init=False)
    registry: Registry = field(init=False)
    repo: GitWorkTree | None = None
    published: list[str] = field(default_factory=list)  # what was published, for the logs

    def __post_init__(self) -> None:
        self.git = GitServer(self.workdir / "git")
        self.charts = ChartRepository(self.workdir / "charts")
        self.registry = Registry(self.workdir / "registry")

    def start(self) -> SampleSources:
        self.workdir.mkdir(parents=True, exist_ok=True)
        try:
            self.git.start()
            self.charts.start()
            self.registry.start()
        except BaseException:
            self.stop()
            raise
        return self

    def stop(self) -> None:
        self.git.stop()
        self.charts.stop()
        self.registry.stop()

    # --- the sample, localized ---------------------------------------------------------------
    def prepare(self, git_dir: Path) -> GitWorkTree:
        """Point the sample's sources (in ``git_dir``, a copy) at these servers, publish the
        charts they name, commit and push; returns the work tree."""
        docs = _documents(git_dir)
        self._localize(git_dir, docs)
        self._publish_charts(docs)
        self.repo = GitWorkTree.publish(git_dir, self.git, REPO_NAME, message="the sample repository")
        return self.repo

    def git_url(self) -> str:
        return self.git.url(REPO_NAME)

    def helm_url(self, repository: str) -> str:
        return f"{self.charts.base_url}/{repository}"

    def oci_url(self, url: str) -> str:
        """oci://ghcr.io/PATH -> oci://127.0.0.1:PORT/PATH"""
        path = url.removeprefix("oci://").split("/", 1)[1]
        return f"oci://{self.registry.host}/{path}"

    def _localize(self, root: Path, docs: list[tuple[Path, Obj]]) -> None:
        for path, doc in docs:
            spec = doc.get("spec") or {}
            url = spec.get("url")
            if not isinstance(url, str):
                continue
            text = path.read_text()
            if _source_kind(doc, "GitRepository") and path == root / GIT_REPOSITORY_FILE:
                text = text.replace(f"url: {url}", f"url: {self.git_url()}")
                # Served over plain HTTP without credentials: no deploy key.
                text = re.sub(r"\n  secretRef:\n    name: [^\n]+", "", text)
            elif _source_kind(doc, "HelmRepository") and spec.get("type") != "oci":
                text = text.replace(f"url: {url}", f"url: {self.helm_url(doc['metadata']['name'])}")
            elif (_source_kind(doc, "HelmRepository") or _source_kind(doc, "OCIRepository")) and url.startswith(
                "oci://"
            ):
                text = text.replace(f"url: {url}", f"url: {self.oci_url(url)}")
                if "insecure:" not in text:
                    # The registry speaks plain HTTP.
                    text = re.sub(r"\nspec:\n", "\nspec:\n  insecure: true\n", text, count=1)
            else:
                continue
            path.write_text(text)

    def _publish_charts(self, docs: list[tuple[Path, Obj]]) -> None:
        helm_repositories = {d["metadata"]["name"]: d for _, d in docs if _source_kind(d, "HelmRepository")}
        wanted: set[tuple[str, str, str]] = set()  # (where, chart, version)
        for _, doc in docs:
            if _source_kind(doc, "OCIRepository"):
                url, tag = doc["spec"]["url"], (doc["spec"].get("ref") or {}).get("tag")
                if tag:
                    base, _, chart = url.rstrip("/").rpartition("/")
                    wanted.add((self.oci_url(base), chart, tag))
            elif doc.get("kind") == "HelmRelease":
                chart_spec = ((doc.get("spec") or {}).get("chart") or {}).get("spec") or {}
                source = helm_repositories.get((chart_spec.get("sourceRef") or {}).get("name", ""))
                if source is None or not chart_spec.get("chart") or not chart_spec.get("version"):
                    continue
                name = source["metadata"]["name"]
                url = source["spec"]["url"]
                where = self.oci_url(url) if url.startswith("oci://") else f"helm:{name}"
                wanted.add((where, chart_spec["chart"], chart_spec["version"]))
        for where, chart, version in sorted(wanted):
            self.publish_chart(where, chart, version)

    def publish_chart(self, where: str, chart: str, version: str) -> str:
        """Publish the fixture chart as CHART VERSION: ``helm:REPO`` (the Helm HTTP repository
        REPO) or ``oci://HOST/PATH`` (pushed to the registry). Returns the .tgz name or the
        pushed digest."""
        if where.startswith("helm:"):
            packaged = package_chart(FIXTURE_CHART, self.charts.root / where[5:], name=chart, version=version)
            self.published.append(f"{where}/{chart}:{version}")
            return packaged.name
        scratch = self.workdir / "packaged"
        packaged = package_chart(FIXTURE_CHART, scratch, name=chart, version=version, index=False)
        digest = helm_push(packaged, where)
        self.published.append(f"{where}/{chart}:{version}")
        return digest
