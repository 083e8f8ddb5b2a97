"""A failed call to the server as one sentence for the user: never a traceback or a status name
when a sentence can say it."""

from __future__ import annotations

import grpc


def describe_rpc_error(error: grpc.RpcError, address: str, tls: bool = False) -> str:
    """A sentence for the user about a failed call; never a traceback. tls: the call was made
    over TLS (a refused certificate then looks like an unreachable server)."""
    code = error.code() if hasattr(error, "code") else None
    details = error.details() if hasattr(error, "details") else ""
    if code == grpc.StatusCode.DEADLINE_EXCEEDED:
        return f"The server at {address} did not answer in time."
    if code == grpc.StatusCode.CANCELLED:
        return "The upload was cancelled."
    if code in (grpc.StatusCode.INVALID_ARGUMENT, grpc.StatusCode.RESOURCE_EXHAUSTED,
                grpc.StatusCode.NOT_FOUND) and details:
        return details
    if code == grpc.StatusCode.UNAUTHENTICATED:
        return (f"The server at {address} did not accept the access token. Check --token or "
                "SALES_TOKEN.")
    if code == grpc.StatusCode.UNAVAILABLE and tls:
        return (f"A secure connection to {address} could not be made. Check that the server is "
                "running, that the address is right and that the CA certificate is the one that "
                f"signed the server's certificate ({details or 'no details'}).")
    if code == grpc.StatusCode.UNAVAILABLE:
        return (f"Cannot reach the server at {address}. Check that it is running and that the "
                "address is right.")
    if code == grpc.StatusCode.UNIMPLEMENTED:
        return f"The server at {address} is not a Sales CSV Processor server."
    name = code.name if code is not None else "UNKNOWN"
    return f"The server reported an error ({name}): {details or 'no details'}"
