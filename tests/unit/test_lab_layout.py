"""The lab's addresses by family, without building it: IPv6 twins of the IPv4 host numbers in
its own unique local prefix, and the topologies `lab up --family` writes."""

from __future__ import annotations

import ipaddress
from pathlib import Path

import pytest

from k8s_ha_tui.lab import cluster, layout


def test_every_ipv6_address_is_the_ipv4_host_number_in_the_labs_own_prefix():
    nodes = layout.lab_nodes(9, 20, 4, "dual")
    sixes = [n.address6 for n in nodes]
    assert len(set(sixes)) == len(sixes) and all(ipaddress.ip_address(a) in layout.SUBNET6 for a in sixes)
    assert (layout.six("198.18.0.11"), layout.six("198.18.0.201"), layout.ROOT_ADDRESS6) == \
        ("fd01:98:18::11", "fd01:98:18::201", "fd01:98:18::1")
    dual = layout.lab_nodes(3, 3, 1, "dual")
    assert [n.address for n in layout.lab_nodes(3, 3, 1, "ipv6")] == [n.address6 for n in dual]
    assert [n.address for n in layout.lab_nodes(3, 3)] == [n.address for n in dual]  # ipv4: as always
    assert all(n.address6 is None for n in layout.lab_nodes(3, 3, 1, "ipv6"))


@pytest.mark.parametrize("family, vip, vip6, prefix", [("ipv4", "198.18.0.10", None, 24),
                                                        ("ipv6", "fd01:98:18::10", None, 64),
                                                        ("dual", "198.18.0.10", "fd01:98:18::10", 24)])
def test_the_lab_topology_of_each_family_validates(family, vip, vip6, prefix):
    state = cluster.LabState(3, 2, family=family)
    topo = cluster.lab_topology(state, layout.LabPaths(Path("/nonexistent")), 1)
    assert (topo.vip, topo.vip6, topo.prefix) == (vip, vip6, prefix)
    assert [m.address6 for m in topo.masters] == [layout.six(f"198.18.0.1{i}") if vip6 else None for i in (1, 2, 3)]
    clusters2 = cluster.lab_topology(cluster.LabState(3, 0, clusters=2, family=family),
                                     layout.LabPaths(Path("/nonexistent")), 2)
    assert clusters2.vip == (layout.six("198.18.0.70") if family == "ipv6" else "198.18.0.70")


def test_an_unknown_family_is_refused_before_anything_is_made():
    with pytest.raises(cluster.LabError, match="--family ipv5: choose ipv4, ipv6, dual"):
        cluster.up(3, 3, family="ipv5")
