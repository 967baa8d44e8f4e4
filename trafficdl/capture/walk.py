"""Frames -> traffic objects (biflow, flow, service burst) -> the paper's inputs.

One loop does link layer, IP and L4 decoding and the object table together,
with everything in local variables: the object table is the cost (~3 us per
packet in CPython, facts.md), so the decode stays inline instead of one call
per layer. Once an object has its N_p packet rows and N_b payload bytes, a
packet only touches four counters.

Objects:
- biflow: both directions of a 5-tuple. The first packet's sender is the
  client, except when the capture starts mid-connection: a SYN+ACK, or a
  non-SYN packet from a port < 1024 to a port >= 1024, was sent by the server,
  so the object is flipped (its client is that packet's receiver).
- flow: one direction of a 5-tuple; every packet has direction +1.
- burst: packets of biflows with the same protocol and server (IP, port);
  a new burst starts when the server endpoint was silent for burst_gap.
A (bi)flow ends after idle_timeout seconds of silence (no FIN/RST logic: a
reused 5-tuple within the timeout continues the object). Idle objects are
swept as capture time advances, so memory follows the active objects.

TCP payload bytes follow the sequence numbers per direction while an object
collects: a retransmitted segment adds no bytes (a partial overlap adds only
the new tail), and a segment more than 16 MiB ahead of the expected sequence
(out of window) adds none. Its packet row is kept: it was on the wire.
"""

from __future__ import annotations

import socket
import struct
from collections.abc import Iterable
from dataclasses import dataclass, field

from trafficdl.capture.config import ExtractConfig
from trafficdl.capture.encryption import classify_object
from trafficdl.features import DOWN, UP, FeatureSink

_TCPH = struct.Struct("!HHIIBBH").unpack_from
_UDPH = struct.Struct("!HH").unpack_from
_IP4H = struct.Struct("!BxHxxHxB").unpack_from  # version/ihl, total length, frag word, proto
_U32LE = struct.Struct("<I").unpack_from
_IPV6_EXT = frozenset((0, 43, 60, 135, 139, 140, 253, 254))
_RAW_LINKS = frozenset((101, 12, 14))
SEQ_MASK = 0xFFFFFFFF
OUT_OF_WINDOW = 1 << 24
HEAD = 16  # bytes of a direction's first payload kept for encryption detection

# Object state (a list for speed): indices
_FIRST, _LAST, _NPK, _NBYTES, _PAY, _ROWS, _META, _OPEN, _HEADS, _KEYS = range(10)


@dataclass
class WalkStats:
    """What the walk saw besides objects; reported per capture."""

    packets: int = 0
    non_ip: int = 0  # ARP, LLDP, unknown ethertypes or link types
    other_l4: int = 0  # IP packets that are neither TCP nor UDP (ICMP, ...)
    fragments: int = 0  # non-first IPv4/IPv6 fragments
    malformed: int = 0  # headers cut short or inconsistent
    unknown_links: set[int] = field(default_factory=set)

    def as_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "unknown_links"}
        d["unknown_links"] = sorted(self.unknown_links)
        return d


def _addr_text(addr: bytes, alen: int, first: bool) -> str:
    raw = addr[:alen] if first else addr[alen:]
    return socket.inet_ntop(socket.AF_INET if alen == 4 else socket.AF_INET6, raw)


