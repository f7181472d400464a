"""`python -m harness.chaos`: see chaos.cli."""

from __future__ import annotations

import os
import sys

from harness.chaos.cli import main

if __name__ == "__main__":
    code = main()
    # The SDK's native threads can crash interpreter teardown once the work is done;
    # skip teardown so the exit code is the suite's.
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
