"""Where the service may send a PBX request (issue 20): a tenant admin chooses `server_url`, so it must never point
the service inward (a metadata service, the Lambda runtime API, moto, a private network).

`PbxNetwork` is the stage's explicit setting (`PBX_NETWORK`): `public` (every deployed stage) takes only https and
public addresses; `local` (`make run` and tests, whose PBX simulator listens on 127.0.0.1) also takes plain http and
loopback. Nothing here looks at a host's name: the admin's `server_url` is checked as written (`check_server_url`),
and the PBX adapter checks every address a name resolves to, and the address it connected to (`address_allowed`).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from iptelefon.domain.errors import InvalidInput
from iptelefon.platform.settings import PbxNetwork

__all__ = ["PbxNetwork", "address_allowed", "check_server_url", "check_url", "origin", "redacted_url"]
IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

# IPv6 prefixes that carry an IPv4 address: NAT64 (RFC 6052), its local-use form (RFC 8215), 6to4 (RFC 3056).
_NAT64 = (ipaddress.IPv6Network("64:ff9b::/96"), ipaddress.IPv6Network("64:ff9b:1::/48"))
_6TO4 = ipaddress.IPv6Network("2002::/16")


def address_allowed(address: str | IpAddress, network: PbxNetwork) -> bool:
    """Whether a PBX request may go to this IP address: a public unicast one (not loopback, private, link-local,
    CGNAT, multicast, reserved, unspecified, or an IPv6 form of one), or loopback when the stage is `local`."""
    ip = ipaddress.ip_address(address) if isinstance(address, str) else address
    inner = _embedded_ipv4(ip)
    if inner is not None:
        return address_allowed(inner, network)
    if ip.is_loopback:
        return network == "local"
    return ip.is_global and not (ip.is_multicast or ip.is_reserved or ip.is_unspecified)


def _embedded_ipv4(ip: IpAddress) -> ipaddress.IPv4Address | None:
    if not isinstance(ip, ipaddress.IPv6Address):
        return None
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if any(ip in prefix for prefix in _NAT64):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    if ip in _6TO4:
        return ip.sixtofour
    return None


def check_server_url(server_url: str, network: PbxNetwork) -> None:
    """The PBX's start.php URL as an admin may set it, else a 400 naming `server_url` (`check_url`'s rules)."""
    check_url(
        server_url,
        network,
        field="server_url",
        shape="must be the full https URL of start.php, e.g. https://a00.abc.ru/b3/api/v2/start.php",
        userinfo="must not carry a user name or password (user:password@): the PBX secret authenticates",
    )


def check_url(url: str, network: PbxNetwork, *, field: str, shape: str, userinfo: str) -> None:
    """A URL a tenant admin gives the service to send to (the PBX's, an events endpoint's), else a 400 naming `field`:
    https (plain http only on a `local` stage), a host, no `user:password@` (it would be shown and logged), and a host
    written as an IP address must be one `address_allowed`. A name is checked where it is resolved: in the guarded
    transport (`adapters.pbx`), on every request."""
    parts = urlsplit(url)
    schemes = ("https", "http") if network == "local" else ("https",)
    if parts.scheme not in schemes or not parts.hostname:
        raise InvalidInput.for_field(field, shape)
    if "@" in parts.netloc:
        raise InvalidInput.for_field(field, userinfo)
    try:
        ip = ipaddress.ip_address(parts.hostname)
        _ = parts.port  # a port that is not a number is a ValueError
    except ValueError:
        return  # a name (or a form only the resolver reads, e.g. 0x7f.1): the transport checks what it resolves to
    if not address_allowed(ip, network):
        raise InvalidInput.for_field(field, "must be a public address (not a private or local network)")


def origin(server_url: str) -> tuple[str, str, int | None]:
    """(scheme, host, port) with the scheme's default port filled in: what a new secret must come with when changed."""
    parts = urlsplit(server_url)
    try:
        port = parts.port
    except ValueError:
        port = None
    default = {"https": 443, "http": 80}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), port or default


def redacted_url(server_url: str) -> str:
    """The URL for a log line: scheme, host, port and path; never a `user:password@`, a query or a fragment."""
    parts = urlsplit(server_url)
    host = parts.hostname or ""
    if ":" in host:
        host = f"[{host}]"
    try:
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        port = ""
    return f"{parts.scheme}://{host}{port}{parts.path}"
