"""Who may talk to the server: TLS for non-loopback addresses, an optional shared token."""

from __future__ import annotations

import hmac
import ipaddress
from dataclasses import dataclass
from pathlib import Path

import grpc

# Health checks stay open so that load balancers and the window can probe without the token.
_OPEN_PREFIXES = ("/grpc.health.v1.Health/",)


@dataclass(frozen=True)
class TlsFiles:
    """A PEM certificate chain and its private key."""

    cert: Path
    key: Path

    def server_credentials(self) -> grpc.ServerCredentials:
        return grpc.ssl_server_credentials([(self.key.read_bytes(), self.cert.read_bytes())])


class SecurityError(Exception):
    """The server must not start as asked; the message says why in a sentence."""


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
    for path in (files.cert, files.key):
        if not path.is_file():
            raise SecurityError(f"Cannot read the TLS file {path}.")
    return files


class TokenInterceptor(grpc.aio.ServerInterceptor):
    """Lets a call in only with metadata `authorization: Bearer <token>` (health is open)."""

    def __init__(self, token: str) -> None:
        self._expected = f"Bearer {token}".encode()

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None or handler_call_details.method.startswith(_OPEN_PREFIXES):
            return handler
        given = dict(handler_call_details.invocation_metadata).get("authorization", "")
        if hmac.compare_digest(given.encode(), self._expected):
            return handler
        return _refusal(handler)


def _refusal(handler: grpc.RpcMethodHandler) -> grpc.RpcMethodHandler:
    async def refuse(_request, context):
        await context.abort(grpc.StatusCode.UNAUTHENTICATED,
                            "This server needs an access token: pass --token or set "
                            "SALES_TOKEN.")

    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(refuse)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(refuse)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(refuse)
    return grpc.unary_unary_rpc_method_handler(refuse)
