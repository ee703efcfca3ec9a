#!/usr/bin/env bash
# Set everything up, then run the demo on the built-in lab.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$here/scripts/setup.sh"
exec "$here/.venv/bin/k8s-ha-tui" demo "$@"
