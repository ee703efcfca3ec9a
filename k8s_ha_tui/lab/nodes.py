"""One lab node: its own files (/etc/keepalived, /etc/haproxy, /run, /tmp, /var/log,
/var/backups), hostname, PID namespace and the real OpenSSH server."""

from __future__ import annotations

import shlex
import shutil
import socket
import subprocess
import sys
from pathlib import Path

from k8s_ha_tui.lab import layout as L
from k8s_ha_tui.lab.layout import LabNode, LabPaths
from k8s_ha_tui.lab.proc import LabError, alive, run, wait_until

FILES = Path(__file__).parent / "files"
NODEINIT = Path(__file__).parent / "nodeinit.py"
APISERVER = Path(__file__).parent / "apiserver.py"

# Node folder (under nodes/NAME) → where it appears inside the node.
BIND_MOUNTS = (
    ("etc/keepalived", "/etc/keepalived"),
    ("etc/haproxy", "/etc/haproxy"),
    ("etc/kubernetes", "/etc/kubernetes"),  # kubeadm's static pod manifests (lab kubeadm)
    ("var/log", "/var/log"),
    ("var/backups", "/var/backups"),
    ("bin", "/usr/local/sbin"),
    # Its own root home: SSH sessions must not run the host's ~/.bashrc (a tool there, such as
    # pyenv's rehash lock, can hang every session once one was killed halfway).
    ("root", "/root"),
)


def _write(path: Path, text: str, mode: int) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


# The node's own accounts: /etc is an overlay of the host's, so useradd, groupadd and gpasswd
# work on a node (they replace /etc/passwd by rename, which a bind-mounted file refuses) and
# leave the host untouched. The lab's logins, with its SSH key:
#   operator      full sudo, so `ssh.become: sudo` is exercised against the real sudo;
#   k8sha-watch   no privilege until `access grant` gives one (least privilege);
#   k8sha-ops     the same, for the operate role.
OPERATOR = "operator"
WATCH_USER = "k8sha-watch"
OPS_USER = "k8sha-ops"
LOGINS = ((OPERATOR, 4242), (WATCH_USER, 4243), (OPS_USER, 4244))


def _accounts(home: Path) -> None:
    """The host's account files plus the lab's logins, and an /etc/hosts naming the node, in the
    node's /etc overlay; the host's own files stay untouched."""
    upper = home / "etc-upper"
    entries = {
        "passwd": "".join(f"{u}:x:{i}:{i}:k8s-ha-tui lab login:/run/{u}:/bin/sh\n" for u, i in LOGINS),
        "group": "".join(f"{u}:x:{i}:\n" for u, i in LOGINS),
        "shadow": "".join(f"{u}:*:19000:0:99999:7:::\n" for u, _ in LOGINS),
    }
    for name, lines in entries.items():
        host = Path("/etc") / name
        text = host.read_text() if host.exists() else ""
        _write(upper / name, text + ("" if text.endswith("\n") or not text else "\n") + lines,
               0o640 if name == "shadow" else 0o644)
    hosts = Path("/etc/hosts").read_text() if Path("/etc/hosts").exists() else "127.0.0.1 localhost\n"
    _write(upper / "hosts", f"127.0.1.1 {home.name}\n{hosts}", 0o644)  # the node knows its own name
    _write(upper / "sudoers.d" / "lab-operator", f"{OPERATOR} ALL=(ALL) NOPASSWD: ALL\n", 0o440)
    (home / "etc-work").mkdir(exist_ok=True, mode=0o700)


def node_python() -> str:
    """A Python for the node's apiserver stand-in (standard library only) that the node can see."""
    return "/usr/bin/python3" if Path("/usr/bin/python3").exists() else sys.executable


