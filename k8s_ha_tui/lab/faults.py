"""Faults the lab can inject into a node, and how each one heals.

Daemons are found by the pid files their node keeps in its own /run (each node has its own PID
namespace, so those pids are the node's), never by name.
"""

from __future__ import annotations

import os
import signal
import subprocess

from k8s_ha_tui.lab import layout as L
from k8s_ha_tui.lab.apiserver import BUSY_FILE
from k8s_ha_tui.lab.layout import LabNode
from k8s_ha_tui.lab.network import ip
from k8s_ha_tui.lab.nodes import enter_command, node_exec
from k8s_ha_tui.lab.proc import LabError, alive, wait_until

NFT_TABLE = "k8s_ha_lab"
LOSS_TABLE = "k8s_ha_lab_loss"  # its own table: vrrp-drop's heal must not take the loss away too
VRRP = "meta l4proto 112"  # VRRP over IPv4 (IP protocol 112) and over IPv6 (next header 112) alike
PAUSE_LOOP_LIMIT_S = 3600  # a repeating pause stops by itself after this, healed or not
MAX_PAUSE_MS = 60_000

KINDS = {
    "apiserver-down": "the kube-apiserver process dies (SIGKILL)",
    "apiserver-hang": "the kube-apiserver stops answering but keeps its socket (SIGSTOP)",
    "apiserver-unready": "the kube-apiserver answers /readyz with 500, as when its etcd check fails",
    "apiserver-busy": "the kube-apiserver is overloaded: it takes MS milliseconds to accept each connection and "
                      "MS more to answer, and its short listen queue drops new connections while full",
    "haproxy-down": "HAProxy dies (SIGKILL to its master and workers)",
    "keepalived-down": "keepalived dies (SIGKILL to all its processes: no goodbye advert)",
    "vrrp-drop": "the node stops sending and receiving VRRP (protocol 112, IPv4 and IPv6); SSH keeps working",
    "offline": "the node drops off the network entirely (unplugged from the bridge)",
    "ssh-drop": "every SSH connection to the node drops at once (its sshd's session processes are killed, "
                "the listener stays: an sshd restart); over when it returns",
    "vrrp-loss": "a random PERCENT of VRRP packets in and out are lost (a bad link); SSH keeps working",
    "pause": "keepalived freezes for MS milliseconds (SIGSTOP/SIGCONT of its process group: a VM stun "
             "or a GC stall); with --every S, again every S seconds until healed",
    "config-edit": "keepalived.conf's priority is changed on disk by hand (to 99) and not reloaded: the "
                   "file no longer says what runs",
    "priority": "keepalived.conf's priority is set to PRIORITY by hand and reloaded (a tie, where another "
                "master has it)",
}
# The faults that take a number: what it is, its unit and its range.
VALUES = {"apiserver-busy": ("MS", 1, 5000), "vrrp-loss": ("PERCENT", 0.01, 100.0), "pause": ("MS", 1, MAX_PAUSE_MS),
          "priority": ("PRIORITY", 1, 254)}
WHOLE = {"apiserver-busy", "priority"}  # the values that are whole numbers
MASTER_ONLY = {"apiserver-down", "apiserver-hang", "apiserver-unready", "apiserver-busy", "haproxy-down",
               "keepalived-down", "pause", "config-edit", "priority"}
KEEPALIVED_CONF = "/etc/keepalived/keepalived.conf"
SAVED_CONF = f"{KEEPALIVED_CONF}.lab-saved"  # the file as it was before a hand edit, for the heal
_SERVICE = {"apiserver-down": "kube-apiserver", "apiserver-hang": "kube-apiserver",
            "haproxy-down": "haproxy", "keepalived-down": "keepalived"}


def _signal_service(init: int, service: str, signal: str, group: bool) -> None:
    """Send a signal to a service's main pid (or its whole process group) inside the node."""
    target = '-- "-$pid"' if group else '"$pid"'
    script = (f'pf=/run/{service}.pid; [ -s "$pf" ] || {{ echo "{service} is not running" >&2; exit 1; }}; '
              f'pid=$(cat "$pf"); /bin/kill -s {signal} {target}')
    if signal == "KILL":  # return once it is gone (the node's init reaps it), not while it dies
        script += '; i=0; while [ -d "/proc/$pid" ] && [ $i -lt 100 ]; do sleep 0.05; i=$((i+1)); done; ' \
                  '[ ! -d "/proc/$pid" ]'
    node_exec(init, ["sh", "-c", script])


