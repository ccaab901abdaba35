"""The TLS front of a mutual-TLS server: client certificates checked by the service, so a bad
one is refused UNAUTHENTICATED with an access record instead of failing the handshake.

Why: grpcio's Python server credentials either require *and* verify a client certificate in
the handshake (a missing, expired or foreign one fails there: the client sees UNAVAILABLE,
no call exists, nothing is recorded) or do not ask for one at all (docs/security.md).

How: with `--tls-client-ca` (and `--client-cert-check service`, the default) each server
process serves its public port itself, with pyOpenSSL on memory BIOs under asyncio. The
handshake asks for a client certificate and accepts it whatever it is: OpenSSL verifies the
presented chain against the client CA file (expiry against now, the client-auth purpose) and
the verify callback notes each failure and returns OK. ALPN selects `h2`. After the
handshake the connection's identity is fixed: the certificate's common name and SANs, or the
reason it proves nobody (no certificate, expired, not signed by a trusted CA, ...). The
plaintext then goes, byte for byte, to the process's own grpc.aio server on a private
loopback port, over a connection whose local port is recorded with that identity in the
process's `ConnectionTable`. The authentication interceptor looks the call's
`context.peer()` up there (never a header): a connection that is not in the table (someone
connecting to the private port directly) and one whose certificate failed are refused
UNAUTHENTICATED through `security.refuse`, so each such call leaves an access record.

Sessions are never resumed (no tickets, no session cache): every connection's certificate
is verified in its own full handshake. Certificates are reloaded as gRPC's were: the next
handshake after SIGHUP or a file change uses the new files (`TlsFiles.reloaded`).
"""

from __future__ import annotations

import asyncio
import socket
from dataclasses import dataclass
from typing import Any, cast

from cryptography import x509
from cryptography.x509.oid import NameOID
from OpenSSL import SSL, crypto

from .logs import log
from .security.tls import TlsFiles

PRIVATE_HOST = "127.0.0.1"
_PRIVATE_PEER = f"ipv4:{PRIVATE_HOST}:"  # how grpc names a peer of the private port
_READ = 65536


@dataclass(frozen=True, slots=True)
class ConnectionIdentity:
    """What a connection's client certificate proved: its names (`subjects`: the common name,
    then the SANs), or `refusal` (the UNAUTHENTICATED message) and `reason` (ErrorInfo)."""

    subjects: tuple[str, ...] = ()
    refusal: str = ""
    reason: str = ""


BYPASSED = ConnectionIdentity(
    refusal="this connection did not come through the server's TLS port: connect to its"
    " public address",
    reason="CONNECTION_NOT_VERIFIED",
)
"""The identity of a call on the private port over a connection the front did not open."""


class ConnectionTable:
    """{the front's local port of a connection to the private port -> its identity}, in
    process: an entry is added before the connection carries a byte and removed before it
    closes, so a port in the table is always the front's own connection."""

    def __init__(self) -> None:
        self._by_port: dict[int, ConnectionIdentity] = {}

    def add(self, port: int, identity: ConnectionIdentity) -> None:
        self._by_port[port] = identity

    def remove(self, port: int) -> None:
        self._by_port.pop(port, None)

    def __len__(self) -> int:
        return len(self._by_port)

    def identity(self, peer: str) -> ConnectionIdentity:
        """The identity of the connection a call came on (`context.peer()`, such as
        `ipv4:127.0.0.1:51234`); BYPASSED for one the front did not open."""
        if not peer.startswith(_PRIVATE_PEER):
            return BYPASSED
        try:
            port = int(peer[len(_PRIVATE_PEER) :])
        except ValueError:
            return BYPASSED
        return self._by_port.get(port, BYPASSED)


# -- the TLS context and what a certificate proves -------------------------------------------

_UNTRUSTED = {
    2,  # X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT
    18,  # X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
    19,  # X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN
    20,  # X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
    21,  # X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE
    7,  # X509_V_ERR_CERT_SIGNATURE_FAILURE
}
_EXPIRED, _NOT_YET_VALID, _INVALID_PURPOSE = 10, 9, 26


