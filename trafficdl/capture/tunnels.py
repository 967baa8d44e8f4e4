"""Tunnel and link-session decapsulation: GTP-U, VXLAN, Geneve, GRE, MPLS, PPPoE, IP-in-IP.

Mobile-core captures are GTP-U tunnelled, data-centre captures VXLAN/Geneve,
port mirrors arrive as GRE/ERSPAN, access links carry PPPoE under VLAN tags.
Without decapsulation a whole capture is one object per tunnel endpoint pair
whose payload starts with tunnel and inner IP headers.

The walk (trafficdl.capture.walk) stays a flat loop over plain IP packets and
calls these functions only on the cheap checks that single tunnels out: a UDP
destination port in `udp_ports`, an IP protocol in `ip_protocols`, an
ethertype in `ethertypes`. Each function reads one encapsulation header and
answers where the inner packet starts: `(ethertype, offset, kind, tunnel id,
key id)`. The walk then decodes the inner packet with its own IP/L4 code, so
nesting (VXLAN in GRE, GTP-U over MPLS over PPPoE...) needs nothing special.
An inner ethertype of 0 means "no IP inside" (GTP-U signalling, an unknown
GRE payload): the walk counts the packet as non-IP.

`key id` is the part of the tunnel id that is the same in both directions
and names an overlay network (VXLAN/Geneve VNI, GRE key incl. NVGRE VSID,
PPPoE session); with ExtractConfig.tunnel_key it joins the object key. GTP-U
TEIDs and MPLS labels are chosen per direction (each end picks what it
receives on), so they could never join a biflow's two halves: they are kept
as metadata (`tunnel_id`) only.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Iterable

# The names of --decap; PPPoE and VLAN tags are link framing, always decoded.
DECAPS: tuple[str, ...] = ("gtp", "vxlan", "geneve", "gre", "mpls", "ipip")
GTP_U, VXLAN, GENEVE = 2152, 4789, 6081
GRE, IPIP, IPV6IP, MPLS_IP = 47, 4, 41, 137
MPLS_UC, MPLS_MC, PPPOE_S = 0x8847, 0x8848, 0x8864
TPIDS = (0x8100, 0x88A8, 0x9100, 0x9200)  # 802.1Q, 802.1ad and the pre-standard QinQ tags

Inner = tuple[int, int, str, int, int]  # ethertype, offset, kind, tunnel id, key id
Decap = Callable[[bytes, int], Inner]
_GTPH = struct.Struct("!BBxxI").unpack_from  # flags, message type, TEID


def _ip_et(data: bytes, pos: int) -> int:
    """Ethertype of a bare IP packet at `pos`, from its version nibble (0: not IP)."""
    v = data[pos] >> 4
    return 0x0800 if v == 4 else 0x86DD if v == 6 else 0


def ethernet(data: bytes, pos: int) -> tuple[int, int]:
    """An Ethernet header at `pos` (any number of VLAN tags): (ethertype, payload offset)."""
    et = (data[pos + 12] << 8) | data[pos + 13]
    pos += 14
    while et in TPIDS:
        et = (data[pos + 2] << 8) | data[pos + 3]
        pos += 4
    return et, pos


def _eth_inner(data: bytes, pos: int, kind: str, tid: int, kid: int) -> Inner:
    et, ip = ethernet(data, pos)
    return et, ip, kind, tid, kid


# ------------------------------------------------------------------ UDP


def gtp_u(data: bytes, pos: int) -> Inner:
    """GTPv1-U (3GPP TS 29.281): only G-PDUs (type 255) carry user IP packets."""
    flags, mtype, teid = _GTPH(data, pos)
    if flags & 0xF0 != 0x30 or mtype != 0xFF:
        return 0, pos, "gtp", 0, 0  # GTP' or signalling: echo, error indication, end marker
    ip = pos + 8
    if flags & 0x07:  # E, S or PN: sequence number, N-PDU number, next extension type
        nxt = data[ip + 3]
        ip += 4
        while nxt:  # extension headers: length in 4-octet units, next type last
            size = data[ip] << 2
            if not size:
                return 0, ip, "gtp", teid, 0
            ip += size
            nxt = data[ip - 1]
    return _ip_et(data, ip), ip, "gtp", teid, 0


def vxlan(data: bytes, pos: int) -> Inner:
    """VXLAN (RFC 7348): 8 bytes, VNI in bytes 4-6, then an Ethernet frame."""
    vni = int.from_bytes(data[pos + 4 : pos + 7], "big")
    return _eth_inner(data, pos + 8, "vxlan", vni, vni)


def geneve(data: bytes, pos: int) -> Inner:
    """Geneve (RFC 8926): options of 4*len bytes, then the protocol type's payload."""
    inner = pos + 8 + ((data[pos] & 0x3F) << 2)
    proto = (data[pos + 2] << 8) | data[pos + 3]
    vni = int.from_bytes(data[pos + 4 : pos + 7], "big")
    if proto == 0x6558:
        return _eth_inner(data, inner, "geneve", vni, vni)
    return (proto if proto in (0x0800, 0x86DD) else 0), inner, "geneve", vni, vni


