"""The bare transport: the same service and message shapes, a servicer that only counts bytes.

    python bench/transport_server.py                      # serve; prints "listening on ADDRESS"
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
    def UploadCSV(self, request_iterator, context):
        received = 0
        for chunk in request_iterator:
            received += len(chunk.data)
        return sales_pb2.Job(bytes_received=received)


class AsyncCountingServicer(sales_pb2_grpc.SalesServiceServicer):
    async def UploadCSV(self, request_iterator, context):
        received = 0
        async for chunk in request_iterator:
            received += len(chunk.data)
        return sales_pb2.Job(bytes_received=received)


async def upload_in_one_loop(path: Path, message: int) -> float:
    """Seconds of one upload, client and server on this one event loop."""
    server = grpc.aio.server(options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)])
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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--upload", nargs=2, metavar=("FILE", "MESSAGE_BYTES"))
    args = parser.parse_args(argv)
    if args.upload is not None:
        path, message = Path(args.upload[0]), int(args.upload[1])
        print(f"{asyncio.run(upload_in_one_loop(path, message)):.4f}")
        return 0
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=4),
                         options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES)])
    sales_pb2_grpc.add_SalesServiceServicer_to_server(CountingServicer(), server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    print(f"listening on 127.0.0.1:{port}", flush=True)
    server.wait_for_termination()
    return 0


if __name__ == "__main__":
    sys.exit(main())
