#!/usr/bin/env python3
"""Markdown tables for docs/benchmarks.md from the reports of one run of
scripts/bench.sh (or bench-pkcs11.sh, bench-registry.sh).

    bench-tables.py SECTION DIR

SECTION is one of the script's sections; DIR holds that section's reports,
named as the scripts write them (`signet --json bench` output, one file per
run). Each table has the columns of its table in docs/benchmarks.md, so
figures can be pasted; a run that is missing shows as "n/a".
"""

from __future__ import annotations

import glob
import json
import os
import re
import statistics
import sys

KEYS = [
    ("demo-hmac", "HMAC_SHA256"),
    ("demo-ecdsa", "ECDSA_P256_SHA256"),
    ("demo-rsa", "RSA_PKCS1_2048_SHA256"),
    ("demo-ed25519", "ED25519"),
]

def load(path: str) -> dict | None:
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def sig3(v: float) -> str:
    """About three significant digits: 0.002, 0.29, 5.30, 31.8, 857, 1,845."""
    if v < 1:
        return f"{v:.2g}"
    if v < 10:
        return f"{v:.2f}"
    if v < 100:
        return f"{v:.1f}"
    return f"{v:,.0f}"


def rate(r: dict | None, key: str = "requests_per_second") -> str:
    if not r or r.get(key) is None:
        return "n/a"
    return f"{r[key]:,.0f}"


def cpu_value(v: float) -> str:
    return f"{v:.1f}" if v < 100 else f"{v:,.0f}"


def cpu(r: dict | None, which: str) -> str:
    v = r and r.get(f"{which}_cpu_us_per_request")
    if v is None:
        return "n/a"
    return f"{cpu_value(v)} µs"


def latency(r: dict | None) -> str:
    """p50 / p99, in µs below a millisecond, else in ms."""
    lat = r and r.get("latency_us")
    if not lat:
        return "n/a"
    p50, p99 = lat["p50"], lat["p99"]
    if p99 < 1000:
        return f"{p50:.0f} / {p99:.0f} µs"
    return f"{sig3(p50 / 1000)} / {sig3(p99 / 1000)} ms"


def ms(v: float | None) -> str:
    return "n/a" if v is None else f"{sig3(v)} ms"


