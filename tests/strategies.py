"""Hypothesis strategies: valid topologies (always accepted) and single mutations that make one invalid."""

from __future__ import annotations

import ipaddress

from hypothesis import strategies as st

NAME = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9._-]{0,20}", fullmatch=True)
IFACE = st.from_regex(r"[A-Za-z0-9_.-]{1,15}", fullmatch=True).filter(lambda s: s not in (".", "..", "all", "default"))
AUTH = st.from_regex(r"[A-Za-z0-9$%&()*+,./:;<=>?@^_`|~-]{1,8}", fullmatch=True)


def _addresses(draw, net, count: int) -> list[str]:
    hosts = draw(st.lists(st.integers(1, min(net.num_addresses - 2, 2**40)), min_size=count, max_size=count,
                          unique=True))
    return [str(net.network_address + h) for h in hosts]


@st.composite
def valid_topologies(draw, max_masters: int = 4) -> dict:
    """IPv4 (as most clusters), IPv6-only and dual-stack, all of which every checker takes."""
    family = draw(st.sampled_from([4, 4, 6, "dual"]))
    if family == 6:
        prefix = draw(st.integers(64, 120))
        base = draw(st.integers(int(ipaddress.ip_address("fd00::")), int(ipaddress.ip_address("fdff::"))))
    else:
        prefix = draw(st.integers(16, 28))
        base = draw(st.integers(int(ipaddress.ip_address("10.0.0.0")), int(ipaddress.ip_address("10.255.0.0"))))
    net = ipaddress.ip_network(f"{ipaddress.ip_address(base)}/{prefix}", strict=False)
    n_masters = draw(st.integers(1, max_masters))
    n_workers = draw(st.integers(0, 3))
    addrs = _addresses(draw, net, 1 + n_masters + n_workers)
    names = draw(st.lists(NAME, min_size=n_masters + n_workers, max_size=n_masters + n_workers,
                          unique_by=str.lower))
    version = 3 if family != 4 else draw(st.sampled_from([2, 3]))
    explicit = draw(st.booleans())
    prios = draw(st.lists(st.integers(1, 254), min_size=n_masters, max_size=n_masters, unique=True))
    extra: dict = {}
    if family == "dual":
        prefix6 = draw(st.integers(64, 120))
        net6 = ipaddress.ip_network(f"fd{draw(st.integers(0, 255)):02x}::/{prefix6}", strict=False)
        addrs6 = _addresses(draw, net6, 1 + n_masters)
        extra = {"vip6": addrs6[0], "prefix6": prefix6}
    masters = []
    for i in range(n_masters):
        m = {"name": names[i], "address": addrs[1 + i]}
        if family == "dual":
            m["address6"] = addrs6[1 + i]
        if explicit:
            m["priority"] = prios[i]
        if draw(st.booleans()):
            m["interface"] = draw(IFACE)
        masters.append(m)
    workers = [{"name": names[n_masters + i], "address": addrs[1 + n_masters + i]} for i in range(n_workers)]
    ports = draw(st.lists(st.integers(1, 65535), min_size=3, max_size=3, unique=True))
    vrrp = {"router_id": draw(st.integers(1, 255)), "version": version, "unicast": draw(st.booleans())}
    if version == 2:
        vrrp["advert_int"] = draw(st.integers(1, 255))
        if draw(st.booleans()):
            vrrp["auth_pass"] = draw(AUTH)
    else:
        vrrp["advert_int"] = draw(st.integers(1, 4095)) / 100
    return {
        "name": draw(NAME),
        "vip": addrs[0],
        "prefix": prefix,
        **extra,
        "interface": draw(IFACE),
        "frontend_port": ports[0], "apiserver_port": ports[1], "health_port": ports[2],
        "masters": masters,
        "workers": workers,
        "vrrp": vrrp,
        "check": {"interval": draw(st.integers(1, 60)), "fall": draw(st.integers(1, 100)),
                  "rise": draw(st.integers(1, 100)), "weight": 0},
    }


def _set(path: list, value):
    def mutate(d: dict) -> None:
        target = d
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = value
    return mutate


MUTATIONS = {
    "router id out of range": st.sampled_from([0, 256, 300, -1]).map(lambda v: _set(["vrrp", "router_id"], v)),
    "bad vip": st.sampled_from(["10.0.0.256", "hello", "", "224.0.0.18", "127.0.0.1", "::1"]).map(
        lambda v: _set(["vip"], v)),
    "bad master address": st.sampled_from(["1.2.3", "300.1.1.1", "0.0.0.0"]).map(
        lambda v: _set(["masters", 0, "address"], v)),
    "master name with shell characters": st.sampled_from(["a b", "$(id)", "a;b", "-x", "a/b", "é"]).map(
        lambda v: _set(["masters", 0, "name"], v)),
    "interface too long or odd": st.sampled_from(["x" * 16, "eth 0", "eth/0", "", "all"]).map(
        lambda v: _set(["interface"], v)),
    "priority out of range": st.sampled_from([0, 255, 1000]).map(lambda v: _set(["masters", 0, "priority"], v)),
    "auth_pass too long": st.just(_set(["vrrp", "auth_pass"], "123456789")),
    "port out of range": st.sampled_from([0, 65536]).map(lambda v: _set(["frontend_port"], v)),
    "unknown key": st.just(_set(["auth_pass"], "k8s-test")),
    "vip equals a master": st.just(lambda d: d.update(vip=d["masters"][0]["address"])),
    "same port twice": st.just(lambda d: d.update(apiserver_port=d["frontend_port"])),
    "an address of the other family": st.just(lambda d: d["masters"][0].update(
        address="fd00::1" if ":" not in d["vip"] else "10.0.0.1")),
    "vip6 that is IPv4": st.just(lambda d: d.update(vip6="10.255.255.253")),
    "prefix longer than the family's": st.just(lambda d: d.update(prefix=33 if ":" not in d["vip"] else 129)),
    "duplicate name": st.just(lambda d: d["masters"].append({**d["masters"][0], "address": "10.255.255.254",
                                                             "priority": None})),
}
