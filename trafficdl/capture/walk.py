"""Frames -> traffic objects (biflow, flow, service burst) -> the paper's inputs.

One loop does link layer, IP and L4 decoding and the object table together,
with everything in local variables: the object table is the cost (~3 us per
packet in CPython, measured here; docs/capture.md), so the decode stays inline instead of one call
per layer. Once an object has its N_p packet rows and N_b payload bytes, a
packet only touches four counters.

Tunnels (trafficdl.capture.tunnels) cost an ordinary packet one dict lookup
(UDP destination port) and one flag test at most: only a tunnel port, IP
protocol or ethertype calls a decapsulator, which says where the inner packet
starts, and the decode goes round again on it (`while True`), so nesting is
free. The object is keyed, sized and featured by the innermost IP packet.
GTP-U, the bulk of mobile-core captures, has a fast path (target: >= 0.8x
the packets/s of the same traffic untunnelled; 0.73-0.78x without the fast
path): a G-PDU without options is decoded inline; after one, the next packet is
first tried as IPv4/UDP/GTP-U/IPv4 in one struct call (`gtp_hot`), and the
outermost tunnel's record is its GTP header's offset until an object opens
(objects.full_chain), so such a packet allocates nothing for its tunnel.

Objects (boundaries and their options: trafficdl.capture.objects):
- biflow: both directions of a 5-tuple. The first packet's sender is the
  client, except when the capture starts mid-connection: a SYN+ACK, or a
  non-SYN packet from a port < 1024 to a port >= 1024, was sent by the server,
  so the object is flipped (its client is that packet's receiver).
- flow: one direction of a 5-tuple; every packet has direction +1.
- burst: packets of biflows with the same protocol and server (IP, port);
  a new burst starts when the server endpoint was silent for burst_gap.
A (bi)flow ends after idle_timeout seconds of silence, active_timeout seconds
after its start, or (tcp_close) when a SYN follows both FINs or an RST. Idle
objects are swept as capture time advances, so memory follows the active ones.

TCP payload bytes follow the sequence numbers per direction while an object
collects: a retransmitted segment adds no bytes (a partial overlap adds only
the new tail), and a segment more than 16 MiB ahead of the expected sequence
(out of window) adds none. Its packet row is kept: it was on the wire.
"""

from __future__ import annotations

import struct
from collections.abc import Iterable

from trafficdl.capture.objects import (
    _CLOSE,
    _FIRST,
    _HEADS,
    _LAST,
    _NBYTES,
    _NPK,
    _OPEN,
    _PAY,
    _ROWS,
    CLOSED,
    ObjectTable,
    WalkStats,
    full_chain,
    key_ids,
)
from trafficdl.capture.tunnels import TPIDS, Decaps

_TCPH = struct.Struct("!HHI4xBBH").unpack_from  # ports, seq, (ack), offset, flags, window
_UDPH = struct.Struct("!HH").unpack_from
# version/ihl, total length, frag word, proto and both addresses in one call (the
# addresses as one 8-byte string: the key's); _IP4H when the header is cut short
_IP4A = struct.Struct("!BxHxxHxBxx8s").unpack_from
_IP4H = struct.Struct("!BxHxxHxB").unpack_from
# IPv4 (no options) / UDP / GTP-U G-PDU (no options) / IPv4 in one call: the outer
# _IP4H fields, UDP destination port, GTP flags+type, then the inner _IP4A fields
_GTP44 = struct.Struct("!BxHxxHxB10xxxHxxxxH6xBxHxxHxBxx8s").unpack_from
_IP6A = struct.Struct("!BxxxHBx32s").unpack_from  # version, payload length, next, addresses
_U32LE = struct.Struct("<I").unpack_from
_IPV6_EXT = frozenset((0, 43, 60, 135, 139, 140, 253, 254))
_RAW_LINKS = frozenset((101, 12, 14))
_TPIDS = frozenset(TPIDS)
SEQ_MASK = 0xFFFFFFFF
OUT_OF_WINDOW = 1 << 24
HEAD = 16  # bytes of a direction's first payload kept for encryption detection
# `proto` codes of packets that make no object (real protocols are 6 and 17)
_BAD, _FRAG, _NON_IP, _OTHER = -1, -2, -3, -4

__all__ = ["WalkStats", "Walker"]