def table(header: list[str], rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    out += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(out)


def heading(text: str) -> None:
    print(f"\n{text}\n")


def runs(d: str, prefix: str) -> list[dict]:
    """The reports PREFIX-1.json, PREFIX-2.json, ... in round order."""
    found = []
    for p in glob.glob(os.path.join(d, f"{prefix}-*.json")):
        m = re.search(r"-(\d+)\.json$", p)
        r = load(p)
        if m and r:
            found.append((int(m.group(1)), r))
    return [r for _, r in sorted(found, key=lambda x: x[0])]


def rates(rs: list[dict]) -> str:
    return " / ".join(rate(r) for r in rs) or "n/a"


def cpu_range(rs: list[dict], which: str = "server") -> str:
    vs = [r[f"{which}_cpu_us_per_request"] for r in rs if r.get(f"{which}_cpu_us_per_request") is not None]
    if not vs:
        return "n/a"
    lo, hi = cpu_value(min(vs)), cpu_value(max(vs))
    return f"{lo} µs" if lo == hi else f"{lo}–{hi} µs"


def grpc(d: str) -> None:
    inproc = {k: load(os.path.join(d, f"inproc-{k}.json")) for k, _ in KEYS}
    threads = next((r["concurrency"] for r in inproc.values() if r), "N")
    heading("Results (today's defaults: a token identity with a sign grant, audit trail to a file):")
    rows = []
    for k, alg in KEYS:
        on = load(os.path.join(d, f"on-{k}.json"))
        ip = inproc[k]
        rows.append([k, alg, rate(on), latency(on), cpu(on, "server"), cpu(on, "client"),
                     rate(ip), cpu(ip, "client")])
    print(table(["key", "algorithm", "`Sign` over gRPC, req/s", "p50 / p99 latency", "server CPU / req",
                 "client CPU / req", f"in-process ops/s ({threads} threads)", "in-process CPU / op"], rows))

    low = load(os.path.join(d, "on-demo-rsa-c2.json"))
    if low and low.get("latency_us"):
        p50 = low["latency_us"]["p50"] / 1000
        print(f"\nAt low concurrency (`--concurrency 2 --connections 2`) RSA-2048 answers in "
              f"{sig3(p50)} ms p50 ({rate(low)} req/s).")

    heading("For comparison, the security layer off (no identities, `[audit] output = \"off\"`):")
    rows = []
    for k, _ in KEYS:
        on = load(os.path.join(d, f"on-{k}.json"))
        off = load(os.path.join(d, f"off-{k}.json"))
        rows.append([k, rate(on), rate(off), cpu(on, "server"), cpu(off, "server")])
    print(table(["key", "layer on: req/s", "layer off: req/s", "layer on: server CPU / req",
                 "layer off: server CPU / req"], rows))

    heading("Against the target (each row one `signet bench --floor` run: the floor, a bare tonic `Sign` "
            "in a process of its own, then signet, then the signing cost in-process on one thread; "
            "limit = CPUs / (floor server + floor client + signing CPU per call)):")
    names = {"demo-hmac": "HMAC-SHA256", "demo-ecdsa": "ECDSA P-256", "demo-ed25519": "Ed25519",
             "demo-rsa": "RSA-2048"}
    rows = []
    for k in ["demo-hmac", "demo-ecdsa", "demo-ed25519", "demo-rsa"]:
        on = load(os.path.join(d, f"on-{k}.json"))
        lim = (on or {}).get("limit") or {}
        rows.append([names[k]] + floor_row(on, lim))
    print(table(["algorithm", "floor req/s", "floor CPU / call (server + client)", "signing CPU / call",
                 "limit", "signet req/s", "share of the limit", "signet server CPU − signing",
                 "÷ floor server CPU"], rows))
    by_concurrency(d, names)


def ratio_text(ratio: float | None, max_ratio: float) -> str:
    """An overhead ratio and its verdict. A negative one is no reading: the
    signature cost more beside the RPC stack than alone, by more than the
    RPC's whole cost, so the subtraction says nothing about the RPC."""
    if ratio is None:
        return "n/a"
    if ratio < 0:
        return f"**{ratio:.2f}×** (no reading: the signature cost more here than alone)"
    return f"**{ratio:.2f}×** ({'met' if ratio <= max_ratio else 'not met'})"


def p99_row(r: dict) -> str:
    """signet's p99 at one in flight against the floor's p99 plus the signature's."""
    f, sg = (r.get("floor") or {}).get("latency_us"), (r.get("signing") or {}).get("latency_us")
    own = r.get("latency_us")
    if not (f and sg and own):
        return "n/a"
    bound = f["p99"] + sg["p99"]
    ratio = own["p99"] / bound
    return (f"{own['p99']:,.0f} µs against {f['p99']:,.0f} + {sg['p99']:,.1f} µs: **{ratio:.2f}×** "
            f"({'met' if ratio <= 1.3 else 'not met'})")


def by_concurrency(d: str, names: dict[str, str]) -> None:
    """The same ratios at 1 and 8 calls in flight (`c1-KEY`, `c8-KEY` runs), and p99 at one."""
    rows = []
    for k in names:
        for c in (1, 8):
            r = load(os.path.join(d, f"c{c}-{k}.json"))
            if not r:
                continue
            lim = r.get("limit") or {}
            ratio, over = lim.get("overhead_ratio"), lim.get("signet_overhead_cpu_us_per_request")
            fs = lim.get("floor_server_cpu_us_per_request")
            rows.append([names[k], str(c), rate(r), "n/a" if fs is None else f"{cpu_value(fs)} µs",
                         "n/a" if over is None else f"{cpu_value(over)} µs",
                         ratio_text(ratio, 1.15),
                         p99_row(r) if c == 1 else ""])
    if not rows:
        return
    heading("At 1 and 8 calls in flight (each row one `--floor` run; p99 target: within 1.3× of the floor's "
            "p99 plus the signature's):")
    print(table(["algorithm", "in flight", "signet req/s", "floor server CPU / call", "signet server CPU − signing",
                 "÷ floor server CPU", "p99 at 1 in flight"], rows))


def floor_row(on: dict | None, lim: dict) -> list[str]:
    """The columns of one key's `--floor` report; n/a where a part is missing."""
    fs, fc = lim.get("floor_server_cpu_us_per_request"), lim.get("floor_client_cpu_us_per_request")
    sg, limit = lim.get("signing_cpu_us_per_op"), lim.get("limit_requests_per_second")
    if None in (fs, fc, sg, limit):
        return [rate(lim, "floor_requests_per_second"), "n/a", "n/a", "n/a", rate(on), "n/a", "n/a", "n/a"]
    per = fs + fc + sg
    share, target = lim.get("share_percent"), lim.get("target_share_percent", 90)
    over, ratio = lim.get("signet_overhead_cpu_us_per_request"), lim.get("overhead_ratio")
    max_ratio = lim.get("target_overhead_ratio", 1.15)
    share_text = "n/a" if share is None else f"**{share:.0f} %** ({'met' if share >= target else 'not met'})"
    return [rate(lim, "floor_requests_per_second"), f"{cpu_value(fs)} + {cpu_value(fc)} µs", f"{cpu_value(sg)} µs",
            f"{lim['cpus']} / {cpu_value(per)} µs = {limit:,.0f}/s", rate(on), share_text,
            "n/a" if over is None else f"{cpu_value(over)} µs", ratio_text(ratio, max_ratio)]


def ab(d: str, servers: list[tuple[str, str]]) -> None:
    rows = []
    for name, label in servers:
        h, e = runs(d, f"{name}-demo-hmac"), runs(d, f"{name}-demo-ecdsa")
        rows.append([label, rates(h), cpu_range(h), rates(e), cpu_range(e)])
    print(table(["server", "HMAC req/s", "HMAC server CPU / req", "ECDSA req/s", "ECDSA server CPU / req"],
                rows))


def security(d: str) -> None:
    heading("The cost of authentication, authorization and the audit trail (one figure per round):")
    ab(d, [("off", "audit off"), ("file", "audit to a file"),
           ("token", "token auth, audit to a file")])


def telemetry(d: str) -> None:
    heading("The cost of telemetry (one figure per round; audit trail to a file):")
    ab(d, [("metrics", "metrics only"), ("otlpm", "OTLP metrics, no traces"), ("otlp0", "OTLP, none sampled"),
           ("otlp", "OTLP, all sampled"), ("otlp10", "OTLP, 10 %")])


PKCS11_KEYS = [("ecdsa", "ECDSA_P256_SHA256", "ECDSA P-256"), ("rsa", "RSA_PKCS1_2048_SHA256", "RSA-2048"),
               ("hmac", "HMAC_SHA256", "HMAC-SHA256")]


def pkcs11(d: str) -> None:
    conc = sorted({int(m.group(1)) for p in glob.glob(os.path.join(d, "rpc-*-*.json"))
                   if (m := re.search(r"-(\d+)\.json$", p))})
    heading("PKCS#11 over gRPC:")
    rows = []
    for k, _, label in PKCS11_KEYS:
        for c in conc:
            r = load(os.path.join(d, f"rpc-{k}-{c}.json"))
            rows.append([label, str(c), rate(r), latency(r), cpu(r, "server"), cpu(r, "client")])
    print(table(["key", "concurrency", "`Sign` req/s", "p50 / p99", "server CPU / req", "client CPU / req"],
                rows))

    threads = sorted({int(m.group(1)) for p in glob.glob(os.path.join(d, "raw-*-*.json"))
                      if (m := re.search(r"-(\d+)\.json$", p))})
    heading("The token alone, no RPC:")
    rows = []
    for k, alg, label in PKCS11_KEYS:
        for t in threads:
            raw = load(os.path.join(d, f"raw-{alg}-{t}.json"))
            be = load(os.path.join(d, f"backend-{alg}-{t}.json"))
            rows.append([label, str(t), rate(raw), cpu(raw, "client"), rate(be), cpu(be, "client")])
    print(table(["operation", "threads", "raw `C_Sign` ops/s", "raw CPU / op", "signet backend ops/s",
                 "backend CPU / op"], rows))

    if not conc or not threads:
        return
    most = threads[-1]
    heading(f"Against the target (each run's own floor; the {most}-thread raw `C_Sign` cost):")
    rows = []
    for k, alg, label in [PKCS11_KEYS[2], PKCS11_KEYS[1], PKCS11_KEYS[0]]:
        raw = load(os.path.join(d, f"raw-{alg}-{most}.json"))
        w = raw and raw.get("client_cpu_us_per_request")
        for c in conc:
            r = load(os.path.join(d, f"rpc-{k}-{c}.json"))
            s = r and r.get("server_cpu_us_per_request")
            b = r and (r.get("limit") or {}).get("floor_server_cpu_us_per_request")
            if s is None or w is None or not b:
                rows.append([label, str(c), cpu(r, "server"), cpu(raw, "client"), "n/a", "n/a", "n/a"])
                continue
            over = s - w
            rows.append([label, str(c), f"{cpu_value(s)} µs", f"{cpu_value(w)} µs", f"{cpu_value(over)} µs",
                         f"{cpu_value(b)} µs", ratio_text(over / b, 1.15)])
    print(table(["operation", "in flight", "server CPU", "raw CPU", "overhead", "floor server CPU", "ratio"],
                rows))


REPLAY = re.compile(r"^(\S+)\s+(\d+) tasks:\s+([\d.]+) inserts/s\s+p50 ([\d.]+) ms\s+p99 ([\d.]+) ms")


def replay_lines(path: str) -> dict[str, tuple[float, float, float]]:
    out = {}
    try:
        with open(path, encoding="utf-8") as f:
            for line in f:
                m = REPLAY.match(line)
                if m:
                    out[m.group(1)] = (float(m.group(3)), float(m.group(4)), float(m.group(5)))
    except OSError:
        pass
    return out


def inserts(v: float) -> str:
    return f"{v / 1e6:.1f} M" if v >= 1e6 else f"{v:,.0f}"


def registry(d: str) -> None:
    stores = [("pg", "PostgreSQL", "PostgreSQL"), ("token", "token (1 s tick)", "token")]
    reg = {s: load(os.path.join(d, f"bench-registry-{s}.json")) for s, _, _ in stores}
    heading("Propagation:")
    rows = []
    for s, label, _ in stores:
        for field, change in [("propagation_state_change", "disable / enable a version"),
                              ("propagation_rotation", "RotateKey, promote")]:
            p = (reg[s] or {}).get(field) or {}
            rows.append([label, change] + [ms(p.get(f"{q}_ms")) for q in ("p50", "p90", "p99", "max")])
    print(table(["registry", "change", "p50", "p90", "p99", "max"], rows))

    heading("Admin changes per second:")
    rows = []
    for s, _, label in stores:
        a = (reg[s] or {}).get("admin") or {}
        lat = a.get("latency") or {}
        rows.append([label, rate(a, "ops_per_second"), ms(lat.get("p50_ms")), ms(lat.get("p99_ms")),
                     str(a.get("errors", "n/a"))])
    print(table(["registry", "changes/s", "p50", "p99", "errors"], rows))

    heading("Sign throughput with and without the database:")
    rows = []
    for s, _, label in stores:
        r = load(os.path.join(d, f"sign-{s}.json"))
        lat = (r or {}).get("latency_us") or {}
        p50 = ms(lat["p50"] / 1000) if "p50" in lat else "n/a"
        p99 = ms(lat["p99"] / 1000) if "p99" in lat else "n/a"
        rows.append([label, rate(r), p50, p99, cpu(r, "server")])
    print(table(["registry", "req/s", "p50", "p99", "server CPU / req"], rows))

    one, many = replay_lines(os.path.join(d, "replay-1.txt")), replay_lines(os.path.join(d, "replay-16.txt"))
    if not one and not many:
        print("\n(replay stores not measured in this run)")
        return
    heading("Replay stores:")
    rows = []
    for kind, label in [("memory", "memory"), ("redis", "Redis"), ("postgres", "PostgreSQL")]:
        a, b = one.get(kind), many.get(kind)
        rows.append([label,
                     inserts(a[0]) if a else "n/a", ms(a[2]) if a else "n/a",
                     inserts(b[0]) if b else "n/a", ms(b[1]) if b else "n/a", ms(b[2]) if b else "n/a"])
    print(table(["store", "1 task: inserts/s", "p99", "16 tasks: inserts/s", "p50", "p99"], rows))


def batch(d: str) -> None:
    heading("Batches (`SignBatch`, 1 KiB messages, 4 calls in flight over 2 connections, today's defaults; "
            "each run after a bare tonic floor serving `SignBatch`):")
    names = {"demo-hmac": "HMAC-SHA256", "demo-ecdsa": "ECDSA P-256", "demo-ed25519": "Ed25519",
             "demo-rsa": "RSA-2048"}
    sign = load(os.path.join(d, "sign-demo-hmac.json"))
    rows = []
    for k in ["demo-hmac", "demo-ecdsa", "demo-ed25519", "demo-rsa"]:
        b = load(os.path.join(d, f"batch-{k}.json"))
        ip = load(os.path.join(d, f"inproc2-{k}.json"))
        lim = (b or {}).get("limit") or {}
        items = (b or {}).get("items_per_second")
        if k == "demo-hmac":
            base = (sign or {}).get("requests_per_second")
            against = "n/a" if not (items and base) else (
                f"{items / base:.1f}× `Sign` ({rate(sign)}/s; target 10×: "
                f"{'met' if items >= 10 * base else 'not met'})")
        else:
            base = (ip or {}).get("requests_per_second")
            against = "n/a" if not (items and base) else (
                f"{100 * items / base:.0f} % of in-process ({rate(ip)}/s; target 70 %: "
                f"{'met' if items >= 0.7 * base else 'not met'})")
        per_item = (b or {}).get("server_cpu_us_per_item")
        client = (b or {}).get("client_cpu_us_per_item")
        share = lim.get("share_percent")
        rows.append([names[k], str((b or {}).get("batch", "n/a")), rate(b, "items_per_second"), against,
                     "n/a" if per_item is None else f"{cpu_value(per_item)} µs",
                     "n/a" if client is None else f"{cpu_value(client)} µs",
                     rate(lim, "floor_requests_per_second"),
                     "n/a" if share is None else f"{share:.0f} %", latency(b)])
    print(table(["algorithm", "items / call", "items/s", "against the target", "server CPU / item",
                 "client CPU / item", "floor items/s", "share of the limit", "p50 / p99 per call"], rows))


def keys(d: str) -> None:
    def proc(name: str) -> tuple[float, float] | None:
        try:
            rss, hz, ticks, secs = open(os.path.join(d, f"{name}.proc")).read().split()
        except (OSError, ValueError):
            return None
        return float(rss), float(ticks) / float(hz) / float(secs)

    before, after = proc("before"), proc("after")
    created = load(os.path.join(d, "create.json")) or {}
    n = created.get("created")
    heading("Scale in keys (in-memory backend, HMAC-SHA256 keys made by `CreateKey`):")
    mem = "n/a"
    if before and after and n:
        mem = f"{before[0] / 1024:.1f} → {after[0] / 1024:.1f} MiB: {(after[0] - before[0]) * 1024 / n:,.0f} bytes per key"
    cpu_row = "n/a" if not (before and after) else f"{1000 * before[1]:.1f} → {1000 * after[1]:.1f} ms of CPU per second"
    rows = [
        ["keys", f"4 → {n + 4:,}" if n else "n/a"],
        ["resident memory", mem],
        ["background work (idle server, 5 s)", cpu_row],
        ["creating them (16 threads)", "n/a" if not n else
         f"{created['create_seconds']:.1f} s ({created['creates_per_second']:,.0f} keys/s)"],
        ["`ListKeys` through all, pages of 1000", "n/a" if not n else
         f"{created['list_seconds']:.2f} s, {created['pages']} pages, {created['listed']:,} keys"],
    ]
    for label, name in [("`Sign` before (demo-hmac, 4 keys)", "sign-before"),
                        ("`Sign` after (one key among them)", "sign-after")]:
        r = load(os.path.join(d, f"{name}.json"))
        rows.append([label, "n/a" if not r else
                     f"{rate(r)} req/s, p50 / p99 {latency(r)}, server CPU {cpu(r, 'server')}"])
    print(table(["", "figure"], rows))

    hsm = load(os.path.join(d, "hsm-create.json")) or {}
    m = hsm.get("created")
    try:
        startup_ms = int(open(os.path.join(d, "hsm-startup.ms")).read())
    except (OSError, ValueError):
        startup_ms = None
    after_hsm = proc("hsm-after")
    heading("The same on a SoftHSM2 token (HMAC-SHA256, key objects and registry records on the token):")
    sign_hsm = load(os.path.join(d, "hsm-sign.json"))
    rows = [
        ["keys", f"{m:,}" if m else "n/a"],
        ["creating them (16 threads)", "n/a" if not m else
         f"{hsm['create_seconds']:.1f} s ({hsm['creates_per_second']:,.1f} keys/s)"],
        ["`ListKeys` through all, pages of 1000", "n/a" if not m else f"{hsm['list_seconds']:.2f} s"],
        ["restart: from exec to listening", "n/a" if startup_ms is None else f"{startup_ms / 1000:.2f} s"],
        ["resident memory after the restart", "n/a" if not after_hsm else f"{after_hsm[0] / 1024:.1f} MiB"],
        ["background work (idle, 5 s)", "n/a" if not after_hsm else f"{1000 * after_hsm[1]:.1f} ms of CPU per second"],
        ["`Sign` on one key among them", "n/a" if not sign_hsm else
         f"{rate(sign_hsm)} req/s, p50 / p99 {latency(sign_hsm)}, server CPU {cpu(sign_hsm, 'server')}"],
    ]
    print(table(["", "figure"], rows))


def builds(d: str) -> None:
    """scripts/bench-ab.sh: ab/ROUND.SHAPE.KEY.SIDE.json, two builds per row."""
    found: dict[tuple[str, str], dict[str, list[dict]]] = {}
    for p in sorted(glob.glob(os.path.join(d, "ab", "*.json")), key=lambda p: int(os.path.basename(p).split(".")[0])):
        _, shape, key, side, _ = os.path.basename(p).split(".")
        r = load(p)
        if r:
            found.setdefault((key, shape), {"a": [], "b": []})[side].append(r)
    rows = []
    for (key, shape), sides in sorted(found.items(), key=lambda kv: (kv[0][0], -int(kv[0][1].split("x")[0]))):
        a, b = ([r["server_cpu_us_per_request"] for r in sides[s]] for s in ("a", "b"))
        change = "n/a"
        if a and b:
            ma, mb = statistics.median(a), statistics.median(b)
            change = f"{cpu_value(ma)} → {cpu_value(mb)} µs ({(mb - ma) / ma:+.0%})"
        n, c = shape.split("x")
        rows.append([key, f"{n} ({c} connections)", ", ".join(cpu_value(v) for v in a) + " µs",
                     ", ".join(cpu_value(v) for v in b) + " µs", change,
                     f"{rates(sides['a'])} → {rates(sides['b'])}"])
    heading("Server CPU per call, build A then build B in each round (median A → B), and req/s:")
    print(table(["key", "in flight", "A", "B", "median", "req/s"], rows))


def cipher(d: str) -> None:
    """CipherService next to Sign, each a `--floor` run: mem-RPC.json, hsm-RPC.json."""
    names = [("sign", "`Sign` (HMAC-SHA256)"), ("encrypt", "`Encrypt` 1 KiB"), ("decrypt", "`Decrypt` 1 KiB"),
             ("data-key", "`GenerateDataKey`")]
    heading("Against the target (each row one `signet bench --floor` run: the floor, a bare tonic call moving "
            "as many bytes each way, then signet, then the operation in-process on one thread):")
    rows = []
    for backend, label in [("mem", "memory"), ("hsm", "SoftHSM2")]:
        for rpc, name in names:
            on = load(os.path.join(d, f"{backend}-{rpc}.json"))
            rows.append([label, name, latency(on)] + floor_row(on, (on or {}).get("limit") or {}))
    print(table(["backend", "RPC", "p50 / p99", "floor req/s", "floor CPU / call (server + client)",
                 "operation CPU / call", "limit", "signet req/s", "share of the limit",
                 "signet server CPU − operation", "÷ floor server CPU"], rows))
    heading("On SoftHSM2, the token alone (signet's backend, no RPC, one thread per CPU), and the limit with "
            "its cost in place of the in-memory operation's: CPUs / (floor server + floor client + token CPU):")
    rows = []
    for rpc, name in names[1:]:
        r, on = load(os.path.join(d, f"hsm-backend-{rpc}.json")), load(os.path.join(d, f"hsm-{rpc}.json"))
        lim, t = (on or {}).get("limit") or {}, (r or {}).get("client_cpu_us_per_request")
        fs, fc = lim.get("floor_server_cpu_us_per_request"), lim.get("floor_client_cpu_us_per_request")
        share = "n/a"
        if None not in (t, fs, fc) and on.get("requests_per_second"):
            limit = lim["cpus"] / (fs + fc + t) * 1e6
            share = f"{lim['cpus']} / {cpu_value(fs + fc + t)} µs = {limit:,.0f}/s; signet {on['requests_per_second'] / limit:.0%}"
        rows.append([name, rate(r), cpu(r, "client"), share])
    print(table(["operation", "ops/s", "CPU / op", "limit with the token, and signet's share"], rows))


SECTIONS = {"grpc": grpc, "batch": batch, "cipher": cipher, "keys": keys, "security": security, "telemetry": telemetry, "pkcs11": pkcs11,
            "registry": registry, "ab": builds}


def main(argv: list[str]) -> int:
    if len(argv) != 3 or argv[1] not in SECTIONS:
        print(f"usage: {argv[0]} {{{','.join(SECTIONS)}}} DIR", file=sys.stderr)
        return 2
    SECTIONS[argv[1]](argv[2])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
