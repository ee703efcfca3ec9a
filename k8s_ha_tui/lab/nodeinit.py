"""PID 1 of a lab node's own PID namespace (standalone: it imports nothing of the package).

It runs the node's setup script, then sshd, and reaps every process that ends inside the node,
so daemons started and stopped over SSH leave no zombies. When sshd ends, or on SIGTERM, it
ends too, and the kernel ends everything else in the node with it.

usage: nodeinit.py SETUP_SCRIPT -- SSHD ARGS...
"""

import os
import signal
import subprocess
import sys


def main() -> int:
    argv = sys.argv[1:]
    if "--" not in argv or argv.index("--") != 1:
        print("usage: nodeinit.py SETUP_SCRIPT -- COMMAND...", file=sys.stderr)
        return 2
    setup, command = argv[0], argv[2:]
    if subprocess.call(["/bin/sh", setup]) != 0:
        print(f"nodeinit: setup {setup} failed", file=sys.stderr)
        return 1
    main_child = subprocess.Popen(command)

    def stop(signum, _frame):
        main_child.send_signal(signal.SIGTERM)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    while True:
        try:
            pid, status = os.wait()
        except ChildProcessError:
            return 0
        except InterruptedError:  # pragma: no cover - PEP 475 retries for us
            continue
        if pid == main_child.pid:
            return os.waitstatus_to_exitcode(status)


if __name__ == "__main__":
    sys.exit(main())
