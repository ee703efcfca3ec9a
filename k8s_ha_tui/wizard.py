"""The setup wizard: questions only. Every answer is checked by topology.py's own field checks,
so the wizard, the YAML loader and the tests share one set of rules."""

from __future__ import annotations

import copy
import ipaddress
import sys
from collections.abc import Callable
from typing import Any, Protocol

import yaml

from k8s_ha_tui.errors import UserError
from k8s_ha_tui.model import profiles
from k8s_ha_tui.model import topology as tp
from k8s_ha_tui.remote.vrrp_census import Census, foreign, free_router_id, listen

# The seed script's cluster (../shared/seed). PASS auth is left empty by default: it travels in
# clear text and a default password is no secret; the wizard offers to set one.
SEED_DEFAULTS: dict = {
    "name": "sungup",
    "api_endpoint": "k8s.sungup.io",
    "vip": "10.0.3.10",
    "prefix": 24,
    "interface": "ens3",
    "frontend_port": tp.FRONTEND_PORT,
    "apiserver_port": tp.APISERVER_PORT,
    "health_port": tp.HEALTH_PORT,
    "masters": [{"name": f"k8s-master-0{i}", "address": f"10.0.3.1{i}"} for i in (1, 2, 3)],
    "workers": [{"name": f"k8s-node-0{i}", "address": f"10.0.3.2{i}"} for i in (1, 2, 3)],
    # Our measured defaults (topology.py), not the seed's slow timers.
    "vrrp": {"router_id": 51, "version": tp.Vrrp().version, "advert_int": tp.Vrrp().advert_int, "unicast": False},
    "check": tp.Check().model_dump(),
    "ssh": {"user": "root", "port": 22, "identity_file": "~/.ssh/id_ed25519",
            "known_hosts": "~/.ssh/known_hosts", "become": "none"},
}

Check = Callable[[Any], object]  # a field check: takes the converted answer, raises ValueError


class Prompter(Protocol):
    """What the wizard needs from a prompt library; tests pass a scripted fake."""

    def text(self, message: str, default: str, validate: Callable[[str], str | None]) -> str: ...
    def password(self, message: str, validate: Callable[[str], str | None]) -> str: ...
    def confirm(self, message: str, default: bool) -> bool: ...
    def select(self, message: str, choices: list[str], default: str) -> str: ...
    def show(self, text: str) -> None: ...


class QuestionaryPrompter:
    """The real prompts. unsafe_ask lets Ctrl-C raise KeyboardInterrupt (nothing is written yet)."""

    def __init__(self) -> None:
        import questionary  # only the interactive wizard needs it

        if not (sys.stdin.isatty() and sys.stdout.isatty()):
            raise UserError("the wizard asks questions and needs a terminal; without one, use "
                            "`wizard --defaults [--from FILE] -o FILE` or edit a topology file", code=2)

        self.q = questionary

    @staticmethod
    def _validator(check: Callable[[str], str | None]):
        return lambda answer: check(answer) or True

    def text(self, message, default, validate):
        return self.q.text(message, default=default, validate=self._validator(validate)).unsafe_ask()

    def password(self, message, validate):
        return self.q.password(message, validate=self._validator(validate)).unsafe_ask()

    def confirm(self, message, default):
        return self.q.confirm(message, default=default).unsafe_ask()

    def select(self, message, choices, default):
        return self.q.select(message, choices=choices, default=default).unsafe_ask()

    def show(self, text):
        print(text)


def _problem(check: Check, convert: Callable[[str], Any] = str) -> Callable[[str], str | None]:
    """Turn a topology field check into 'None if fine, else the reason' for a typed answer."""
    def validate(answer: str) -> str | None:
        try:
            check(convert(answer.strip()))
        except (ValueError, TypeError) as exc:
            return str(exc)
        return None
    return validate


