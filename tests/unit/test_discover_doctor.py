"""discover and doctor on what masters answer, without a cluster: the lab's hand-made configs
(lab/handmade.py) and a real DATA dump of them, then drifted and garbled."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from k8s_ha_tui.clusters import discover, doctor, nodeconfig
from k8s_ha_tui.errors import UserError
from k8s_ha_tui.lab import handmade, layout
from k8s_ha_tui.model.topology import Ssh
from k8s_ha_tui.remote.keepalived import running_keepalived

FIX = Path(__file__).parent.parent / "fixtures" / "nodes"
MASTERS = [n for n in layout.lab_nodes(3, 0)]
DUMP = (FIX / "keepalived-handmade.data").read_text()  # k8s-master-01's, MASTER with priority 120


def live(i: int, edit=lambda path, text: text, running: bool | None = None, scripts=None) -> nodeconfig.LiveNode:
    files = {p: edit(p, t) for p, (t, _mode) in handmade.files_for(i, MASTERS).items()}
    runs = (i == 0) if running is None else running
    facts = nodeconfig.Facts(hostname=MASTERS[i].name, uid="0", keepalived_running=runs, haproxy_running=True,
                             haproxy_loaded_at=2000.0,
                             addresses=[("eth0", MASTERS[i].address, 24)] + ([("eth0", layout.VIP, 24)] if i == 0 else []),
                             running=running_keepalived(DUMP) if runs else running_keepalived(""))
    kfiles = {p: t for p, t in files.items() if p.startswith("/etc/keepalived/") and p.endswith(".conf")}
    return nodeconfig.LiveNode(MASTERS[i].name, MASTERS[i].address, facts, kfiles,
                               [("/etc/haproxy/haproxy.cfg", files["/etc/haproxy/haproxy.cfg"])],
                               {p: 1000.0 for p in files},
                               scripts if scripts is not None else {"/etc/keepalived/check_api.sh": ("root", "755")},
                               {"/etc/keepalived/check_api.sh": files["/etc/keepalived/check_api.sh"]})


def cluster(**kw):
    return [live(i, **kw) for i in range(3)]


def test_discover_describes_the_hand_made_cluster_as_it_runs():
    found = discover.describe(cluster(), [], Ssh(identity_file="/k", known_hosts="/h"))
    t = found.topology
    assert (t.vip, t.prefix, t.interface, t.frontend_port, t.apiserver_port) == (layout.VIP, 24, "eth0", 8443, 6443)
    assert (t.vrrp.router_id, t.vrrp.version, t.vrrp.advert_int, t.vrrp.unicast) == (77, 2, 1, True)
    assert t.vrrp.auth_pass == handmade.AUTH_PASS
    assert [(m.name, t.priority_of(m)) for m in t.masters] == [
        ("k8s-master-01", 120), ("k8s-master-02", 110), ("k8s-master-03", 100)]
    assert (t.check.interval, t.check.fall, t.check.rise, t.check.weight) == (2, 2, 2, -20)
    assert t.name == "kube-api" and t.ssh.identity_file == "/k"
    assert any("check_api.sh" in n for n in found.notes)
    assert not any("disagree" in n for n in found.notes)


def test_discover_names_what_the_masters_disagree_on_and_what_it_cannot_express():
    def other_router(path, text):
        text = text.replace("virtual_router_id 77", "virtual_router_id 78")
        return text.replace("advert_int 1", "advert_int 1\n    nopreempt")
    nodes = cluster()
    nodes[2] = live(2, other_router)
    found = discover.describe(nodes, [], Ssh())
    assert found.topology.vrrp.router_id == 77  # most masters
    assert any(n.startswith("masters disagree on the virtual router id: 77 on k8s-master-01, k8s-master-02; "
                            "78 on k8s-master-03") for n in found.notes)
    tied = cluster(edit=lambda p, t: t.replace("priority 110", "priority 100"))
    found = discover.describe(tied, [], Ssh())
    assert sorted(found.topology.priority_of(m) for m in found.topology.masters) == [99, 100, 120]
    assert any(n.startswith("priority ") and "a priority tie" in n for n in found.notes)


def test_discover_refuses_a_cluster_without_vrrp_in_one_line():
    bare = cluster(edit=lambda p, t: "" if p.endswith("kube-api.conf") else t, running=False)
    with pytest.raises(UserError, match="no master runs or configures a VRRP instance"):
        discover.describe(bare, [], Ssh())


def codes(findings) -> list[str]:
    return [f.code for f in findings]


def test_doctor_lints_the_live_files_naming_node_path_and_line():
    t = discover.describe(cluster(), [], Ssh()).topology
    findings = doctor.diagnose(cluster(), t)
    k102 = next(f for f in findings if f.code == "K102")
    assert k102.where.startswith("k8s-master-01:/etc/keepalived/conf.d/kube-api.conf:")
    # A consistent cluster: nothing cross-node; only that keepalived is not running where the
    # fixture gives no DATA dump.
    assert [(f.code, f.where) for f in findings if f.code.startswith("D")] == [
        ("D309", "k8s-master-02"), ("D309", "k8s-master-03")]


def test_doctor_finds_what_files_alone_cannot_show():
    t = discover.describe(cluster(), [], Ssh()).topology
    nodes = cluster()
    nodes[0] = live(0, lambda p, text: text.replace("priority 120", "priority 125"),
                    scripts={"/etc/keepalived/check_api.sh": ("operator", "777")})
    nodes[0].mtimes["/etc/haproxy/haproxy.cfg"] = 3000.0  # newer than HAProxy's last load
    nodes[1] = live(1, lambda p, text: text.replace("virtual_router_id 77", "virtual_router_id 78"),
                    scripts={"/etc/keepalived/check_api.sh": None})
    nodes[2] = live(2, lambda p, text: text.replace("priority 100", "priority 110").replace(
        "        198.18.0.12\n", ""))
    found = {f.code: f for f in doctor.diagnose(nodes, t)}
    assert "priority is 120, the file says 125" in found["D305"].message
    assert found["D306"].where == "k8s-master-01:/etc/haproxy/haproxy.cfg"
    assert "operator" in found["D308"].message and found["D307"].where.startswith("k8s-master-02:")
    assert "router id 78" in found["D301"].message and found["D301"].level == "error"
    assert "k8s-master-02, k8s-master-03 all have 110" in found["D303"].message
    assert "198.18.0.12" in found["D310"].message


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=3000))
def test_node_answers_never_raise(garbage):
    facts = nodeconfig.parse_facts(garbage)
    assert isinstance(facts.addresses, list)
    nodeconfig.parse_facts("@@keepalived_cmd\n" + garbage)
    nodeconfig.parse_addresses(garbage)
    running_keepalived(garbage)


def test_facts_from_a_real_answer():
    out = ("@@hostname\nk8s-master-01\n@@uid\n0\n@@keepalived_cmd\n/usr/sbin/keepalived\n--dont-fork\n-f\n/etc/ka.conf\n"
           "@@haproxy_cmd\n/usr/sbin/haproxy\n-W\n-f\n/etc/haproxy/haproxy.cfg\n-f\n/etc/haproxy/conf.d\n"
           "@@haproxy_loaded\n1795939535\n@@addr\n2: eth0    inet 198.18.0.11/24 scope global eth0\n@@data\n")
    f = nodeconfig.parse_facts(out)
    assert (f.hostname, f.keepalived_conf, f.haproxy_loaded_at) == ("k8s-master-01", "/etc/ka.conf", 1795939535.0)
    assert f.haproxy_configs == ["/etc/haproxy/haproxy.cfg", "/etc/haproxy/conf.d"]
    assert f.addresses == [("eth0", "198.18.0.11", 24)] and f.keepalived_running and f.haproxy_running


@pytest.mark.parametrize(("line", "adverts", "noted"),
                         [("down_timer_adverts 5", 5, False), ("down_timer_adverts 1", 2, True)])
def test_discover_reads_missed_adverts_and_clamps_to_the_model(line, adverts, noted):
    found = discover.describe(cluster(edit=lambda p, t: t.replace("advert_int 1", f"advert_int 1\n    {line}")), [], Ssh())
    assert found.topology.vrrp.down_adverts == adverts
    assert any(n.startswith("down_timer_adverts 1: the topology allows 2-20") for n in found.notes) == noted
    assert not any("not modelled" in n and "down_timer_adverts" in n for n in found.notes)



@pytest.mark.parametrize(("timeout", "ms", "kept"),
                         [("5s", 5000, 5000), ("250ms", 250, 250), ("20000", 20000, 10000), ("1ms", 1, 10)])
def test_discover_keeps_the_connect_timeout_clamped_to_the_model(timeout, ms, kept):
    found = discover.describe(cluster(edit=lambda p, t: t.replace("timeout connect 5s", f"timeout connect {timeout}")),
                              [], Ssh())
    assert found.topology.check.connect_timeout_ms == kept
    assert any(n.startswith(f"HAProxy's timeout connect {ms} ms is kept as check.connect_timeout_ms: {kept}")
               for n in found.notes)


@given(st.lists(st.integers(1, 255), min_size=1, max_size=9), st.randoms(use_true_random=False))
@settings(max_examples=300)
def test_tied_priorities_become_distinct_and_elect_the_same_holder(running, rnd):
    """Any running priorities (ties, 255, 1) on 1-9 masters with addresses in any order: the
    topology gets distinct priorities in 1-254, in keepalived's election order (priority, then the
    higher address), unchanged where nothing forced a change, and it validates."""
    from k8s_ha_tui.model.topology import topology_from_dict

    octets = rnd.sample(range(11, 200), len(running))
    masters = [(f"m{i}", f"198.18.0.{o}", p) for i, (o, p) in enumerate(zip(octets, running))]
    notes: list[str] = []
    given_prio = discover.distinct_priorities(masters, notes)
    values = [given_prio[name] for name, _, _ in masters]
    assert len(set(values)) == len(values) and all(1 <= v <= 254 for v in values)

    def election_order(prio_of) -> list[str]:
        ranked = sorted(masters, key=lambda m: (prio_of(m), tuple(int(x) for x in m[1].split("."))), reverse=True)
        return [name for name, _, _ in ranked]
    assert election_order(lambda m: given_prio[m[0]]) == election_order(lambda m: m[2])
    if len(set(running)) == len(running) and max(running) <= 254:
        assert given_prio == {name: p for name, _, p in masters} and notes == []
    assert len(notes) == sum(given_prio[name] != p for name, _, p in masters)
    topo = topology_from_dict({"name": "t", "vip": "198.18.0.10", "masters": [
        {"name": name, "address": address, "priority": given_prio[name]} for name, address, _ in masters]}, "test")
    assert topo.masters[0].name == "m0"


def test_the_daemons_verdicts_on_a_node_become_findings_in_their_words():
    from types import SimpleNamespace

    from k8s_ha_tui.clusters import doctor

    said = ("[NOTICE]   (1) : haproxy version is 2.6.12\n[ALERT]    (1) : config : parsing [/etc/haproxy/haproxy.cfg:46] "
            ": balance only supports 'roundrobin'\n[ALERT]    (1) : config : Fatal errors found in configuration.")
    node = SimpleNamespace(name="m1", verdicts={"haproxy": (1, said), "keepalived": (5, "(Line 9) Unknown keyword 'x'")})
    found = {f.code: f for f in doctor.verdicts(node)}  # type: ignore[arg-type]
    assert found["D313"].level == "error" and "balance only supports 'roundrobin'" in found["D313"].message
    assert "[NOTICE]" not in found["D313"].message
    assert found["D314"].level == "warning" and "Unknown keyword 'x'" in found["D314"].message
    clean = SimpleNamespace(name="m1", verdicts={"haproxy": (0, "Configuration file is valid"), "keepalived": (0, "")})
    assert doctor.verdicts(clean) == []  # type: ignore[arg-type]


SIX = """
vrrp_instance KUBE_API6 {
    state BACKUP
    interface eth0
    virtual_router_id 77
    priority 100
    advert_int 1
    virtual_ipaddress {
        fd01:98:18::10/64
    }
}
"""
GROUP = "\nvrrp_sync_group KUBE {\n    group {\n        KUBE_API\n        KUBE_API6\n    }\n}\n"


def test_doctor_on_a_dual_stack_wants_both_vips_on_every_master_in_one_sync_group():
    from k8s_ha_tui.model.topology import topology_from_dict, topology_to_dict
    t = discover.describe(cluster(), [], Ssh()).topology
    d = topology_to_dict(t)
    d["vip6"], d["vrrp"]["version"] = "fd01:98:18::10", 3
    d["vrrp"].pop("auth_pass", None)
    for m in d["masters"]:
        m["address6"] = layout.six(m["address"])
    dual = topology_from_dict(d, "dual")

    def conf(extra: str, only=(0, 1, 2)):
        return [live(i, lambda p, text, i=i: text + extra if p.endswith("kube-api.conf") and i in only else text,
                     running=False) for i in range(3)]  # judged by their files (the recorded dump has no IPv6)
    apart = [(f.code, f.where) for f in doctor.diagnose(conf(SIX, only=(0, 1)), dual) if f.code in ("D302", "D318")]
    assert apart == [("D302", "k8s-master-03"), ("D318", "k8s-master-01"), ("D318", "k8s-master-02")]
    assert [f.code for f in doctor.diagnose(conf(SIX + GROUP), dual) if f.code in ("D302", "D318")] == []


def test_discover_describes_a_dual_stack_from_its_two_instances_and_each_masters_ipv6_address():
    from dataclasses import replace as replaced

    def dual(i: int, group: str = GROUP, address6: bool = True, version: int = 3) -> nodeconfig.LiveNode:
        def edit(path: str, text: str) -> str:
            if not path.endswith("kube-api.conf"):
                return text
            v3 = re.sub(r"    authentication \{[^}]*\}\n", "    version 3\n", text) if version == 3 else text
            return v3 + SIX + group
        n = live(i, edit, running=False)
        extra = [("eth0", layout.six(MASTERS[i].address), 64)] if address6 else []
        return replaced(n, facts=replaced(n.facts, addresses=[*n.facts.addresses, *extra]))
    found = discover.describe([dual(i) for i in range(3)], [], Ssh())
    t = found.topology
    assert (t.vip, t.vip6, t.prefix6) == (layout.VIP, "fd01:98:18::10", 64)
    assert [m.address6 for m in t.masters] == [layout.six(m.address) for m in MASTERS]
    assert not [n for n in found.notes if "KUBE_API6" in n or "vrrp_sync_group" in n]
    lost = discover.describe([dual(0), dual(1), dual(2, address6=False)], [], Ssh())
    assert lost.topology.vip6 is None
    assert "k8s-master-03 have no address in fd01:98:18::/64: the topology describes the IPv4 VIP only" in lost.notes
    other = discover.describe([dual(i, group="") for i in range(3)], [], Ssh())  # another service's instance
    assert other.topology.vip6 is None and any("not in one vrrp_sync_group" in n for n in other.notes)
    two = discover.describe([dual(i, version=2) for i in range(3)], [], Ssh())
    assert two.topology.vip6 is None and any("speaks VRRPv2" in n for n in two.notes)
