"""The validated cluster topology and its YAML file.

One model guards every way in: the wizard checks each answer with the same field checks, the
file loader and every command validate the whole file with it, and the tests generate from it.
Every error names the field and the bad value in one line.
"""

from __future__ import annotations

import ipaddress
import os
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    model_validator,
)

from k8s_ha_tui.errors import UserError
from k8s_ha_tui.files import MiB, atomic_write, check_writable, read_input
from k8s_ha_tui.model.fieldchecks import (
    check_advert_int,
    check_auth_pass,
    check_dns_name,
    check_interface,
    check_ip,
    check_ipv4,  # noqa: F401 - the wizard and discover check IPv4 answers with it (tp.check_ipv4)
    check_ipv6,
    check_name,
    check_port,
    check_prefix,
    check_priority,
    check_router_id,
    check_user,
)
from k8s_ha_tui.model.vrrp_timing import RFC_DOWN_ADVERTS

MAX_MASTERS = 9
MAX_WORKERS = 500
MAX_TOPOLOGY_BYTES = 1 * MiB  # a topology of 9 masters and 500 workers is ~40 KB
DEFAULT_TOP_PRIORITY = 150
PRIORITY_STEP = 10


def check_model_field(model: type[BaseModel], field: str, value):
    """One field of a model checked alone, as the wizard checks each answer when it is typed."""
    info = model.model_fields[field]
    try:
        annotated: Any = Annotated[info.annotation, *info.metadata]  # built at run time: mypy cannot see it
        return TypeAdapter(annotated).validate_python(value)
    except ValidationError as exc:
        err = exc.errors(include_url=False)[0]
        raise ValueError(f"{value!r}: {err['msg'][0].lower()}{err['msg'][1:]}") from None


# Defaults written once: the wizard, discover and the fields below take them from here.
FRONTEND_PORT = 8443  # HAProxy's own port on a master (the apiserver already has 6443)
APISERVER_PORT = 6443
HEALTH_PORT = 8404
DOWN_ADVERTS_RANGE = (2, 20)  # keepalived 2.2's down_timer_adverts
CONNECT_TIMEOUT_RANGE_MS = (10, 10000)

def host_port(host: str, port: int | str) -> str:
    """'10.0.3.10:8443', '[fd00::10]:8443' (an IPv6 address in a URL or an endpoint has brackets)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def default_priority(index: int) -> int:
    """The priority of the index-th master when none is given: 150, 140, 130, ..."""
    return DEFAULT_TOP_PRIORITY - PRIORITY_STEP * index


Name = Annotated[str, AfterValidator(check_name)]
IP = Annotated[str, AfterValidator(check_ip)]
IPv6 = Annotated[str, AfterValidator(check_ipv6)]
Interface = Annotated[str, AfterValidator(check_interface)]
Port = Annotated[int, AfterValidator(check_port)]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=False)


class Node(_Strict):
    name: Name
    address: IP  # of the VIP's family; SSH and kube-apiserver use it
    address6: IPv6 | None = None  # a dual-stack cluster's: its IPv6 address, in vip6's subnet


class Master(Node):
    priority: Annotated[int, AfterValidator(check_priority)] | None = None
    interface: Interface | None = None


class Vrrp(_Strict):
    router_id: Annotated[int, AfterValidator(check_router_id)] = 51
    auth_pass: Annotated[str | None, AfterValidator(check_auth_pass)] = Field(default=None, repr=False)
    # VRRPv3 with 0.3 s adverts: a vanished holder is replaced in ~1.0 s (v2's 1 s: ~3.5 s), and
    # a holder frozen for 0.75 s keeps the VIP. Measured with bench/flap.py and bench/floor.py;
    # see docs/speed.md for the trade-off against flapping.
    version: Literal[2, 3] = 3
    advert_int: float = 0.3
    # Adverts a backup misses before it takes the VIP: the RFC's 3, or (keepalived >= 2.2,
    # `down_timer_adverts`) more, so that fast adverts do not mean a hair trigger. vrrp_timing.py.
    down_adverts: Annotated[int, Field(ge=DOWN_ADVERTS_RANGE[0], le=DOWN_ADVERTS_RANGE[1])] = RFC_DOWN_ADVERTS
    unicast: bool = False

    @model_validator(mode="before")
    @classmethod
    def _advert_default_for_version(cls, data):
        """VRRPv2 counts whole seconds: without an advert_int it gets 1, not v3's 0.3."""
        if isinstance(data, dict) and "advert_int" not in data and data.get("version") == 2:
            return {**data, "advert_int": 1}
        return data

    @model_validator(mode="after")
    def _timing_and_auth(self) -> Vrrp:
        try:
            check_advert_int(self.advert_int, self.version)
        except ValueError as exc:
            raise ValueError(f"advert_int: {exc}") from None
        if self.version == 3 and self.auth_pass is not None:
            raise ValueError("auth_pass: VRRPv3 has no authentication; remove it or use version: 2")
        return self

    @property
    def advert_text(self) -> str:
        """advert_int as keepalived wants it: '1' rather than '1.0'."""
        return f"{self.advert_int:g}"


