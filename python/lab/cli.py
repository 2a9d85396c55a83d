"""The ``lab`` console script: the same command line as the ``lab`` binary."""

import sys


def main() -> int:
    """Run ``lab`` with this process's arguments and return its exit code."""
    from lab._lab import run_cli

    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        pass
    return run_cli(["lab", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