def build_context(tls: TlsFiles) -> SSL.Context:
    """A server context of the files in `tls`: asks for a client certificate, verifies it
    against the client CA file without ever failing the handshake for it, selects h2."""
    assert tls.client_ca is not None
    ctx = SSL.Context(SSL.TLS_SERVER_METHOD)
    ctx.set_min_proto_version(SSL.TLS1_2_VERSION)
    ctx.set_options(
        SSL.OP_NO_TICKET
        | SSL.OP_NO_COMPRESSION
        | SSL.OP_CIPHER_SERVER_PREFERENCE
        | getattr(SSL, "OP_NO_RENEGOTIATION", 0)
    )
    ctx.set_session_cache_mode(SSL.SESS_CACHE_OFF)  # no resumption: each handshake verifies
    ctx.use_certificate_chain_file(str(tls.cert))
    ctx.use_privatekey_file(str(tls.key))
    ctx.check_privatekey()
    ca_file = str(tls.client_ca)
    ctx.load_verify_locations(ca_file)
    cas = x509.load_pem_x509_certificates(tls.client_ca.read_bytes())
    ctx.set_client_ca_list([crypto.X509.from_cryptography(c).get_subject() for c in cas])
    ctx.set_verify(SSL.VERIFY_PEER, _note_verification)
    ctx.set_alpn_select_callback(_select_h2)
    return ctx


def _note_verification(conn: SSL.Connection, _cert: Any, errno: int, depth: int, ok: int) -> bool:
    """OpenSSL's verify callback, once per certificate of the chain: notes the failures on
    the connection and lets the handshake go on (the call is refused later, on record)."""
    client = conn.get_app_data()
    if isinstance(client, _Client):
        client.verified_depths += 1
        if not ok:
            client.failures.append((errno, depth))
    return True


def _select_h2(_conn: SSL.Connection, offered: list[bytes]) -> bytes | Any:
    return b"h2" if b"h2" in offered else SSL.NO_OVERLAPPING_PROTOCOLS


def _names(cert: x509.Certificate) -> tuple[str, ...]:
    """The common name and the SANs (DNS, URI, e-mail, IP), as gRPC's auth context gives
    them: what `[certificates]` in the security configuration maps to callers."""
    names = [
        str(a.value) for a in cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME) if a.value
    ]
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        san = None
    if san is not None:
        for kind in (x509.DNSName, x509.UniformResourceIdentifier, x509.RFC822Name):
            names.extend(str(v) for v in san.get_values_for_type(kind))
        names.extend(str(v) for v in san.get_values_for_type(x509.IPAddress))
    return tuple(dict.fromkeys(n for n in names if n))


def identify(
    cert: x509.Certificate | None, failures: list[tuple[int, int]], verified_depths: int
) -> ConnectionIdentity:
    """What a handshake's client certificate proves, from the verify callback's notes."""
    if cert is None:
        return ConnectionIdentity(
            refusal="no client certificate: this server requires one signed by its client CA",
            reason="CLIENT_CERTIFICATE_MISSING",
        )
    if verified_depths == 0:  # never verified (a resumed session would be): prove nothing
        return ConnectionIdentity(
            refusal="client certificate not verified", reason="CLIENT_CERTIFICATE_INVALID"
        )
    if not failures:
        return ConnectionIdentity(subjects=_names(cert))
    errno, depth = failures[0]
    which = "client certificate" if depth == 0 else f"CA certificate {depth} of the client's chain"
    if errno == _EXPIRED:
        until = f" on {cert.not_valid_after_utc:%Y-%m-%d %H:%M} UTC" if depth == 0 else ""
        return ConnectionIdentity(
            refusal=f"{which} expired{until}", reason="CLIENT_CERTIFICATE_EXPIRED"
        )
    if errno == _NOT_YET_VALID:
        return ConnectionIdentity(
            refusal=f"{which} not valid yet", reason="CLIENT_CERTIFICATE_NOT_YET_VALID"
        )
    if errno in _UNTRUSTED:
        return ConnectionIdentity(
            refusal="client certificate not signed by a CA this server trusts",
            reason="CLIENT_CERTIFICATE_UNTRUSTED",
        )
    if errno == _INVALID_PURPOSE:
        return ConnectionIdentity(
            refusal=f"{which} not for TLS client authentication (its key or extended key usage)",
            reason="CLIENT_CERTIFICATE_INVALID",
        )
    return ConnectionIdentity(
        refusal=f"{which} not accepted (OpenSSL X.509 verification error {errno})",
        reason="CLIENT_CERTIFICATE_INVALID",
    )


