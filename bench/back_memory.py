#!/usr/bin/env python3
"""Writes to N GiB of anonymous memory, then frees it (exits).

This VM reports free memory back to its host (virtio-balloon free page reporting): a page freed
for a few seconds is handed back, and the next write to it waits for the host to map it again.
A command that fills the page cache (`cp`) then pays that wait on every page, and the same copy
took 2.4 s or 7.7 s depending on it. Run just before such a command, this leaves it memory the host
has backed, as on a machine without a balloon: the command is timed at its best.

Usage: back_memory.py GIB
"""
import mmap
import sys

size = int(sys.argv[1]) << 30
memory = mmap.mmap(-1, size)
block = b"\1" * (64 << 20)
for offset in range(0, size, len(block)):
    memory[offset : offset + len(block)] = block
