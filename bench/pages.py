"""Load for bench/pages.sh against a running gate; each mode prints one JSON line.

  pages.py latency URL N [render]   N sequential page requests (Accept: text/html, keep-alive):
                                    p50/p99/max milliseconds, page bytes; with `render`, each
                                    request names another Host, so none is answered from the
                                    gate's per-second page cache (decisions stay cached)
  pages.py load URL RATE SECONDS    RATE page requests a second, spread over 16 connections,
                                    for SECONDS: requests sent, answered 200, achieved rate
  pages.py download URL SECONDS     downloads URL back to back on one connection: MB/s
  pages.py probe URL SECONDS        GET /healthz on a new connection every 20 ms: p50/p99/max ms
"""
import asyncio
import json
import sys
import time
import urllib.parse

MODE, URL = sys.argv[1], sys.argv[2]
u = urllib.parse.urlsplit(URL)
HOST, PORT, PATH = u.hostname, u.port, (u.path or "/") + (("?" + u.query) if u.query else "")
PAGE_HEAD = (f"GET {PATH} HTTP/1.1\r\nHost: {HOST}:{PORT}\r\nAccept: text/html\r\n"
             "CF-IPCountry: DE\r\n\r\n").encode()


def pct(xs, p):
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(len(xs) * p))] * 1000, 3) if xs else None


async def read_response(reader):
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = 0
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            length = int(line.split(b":", 1)[1])
    left = length
    while left:
        chunk = await reader.read(min(left, 1 << 20))
        if not chunk:
            raise ConnectionError("closed mid-body")
        left -= len(chunk)
    return status, length


async def latency(n, render):
    reader, writer = await asyncio.open_connection(HOST, PORT)
    times, size = [], 0
    for i in range(n):
        head = PAGE_HEAD.replace(f"Host: {HOST}:{PORT}".encode(), f"Host: bench-{i}".encode()) if render else PAGE_HEAD
        t = time.perf_counter()
        writer.write(head)
        status, size = await read_response(reader)
        times.append(time.perf_counter() - t)
        assert status == 200, status
    print(json.dumps({"mode": "latency" + (" (rendered each time)" if render else " (page cache)"), "requests": n, "bytes": size,
                      "p50_ms": pct(times, 0.5), "p99_ms": pct(times, 0.99), "max_ms": pct(times, 1.0)}))


async def load(rate, seconds):
    conns = 16
    stats = {"sent": 0, "ok": 0}
    interval = conns / rate
    end = time.perf_counter() + seconds

    async def one():
        reader, writer = await asyncio.open_connection(HOST, PORT)
        nxt = time.perf_counter()
        while time.perf_counter() < end:
            writer.write(PAGE_HEAD)
            stats["sent"] += 1
            status, _ = await read_response(reader)
            stats["ok"] += status == 200
            nxt += interval
            await asyncio.sleep(max(0, nxt - time.perf_counter()))

    start = time.perf_counter()
    await asyncio.gather(*(one() for _ in range(conns)))
    stats["rate"] = round(stats["sent"] / (time.perf_counter() - start), 1)
    print(json.dumps({"mode": "load", **stats}))


async def download(seconds):
    reader, writer = await asyncio.open_connection(HOST, PORT)
    head = f"GET {PATH} HTTP/1.1\r\nHost: {HOST}:{PORT}\r\n\r\n".encode()
    total, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        writer.write(head)
        status, n = await read_response(reader)
        assert status == 200, status
        total += n
    mbs = total / (time.perf_counter() - start) / 1e6
    print(json.dumps({"mode": "download", "bytes": total, "MB_per_s": round(mbs, 1)}))


async def probe(seconds):
    times, end = [], time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        reader, writer = await asyncio.open_connection(HOST, PORT)
        writer.write(f"GET /healthz HTTP/1.1\r\nHost: {HOST}\r\nConnection: close\r\n\r\n".encode())
        await reader.read()
        times.append(time.perf_counter() - t)
        writer.close()
        await asyncio.sleep(0.02)
    print(json.dumps({"mode": "probe", "requests": len(times),
                      "p50_ms": pct(times, 0.5), "p99_ms": pct(times, 0.99), "max_ms": pct(times, 1.0)}))


if MODE == "latency":
    asyncio.run(latency(int(sys.argv[3]), sys.argv[4:] == ["render"]))
elif MODE == "load":
    asyncio.run(load(float(sys.argv[3]), float(sys.argv[4])))
elif MODE == "download":
    asyncio.run(download(float(sys.argv[3])))
elif MODE == "probe":
    asyncio.run(probe(float(sys.argv[3])))
else:
    sys.exit(__doc__)