UDP_DECAPS: dict[int, tuple[str, Decap]] = {
    GTP_U: ("gtp", gtp_u),
    VXLAN: ("vxlan", vxlan),
    GENEVE: ("geneve", geneve),
}


# ------------------------------------------------------------ GRE, ERSPAN


def gre(data: bytes, pos: int) -> Inner:
    """GRE (RFC 2784/2890) with checksum, key and sequence; NVGRE; ERSPAN I/II/III."""
    flags = data[pos]
    if data[pos + 1] & 7:  # version 1 is PPTP's enhanced GRE (PPP inside): not IP here
        return 0, pos, "gre", 0, 0
    proto = (data[pos + 2] << 8) | data[pos + 3]
    off = pos + 4 + (4 if flags & 0xC0 else 0)  # checksum (and offset) with C or R
    key = 0
    if flags & 0x20:
        key = int.from_bytes(data[off : off + 4], "big")
        off += 4
    if flags & 0x10:
        off += 4
    if proto in (0x0800, 0x86DD, MPLS_UC, MPLS_MC):
        return proto, off, "gre", key, key
    if proto == 0x6558:  # transparent Ethernet bridging; NVGRE: key = VSID << 8 | flow id
        return _eth_inner(data, off, "nvgre" if flags & 0x20 else "gre", key, key >> 8)
    if proto == 0x88BE:  # ERSPAN type II has a sequence number and 8 header bytes; I has neither
        if flags & 0x10:
            sid = ((data[off + 2] & 3) << 8) | data[off + 3]
            return _eth_inner(data, off + 8, "erspan", sid, 0)
        return _eth_inner(data, off, "erspan", 0, 0)
    if proto == 0x22EB:  # ERSPAN type III: 12 bytes, +8 with the platform sub-header (O bit)
        sid = ((data[off + 2] & 3) << 8) | data[off + 3]
        frame_type = (data[off + 10] >> 2) & 0x1F
        inner = off + 12 + (8 if data[off + 11] & 1 else 0)
        if frame_type != 0:  # only Ethernet frames are mirrored by the switches we know of
            return 0, inner, "erspan", sid, 0
        return _eth_inner(data, inner, "erspan", sid, 0)
    return 0, off, "gre", key, key


def ip_in_ip(data: bytes, pos: int) -> Inner:
    """IPv4/IPv6 directly inside IP (protocols 4 and 41)."""
    return _ip_et(data, pos), pos, "ipip", 0, 0


# ------------------------------------------------------------ MPLS, PPPoE


def mpls(data: bytes, pos: int) -> Inner:
    """An MPLS label stack (RFC 3032) down to bottom-of-stack, then IP or a pseudowire."""
    label = 0
    while True:
        label = (data[pos] << 12) | (data[pos + 1] << 4) | (data[pos + 2] >> 4)
        bottom = data[pos + 2] & 1
        pos += 4
        if bottom:
            break
    first = data[pos] >> 4
    if first == 0:  # Ethernet pseudowire with its control word (RFC 4448)
        return _eth_inner(data, pos + 4, "mpls", label, 0)
    return _ip_et(data, pos), pos, "mpls", label, 0


def pppoe(data: bytes, pos: int) -> Inner:
    """A PPPoE session frame (RFC 2516): 6 bytes, then a PPP protocol (IPv4 / IPv6)."""
    session = (data[pos + 2] << 8) | data[pos + 3]
    ppp = (data[pos + 6] << 8) | data[pos + 7]
    et = 0x0800 if ppp == 0x0021 else 0x86DD if ppp == 0x0057 else 0
    return et, pos + 8, "pppoe", session, session


# --------------------------------------------------------------- tables


class Decaps:
    """The dispatch tables for one --decap choice (empty tables: decapsulation off)."""

    def __init__(self, names: Iterable[str]) -> None:
        on = set(names)
        self.udp: dict[int, Decap] = {p: fn for p, (name, fn) in UDP_DECAPS.items() if name in on}
        self.ip: dict[int, Decap] = {}
        if "gre" in on:
            self.ip[GRE] = gre
        if "ipip" in on:
            self.ip[IPIP] = self.ip[IPV6IP] = ip_in_ip
        self.eth: dict[int, Decap] = {PPPOE_S: pppoe}
        if "mpls" in on:
            self.eth[MPLS_UC] = self.eth[MPLS_MC] = mpls
            self.ip[MPLS_IP] = mpls
