"""A small synchronous admin client for test set-up: create objects, write status, make tokens.

Tests use it to arrange the cluster and to look at what phoebe changed. It talks to the real
API server over HTTP; it is not phoebe's client and shares no code with it on purpose.
"""

from __future__ import annotations

import ssl
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import httpx
import yaml

Obj = dict[str, Any]


class ApiError(RuntimeError):
    def __init__(self, response: httpx.Response) -> None:
        self.status_code = response.status_code
        try:
            body = response.json()
            self.reason = body.get("reason")
            message = body.get("message", response.text)
        except ValueError:
            self.reason = None
            message = response.text
        super().__init__(f"{response.request.method} {response.request.url.path}: {response.status_code} {message}")


class Api:
    def __init__(self, server: str, token: str, ca_file: Path | str) -> None:
        self.server = server
        self.token = token
        self.ca_file = str(ca_file)
        self.http = httpx.Client(
            base_url=server,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/json"},
            verify=ssl.create_default_context(cafile=str(ca_file)),
            timeout=30,
        )
        self._resources: dict[tuple[str, str], tuple[str, bool]] = {}

    def close(self) -> None:
        self.http.close()

    def with_token(self, token: str) -> Api:
        return Api(self.server, token, self.ca_file)

    # --- paths -----------------------------------------------------------------------------
    def _resource(self, api_version: str, kind: str) -> tuple[str, bool]:
        key = (api_version, kind)
        if key not in self._resources:
            base = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
            for resource in self._call("GET", base).json().get("resources", []):
                if "/" not in resource["name"]:
                    self._resources[(api_version, resource["kind"])] = (
                        resource["name"],
                        resource["namespaced"],
                    )
            if key not in self._resources:
                raise KeyError(f"{kind} is not served in {api_version}")
        return self._resources[key]

    def path(self, api_version: str, kind: str, namespace: str | None = None, name: str | None = None) -> str:
        plural, namespaced = self._resource(api_version, kind)
        base = f"/apis/{api_version}" if "/" in api_version else f"/api/{api_version}"
        if namespaced and namespace:
            base += f"/namespaces/{namespace}"
        path = f"{base}/{plural}"
        return f"{path}/{name}" if name else path

    def path_of(self, obj: Mapping[str, Any]) -> str:
        meta = obj["metadata"]
        return self.path(obj["apiVersion"], obj["kind"], meta.get("namespace"), meta["name"])

    # --- requests --------------------------------------------------------------------------
    def _call(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        response = self.http.request(method, path, **kwargs)
        if response.status_code >= 400:
            raise ApiError(response)
        return response

    def get(self, api_version: str, kind: str, namespace: str | None, name: str) -> Obj:
        return dict(self._call("GET", self.path(api_version, kind, namespace, name)).json())

    def get_or_none(self, api_version: str, kind: str, namespace: str | None, name: str) -> Obj | None:
        try:
            return self.get(api_version, kind, namespace, name)
        except ApiError as error:
            if error.status_code == 404:
                return None
            raise

    def list(self, api_version: str, kind: str, namespace: str | None = None, **params: str) -> list[Obj]:
        return list(self._call("GET", self.path(api_version, kind, namespace), params=params).json()["items"])

    def create(self, obj: Obj) -> Obj:
        meta = obj["metadata"]
        path = self.path(obj["apiVersion"], obj["kind"], meta.get("namespace"))
        return dict(self._call("POST", path, json=obj).json())

    def apply(self, obj: Obj, manager: str = "phoebe-tests") -> Obj:
        """Server-side apply (create or update), forcing conflicts."""
        return dict(
            self._call(
                "PATCH",
                self.path_of(obj),
                params={"fieldManager": manager, "force": "true"},
                content=yaml.safe_dump(obj).encode(),
                headers={"Content-Type": "application/apply-patch+yaml"},
            ).json()
        )

    def merge_patch(
        self,
        obj_or_path: Mapping[str, Any] | str,
        patch: Obj,
        *,
        subresource: str | None = None,
        manager: str = "phoebe-tests",
    ) -> Obj:
        path = obj_or_path if isinstance(obj_or_path, str) else self.path_of(obj_or_path)
        if subresource:
            path = f"{path}/{subresource}"
        return dict(
            self._call(
                "PATCH",
                path,
                params={"fieldManager": manager},
                json=patch,
                headers={"Content-Type": "application/merge-patch+json"},
            ).json()
        )

    def patch_status(self, obj: Mapping[str, Any], status: Obj, manager: str = "phoebe-tests") -> Obj:
        return self.merge_patch(obj, {"status": status}, subresource="status", manager=manager)

    def delete(self, obj: Mapping[str, Any]) -> None:
        try:
            self._call("DELETE", self.path_of(obj))
        except ApiError as error:
            if error.status_code != 404:
                raise

    # --- conveniences ----------------------------------------------------------------------
    def ensure_namespace(self, name: str, labels: Mapping[str, str] | None = None) -> None:
        obj: Obj = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}
        if labels:
            obj["metadata"]["labels"] = dict(labels)
        self.apply(obj)

    def apply_all(self, objects: Iterable[Obj]) -> None:
        for obj in objects:
            self.apply(obj)

    def service_account_token(self, namespace: str, name: str, seconds: int = 3600) -> str:
        """A token for a ServiceAccount from the TokenRequest API (created if missing)."""
        self.apply({"apiVersion": "v1", "kind": "ServiceAccount", "metadata": {"name": name, "namespace": namespace}})
        request = {
            "apiVersion": "authentication.k8s.io/v1",
            "kind": "TokenRequest",
            "spec": {"expirationSeconds": seconds},
        }
        answer = self._call("POST", f"/api/v1/namespaces/{namespace}/serviceaccounts/{name}/token", json=request).json()
        return str(answer["status"]["token"])

    def wait_established(self, crd_names: Iterable[str], timeout: float = 60) -> None:
        pending = set(crd_names)
        deadline = time.monotonic() + timeout
        while pending and time.monotonic() < deadline:
            for name in sorted(pending):
                crd = self.get("apiextensions.k8s.io/v1", "CustomResourceDefinition", None, name)
                conditions = {c["type"]: c["status"] for c in (crd.get("status") or {}).get("conditions") or []}
                if conditions.get("Established") == "True":
                    pending.discard(name)
            if pending:
                time.sleep(0.1)
        if pending:
            raise TimeoutError(f"CRDs not Established after {timeout}s: {sorted(pending)}")
        self._resources.clear()
