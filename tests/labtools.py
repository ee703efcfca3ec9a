"""Driving the lab from tests: SSH with strict host-key checking, installing rendered configs,
and waiting for conditions with deadlines (never sleeping as synchronisation)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from k8s_ha_tui.configs import render
from k8s_ha_tui.lab import cluster, layout
from k8s_ha_tui.model import topology
from k8s_ha_tui.status import parse

MASTERS = ["k8s-master-01", "k8s-master-02", "k8s-master-03"]  # the lab's, as `lab up` makes it


async def until(pilot, condition: Callable[[], object], timeout: float, what: str) -> None:
    """wait_for inside a Textual Pilot: the app keeps running while we wait."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        await pilot.pause(0.1)


def tool(*args: str, timeout: float = 180, env: dict | None = None) -> subprocess.CompletedProcess:
    """`k8s-ha-tui ARGS` as a script runs it: no terminal, output captured."""
    return subprocess.run([sys.executable, "-m", "k8s_ha_tui", *args], capture_output=True, text=True,
                          timeout=timeout, stdin=subprocess.DEVNULL, env=env)


def status(lab: Lab) -> tuple[int, dict]:
    """`status --json`: its exit code and its document."""
    res = tool("status", "-t", str(lab.topology_path), "--json")
    return res.returncode, json.loads(res.stdout)


def lab_unavailable() -> str | None:
    if os.geteuid() != 0:
        return "the lab needs root"
    try:
        cluster.preflight()
    except Exception as exc:  # the reason is the message
        return str(exc)
    return None


def wait_for(condition: Callable[[], object], timeout: float, what: str, interval: float = 0.1):
    """Poll until `condition()` is truthy and return its value; fail the test at the deadline."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


@dataclass
class Lab:
    topo: topology.Topology
    topology_path: Path

    @classmethod
    def start(cls) -> Lab:
        path = cluster.up(3, 3, log=lambda _m: None)
        return cls(topology.load_topology(path), path)

    def stop(self) -> None:
        cluster.down(log=lambda _m: None)

    @property
    def paths(self) -> layout.LabPaths:
        return cluster.lab_paths()

    def ssh_argv(self, address: str, user: str = "root") -> list[str]:
        return ["ssh", "-i", str(self.paths.client_key),
                "-o", f"UserKnownHostsFile={self.paths.known_hosts}", "-o", "StrictHostKeyChecking=yes",
                "-o", "GlobalKnownHostsFile=/dev/null", "-o", "BatchMode=yes", "-o", "ConnectTimeout=3",
                "-F", "/dev/null", f"{user}@{address}"]

    def ssh(self, node: str, command: str, input: str | None = None, timeout: float = 20,
            check: bool = True) -> subprocess.CompletedProcess:
        return self.ssh_as("root", node, command, input, timeout, check)

    def ssh_as(self, user: str, node: str, command: str, input: str | None = None, timeout: float = 20,
               check: bool = True) -> subprocess.CompletedProcess:
        """`command` on `node` as the lab's login `user` (root, operator, k8sha-watch, k8sha-ops)."""
        address = self.address(node)
        res = subprocess.run([*self.ssh_argv(address, user), command], input=input, capture_output=True,
                             text=True, timeout=timeout)
        if check and res.returncode != 0:
            raise AssertionError(f"ssh {node} {command!r}: exit {res.returncode}: {res.stderr.strip()}")
        return res

    def address(self, node: str) -> str:
        return next(n.address for n in layout.lab_nodes(3, 3) if n.name == node)

    def deploy(self) -> None:
        """Make the rendered configs live with the real `deploy` (tested in test_deploy.py)."""
        res = subprocess.run([sys.executable, "-m", "k8s_ha_tui", "deploy", "-t", str(self.topology_path), "--yes"],
                             capture_output=True, text=True, timeout=180, stdin=subprocess.DEVNULL)
        if res.returncode != 0:
            raise AssertionError(f"deploy failed: {res.stderr.strip()}")

    def holders(self) -> list[str]:
        """Masters whose eth0 carries the VIP (asked of the kernel, not of keepalived)."""
        out = []
        for m in self.topo.masters:
            res = subprocess.run(["ip", "-n", layout.netns_of(m.name), "-o", "-4", "addr", "show",
                                  "dev", layout.NODE_LINK], capture_output=True, text=True)
            if f" {self.topo.vip}/" in res.stdout:
                out.append(m.name)
        return out

    def vrrp_state(self, node: str) -> str:
        """The state keepalived last reported through the rendered notify script."""
        res = self.ssh(node, f"cat {render.PATHS.state_file} 2>/dev/null || true")
        return parse.notify_state(res.stdout, render.instance_name(self.topo)).get("state", "UNKNOWN")

    def heal_all(self) -> None:
        for n in layout.lab_nodes(3, 3):
            cluster.heal(n.name)

