"""Hostile clients against a running gate, with a /healthz prober beside them (bench/abuse.sh).

  python3 abuse.py HOST PORT SECONDS probe|abuse
  python3 abuse.py HOST PORT SECONDS listing REPO SHORT_ID FILES

`abuse` runs the abusers (each reconnects 50 ms after the server closes it):
  silent     400 sockets that connect and send nothing
  h2         50 sockets that send the first line of the HTTP/2 prior-knowledge preface, then stop
  slowloris  50 sockets that send a request head one byte every 2 s, never finishing it
  oversized  4 clients sending 60 KB request paths back to back (each answered 400 or 414)
500 held sockets exceed the gate's connection cap under the default 1,024 open files (480).
`listing` floods the metadata routes of REPO (a revision of FILES files named f00000...):
  paths-info  4 clients posting 1,000 paths (the cap) back to back, half of them present
  commits     4 clients asking for the commits of SHORT_ID (a shortened revision id)
  decision    2 clients asking /v1/decision/REPO/SHORT_ID
`probe` (a separate process, so the abusers' event loop does not delay it) opens a new
connection every 20 ms for GET /healthz and records its latency.
Each prints one JSON line.
"""
import asyncio
import json
import sys
import time

HOST, PORT, SECONDS = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
ABUSE = sys.argv[4] == "abuse"
LISTING = sys.argv[4] == "listing"
stats = {"connections": 0, "oversized_answered": 0, "probe_failures": 0}
latencies = []


async def connect():
    reader, writer = await asyncio.open_connection(HOST, PORT)
    stats["connections"] += 1
    return reader, writer


async def hold(send_first, trickle=None):
    """Connects, sends `send_first`, then trickles `trickle` a byte every 2 s until closed."""
    while True:
        try:
            reader, writer = await connect()
            writer.write(send_first)
            await writer.drain()
            pending = trickle or b""
            while True:
                try:
                    data = await asyncio.wait_for(reader.read(4096), timeout=2)
                    if not data:
                        break
                except asyncio.TimeoutError:
                    if pending:
                        writer.write(pending[:1])
                        pending = pending[1:] or trickle
                        await writer.drain()
            writer.close()
        except (OSError, ConnectionError):
            pass
        await asyncio.sleep(0.05)


async def oversized():
    path = "/lab/tiny/resolve/main/" + "a" * 60_000
    while True:
        try:
            reader, writer = await connect()
            writer.write(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
            await writer.drain()
            head = await asyncio.wait_for(reader.read(64), timeout=10)
            if head.startswith(b"HTTP/1.1 4"):
                stats["oversized_answered"] += 1
            writer.close()
        except (OSError, ConnectionError, asyncio.TimeoutError):
            await asyncio.sleep(0.05)


async def flood(name, request):
    """Sends `request` on a keep-alive connection back to back, counting answers by status."""
    while True:
        try:
            reader, writer = await connect()
            while True:
                writer.write(request)
                await writer.drain()
                head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), timeout=30)
                status = head.split(b" ", 2)[1].decode()
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":", 1)[1])
                await reader.readexactly(length)
                key = f"{name}_{status}"
                stats[key] = stats.get(key, 0) + 1
        except (OSError, ConnectionError, asyncio.TimeoutError, asyncio.IncompleteReadError):
            await asyncio.sleep(0.05)


def listing_tasks(repo, short, files):
    paths = [f"f{i:05}" for i in range(0, 2 * files, 2)][:1000]
    body = json.dumps({"paths": paths}).encode()
    post = (f"POST /api/models/{repo}/paths-info/main HTTP/1.1\r\nHost: x\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    commits = f"GET /api/models/{repo}/commits/{short} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    decision = f"GET /v1/decision/{repo}/{short} HTTP/1.1\r\nHost: x\r\n\r\n".encode()
    return ([asyncio.create_task(flood("paths_info", post)) for _ in range(4)]
            + [asyncio.create_task(flood("commits", commits)) for _ in range(4)]
            + [asyncio.create_task(flood("decision", decision)) for _ in range(2)])


async def probe(until):
    while time.monotonic() < until:
        t0 = time.monotonic()
        try:
            reader, writer = await asyncio.wait_for(asyncio.open_connection(HOST, PORT), 5)
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            await writer.drain()
            data = await asyncio.wait_for(reader.read(), 5)
            writer.close()
            if data.startswith(b"HTTP/1.1 200"):
                latencies.append((time.monotonic() - t0) * 1000)
            else:
                stats["probe_failures"] += 1
        except (OSError, ConnectionError, asyncio.TimeoutError):
            stats["probe_failures"] += 1
        await asyncio.sleep(0.02)


async def main():
    until = time.monotonic() + SECONDS
    if ABUSE:
        tasks = [asyncio.create_task(hold(b"")) for _ in range(400)]
        tasks += [asyncio.create_task(hold(b"PRI * HTTP/2.0\r\n")) for _ in range(50)]
        head = b"GET /lab/tiny/resolve/main/config.json HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 1000
        tasks += [asyncio.create_task(hold(head[:20], head[20:])) for _ in range(50)]
        tasks += [asyncio.create_task(oversized()) for _ in range(4)]
        await asyncio.sleep(max(0, until - time.monotonic()))
        for t in tasks:
            t.cancel()
        print(json.dumps({"abuse": True, **{k: v for k, v in stats.items() if k != "probe_failures"}}))
        return
    if LISTING:
        tasks = listing_tasks(sys.argv[5], sys.argv[6], int(sys.argv[7]))
        await asyncio.sleep(max(0, until - time.monotonic()))
        for t in tasks:
            t.cancel()
        print(json.dumps({"listing": True, **{k: v for k, v in stats.items() if k != "probe_failures"}}))
        return
    await probe(until)
    lat = sorted(latencies)
    pick = lambda q: round(lat[min(len(lat) - 1, int(q * len(lat)))], 2) if lat else None
    print(json.dumps({"probes": len(lat), "p50_ms": pick(0.5), "p99_ms": pick(0.99),
                      "max_ms": round(lat[-1], 2) if lat else None,
                      "probe_failures": stats["probe_failures"]}))


asyncio.run(main())
