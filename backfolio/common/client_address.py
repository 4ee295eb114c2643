"""The client's address, for login lockout and rate limits.

``X-Forwarded-For`` is whatever the client wrote unless a proxy we run wrote it: it is read only
when the connection comes from an address in ``BACKFOLIO_TRUSTED_PROXIES`` (addresses or
networks, empty by default), and then from the nearest hop back to the first address that is not
one of those proxies. Otherwise the connection's own address counts, so a different header per
request changes nothing.
"""

import ipaddress
from functools import lru_cache

from django.conf import settings


@lru_cache(maxsize=8)
def _networks(trusted: tuple[str, ...]) -> tuple:
    return tuple(ipaddress.ip_network(entry, strict=False) for entry in trusted)


def _is_trusted(address: str, networks) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip in network for network in networks)


def client_address(request) -> str:
    remote = request.META.get("REMOTE_ADDR", "") or ""
    networks = _networks(tuple(settings.BACKFOLIO_TRUSTED_PROXIES))
    if not networks or not _is_trusted(remote, networks):
        return remote
    hops = [
        hop.strip()
        for hop in request.META.get("HTTP_X_FORWARDED_FOR", "").split(",")
        if hop.strip()
    ]
    for hop in reversed(hops):
        if not _is_trusted(hop, networks):
            return hop
    return hops[0] if hops else remote
