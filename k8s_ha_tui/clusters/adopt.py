"""Moving a running cluster to new VRRP settings that its masters would not hear each other
with — another virtual router id, VRRP version, authentication or unicast/multicast — without
ever two VIP holders. A plain rolling deploy would make two groups that each elect a holder.

The cut-over, measured in the lab (bench/adoption.py):
1. every master but the holder gets the new configs with the maintenance switch on: in the new
   group and in FAULT, so it claims nothing; the holder alone keeps serving the old group;
2. the holder gets the new configs. keepalived keeps an instance's state across a reload when
   the virtual router id stays (version, authentication and unicast may change): the VIP never
   leaves. With a new router id the instance starts afresh: it is first loaded with priority 255
   (address owner: MASTER at once; 15 ms without the VIP instead of a whole master-down
   interval), then with its own priority (same router id: the state is kept);
3. the others leave maintenance one by one and join the new group as backups.
Pure: deploy.py runs the steps.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from k8s_ha_tui.configs.confparse import parse_keepalived
from k8s_ha_tui.paths import PATHS
from k8s_ha_tui.status.vrrpview import VrrpView, file_views

OWNER_PRIORITY = 255


def view_of_text(text: str | None, vip: str, files: Mapping[str, str] | None = None) -> VrrpView | None:
    """The instance of a keepalived.conf (its includes from `files`) that carries the VIP, if any."""
    if not text:
        return None
    root = parse_keepalived(text, PATHS.keepalived_conf, files)
    return next((v for v in file_views(root) if v.has_vip(vip)), None)


def _describe(old: VrrpView, new: VrrpView) -> list[str]:
    out = []
    if old.router_id != new.router_id:
        out.append(f"router id {old.router_id} → {new.router_id}")
    if old.version != new.version:
        out.append(f"VRRPv{old.version} → v{new.version}")
    if (old.auth_type, old.auth_digest) != (new.auth_type, new.auth_digest):
        out.append(f"authentication {old.auth_type or 'none'} → {new.auth_type or 'none'}"
                   f"{' (another password)' if old.auth_type == new.auth_type else ''}")
    if bool(old.unicast_peers) != bool(new.unicast_peers):
        out.append("multicast → unicast" if new.unicast_peers else "unicast → multicast")
    if old.version == new.version == 2 and old.advert_int != new.advert_int:
        out.append(f"advert_int {old.advert_int:g} → {new.advert_int:g} (VRRPv2 drops adverts of another interval)")
    return out


@dataclass
class CutOver:
    """Why a rolling deploy cannot be used, and the order of the cut-over."""

    changes: list[str]  # what the masters would no longer agree on
    router_id_changes: bool
    first: list[str]  # into the new group kept out of the election, in this order
    holder: str  # the last to change: it keeps serving until then
    stopped: set[str] = field(default_factory=set)  # of `first`: kept out by a stopped keepalived
    owner_load: bool = True  # the holder's new instance is in its main file: the owner variant works
    gap_s: float = 0.0  # without the owner variant: the new group's master-down interval

    def plan_lines(self) -> list[str]:
        if not self.router_id_changes:
            hold = "keepalived keeps its MASTER state across the reload"
        elif self.owner_load:
            hold = f"first loaded with priority {OWNER_PRIORITY} so it is MASTER at once, then with its own"
        else:
            hold = (f"its instance is in an included file, so it is MASTER again only after the master-down "
                    f"interval: about {self.gap_s:.1f} s without the VIP")
        lines = [f"VRRP changes that masters would not hear each other across: {', '.join(self.changes)}. "
                 "A rolling deploy would make two VIP holders, so this is a cut-over:"]
        switched = [n for n in self.first if n not in self.stopped]
        stopped = [n for n in self.first if n in self.stopped]
        out = []
        if switched:
            out.append(f"{', '.join(switched)} with maintenance on (FAULT: claiming nothing)")
        if stopped:
            out.append(f"{', '.join(stopped)} with keepalived stopped (the new config has no maintenance switch)")
        if self.first:
            lines.append(f"  1. new configs, out of the election: {'; '.join(out)}; the holder alone keeps the VIP")
        lines.append(f"  2. {self.holder}: new configs ({hold})")
        if self.first:
            lines.append(f"  3. {', '.join(self.first)}: back into the election one by one (backups in the new group)")
        return lines


def plan(running: dict[str, VrrpView | None], new: dict[str, VrrpView | None], order: list[str],
         holders: list[str]) -> CutOver | None:
    """A cut-over when any master would change what it hears; None when a rolling deploy is safe
    (also when no keepalived runs yet: nothing to hear)."""
    changes: list[str] = []
    for name in order:
        old, nxt = running.get(name), new.get(name)
        if old is not None and nxt is not None and old.hears() != nxt.hears():
            changes += [c for c in _describe(old, nxt) if c not in changes]
    if not changes:
        return None
    holder = holders[0] if holders else order[-1]
    olds = [v for v in running.values() if v is not None]
    router_id_changes = any(v is not None and olds and v.router_id != olds[0].router_id for v in new.values())
    return CutOver(changes, router_id_changes, [n for n in order if n != holder], holder)


def follows_maintenance(text: str | None, vip: str, files: Mapping[str, str] | None = None) -> bool:
    """Whether a keepalived.conf's VIP instance tracks the maintenance file with weight 0 — what
    keeps a master out of the election during a cut-over (else its keepalived is stopped)."""
    if not text:
        return False
    root = parse_keepalived(text, PATHS.keepalived_conf, files)
    names = {b.args[0] for b in root.all("vrrp_track_file") if b.args and b.value("file") == PATHS.maintenance_file
             and (b.value("weight") or "0") == "0"}
    for inst in root.all("vrrp_instance"):
        block = inst.first("virtual_ipaddress")
        if block and any(w.split("/")[0] == vip for w in block.words()):
            tracked = inst.first("track_file")
            return bool(tracked and names & set(tracked.words()))
    return False


def owner_variant(text: str) -> str:
    """The holder's keepalived.conf for the first load after a router id change: state MASTER with
    priority 255 (keepalived takes the VIP at once only with both; measured: BACKUP with 255 still
    waits the master-down interval), and nothing that changes the priority (keepalived -t refuses
    weights on an address owner). Every instance (dual stack: both; keepalived refuses a sync
    group of owners and non-owners)."""
    text = re.sub(r"(?m)^(\s*priority\s+)\d+\s*$", rf"\g<1>{OWNER_PRIORITY}", text)
    text = re.sub(r"(?m)^(\s*state\s+)BACKUP\s*$", r"\g<1>MASTER", text)
    text = re.sub(r"(?m)^\s*k8s_ha_boost\s*\n", "", text)
    return re.sub(r"(vrrp_script \S+ \{[^}]*?\n\s*weight\s+)-?\d+", r"\g<1>0", text)


MAINTENANCE_ON = "1\n"
MAINTENANCE_OFF = "0\n"
MAINTENANCE_PATH = PATHS.maintenance_file
