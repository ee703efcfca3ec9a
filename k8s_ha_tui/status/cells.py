"""How one fact of a snapshot is written in a table cell, once for `status` and the monitor.

Each function returns (text, tone): tone is "" (plain), "good", "warn" or "bad"; the CLI prints
the text, the monitor colours it with the theme's success / warning / error.
"""

from __future__ import annotations

import os
import time

from k8s_ha_tui.remote.apiserver import FAILING, NOT_INSTALLED, NOT_READY, NOT_RUNNING, UP
from k8s_ha_tui.status.model import BackendServer, ClusterStatus, MasterStatus, NodeStatus

Cell = tuple[str, str]


def clock(ts: float | None) -> str:
    return time.strftime("%H:%M:%S", time.localtime(ts)) if ts else "?"


def vrrp(m: MasterStatus) -> Cell:
    if not m.reachable:
        return f"lost {clock(m.unreachable_since)}", "bad"
    tone = {"MASTER": "good", "BACKUP": "", "FAULT": "" if m.maintenance else "bad"}.get(m.vrrp_state, "warn")
    if m.vrrp_state6 is not None and m.vrrp_state6 != m.vrrp_state:  # a dual stack's instances disagree
        return f"{m.vrrp_state}/{m.vrrp_state6}", "warn"
    return m.vrrp_state, tone


def priority(m: MasterStatus, short: bool = False) -> Cell:
    """effective/base; `short`: the effective one alone."""
    return (f"{m.effective_priority or '?'}" if short else f"{m.effective_priority or '?'}/{m.base_priority or '?'}"), ""


SHORT_SERVICE = {"inactive": "off", "failed": "fail", "unknown": "?"}


def service(state: str, short: bool = False) -> Cell:
    """systemd's word, short: active → up (`short`: inactive → off, failed → fail)."""
    return ("up", "") if state == "active" else (SHORT_SERVICE.get(state, state) if short else state, "bad")


def check(m: MasterStatus) -> Cell:
    return m.check, "bad" if m.check == "BAD" else ""


def holds_vip(m: MasterStatus, unconfirmed: bool = False) -> Cell:
    """`unconfirmed`: not among the holders counted, its word being older than another master's
    claim (ClusterStatus.holders)."""
    if (m.holds_vip or m.holds_vip6) and unconfirmed:
        return "VIP?", "warn"
    if m.vrrp_state6 is not None and m.holds_vip != m.holds_vip6:  # dual stack: one of its two VIPs
        return ("● IPv4 only", "warn") if m.holds_vip else ("● IPv6 only", "warn")
    return ("● VIP", "good") if m.holds_vip else ("", "")


def vips(snap: ClusterStatus) -> str:
    """The VIP, or a dual stack's two: '198.18.0.10 + fd01:98:18::10'."""
    return " + ".join([snap.vip, *([snap.vip6] if snap.vip6 else [])])


def holders(snap: ClusterStatus, nobody: str = "NOBODY") -> str:
    """Who holds the VIP; for a dual stack whose VIPs are apart (or one has nobody), per family."""
    four = ", ".join(snap.holders) or nobody
    if snap.vip6 is None or snap.holders6 == snap.holders:
        return four
    return f"{four} (IPv4), {', '.join(snap.holders6) or nobody} (IPv6)"


def maintenance(m: MasterStatus) -> Cell:
    return ("on", "warn") if m.maintenance else ("", "")


def api(n: NodeStatus, bootstrap: bool = False) -> Cell:
    """The API through the VIP from this node; before any apiserver exists (a first-time setup)
    no answer is what is expected, not a failure."""
    if n.api_via_vip is None:
        return "?", ""
    if bootstrap and not (n.api_via_vip or n.api_via_vip6):
        return "-", ""
    if n.api_via_vip6 is not None and n.api_via_vip6 != n.api_via_vip:  # dual stack: through one VIP only
        return ("IPv6 FAIL", "bad") if n.api_via_vip else ("IPv4 FAIL", "bad")
    return ("ok", "") if n.api_via_vip else ("FAIL", "bad")


SHORT = {NOT_INSTALLED: "none yet", NOT_RUNNING: "stopped", NOT_READY: "unready"}


def apiserver(m: MasterStatus, short: bool = False) -> Cell:
    """The master's own kube-apiserver: up, not installed yet (calm: a first-time setup), or how
    it fails (not running, hung, not ready: bad). `short` for narrow screens."""
    if not m.reachable:
        return "", ""
    text = SHORT.get(m.apiserver, m.apiserver) if short else m.apiserver
    if m.apiserver == UP:
        return text, "good"
    return (text, "bad") if m.apiserver in FAILING else (text, "") if m.apiserver == NOT_INSTALLED else ("?", "")


def backend(b: BackendServer | None, age: bool = True, installed: bool = True) -> Cell:
    """One HAProxy's view of one apiserver: state, last check, and (wide) seconds since it changed.
    An apiserver that is not installed yet is shown as such, not as a red DOWN."""
    if b is not None and not installed and not b.up:
        return "none yet", ""
    if b is None:
        return "?", ""
    tone = "good" if b.status.startswith("UP") else "warn" if b.status in ("DRAIN", "MAINT") else "bad"
    return f"{b.status} {b.check_status}" + (f" {b.last_change_s or 0}s" if age else ""), tone


def master_row(m: MasterStatus, bootstrap: bool = False, short: bool = False, label: str | None = None,
               unconfirmed: bool = False) -> list[Cell]:
    """The masters table's cells: master (or its `label`), VRRP, prio, check, VIP, maint,
    keepalived, haproxy, its own apiserver, the API through the VIP from there; `short` words
    for a narrow terminal; `unconfirmed`: see holds_vip."""
    name = (label or m.name, "")
    if not m.reachable:
        return [name, vrrp(m), *([("", "")] * (len(MASTER_COLUMNS) - 2))]
    return [name, vrrp(m), priority(m, short), check(m), holds_vip(m, unconfirmed), maintenance(m),
            service(m.keepalived, short), service(m.haproxy, short), apiserver(m, short), api(m, bootstrap)]


def apiservers_up(m: MasterStatus) -> Cell:
    """How many apiservers this master's HAProxy sends to are up (of those it knows)."""
    if not m.reachable:
        return "", ""
    known = [b for b in m.backends if b.master is not None]
    if not known:  # its stats socket said nothing we can read (a watch login, and no watch socket)
        return "?", "warn"
    up = sum(b.up for b in known)
    return f"{up}/{len(known)}", "" if up == len(known) else "warn"


MASTER_COLUMNS = ("master", "VRRP", "prio", "check", "VIP", "maint", "keepalived", "haproxy", "apiserver", "API")
# The same columns' headers on a narrow terminal (with short names and words: 80 columns fit).
SHORT_COLUMNS = ("master", "VRRP", "prio", "check", "VIP", "maint", "ka", "hap", "apisrv", "API")


def short_names(names: list[str]) -> list[str]:
    """Column headers without what every name shares up to a '-' (k8s-master-01 → 01)."""
    prefix = os.path.commonprefix(names)
    cut = prefix.rfind("-") + 1 if len(names) > 1 else 0
    return [n[cut:] or n for n in names]
