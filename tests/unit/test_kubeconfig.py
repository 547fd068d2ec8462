from __future__ import annotations

import base64
import importlib.util
from pathlib import Path

import pytest
import yaml

from phoebe_cli.errors import KubeconfigError, UsageError
from phoebe_cli.kube.config import (
    Impersonation,
    ImpersonationFlags,
    NoCredentials,
    StaticCredentials,
    TokenFileCredentials,
    environment_proxy,
    header_key_escape,
    load_cluster_access,
    use_proxy,
)
from phoebe_cli.kube.kubeconfig import read_kubeconfig


def write(path: Path, doc: object) -> Path:
    path.write_text(yaml.safe_dump(doc))
    return path


def kubeconfig(context: str, server: str, user: dict, current: str | None = None) -> dict:
    doc = {
        "clusters": [{"name": context, "cluster": {"server": server}}],
        "users": [{"name": context, "user": user}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": context}}],
    }
    if current:
        doc["current-context"] = current
    return doc


def test_merge_first_file_wins_and_missing_files_are_skipped(tmp_path: Path) -> None:
    a = write(tmp_path / "a", kubeconfig("x", "https://a", {"token": "ta"}, current="x"))
    b = write(
        tmp_path / "b",
        kubeconfig("x", "https://b", {"token": "tb"}, current="y")
        | {
            "contexts": [
                {"name": "x", "context": {"cluster": "x", "user": "x"}},
                {"name": "y", "context": {"cluster": "x", "user": "x"}},
            ]
        },
    )
    merged = read_kubeconfig(f"{a}:{tmp_path / 'gone'}:{b}")
    assert merged.current_context == "x"
    assert merged.clusters["x"].value["server"] == "https://a"
    assert set(merged.contexts) == {"x", "y"}
    assert merged.files == [a, b]


def test_static_credentials(tmp_path: Path) -> None:
    path = write(tmp_path / "kc", kubeconfig("x", "https://h:6443/", {"token": "abc"}, current="x"))
    access = load_cluster_access(str(path), None)
    assert (access.server, access.context) == ("https://h:6443", "x")
    assert isinstance(access.credentials, StaticCredentials)
    assert access.authorization() == "Bearer abc"


def test_basic_auth_and_token_file(tmp_path: Path) -> None:
    path = write(tmp_path / "kc", kubeconfig("x", "https://h", {"username": "u", "password": "p"}, current="x"))
    assert load_cluster_access(str(path), None).authorization() == "Basic dTpw"
    (tmp_path / "tok").write_text("t1\n")
    path = write(tmp_path / "kc2", kubeconfig("x", "https://h", {"tokenFile": "tok"}, current="x"))
    access = load_cluster_access(str(path), None)
    assert isinstance(access.credentials, TokenFileCredentials)
    assert access.authorization() == "Bearer t1"
    (tmp_path / "tok").write_text("t2")
    assert access.reauthenticate()
    assert access.authorization() == "Bearer t2"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("a: [", "kubeconfig is not valid YAML (line 2)"),
        ("- just\n- a list\n", "kubeconfig is not a kubeconfig (expected a mapping)"),
        ("clusters: {}\n", "'clusters' must be a list"),
        ("clusters:\n- cluster: {server: x}\n", "every entry of 'clusters' needs a name"),
    ],
)
def test_malformed_files(tmp_path: Path, content: str, message: str) -> None:
    (tmp_path / "kc").write_text(content)
    with pytest.raises(KubeconfigError, match=r".*") as caught:
        load_cluster_access(str(tmp_path / "kc"), None)
    assert message in caught.value.message


def test_context_errors(tmp_path: Path) -> None:
    path = write(tmp_path / "kc", kubeconfig("x", "https://h", {"token": "t"}))
    with pytest.raises(KubeconfigError) as caught:
        load_cluster_access(str(path), None)
    assert caught.value.message == "no current context in the kubeconfig; choose one with --context (contexts: x)"
    with pytest.raises(KubeconfigError) as caught:
        load_cluster_access(str(path), "y")
    assert caught.value.message == "context 'y' not found in the kubeconfig (contexts: x)"


def test_a_directory_is_not_a_kubeconfig(tmp_path: Path) -> None:
    with pytest.raises(KubeconfigError) as caught:
        load_cluster_access(str(tmp_path), None)
    assert caught.value.message == f"kubeconfig is a directory, not a file: {tmp_path}"