def _as_int(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a whole number") from None


def _as_float(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"{text!r} is not a number") from None


def _range(lo: int, hi: int, what: str) -> Check:
    def check(value: int) -> int:
        if not lo <= value <= hi:
            raise ValueError(f"{value} {what}: choose {lo}-{hi}")
        return value
    return check


def _optional(check: Check) -> Check:
    return lambda value: None if value == "" else check(value)


def _not_in(taken: dict[str, str], what: str, check: Check) -> Check:
    def inner(value):
        check(value)
        if value in taken:
            raise ValueError(f"{value} is already {taken[value]}'s {what}")
        return value
    return inner


def _of_family(like: str) -> Check:
    """An address of `like`'s family (IPv4 or IPv6)."""
    return tp.check_ipv6 if ":" in like else tp.check_ipv4


def _in_subnet(vip: str, prefix: int) -> Check:
    net = ipaddress.ip_network(f"{vip}/{prefix}", strict=False)
    check = _of_family(vip)

    def inner(value):
        value = check(value)
        if value == vip:
            raise ValueError(f"{value} is the VIP; the VIP must be nobody's address")
        if ipaddress.ip_address(value) not in net:
            raise ValueError(f"{value} is not in the VIP's subnet {net}")
        return value
    return inner


def _prefix_for(vip: str) -> Check:
    def check(value: int) -> int:
        value = tp.check_prefix(value)
        if ":" not in vip and value > 32:
            raise ValueError(f"{value} is longer than an IPv4 address (1-32)")
        return value
    return check


class _Asker:
    """Asks one question after another, defaults taken from the starting topology."""

    def __init__(self, prompter: Prompter) -> None:
        self.p = prompter

    def text(self, message: str, default, check: Check, convert=str):
        answer = self.p.text(message, "" if default is None else str(default), _problem(check, convert))
        return convert(answer.strip())

    def number(self, message: str, default, check: Check) -> int:
        return self.text(message, default, check, _as_int)


def _ask_nodes(ask: _Asker, role: str, start: list[dict], lo: int, hi: int, names: dict, addrs: dict,
               address_check: Check, address6_check: Check | None = None) -> list[dict]:
    """`address6_check`: a dual-stack cluster's masters give their IPv6 address too."""
    count = ask.number(f"How many {role}s?", len(start) if start else lo, _range(lo, hi, f"{role}s"))
    nodes = []
    for i in range(count):
        given = start[i] if i < len(start) else {}
        old = {k: v for k, v in given.items() if k != "address6"}  # asked again below, or dropped
        name = ask.text(f"{role} {i + 1} name:", old.get("name", f"{role}-{i + 1}"),
                        _not_in(names, "name", tp.check_name))
        names[name] = f"{role} {i + 1}"
        addr = ask.text(f"{name} address:", old.get("address"), _not_in(addrs, "address", address_check))
        addrs[addr] = name
        node = {**old, "name": name, "address": addr}
        if address6_check is not None:
            node["address6"] = ask.text(f"{name} IPv6 address:", given.get("address6"),
                                        _not_in(addrs, "address", address6_check))
            addrs[node["address6"]] = name
        nodes.append(node)
    return nodes


def ask_topology(prompter: Prompter, start: dict | None = None) -> tp.Topology:
    """Ask for every field; `start` (a topology dict) gives the defaults."""
    s = copy.deepcopy(start or SEED_DEFAULTS)
    ask = _Asker(prompter)
    out: dict = {}
    out["name"] = ask.text("Cluster name:", s.get("name"), tp.check_name)
    endpoint = ask.text("API DNS name that resolves to the VIP (empty for none):", s.get("api_endpoint", ""),
                        _optional(tp.check_dns_name))
    if endpoint:
        out["api_endpoint"] = endpoint
    out["vip"] = tp.check_ip(ask.text("Virtual IP (VIP) for the API (IPv6 for an IPv6-only cluster):", s.get("vip"),
                                      tp.check_ip))
    six = ":" in out["vip"]
    kept = s.get("prefix") if six == (":" in str(s.get("vip", ""))) else None  # the start's, if of this family
    out["prefix"] = ask.number("VIP prefix length:", kept or (64 if six else 24), _prefix_for(out["vip"]))
    if not six:
        vip6 = ask.text("IPv6 VIP beside it, for a dual-stack cluster (empty for none):", s.get("vip6", ""),
                        _optional(tp.check_ipv6))
        if vip6:
            out["vip6"] = tp.check_ipv6(vip6)
            out["prefix6"] = ask.number("IPv6 VIP prefix length:", s.get("prefix6", 64), tp.check_prefix)
    out["interface"] = ask.text("Network interface on the masters:", s.get("interface", "ens3"), tp.check_interface)
    out["frontend_port"] = ask.number("HAProxy port on every master:", s.get("frontend_port", tp.FRONTEND_PORT),
                                      tp.check_port)
    used = {out["frontend_port"]: "HAProxy"}
    out["apiserver_port"] = ask.number("kube-apiserver port:", s.get("apiserver_port", tp.APISERVER_PORT),
                                       _not_in(used, "port", tp.check_port))
    used[out["apiserver_port"]] = "kube-apiserver"
    out["health_port"] = ask.number("HAProxy health port (127.0.0.1 only, for keepalived's check):",
                                    s.get("health_port", tp.HEALTH_PORT), _not_in(used, "port", tp.check_port))

    names: dict[str, str] = {}
    addrs: dict[str, str] = {vip: "the VIP" for vip in (out["vip"], out.get("vip6")) if vip}
    six_check = _in_subnet(out["vip6"], out["prefix6"]) if "vip6" in out else None
    out["masters"] = _ask_nodes(ask, "master", s.get("masters", []), 1, tp.MAX_MASTERS, names, addrs,
                                _in_subnet(out["vip"], out["prefix"]), six_check)
    out["workers"] = _ask_nodes(ask, "worker", s.get("workers", []), 0, tp.MAX_WORKERS, names, addrs,
                                _of_family(out["vip"]))

    v, c = s.get("vrrp", {}), s.get("check", {})
    vrrp: dict = {"router_id": ask.number("VRRP virtual router id (unique on this network):",
                                          v.get("router_id", 51), tp.check_router_id)}
    prompter.show(profiles_text())
    choice = prompter.select("Speed profile:", [*profiles.PROFILES, "custom"], _profile_name(v, c))
    if choice == "custom":
        vrrp.update(_ask_vrrp_timing(ask, prompter, v, six or "vip6" in out))
        out["check"] = _ask_check(ask, c)
    else:
        values = profiles.get(choice).values()
        vrrp.update(values["vrrp"])
        out["check"] = values["check"]
    vrrp["unicast"] = prompter.confirm("Use unicast VRRP (where multicast is blocked, as in most clouds)?",
                                       bool(v.get("unicast", False)))
    out["vrrp"] = vrrp

    ssh = s.get("ssh", {})
    out["ssh"] = {
        "user": ask.text("SSH user on the masters:", ssh.get("user", "root"), tp.check_user),
        "port": ask.number("SSH port:", ssh.get("port", 22), tp.check_port),
        "identity_file": ask.text("SSH private key:", ssh.get("identity_file", "~/.ssh/id_ed25519"), _nonempty),
        "known_hosts": ask.text("SSH known_hosts file:", ssh.get("known_hosts", "~/.ssh/known_hosts"), _nonempty),
    }
    out["ssh"]["become"] = "none" if out["ssh"]["user"] == "root" else prompter.select(
        "Become root with:", ["sudo", "none"], ssh.get("become", "sudo"))
    return tp.topology_from_dict(out, "wizard")


def profiles_text() -> str:
    """The speed profiles with their measured numbers, as a table that fits 80 columns."""
    rows = [f"  {'':<8} {'adverts':<10} {'API back':<9} {'pauses':<7} false moves at",
            f"  {'':<8} {'× missed':<10} {'(offline)':<9} {'ridden':<7} 1 % VRRP loss"]
    for p in profiles.PROFILES.values():
        row = (f"  {p.name:<8} {f'{p.advert_int:g} s × {p.down_adverts}':<10} {f'{p.offline_gap_s:.2f} s':<9} "
               f"{f'{p.pause_ok_s:g} s':<7} {profiles.per_month(p.false_moves_per_day(0.01)):<25}")
        rows.append((row + (" 2.2+" if p.needs_new_keepalived else "")).rstrip())
    return "\n".join([f"Speed profiles ({profiles.MEASURED_ON}):", *rows,
                      *(f"  {p.name}: for {p.use_when}" for p in profiles.PROFILES.values()),
                      "  custom: choose the VRRP version, advert interval and checks yourself",
                      "  (2.2+: needs keepalived 2.2 or newer; deploy checks)"])


def _profile_name(vrrp: dict, check: dict) -> str:
    """The profile the starting values match: the question's default."""
    model_vrrp, model_check = tp.Vrrp(), tp.Check()
    named = profiles.matching(vrrp.get("version", model_vrrp.version), vrrp.get("advert_int", model_vrrp.advert_int),
                              vrrp.get("down_adverts", model_vrrp.down_adverts),
                              (check.get("interval", model_check.interval), check.get("fall", model_check.fall),
                               check.get("rise", model_check.rise)))
    return named.name if named else "custom"


def _ask_vrrp_timing(ask: _Asker, prompter: Prompter, v: dict, ipv6: bool = False) -> dict:
    """`ipv6`: VRRP over IPv6 is version 3 only, so the version is not asked."""
    vrrp: dict = {"version": 3 if ipv6 else int(prompter.select("VRRP version:", ["2", "3"],
                                                               str(v.get("version", tp.Vrrp().version))))}
    if vrrp["version"] == 2:
        prompter.show("PASS authentication only guards against a neighbour's VRRP by mistake: it "
                      "travels in clear text. Leave empty for none.")
        pw = prompter.password("VRRP auth_pass (at most 8 characters, empty for none):",
                               _problem(tp.check_auth_pass))
        if pw:
            vrrp["auth_pass"] = pw
    advert = v.get("advert_int", tp.Vrrp().advert_int)
    if vrrp["version"] == 2 and advert != int(advert):
        advert = 1  # VRRPv2 counts whole seconds
    vrrp["advert_int"] = ask.text("VRRP advert interval in seconds:", f"{advert:g}",
                                  lambda x: tp.check_advert_int(x, vrrp["version"]), _as_float)
    vrrp["down_adverts"] = ask.number(
        "Adverts a backup misses before it takes over (3: the RFC; other values need keepalived 2.2+):",
        v.get("down_adverts", tp.Vrrp().down_adverts), lambda x: tp.check_model_field(tp.Vrrp, "down_adverts", x))
    return vrrp


def _ask_check(ask: _Asker, c: dict) -> dict:
    def check_field(name: str):
        return lambda value: tp.check_model_field(tp.Check, name, value)

    return {
        "interval": ask.number("Seconds between health checks:", c.get("interval", 1), check_field("interval")),
        "fall": ask.number("Failed checks before a node gives up the VIP:", c.get("fall", tp.Check().fall),
                           check_field("fall")),
        "rise": ask.number("Good checks before a node may take the VIP again:", c.get("rise", 2),
                           check_field("rise")),
        "weight": c.get("weight", 0),
    }


def _nonempty(value: str) -> str:
    if not value:
        raise ValueError("an answer is needed")
    return value


def summary(topo: tp.Topology) -> str:
    """The topology as it will be written, with the password masked."""
    data = tp.topology_to_dict(topo)
    if "auth_pass" in data.get("vrrp", {}):
        data["vrrp"]["auth_pass"] = "********"
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=None, width=100)


