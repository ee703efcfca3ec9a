"""Make the SVG screenshots in docs/screenshots/ from real runs of the tool (the lab needs root).

usage: sudo .venv/bin/python scripts/screenshots.py
"""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

from rich.console import Console
from rich.text import Text

ROOT = Path(__file__).resolve().parent.parent
SHOTS = ROOT / "docs" / "screenshots"
TOOL = [sys.executable, "-m", "k8s_ha_tui"]


def shot(name: str, title: str, argv: list[str], width: int = 140) -> None:
    res = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
    console = Console(record=True, width=width, force_terminal=True, color_system="truecolor", file=io.StringIO())
    console.print(Text(f"$ k8s-ha-tui {' '.join(argv[len(TOOL):])}", style="bold green"))
    console.print(Text(res.stdout + res.stderr), soft_wrap=True)
    SHOTS.mkdir(exist_ok=True)
    console.save_svg(str(SHOTS / f"{name}.svg"), title=title)
    print(f"wrote docs/screenshots/{name}.svg (exit {res.returncode})")


def _rise3() -> Path:
    """A copy of the lab topology with one real change, for the dry-run screenshot."""
    import yaml

    src = Path("/var/lib/k8s-ha-tui/lab/topology.yaml")
    data = yaml.safe_load(src.read_text())
    data["check"]["rise"] = 3
    dst = src.with_name("rise3.yaml")
    dst.write_text(yaml.safe_dump(data))
    dst.chmod(0o600)
    return dst


async def monitor_shots() -> None:
    """The TUI against the deployed lab: healthy, right after a failover, and in split brain."""
    import asyncio
    import time

    from k8s_ha_tui.lab import cluster
    from k8s_ha_tui.model import topology
    from k8s_ha_tui.remote.ssh import policy_for
    from k8s_ha_tui.tui.app import MonitorApp
    from k8s_ha_tui.tui.confirm_modal import ConfirmModal
    from k8s_ha_tui.tui.detail_screen import DetailScreen

    topo = topology.load_topology("/var/lib/k8s-ha-tui/lab/topology.yaml")
    app = MonitorApp(topo, policy_for(topo), interval=0.5)

    async def until(pilot, cond, timeout=40):
        deadline = time.monotonic() + timeout
        while not cond():
            if time.monotonic() > deadline:
                raise SystemExit("screenshots: timed out waiting for the lab")
            await pilot.pause(0.1)

    def save(name: str) -> None:
        app.save_screenshot(str(SHOTS / f"{name}.svg"))
        print(f"wrote docs/screenshots/{name}.svg")

    async with app.run_test(size=(120, 34)) as pilot:
        await until(pilot, lambda: app.status is not None and app.status.holders == ["k8s-master-01"]
                    and not app.status.alarms and len(app.query_one("#events").lines) >= 1)
        await pilot.pause(1.0)
        save("monitor-healthy")
        await pilot.press("down", "enter")
        await until(pilot, lambda: isinstance(app.screen, DetailScreen))
        await pilot.pause(1.2)
        save("monitor-detail")
        await pilot.press("escape")
        await pilot.press("up")
        await pilot.press("f")
        await until(pilot, lambda: isinstance(app.screen, ConfirmModal))
        save("monitor-failover-confirm")
        await pilot.press("y")
        await until(pilot, lambda: any("failover k8s-master-01" in line.text for line in app.query_one("#events").lines))
        await pilot.pause(1.5)
        save("monitor-after-failover")
        await asyncio.to_thread(subprocess.run, TOOL + ["maintenance", "-t", str(topo_path()), "k8s-master-01", "off",
                                                        "--yes"], capture_output=True)
        await until(pilot, lambda: app.status.holders == ["k8s-master-01"])
        await asyncio.to_thread(cluster.fault, "k8s-master-01", "vrrp-drop")
        await until(pilot, lambda: any("SPLIT BRAIN" in line.text for line in app.query_one("#events").lines))
        await pilot.pause(1.0)
        save("monitor-split-brain")
        await pilot.press("e")
        await pilot.pause(1.0)
        save("monitor-diagnosis")
        await pilot.press("escape")
        await asyncio.to_thread(cluster.heal, "k8s-master-01")
        await until(pilot, lambda: not app.status.split_brain)

    small = MonitorApp(topo, policy_for(topo), interval=0.5)
    async with small.run_test(size=(80, 24)) as pilot:
        await until(pilot, lambda: small.status is not None and not small.status.split_brain
                    and len(small.query_one("#events").lines) >= 1)
        await pilot.pause(1.0)
        small.save_screenshot(str(SHOTS / "monitor-80x24.svg"))
        print("wrote docs/screenshots/monitor-80x24.svg")

    wide = MonitorApp(topo, policy_for(topo), interval=0.5)
    async with wide.run_test(size=(170, 40)) as pilot:
        await until(pilot, lambda: wide.status is not None and not wide.status.alarms
                    and len(wide.query_one("#events").lines) >= 1)
        await pilot.press("down")
        await pilot.pause(1.0)
        wide.save_screenshot(str(SHOTS / "monitor-wide.svg"))
        print("wrote docs/screenshots/monitor-wide.svg")


