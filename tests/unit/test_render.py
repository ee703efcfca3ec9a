"""Rendering: the right files, modes and contents, written whole or not at all."""

from __future__ import annotations

import copy
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

import pytest

from k8s_ha_tui.configs import render
from k8s_ha_tui.configs.confparse import parse_haproxy, parse_keepalived
from k8s_ha_tui.configs.lint import lint_configs
from k8s_ha_tui.errors import UserError
from k8s_ha_tui.model import topology as tp
from k8s_ha_tui.wizard import SEED_DEFAULTS


def topo(**changes) -> tp.Topology:
    data = copy.deepcopy(SEED_DEFAULTS)
    for key, value in changes.items():
        if isinstance(value, dict):
            data.setdefault(key, {}).update(value)
        else:
            data[key] = value
    return tp.topology_from_dict(data)


class _Healthz(BaseHTTPRequestHandler):
    calls = 0

    def do_GET(self):  # noqa: N802 - the http.server API
        type(self).calls += 1
        self.send_response(200 if self.path == "/healthz" else 404)
        self.end_headers()

    def log_message(self, *args):
        pass


def node_files(t: tp.Topology, i: int = 0, **kw) -> dict[str, str]:
    return {f.path: f.text for f in render.render_node(t, t.masters[i], **kw)}


def test_tree_has_every_file_with_safe_modes(tmp_path):
    t = topo(vrrp={"version": 2, "advert_int": 1, "auth_pass": "pw"})
    out = render.write_tree(render.render_all(t), tmp_path / "out")
    for m in t.masters:
        base = out / m.name
        assert (base / "etc/keepalived/keepalived.conf").stat().st_mode & 0o777 == 0o640
        for script in ("check_apiserver.sh", "notify.sh"):
            mode = (base / "etc/keepalived" / script).stat().st_mode & 0o777
            assert mode == 0o755  # executable, writable by root only (enable_script_security)
        assert (base / "etc/haproxy/haproxy.cfg").exists()
        for pod in ("keepalived.yaml", "haproxy.yaml"):
            assert (base / "etc/kubernetes/manifests" / pod).exists()
    kubeadm = (out / "kubeadm-config.yaml").read_text()
    assert 'controlPlaneEndpoint: "k8s.sungup.io:8443"' in kubeadm


def test_keepalived_config_fixes_every_seed_defect():
    root = parse_keepalived(node_files(topo())[render.PATHS.keepalived_conf])
    g = root.first("global_defs")
    assert g.first("enable_script_security") and g.value("router_id") == "k8s-master-01"
    assert g.first("vrrp_higher_prio_send_advert")  # the winner re-announces after a partition
    script = root.first("vrrp_script")
    assert script.value("weight") == "0" and script.value("interval") == "1" and script.value("fall") == "1"
    inst = root.first("vrrp_instance")
    assert inst.value("priority") == "150" and inst.value("state") == "BACKUP"
    assert inst.first("virtual_ipaddress").words() == ["10.0.3.10/24"]
    assert inst.first("track_file").words() == ["k8s_ha_maintenance", "k8s_ha_boost"]
    # every state and priority change reaches the notify script through keepalived's FIFO
    assert not inst.first("notify") and g.value("vrrp_notify_fifo_script") == render.PATHS.notify_script
    assert g.value("vrrp_notify_fifo") == render.PATHS.vrrp_fifo and g.first("vrrp_notify_priority_changes")
    assert not inst.first("unicast_peer") and not inst.first("authentication")


def test_check_script_asks_local_haproxy_not_the_vip():
    text = node_files(topo())[render.PATHS.check_script]
    assert "http://127.0.0.1:8404/healthz" in text and "10.0.3.10" not in text


def run_check_script(tmp_path, port: int) -> int:
    script = tmp_path / "check.sh"
    script.write_text(node_files(topo(health_port=port))[render.PATHS.check_script])
    return subprocess.run(["sh", str(script)], timeout=10).returncode


def test_check_script_passes_on_a_live_haproxy_and_fails_on_a_dead_one(tmp_path):
    """Run for real with curl: 200 from the monitor URI passes; nobody listening fails."""
    server = HTTPServer(("127.0.0.1", 0), _Healthz)
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        assert run_check_script(tmp_path, port) == 0
        assert _Healthz.calls == 1  # the first try answered: no second one
    finally:
        server.shutdown()
        server.server_close()
    assert run_check_script(tmp_path, port) == 1  # port closed: both tries refused


def test_both_check_tries_fit_in_keepalived_script_timeout():
    for interval in (1, 2, 3, 60):
        t = topo(check={"interval": interval})
        text = node_files(t)[render.PATHS.check_script]
        per_try = float(text.split("--max-time ")[1].split()[0])
        assert "for try in 1 2" in text and 2 * per_try + 0.1 <= interval