class Check(_Strict):
    """How keepalived checks the local HAProxy and how HAProxy checks each apiserver."""

    interval: Annotated[int, Field(ge=1, le=60)] = 1
    fall: Annotated[int, Field(ge=1, le=100)] = 1
    rise: Annotated[int, Field(ge=1, le=100)] = 2
    # 0: a failed check puts the node in FAULT, which moves the VIP at once (docs/speed.md).
    weight: Annotated[int, Field(ge=-253, le=253)] = 0
    # HAProxy's connect to an apiserver for a client: one that takes longer counts as a failed
    # check and the client is retried on another apiserver. Checks keep their whole interval
    # (docs/speed.md, "The last half second"); masters farther apart than this need more.
    connect_timeout_ms: Annotated[int, Field(ge=CONNECT_TIMEOUT_RANGE_MS[0], le=CONNECT_TIMEOUT_RANGE_MS[1])] = 200


class Ssh(_Strict):
    user: Annotated[str, AfterValidator(check_user)] = "root"
    port: Port = 22
    identity_file: str | None = "~/.ssh/id_ed25519"
    known_hosts: str = "~/.ssh/known_hosts"
    become: Literal["none", "sudo"] = "none"


class Topology(_Strict):
    name: Name
    api_endpoint: Annotated[str, AfterValidator(check_dns_name)] | None = None
    vip: IP  # IPv4, or IPv6 for an IPv6-only cluster
    prefix: Annotated[int, AfterValidator(check_prefix)] = 24  # 64 when the VIP is IPv6
    # A dual-stack cluster: an IPv4 vip and this IPv6 one, held together by the same master.
    vip6: IPv6 | None = None
    prefix6: Annotated[int, AfterValidator(check_prefix)] = 64
    interface: Interface = "ens3"
    frontend_port: Port = FRONTEND_PORT
    apiserver_port: Port = APISERVER_PORT
    # HAProxy answers keepalived's check on 127.0.0.1 here: is the LOCAL load balancer alive?
    health_port: Port = HEALTH_PORT
    masters: Annotated[list[Master], Field(min_length=1, max_length=MAX_MASTERS)]
    workers: Annotated[list[Node], Field(max_length=MAX_WORKERS)] = []
    vrrp: Vrrp = Vrrp()
    check: Check = Check()
    ssh: Ssh = Ssh()

    @model_validator(mode="before")
    @classmethod
    def _prefix_default_for_family(cls, data):
        """An IPv6 VIP without a prefix gets 64, not IPv4's 24."""
        if isinstance(data, dict) and "prefix" not in data and ":" in str(data.get("vip", "")):
            return {**data, "prefix": 64}
        return data

    @model_validator(mode="after")
    def _consistent(self) -> Topology:
        ports = {"frontend_port": self.frontend_port, "apiserver_port": self.apiserver_port,
                 "health_port": self.health_port}
        seen_port: dict[int, str] = {}
        for field, port in ports.items():
            if port in seen_port:
                raise ValueError(
                    f"{field}: {port} is also {seen_port[port]}; HAProxy runs on the masters "
                    "next to kube-apiserver, so each needs its own port"
                )
            seen_port[port] = field

        self._families_consistent()
        for field, net in (("vip", self.network), ("vip6", self.network6)):
            vip = ipaddress.ip_address(getattr(self, field) or "0.0.0.0")
            if net is not None and net.version == 4 and self.prefix < 31 and \
                    vip in (net.network_address, net.broadcast_address):
                raise ValueError(f"{field}: {vip} is the network or broadcast address of {net}")
            if net is not None and net.version == 6 and net.prefixlen < 127 and vip == net.network_address:
                raise ValueError(f"{field}: {vip} is the subnet-router anycast address of {net}")

        names: dict[str, str] = {}
        addresses: dict[str, str] = {}
        for where, node in self._nodes_with_paths():
            if node.name in names:
                raise ValueError(f"{where}.name: {node.name!r} is already used by {names[node.name]}")
            names[node.name] = where
            for field, address in (("address", node.address), ("address6", node.address6)):
                if address is None:
                    continue
                if address in (self.vip, self.vip6):
                    raise ValueError(f"{where}.{field}: {address} is a VIP; a VIP must be nobody's address")
                if address in addresses:
                    raise ValueError(f"{where}.{field}: {address} is already {addresses[address]}'s")
                addresses[address] = node.name
        for i, m in enumerate(self.masters):
            if ipaddress.ip_address(m.address) not in self.network:
                raise ValueError(f"masters[{i}].address: {m.address} is not in the VIP's subnet {self.network}")
            if self.network6 is not None and ipaddress.ip_address(m.address6 or "::") not in self.network6:
                raise ValueError(f"masters[{i}].address6: {m.address6} is not in vip6's subnet {self.network6}")

        taken: dict[int, str] = {}
        for i, m in enumerate(self.masters):
            p = self.priority_of(m)
            if p in taken:
                raise ValueError(
                    f"masters[{i}].priority: {p} is also {taken[p]}'s; priorities must be distinct "
                    "so the election order is the topology's"
                )
            taken[p] = m.name
        return self

    def _families_consistent(self) -> None:
        """One family per field: addresses of the VIP's, address6 and vip6 for a dual-stack
        cluster only; VRRP over IPv6 is version 3 (RFC 5798)."""
        family = self.family
        if family == 4 and self.prefix > 32:
            raise ValueError(f"prefix: {self.prefix} is longer than an IPv4 address (1-32)")
        if self.vip6 is not None and family == 6:
            raise ValueError("vip6: only beside an IPv4 vip (a dual-stack cluster); an IPv6-only cluster has its VIP "
                             "in vip")
        for where, node in self._nodes_with_paths():
            if ("." in node.address) != (family == 4):
                raise ValueError(
                    f"{where}.address: {node.address} is IPv{6 if family == 4 else 4} but the vip is IPv{family}; "
                    "every address is of the VIP's family (a dual-stack node gives its IPv6 one as address6)")
            if node.address6 is not None and self.vip6 is None:
                raise ValueError(f"{where}.address6: only in a dual-stack cluster (one with vip6)")
            if self.vip6 is not None and where.startswith("masters") and node.address6 is None:
                raise ValueError(f"{where}.address6: is required with vip6: every master may hold it")
        if (family == 6 or self.vip6 is not None) and self.vrrp.version != 3:
            raise ValueError("vrrp.version: VRRP over IPv6 is version 3 only (RFC 5798); use version: 3")

    def _nodes_with_paths(self):
        for i, m in enumerate(self.masters):
            yield f"masters[{i}]", m
        for i, w in enumerate(self.workers):
            yield f"workers[{i}]", w

    # --- derived values the templates, lint and deploy share ---

    def priority_of(self, master: Master) -> int:
        if master.priority is not None:
            return master.priority
        return default_priority(self.masters.index(master))

    def interface_of(self, master: Master) -> str:
        return master.interface or self.interface

    def master(self, name: str) -> Master:
        for m in self.masters:
            if m.name == name:
                return m
        raise UserError(f"no master named {name!r} in topology {self.name!r}")

    @property
    def family(self) -> Literal[4, 6]:
        """The VIP's address family (4 also for a dual-stack cluster, whose second VIP is vip6)."""
        return 6 if ":" in self.vip else 4

    @property
    def vips(self) -> list[str]:
        """The VIP, and a dual-stack cluster's IPv6 one after it."""
        return [self.vip, *([self.vip6] if self.vip6 else [])]

    @property
    def network(self) -> ipaddress.IPv4Network | ipaddress.IPv6Network:
        return ipaddress.ip_network(f"{self.vip}/{self.prefix}", strict=False)

    @property
    def network6(self) -> ipaddress.IPv6Network | None:
        if self.vip6 is None:
            return None
        return ipaddress.IPv6Network(f"{self.vip6}/{self.prefix6}", strict=False)

    @property
    def endpoint_host(self) -> str:
        return self.api_endpoint or self.vip

    @property
    def control_plane_endpoint(self) -> str:
        return host_port(self.endpoint_host, self.frontend_port)