# -- the front ------------------------------------------------------------------------------


class TlsFront:
    """The public port of one server process; `start` binds it, `close` stops it."""

    def __init__(self, tls: TlsFiles, table: ConnectionTable, handshake_seconds: float):
        self.tls = tls
        self.table = table
        self.handshake_seconds = handshake_seconds
        self._context = build_context(tls)  # raises (OSError, SSL.Error) on unusable files
        self._servers: list[asyncio.Server] = []
        self._clients: set[_Client] = set()
        self.upstream_port = 0

    def context(self) -> SSL.Context:
        """The context for a new handshake: rebuilt after SIGHUP or a file change."""
        fresh = self.tls.reloaded(lambda: build_context(self.tls))
        if fresh is not None:
            self._context = fresh
        return self._context

    async def start(self, listen: str, upstream_port: int, reuse_port: bool) -> int:
        """Serve `listen` (host:port; port 0 picks one), forwarding to the private port;
        the port bound. OSError when the address cannot be bound."""
        self.upstream_port = upstream_port
        loop = asyncio.get_running_loop()
        socks, port = _bind(listen, reuse_port)
        for sock in socks:
            self._servers.append(
                await loop.create_server(lambda: _Client(self), sock=sock, backlog=1024)
            )
        return port

    def stop_accepting(self) -> None:
        for server in self._servers:
            server.close()

    async def close(self) -> None:
        """Stop accepting, then close the connections still open (after the gRPC server
        has drained: its GOAWAYs went out through them)."""
        self.stop_accepting()
        for client in list(self._clients):
            client.close()
        for server in self._servers:
            await server.wait_closed()


