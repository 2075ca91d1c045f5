#!/usr/bin/env python3
"""Reads every file of a gate's audit log, rotated ones included, and checks it against the
requests wrk made (bench/serve.sh, serve-s3.sh, abuse.sh).

The gate rotates LOG to LOG.1 (LOG.1 to LOG.2, ...) and deletes what would go past
`--audit-keep`: the scripts start it with a `--audit-keep` no run reaches, and this fails if
LOG.KEEP exists (a file may have been deleted) or a number is missing.

  audit_check.py LOG --keep K [--wrk OUT...] [--also N] [--refused REPO] [--expect-status CODE]
      Prints one line: records read, files, requests wrk completed, 5xx, bytes of REPO served
      (a record of REPO that is not a refusal), statuses other than CODE. N counts requests
      the script made besides wrk's. Exits 1 when a record is missing (fewer records than
      completed requests), when there are more records than requests made (completed, in
      flight at the end of a wrk run or cut by a socket error), or on any 5xx, byte of REPO
      served or other status.
  audit_check.py LOG --keep K --size
      Prints `RECORDS BYTES LONGEST` over all files (for growth between two points of a run).
"""
import argparse
import json
import os
import re
import sys


def log_files(log, keep):
    """LOG.N ... LOG.1, LOG: oldest first, all of them."""
    numbered = []
    pattern = re.compile(re.escape(os.path.basename(log)) + r"\.(\d+)$")
    for name in os.listdir(os.path.dirname(os.path.abspath(log))):
        m = pattern.match(name)
        if m:
            numbered.append(int(m.group(1)))
    numbered.sort()
    if numbered and numbered != list(range(1, numbered[-1] + 1)):
        sys.exit(f"audit_check: rotated files of {log} are not numbered 1..N: {numbered}")
    if numbered and numbered[-1] >= keep:
        sys.exit(f"audit_check: {log}.{keep} exists: the gate kept only {keep} rotated files, so "
                 "older records may be gone; run it with a larger --audit-keep")
    files = [f"{log}.{n}" for n in reversed(numbered)]
    if os.path.exists(log):
        files.append(log)
    if not files:
        sys.exit(f"audit_check: no audit log at {log}")
    return files


def wrk_counts(paths):
    """Requests completed, connections, and requests cut by socket errors, summed over wrk outputs."""
    done = conns = cut = 0
    for p in paths:
        text = open(p).read()
        m = re.search(r"^\s*(\d+) requests in ", text, re.M)
        c = re.search(r"threads and (\d+) connections", text)
        if not (m and c):
            sys.exit(f"audit_check: {p} is not a finished wrk run (no request or connection count)")
        done += int(m.group(1))
        conns += int(c.group(1))
        e = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", text)
        if e:
            cut += sum(int(x) for x in e.groups())
    return done, conns, cut


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("log")
    ap.add_argument("--keep", type=int, required=True)
    ap.add_argument("--wrk", nargs="*", default=[])
    ap.add_argument("--also", type=int, default=0)
    ap.add_argument("--refused")
    ap.add_argument("--expect-status", type=int)
    ap.add_argument("--size", action="store_true")
    a = ap.parse_args()
    files = log_files(a.log, a.keep)

    if a.size:
        records = size = longest = 0
        for f in files:
            with open(f, "rb") as lines:
                for line in lines:
                    records += 1
                    size += len(line)
                    longest = max(longest, len(line.rstrip(b"\n")))
        print(records, size, longest)
        return

    records = five = leaked = other = 0
    for f in files:
        with open(f) as lines:
            for line in lines:
                r = json.loads(line)
                records += 1
                five += r["status"] >= 500
                if a.refused and r["repo"] == a.refused and r["decision"] != "deny":
                    leaked += r["bytes"]
                if a.expect_status is not None and r["status"] != a.expect_status:
                    other += 1
    done, conns, cut = wrk_counts(a.wrk)
    done += a.also
    line = (f"audit: {records:,} records read from {len(files)} file(s) (every one the run wrote) "
            f"for {done:,} requests completed (+ at most {conns:,} in flight at the end and "
            f"{cut:,} cut by socket errors); {five} 5xx")
    if a.refused:
        line += f", {leaked} bytes of the refused model served"
    if a.expect_status is not None:
        line += f", {other} statuses other than {a.expect_status}"
    print(line)
    problems = []
    if records < done:
        problems.append(f"{done - records:,} completed requests have no record")
    if a.wrk and records > done + conns + cut:
        problems.append(f"{records - done - conns - cut:,} more records than requests made")
    if five or leaked or other:
        problems.append("see the counts above")
    if problems:
        sys.exit("audit_check: " + "; ".join(problems))


if __name__ == "__main__":
    main()
