"""Who may talk to the server: TLS for non-loopback addresses, an optional shared token."""

from __future__ import annotations

import hmac
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

import grpc

# Open without the token: health checks, so that load balancers and the window can probe, and
# server reflection, which only describes the API (the same as proto/sales.proto, which is
# public) and which grpcurl needs to call anything by name, health checks included.
_OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.v1alpha.ServerReflection/",
                  "/grpc.reflection.v1.ServerReflection/")


@dataclass(frozen=True)
class TlsFiles:
    """A PEM certificate chain and its private key."""

    cert: Path
    key: Path

    def server_credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials([(self.key.read_bytes(), self.cert.read_bytes())])


# Exit codes of `serve` for what keeps it from starting (see README, "Run the server").
EXIT_CONFIGURATION = 2  # the command line asks for something unsafe or incomplete
EXIT_TLS = 4  # the certificate or key cannot be used


class SecurityError(Exception):
    """The server must not start as asked; the message says why in a sentence."""

    def __init__(self, message: str, exit_code: int = EXIT_CONFIGURATION) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def is_loopback(host: str) -> bool:
    """True for localhost and the loopback addresses."""
    if host in ("localhost", "ip6-localhost"):
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, tls: TlsFiles | None, insecure: bool) -> None:
    """Refuses a non-loopback address with neither TLS nor an explicit --insecure."""
    if is_loopback(host) or tls is not None or insecure:
        return
    raise SecurityError(
        f"Refusing to listen on {host} without TLS: anyone on that network could read the "
        "uploaded files and the totals. Give --tls-cert and --tls-key, or --insecure if the "
        "network is trusted.")


def load_tls(cert: str | None, key: str | None) -> TlsFiles | None:
    """The TLS files from the command line, checked; None when neither is given."""
    if not cert and not key:
        return None
    if not cert or not key:
        raise SecurityError("TLS needs both --tls-cert and --tls-key.")
    files = TlsFiles(Path(cert), Path(key))
    for path, what in ((files.cert, "certificate"), (files.key, "private key")):
        try:
            path.read_bytes()
        except OSError as exc:
            raise SecurityError(f"Cannot read the TLS {what} {path}: "
                                f"{exc.strerror or exc}.", EXIT_TLS) from None
    _check_pair(files)
    return files


def _check_pair(files: TlsFiles) -> None:
    """Refuses a certificate that is not PEM, a key that is not one, or a key that does not
    belong to the certificate, each in its own sentence (gRPC would only fail to listen)."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    try:
        context.load_verify_locations(cafile=str(files.cert))
    except ssl.SSLError:
        raise SecurityError(f"The TLS certificate {files.cert} is not a PEM certificate (a text "
                            "file starting with -----BEGIN CERTIFICATE-----).",
                            EXIT_TLS) from None
    try:
        # (A password callback: an encrypted key is refused, never prompted for.)
        context.load_cert_chain(str(files.cert), str(files.key), password=lambda: b"")
    except ssl.SSLError as exc:
        if exc.reason == "KEY_VALUES_MISMATCH":
            raise SecurityError(f"The TLS private key {files.key} does not belong to the "
                                f"certificate {files.cert}.", EXIT_TLS) from None
        raise SecurityError(f"The TLS private key {files.key} is not an unencrypted PEM "
                            "private key (a text file starting with -----BEGIN PRIVATE "
                            "KEY-----).", EXIT_TLS) from None


class TokenInterceptor(grpc.aio.ServerInterceptor):
    """Lets a call in only with metadata `authorization: Bearer <token>` (health is open)."""

    def __init__(self, token: str) -> None:
        self._expected = token.encode()

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(_OPEN_PREFIXES):
            return handler
        given = dict(handler_call_details.invocation_metadata).get("authorization")
        if given is None:
            return _refusal(handler, "This server needs an access token: send the metadata "
                                     "header `authorization: Bearer <token>` with every call.")
        # The scheme is case-insensitive (RFC 7235): "bearer" and "BEARER" are "Bearer".
        scheme, _, token = given.strip().partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(token.strip().encode(),
                                                              self._expected):
            return handler
        return _refusal(handler, "The access token was not accepted: send the metadata header "
                                 "`authorization: Bearer <token>` with this server's token.")


def _refusal(handler: grpc.RpcMethodHandler, message: str) -> grpc.RpcMethodHandler:
    async def refuse(_request, context):
        await context.abort(grpc.StatusCode.UNAUTHENTICATED, message)

    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(refuse)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(refuse)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(refuse)
    return grpc.unary_unary_rpc_method_handler(refuse)
