"""The `lab` commands (and `demo`, which starts from the lab): argument parsing only."""

from __future__ import annotations

import argparse
import json
import os
import sys

from k8s_ha_tui.lab import layout as L


def cmd_up(args: argparse.Namespace) -> int:
    from k8s_ha_tui.lab.cluster import lab_topologies, up

    path = up(args.masters, args.workers, bare=args.bare, clusters=args.clusters, family=args.family)
    if args.output:
        import shutil

        shutil.copyfile(path, args.output)
        os.chmod(args.output, 0o600)
        path = args.output
    # One topology file per line, the first cluster's first; the last line is one too (with one
    # cluster, the only one: scripts take it from there).
    for each in [path, *lab_topologies()[1:]]:
        print(each)
    return 0


def cmd_down(args: argparse.Namespace) -> int:
    from k8s_ha_tui.lab.cluster import down

    down()
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from k8s_ha_tui.lab.cluster import status

    st = status()
    if args.json:
        print(json.dumps(st, indent=2))
        return 0 if st["up"] else 1
    if not st["up"]:
        left = st["namespaces"]
        print("lab: not up" + (f" (leftover namespaces: {', '.join(left)}; run 'lab down')" if left else ""))
        return 1
    if len(st["clusters"]) == 1:
        six = f" and {st['clusters'][0]['vip6']}" if "vip6" in st["clusters"][0] else ""
        print(f"lab: up, {st['subnet']}, VIP {st['vip']}{six}, topology {st['topology']}")
    else:
        print(f"lab: up, {st['subnet']}, {len(st['clusters'])} clusters on one bridge:")
        for c in st["clusters"]:
            six = f" and {c['vip6']}" if "vip6" in c else ""
            print(f"  {c['name']:<5} VIP {c['vip']:<13}{six} router id {c['router_id']}  topology {c['topology']}")
    for n in st["nodes"]:
        absent = "kube-apiserver" if not n.get("kubeadm", True) else None  # no manifest: never installed
        daemons = " ".join(f"{d}:{'up' if ok else 'not installed' if d == absent else 'down'}"
                           for d, ok in n["daemons"].items())
        faults = f"  faults: {','.join(n['faults'])}" if n["faults"] else ""
        print(f"  {n['name']:<15} {n['role']:<7} {', '.join(n['addresses']) or '-':<31} {daemons}{faults}")
    return 0


def cmd_fault(args: argparse.Namespace) -> int:
    from k8s_ha_tui.lab.cluster import fault

    print(fault(args.node, args.kind, args.value, args.every))
    return 0


def cmd_heal(args: argparse.Namespace) -> int:
    from k8s_ha_tui.lab.cluster import heal

    print(heal(args.node, args.kind))
    return 0


def cmd_kubeadm(args: argparse.Namespace) -> int:
    from k8s_ha_tui.lab.cluster import run_kubeadm

    print(run_kubeadm(args.node, args.verb))
    return 0


def cmd_handmade(args: argparse.Namespace) -> int:
    from k8s_ha_tui.lab.cluster import install_handmade

    print(install_handmade())
    return 0


def cmd_shell(args: argparse.Namespace) -> int:
    from k8s_ha_tui.lab.cluster import shell_command

    cmd = shell_command(args.node)
    os.execvp(cmd[0], cmd)
    return 0  # pragma: no cover - exec does not return


def cmd_demo(args: argparse.Namespace) -> int:
    """The lab, then a real deploy to it, then what to try next."""
    import asyncio

    from k8s_ha_tui.lab.cluster import up
    from k8s_ha_tui.model import topology
    from k8s_ha_tui.remote.ssh import policy_for
    from k8s_ha_tui.rollouts import deploy

    path = up(3, 3)
    topo = topology.load_topology(path)
    print(f"\ndeploying keepalived + HAProxy to the lab's masters ({path})")
    async def yes(_plans) -> bool:
        return True
    ctx = deploy.Rollout(topo, policy_for(topo), deploy.Options(topology_file=str(path)),
                         lambda line: print(f"  {line}", flush=True))
    asyncio.run(deploy.deploy(ctx, yes))
    print(f"\nThe lab runs 3 masters and 3 workers on {L.SUBNET}: real sshd, keepalived and HAProxy, and a "
          f"TLS kube-apiserver stand-in on each master.\nThe API answers at https://{L.VIP}:{topo.frontend_port}/readyz "
          f"(curl -k). Topology: {path}")
    hint = ("In another shell try:  k8s-ha-tui lab fault k8s-master-01 haproxy-down  (the VIP moves)  |  "
            "k8s-ha-tui lab fault k8s-master-01 vrrp-drop  (split brain)  |  k8s-ha-tui lab heal k8s-master-01")
    print(hint)
    if args.no_monitor or not (sys.stdin.isatty() and sys.stdout.isatty()):
        print(f"Watch it:  k8s-ha-tui monitor -t {path}   (then f: failover, m: maintenance, q: quit)")
        return 0
    from k8s_ha_tui.tui.app import run_monitor

    input("Press Enter to open the monitor (f: failover, m: maintenance, l: logs, q: quit) ")
    code, changes = run_monitor(topo, policy_for(topo), 1.0)
    print(f"monitor closed: {'; '.join(changes) or 'nothing was changed from it'}")
    print(hint)
    return code


