"""Topology → per-node files, from the Jinja2 templates in ../templates.

The output tree mirrors the node's file system: DIR/<master>/etc/keepalived/keepalived.conf and
so on, plus DIR/kubeadm-config.yaml. It is written whole or not at all.
"""

from __future__ import annotations

import os
import shlex
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import jinja2

from k8s_ha_tui.configs import kubeadm_steps
from k8s_ha_tui.errors import UserError
from k8s_ha_tui.files import check_creatable
from k8s_ha_tui.model.topology import Master, Topology
from k8s_ha_tui.model.vrrp_timing import RFC_DOWN_ADVERTS
from k8s_ha_tui.paths import PATHS

RENDER_MARKER = ".k8s-ha-tui-render"


EVENTS_KEPT = 500


@dataclass(frozen=True)
class RenderedFile:
    """One file for one node: its absolute path on the node, its text and its mode."""

    path: str
    text: str
    mode: int


# (template, path attribute on NodePaths, mode). keepalived.conf may hold auth_pass: 0640.
_NODE_FILES = (
    ("keepalived.conf.j2", "keepalived_conf", 0o640),
    ("check_apiserver.sh.j2", "check_script", 0o755),
    ("notify.sh.j2", "notify_script", 0o755),
    ("haproxy.cfg.j2", "haproxy_cfg", 0o644),
    ("keepalived-pod.yaml.j2", "keepalived_pod", 0o600),
    ("haproxy-pod.yaml.j2", "haproxy_pod", 0o600),
)


def templates_dir() -> Path:
    """The templates: inside the installed package, or ../templates in a source checkout."""
    packaged = Path(__file__).parent.parent / "templates"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent.parent / "templates"


def _environment(directory: Path | None = None) -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(directory or templates_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
        trim_blocks=True,
        lstrip_blocks=True,
        autoescape=False,
    )
    env.filters["shquote"] = shlex.quote
    return env


def instance_name(topo: Topology) -> str:
    """The instance that carries `vip` (of either family)."""
    return f"VI_{topo.vrrp.router_id}"


def instance6_name(topo: Topology) -> str:
    """The instance that carries a dual stack's `vip6`."""
    return f"VI6_{topo.vrrp.router_id}"


@dataclass(frozen=True)
class Instance:
    """One VRRP instance of a master: keepalived runs one per address family (one instance
    cannot mix them), so a dual-stack cluster has two, in a sync group that moves them together."""

    name: str
    vip: str
    prefix: int
    source: str  # the master's own address of this family (unicast_src_ip)
    peers: tuple[str, ...]  # the other masters' addresses of this family


def instances(topo: Topology, node: Master) -> list[Instance]:
    peers = [m for m in topo.masters if m.name != node.name]
    out = [Instance(instance_name(topo), topo.vip, topo.prefix, node.address, tuple(m.address for m in peers))]
    if topo.vip6 is not None:
        assert node.address6 is not None  # the topology requires it on every master with vip6
        out.append(Instance(instance6_name(topo), topo.vip6, topo.prefix6, node.address6,
                            tuple(str(m.address6) for m in peers)))
    return out


def sync_group_name(topo: Topology) -> str:
    return f"VG_{topo.vrrp.router_id}"


def parse_version(text: str | None) -> tuple[int, int]:
    """'2.0.29' → (2, 0); None means the newest we know."""
    if not text:
        return (99, 0)
    parts = text.split(".")
    try:
        return (int(parts[0]), int(parts[1]) if len(parts) > 1 else 0)
    except ValueError:
        raise UserError(f"{text!r} is not a version like 2.6") from None


def keepalived_refusal(topo: Topology, keepalived_version: str | None) -> str | None:
    """Why the topology cannot run on this keepalived version, or None. (Unknown versions pass:
    `keepalived -t` on the node still refuses a keyword it does not know, before any change.)"""
    if topo.vrrp.down_adverts != RFC_DOWN_ADVERTS and keepalived_version and parse_version(keepalived_version) < (2, 2):
        return (f"vrrp.down_adverts {topo.vrrp.down_adverts} needs keepalived 2.2 or newer (down_timer_adverts), "
                f"this node has {keepalived_version}; use vrrp.down_adverts 3 (the `default` speed profile)")
    if topo.vip6 and keepalived_version and parse_version(keepalived_version) < (2, 0):
        return (f"a dual-stack VIP needs keepalived 2.0 or newer (weights in a sync group: "
                f"sync_group_tracking_weight), this node has {keepalived_version}")
    return None


