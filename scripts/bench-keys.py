#!/usr/bin/env python3
"""Creates many keys on a signet server and pages through them: the
registry-scale part of scripts/bench.sh's `keys` section.

    python3 scripts/bench-keys.py ENDPOINT COUNT ALGORITHM PREFIX

ENDPOINT is host:port (plaintext, no credentials: the bench servers have
no identities). Creates PREFIX-00000 ... with CreateKey from 16 threads,
then lists every key with ListKeys (pages of 1000), and prints one JSON
object: created, create_seconds, creates_per_second, listed, pages,
list_seconds. Needs grpcio and grpcio-tools (the .venv that
tests/python/run.sh makes); the stubs are generated into a temporary
directory from proto/.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def stubs(into: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "grpc_tools.protoc", f"-I{ROOT / 'proto'}",
         f"--python_out={into}", f"--grpc_python_out={into}", *map(str, (ROOT / "proto/signet/v1").glob("*.proto"))],
        check=True,
    )
    for d in (into / "signet", into / "signet" / "v1"):
        (d / "__init__.py").touch()
    sys.path.insert(0, str(into))


def main(argv: list[str]) -> int:
    if len(argv) != 5:
        print(__doc__, file=sys.stderr)
        return 2
    endpoint, count, algorithm, prefix = argv[1], int(argv[2]), argv[3], argv[4]
    with tempfile.TemporaryDirectory() as tmp:
        stubs(Path(tmp))
        import grpc
        from signet.v1 import common_pb2, key_admin_pb2, key_admin_pb2_grpc

        alg = common_pb2.Algorithm.Value("ALGORITHM_" + algorithm)
        channel = grpc.insecure_channel(endpoint)
        admin = key_admin_pb2_grpc.KeyAdminStub(channel)

        def create(i: int) -> None:
            admin.CreateKey(key_admin_pb2.CreateKeyRequest(name=f"{prefix}-{i:05d}", algorithm=alg), timeout=60)

        t0 = time.monotonic()
        with ThreadPoolExecutor(16) as pool:
            list(pool.map(create, range(count)))
        created = time.monotonic() - t0

        t0 = time.monotonic()
        listed, pages, token = 0, 0, ""
        while True:
            page = admin.ListKeys(key_admin_pb2.ListKeysRequest(page_size=1000, page_token=token), timeout=60)
            listed += len(page.keys)
            pages += 1
            token = page.next_page_token
            if not token:
                break
        listing = time.monotonic() - t0
        print(json.dumps({
            "created": count, "create_seconds": created, "creates_per_second": count / created,
            "listed": listed, "pages": pages, "list_seconds": listing,
        }))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
