"""Clusters someone else set up, and many clusters at once: discover, doctor, exporter."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from k8s_ha_tui.cli.common import Parents, bounded, print_findings
from k8s_ha_tui.errors import UserError


def cmd_doctor(args: argparse.Namespace) -> int:
    import asyncio

    from k8s_ha_tui.clusters import doctor
    from k8s_ha_tui.clusters.nodeconfig import read_node
    from k8s_ha_tui.configs import lint
    from k8s_ha_tui.errors import Refused
    from k8s_ha_tui.model import topology
    from k8s_ha_tui.remote import roles
    from k8s_ha_tui.remote.ssh import connect_reachable, policy_for
    from k8s_ha_tui.remote.vrrp_census import Census

    topo = topology.load_topology(args.topology)

    census = Census()

    async def main():
        conns, errors = await connect_reachable(topo, topo.masters, policy_for(topo))
        try:
            # The configs doctor reads are root's (keepalived.conf may hold the VRRP password): a
            # login without root would see them missing and report findings that are not true.
            why = roles.lacking(await roles.logins(conns), "deploy", "doctor")
            if why:
                raise Refused(f"{why}: it reads root-only configs; `status` shows what a watch login may see")
            nodes = await asyncio.gather(*(read_node(c, (census, topo.interface_of(topo.master(c.name))))
                                           for c in conns))
            return nodes, errors
        finally:
            for c in conns:
                c.close()
    nodes, errors = asyncio.run(main())
    findings = doctor.diagnose(list(nodes), topo, census)
    print_findings(findings, args.json)
    if errors:
        for why in errors.values():
            print(f"error: {why}", file=sys.stderr)
        return 2
    return 1 if lint.has_errors(findings) else 0


def _addresses(text: str, what: str) -> list[str]:
    from k8s_ha_tui.model.topology import check_ipv4

    out = []
    for part in (p.strip() for p in text.split(",")):
        try:
            out.append(check_ipv4(part))
        except ValueError as exc:
            raise UserError(f"{what}: {exc}", code=2) from None
    if len(set(out)) != len(out):
        raise UserError(f"{what}: an address is given twice", code=2)
    return out


def cmd_discover(args: argparse.Namespace) -> int:
    import asyncio

    from k8s_ha_tui.clusters import discover
    from k8s_ha_tui.model import topology
    from k8s_ha_tui.remote.ssh import HostKeyPolicy, check_ssh_files

    topology.check_writable(args.output)  # before connecting anywhere
    masters = _addresses(args.masters, "--masters")
    workers = _addresses(args.workers, "--workers") if args.workers else []
    try:
        ssh = topology.Ssh(user=args.ssh_user, port=args.ssh_port, identity_file=args.identity_file,
                           known_hosts=args.known_hosts, become=args.become)
    except ValueError as exc:
        raise UserError(f"ssh settings: {str(exc).splitlines()[-1].strip()}", code=2) from None
    check_ssh_files(ssh)
    policy = HostKeyPolicy(Path(ssh.known_hosts).expanduser(), args.accept_new_host_keys)
    found = asyncio.run(discover.read_cluster(masters, workers, ssh, policy))
    result = discover.describe(*found, ssh, args.name)
    for entry in policy.recorded:
        print(f"recorded new host key: {entry}")
    for note in result.notes:
        print(f"note: {note}")
    topology.save_topology(result.topology, args.output)
    t = result.topology
    print(f"wrote {args.output}: {t.name}, VIP {t.vip}/{t.prefix}, router id {t.vrrp.router_id}, VRRPv{t.vrrp.version}, "
          f"masters {', '.join(f'{m.name} ({t.priority_of(m)})' for m in t.masters)}")
    return 0


def cmd_exporter(args: argparse.Namespace) -> int:
    import asyncio

    from k8s_ha_tui import exporter
    from k8s_ha_tui.model import topology
    from k8s_ha_tui.remote.ssh import policy_for

    topos = [topology.load_topology(path) for path in args.topology]
    names = [t.name for t in topos]
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        raise UserError(f"cluster name {', '.join(twice)} appears in more than one topology file: the "
                        "`cluster` label would mix them; give each cluster its own name")
    try:
        listen = exporter.parse_listen(args.listen)
    except ValueError as exc:
        raise UserError(f"--listen: {exc}") from None
    try:
        asyncio.run(exporter.serve(topos, [policy_for(t) for t in topos], listen, args.interval,
                                   lambda where: print(f"serving /metrics on http://{where}/metrics for "
                                                       f"{', '.join(names)} (every {args.interval:g} s)", flush=True)))
    except OSError as exc:
        raise UserError(f"--listen {args.listen}: {exc.strerror or exc}") from None
    print("stopped")
    return 0


def add_parsers(sub, p: Parents) -> None:
    dr = sub.add_parser("doctor", parents=[p.topology, p.json],
                        help="lint what really runs on every master, and what files alone cannot show",
                        description="Reads every master's live keepalived (includes followed) and HAProxy configs over "
                                    "SSH and lints them (findings name the node, the remote path and line); adds a "
                                    "reload pending (file differs from the running daemon), masters that disagree, "
                                    "priority ties, differing server sets, missing or unsafe check scripts. "
                                    "Exit 0: no error; 1: errors found; 2: a master could not be read.")
    dr.set_defaults(func=cmd_doctor)

    di = sub.add_parser("discover", help="write a topology file that describes a running cluster",
                        description="Connects to the masters (host keys checked as deploy does), reads the running "
                                    "keepalived (its includes followed) and HAProxy configs, keepalived's own state "
                                    "and the interfaces, and writes a topology (0600) for status, monitor, doctor and "
                                    "the actions. Prints one line for each thing the model cannot express and each "
                                    "thing the masters disagree on.")
    di.add_argument("--masters", required=True, metavar="ADDR[,ADDR...]")
    di.add_argument("--workers", metavar="ADDR[,ADDR...]", help="workers, to see the API through the VIP from them")
    di.add_argument("-o", "--output", required=True, metavar="FILE")
    di.add_argument("--name", help="the cluster's name (default: from the VRRP instance's)")
    di.add_argument("--ssh-user", default="root", metavar="USER")
    di.add_argument("--ssh-port", type=bounded(int, 1, 65535), default=22, metavar="PORT",
                    help="1-65535 (default: %(default)s)")
    di.add_argument("--identity-file", default="~/.ssh/id_ed25519", metavar="FILE")
    di.add_argument("--known-hosts", default="~/.ssh/known_hosts", metavar="FILE")
    di.add_argument("--accept-new-host-keys", action="store_true",
                    help="trust and record host keys not yet in known_hosts (never changed ones)")
    di.add_argument("--become", choices=["none", "sudo"], default="none",
                    help="sudo: run as root with passwordless sudo (default: log in as root)")
    di.set_defaults(func=cmd_discover)

    ex = sub.add_parser("exporter", help="Prometheus metrics for one or many clusters, until stopped",
                        description="Serves /metrics (Prometheus text format) for every cluster of the given "
                                    "topology files from one process: keepalived's and HAProxy's usual metric "
                                    "names with cluster and node labels, and k8s_ha_* for what only a view of the "
                                    "whole cluster shows (split brain, holders, the API through the VIP). A scrape "
                                    "never waits for SSH. Stop it with SIGTERM or Ctrl-C.")
    ex.add_argument("-t", "--topology", required=True, action="append", metavar="FILE",
                    help="a cluster's topology file; repeat for more clusters")
    ex.add_argument("--listen", default="127.0.0.1:9651", metavar="ADDR:PORT",
                    help="where to serve /metrics (default: %(default)s)")
    ex.add_argument("--interval", type=bounded(float, 1, 300, " seconds"), default=5.0, metavar="SECONDS",
                    help="poll every node this often, 1-300 (default: %(default)s)")
    ex.set_defaults(func=cmd_exporter)