def render_node(topo: Topology, node: Master, haproxy_version: str | None = None,
                template_dir: Path | None = None) -> list[RenderedFile]:
    """Every file one master needs. `haproxy_version` picks syntax the node's HAProxy knows."""
    env = _environment(template_dir)
    context = {
        "topo": topo,
        "node": node,
        "peers": [m for m in topo.masters if m.name != node.name],
        "priority": topo.priority_of(node),
        "interface": topo.interface_of(node),
        "instances": instances(topo, node),
        "sync_group": sync_group_name(topo),
        "ipv6": topo.family == 6 or topo.vip6 is not None,
        "paths": PATHS,
        "events_kept": EVENTS_KEPT,
        "health_url": f"http://127.0.0.1:{topo.health_port}/healthz",
        # Two tries and a 0.1 s pause must fit in keepalived's script timeout (the interval).
        "check_attempt_s": f"{(topo.check.interval - 0.1) / 2:g}",
        "haproxy_modern": parse_version(haproxy_version) >= (2, 2),
    }
    try:
        return [
            RenderedFile(getattr(PATHS, attr), env.get_template(tpl).render(context), mode)
            for tpl, attr, mode in _NODE_FILES
        ]
    except jinja2.TemplateError as exc:
        raise UserError(f"template error: {exc}") from None


def render_kubeadm_config(topo: Topology, api: str = kubeadm_steps.DEFAULT_API,
                          template_dir: Path | None = None) -> str:
    """kubeadm's configuration for `kubeadm init` on the first master (kubeadm_steps.APIS)."""
    try:
        return _environment(template_dir).get_template("kubeadm-config.yaml.j2").render(
            topo=topo, api=api, api_for=kubeadm_steps.APIS[api], first=topo.masters[0])
    except jinja2.TemplateError as exc:
        raise UserError(f"template error: {exc}") from None


def render_cluster_files(topo: Topology, template_dir: Path | None = None,
                         kubeadm_api: str = kubeadm_steps.DEFAULT_API) -> list[RenderedFile]:
    return [RenderedFile("kubeadm-config.yaml", render_kubeadm_config(topo, kubeadm_api, template_dir), 0o644)]


def render_all(topo: Topology, haproxy_version: str | None = None, template_dir: Path | None = None,
               kubeadm_api: str = kubeadm_steps.DEFAULT_API) -> dict[str, RenderedFile]:
    """Relative output path → file, for every master and the cluster-wide kubeadm config."""
    out: dict[str, RenderedFile] = {}
    for m in topo.masters:
        for f in render_node(topo, m, haproxy_version, template_dir):
            out[f"{m.name}{f.path}"] = f
    for f in render_cluster_files(topo, template_dir, kubeadm_api):
        out[f.path] = f
    return out


def check_tree_target(out_dir: str | os.PathLike) -> Path:
    """Where write_tree may write, checked before any work (and before a wizard writes its
    topology, so that it never stops half-done): a one-line error otherwise."""
    target = Path(out_dir).expanduser().absolute()
    if target.exists():
        if not target.is_dir():
            raise UserError(f"{target}: exists and is not a directory")
        if any(target.iterdir()) and not (target / RENDER_MARKER).exists():
            raise UserError(f"{target}: not empty and not made by 'k8s-ha-tui render'; choose another folder")
        return target
    check_creatable(target)
    return target


def write_tree(files: dict[str, RenderedFile], out_dir: str | os.PathLike) -> Path:
    """Write the files under out_dir atomically: build a sibling folder, then swap it in.

    Refuses to replace a folder that is not empty and was not made by render, so a typo like
    `-o /etc` cannot destroy anything.
    """
    target = check_tree_target(out_dir)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UserError(f"{target}: a part of the path is a file, not a directory") from None
    except OSError as exc:
        raise UserError(f"{target}: cannot create: {exc.strerror}") from None
    staging = Path(tempfile.mkdtemp(prefix=f".{target.name}.new-", dir=target.parent))
    try:
        os.chmod(staging, 0o750)
        for rel, f in files.items():
            dest = staging / rel
            dest.parent.mkdir(parents=True, exist_ok=True, mode=0o755)
            fd = os.open(dest, os.O_WRONLY | os.O_CREAT | os.O_EXCL, f.mode)
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                os.fchmod(fh.fileno(), f.mode)  # not narrowed by the umask
                fh.write(f.text)
        (staging / RENDER_MARKER).write_text("rendered by k8s-ha-tui\n")
        if target.exists():
            old = Path(tempfile.mkdtemp(prefix=f".{target.name}.old-", dir=target.parent))
            os.rename(target, old / "tree")
            os.rename(staging, target)
            shutil.rmtree(old)
        else:
            os.rename(staging, target)
    except OSError as exc:  # a full or read-only device: nothing of the new tree is left behind
        shutil.rmtree(staging, ignore_errors=True)
        raise UserError(f"{target}: cannot write: {exc.strerror or exc}") from None
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target
