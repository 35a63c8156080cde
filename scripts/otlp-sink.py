#!/usr/bin/env python3
"""An OTLP/gRPC collector that accepts every export and discards it, for
the telemetry figures of docs/benchmarks.md (scripts/bench.sh telemetry).

    otlp-sink.py PORT_FILE

Listens on a free port of 127.0.0.1, writes the port to PORT_FILE, and
serves until it is killed. Needs grpcio.
"""

import os
import signal
import sys
from concurrent import futures

import grpc


class Discard(grpc.GenericRpcHandler):
    """Answers every .../Export (traces, metrics, logs) with an empty
    response, which is a valid Export*ServiceResponse."""

    def service(self, details):
        if details.method.endswith("/Export"):
            return grpc.unary_unary_rpc_method_handler(
                lambda request, context: b"",
                request_deserializer=bytes,
                response_serializer=bytes,
            )
        return None


def main() -> int:
    if len(sys.argv) != 2:
        print(f"usage: {sys.argv[0]} PORT_FILE", file=sys.stderr)
        return 2
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=2))
    server.add_generic_rpc_handlers((Discard(),))
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    # Written whole, then renamed: whoever waits for the file reads a port.
    with open(sys.argv[1] + ".tmp", "w", encoding="utf-8") as f:
        f.write(f"{port}\n")
    os.replace(sys.argv[1] + ".tmp", sys.argv[1])
    signal.signal(signal.SIGTERM, lambda *_: server.stop(0))
    server.wait_for_termination()
    return 0


if __name__ == "__main__":
    sys.exit(main())
