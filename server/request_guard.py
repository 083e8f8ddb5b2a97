"""Requests that cannot be read, for every service on the server (health and reflection too):
one status and one sentence instead of gRPC's UNKNOWN and a traceback in the log."""

from __future__ import annotations

from typing import AsyncIterator, Callable

import grpc
from google.protobuf.message import DecodeError


class UnreadableMessage:
    """What a request that cannot be parsed, or is too large, becomes: `status` and `reason`
    are the answer."""

    def __init__(self, type_name: str, size: int, largest: int, is_upload: bool) -> None:
        self.too_large = size > largest
        if self.too_large:
            self.status = grpc.StatusCode.RESOURCE_EXHAUSTED
            advice = (" Send the file in smaller chunks (64 KiB to 1 MiB is plenty)."
                      if is_upload else "")
            self.reason = (f"A message of {_bytes(size)} arrived; the largest this server "
                           f"takes is {largest:,} bytes.{advice}")
        else:
            self.status = grpc.StatusCode.INVALID_ARGUMENT
            self.reason = (f"A message of {_bytes(size)} could not be read as {type_name} (a "
                           "string field that is not UTF-8 text, or bytes that are not "
                           "protobuf). Is the client built from this server's .proto files?")


def _bytes(size: int) -> str:
    return f"{size:,} byte{'s' if size != 1 else ''}"


class UnreadableRequests(grpc.aio.ServerInterceptor):
    """Gives every method a request deserializer that turns what it cannot parse (or what is
    over `largest` bytes) into an UnreadableMessage, and answers it: a request of a unary call
    here, a streamed one as the stream reaches it (UploadCSV, which reads with context.read(),
    answers its own in the servicer). Every service on this asyncio server has coroutine and
    async-generator behaviours, which the wrappers await."""

    def __init__(self, largest: int, upload_method: str) -> None:
        self._largest = largest
        self._upload_method = upload_method

    async def intercept_service(self, continuation, handler_call_details):
        handler = await continuation(handler_call_details)
        if handler is None or handler.request_deserializer is None:
            return handler
        parse = _tolerant(handler.request_deserializer, self._largest,
                          handler_call_details.method == self._upload_method)
        if not handler.request_streaming:
            if handler.response_streaming:
                return handler._replace(request_deserializer=parse,
                                        unary_stream=_streaming_reply(handler.unary_stream))
            return handler._replace(request_deserializer=parse,
                                    unary_unary=_single_reply(handler.unary_unary))
        if handler.response_streaming:
            return handler._replace(request_deserializer=parse,
                                    stream_stream=_guarded_stream(handler.stream_stream, True))
        return handler._replace(request_deserializer=parse,
                                stream_unary=_guarded_stream(handler.stream_unary, False))


def _tolerant(parse: Callable, largest: int, is_upload: bool) -> Callable:
    message_type = getattr(getattr(parse, "__self__", None), "DESCRIPTOR", None)
    type_name = message_type.full_name if message_type is not None else "the request type"

    def tolerant(data: bytes):
        if len(data) > largest:
            return UnreadableMessage(type_name, len(data), largest, is_upload)
        try:
            return parse(data)
        except (DecodeError, UnicodeDecodeError, ValueError):
            return UnreadableMessage(type_name, len(data), largest, is_upload)

    return tolerant


def _single_reply(behaviour: Callable) -> Callable:
    async def handle(request, context):
        if isinstance(request, UnreadableMessage):
            await context.abort(request.status, request.reason)
        return await behaviour(request, context)

    return handle


def _streaming_reply(behaviour: Callable) -> Callable:
    async def handle(request, context):
        if isinstance(request, UnreadableMessage):
            await context.abort(request.status, request.reason)
        async for reply in behaviour(request, context):
            yield reply

    return handle


def _guarded_stream(behaviour: Callable, streams_replies: bool) -> Callable:
    async def guarded(requests: AsyncIterator, context) -> AsyncIterator:
        async for request in requests:
            if isinstance(request, UnreadableMessage):
                await context.abort(request.status, request.reason)
            yield request

    if streams_replies:
        async def handle_stream(requests, context):
            async for reply in behaviour(guarded(requests, context), context):
                yield reply
        return handle_stream

    async def handle(requests, context):
        return await behaviour(guarded(requests, context), context)
    return handle
