"""phoebe's offline repo model on a generated GitOps repository (10 namespaces, N apps, every 5th
app with a shared kustomize Component, every 2nd with a shared "postgres" Component that adds a
child Flux Kustomization `<app>-db` building one shared path — the pattern of real homelab
repositories, where only the child's substitution differs), side by side in the same run with the
floor: `kustomize build` of every Flux Kustomization path, two at a time.

- phoebe validate, cold: the build cache emptied before each run (not --no-cache)
- phoebe validate, warm: the cache filled by an earlier run, the repository unchanged
- phoebe validate, one app changed: one app's helmrelease.yaml edited before each run
- phoebe status --repo PATH -o json, cold and warm
and the same on the test suite's sample repository (tests/fixtures/gitops), and the number of
kustomize runs phoebe makes cold, warm and with one app changed (`validate -o json`,
kustomizeRuns). phoebe validate's summary of the generated repository is printed first (0 errors
expected; any error is printed: a bug in the generator or in phoebe).

Goal: cold within 3x of the floor; warm under 0.6 s. With `--baseline REF`, phoebe at an older
commit (a Git worktree of this repository) is timed cold on the same repository in the same run.

    python -m bench.repo [--apps 100] [--runs 5] [--baseline REF]
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.common import Timing, byte_compile, print_table, time_command

GOAL_COLD_RATIO = 3.0
GOAL_WARM_SECONDS = 0.6
GOAL_VS_BASELINE = 0.6  # cold, against the commit before identical builds were shared
NAMESPACES = (
    "default",
    "media",
    "network",
    "observability",
    "database",
    "security",
    "home-automation",
    "downloads",
    "tools",
    "games",
)
APP_NAMES = (
    "sonarr",
    "radarr",
    "prowlarr",
    "bazarr",
    "overseerr",
    "tautulli",
    "plex",
    "jellyfin",
    "sabnzbd",
    "qbittorrent",
    "homepage",
    "echo",
    "grafana",
    "gatus",
    "uptime-kuma",
    "home-assistant",
    "zigbee2mqtt",
    "mosquitto",
    "node-red",
    "esphome",
    "paperless",
    "immich",
    "nextcloud",
    "vaultwarden",
    "authelia",
    "lldap",
    "miniflux",
    "freshrss",
    "linkding",
    "actual",
    "mealie",
    "tandoor",
    "syncthing",
    "thelounge",
    "atuin",
    "it-tools",
    "excalidraw",
    "minecraft",
    "factorio",
    "valheim",
)
COMPONENT_EVERY = 5
DATABASE_EVERY = 2  # every 2nd app gets a database: a child Flux Kustomization from a shared component
EXTENSIONS_EVERY = 3  # of those, every 3rd sets DATABASE_EXTENSIONS; the others leave it unset on purpose


@dataclass(frozen=True)
class App:
    index: int
    name: str
    namespace: str
    depends_on: tuple[tuple[str, str], ...]  # (name, namespace)
    component: bool

    @property
    def database(self) -> bool:
        return self.index % DATABASE_EVERY == 1

    @property
    def extensions(self) -> bool:
        return self.database and self.index % EXTENSIONS_EVERY == 0

    @property
    def directory(self) -> str:
        return f"kubernetes/apps/{self.namespace}/{self.name}"


# --- the generated repository -------------------------------------------------------------------


def _apps(count: int) -> list[App]:
    apps: list[App] = []
    for index in range(count):
        base = APP_NAMES[index % len(APP_NAMES)]
        name = base if index < len(APP_NAMES) else f"{base}-{index // len(APP_NAMES) + 1}"
        namespace = NAMESPACES[index % len(NAMESPACES)]
        depends: list[tuple[str, str]] = []
        if index >= len(NAMESPACES) and index % 3 == 0:
            earlier = apps[index - len(NAMESPACES)]  # the previous app of the same namespace
            depends.append((earlier.name, earlier.namespace))
        if index > 0 and index % 7 == 0:
            depends.append((apps[0].name, apps[0].namespace))  # across namespaces
        apps.append(App(index, name, namespace, tuple(depends), index % COMPONENT_EVERY == COMPONENT_EVERY - 1))
    return apps


ROOTS = """\
---
# The bootstrap source every Flux Kustomization in this repository reads from.
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: flux-system
  namespace: flux-system
