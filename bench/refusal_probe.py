#!/usr/bin/env python3
"""Open-loop latency probe: GETs of one URL at a fixed rate on a few keep-alive connections, as
independent clients would send them, whatever the server does meanwhile.

Request k is scheduled at start + k/rate, round-robin over the connections. Its latency is
measured from that scheduled time, not from when it was sent: a request that had to wait for
its connection (the one before it stalled) counts the wait, so a stall is not hidden by the
probe sending less (no coordinated omission, as in wrk2). Each answer must have the expected
status.

Runs for --seconds, or until SIGINT/SIGTERM; then waits for the requests in flight and prints
one JSON line: scheduled, answered, p50/p99/max in ms, and the rate actually offered.
Standard library only (asyncio), so bench/upload.sh runs it for nginx and the gate alike.

Usage: refusal_probe.py URL [--header NAME:VALUE] [--status 451] [--rate 100]
       [--connections 4] [--seconds S]
"""

import argparse
import asyncio
import json
import signal
import sys
import time
import urllib.parse


class WrongStatus(Exception):
    pass


def percentile(xs, q):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(len(xs) * q))] if xs else float("nan")


async def one_connection(url, headers, status, rate, n_conns, index, start, stop, out):
    """Sends requests index, index + n_conns, ... at their scheduled times on one connection."""
    u = urllib.parse.urlsplit(url)
    path = u.path + (f"?{u.query}" if u.query else "")
    request = (
        f"GET {path} HTTP/1.1\r\nHost: {u.netloc}\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in headers)
        + "\r\n"
    ).encode()
    reader = writer = None
    k = index
    while True:
        scheduled = start + k / rate
        delay = scheduled - time.monotonic()
        if delay > 0:
            try:
                await asyncio.wait_for(stop.wait(), delay)
            except asyncio.TimeoutError:
                pass
        if stop.is_set() and scheduled > stop.at:
            break
        for attempt in range(2):
            if writer is None:
                reader, writer = await asyncio.open_connection(u.hostname, u.port or 80)
            try:
                writer.write(request)
                head = await reader.readuntil(b"\r\n\r\n")
                break
            except (asyncio.IncompleteReadError, ConnectionError):
                # The server closed a kept-alive connection: once more on a new one (the
                # latency still counts from the scheduled time).
                writer.close()
                reader = writer = None
                if attempt:
                    raise
        lines = head.decode("latin-1").split("\r\n")
        got = int(lines[0].split()[1])
        fields = {}
        for line in lines[1:]:
            if ":" in line:
                name, value = line.split(":", 1)
                fields[name.strip().lower()] = value.strip()
        await reader.readexactly(int(fields.get("content-length", "0")))
        out.append(time.monotonic() - scheduled)
        if got != status:
            raise WrongStatus(f"{url} answered {got}, not {status}")
        if fields.get("connection", "").lower() == "close":
            writer.close()
            reader = writer = None
        k += n_conns
    if writer is not None:
        writer.close()


async def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("url")
    ap.add_argument("--header", action="append", default=[])
    ap.add_argument("--status", type=int, default=451)
    ap.add_argument("--rate", type=float, default=100.0)
    ap.add_argument("--connections", type=int, default=4)
    ap.add_argument("--seconds", type=float, default=None)
    a = ap.parse_args()
    headers = [h.split(":", 1) for h in a.header]
    stop = asyncio.Event()
    stop.at = float("inf")

    def halt():
        stop.at = time.monotonic()
        stop.set()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, halt)
    if a.seconds is not None:
        loop.call_later(a.seconds, halt)
    out = []
    start = time.monotonic()
    await asyncio.gather(
        *(
            one_connection(a.url, headers, a.status, a.rate, a.connections, i, start, stop, out)
            for i in range(a.connections)
        )
    )
    took = stop.at - start
    scheduled = int(took * a.rate) + 1  # request 0 is at the start
    print(
        json.dumps(
            {
                "scheduled": scheduled,
                "answered": len(out),
                "rate": a.rate,
                "seconds": round(took, 3),
                "p50_ms": round(percentile(out, 0.50) * 1000, 3),
                "p99_ms": round(percentile(out, 0.99) * 1000, 3),
                "max_ms": round(max(out, default=float("nan")) * 1000, 3),
            }
        )
    )


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except WrongStatus as e:
        sys.exit(str(e))