def test_haproxy_is_tcp_with_a_real_tls_readyz_check():
    sections = parse_haproxy(node_files(topo())[render.PATHS.haproxy_cfg])
    be = next(s for s in sections if s.kind == "backend")
    fe = next(s for s in sections if s.kind == "frontend" and s.name == "apiserver")
    assert be.mode() == "tcp" and fe.mode() == "tcp"
    assert fe.directives("bind")[0][1][1] == "*:8443"
    assert be.directives("http-check", "send")[0][1][2:] == ["meth", "GET", "uri", "/readyz"]
    server_opts = be.directives("default-server")[0][1]
    assert "check-ssl" in server_opts
    # traffic that fails to connect counts against a server, and is retried elsewhere at once
    assert server_opts[server_opts.index("observe") + 1] == "layer4"
    defaults = next(s for s in sections if s.kind == "defaults")
    assert defaults.directives("option", "redispatch")[0][1][2:] == ["1"]
    assert [t[1:3] for _, t in be.directives("server")] == [
        ["k8s-master-01", "10.0.3.11:6443"], ["k8s-master-02", "10.0.3.12:6443"], ["k8s-master-03", "10.0.3.13:6443"]]


@pytest.mark.parametrize("ms", [10, 200, 500, 10000])
def test_clients_connect_timeout_follows_the_topology_and_checks_keep_their_own(ms):
    """With `timeout check` set HAProxy would bound a check's connect and TLS handshake by the
    clients' connect timeout, failing busy apiservers (docs/speed.md): it must stay unset."""
    sections = parse_haproxy(node_files(topo(check={"connect_timeout_ms": ms}))[render.PATHS.haproxy_cfg])
    defaults = next(s for s in sections if s.kind == "defaults")
    assert defaults.directives("timeout", "connect")[0][1][2] == f"{ms}ms"
    assert not any(s.directives("timeout", "check") for s in sections)


def test_connect_timeout_outside_its_range_is_refused():
    for ms in (9, 10001):
        with pytest.raises(UserError, match="connect_timeout_ms"):
            topo(check={"connect_timeout_ms": ms})


def test_haproxy_2_0_gets_syntax_it_knows():
    text = node_files(topo(), haproxy_version="2.0.13")[render.PATHS.haproxy_cfg]
    assert "option httpchk GET /readyz" in text and "http-check send" not in text


def test_unicast_lists_the_other_masters_and_v3_sets_timing():
    t = topo(vrrp={"unicast": True, "version": 3, "advert_int": 0.5})
    root = parse_keepalived(node_files(t, 1)[render.PATHS.keepalived_conf])
    inst = root.first("vrrp_instance")
    assert inst.value("unicast_src_ip") == "10.0.3.12"
    assert inst.first("unicast_peer").words() == ["10.0.3.11", "10.0.3.13"]
    assert inst.value("advert_int") == "0.5"
    assert root.first("global_defs").value("vrrp_version") == "3"


def test_per_master_interface_and_priority():
    t = topo(masters=[{"name": "a", "address": "10.0.3.11", "interface": "bond0", "priority": 200},
                      {"name": "b", "address": "10.0.3.12"}])
    inst = parse_keepalived(node_files(t)[render.PATHS.keepalived_conf]).first("vrrp_instance")
    assert inst.value("interface") == "bond0" and inst.value("priority") == "200"
    vip = inst.first("virtual_ipaddress").children[0]
    assert (vip.keyword, vip.args) == ("10.0.3.10/24", ["dev", "bond0"])


def dual_stack(**vrrp) -> tp.Topology:
    return topo(vip6="fd00:0:0:3::10", masters=[{"name": f"m{i}", "address": f"10.0.3.1{i}",
                                                 "address6": f"fd00:0:0:3::1{i}"} for i in (1, 2, 3)],
                vrrp={"version": 3, "advert_int": 0.3, "auth_pass": None, **vrrp})


def test_dual_stack_has_an_instance_per_family_moved_together():
    t = dual_stack(unicast=True)
    files = node_files(t, 1)
    root = parse_keepalived(files[render.PATHS.keepalived_conf])
    group = root.first("vrrp_sync_group")
    assert group is not None and group.first("group").words() == ["VI_51", "VI6_51"]
    assert group.first("sync_group_tracking_weight") is not None  # else keepalived drops the boost's weight
    four, six = root.all("vrrp_instance")
    assert [i.first("virtual_ipaddress").children[0].keyword for i in (four, six)] == ["10.0.3.10/24",
                                                                                       "fd00:0:0:3::10/64"]
    assert (four.value("unicast_src_ip"), four.first("unicast_peer").words()) == ("10.0.3.12", ["10.0.3.11", "10.0.3.13"])
    assert (six.value("unicast_src_ip"), six.first("unicast_peer").words()) == ("fd00:0:0:3::12",
                                                                               ["fd00:0:0:3::11", "fd00:0:0:3::13"])
    assert all(i.first("track_file").words() == ["k8s_ha_maintenance", "k8s_ha_boost"] for i in (four, six))
    assert "    bind :::8443 v4v6\n" in files[render.PATHS.haproxy_cfg]
    assert [f for f in lint_configs(files[render.PATHS.keepalived_conf], files[render.PATHS.haproxy_cfg],
                                    files[render.PATHS.check_script]) if f.level != "info"] == []
    kubeadm = render.render_kubeadm_config(t)
    assert '- "fd00:0:0:3::10"' in kubeadm and "AAAA record fd00:0:0:3::10" in kubeadm


