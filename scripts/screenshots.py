"""Make the SVG screenshots in screenshots/ from real runs of the tool (the lab needs root).

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
SHOTS = ROOT / "screenshots"
TOOL = [sys.executable, "-m", "k8s_ha_tui"]


def shot(name: str, title: str, argv: list[str], width: int = 140) -> None:
    res = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT)
    console = Console(record=True, width=width, force_terminal=True, color_system="truecolor", file=io.StringIO())
    console.print(Text(f"$ k8s-ha-tui {' '.join(argv[len(TOOL):])}", style="bold green"))
    console.print(Text(res.stdout + res.stderr), soft_wrap=True)
    SHOTS.mkdir(exist_ok=True)
    console.save_svg(str(SHOTS / f"{name}.svg"), title=title)
    print(f"wrote screenshots/{name}.svg (exit {res.returncode})")


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


def main() -> int:
    seed = "tests/fixtures/seed"
    shot("lint-seed", "k8s-ha-tui lint: the seed script's configs",
         TOOL + ["lint", "--keepalived", f"{seed}/keepalived.conf", "--haproxy", f"{seed}/haproxy.cfg",
                 "--check-script", f"{seed}/check_apiserver.sh"])
    subprocess.run(TOOL + ["demo"], check=True, capture_output=True)  # the lab, deployed
    subprocess.run(TOOL + ["lab", "fault", "k8s-master-02", "apiserver-down"], check=True, capture_output=True)
    try:
        shot("lab-status", "k8s-ha-tui lab status (deployed; one fault injected)", TOOL + ["lab", "status"])
    finally:
        subprocess.run(TOOL + ["lab", "heal", "k8s-master-02"], capture_output=True)
    shot("deploy-dry-run", "k8s-ha-tui deploy --dry-run (a change of check.rise)",
         TOOL + ["deploy", "-t", str(_rise3()), "--dry-run"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