def prepare(node: LabNode, paths: LabPaths) -> None:
    """The node's folders, host key, sshd_config, setup script and service stand-ins."""
    home = paths.node(node.name)
    for rel, _ in BIND_MOUNTS:
        (home / rel).mkdir(parents=True, exist_ok=True, mode=0o755)
    (home / "root").chmod(0o700)
    (home / "ssh").mkdir(mode=0o700, exist_ok=True)
    host_key = home / "ssh" / "ssh_host_ed25519_key"
    if not host_key.exists():
        run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", f"root@{node.name}", "-f", str(host_key)])
    listen = "".join(f"ListenAddress {a}\n" for a in node.addresses)
    _write(home / "ssh" / "sshd_config", f"""\
# sshd for lab node {node.name} (k8s-ha-tui lab)
{listen}HostKey {host_key}
PidFile none
AuthorizedKeysFile {paths.authorized_keys} .ssh/authorized_keys
PermitRootLogin prohibit-password
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
MaxStartups 100:30:200
MaxSessions 100
Subsystem sftp internal-sftp
# The node's own systemctl stand-in comes first for every login, as /usr/bin/systemctl does
# on a real node (a user's default PATH lacks /usr/local/sbin).
SetEnv PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin
""", 0o600)
    # Everything the node runs lives in the lab's folder: the checkout (and its virtual
    # environment) may sit under /tmp, which the node covers with its own tmpfs.
    for tool in ("systemctl", "journalctl"):
        shutil.copy2(FILES / tool, home / "bin" / tool)
        (home / "bin" / tool).chmod(0o755)
    shutil.copy2(APISERVER, home / "bin" / "lab-apiserver.py")
    shutil.copy2(NODEINIT, home / "bin" / "lab-nodeinit.py")
    _write(home / "bin" / "k8s-ha-tui-lab.env", "".join(f"{k}={shlex.quote(str(v))}\n" for k, v in {
        "LAB_NODE": node.name,
        "LAB_PYTHON": node_python(),
        "LAB_APISERVER": "/usr/local/sbin/lab-apiserver.py",
        "LAB_APISERVER_PORT": L.APISERVER_PORT,
        # every address of the node: :: takes IPv4 too (as v4-mapped), where the node has IPv6
        "LAB_APISERVER_BIND": "::" if node.address6 or ":" in node.address else "0.0.0.0",
        "LAB_CERT": paths.tls_cert,
        "LAB_KEY": paths.tls_key,
    }.items()), 0o644)
    _accounts(home)
    overlay = (f"mount -t overlay overlay -o lowerdir=/etc,upperdir={shlex.quote(str(home / 'etc-upper'))},"
               f"workdir={shlex.quote(str(home / 'etc-work'))} /etc")
    mounts = "\n".join([overlay] + [f"mount --bind {shlex.quote(str(home / rel))} {target}"
                                     for rel, target in BIND_MOUNTS])
    logins = "\n".join(f"mkdir -p /run/{u}/.ssh && install -m 600 {shlex.quote(str(paths.authorized_keys))} "
                       f"/run/{u}/.ssh/authorized_keys && chown -R {u}:{u} /run/{u}" for u, _ in LOGINS)
    _write(home / "setup.sh", f"""\
# Runs inside the node's new mount, UTS and PID namespaces, before sshd starts.
set -e
hostname {shlex.quote(node.name)}
{mounts}
mount -t tmpfs -o mode=0755 tmpfs /run
mount -t tmpfs -o mode=1777 tmpfs /tmp
mkdir -p /run/sshd /run/haproxy
{logins}
""", 0o700)


def start(node: LabNode, paths: LabPaths) -> int:
    """Start the node: returns the pid (in the root PID namespace) of its `unshare` process."""
    home = paths.node(node.name)
    log = open(paths.log(node.name), "ab")
    cmd = ["ip", "netns", "exec", node.netns,
           "unshare", "--mount", "--uts", "--pid", "--fork", "--mount-proc", "--propagation", "private", "--",
           node_python(), str(home / "bin" / "lab-nodeinit.py"), str(home / "setup.sh"), "--",
           "/usr/sbin/sshd", "-D", "-e", "-f", str(home / "ssh" / "sshd_config")]
    proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=log, start_new_session=True)
    log.close()
    return proc.pid


def init_pid(unshare_pid: int) -> int | None:
    """The node's PID 1 (nodeinit), as the root namespace numbers it: unshare's only child."""
    try:
        children = Path(f"/proc/{unshare_pid}/task/{unshare_pid}/children").read_text().split()
    except OSError:
        return None
    return int(children[0]) if children else None


def wait_ready(node: LabNode, unshare_pid: int, paths: LabPaths, timeout: float = 15) -> int:
    """Wait until sshd answers on the node's address; returns the node's init pid."""
    def sshd_answers() -> bool:
        if not alive(unshare_pid):
            raise LabError(f"node {node.name} did not start; see {paths.log(node.name)}")
        try:
            with socket.create_connection((node.address, 22), timeout=0.5) as s:
                return s.recv(4).startswith(b"SSH-")
        except OSError:
            return False

    wait_until(sshd_answers, timeout, f"sshd on {node.name} ({node.address})")
    pid = init_pid(unshare_pid)
    if pid is None:
        raise LabError(f"node {node.name}: its init process is gone")
    return pid


def enter_command(init: int, command: list[str]) -> list[str]:
    """A command line that runs `command` inside the node (its mount, UTS, net and PID namespaces)."""
    return ["nsenter", "-t", str(init), "-m", "-u", "-n", "-p", "--", *command]


def node_exec(init: int, command: list[str], timeout: float = 30, check: bool = True, input: str | None = None):
    return run(enter_command(init, command), timeout=timeout, check=check, input=input)


def host_key_line(node: LabNode, paths: LabPaths) -> str:
    pub = (paths.node(node.name) / "ssh" / "ssh_host_ed25519_key.pub").read_text().split()
    return f"{','.join(node.addresses)} {pub[0]} {pub[1]}\n"
