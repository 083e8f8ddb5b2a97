"""The bare transport: the same service and message shapes, a servicer that only counts bytes."""

from __future__ import annotations

import sys
from concurrent import futures
from pathlib import Path

import grpc

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from salesapi import sales_pb2, sales_pb2_grpc  # noqa: E402
from server.app import MAX_MESSAGE_BYTES  # noqa: E402


class CountingServicer(sales_pb2_grpc.SalesServiceServicer):
    def UploadCSV(self, request_iterator, context):
        received = 0
        for chunk in request_iterator:
            received += len(chunk.data)
        return sales_pb2.Job(bytes_received=received)


def main() -> int:
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