def add_lab_commands(sub) -> None:
    from k8s_ha_tui.lab.faults import KINDS, VALUES

    lab = sub.add_parser("lab", help="a local cluster of real daemons in network namespaces (root)",
                         description=f"Real OpenSSH, keepalived, HAProxy and a TLS kube-apiserver stand-in "
                                     f"per node, in network namespaces on {L.SUBNET}.")
    ls = lab.add_subparsers(dest="lab_command", metavar="LAB_COMMAND", required=True)

    up = ls.add_parser("up", help="build the lab (or keep the healthy one) and print its topology file (one per cluster)")
    up.add_argument("--masters", type=int, default=3, help=f"1-{L.MAX_MASTERS} (default: %(default)s)")
    up.add_argument("--workers", type=int, default=3, help=f"0-{L.MAX_WORKERS} (default: %(default)s)")
    up.add_argument("--output", metavar="FILE", help="also copy the (first cluster's) topology file here")
    up.add_argument("--clusters", type=int, default=1,
                    help=f"1-{L.MAX_CLUSTERS} clusters on the same bridge and subnet, each with its own masters, "
                         "workers, VIP, router id and name: neighbours (default: %(default)s)")
    up.add_argument("--family", choices=L.FAMILIES, default="ipv4",
                    help="the nodes' addresses and VIPs: ipv4 (198.18.0.0/24), ipv6 (fd01:98:18::/64, the same "
                         "host numbers) or dual (both, and one VIP of each family) (default: %(default)s)")
    up.add_argument("--bare", action="store_true",
                    help="masters with no kube-apiserver at all (no manifest, nothing on its port), as fresh "
                         "machines before kubeadm init; `lab kubeadm` adds them")
    up.set_defaults(func=cmd_up, on_interrupt="a lab that was not finished has been removed")

    ls.add_parser("down", help="remove everything the lab made").set_defaults(
        func=cmd_down, on_interrupt="the lab may be partly removed: run `lab down` again")

    st = ls.add_parser("status", help="namespaces, addresses and daemons of every node")
    st.add_argument("--json", action="store_true")
    st.set_defaults(func=cmd_status)

    kinds = "; ".join(f"{k}: {v}" for k, v in KINDS.items())
    fa = ls.add_parser("fault", help="break something on a node", description=f"Kinds - {kinds}")
    fa.add_argument("node")
    fa.add_argument("kind", choices=list(KINDS))
    fa.add_argument("value", nargs="?", type=float, metavar="VALUE",
                    help=", ".join(f"{k}: {name} ({low:g}-{high:g})" for k, (name, low, high) in VALUES.items()))
    fa.add_argument("--every", type=float, metavar="S",
                    help="pause: again every S seconds until `lab heal` (at most an hour)")
    fa.set_defaults(func=cmd_fault, on_interrupt="the fault may be partly in place: `lab status` shows it, "
                                                 "`lab heal NODE` undoes it")

    he = ls.add_parser("heal", help="undo one fault on a node, or all of them")
    he.add_argument("node")
    he.add_argument("kind", nargs="?", choices=list(KINDS))
    he.set_defaults(func=cmd_heal, on_interrupt="some faults may be left: `lab status` shows them")

    ls.add_parser("handmade", help="replace keepalived + HAProxy on the masters with a hand-made setup",
                  description="Installs a keepalived + HAProxy that k8s-ha-tui did not render (VRRPv2, unicast, "
                              "PASS auth, router id 77, servers cp-a/cp-b/cp-c, no maintenance or boost files) "
                              "on every lab master, to try discover, doctor and adoption on. `deploy` replaces it "
                              "again.").set_defaults(
        func=cmd_handmade, on_interrupt="masters may differ (some hand-made, some ours): run `lab handmade` again")

    from k8s_ha_tui.lab.kubeadm import VERBS

    ku = ls.add_parser("kubeadm", help="do to a master what kubeadm init / join --control-plane / reset would",
                       description="init and join write the kube-apiserver static pod manifest where kubeadm "
                                   "writes it and start the lab's apiserver stand-in (as the kubelet would); "
                                   "init refuses where a control plane exists, join where none does or the "
                                   "control-plane endpoint does not answer; reset stops it and removes the "
                                   "manifest.")
    ku.add_argument("node")
    ku.add_argument("verb", choices=VERBS)
    ku.set_defaults(func=cmd_kubeadm, on_interrupt="the master may have its manifest without a running apiserver: "
                                                  "`lab status` shows it, `lab kubeadm NODE reset` undoes it")

    sh = ls.add_parser("shell", help="an interactive shell inside a node")
    sh.add_argument("node")
    sh.set_defaults(func=cmd_shell)

    demo = sub.add_parser("demo", help="lab up, deploy, then the live monitor (the README's first command)")
    demo.add_argument("--no-monitor", action="store_true", help="stop after the deploy (also without a terminal)")
    demo.set_defaults(func=cmd_demo, on_interrupt="the lab stays up as far as it got; `lab down` removes it")
