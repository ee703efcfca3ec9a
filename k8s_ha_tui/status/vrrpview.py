"""The VRRP settings that decide who hears whom, from a config file or from the running daemon,
in one shape, so discover can describe a cluster, and doctor and the collector can compare file,
daemon and nodes.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from k8s_ha_tui.configs.confparse import KBlock, vrrp_version
from k8s_ha_tui.remote.answers import int_or_none
from k8s_ha_tui.remote.keepalived import RunningInstance

# keepalived's DATA dump words for the authentication types, as the config spells them.
AUTH_TYPES = {"SIMPLE_PASSWORD": "PASS", "IPSEC_AH": "AH", "none": None}


@dataclass(frozen=True)
class VrrpView:
    name: str
    router_id: int | None
    version: int
    priority: int | None
    advert_int: float | None
    interface: str | None
    vips: tuple[str, ...]  # "ADDR/LEN", or "ADDR" where the config gives no length
    auth_type: str | None  # PASS, AH or None
    auth_digest: str | None  # sha256 of the password keepalived uses (the first 8 characters)
    unicast_peers: tuple[str, ...]

    def has_vip(self, vip: str) -> bool:
        return any(v.split("/")[0] == vip for v in self.vips)

    def hears(self) -> tuple:
        """What two routers must share to hear each other's adverts (and so never both hold)."""
        return (self.router_id, self.version, self.auth_type, self.auth_digest, bool(self.unicast_peers),
                self.advert_int if self.version == 2 else None)


def _float(text: str | None) -> float | None:
    try:
        return float(text) if text is not None else None
    except ValueError:
        return None


def digest(password: str) -> str:
    return hashlib.sha256(password[:8].encode()).hexdigest()


def from_file(root: KBlock, inst: KBlock) -> VrrpView:
    """An instance as its config file describes it (keepalived's defaults where it is silent)."""
    auth = inst.first("authentication")
    auth_type = (auth.value("auth_type") or "").upper() if auth else ""
    password = auth.value("auth_pass") if auth else None
    vip_block = inst.first("virtual_ipaddress")
    peers = inst.first("unicast_peer")
    return VrrpView(
        name=inst.args[0] if inst.args else "?",
        router_id=int_or_none(inst.value("virtual_router_id")),
        version=vrrp_version(root, inst),
        priority=int_or_none(inst.value("priority")) if inst.first("priority") else 100,
        advert_int=_float(inst.value("advert_int")) if inst.first("advert_int") else 1.0,
        interface=inst.value("interface"),
        vips=tuple(vip_block.words()) if vip_block else (),
        auth_type=auth_type if auth_type in ("PASS", "AH") else None,
        auth_digest=digest(password) if password and auth_type == "PASS" else None,
        unicast_peers=tuple(peers.words()) if peers else (),
    )


def from_running(inst: RunningInstance) -> VrrpView:
    return VrrpView(
        name=inst.name, router_id=inst.router_id, version=inst.version or 2, priority=inst.base_priority,
        advert_int=inst.advert_int, interface=inst.interface, vips=inst.vips,
        auth_type=AUTH_TYPES.get(inst.auth_type or "none", inst.auth_type), auth_digest=inst.auth_digest,
        unicast_peers=inst.unicast_peers)


def file_views(root: KBlock) -> list[VrrpView]:
    return [from_file(root, inst) for inst in root.all("vrrp_instance")]


# What a keepalived reload would change, compared between the file and the running daemon.
COMPARED = (("router_id", "virtual router id"), ("version", "VRRP version"), ("priority", "priority"),
            ("advert_int", "advert_int"), ("interface", "interface"), ("vips", "VIPs"),
            ("auth_type", "authentication"), ("auth_digest", "auth_pass"), ("unicast_peers", "unicast peers"))


def _show(value) -> str:
    if isinstance(value, tuple):
        return ", ".join(map(str, value)) or "none"
    return "none" if value is None else f"{value:g}" if isinstance(value, float) else str(value)


def differences(live: VrrpView, disk: VrrpView) -> list[str]:
    """What a reload would change, in words ("the running keepalived's priority is 150, the file
    says 100"); VIPs compare by address (the file may omit the prefix length)."""
    out = []
    for name, label in COMPARED:
        a, b = getattr(live, name), getattr(disk, name)
        if a != b and not (name == "vips" and {x.split('/')[0] for x in a} == {x.split('/')[0] for x in b}):
            out.append(f"the running keepalived's {label} differs from the file's" if name == "auth_digest"
                       else f"the running keepalived's {label} is {_show(a)}, the file says {_show(b)}")
    return out
