"""The network between a function and an RDS instance endpoint: DNS names, the port, TLS required.

A function configured as the program configures it (``DB_HOST`` the instance's endpoint address,
``DB_PORT`` the engine's port, ``DB_SSLMODE=require``) connects to a DNS name, not to an address.
With real servers behind the emulator (``Emulator(postgres=...)``) every server listens on
127.0.0.1 on a port of its own, so while :meth:`RdsNetwork.installed` is active a TCP connection to an
instance endpoint name reaches the server as AWS's network would:

* **DNS.** An endpoint is ``<identifier>.<hash>.<region>.rds.amazonaws.com``
  (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ConnectToInstance.html). The name
  belongs to the identifier, not to the instance: it resolves to whichever instance bears the
  identifier now, not while it is ``renaming``, and not in a dark region
  (:meth:`~automation.emulator.aws.Emulator.resolve_instance`; a rename's "old DNS name ... is
  immediately deleted", https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_RenameInstance.html).
  A name that does not resolve fails as ``getaddrinfo`` fails (``socket.gaierror``).
* **The port.** The instance listens on its configured port (5432 for PostgreSQL, the program's
  ``DB_PORT``); the connection is carried to the real server's own port. Another port is refused.
* **TLS, required.** The program's parameter groups set ``rds.force_ssl`` to 1: "connections are
  required to use SSL/TLS", and a client that does not ask for it is refused with
  ``no pg_hba.conf entry for host ..., SSL off``
  (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/PostgreSQL.Concepts.General.SSL.html,
  "Requiring an SSL connection to a PostgreSQL DB instance"). The embedded servers are built without
  OpenSSL, so the endpoint terminates TLS itself: it answers the client's ``SSLRequest`` with ``S``,
  completes the handshake with a certificate for the endpoint name (subject alternative name, as
  RDS's server certificates name the endpoint), issued by the emulator's own CA, and carries
  the decrypted PostgreSQL protocol to the server (https://www.postgresql.org/docs/18/protocol-flow.html#PROTOCOL-FLOW-SSL).
  The CA's certificate is :attr:`RdsNetwork.ca_file`: the test's stand-in for AWS's
  ``global-bundle.pem``, so a client with ``sslmode=verify-full`` verifies the chain and the host
  name for real (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/UsingWithRDS.SSL.html).

Only names under ``rds.amazonaws.com`` are intercepted; every other connection (moto, the
harness's own sessions to 127.0.0.1) is untouched.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import select
import socket
import ssl
import struct
import tempfile
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from automation.emulator.aws import Emulator

ENDPOINT_HASH = "c9akciq32"
"""The account-and-region label AWS puts between the identifier and the region: a single DNS label,
as in an endpoint ``<identifier>.<hash>.<region>.rds.amazonaws.com``
(https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/USER_ConnectToInstance.html)."""

POSTGRES_PORT = 5432
"""The port an RDS for PostgreSQL instance listens on as the program creates it (components/data.py)."""

SSL_REQUEST = 80877103
GSSENC_REQUEST = 80877104
"""Protocol codes of the first message (https://www.postgresql.org/docs/18/protocol-message-formats.html)."""

_NAME = re.compile(r"^(?P<identifier>[a-z][a-z0-9-]*)\.[^.]+(?:\.[^.]+)?\.(?P<region>[a-z]{2}(?:-[a-z]+)+-\d+)\.rds\.amazonaws\.com\.?$")  # fmt: skip


def instance_endpoint(identifier: str, region: str) -> str:
    """The DNS name of DB instance ``identifier``'s endpoint in ``region``."""
    return f"{identifier.lower()}.{ENDPOINT_HASH}.{region}.rds.amazonaws.com"


def parse_endpoint(host: str) -> tuple[str, str] | None:
    """``(identifier, region)`` of an instance endpoint name; None for any other host."""
    match = _NAME.match(host.lower())
    return (match.group("identifier"), match.group("region")) if match else None


def _error_response(sqlstate: str, message: str) -> bytes:
    """A FATAL ErrorResponse message, as the server sends it before closing."""
    fields = b"".join(
        code + text.encode() + b"\0"
        for code, text in ((b"S", "FATAL"), (b"V", "FATAL"), (b"C", sqlstate), (b"M", message))
    )
    body = fields + b"\0"
    return b"E" + struct.pack("!I", len(body) + 4) + body


def _recv_exactly(sock: socket.socket, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = sock.recv(n - len(data))
        if not chunk:
            raise ConnectionError("the client closed the connection")
        data += chunk
    return data


class RdsNetwork:
    """Routes connections to instance endpoint names onto the emulator's real servers, TLS required."""

    def __init__(self, emulator: Emulator) -> None:
        self.emulator = emulator
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._authority: _Authority | None = None
        self._lock = threading.Lock()
        self.refused_plaintext = 0
        """Connections refused because the client did not ask for TLS (``rds.force_ssl``)."""
        self.reached: list[str] = []
        """The instance ARN each successful connection reached, in order (the caller may clear it)."""

    # -- TLS ---------------------------------------------------------------------------------------

    def _ca(self) -> _Authority:
        with self._lock:
            if self._authority is None:
                self._authority = _Authority()
            return self._authority

    @property
    def ca_file(self) -> str:
        """The PEM file of the CA that issues every endpoint's certificate (``DB_SSLROOTCERT``)."""
        return str(self._ca().ca_file)

    def _server_context(self, name: str) -> ssl.SSLContext:
        authority = self._ca()
        with self._lock:
            if name not in self._contexts:
                self._contexts[name] = authority.server_context(name)
            return self._contexts[name]

    # -- the socket hook ---------------------------------------------------------------------------

    @contextlib.contextmanager
    def installed(self) -> Iterator[RdsNetwork]:
        """While active, ``socket.create_connection`` to an endpoint name goes through this network."""
        original = socket.create_connection

        def create_connection(address: Any, timeout: Any = socket._GLOBAL_DEFAULT_TIMEOUT, *args: Any, **kwargs: Any) -> socket.socket:  # type: ignore[attr-defined]  # fmt: skip
            host, port = address[0], address[1]
            parsed = parse_endpoint(str(host)) if isinstance(host, str) else None
            if parsed is None:
                return original(address, timeout, *args, **kwargs)
            return self.connect(parsed, int(port), timeout, original)

        socket.create_connection = create_connection  # type: ignore[assignment]
        try:
            yield self
        finally:
            socket.create_connection = original  # type: ignore[assignment]

    def connect(
        self,
        parsed: tuple[str, str],
        port: int,
        timeout: Any,
        original: Callable[..., socket.socket],
    ) -> socket.socket:
        """The client's end of a connection to instance ``parsed`` (identifier, region) on ``port``."""
        identifier, region = parsed
        resolved = self.emulator.resolve_instance(region, identifier)
        if resolved is None:
            raise socket.gaierror(socket.EAI_NONAME, f"{identifier} in {region}: Name or service not known")
        address, server_port, arn = resolved
        if port != POSTGRES_PORT:
            raise ConnectionRefusedError(f"{identifier}: nothing listens on port {port}")
        upstream = original((address, server_port), timeout)
        client, ours = socket.socketpair()
        if timeout is not socket._GLOBAL_DEFAULT_TIMEOUT:  # type: ignore[attr-defined]
            client.settimeout(timeout)
        self.reached.append(arn)
        name = f"{identifier}.{ENDPOINT_HASH}.{region}.rds.amazonaws.com"
        threading.Thread(target=self._carry, args=(ours, upstream, name), daemon=True).start()
        return client

    def _carry(self, ours: socket.socket, upstream: socket.socket, name: str) -> None:
        """The endpoint's side: require TLS, then carry bytes both ways until either side closes."""
        tls: ssl.SSLSocket | None = None
        try:
            ours.settimeout(30)
            while True:
                head = _recv_exactly(ours, 8)
                length, code = struct.unpack("!II", head)
                if length == 8 and code == GSSENC_REQUEST:
                    ours.sendall(b"N")  # no GSSAPI encryption; the client may ask for TLS next
                    continue
                if length == 8 and code == SSL_REQUEST:
                    ours.sendall(b"S")
                    tls = self._server_context(name).wrap_socket(ours, server_side=True)
                    break
                # A startup message in the clear: rds.force_ssl refuses it, once it is read whole
                # (closing on unread input would reset the connection before the client reads why).
                _recv_exactly(ours, max(0, length - 8))
                self.refused_plaintext += 1
                ours.sendall(
                    _error_response(
                        "28000",
                        f'no pg_hba.conf entry for host "{name}", SSL off (rds.force_ssl is 1)',
                    )
                )
                return
            tls.settimeout(None)
            upstream.settimeout(None)
            _pump(tls, upstream)
        except (OSError, ssl.SSLError, ConnectionError):
            pass
        finally:
            for s in (tls, ours, upstream):
                if s is not None:
                    with contextlib.suppress(OSError):
                        s.close()


def _pump(tls: ssl.SSLSocket, upstream: socket.socket) -> None:
    """Carry bytes both ways on one thread (an SSL object must not be used by two threads at once)."""
    while True:
        ready, _, _ = select.select([tls, upstream], [], [], 60)
        if not ready:
            return
        if tls in ready:
            data = tls.recv(65536)
            if not data:
                return
            upstream.sendall(data)
            while tls.pending():
                upstream.sendall(tls.recv(tls.pending()))
        if upstream in ready:
            data = upstream.recv(65536)
            if not data:
                return
            tls.sendall(data)


class _Authority:
    """The emulator's certificate authority: one self-signed CA, and a certificate per endpoint name."""

    def __init__(self) -> None:
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        self._key = ec.generate_private_key(ec.SECP256R1())
        self._name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "pilotlight emulator RDS CA")])
        now = dt.datetime.now(dt.UTC)
        self._cert = (
            x509.CertificateBuilder()
            .subject_name(self._name)
            .issuer_name(self._name)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
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
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False)
            .sign(self._key, hashes.SHA256())
        )
        self._scratch = tempfile.TemporaryDirectory(prefix="pilotlight-rds-ca-")
        self.ca_file = Path(self._scratch.name, "emulator-rds-ca.pem")
        self.ca_file.write_bytes(self._cert.public_bytes(serialization.Encoding.PEM))

    def server_context(self, name: str) -> ssl.SSLContext:
        """A server TLS context with a certificate for ``name`` (in the SAN), issued by this CA."""
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

        key = ec.generate_private_key(ec.SECP256R1())
        now = dt.datetime.now(dt.UTC)
        cert = (
            x509.CertificateBuilder()
            # A CN holds at most 64 characters (RFC 5280 ub-common-name) and endpoint names can be
            # longer; the host name is checked against the SAN, so a long name's CN is its first label.
            .subject_name(
                x509.Name(
                    [x509.NameAttribute(NameOID.COMMON_NAME, name if len(name) <= 64 else name.split(".")[0])]
                )
            )
            .issuer_name(self._name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(name)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        with tempfile.TemporaryDirectory() as scratch:
            cert_path, key_path = Path(scratch, "cert.pem"), Path(scratch, "key.pem")
            cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
            key_path.write_bytes(
                key.private_bytes(
                    serialization.Encoding.PEM,
                    serialization.PrivateFormat.PKCS8,
                    serialization.NoEncryption(),
                )
            )
            context.load_cert_chain(cert_path, key_path)
        return context
