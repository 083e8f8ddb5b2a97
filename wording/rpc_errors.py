"""A failed call to the server as one sentence for the user: never a traceback or a status name
when a sentence can say it."""

from __future__ import annotations

import grpc


def describe_rpc_error(error: grpc.RpcError, address: str, tls: bool = False) -> str:
    """A sentence for the user about a failed call; never a traceback. tls: the call was made
    over TLS (a refused certificate then looks like an unreachable server)."""
    code = error.code() if hasattr(error, "code") else None
    details = error.details() if hasattr(error, "details") else ""
    if code in (grpc.StatusCode.UNAVAILABLE, grpc.StatusCode.INTERNAL) and (
            "RST_STREAM" in details or "Stream removed" in details):
        # The connection went mid-call: the server (or a proxy such as nginx in front of
        # several) stopped, or a network in between dropped it.
        return (f"The connection to the server at {address} was cut off before it answered "
                "(the server, or a proxy in front of it, stopped or restarted). Try again.")
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        # The server's own sentence (an upload that sent nothing for too long), or gRPC's.
        if details and details != "Deadline Exceeded":
            return details
        return f"The server at {address} did not answer in time."
    if code == grpc.StatusCode.CANCELLED:
        return "The upload was cancelled."
    if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED,
                grpc.StatusCode.NOT_FOUND, grpc.StatusCode.FAILED_PRECONDITION) and details:
        return details
    if code == grpc.StatusCode.UNAUTHENTICATED:
        if details.startswith("This server needs an access token"):  # none was sent
            return (f"The server at {address} needs an access token: pass --token or set "
                    "SALES_TOKEN.")
        return (f"The server at {address} did not accept the access token. Check --token or "
                "SALES_TOKEN.")
    if code == grpc.StatusCode.UNAVAILABLE:
        return _unavailable(details, address, tls)
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return f"The server at {address} is not a Sales CSV Processor server."
    if details.endswith("."):
        return details  # a sentence of the server's
    return (f"The server at {address} could not complete the request"
            f"{f' ({details})' if details else ''}. Try again; if it keeps happening, tell "
            "whoever runs the server.")


def _unavailable(details: str, address: str, tls: bool) -> str:
    """UNAVAILABLE: the server's own sentence, or what gRPC says of the connection, read for
    its cause (gRPC gives no other way to tell a refused certificate from a stopped server)."""
    host = address.rsplit(":", 1)[0].strip("[]")
    if "resolving" in details or "lookup" in details:  # gRPC's "errors resolving HOST: [...]"
        return (f"Cannot find a computer called {host}. Check the server's name (and that this "
                "computer is on the network).")
    if "Received http2 header with status" in details:  # a proxy's HTTP error, not gRPC
        return (f"The address {address} answered, but with no server behind it: the servers "
                "behind that proxy (nginx) are stopped or unreachable. Try again in a moment, "
                "or tell whoever runs them.")
    if details and not details.startswith("failed to connect") and "ipv" not in details:
        return details  # a sentence of the server's (its history or its disk failed)
    if "Hostname Verification" in details or "not in peer certificate" in details:
        return (f"The server's certificate is not made out to {host}, the address dialled: "
                f"its subject alternative names (SAN) must include {host}. Dial a name the "
                "certificate has, or make one with a SAN (README, Security).")
    if "CERTIFICATE_VERIFY_FAILED" in details:
        return (f"The server at {address} has a certificate that the CA certificate given "
                "(--ca-cert) did not sign, so it is not trusted. Use the CA certificate that "
                "signed it (for a self-signed certificate, the certificate itself).")
    if tls and ("WRONG_VERSION_NUMBER" in details or "Socket closed" in details):
        return (f"The server at {address} does not speak TLS. Leave out --ca-cert, or start "
                "the server with --tls-cert and --tls-key.")
    if not tls and "Socket closed" in details:
        return (f"The server at {address} closed the connection: it may require TLS. Pass its "
                "CA certificate with --ca-cert.")
    return (f"Cannot reach the server at {address}. Check that it is running and that the "
            "address is right.")
