"""The ``lab`` console script: the same command line as the ``lab`` binary."""

import sys


def main() -> int:
    """Run ``lab`` with this process's arguments and return its exit code."""
    import os
    import signal

    from lab._lab import run_cli

    # Commands that build environments need the Python Lab runs in.
    os.environ.setdefault("LAB_PYTHON", sys.executable)
    # Ctrl-C as for the binary: Python's own handler would only set a flag
    # that the native code never looks at (so `lab watch` went on), then
    # raise `KeyboardInterrupt` with a traceback once it returned. `lab ui`
    # installs its own handler to stop cleanly.
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, signal.SIG_DFL)

    try:
        sys.stdout.flush()
    except (BrokenPipeError, ValueError):
        pass
    return run_cli(["lab", *sys.argv[1:]])


if __name__ == "__main__":
    sys.exit(main())
