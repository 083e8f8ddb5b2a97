"""The bare transport: the same service and message shapes, a servicer that only counts bytes.

    python bench/transport_server.py [--sync]             # serve on gRPC's thread pool; prints
                                                          # "listening on ADDRESS"
    python bench/transport_server.py --aio                # serve on grpc.aio (an asyncio loop),
                                                          # as `main.py serve` does
    python bench/transport_server.py --upload FILE SIZE   # client and server in this one process
                                                          # on one asyncio loop (as the desktop
                                                          # window runs them); prints the
                                                          # seconds of one upload
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from concurrent import futures
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from salesapi import sales_pb2, sales_pb2_grpc  # noqa: E402
from salesapi.client import file_chunks, open_aio_channel  # noqa: E402
from server.app import MAX_MESSAGE_BYTES  # noqa: E402


class CountingServicer(sales_pb2_grpc.SalesServiceServicer):
    """Counts an upload's bytes on gRPC's thread pool."""

    def UploadCSV(self, request_iterator, context):
        received = 0
        for chunk in request_iterator:
            received += len(chunk.data)
        return sales_pb2.Job(bytes_received=received)


class AsyncCountingServicer(sales_pb2_grpc.SalesServiceServicer):
    """Counts an upload's bytes on the event loop."""

    async def UploadCSV(self, _request_iterator, context):
        received = 0
        # context.read(), as the project's servicer reads: the faster way on grpc.aio, so that
        # the baseline is the best this transport does.
        while (chunk := await context.read()) is not grpc.aio.EOF:
            received += len(chunk.data)
        return sales_pb2.Job(bytes_received=received)


# As `main.py serve` sets them (server/app.py), so that both ends differ only in the servicer.
_SERVER_OPTIONS = [("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                   ("grpc.max_send_message_length", -1), ("grpc.so_reuseport", 0)]


async def upload_in_one_loop(path: Path, message: int) -> float:
    """Seconds of one upload, client and server on this one event loop."""
    server = grpc.aio.server(options=_SERVER_OPTIONS)
    sales_pb2_grpc.add_SalesServiceServicer_to_server(AsyncCountingServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    async with open_aio_channel(f"127.0.0.1:{port}") as channel:
        call = sales_pb2_grpc.SalesServiceStub(channel).UploadCSV(timeout=1800)
        started = time.perf_counter()
        for chunk in file_chunks(path, message):
            await call.write(chunk)
        await call.done_writing()
        reply = await call
        seconds = time.perf_counter() - started
    await server.stop(None)
    if reply.bytes_received != path.stat().st_size:
        raise SystemExit(f"received {reply.bytes_received} bytes of {path.stat().st_size}")
    return seconds


def serve_sync() -> None:
    """Serves CountingServicer on gRPC's thread pool until killed."""
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4), options=_SERVER_OPTIONS)
    sales_pb2_grpc.add_SalesServiceServicer_to_server(CountingServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"listening on 127.0.0.1:{port}", flush=True)
    server.wait_for_termination()


async def serve_aio() -> None:
    """Serves AsyncCountingServicer on this asyncio loop until killed."""
    server = grpc.aio.server(options=_SERVER_OPTIONS)
    sales_pb2_grpc.add_SalesServiceServicer_to_server(AsyncCountingServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    await server.start()
    print(f"listening on 127.0.0.1:{port}", flush=True)
    await server.wait_for_termination()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("--sync", action="store_true", help="serve on a thread pool (default)")
    mode.add_argument("--aio", action="store_true", help="serve on an asyncio loop")
    mode.add_argument("--upload", nargs=2, metavar=("FILE", "MESSAGE_BYTES"))
    args = parser.parse_args(argv)
    if args.upload is not None:
        path, message = Path(args.upload[0]), int(args.upload[1])
        print(f"{asyncio.run(upload_in_one_loop(path, message)):.4f}")
    elif args.aio:
        asyncio.run(serve_aio())
    else:
        serve_sync()
    return 0


if __name__ == "__main__":
    sys.exit(main())