class Walker:
    """Feed it frames; finished objects land in `sink` (a FeatureSink)."""

    def __init__(self, cfg: ExtractConfig, capture_index: int = 0) -> None:
        self.cfg = cfg
        self.capture = capture_index
        self.sink = FeatureSink(cfg.payload_bytes, cfg.packets)
        self.stats = WalkStats()
        self.table: dict[tuple, list] = {}  # directional 5-tuple -> entry
        self.bursts: dict[tuple, list] = {}  # burst mode: (proto, server, port) -> state
        self.next_sweep = float("-inf")

    # ----------------------------------------------------------- objects
    def _new_state(self, ts: float, meta: tuple, keys: tuple) -> list:
        return [ts, ts, 0, 0, bytearray(), [], meta, True, [None, None], keys]

    def _finish(self, st: list) -> None:
        cfg = self.cfg
        if st[_NPK] < cfg.min_packets or st[_NBYTES] < cfg.min_payload:
            return
        proto, addr, alen, client_first, cport, sport = st[_META]
        heads = st[_HEADS]
        record = (
            self.capture,
            proto,
            _addr_text(addr, alen, client_first),
            cport,
            _addr_text(addr, alen, not client_first),
            sport,
            st[_NPK],
            st[_NBYTES],
            st[_FIRST],
            st[_LAST] - st[_FIRST],
            classify_object(proto, heads[0], heads[1]),
        )
        self.sink.add(st[_PAY], st[_ROWS], record)

    def _drop_state(self, st: list) -> None:
        for k in st[_KEYS]:
            self.table.pop(k, None)

    def sweep(self, now: float) -> None:
        """Finish objects idle at `now` (capture time)."""
        idle = self.cfg.idle_timeout
        if self.cfg.segmentation == "burst":
            gap = self.cfg.burst_gap
            for bkey, st in list(self.bursts.items()):
                if now - st[_LAST] > gap:
                    self._finish(st)
                    del self.bursts[bkey]
            for key, ent in list(self.table.items()):
                if now - ent[3] > idle:
                    del self.table[key]
            return
        done = {id(ent[0]): ent[0] for ent in self.table.values() if now - ent[0][_LAST] > idle}
        for st in done.values():
            self._finish(st)
            self._drop_state(st)

    def close(self) -> None:
        """Finish every open object (end of capture), in start-time order."""
        states = (
            {id(e[0]): e[0] for e in self.table.values()}
            if self.cfg.segmentation != "burst"
            else {}
        )
        states.update({id(s): s for s in self.bursts.values()})
        for st in sorted(states.values(), key=lambda s: s[_FIRST]):
            self._finish(st)
        self.table.clear()
        self.bursts.clear()

    # --------------------------------------------------------------- walk
    def feed(self, records: Iterable[tuple[float, int, bytes, int]]) -> None:
        cfg = self.cfg
        stats = self.stats
        table = self.table
        bursts = self.bursts
        mode = cfg.segmentation
        idle = cfg.idle_timeout
        gap_max = cfg.burst_gap
        nb = cfg.payload_bytes
        npk = cfg.packets
        period = max(idle, gap_max, 1.0)
        next_sweep = self.next_sweep
        new_state = self._new_state
        finish = self._finish
        tcph = _TCPH
        ip4h = _IP4H
        is_burst = mode == "burst"
        udph = _UDPH
        n = non_ip = other = frags = bad = 0
        for ts, lt, data, _orig in records:
            n += 1
            try:
                # ---------------------------------------------- link layer
                if lt == 1:
                    et = (data[12] << 8) | data[13]
                    ip = 14
                    while et == 0x8100 or et == 0x88A8 or et == 0x9100:
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
                # ---------------------------------------------- network
                if et == 0x0800:
                    b0, tot, fragw, proto = ip4h(data, ip)
                    ihl = (b0 & 15) << 2
                    if b0 >> 4 != 4 or ihl < 20 or tot < ihl:
                        bad += 1
                        continue
                    if fragw & 0x1FFF:
                        frags += 1
                        continue
                    addr = data[ip + 12 : ip + 20]
                    alen = 4
                    l4 = ip + ihl
                    end = ip + tot
                elif et == 0x86DD:
                    if data[ip] >> 4 != 6:
                        bad += 1
                        continue
                    plen = (data[ip + 4] << 8) | data[ip + 5]
                    proto = data[ip + 6]
                    addr = data[ip + 8 : ip + 40]
                    if len(addr) < 32:
                        bad += 1
                        continue
                    alen = 16
                    l4 = ip + 40
                    end = l4 + plen if plen else len(data)
                    while proto in _IPV6_EXT or proto == 44 or proto == 51:
                        nh = data[l4]
                        if proto == 44:
                            if ((data[l4 + 2] << 8) | data[l4 + 3]) & 0xFFF8:
                                proto = -1
                                break
                            l4 += 8
                        elif proto == 51:
                            l4 += (data[l4 + 1] + 2) << 2
                        else:
                            l4 += (data[l4 + 1] + 1) << 3
                        proto = nh
                    if proto == -1:
                        frags += 1
                        continue
                else:
                    non_ip += 1
                    continue
                # ---------------------------------------------- transport
                if proto == 6:
                    sport, dport, seq, _ack, offb, flags, win = tcph(data, l4)
                    ps = l4 + ((offb >> 4) << 2)
                    if ps - l4 < 20:
                        bad += 1
                        continue
                elif proto == 17:
                    sport, dport = udph(data, l4)
                    ps = l4 + 8
                    seq = flags = win = 0
                else:
                    other += 1
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
                    st = bursts[bkey] = new_state(ts, ent[4], ())
            else:
                if ent is not None and ts - ent[0][_LAST] > idle:
                    finish(ent[0])
                    self._drop_state(ent[0])
                    ent = None
                if ent is None:
                    ent = self._open(key, alen, flags, ts, mode)
                st = ent[0]
            gap = ts - st[_LAST]
            st[_LAST] = ts
            st[_NPK] += 1
            st[_NBYTES] += size
            if not st[_OPEN]:
                continue
            # ------------------------------------------ still collecting inputs
            d = ent[1]
            rows = st[_ROWS]
            if len(rows) < npk:  # a new object's first gap is 0 (_LAST == its start)
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

    @staticmethod
    def _client_is_receiver(proto: int, flags: int, sport: int, dport: int) -> bool:
        """Mid-connection start: this first packet was sent by the server."""
        if proto == 6:
            if flags & 0x12 == 0x12:  # SYN+ACK
                return True
            if flags & 0x02:  # a pure SYN is always the client's
                return False
        return sport < 1024 <= dport

    def _open(self, key: tuple, alen: int, flags: int, ts: float, mode: str) -> list:
        proto, addr, sport, dport = key
        if mode == "flow":
            st = self._new_state(ts, (proto, addr, alen, True, sport, dport), (key,))
            ent = [st, UP, None]
            self.table[key] = ent
            return ent
        rkey = (proto, addr[alen:] + addr[:alen], dport, sport)
        flip = self._client_is_receiver(proto, flags, sport, dport)
        meta = (proto, addr, alen, True, sport, dport)
        if flip:
            meta = (proto, addr, alen, False, dport, sport)
        st = self._new_state(ts, meta, (key, rkey))
        ent = [st, DOWN if flip else UP, None]
        if rkey != key:  # a host talking to itself on one port has one direction only
            self.table[rkey] = [st, UP if flip else DOWN, None]
        self.table[key] = ent
        return ent

    def _open_conn(self, key: tuple, alen: int, flags: int, ts: float) -> list:
        """Burst mode: conn entry [burst key, direction, next seq, last ts, meta, partner]."""
        proto, addr, sport, dport = key
        rkey = (proto, addr[alen:] + addr[:alen], dport, sport)
        flip = self._client_is_receiver(proto, flags, sport, dport)
        if flip:
            bkey = (proto, addr[:alen], sport)
            meta = (proto, addr, alen, False, dport, sport)
        else:
            bkey = (proto, addr[alen:], dport)
            meta = (proto, addr, alen, True, sport, dport)
        ent = [bkey, DOWN if flip else UP, None, ts, meta, None]
        rev = [bkey, UP if flip else DOWN, None, ts, meta, ent]
        ent[5] = rev  # both directions share the idle clock
        self.table[key] = ent
        self.table[rkey] = rev
        return ent
