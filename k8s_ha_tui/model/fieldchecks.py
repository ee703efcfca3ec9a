"""The checks of single topology fields, shared by the model (topology.py) and the wizard, which
checks each answer as it is typed. Each raises ValueError with one line naming the bad value
(never repeating a secret)."""

from __future__ import annotations

import ipaddress
import re

_NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_DNS_LABEL_RE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?")
_IFACE_RE = re.compile(r"[A-Za-z0-9_.-]{1,15}")
_USER_RE = re.compile(r"[a-z_][a-z0-9_.-]{0,31}")
# keepalived splits on white space and treats quotes, '!', '#' and braces specially.
_AUTH_PASS_RE = re.compile(r"[!-~]{1,8}")
_AUTH_PASS_FORBIDDEN = set("\"'\\#!{}")


def check_name(value: str) -> str:
    """A node or cluster name: it becomes a directory, an HAProxy server and a keepalived id."""
    if not isinstance(value, str) or not _NAME_RE.fullmatch(value):
        raise ValueError(
            f"{value!r} is not a valid name (letters, digits, '.', '_' or '-', "
            "starting with a letter or digit, at most 63 characters)"
        )
    return value


def check_dns_name(value: str) -> str:
    labels = value.rstrip(".").split(".") if isinstance(value, str) else []
    if not labels or len(value) > 253 or not all(_DNS_LABEL_RE.fullmatch(x) for x in labels):
        raise ValueError(f"{value!r} is not a valid DNS name")
    if all(x.isdigit() for x in labels):
        raise ValueError(f"{value!r} looks like an IP address; api_endpoint is a DNS name")
    return value


def check_ip(value: str, what: str = "an IP address") -> str:
    """A usable unicast host address of either family, returned in canonical form."""
    try:
        addr = ipaddress.ip_address(str(value).strip())
    except ValueError:
        raise ValueError(f"{value!r} is not {what}") from None
    if addr.is_multicast or addr.is_unspecified or addr.is_loopback or addr.is_reserved:
        raise ValueError(f"{value!r} is not a usable host address (multicast, loopback or reserved)")
    if addr.version == 6 and addr.is_link_local:
        raise ValueError(f"{value!r} is link-local (fe80::/10): every interface has its own, so a "
                         "VIP or a peer there is ambiguous; use a global or ULA address")
    return str(addr)


def check_ipv4(value: str) -> str:
    """A usable unicast IPv4 host address, returned in canonical form."""
    addr = check_ip(value, "an IPv4 address")
    if ":" in addr:
        raise ValueError(f"{value!r} is IPv6; an IPv4 address is needed here")
    return addr


def check_ipv6(value: str) -> str:
    """A usable unicast IPv6 host address (not link-local), returned in canonical form."""
    addr = check_ip(value, "an IPv6 address")
    if ":" not in addr:
        raise ValueError(f"{value!r} is IPv4; an IPv6 address is needed here")
    return addr


def check_interface(value: str) -> str:
    """A Linux interface name: at most 15 characters, no '/', no white space."""
    if not isinstance(value, str) or not _IFACE_RE.fullmatch(value) or value in (".", ".."):
        raise ValueError(
            f"{value!r} is not a valid Linux interface name "
            "(1-15 of letters, digits, '_', '.', '-')"
        )
    if value in ("all", "default"):  # /proc/sys/net/ipv4/conf/{all,default} take these names
        raise ValueError(f"{value!r} is reserved by the kernel and cannot name an interface")
    return value


def _whole(value: int, low: int, high: int, what: str) -> int:
    """A whole number (not a bool, which Python counts as one) in [low, high], else `what` it is not."""
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(f"{value!r} is not {what}")
    return value


def check_port(value: int) -> int:
    return _whole(value, 1, 65535, "a TCP port (1-65535)")


def check_router_id(value: int) -> int:
    return _whole(value, 1, 255, "a VRRP router id (1-255)")


def check_priority(value: int) -> int:
    return _whole(value, 1, 254, "a VRRP priority (1-254; 255 is reserved for the address owner)")


def check_auth_pass(value: str | None) -> str | None:
    """PASS authentication: keepalived silently cuts it to 8 characters, so refuse longer."""
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > 8:
        raise ValueError("is longer than 8 characters; keepalived would silently truncate it")
    if not _AUTH_PASS_RE.fullmatch(value) or _AUTH_PASS_FORBIDDEN & set(value):
        # The value is a secret: the message never repeats it.
        raise ValueError("must be printable ASCII without spaces, quotes, '\\', '#', '!' or braces")
    return value


def check_prefix(value: int) -> int:
    """1-32 for IPv4 and 1-128 for IPv6: the topology checks it against its address's family."""
    return _whole(value, 1, 128, "a prefix length (1-32 for IPv4, 1-128 for IPv6)")


def check_user(value: str) -> str:
    if not isinstance(value, str) or not _USER_RE.fullmatch(value):
        raise ValueError(f"{value!r} is not a valid user name")
    return value


def check_advert_int(value: float, version: int) -> float:
    """VRRPv2 counts adverts in whole seconds; VRRPv3 in 10 ms steps (keepalived's rules)."""
    if version == 2:
        if value != int(value) or not 1 <= value <= 255:
            raise ValueError(f"{value!r} must be whole seconds 1-255 with VRRPv2 (sub-second adverts need version: 3)")
    else:
        centis = round(value * 100)
        if abs(centis - value * 100) > 1e-6 or not 1 <= centis <= 4095:
            raise ValueError(f"{value!r} must be 0.01-40.95 s in 10 ms steps with VRRPv3")
    return value
