"""A private CA and certificates it signs, in memory (PEM), for servers on 127.0.0.1 that a test
reaches over TLS (a Helm repository with a private CA, one that asks for client certificates)."""

from __future__ import annotations

import datetime
from dataclasses import dataclass

__all__ = ["Issued", "PrivateCA"]


@dataclass(frozen=True)
class Issued:
    cert: str  # PEM
    key: str  # PEM (PKCS#8)


class PrivateCA:
    def __init__(self, name: str = "phoebe-test-ca") -> None:
        from cryptography.hazmat.primitives.asymmetric import ec

        self._key = ec.generate_private_key(ec.SECP256R1())
        self._name = _name(name)
        self.cert = self._sign(self._name, self._key.public_key(), ca=True, server_ip=None, client=False)

    def server(self, ip: str = "127.0.0.1") -> Issued:
        """A server certificate for ``ip`` (an IP SAN, as clients verify it)."""
        return self._issue("phoebe-test-server", server_ip=ip, client=False)

    def client(self, name: str = "phoebe-test-client") -> Issued:
        return self._issue(name, server_ip=None, client=True)

    def _issue(self, name: str, *, server_ip: str | None, client: bool) -> Issued:
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec

        key = ec.generate_private_key(ec.SECP256R1())
        cert = self._sign(_name(name), key.public_key(), ca=False, server_ip=server_ip, client=client)
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
        return Issued(cert, pem.decode())

    def _sign(self, subject, public_key, *, ca: bool, server_ip: str | None, client: bool) -> str:  # type: ignore[no-untyped-def]
        import ipaddress

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.x509.oid import ExtendedKeyUsageOID

        now = datetime.datetime.now(datetime.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(self._name)
            .public_key(public_key)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=ca, path_length=None), critical=True)
        )
        if ca:
            builder = builder.add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
        if server_ip is not None:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(server_ip))]), critical=False
            ).add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        if client:
            builder = builder.add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        return builder.sign(self._key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM).decode()


def _name(common_name: str):  # type: ignore[no-untyped-def]
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