async def first_time_shot() -> None:
    """The monitor on bare masters right after deploy: a first-time setup, before kubeadm init."""
    import time

    from k8s_ha_tui.model import topology
    from k8s_ha_tui.remote.ssh import policy_for
    from k8s_ha_tui.tui.app import MonitorApp

    topo = topology.load_topology(topo_path())
    app = MonitorApp(topo, policy_for(topo), interval=0.5)
    async with app.run_test(size=(120, 34)) as pilot:
        deadline = time.monotonic() + 40
        while not (app.status is not None and app.status.bootstrap and app.status.holders == ["k8s-master-01"]):
            if time.monotonic() > deadline:
                raise SystemExit("screenshots: timed out waiting for the first-time setup")
            await pilot.pause(0.1)
        await pilot.pause(1.5)
        app.save_screenshot(str(SHOTS / "monitor-first-time-setup.svg"))
        print("wrote docs/screenshots/monitor-first-time-setup.svg")


def topo_path() -> Path:
    return Path("/var/lib/k8s-ha-tui/lab/topology.yaml")


def main() -> int:
    seed = "tests/fixtures/seed"
    shot("lint-seed", "k8s-ha-tui lint: the seed script's configs",
         TOOL + ["lint", "--keepalived", f"{seed}/keepalived.conf", "--haproxy", f"{seed}/haproxy.cfg",
                 "--check-script", f"{seed}/check_apiserver.sh", "--on", "master"])
    import asyncio

    subprocess.run(TOOL + ["lab", "down"], check=True, capture_output=True)
    subprocess.run(TOOL + ["lab", "up", "--bare"], check=True, capture_output=True)
    subprocess.run(TOOL + ["deploy", "-t", str(topo_path()), "--yes"], check=True, capture_output=True)
    asyncio.run(first_time_shot())
    subprocess.run(TOOL + ["lab", "down"], check=True, capture_output=True)
    subprocess.run(TOOL + ["demo"], check=True, capture_output=True)  # the lab, deployed
    subprocess.run(TOOL + ["lab", "fault", "k8s-master-02", "apiserver-down"], check=True, capture_output=True)
    try:
        shot("lab-status", "k8s-ha-tui lab status (deployed; one fault injected)", TOOL + ["lab", "status"])
    finally:
        subprocess.run(TOOL + ["lab", "heal", "k8s-master-02"], capture_output=True)
    shot("deploy-dry-run", "k8s-ha-tui deploy --dry-run (a change of check.rise)",
         TOOL + ["deploy", "-t", str(_rise3()), "--dry-run"])
    asyncio.run(monitor_shots())
    return 0


if __name__ == "__main__":
    sys.exit(main())