# --- errors, loading and saving ----------------------------------------------------------------

_PYDANTIC_LOC_TAGS = {"int", "str", "float", "bool", "none", "list", "dict", "literal", "nullable"}


def _loc_text(loc: tuple) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif "[" not in part and part not in _PYDANTIC_LOC_TAGS:  # not a field: a union member's type
            out += f".{part}" if out else part
    return out


def _suggest_home(key: str) -> str:
    """For an unknown key, the section where such a key does belong (a password in the wrong place)."""
    for section, model in (("vrrp", Vrrp), ("check", Check), ("ssh", Ssh)):
        if key in model.model_fields:
            return f" (did you mean {section}.{key}?)"
    return ""


def describe_validation_error(exc: ValidationError) -> str:
    """The first problem, in one line: 'field.path: what is wrong (got value)'."""
    errors = exc.errors(include_url=False)
    err = errors[0]
    loc = _loc_text(err["loc"])
    kind = err["type"]
    if kind == "value_error":
        msg = str(err["ctx"]["error"]) if "ctx" in err else err["msg"]
        # Model-level checks already start with the field path.
        text = msg if not loc else f"{loc}: {msg}"
    elif kind == "extra_forbidden":
        key = str(err["loc"][-1])
        text = f"{loc}: unknown key{_suggest_home(key)}"
    elif kind == "missing":
        text = f"{loc}: is required"
    else:
        shown = "<hidden>" if "auth_pass" in loc else repr(err.get("input"))
        text = f"{loc}: {err['msg'].lower()} (got {shown})"
    if len(errors) > 1:
        text += f" (and {len(errors) - 1} more)"
    return text


