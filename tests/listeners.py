"""The TCP sockets listening on this machine (from /proc/net), for tests that check where a
service they start listens."""

from __future__ import annotations

import ipaddress
from pathlib import Path

LISTEN = "0A"  # the kernel's TCP state number for LISTEN


def _address(hex_address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address:
    raw = bytes.fromhex(hex_address)
    # the kernel writes each 32-bit word in host (little-endian) order
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, len(raw), 4))
    address = ipaddress.ip_address(words)
    mapped = getattr(address, "ipv4_mapped", None)
    return mapped or address


def listening() -> set[tuple[str, int]]:
    """(address, port) of every listening TCP socket; empty where /proc/net is not readable."""
    return {(address, port) for address, port, _ in _sockets()}


def owners() -> dict[tuple[str, int], str]:
    """(address, port) of every listening TCP socket -> the name of a process holding it (""
    where none of those this user may see does)."""
    by_inode = {inode: (address, port) for address, port, inode in _sockets()}
    found = dict.fromkeys(by_inode.values(), "")
    for process in Path("/proc").iterdir():
        if not process.name.isdigit():
            continue
        try:
            name = (process / "comm").read_text().strip()
            links = [link.readlink().name for link in (process / "fd").iterdir()]
        except OSError:  # gone meanwhile, or not ours to see
            continue
        for link in links:
            if link.startswith("socket:[") and link[8:-1] in by_inode:
                found[by_inode[link[8:-1]]] = name
    return found


def _sockets() -> set[tuple[str, int, str]]:
    """(address, port, socket inode) of every listening TCP socket."""
    found: set[tuple[str, int, str]] = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if len(fields) > 9 and fields[3] == LISTEN:
                address, port = fields[1].split(":")
                found.add((str(_address(address)), int(port, 16), fields[9]))
    return found


def off_loopback(sockets: set[tuple[str, int]]) -> set[tuple[str, int]]:
    """Those not bound to a loopback address (a wildcard or a network address)."""
    return {(a, p) for a, p in sockets if not ipaddress.ip_address(a).is_loopback}
