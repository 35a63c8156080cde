"""Interop, last (the file name sorts after the other test_interop_*
files): no secret handed to the servers by the interop tests reached their
logs. Run with tests/python/run.sh."""

from __future__ import annotations

from conftest import find_secret


# --------------------------------------------------------------------------
# Last: no secret in either server's log (the fixtures check again after
# shutdown, with the shutdown lines included).


def test_zz_no_secret_in_server_logs(server, grace_server):
    for client in (server, grace_server):
        assert client.server.lines, "no server log was captured"
        log = client.server.stderr()
        assert "signet listening" in log
        hit = find_secret(log, client.secret_texts)
        assert hit is None, f"a secret reached the server log: {hit[:24]}..."
    assert len(server.secret_texts) > 20, "the suite handed the server fewer secrets than expected"