class Walker(ObjectTable):
    """Feed it frames; finished objects land in `sink` (a FeatureSink)."""

    def feed(self, records: Iterable[tuple[float, int, bytes, int]]) -> None:
        cfg = self.cfg
        stats = self.stats
        table = self.table
        bursts = self.bursts
        idle = cfg.idle_timeout
        active = cfg.active_timeout or float("inf")
        tcp_close = cfg.tcp_close
        gap_max = cfg.burst_gap
        nb = cfg.payload_bytes
        npk = cfg.packets
        period = max(idle, gap_max, 1.0)
        next_sweep = self.next_sweep
        new_state = self._new_state
        finish = self._finish
        tcph = _TCPH
        ip4a = _IP4A
        ip6a = _IP6A
        is_burst = cfg.segmentation == "burst"
        udph = _UDPH
        decaps = Decaps(cfg.decap)
        udp_tun, ip_tun, eth_tun = decaps.udp, decaps.ip, decaps.eth
        tkey = cfg.tunnel_key
        tpids = _TPIDS
        n = non_ip = other = frags = bad = tso = tunnelled = 0
        gaddr: bytes | None = b""  # outer addresses of an inline GTP-U packet (tun: offset)
        gtp_hot = False  # the last packet took the inline GTP-U path
        gtp44 = _GTP44
        for ts, lt, data, orig in records:
            n += 1
            tun = None
            try:
                # ---------------------------------------------- link layer
                if lt == 1:
                    et = (data[12] << 8) | data[13]
                    ip = 14
                    while et in tpids:
                        et = (data[ip + 2] << 8) | data[ip + 3]
                        ip += 4
                elif lt == 113:
                    et = (data[14] << 8) | data[15]
                    ip = 16
                elif lt == 276:
                    et = (data[0] << 8) | data[1]
                    ip = 20
                elif lt in _RAW_LINKS or lt == 228 or lt == 229:
                    ip = 0
                    v = data[0] >> 4
                    et = 0x0800 if v == 4 else 0x86DD if v == 6 else 0
                elif lt == 0 or lt == 108:
                    fam = _U32LE(data, 0)[0]
                    if fam > 0xFFFF:  # written in the other byte order
                        fam = int.from_bytes(data[:4], "big")
                    ip = 4
                    et = 0x0800 if fam == 2 else 0x86DD if fam in (10, 24, 28, 30) else 0
                else:
                    stats.unknown_links.add(lt)
                    non_ip += 1
                    continue
                while True:  # once per encapsulation level; plain packets break out at once
                    # ------------------------------------------ network
                    if et == 0x0800:
                        try:
                            if gtp_hot and tun is None:  # the last packet was GTP-U: its shape?
                                (ob0, otot, ofrag, oproto, dport, gtpft,
                                 b0, tot, fragw, proto, addr) = gtp44(data, ip)  # fmt: skip
                                if (gtpft == 0x30FF and dport == 2152 and ob0 == 0x45
                                        and oproto == 17 and otot >= 20
                                        and not ofrag & 0x1FFF):  # fmt: skip
                                    tun = ip + 28  # what the inline path below would do
                                    gaddr = None  # (the addresses: 16 bytes before tun)
                                    ip += 36
                                    if b0 >> 4 != 4:  # the inner header is not IPv4
                                        v = b0 >> 4
                                        et = 0x86DD if v == 6 else 0
                                        continue
                                else:
                                    gtp_hot = False
                                    b0, tot, fragw, proto, addr = ip4a(data, ip)
                            else:
                                b0, tot, fragw, proto, addr = ip4a(data, ip)
                        except struct.error:  # cut inside the addresses: L4 decides
                            gtp_hot = False
                            b0, tot, fragw, proto = _IP4H(data, ip)
                            addr = data[ip + 12 : ip + 20]
                        ihl = (b0 & 15) << 2
                        if b0 >> 4 != 4 or ihl < 20:
                            proto = _BAD
                            break
                        if tot < ihl:
                            if tot:
                                proto = _BAD
                                break
                            tot = orig - ip  # segmentation offload: the frame says
                            tso += 1
                        if fragw & 0x1FFF:
                            proto = _FRAG
                            break
                        alen = 4
                        l4 = ip + ihl
                        end = ip + tot
                    elif et == 0x86DD:
                        b0, plen, proto, addr = ip6a(data, ip)  # cut short: struct.error
                        if b0 >> 4 != 6:
                            proto = _BAD
                            break
                        alen = 16
                        l4 = ip + 40
                        if plen:
                            end = l4 + plen
                        else:  # a jumbogram or segmentation offload: the frame says
                            end = orig
                            tso += 1
                        while proto in _IPV6_EXT or proto == 44 or proto == 51:
                            nh = data[l4]
                            if proto == 44:
                                if ((data[l4 + 2] << 8) | data[l4 + 3]) & 0xFFF8:
                                    proto = _FRAG
                                    break
                                l4 += 8
                            elif proto == 51:
                                l4 += (data[l4 + 1] + 2) << 2
                            else:
                                l4 += (data[l4 + 1] + 1) << 3
                            proto = nh
                        if proto == _FRAG:
                            break
                    elif et in eth_tun:  # PPPoE session, MPLS
                        et, ip, kind, tid, kid = eth_tun[et](data, ip)
                        tun = (tun, kind, tid, kid, b"", 0)  # a chain, resolved per object
                        continue
                    else:
                        proto = _NON_IP
                        break
                    # ------------------------------------------ transport
                    if proto == 6:
                        sport, dport, seq, offb, flags, win = tcph(data, l4)
                        ps = l4 + ((offb >> 4) << 2)
                        if ps - l4 < 20:
                            proto = _BAD
                        break
                    if proto == 17:
                        sport, dport = udph(data, l4)
                        if dport in udp_tun:
                            u = l4 + 8
                            if dport == 2152 and data[u] == 0x30 and data[u + 1] == 0xFF:
                                # a GTP-U G-PDU without options, the bulk of mobile-core
                                # captures: inline (the TEID stays bytes until resolved)
                                ip = u + 8
                                v = data[ip] >> 4
                                et = 0x0800 if v == 4 else 0x86DD if v == 6 else 0
                                if tun is None:  # outermost: its link is built per object
                                    tun = u
                                    gaddr = addr
                                    gtp_hot = True
                                else:
                                    tun = (tun, "gtp", data[u + 4 : u + 8], 0, addr, alen)
                            else:
                                et, ip, kind, tid, kid = udp_tun[dport](data, u)
                                tun = (tun, kind, tid, kid, addr, alen)
                            continue
                        ps = l4 + 8
                        seq = flags = win = 0
                        break
                    if proto in ip_tun:  # GRE, IP in IP, MPLS in IP
                        et, ip, kind, tid, kid = ip_tun[proto](data, l4)
                        tun = (tun, kind, tid, kid, addr, alen)
                        continue
                    proto = _OTHER
                    break
                if proto < 0:
                    if proto == _BAD:
                        bad += 1
                    elif proto == _NON_IP:
                        non_ip += 1
                    elif proto == _OTHER:
                        other += 1
                    else:
                        frags += 1
                    continue
                size = end - ps
                if size < 0:
                    bad += 1
                    continue
            except (IndexError, struct.error):
                bad += 1
                continue

            # -------------------------------------------------- objects
            if ts > next_sweep:  # -inf at first: one sweep of an empty table
                self.sweep(ts)
                next_sweep = ts + period
            key = (proto, addr, sport, dport)
            if tun is not None:
                tunnelled += 1
                if tkey:
                    tun = full_chain(tun, data, gaddr)
                    key = (proto, addr, sport, dport, *key_ids(tun))
            ent = table.get(key)
            if is_burst:
                if ent is None or ts - ent[3] > idle:
                    ent = self._open_conn(key, alen, flags, ts)
                ent[3] = ent[5][3] = ts
                bkey = ent[0]
                st = bursts.get(bkey)
                if st is None or ts - st[_LAST] > gap_max:
                    if st is not None:
                        finish(st)
                    st = bursts[bkey] = new_state(ts, ent[4], (), full_chain(tun, data, gaddr))
                gap = ts - st[_LAST]
            else:
                if ent is not None:
                    st = ent[0]
                    gap = ts - st[_LAST]
                    if (
                        gap > idle
                        or ts - st[_FIRST] > active
                        or (flags & 2 and st[_CLOSE] >= CLOSED)
                    ):
                        self._end(st)
                        ent = None
                if ent is None:
                    ent = self._open(key, alen, flags, ts, full_chain(tun, data, gaddr))
                    st = ent[0]
                    gap = 0.0  # a new object's first gap
                if flags & 5 and tcp_close:  # FIN or RST
                    self.tcp_end(st, ent[1], flags)
            st[_LAST] = ts
            st[_NPK] += 1
            st[_NBYTES] += size
            if not st[_OPEN]:
                continue
            # ------------------------------------------ still collecting inputs
            d = ent[1]
            rows = st[_ROWS]
            if len(rows) < npk:
                rows.append((size, d, win, gap if gap > 0 else 0.0))
            pay = st[_PAY]
            have = len(pay)
            if have < nb:
                if proto == 6 and (size or flags & 3):
                    seg_end = (seq + size + (flags & 1) + ((flags >> 1) & 1)) & SEQ_MASK
                    exp = ent[2]
                    if exp is None:
                        ent[2] = seg_end
                    else:
                        diff = (seq - exp) & SEQ_MASK
                        if diff >= 0x80000000:  # starts before the expected byte
                            overlap = 0x100000000 - diff
                            if overlap >= size:
                                size = 0  # retransmission: nothing new
                            else:
                                ps += overlap
                                size -= overlap
                                ent[2] = seg_end
                        elif diff > OUT_OF_WINDOW:
                            size = 0
                        else:
                            ent[2] = seg_end
                if size > 0:
                    stop = min(end, len(data), ps + nb - have)
                    if stop > ps:
                        heads = st[_HEADS]
                        hi = 0 if d > 0 else 1
                        if heads[hi] is None:
                            heads[hi] = data[ps : ps + HEAD]
                        pay += data[ps:stop]
            elif len(rows) >= npk:
                st[_OPEN] = False
        self.next_sweep = next_sweep
        stats.packets += n
        stats.non_ip += non_ip
        stats.other_l4 += other
        stats.fragments += frags
        stats.malformed += bad
        stats.tso += tso
        stats.tunnelled += tunnelled