def topology_from_dict(data: object, source: str = "topology") -> Topology:
    if not isinstance(data, dict):
        raise UserError(f"{source}: expected a mapping of topology keys, got {type(data).__name__}")
    try:
        return Topology.model_validate(data)
    except ValidationError as exc:
        raise UserError(f"{source}: {describe_validation_error(exc)}") from None


def load_topology(path: str | os.PathLike) -> Topology:
    """Read and validate a topology file; every failure is a UserError naming the file."""
    p = Path(path)
    text = read_input(p, MAX_TOPOLOGY_BYTES, "topology file")
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark else ""
        raise UserError(f"{p}: not valid YAML{where}") from None
    return topology_from_dict(data, str(p))


def topology_to_dict(topo: Topology) -> dict:
    data = topo.model_dump(mode="json", exclude_none=True)
    advert = data["vrrp"]["advert_int"]
    if advert == int(advert):
        data["vrrp"]["advert_int"] = int(advert)  # '1', as people write it, not '1.0'
    return data


def topology_yaml(topo: Topology) -> str:
    return yaml.safe_dump(topology_to_dict(topo), sort_keys=False, default_flow_style=None, width=100)


def save_topology(topo: Topology, path: str | os.PathLike) -> None:
    """Saved 0600: the file may hold vrrp.auth_pass. Written whole or not at all."""
    check_writable(path)
    try:
        atomic_write(path, topology_yaml(topo), mode=0o600)
    except OSError as exc:
        raise UserError(f"{path}: cannot write: {exc.strerror or exc}") from None
