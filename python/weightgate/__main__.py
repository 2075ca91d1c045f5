"""`python -m weightgate ARGS...` runs the bundled binary."""
import os
import sys

from weightgate._binary import find_binary


def main() -> None:
    binary = find_binary()
    if sys.platform == "win32":  # no exec on Windows: run and pass the exit code on
        import subprocess

        sys.exit(subprocess.call([binary, *sys.argv[1:]]))
    os.execv(binary, [binary, *sys.argv[1:]])


if __name__ == "__main__":
    main()