def confirm_and_write(prompter: Prompter, topo: tp.Topology, path: str,
                      write: Callable[[tp.Topology], None]) -> bool:
    prompter.show("\n" + summary(topo))
    if not prompter.confirm(f"Write {path}?", True):
        return False
    write(topo)
    return True


def start_from(path: str | None) -> dict:
    """Defaults for the questions: an existing topology file, or the seed's cluster."""
    if path is None:
        return copy.deepcopy(SEED_DEFAULTS)
    return tp.topology_to_dict(tp.load_topology(path))


def free_router_id_default(start: dict, heard: Census) -> tuple[int, str]:
    """The router id to offer after listening on the segment: the start's own unless another
    router (not one of its masters, or with other VIPs) advertises it, else the next free one;
    and a line saying what was heard."""
    topo = tp.topology_from_dict(copy.deepcopy(start), "the start topology")
    routers = heard.advertisers()
    rid = topo.vrrp.router_id
    if heard.missing:
        return rid, f"could not listen on {', '.join(sorted(heard.missing))} (no tcpdump): keeping router id {rid}"
    taken = foreign(routers, rid, {m.address for m in topo.masters}, topo.vip)
    offer = free_router_id(routers, rid) if taken else rid
    ids = sorted({a.vrid for a in routers})
    said = (f"heard on the segment: router id(s) {', '.join(map(str, ids)) or 'none'}"
            + (f"; {rid} is taken by {taken[0].address}, offering {offer}" if taken else f"; {rid} is free here"))
    return offer, said


async def listen_from_first_master(start: dict) -> Census:
    """A bounded census from the start topology's first master (`wizard --from FILE --census`)."""
    from k8s_ha_tui.remote.ssh import connect, policy_for

    topo = tp.topology_from_dict(copy.deepcopy(start), "the start topology")
    first = topo.masters[0]
    conn = await connect(topo, first, policy_for(topo))
    census = Census()
    try:
        await listen(census, conn, first.name, topo.interface_of(first))
    finally:
        conn.close()
    return census


def defaults_topology() -> tp.Topology:
    return tp.topology_from_dict(copy.deepcopy(SEED_DEFAULTS), "defaults")