def _systemctl(init: int, verb: str, service: str) -> None:
    node_exec(init, ["/usr/local/sbin/systemctl", verb, service], timeout=30)


def _nft(init: int, script: str) -> None:
    node_exec(init, ["nft", "-f", "-"], input=script)


def validate(node: LabNode, kind: str) -> None:
    if kind not in KINDS:
        raise LabError(f"unknown fault {kind!r}; choose one of {', '.join(KINDS)}")
    if kind in MASTER_ONLY and not node.is_master:
        raise LabError(f"{node.name} is a worker; {kind} applies to masters only")


def check_value(kind: str, value: float | None, every: float | None) -> None:
    """The number a fault takes (and only those faults take one), within its range."""
    if kind not in VALUES:
        if value is not None or every is not None:
            raise LabError(f"{kind} takes no value")
        return
    name, low, high = VALUES[kind]
    if value is None:
        raise LabError(f"{kind} needs {name} ({low:g}-{high:g})")
    if not low <= value <= high or (kind in WHOLE and value != int(value)):
        raise LabError(f"{kind} {value:g}: {name} must be {'a whole number ' if kind in WHOLE else ''}"
                       f"{low:g}-{high:g}")
    if every is not None:
        if kind != "pause":
            raise LabError("--every applies to pause only")
        if not value / 1000 < every <= PAUSE_LOOP_LIMIT_S:
            raise LabError(f"--every {every:g}: must be longer than the pause ({value / 1000:g} s) "
                           f"and at most {PAUSE_LOOP_LIMIT_S} s")


def _pause_script(ms: float) -> str:
    """Freeze keepalived's process group for `ms`, then thaw it (one sh: no exec between the two)."""
    return ('pf=/run/keepalived.pid; [ -s "$pf" ] || { echo "keepalived is not running" >&2; exit 1; }; '
            f'pid=$(cat "$pf"); /bin/kill -s STOP -- "-$pid"; sleep {ms / 1000:.3f}; /bin/kill -s CONT -- "-$pid"')


def pause_once(init: int, ms: float) -> None:
    node_exec(init, ["sh", "-c", _pause_script(ms)], timeout=ms / 1000 + 10)