def test_bad_base64(tmp_path: Path) -> None:
    doc = kubeconfig("x", "https://h", {"token": "t"}, current="x")
    doc["clusters"][0]["cluster"]["certificate-authority-data"] = "%%%"
    with pytest.raises(KubeconfigError) as caught:
        load_cluster_access(str(write(tmp_path / "kc", doc)), None)
    assert caught.value.message == "kubeconfig context 'x': certificate-authority-data is not valid base64"


def test_static_path_does_not_import_kubernetes(tmp_path: Path) -> None:
    import subprocess
    import sys

    path = write(tmp_path / "kc", kubeconfig("x", "https://h", {"token": "t"}, current="x"))
    code = (
        "import sys; from phoebe_cli.kube.config import load_cluster_access; "
        f"load_cluster_access({str(path)!r}, None); print('kubernetes' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"


# --- a context's user and cluster must exist --------------------------------------------------


def test_a_user_no_entry_defines_is_an_error_naming_the_file(tmp_path: Path) -> None:
    doc = kubeconfig("x", "https://h", {"token": "t"}, current="x")
    doc["contexts"][0]["context"]["user"] = "nobody"
    path = write(tmp_path / "kc", doc)
    with pytest.raises(KubeconfigError) as caught:
        load_cluster_access(str(path), None)
    assert (
        caught.value.message == f"kubeconfig context 'x' names user 'nobody', which {path} does not define (users: x)"
    )


def test_a_cluster_no_merged_file_defines_is_an_error_naming_the_files(tmp_path: Path) -> None:
    doc = kubeconfig("x", "https://h", {"token": "t"}, current="x")
    doc["contexts"][0]["context"]["cluster"] = "gone"
    a = write(tmp_path / "a", doc)
    b = write(tmp_path / "b", kubeconfig("y", "https://h", {"token": "t"}))
    with pytest.raises(KubeconfigError) as caught:
        load_cluster_access(f"{a}:{b}", None)
    assert caught.value.message == (
        f"kubeconfig context 'x' names cluster 'gone', which none of the kubeconfig files defines "
        f"({a}, {b}; clusters: x, y)"
    )


def test_a_context_that_names_no_user_is_anonymous(tmp_path: Path) -> None:
    doc = kubeconfig("x", "https://h", {"token": "t"}, current="x")
    del doc["contexts"][0]["context"]["user"]
    access = load_cluster_access(str(write(tmp_path / "kc", doc)), None)
    assert isinstance(access.credentials, NoCredentials)
    assert access.authorization() is None


# --- what client-go refuses, phoebe refuses --------------------------------------------------


@pytest.mark.parametrize(
    ("user", "cluster", "why"),
    [
        (
            {"token": "t", "username": "u", "password": "p"},
            {},
            "user 'x' ({path}): more than one authentication method (token, basic auth); only one is allowed",
        ),
        (
            {"client-certificate-data": "eA=="},
            {},
            "user 'x' ({path}): a client certificate needs client-key or client-key-data",
        ),
        (
            {"client-certificate": "/c", "client-certificate-data": "eA==", "client-key-data": "eA=="},
            {},
            "user 'x' ({path}): client-certificate and client-certificate-data are both set",
        ),
        (
            {"exec": {"command": "x"}, "auth-provider": {"name": "oidc"}},
            {},
            "user 'x' ({path}): exec and auth-provider cannot both be set",
        ),
        (
            {"token": "t", "as-groups": ["g"]},
            {},
            "user 'x' ({path}): as-uid, as-groups or as-user-extra need as (the user to impersonate)",
        ),
        ({"token": "t", "as": "a", "as-groups": "g"}, {}, "user 'x' ({path}): as-groups must be a list of strings"),
        (
            {"token": "t", "as": "a", "as-user-extra": {"k": "v"}},
            {},
            "user 'x' ({path}): as-user-extra must map names to lists of strings",
        ),
        (
            {"token": "t", "as": "a\nImpersonate-User: root"},
            {},
            "user 'x' ({path}): an impersonation value holds a line break or NUL",
        ),
        (
            {"token": "t"},
            {"certificate-authority": "/ca", "certificate-authority-data": "eA=="},
            "cluster 'x' ({path}): certificate-authority and certificate-authority-data are both set",
        ),
        (
            {"token": "t"},
            {"certificate-authority-data": "eA==", "insecure-skip-tls-verify": True},
            "cluster 'x' ({path}): a certificate authority and insecure-skip-tls-verify are both set",
        ),
        (
            {"token": "t"},
            {"disable-compression": "yes"},
            "cluster 'x' ({path}): disable-compression must be true or false",
        ),
        (
            {"token": "t"},
            {"proxy-url": "ftp://p"},
            "cluster 'x' ({path}): proxy-url 'ftp://p': unsupported scheme 'ftp', must be http, https or socks5",
        ),
        (
            {"token": "t"},
            {"proxy-url": "http://u:secret@p:notaport"},
            "cluster 'x' ({path}): proxy-url 'http://u:***@p:notaport': not a URL",
        ),
    ],
)
def test_refused_like_kubectl(tmp_path: Path, user: dict, cluster: dict, why: str) -> None:
    doc = kubeconfig("x", "https://h", user, current="x")
    doc["clusters"][0]["cluster"].update(cluster)
    path = write(tmp_path / "kc", doc)
    with pytest.raises(KubeconfigError) as caught:
        load_cluster_access(str(path), None)
    assert caught.value.message == "kubeconfig context 'x': " + why.format(path=path)
    assert "secret" not in caught.value.message


def test_token_file_wins_over_token_and_the_token_is_its_fallback(tmp_path: Path) -> None:
    (tmp_path / "tok").write_text("from-file\n")
    path = write(tmp_path / "kc", kubeconfig("x", "https://h", {"token": "inline", "tokenFile": "tok"}, current="x"))
    access = load_cluster_access(str(path), None)
    assert access.authorization() == "Bearer from-file"
    (tmp_path / "tok").unlink()
    assert access.reauthenticate()
    assert access.authorization() == "Bearer inline"


# --- impersonation -----------------------------------------------------------------------------


def test_impersonation_from_the_user_entry(tmp_path: Path) -> None:
    user = {
        "token": "t",
        "as": "jane",
        "as-uid": "42",
        "as-groups": ["a", "b"],
        "as-user-extra": {"example.com/scopes": ["r", "w"], "plain": ["x"]},
    }
    access = load_cluster_access(str(write(tmp_path / "kc", kubeconfig("x", "https://h", user, current="x"))), None)
    assert access.impersonate == Impersonation(
        "jane", "42", ("a", "b"), (("example.com/scopes", ("r", "w")), ("plain", ("x",)))
    )
    assert access.impersonate.headers() == [
        ("Impersonate-User", b"jane"),
        ("Impersonate-Uid", b"42"),
        ("Impersonate-Group", b"a"),
        ("Impersonate-Group", b"b"),
        ("Impersonate-Extra-example.com%2Fscopes", b"r"),
        ("Impersonate-Extra-example.com%2Fscopes", b"w"),
        ("Impersonate-Extra-plain", b"x"),
    ]


def test_no_impersonation_without_as(tmp_path: Path) -> None:
    path = write(tmp_path / "kc", kubeconfig("x", "https://h", {"token": "t"}, current="x"))
    assert load_cluster_access(str(path), None).impersonate is None


@pytest.mark.parametrize(
    ("key", "escaped"),
    [
        ("alphabetical", "alphabetical"),
        ("alph4num3r1c", "alph4num3r1c"),
        ("percent%20encoded", "percent%2520encoded"),
        ("almost%zzpercent%xxencoded", "almost%25zzpercent%25xxencoded"),
        ("example.com/percent%20encoded", "example.com%2Fpercent%2520encoded"),
        ("example.com/ᛒᚥ", "example.com%2F%E1%9B%92%E1%9A%A5"),
        ("a b:c", "a%20b%3Ac"),
        ("!#$&'*+-.^_`|~", "!#$&'*+-.^_`|~"),
    ],
)
def test_extra_keys_are_escaped_as_client_go_does(key: str, escaped: str) -> None:
    from urllib.parse import unquote

    assert header_key_escape(key) == escaped
    assert unquote(escaped) == key  # the server's url.PathUnescape gives the key back


def test_as_flags_replace_the_kubeconfigs_values(tmp_path: Path) -> None:
    user = {"token": "t", "as": "jane", "as-groups": ["a"], "as-user-extra": {"k": ["v"]}}
    path = str(write(tmp_path / "kc", kubeconfig("x", "https://h", user, current="x")))
    access = load_cluster_access(path, None, ImpersonationFlags(user="joe", groups=("b", "c")))
    assert access.impersonate == Impersonation("joe", None, ("b", "c"), (("k", ("v",)),))
    only_group = load_cluster_access(path, None, ImpersonationFlags(groups=("z",)))
    assert only_group.impersonate == Impersonation("jane", None, ("z",), (("k", ("v",)),))
    plain = str(write(tmp_path / "plain", kubeconfig("x", "https://h", {"token": "t"}, current="x")))
    with pytest.raises(KubeconfigError, match="need as"):
        load_cluster_access(plain, None, ImpersonationFlags(groups=("z",)))


# --- cluster entry -----------------------------------------------------------------------------


def test_cluster_entry_fields(tmp_path: Path) -> None:
    doc = kubeconfig("x", "https://h:6443", {"token": "t"}, current="x")
    doc["clusters"][0]["cluster"].update(
        {"tls-server-name": "api.internal", "disable-compression": True, "proxy-url": "http://u:pw@proxy:3128"}
    )
    access = load_cluster_access(str(write(tmp_path / "kc", doc)), None)
    assert access.tls_server_name == "api.internal"
    assert access.disable_compression
    assert access.proxy is not None
    assert access.proxy.url == "http://u:pw@proxy:3128"
    assert access.proxy.shown == "http://u:***@proxy:3128"
    assert access.proxy.source == "proxy-url of cluster 'x'"


def test_proxy_url_wins_over_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://env-proxy:1")
    doc = kubeconfig("x", "https://h", {"token": "t"}, current="x")
    path = write(tmp_path / "kc", doc)
    env = load_cluster_access(str(path), None).proxy
    assert env is not None
    assert (env.url, env.source) == ("http://env-proxy:1", "HTTPS_PROXY")
    doc["clusters"][0]["cluster"]["proxy-url"] = "http://kube-proxy:2"
    chosen = load_cluster_access(str(write(path, doc)), None).proxy
    assert chosen is not None
    assert chosen.url == "http://kube-proxy:2"


# Go's own cases (golang.org/x/net/http/httpproxy proxy_test.go: proxyForURLTests), with an
# https:// request where they ask for https.
@pytest.mark.parametrize(
    ("env", "server", "want"),
    [
        ({"HTTP_PROXY": "127.0.0.1:8080"}, "http://example.com", "http://127.0.0.1:8080"),
        ({"HTTP_PROXY": "cache.corp.example.com:1234"}, "http://example.com", "http://cache.corp.example.com:1234"),
        ({"HTTP_PROXY": "cache.corp.example.com"}, "http://example.com", "http://cache.corp.example.com"),
        ({"HTTP_PROXY": "localhost"}, "http://example.com", "http://localhost"),
        ({"HTTP_PROXY": "https://cache.corp.example.com"}, "http://example.com", "https://cache.corp.example.com"),
        (
            {"HTTP_PROXY": "http.proxy.tld", "HTTPS_PROXY": "secure.proxy.tld"},
            "http://insecure.tld/",
            "http://http.proxy.tld",
        ),
        (
            {"HTTP_PROXY": "http.proxy.tld", "HTTPS_PROXY": "secure.proxy.tld"},
            "https://secure.tld/",
            "http://secure.proxy.tld",
        ),
        (
            {"HTTP_PROXY": "http.proxy.tld", "HTTPS_PROXY": "https://secure.proxy.tld"},
            "https://secure.tld/",
            "https://secure.proxy.tld",
        ),
        ({"HTTP_PROXY": "http.proxy.tld"}, "https://secure.tld/", None),
        (
            {"HTTPS_PROXY": "https://secure.proxy.tld", "REQUEST_METHOD": "PUT"},
            "https://secure.tld/",
            "https://secure.proxy.tld",
        ),
        ({}, "http://example.com", None),
        ({"NO_PROXY": "example.com", "HTTP_PROXY": "proxy"}, "http://example.com/", None),
        ({"NO_PROXY": ".example.com", "HTTP_PROXY": "proxy"}, "http://example.com/", "http://proxy"),
        ({"NO_PROXY": "ample.com", "HTTP_PROXY": "proxy"}, "http://example.com/", "http://proxy"),
        ({"NO_PROXY": "example.com", "HTTP_PROXY": "proxy"}, "http://foo.example.com/", None),
        ({"NO_PROXY": ".foo.com", "HTTP_PROXY": "proxy"}, "http://example.com/", "http://proxy"),
        # upper case first (Go 1.26's net/http), lower case when upper is unset
        ({"HTTPS_PROXY": "upper:1", "https_proxy": "lower:1"}, "https://h", "http://upper:1"),
        ({"https_proxy": "lower:1", "no_proxy": "h"}, "https://h", None),
        ({"https_proxy": "socks5://s:1080"}, "https://h", "socks5://s:1080"),
    ],
)
def test_environment_proxy_as_go_decides(env: dict[str, str], server: str, want: str | None) -> None:
    if want and want.startswith("socks") and importlib.util.find_spec("socksio") is None:
        with pytest.raises(UsageError, match="socksio"):
            environment_proxy(server, env)
        return
    found = environment_proxy(server, env)
    assert (found.url if found else None) == want


def test_http_proxy_in_a_cgi_environment_is_refused() -> None:
    with pytest.raises(UsageError, match="REQUEST_METHOD"):
        environment_proxy("http://example.com", {"HTTP_PROXY": "proxy", "REQUEST_METHOD": "GET"})


def test_an_environment_proxy_of_an_unknown_kind_is_a_usage_error() -> None:
    with pytest.raises(UsageError) as caught:
        environment_proxy("https://example.com", {"HTTPS_PROXY": "foo://host"})
    assert caught.value.message == (
        "HTTPS_PROXY: 'foo://host': unsupported scheme 'foo', must be http, https, socks5 or socks5h"
    )


GO_NO_PROXY = (
    "foobar.com, .barbaz.net, *.wildcard.io, 192.168.1.1, 192.168.1.2:81, 192.168.1.3:80, 10.0.0.0/30, "
    "2001:db8::52:0:1, [2001:db8::52:0:2]:443, [2001:db8::52:0:3]:80, 2002:db8:a::45/64"
)


# Go's UseProxyTests (host, proxied), port 80, NO_PROXY above.
@pytest.mark.parametrize(
    ("host", "proxied"),
    [
        ("localhost", False),
        ("127.0.0.1", False),
        ("127.0.0.2", False),
        ("::1", False),
        ("::2", True),
        ("192.168.1.1", False),
        ("192.168.1.2", True),
        ("192.168.1.3", False),
        ("192.168.1.4", True),
        ("10.0.0.2", False),
        ("2001:db8::52:0:1", False),
        ("2001:db8::52:0:2", True),
        ("2001:db8::52:0:3", False),
        ("2002:db8:a::123", False),
        ("fe80::424b:c8be:1643:a1b6", True),
        ("barbaz.net", True),
        ("www.barbaz.net", False),
        ("foobar.com", False),
        ("www.foobar.com", False),
        ("foofoobar.com", True),
        ("baz.com", True),
        ("localhost.net", True),
        ("local.localhost", True),
        ("barbarbaz.net", True),
        ("wildcard.io", True),
        ("nested.wildcard.io", False),
        ("awildcard.io", True),
    ],
)
def test_no_proxy_matching_as_go(host: str, proxied: bool) -> None:
    assert use_proxy(host, "80", GO_NO_PROXY) is proxied
    assert use_proxy(host, "80", "*") is False


def test_an_invalid_no_proxy_entry_is_skipped() -> None:
    assert use_proxy("example.com", "80", ":1") is True


# --- secrets never shown -----------------------------------------------------------------------


def test_no_credential_in_any_repr(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = ["tok-SECRET-1", "pw-SECRET-2", "key-SECRET-3", "file-SECRET-4", "proxy-SECRET-5"]
    key_b64 = base64.b64encode(b"-----BEGIN PRIVATE KEY-----key-SECRET-3").decode()
    doc = kubeconfig("x", "https://h", {"token": "tok-SECRET-1"}, current="x")
    doc["clusters"][0]["cluster"]["proxy-url"] = "http://u:proxy-SECRET-5@p:3128"
    doc["users"] += [
        {"name": "basic", "user": {"username": "u", "password": "pw-SECRET-2"}},
        {"name": "cert", "user": {"client-certificate-data": "eA==", "client-key-data": key_b64}},
        {"name": "file", "user": {"tokenFile": "tok"}},
    ]
    doc["contexts"] += [{"name": n, "context": {"cluster": "x", "user": n}} for n in ("basic", "cert", "file")]
    (tmp_path / "tok").write_text("file-SECRET-4")
    path = str(write(tmp_path / "kc", doc))
    shown = [repr(read_kubeconfig(path))]
    for context in ("x", "basic", "cert", "file"):
        access = load_cluster_access(path, context)
        access.authorization()  # the token file is read now
        shown += [repr(access), str(access), repr(access.credentials), repr(access.proxy)]
    text = "\n".join(shown)
    for secret in secrets:
        assert secret not in text
    assert base64.b64encode(b"u:pw-SECRET-2").decode() not in text
    assert "http://u:***@p:3128" in text  # the proxy is still named


def test_kubernetes_credentials_repr_hides_the_token() -> None:
    from phoebe_cli.kube.config import KubernetesCredentials, _ClientConfiguration

    configuration = _ClientConfiguration()
    configuration.api_key = {"BearerToken": "exec-SECRET"}
    credentials = KubernetesCredentials(configuration, lambda: None)
    assert credentials.authorization() == "Bearer exec-SECRET"
    assert "exec-SECRET" not in repr(credentials) + repr(configuration)
