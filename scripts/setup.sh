#!/usr/bin/env bash
# Install everything k8s-ha-tui and its lab need on a Debian/Ubuntu machine, as root.
# Safe to run again: it installs only what is missing and reuses the virtual environment.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"

if [ "$(id -u)" -ne 0 ]; then
    echo "error: run as root (sudo $0): the lab needs network namespaces and Debian packages" >&2
    exit 1
fi

# Debian packages: the real daemons for the lab and the checkers, plus the tools the lab uses.
debs=(keepalived haproxy openssh-server openssh-client iproute2 curl nftables openssl
      util-linux procps sudo tmux tcpdump python3 python3-venv python3-pip
      prometheus)  # the real Prometheus and promtool: the alert rules are tested with both
missing=()
for p in "${debs[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
    echo "setup: installing Debian packages: ${missing[*]}"
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    # A policy-rc.d keeps the package scripts from starting keepalived and haproxy on this
    # machine itself (the lab runs its own, per node). Only ours is removed afterwards.
    if [ ! -e /usr/sbin/policy-rc.d ]; then
        printf '#!/bin/sh\nexit 101\n' > /usr/sbin/policy-rc.d; chmod 755 /usr/sbin/policy-rc.d
        trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# Python 3.11+: the one on PATH if new enough, else Debian's.
py=""
for cand in python3 /usr/bin/python3; do
    if command -v "$cand" >/dev/null && "$cand" -c 'import sys; sys.exit(sys.version_info < (3, 11))'; then
        py="$cand"; break
    fi
done
[ -n "$py" ] || { echo "error: k8s-ha-tui needs Python 3.11 or newer" >&2; exit 1; }

venv="$here/.venv"
if [ ! -x "$venv/bin/python" ]; then
    echo "setup: creating $venv"
    "$py" -m venv "$venv"
fi
stamp="$venv/.installed-$(sha256sum "$here/pyproject.toml" | cut -c1-16)"
if [ ! -f "$stamp" ]; then
    echo "setup: installing Python packages into $venv"
    "$venv/bin/python" -m pip install -q --upgrade pip
    "$venv/bin/python" -m pip install -q -e "$here[test]"
    rm -f "$venv"/.installed-*
    touch "$stamp"
fi
echo "setup: ready ($("$venv/bin/k8s-ha-tui" --version))"