spec:
  interval: 1h
  url: ssh://git@github.com/example/home-ops
  ref:
    branch: main
  secretRef:
    name: github-deploy-key
  ignore: |
    # exclude all
    /*
    # include kubernetes directory
    !/kubernetes
---
# The cluster vars (ConfigMap cluster-settings in flux-system), before the apps.
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: cluster-meta
  namespace: flux-system
spec:
  interval: 1h
  path: ./kubernetes/flux/meta
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
  wait: false
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: cluster-apps
  namespace: flux-system
spec:
  interval: 1h
  retryInterval: 1m
  timeout: 5m
  path: ./kubernetes/apps
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
  dependsOn:
    - name: cluster-meta
  postBuild:
    substituteFrom:
      - kind: ConfigMap
        name: cluster-settings
  patches:
    - # Every child Flux Kustomization substitutes the cluster vars; the ConfigMap is resolved in
      # the child's own namespace: every namespace directory includes a copy of flux/vars.
      patch: |-
        apiVersion: kustomize.toolkit.fluxcd.io/v1
        kind: Kustomization
        metadata:
          name: not-used
        spec:
          postBuild:
            substituteFrom:
              - kind: ConfigMap
                name: cluster-settings
      target:
        group: kustomize.toolkit.fluxcd.io
        kind: Kustomization
  wait: false
"""

CLUSTER_SETTINGS = """\
---
apiVersion: v1
kind: ConfigMap
metadata:
  name: cluster-settings
data:
  CLUSTER_NAME: home
  CLUSTER_DOMAIN: example.org
  TIMEZONE: Europe/Amsterdam
  LB_INGRESS_INTERNAL: 192.168.42.201
  STORAGE_CLASS_BLOCK: ceph-block
  STORAGE_CLASS_FS: ceph-filesystem
"""

COMPONENT_KUSTOMIZATION = """\
---
# Shared by every 5th app: a data volume, a NetworkPolicy, a PodDisruptionBudget, and a patch
# mounting the volume into the app's HelmRelease.
apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
resources:
  - ./pvc.yaml
  - ./networkpolicy.yaml
  - ./pdb.yaml
patches:
  - target:
      group: helm.toolkit.fluxcd.io
      kind: HelmRelease
    patch: |-
      - op: add
        path: /spec/values/persistence/data
        value:
          existingClaim: ${APP}-data
          globalMounts:
            - path: /data
      - op: add
        path: /spec/values/defaultPodOptions/securityContext/fsGroup
        value: 568
"""

COMPONENT_FILES = {
    "pvc.yaml": """\
---
apiVersion: v1
kind: PersistentVolumeClaim
metadata:
  name: ${APP}-data
spec:
  accessModes: ["ReadWriteOnce"]
  resources:
    requests:
      storage: ${VOLUME_CAPACITY:=1Gi}
  storageClassName: ${STORAGE_CLASS_BLOCK}
""",
    "networkpolicy.yaml": """\
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: ${APP}-ingress
spec:
  podSelector:
    matchLabels:
      app.kubernetes.io/name: ${APP}
  policyTypes: ["Ingress"]
  ingress:
    - from:
        - namespaceSelector:
            matchLabels:
              kubernetes.io/metadata.name: network
""",
    "pdb.yaml": """\
---
apiVersion: policy/v1
kind: PodDisruptionBudget
metadata:
  name: ${APP}
spec:
  maxUnavailable: 1
  selector:
    matchLabels:
      app.kubernetes.io/name: ${APP}
""",
}


POSTGRES_COMPONENT = """\
---
# Every app that includes this gets a database: a child Flux Kustomization that builds one shared
# path, differing only by its substitution (APP, and DATABASE_EXTENSIONS when the app sets it).
apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
resources:
  - ./ks.yaml
"""

POSTGRES_KS = """\
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: ${APP}-db
spec:
  targetNamespace: ${NAMESPACE}
  path: ./kubernetes/components/postgres/cluster
  postBuild:
    substitute:
      APP: ${APP}
      EXTENSIONS: ${q:='}${DATABASE_EXTENSIONS}${q:='}
  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
    namespace: flux-system
  interval: 1h
  wait: true
"""

POSTGRES_CLUSTER = {
    "kustomization.yaml": """\
---
apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ./cluster.yaml
  - ./scheduledbackup.yaml
""",
    "cluster.yaml": """\
---
apiVersion: postgresql.cnpg.io/v1
kind: Cluster
metadata:
  name: ${APP}-db
spec:
  instances: 2
  imageName: ghcr.io/cloudnative-pg/postgresql:17.2
  storage:
    size: ${DATABASE_CAPACITY:=5Gi}
    storageClass: ${STORAGE_CLASS_BLOCK}
  bootstrap:
    initdb:
      database: ${APP}
      owner: ${APP}
      postInitSQL:
        - CREATE EXTENSION IF NOT EXISTS ${EXTENSIONS:=pg_stat_statements}
  monitoring:
    enablePodMonitor: true
""",
    "scheduledbackup.yaml": """\
---
apiVersion: postgresql.cnpg.io/v1
kind: ScheduledBackup
metadata:
  name: ${APP}-db
spec:
  schedule: "@daily"
  immediate: true
  backupOwnerReference: self
  cluster:
    name: ${APP}-db
""",
}


def _kustomization(lines: Sequence[str]) -> str:
    return "---\napiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n" + "".join(
        f"{line}\n" for line in lines
    )


def _ks_yaml(app: App) -> str:
    depends = ""
    if app.depends_on:
        entries = []
        for name, namespace in app.depends_on:
            where = "*namespace" if namespace == app.namespace else namespace
            entries.append(f"    - name: {name}\n      namespace: {where}\n")
        depends = "  dependsOn:\n" + "".join(entries)
    return f"""\
---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: &app {app.name}
spec:
  targetNamespace: &namespace {app.namespace}
  commonMetadata:
    labels:
      app.kubernetes.io/name: *app
{depends}  path: ./{app.directory}/app
  postBuild:
    substitute:
      APP: *app
      NAMESPACE: *namespace
{"      DATABASE_EXTENSIONS: vector" + chr(10) if app.extensions else ""}  prune: true
  sourceRef:
    kind: GitRepository
    name: flux-system
    namespace: flux-system
  interval: 1h
  retryInterval: 2m
  timeout: 5m
  wait: false
"""


def _helmrelease(app: App) -> str:
    return f"""\
---
apiVersion: helm.toolkit.fluxcd.io/v2
kind: HelmRelease
metadata:
  name: {app.name}
spec:
  interval: 1h
  chartRef:
    kind: OCIRepository
    name: {app.name}
  install:
    disableWait: true
    remediation:
      retries: -1
  upgrade:
    disableWait: true
    cleanupOnFail: true
    remediation:
      retries: 3
  values:
    controllers:
      {app.name}:
        annotations:
          reloader.stakater.com/auto: "true"
        containers:
          app:
            image:
              repository: ghcr.io/home-operations/{APP_NAMES[app.index % len(APP_NAMES)]}
              tag: 1.{app.index}.0
            env:
              TZ: ${{TIMEZONE}}
              APP_NAME: ${{APP}}
              APP_URL: https://${{APP}}.${{CLUSTER_DOMAIN}}
              APP_PORT: &port {8000 + app.index}
            probes:
              liveness: &probes
                enabled: true
                custom: true
                spec:
                  httpGet:
                    path: /healthz
                    port: *port
                  periodSeconds: 10
              readiness: *probes
            securityContext:
              allowPrivilegeEscalation: false
              readOnlyRootFilesystem: true
              capabilities: {{ drop: ["ALL"] }}
            resources:
              requests:
                cpu: 10m
              limits:
                memory: 512Mi
    defaultPodOptions:
      securityContext:
        runAsNonRoot: true
        runAsUser: 568
        runAsGroup: 568
    service:
      app:
        controller: {app.name}
        ports:
          http:
            port: *port
    ingress:
      app:
        className: internal
        annotations:
          external-dns.alpha.kubernetes.io/target: ${{LB_INGRESS_INTERNAL}}
        hosts:
          - host: ${{APP}}.${{CLUSTER_DOMAIN}}
            paths:
              - path: /
                service:
                  identifier: app
                  port: http
    persistence:
      config:
        type: configMap
        name: ${{APP}}-config
        globalMounts:
          - path: /config/config.yaml
            subPath: config.yaml
            readOnly: true
"""


def _ocirepository(app: App) -> str:
    return f"""\
---
apiVersion: source.toolkit.fluxcd.io/v1
kind: OCIRepository
metadata:
  name: {app.name}
spec:
  interval: 15m
  layerSelector:
    mediaType: application/vnd.cncf.helm.chart.content.v1.tar+gzip
    operation: copy
  ref:
    tag: 4.3.0
  url: oci://ghcr.io/bjw-s-labs/helm/app-template
"""


def _app_config(app: App) -> str:
    return f"""\
# {app.name} settings (substituted by Flux: ${{APP}}, ${{CLUSTER_DOMAIN}})
server:
  name: ${{APP}}
  url: https://${{APP}}.${{CLUSTER_DOMAIN}}
  port: {8000 + app.index}
  timezone: ${{TIMEZONE}}
logging:
  level: info
  format: json
"""


def _app_kustomization(app: App) -> str:
    lines = [
        "resources:",
        "  - ./ocirepository.yaml",
        "  - ./helmrelease.yaml",
        "configMapGenerator:",
        f"  - name: {app.name}-config",
        "    files:",
        "      - config.yaml=./resources/config.yaml",
        "generatorOptions:",
        "  disableNameSuffixHash: true",
        "labels:",
        "  - pairs:",
        f"      app.kubernetes.io/part-of: {app.name}",
    ]
    components = [c for c, used in (("common", app.component), ("postgres", app.database)) if used]
    if components:
        lines += ["components:", *(f"  - ../../../../components/{c}" for c in components)]
    return _kustomization(lines)


def _write(root: Path, relative: str, text: str) -> None:
    path = root / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def generate(root: Path, count: int) -> list[str]:
    """Write the repository and commit it; return every Flux Kustomization path (relative)."""
    apps = _apps(count)
    _write(root, "kubernetes/flux/cluster/ks.yaml", ROOTS)
    _write(
        root,
        "kubernetes/flux/meta/kustomization.yaml",
        _kustomization(["namespace: flux-system", "resources:", "  - ../vars"]),
    )
    _write(
        root, "kubernetes/flux/vars/kustomization.yaml", _kustomization(["resources:", "  - ./cluster-settings.yaml"])
    )
    _write(root, "kubernetes/flux/vars/cluster-settings.yaml", CLUSTER_SETTINGS)
    _write(root, "kubernetes/components/common/kustomization.yaml", COMPONENT_KUSTOMIZATION)
    for name, text in COMPONENT_FILES.items():
        _write(root, f"kubernetes/components/common/{name}", text)
    _write(root, "kubernetes/components/postgres/kustomization.yaml", POSTGRES_COMPONENT)
    _write(root, "kubernetes/components/postgres/ks.yaml", POSTGRES_KS)
    for name, text in POSTGRES_CLUSTER.items():
        _write(root, f"kubernetes/components/postgres/cluster/{name}", text)
    _write(
        root,
        "kubernetes/apps/kustomization.yaml",
        _kustomization(["resources:", *(f"  - ./{ns}" for ns in NAMESPACES)]),
    )
    for namespace in NAMESPACES:
        members = [a for a in apps if a.namespace == namespace]
        _write(
            root,
            f"kubernetes/apps/{namespace}/namespace.yaml",
            f"---\napiVersion: v1\nkind: Namespace\nmetadata:\n  name: {namespace}\n"
            "  annotations:\n    kustomize.toolkit.fluxcd.io/prune: disabled\n",
        )
        _write(
            root,
            f"kubernetes/apps/{namespace}/kustomization.yaml",
            _kustomization(
                [
                    f"namespace: {namespace}",
                    "resources:",
                    "  - ./namespace.yaml",
                    "  - ../../flux/vars",
                    *(f"  - ./{a.name}/ks.yaml" for a in members),
                ]
            ),
        )
    for app in apps:
        _write(root, f"{app.directory}/ks.yaml", _ks_yaml(app))
        _write(root, f"{app.directory}/app/kustomization.yaml", _app_kustomization(app))
        _write(root, f"{app.directory}/app/helmrelease.yaml", _helmrelease(app))
        _write(root, f"{app.directory}/app/ocirepository.yaml", _ocirepository(app))
        _write(root, f"{app.directory}/app/resources/config.yaml", _app_config(app))
    identity = ["-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
    for command in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "generated"]):
        subprocess.run(["git", *identity, *command], cwd=root, check=True, capture_output=True)
    databases = ["kubernetes/components/postgres/cluster" for a in apps if a.database]
    return ["kubernetes/flux/meta", "kubernetes/apps", *(f"{a.directory}/app" for a in apps), *databases]


# --- measuring ----------------------------------------------------------------------------------


def _phoebe() -> list[str]:
    script = Path(sys.executable).parent / "phoebe"
    return [str(script)] if script.exists() else [sys.executable, "-m", "phoebe_cli"]


def _timed(
    label: str, action: Callable[[], None], runs: int, *, warmup: int = 1, before: Callable[[], None] | None = None
) -> Timing:
    """Wall time of ``action``; ``before`` runs untimed ahead of each run (warm-ups included)."""
    samples = []
    for index in range(warmup + runs):
        if before is not None:
            before()
        started = time.perf_counter()
        action()
        elapsed = time.perf_counter() - started
        if index >= warmup:
            samples.append(elapsed)
    return Timing(label, tuple(samples))


def _runner(
    argv: list[str], env: dict[str, str], ok_codes: tuple[int, ...] = (0, 1), cwd: Path | None = None
) -> Callable[[], None]:
    def run() -> None:
        done = subprocess.run(argv, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env, check=False, cwd=cwd)
        if done.returncode not in ok_codes:
            raise RuntimeError(f"{' '.join(argv[:3])}: exit {done.returncode}: {done.stderr.decode()[-500:]}")

    return run


def _floor(kustomize: Path, root: Path, paths: list[str]) -> Callable[[], None]:
    def build(path: str) -> None:
        subprocess.run(
            [str(kustomize), "build", str(root / path), "--load-restrictor", "LoadRestrictionsNone"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            check=True,
        )

    def run() -> None:
        with ThreadPoolExecutor(2) as pool:
            list(pool.map(build, paths))

    return run


def _report(argv: list[str], env: dict[str, str], cwd: Path | None = None) -> dict[str, Any]:
    done = subprocess.run(argv, capture_output=True, text=True, env=env, check=False, cwd=cwd)
    try:
        document: dict[str, Any] = json.loads(done.stdout)
    except json.JSONDecodeError:
        print(f"(phoebe validate -o json printed no JSON, exit {done.returncode}: {done.stderr[-500:]})")
        return {}
    return document


def _verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def _check(validate: list[str], env: dict[str, str], apps: int) -> None:
    """Print phoebe's summary of the generated repository, and its errors if it finds any."""
    summary = subprocess.run(validate, capture_output=True, text=True, env=env, check=False)
    lines = [line for line in (summary.stdout + summary.stderr).splitlines() if line.strip()]
    print(f"\nphoebe validate on the generated repository ({apps} apps): {lines[-1] if lines else '?'}")
    if summary.returncode == 0:
        return
    report = _report([*validate, "-o", "json"], env)
    errors = [f for f in report.get("findings") or [] if f.get("severity") == "error"]
    print(f"  exit {summary.returncode}, {len(errors)} errors (a bug in the generator or in phoebe):")
    for finding in errors[:20]:
        print(f"    {finding.get('code')}: {finding.get('message')} ({finding.get('file')})")
    if not errors:
        print("\n".join(f"    {line}" for line in lines[-20:]))


def _baseline_runner(ref: str, scratch: Path) -> tuple[list[str], dict[str, str], Path]:
    """phoebe at an older commit: a detached worktree of this repository, run from its directory."""
    repo = Path(__file__).resolve().parent.parent
    tree = scratch / "baseline"
    subprocess.run(
        ["git", "worktree", "add", "--detach", "-f", str(tree), ref], cwd=repo, check=True, capture_output=True
    )
    env = dict(os.environ, PYTHONPATH=str(tree))
    return [sys.executable, "-m", "phoebe_cli"], env, tree


def _drop_baseline(tree: Path) -> None:
    repo = Path(__file__).resolve().parent.parent
    subprocess.run(["git", "worktree", "remove", "--force", str(tree)], cwd=repo, check=False, capture_output=True)


def _measure(args: argparse.Namespace, kustomize: Path, root: Path, cache: Path) -> None:
    paths = generate(root, args.apps)
    env = dict(os.environ, PHOEBE_KUSTOMIZE=str(kustomize), XDG_CACHE_HOME=str(cache))
    phoebe = _phoebe()
    validate = [*phoebe, "validate", str(root)]
    status = [*phoebe, "status", "--repo", str(root), "-o", "json"]

    def empty_cache() -> None:
        shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir()

    empty_cache()
    kustomize_runs = {"cold": _report([*validate, "-o", "json"], env).get("kustomizeRuns", "?")}
    kustomize_runs["warm"] = _report([*validate, "-o", "json"], env).get("kustomizeRuns", "?")
    _check(validate, env, args.apps)

    changed = root / f"{_apps(args.apps)[-1].directory}/app/helmrelease.yaml"
    original = changed.read_text()
    edits = itertools.count()

    def change_one_app() -> None:
        changed.write_text(original + f'    benchEdit: "{next(edits)}"\n')

    try:
        floor = _timed(
            f"floor: kustomize build x{len(paths)}, 2 in parallel", _floor(kustomize, root, paths), args.runs
        )
        cold = _timed("phoebe validate, cold (cache emptied)", _runner(validate, env), args.runs, before=empty_cache)
        baseline = None
        if args.baseline:
            command, baseline_env, tree = _baseline_runner(args.baseline, cache.parent)
            try:
                baseline_env.update(PHOEBE_KUSTOMIZE=str(kustomize), XDG_CACHE_HOME=str(cache))
                baseline_validate = _runner([*command, "validate", str(root)], baseline_env, cwd=tree)
                baseline = _timed(
                    f"phoebe {args.baseline} validate, cold", baseline_validate, args.runs, before=empty_cache
                )
                empty_cache()
                baseline_runs = _report([*command, "validate", str(root), "-o", "json"], baseline_env, cwd=tree)
                kustomize_runs[f"cold at {args.baseline}"] = baseline_runs.get("kustomizeRuns", "?")
            finally:
                _drop_baseline(tree)
        warm = time_command("phoebe validate, warm", validate, runs=args.runs, warmup=1, env=env, ok_codes=(0, 1))
        one = _timed("phoebe validate, one app changed", _runner(validate, env), args.runs, before=change_one_app)
        change_one_app()
        kustomize_runs["one app changed"] = _report([*validate, "-o", "json"], env).get("kustomizeRuns", "?")
    finally:
        changed.write_text(original)
    status_cold = _timed("phoebe status --repo -o json, cold", _runner(status, env), args.runs, before=empty_cache)
    status_warm = time_command(
        "phoebe status --repo -o json, warm", status, runs=args.runs, warmup=1, env=env, ok_codes=(0, 1)
    )
    print_table(
        f"phoebe's repo model, {args.apps} apps, {len(paths)} Flux Kustomizations",
        [floor, cold, *([baseline] if baseline else []), warm, one, status_cold, status_warm],
        reference=floor,
    )
    print(
        f"\nkustomize runs by phoebe validate ({len(paths)} Flux Kustomizations): "
        + ", ".join(f"{label} {runs}" for label, runs in kustomize_runs.items())
    )
    ratio = cold.median / floor.median
    if baseline is not None:
        against = cold.median / baseline.median
        print(
            f"goal: cold at most {GOAL_VS_BASELINE}x the cold time at {args.baseline}: {against:.2f}x "
            f"({_verdict(against <= GOAL_VS_BASELINE)})"
        )
    status_ratio = status_cold.median / floor.median
    print(
        f"goal: cold within {GOAL_COLD_RATIO:.0f}x of the floor: validate {ratio:.2f}x "
        f"({_verdict(ratio <= GOAL_COLD_RATIO)}), status --repo {status_ratio:.2f}x "
        f"({_verdict(status_ratio <= GOAL_COLD_RATIO)}); warm under {GOAL_WARM_SECONDS} s: "
        f"validate {warm.median:.2f} s ({_verdict(warm.median < GOAL_WARM_SECONDS)}), "
        f"status --repo {status_warm.median:.2f} s ({_verdict(status_warm.median < GOAL_WARM_SECONDS)})"
    )


def _generate_missing(root: Path, paths: list[str]) -> None:
    from phoebe_cli.repo.generator import flux_kustomization
    from phoebe_cli.repo.yamlio import dump_documents

    for path in paths:
        directory = root / path
        if not any((directory / n).is_file() for n in ("kustomization.yaml", "kustomization.yml", "Kustomization")):
            generated, _ = flux_kustomization(directory, {"path": path})
            (directory / "kustomization.yaml").write_text(dump_documents([generated]))


def _measure_sample(args: argparse.Namespace, kustomize: Path, root: Path, cache: Path) -> None:
    """The same on the test suite's sample repository (a copy, committed to a fresh Git repository)."""
    from tests.cluster.flux import SAMPLE_REPO

    shutil.copytree(SAMPLE_REPO, root)
    git = ["git", "-c", "user.name=bench", "-c", "user.email=bench@example.invalid"]
    for command in (["init", "-q", "-b", "main"], ["add", "-A"], ["commit", "-q", "-m", "sample"]):
        subprocess.run([*git, *command], cwd=root, check=True, capture_output=True)
    env = dict(os.environ, PHOEBE_KUSTOMIZE=str(kustomize), XDG_CACHE_HOME=str(cache))
    phoebe = _phoebe()
    status = [*phoebe, "status", "--repo", str(root), "-o", "json"]
    document = json.loads(subprocess.run(status, capture_output=True, text=True, env=env, check=False).stdout)
    every_path = sorted(
        {
            str(o["revision"]).lstrip("./") or "."
            for o in document["objects"]
            if o["kind"] == "Kustomization" and o.get("revision")
        }
    )
    # kustomize alone cannot build a directory without a kustomization file (Flux generates one):
    # the floor builds a copy in which those directories get the file Flux would generate (written
    # before timing, so the floor does no more than kustomize's own work).
    floor_root = root.parent / "sample-floor"
    shutil.copytree(root, floor_root, ignore=shutil.ignore_patterns(".git"))
    _generate_missing(floor_root, every_path)
    paths = every_path

    def empty_cache() -> None:
        shutil.rmtree(cache, ignore_errors=True)
        cache.mkdir()

    empty_cache()
    runs = {
        "cold": _report([*phoebe, "validate", str(root), "-o", "json"], env).get("kustomizeRuns", "?"),
        "warm": _report([*phoebe, "validate", str(root), "-o", "json"], env).get("kustomizeRuns", "?"),
    }
    floor = _timed(
        f"floor: kustomize build x{len(paths)}, 2 in parallel", _floor(kustomize, floor_root, paths), args.runs
    )
    cold = _timed("phoebe status --repo -o json, cold", _runner(status, env), args.runs, before=empty_cache)
    warm = time_command(
        "phoebe status --repo -o json, warm", status, runs=args.runs, warmup=1, env=env, ok_codes=(0, 1)
    )
    validate_warm = time_command(
        "phoebe validate, warm", [*phoebe, "validate", str(root)], runs=args.runs, warmup=1, env=env, ok_codes=(0, 1)
    )
    print_table(
        f"the sample repository (tests/fixtures/gitops), {len(paths)} Flux Kustomization paths",
        [floor, cold, warm, validate_warm],
        reference=floor,
    )
    print("kustomize runs by phoebe validate: " + ", ".join(f"{label} {n}" for label, n in runs.items()))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--apps", type=int, default=100)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--baseline", metavar="REF", help="also time phoebe at this commit, cold, in the same run")
    args = parser.parse_args(argv)

    from tests.cluster.build import ensure_program, kustomize_program

    kustomize = ensure_program(kustomize_program())
    byte_compile(Path(__file__).resolve().parent.parent)
    with tempfile.TemporaryDirectory(prefix="phoebe-bench-repo-") as scratch:
        _measure_sample(args, kustomize, Path(scratch) / "sample", Path(scratch) / "sample-cache")
        root = Path(scratch) / "home-ops"
        root.mkdir()
        _measure(args, kustomize, root, Path(scratch) / "cache")
    return 0


if __name__ == "__main__":
    sys.exit(main())
