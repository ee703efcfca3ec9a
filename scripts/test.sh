#!/usr/bin/env bash
# Set everything up, then run the whole test suite (unit, real checkers, and the lab).
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
bash "$here/scripts/setup.sh"
cd "$here"
# The gates first: lint (ruff: pyflakes, pycodestyle, bugbear, pyupgrade, import order), types
# (mypy, check_untyped_defs), the layers (import-linter) and the docs (mkdocs, strict); their
# settings are in pyproject.toml and mkdocs.yml.
echo "gates: ruff"
"$here/.venv/bin/ruff" check k8s_ha_tui tests bench
echo "gates: mypy"
"$here/.venv/bin/mypy"
echo "gates: import-linter (the layers in pyproject.toml)"
"$here/.venv/bin/lint-imports" --no-cache
echo "gates: the docs (mkdocs --strict: every link and anchor resolves)"
site="$(mktemp -d)"
"$here/.venv/bin/mkdocs" build --strict --quiet --config-file "$here/mkdocs.yml" --site-dir "$site"
rm -rf "$site"
set +e
"$here/.venv/bin/python" -m pytest "$@"
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
    echo "error: pytest collected no tests" >&2
    exit 1
fi
exit "$rc"
