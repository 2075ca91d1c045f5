#!/usr/bin/env python3
"""Times commands in interleaved rounds (A B C, A B C, ...) and writes hyperfine-style JSON.

This machine's disk drifts over minutes: `b3sum` of the same cold 4 GiB file took 2.2 s in one
round and 5.9 s a few minutes later. hyperfine runs every repetition of one command before the
next, so on such a disk its commands meet different disk states; in rounds, each command meets
the same ones, and the medians compare like with like.

Usage: interleaved.py --runs N [--warmup K] --export-json OUT [--prepare SHELL_CMD] -n NAME CMD ...
A --prepare applies to the commands named after it (as in hyperfine) and runs through `sh -c`
before each of their runs, untimed; the commands run without a shell (as hyperfine -N).
"""
import json
import os
import shlex
import statistics
import subprocess
import sys


def parse(argv):
    runs, warmup, out, prepare, commands = 3, 0, None, None, []
    i = 0
    while i < len(argv):
        a = argv[i]
        if a == "--runs":
            runs = int(argv[i + 1])
            i += 2
        elif a == "--warmup":
            warmup = int(argv[i + 1])
            i += 2
        elif a == "--export-json":
            out = argv[i + 1]
            i += 2
        elif a == "--prepare":
            prepare = argv[i + 1]
            i += 2
        elif a == "-n":
            commands.append({"name": argv[i + 1], "command": argv[i + 2], "prepare": prepare})
            i += 3
        else:
            sys.exit(f"interleaved.py: unexpected argument {a!r} (see the usage at the top)")
    if not commands or out is None:
        sys.exit("interleaved.py: give --export-json OUT and at least one -n NAME CMD")
    return runs, warmup, out, commands


def timed(command):
    """Wall, user and system seconds of one run; fails the script if the command fails."""
    start = os.times().elapsed
    proc = subprocess.Popen(shlex.split(command), stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = os.times().elapsed - start
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        sys.exit(f"interleaved.py: {command!r} exited with {proc.returncode}")
    return wall, usage.ru_utime, usage.ru_stime


def main():
    runs, warmup, out, commands = parse(sys.argv[1:])
    for c in commands:
        c["times"], c["user"], c["system"] = [], [], []
    for _ in range(warmup):
        for c in commands:
            if c["prepare"]:
                subprocess.run(["sh", "-c", c["prepare"]], check=True, stdout=subprocess.DEVNULL)
            timed(c["command"])
    for r in range(runs):
        line = []
        for c in commands:
            if c["prepare"]:
                subprocess.run(["sh", "-c", c["prepare"]], check=True, stdout=subprocess.DEVNULL)
            wall, user, system = timed(c["command"])
            c["times"].append(wall)
            c["user"].append(user)
            c["system"].append(system)
            line.append(f"{c['name']} {wall:.2f}")
        print(f"round {r + 1}/{runs}: " + ", ".join(line), flush=True)
    results = [
        {
            "command": c["name"],
            "mean": statistics.mean(c["times"]),
            "median": statistics.median(c["times"]),
            "min": min(c["times"]),
            "max": max(c["times"]),
            "user": statistics.mean(c["user"]),
            "system": statistics.mean(c["system"]),
            "times": c["times"],
        }
        for c in commands
    ]
    with open(out, "w") as f:
        json.dump({"results": results, "method": "interleaved rounds"}, f, indent=1)


if __name__ == "__main__":
    main()