def _bind(listen: str, reuse_port: bool) -> tuple[list[socket.socket], int]:
    """Listening sockets for every address of the host, all on one port (port 0: the one
    the first bind picked), as gRPC binds them."""
    host, _, port_text = listen.rpartition(":")
    port = int(port_text)
    infos = socket.getaddrinfo(
        host.strip("[]") or None, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    families = {info[0] for info in infos}
    socks: list[socket.socket] = []
    seen: set[tuple[int, object]] = set()
    try:
        for family, kind, proto, _, address in infos:
            if (family, address[0]) in seen:
                continue
            seen.add((family, address[0]))
            sock = socket.socket(family, kind, proto)
            socks.append(sock)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            if reuse_port:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
            if family == socket.AF_INET6:  # "[::]" alone: both stacks, as gRPC does
                sock.setsockopt(
                    socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, int(socket.AF_INET in families)
                )
            sock.bind((address[0], port, *address[2:]))
            port = port or sock.getsockname()[1]
            sock.setblocking(False)
    except OSError:
        for sock in socks:
            sock.close()
        raise
    return socks, port


class _Client(asyncio.Protocol):
    """One client connection: TLS on memory BIOs, the plaintext forwarded to the private port."""

    def __init__(self, front: TlsFront):
        self.front = front
        self.failures: list[tuple[int, int]] = []
        self.verified_depths = 0
        self.transport: asyncio.Transport | None = None
        self.upstream: asyncio.Transport | None = None
        self.port = 0  # the local port of the connection to the private port
        self.pending: list[bytes] = []  # plaintext received before that connection is open
        self.handshaken = False
        self.closed = False
        self.peer = ""
        self._deadline: asyncio.TimerHandle | None = None
        self.tls = SSL.Connection(front.context(), None)
        self.tls.set_accept_state()
        self.tls.set_app_data(self)

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's is not a subclass
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.front._clients.add(self)
        self._deadline = asyncio.get_running_loop().call_later(
            self.front.handshake_seconds, self._handshake_timeout
        )

    def _handshake_timeout(self) -> None:
        if not self.handshaken:
            log.info("TLS handshake timed out", peer=self.peer)
            self.close()

    def data_received(self, data: bytes) -> None:
        tls = self.tls
        tls.bio_write(data)
        if not self.handshaken:
            try:
                tls.do_handshake()
            except SSL.WantReadError:
                self._flush()
                return
            except SSL.Error as exc:
                self._flush()  # the alert
                log.info("TLS handshake failed", peer=self.peer, error=str(exc))
                self.close()
                return
            self.handshaken = True
            if self._deadline is not None:
                self._deadline.cancel()
            self._connect()
        chunks: list[bytes] = []
        closing = False
        while True:
            try:
                chunks.append(tls.recv(_READ))
            except SSL.WantReadError:
                break
            except (SSL.ZeroReturnError, SSL.Error):  # close_notify, or a broken record
                closing = True
                break
        self._flush()
        if chunks:
            plain = b"".join(chunks)
            if self.upstream is not None:
                self.upstream.write(plain)
            else:
                self.pending.append(plain)
        if closing:
            self.close()

    def _flush(self) -> None:
        """Send what TLS wrote to its outgoing memory BIO."""
        chunks: list[bytes] = []
        while True:
            try:
                chunks.append(self.tls.bio_read(_READ))
            except SSL.WantReadError:
                break
        if chunks and self.transport is not None and not self.transport.is_closing():
            self.transport.write(b"".join(chunks))

    def _connect(self) -> None:
        cert = self.tls.get_peer_certificate(as_cryptography=True)
        identity = identify(cert, self.failures, self.verified_depths)
        if identity.refusal:
            log.info(
                "client certificate refused: every call on this connection is UNAUTHENTICATED",
                peer=self.peer,
                reason=identity.reason,
                why=identity.refusal,
            )
        loop = asyncio.get_running_loop()
        task = loop.create_task(self._open_upstream(identity))
        task.add_done_callback(_retrieve)

    async def _open_upstream(self, identity: ConnectionIdentity) -> None:
        loop = asyncio.get_running_loop()
        try:
            await loop.create_connection(
                lambda: _Upstream(self, identity), PRIVATE_HOST, self.front.upstream_port
            )
        except OSError as exc:
            log.error("TLS front cannot reach its gRPC server", error=str(exc))
            self.close()

    def upstream_made(self, transport: asyncio.Transport, identity: ConnectionIdentity) -> None:
        if self.closed:
            transport.close()
            return
        self.port = transport.get_extra_info("sockname")[1]
        self.front.table.add(self.port, identity)  # before the first byte goes through
        self.upstream = transport
        if self.pending:
            transport.write(b"".join(self.pending))
            self.pending.clear()

    def upstream_data(self, data: bytes) -> None:
        try:
            self.tls.sendall(data)
        except SSL.Error:
            self.close()
            return
        self._flush()

    def upstream_lost(self) -> None:
        self._forget()
        if not self.closed:
            try:
                self.tls.shutdown()  # close_notify
            except SSL.Error:
                pass
            self._flush()
            self.close()

    def _forget(self) -> None:
        if self.port:
            self.front.table.remove(self.port)
            self.port = 0

    def close(self) -> None:
        """Close both connections; the table entry goes first."""
        if self.closed:
            return
        self.closed = True
        self._forget()
        if self._deadline is not None:
            self._deadline.cancel()
        if self.upstream is not None:
            self.upstream.close()
        if self.transport is not None:
            self.transport.close()

    def connection_lost(self, exc: Exception | None) -> None:
        self.front._clients.discard(self)
        self.close()

    def eof_received(self) -> bool:
        return False  # the transport closes; connection_lost follows

    def pause_writing(self) -> None:  # the client reads slower than the server replies
        if self.upstream is not None:
            self.upstream.pause_reading()

    def resume_writing(self) -> None:
        if self.upstream is not None and not self.upstream.is_closing():
            self.upstream.resume_reading()


class _Upstream(asyncio.Protocol):
    """The front's connection to the private port, for one client connection."""

    def __init__(self, client: _Client, identity: ConnectionIdentity):
        self.client = client
        self.identity = identity

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        upstream = cast(asyncio.Transport, transport)
        upstream.set_write_buffer_limits(high=1 << 20)
        self.client.upstream_made(upstream, self.identity)

    def data_received(self, data: bytes) -> None:
        self.client.upstream_data(data)

    def eof_received(self) -> bool:
        return False

    def connection_lost(self, exc: Exception | None) -> None:
        self.client.upstream_lost()

    def pause_writing(self) -> None:  # the server reads slower than the client sends
        if self.client.transport is not None:
            self.client.transport.pause_reading()

    def resume_writing(self) -> None:
        transport = self.client.transport
        if transport is not None and not transport.is_closing():
            transport.resume_reading()


def _retrieve(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("TLS front connection failed", error=str(task.exception()))