def test_an_ipv6_only_cluster_has_one_ipv6_instance_and_bracketed_endpoint():
    t = topo(vip="fd00::10", prefix=64, api_endpoint=None, vrrp={"version": 3, "advert_int": 0.3, "auth_pass": None},
             masters=[{"name": f"m{i}", "address": f"fd00::1{i}"} for i in (1, 2)],
             workers=[{"name": "w1", "address": "fd00::21"}])
    files = node_files(t)
    root = parse_keepalived(files[render.PATHS.keepalived_conf])
    assert root.first("vrrp_sync_group") is None and len(root.all("vrrp_instance")) == 1
    assert root.first("vrrp_instance").first("virtual_ipaddress").children[0].keyword == "fd00::10/64"
    assert "server m2 fd00::12:6443" in files[render.PATHS.haproxy_cfg]
    assert 'controlPlaneEndpoint: "[fd00::10]:8443"' in render.render_kubeadm_config(t)


def test_an_ipv4_cluster_renders_as_before_dual_stack_came():
    """No sync group, no v4v6: what an IPv4 cluster runs today is unchanged byte for byte."""
    files = node_files(topo())
    assert "vrrp_sync_group" not in files[render.PATHS.keepalived_conf]
    assert "    bind *:8443\n" in files[render.PATHS.haproxy_cfg]


def test_rendered_configs_have_no_lint_findings():
    files = node_files(topo(vrrp={"version": 2, "advert_int": 1, "auth_pass": "pw"}))
    findings = lint_configs(files[render.PATHS.keepalived_conf], files[render.PATHS.haproxy_cfg],
                            files[render.PATHS.check_script])
    assert findings == []


def test_scripts_are_valid_shell():
    files = node_files(topo())
    for path in (render.PATHS.check_script, render.PATHS.notify_script):
        assert subprocess.run(["sh", "-n"], input=files[path], text=True).returncode == 0


def test_notify_script_records_state_changes(tmp_path):
    """Run the real rendered notify script with its state folder pointed at a temp dir."""
    text = node_files(topo())[render.PATHS.notify_script].replace(render.PATHS.state_dir, str(tmp_path / "st"))
    script = tmp_path / "notify.sh"
    script.write_text(text)
    for state in ("BACKUP", "MASTER"):
        subprocess.run(["sh", str(script), "INSTANCE", "VI_51", state, "150"], check=True)
    assert (tmp_path / "st/vrrp-state").read_text().split()[1:] == ["INSTANCE", "VI_51", "MASTER", "150"]
    events = (tmp_path / "st/vrrp-events.log").read_text().splitlines()
    assert [e.split()[3] for e in events] == ["BACKUP", "MASTER"]


def test_write_tree_refuses_a_foreign_folder_and_leaves_it(tmp_path):
    foreign = tmp_path / "etc"
    foreign.mkdir()
    (foreign / "passwd").write_text("root\n")
    with pytest.raises(UserError, match="not made by 'k8s-ha-tui render'"):
        render.write_tree(render.render_all(topo()), foreign)
    assert [p.name for p in foreign.iterdir()] == ["passwd"]


def test_write_tree_replaces_its_own_output_whole(tmp_path):
    out = tmp_path / "out"
    render.write_tree(render.render_all(topo()), out)
    t2 = topo(masters=[{"name": "solo", "address": "10.0.3.11"}], workers=[])
    render.write_tree(render.render_all(t2), out)
    assert sorted(p.name for p in out.iterdir()) == [".k8s-ha-tui-render", "kubeadm-config.yaml", "solo"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_failed_render_leaves_no_partial_output(tmp_path):
    bad_templates = tmp_path / "tpl"
    bad_templates.mkdir()
    for f in render.templates_dir().iterdir():
        (bad_templates / f.name).write_text(f.read_text())
    (bad_templates / "haproxy.cfg.j2").write_text("{{ no_such_variable }}\n")
    with pytest.raises(UserError, match="template error"):
        render.write_tree(render.render_all(topo(), template_dir=bad_templates), tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_write_failure_midway_leaves_nothing(tmp_path, monkeypatch):
    files = render.render_all(topo())
    real_open = render.os.open
    calls = {"n": 0}

    def flaky_open(path, *a, **kw):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError(28, "No space left on device")
        return real_open(path, *a, **kw)

    monkeypatch.setattr(render.os, "open", flaky_open)
    with pytest.raises(UserError, match="cannot write: No space left on device"):
        render.write_tree(files, tmp_path / "out")
    assert list(tmp_path.iterdir()) == []


def test_a_dual_stack_vip_is_refused_on_keepalived_before_2_0():
    t = dual_stack()
    assert "needs keepalived 2.0 or newer" in str(render.keepalived_refusal(t, "1.3.5"))
    assert render.keepalived_refusal(t, "2.0.19") is None and render.keepalived_refusal(topo(), "1.3.5") is None