def start_pause_loop(init: int, ms: float, every: float) -> int:
    """A background loop inside the node, in a process group of its own; returns that group's id.
    Bounded: it ends by itself after PAUSE_LOOP_LIMIT_S."""
    count = max(1, int(PAUSE_LOOP_LIMIT_S // every))
    loop = f'n=0; while [ $n -lt {count} ]; do sleep {every:g}; {_pause_script(ms)}; n=$((n+1)); done'
    proc = subprocess.Popen(enter_command(init, ["sh", "-c", loop]), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    return proc.pid


def stop_pause_loop(init: int, pgid: int | None) -> None:
    """End the loop (its group, by the id we kept), then make sure keepalived is not left frozen."""
    if pgid is not None and alive(pgid):
        try:
            os.killpg(pgid, signal.SIGTERM)
        except ProcessLookupError:
            pass
        wait_until(lambda: not alive(pgid), 5, "the pause loop to end")
    node_exec(init, ["sh", "-c", 'pf=/run/keepalived.pid; [ -s "$pf" ] && /bin/kill -s CONT -- "-$(cat "$pf")"; true'])


def drop_ssh(init: int) -> int:
    """Kill each connection of the node's sshd, found by pid: the listener is the child of the
    node's init that runs /usr/sbin/sshd; each of its children is one connection (its
    privileged monitor), whose child holds the socket for a login other than root (OpenSSH
    splits those). Both go. Returns how many connections were found (a kill that finds one of
    a connection's processes already gone still ends it: counted, where it read as none)."""
    script = ('n=0; for l in $(cat /proc/1/task/1/children); do '
              '[ "$(readlink /proc/$l/exe)" = /usr/sbin/sshd ] || continue; '
              'for k in $(cat /proc/$l/task/$l/children); do '
              'n=$((n+1)); kill -KILL $(cat /proc/$k/task/$k/children 2>/dev/null) "$k" 2>/dev/null; done; done; '
              'echo $n')
    return int(node_exec(init, ["sh", "-c", script]).stdout.strip() or 0)


def _hand_edit(init: int, priority: int, reload: bool) -> None:
    """Edit every `priority` line of keepalived.conf as a person would (sed), keeping the file
    as it was for the heal; then reload, or not."""
    node_exec(init, ["sh", "-c", f"[ -e {SAVED_CONF} ] || cp -p {KEEPALIVED_CONF} {SAVED_CONF}; "
                                 f"sed -i 's/^\\( *priority \\)[0-9]*/\\1{priority}/' {KEEPALIVED_CONF}"
                                 + ("; /usr/local/sbin/systemctl reload keepalived" if reload else "")])


def _undo_edit(init: int) -> None:
    node_exec(init, ["sh", "-c", f"if [ -e {SAVED_CONF} ]; then mv -f {SAVED_CONF} {KEEPALIVED_CONF}; "
                                 "/usr/local/sbin/systemctl reload keepalived || true; fi"])


def inject(node: LabNode, init: int, kind: str, value: float | None = None) -> None:
    validate(node, kind)
    if kind == "apiserver-down":
        _signal_service(init, "kube-apiserver", "KILL", group=False)
    elif kind == "apiserver-hang":
        _signal_service(init, "kube-apiserver", "STOP", group=False)
    elif kind == "apiserver-unready":
        _signal_service(init, "kube-apiserver", "USR1", group=False)
    elif kind == "apiserver-busy":
        assert value is not None
        node_exec(init, ["sh", "-c", f"echo {int(value)} > {BUSY_FILE}.tmp && mv -f {BUSY_FILE}.tmp {BUSY_FILE}"])
    elif kind in ("haproxy-down", "keepalived-down"):
        _signal_service(init, _SERVICE[kind], "KILL", group=True)
    elif kind == "vrrp-drop":
        _nft(init, f"""table inet {NFT_TABLE} {{
    chain input {{ type filter hook input priority 0; policy accept; {VRRP} drop; }}
    chain output {{ type filter hook output priority 0; policy accept; {VRRP} drop; }}
}}""")
    elif kind == "vrrp-loss":
        assert value is not None
        # One rule a line: nft's one-line form does not parse a numgen rule before the `}`.
        share = round(value * 100)  # in 1/10000: numgen draws 0-9999
        rule = f"{VRRP} " + (f"numgen random mod 10000 < {share} " if share < 10000 else "") + "drop"
        _nft(init, "".join(f"table inet {LOSS_TABLE} {{\n  chain {hook} {{\n"
                           f"    type filter hook {hook} priority 0; policy accept;\n    {rule}\n  }}\n}}\n"
                           for hook in ("input", "output")))
    elif kind == "config-edit":
        _hand_edit(init, 99, reload=False)
    elif kind == "priority":
        assert value is not None
        _hand_edit(init, int(value), reload=True)
    elif kind == "offline":
        # Like a cut cable behind the switch: the node keeps its link up and notices nothing,
        # everyone else stops hearing it.
        ip("link", "set", node.bridge_port, "nomaster", netns=L.BRIDGE_NETNS)


def heal(node: LabNode, init: int, kind: str, loop: int | None = None) -> None:
    """Undo `kind`; `loop` is the process group of a repeating pause, where one runs."""
    validate(node, kind)
    if kind == "pause":
        stop_pause_loop(init, loop)
    elif kind == "apiserver-hang":
        _signal_service(init, "kube-apiserver", "CONT", group=False)
    elif kind == "apiserver-unready":
        _signal_service(init, "kube-apiserver", "USR2", group=False)
    elif kind == "apiserver-busy":
        node_exec(init, ["rm", "-f", BUSY_FILE])
    elif kind in _SERVICE:
        _systemctl(init, "start", _SERVICE[kind])
    elif kind == "vrrp-drop":
        node_exec(init, ["nft", "delete", "table", "inet", NFT_TABLE], check=False)
    elif kind == "vrrp-loss":
        node_exec(init, ["nft", "delete", "table", "inet", LOSS_TABLE], check=False)
    elif kind in ("config-edit", "priority"):
        _undo_edit(init)
    elif kind == "offline":
        ip("link", "set", node.bridge_port, "master", L.BRIDGE, netns=L.BRIDGE_NETNS)
