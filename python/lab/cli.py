"""The ``lab`` console script: the same command line as the ``lab`` binary."""

import sys


def main() -> int:
    """Run ``lab`` with this process's arguments and return its exit code."""
    import os

    from lab._lab import run_cli

    # Commands that build environments need the Python Lab runs in.
    os.environ.setdefault("LAB_PYTHON", sys.executable)

    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        pass
    return run_cli(["lab", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
