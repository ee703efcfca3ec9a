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
from dataclasses import dataclass

from .confparse import parse_keepalived
from .paths import PATHS
from .vrrpview import VrrpView, file_views

OWNER_PRIORITY = 255


def view_of_text(text: str | None, vip: str) -> VrrpView | None:
    """The instance of a keepalived.conf that carries the VIP, if any."""
    if not text:
        return None
    return next((v for v in file_views(parse_keepalived(text)) if v.has_vip(vip)), None)


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


@dataclass(frozen=True)
class CutOver:
    """Why a rolling deploy cannot be used, and the order of the cut-over."""

    changes: list[str]  # what the masters would no longer agree on
    router_id_changes: bool
    first: list[str]  # into the new group in maintenance, in this order
    holder: str  # the last to change: it keeps serving until then

    def plan_lines(self) -> list[str]:
        hold = (f"first loaded with priority {OWNER_PRIORITY} so it is MASTER at once, then with its own"
                if self.router_id_changes else "keepalived keeps its MASTER state across the reload")
        lines = [f"VRRP changes that masters would not hear each other across: {', '.join(self.changes)}. "
                 "A rolling deploy would make two VIP holders, so this is a cut-over:"]
        if self.first:
            lines.append(f"  1. {', '.join(self.first)}: new configs with maintenance on (FAULT in the new group: "
                         "they claim nothing); the holder alone keeps the VIP")
        lines.append(f"  2. {self.holder}: new configs ({hold})")
        if self.first:
            lines.append(f"  3. {', '.join(self.first)}: maintenance off, one by one (backups in the new group)")
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


def follows_maintenance(text: str | None, vip: str) -> bool:
    """Whether a keepalived.conf's VIP instance tracks the maintenance file with weight 0 — what
    keeps a master out of the election during a cut-over."""
    if not text:
        return False
    root = parse_keepalived(text)
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
    weights on an address owner)."""
    text = re.sub(r"(?m)^(\s*priority\s+)\d+\s*$", rf"\g<1>{OWNER_PRIORITY}", text, count=1)
    text = re.sub(r"(?m)^(\s*state\s+)BACKUP\s*$", r"\g<1>MASTER", text, count=1)
    text = re.sub(r"(?m)^\s*k8s_ha_boost\s*\n", "", text)
    return re.sub(r"(vrrp_script \S+ \{[^}]*?\n\s*weight\s+)-?\d+", r"\g<1>0", text)


MAINTENANCE_ON = "1\n"
MAINTENANCE_OFF = "0\n"
MAINTENANCE_PATH = PATHS.maintenance_file
