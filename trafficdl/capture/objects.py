"""The object table of the walk: opening, ending and finishing traffic objects.

Kept apart from the per-packet loop (trafficdl.capture.walk) so that loop
stays one readable screen of decoding; everything here runs once per object
(or once per TCP FIN/RST), never per ordinary packet.

An object's state is a plain list (indexed by the constants below) because the
loop touches it for every packet and list indexing is the cheapest mutable
record in CPython. Boundaries (see ExtractConfig): idle timeout, active
timeout, and TCP close: after both FINs (one in flow mode) or an RST, a SYN on
the same 5-tuple starts a new object.
"""

from __future__ import annotations

import socket
from dataclasses import dataclass, field

from trafficdl.capture.config import ExtractConfig
from trafficdl.capture.encryption import classify_object
from trafficdl.features import DOWN, UP, FeatureSink

# Object state (a list for speed): indices
_FIRST, _LAST, _NPK, _NBYTES, _PAY, _ROWS, _META, _OPEN, _HEADS, _KEYS, _TUN, _CLOSE = range(12)
CLOSED = 8  # _CLOSE bit: both FINs or an RST seen; a SYN now starts a new object

# A tunnelled packet's record, as the walk builds it (no call, no string per packet): a
# chain (inner, kind, tunnel id, key id, outer IP addresses, their length), innermost
# last, the outer chain first. None for a plain packet. `resolve` flattens it per object.
Chain = tuple | None
# (kinds "a+b" outermost first, outermost IP endpoints, their length, innermost tunnel
# id, ids both directions share)
Tunnel = tuple[str, bytes, int, int, tuple[int, ...]]


@dataclass
class WalkStats:
    """What the walk saw besides objects; reported per capture."""

    packets: int = 0
    non_ip: int = 0  # ARP, LLDP, unknown ethertypes or link types, GTP-U signalling
    other_l4: int = 0  # IP packets that are neither TCP nor UDP (ICMP, ...)
    fragments: int = 0  # non-first IPv4/IPv6 fragments
    malformed: int = 0  # headers cut short or inconsistent
    tso: int = 0  # IP total length 0 (segmentation offload): length taken from the frame
    tunnelled: int = 0  # packets decapsulated from a tunnel or PPPoE session
    unknown_links: set[int] = field(default_factory=set)

    def as_dict(self) -> dict:
        d = {k: v for k, v in self.__dict__.items() if k != "unknown_links"}
        d["unknown_links"] = sorted(self.unknown_links)
        return d


def resolve(chain: Chain) -> Tunnel | None:
    """A walk's tunnel chain as one record; the outermost IP endpoints are the ones kept."""
    if chain is None:
        return None
    if chain[0] is None:  # one level, the usual case
        _, kind, tid, kid, oaddr, oalen = chain
        if isinstance(tid, bytes):
            tid = int.from_bytes(tid, "big")
        return kind, oaddr, oalen, tid, (kid,)
    links: list[tuple] = []
    while chain is not None:
        links.append(chain[1:])
        chain = chain[0]
    links.reverse()  # outermost first
    oaddr, oalen = next(((a, n) for *_, a, n in links if n), (b"", 0))
    kinds = "+".join(link[0] for link in links)
    tid = links[-1][1]
    if isinstance(tid, bytes):  # the walk's inline GTP-U path keeps the TEID's bytes
        tid = int.from_bytes(tid, "big")
    return kinds, oaddr, oalen, tid, tuple(link[2] for link in links)


def full_chain(chain: Chain | int, data: bytes, outer: bytes | None) -> Chain:
    """The walk's chain made whole: its inline GTP-U path leaves the outermost link as
    the GTP header's offset in `data` (outer IPv4/IPv6 addresses: `outer`; None: those
    of an IPv4 header without options right before the UDP header), so that a
    tunnelled packet allocates nothing for it; objects open rarely, packets often."""
    if chain is None or (chain.__class__ is tuple and chain[0] is None):
        return chain  # type: ignore[return-value]
    if chain.__class__ is int:
        teid = int.from_bytes(data[chain + 4 : chain + 8], "big")  # type: ignore[operator]
        if outer is None:
            outer = data[chain - 16 : chain - 8]  # type: ignore[operator]
        return (None, "gtp", teid, 0, outer, len(outer) >> 1)
    return (full_chain(chain[0], data, outer), *chain[1:])  # type: ignore[index]


def key_ids(chain: Chain) -> tuple[int, ...]:
    """The ids of a chain that both directions share, outermost first (tunnel_key)."""
    ids: list[int] = []
    while chain is not None:
        ids.append(chain[3])
        chain = chain[0]
    return tuple(reversed(ids))


def _addr_text(addr: bytes, alen: int, first: bool) -> str:
    if not alen:
        return ""
    raw = addr[:alen] if first else addr[alen:]
    return socket.inet_ntop(socket.AF_INET if alen == 4 else socket.AF_INET6, raw)


def client_is_receiver(proto: int, flags: int, sport: int, dport: int) -> bool:
    """Mid-connection start: this first packet was sent by the server."""
    if proto == 6:
        if flags & 0x12 == 0x12:  # SYN+ACK
            return True
        if flags & 0x02:  # a pure SYN is always the client's
            return False
    return sport < 1024 <= dport


class ObjectTable:
    """Open objects by directional key; finished ones land in `sink` (a FeatureSink)."""

    def __init__(self, cfg: ExtractConfig, capture_index: int = 0) -> None:
        self.cfg = cfg
        self.capture = capture_index
        self.sink = FeatureSink(cfg.payload_bytes, cfg.packets)
        self.stats = WalkStats()
        self.table: dict[tuple, list] = {}  # directional 5-tuple -> entry
        self.bursts: dict[tuple, list] = {}  # burst mode: (proto, server, port) -> state
        self.next_sweep = float("-inf")

    @staticmethod
    def _new_state(ts: float, meta: tuple, keys: tuple, tun: Chain) -> list:
        return [ts, ts, 0, 0, bytearray(), [], meta, True, [None, None], keys, tun, 0]

    def _finish(self, st: list) -> None:
        cfg = self.cfg
        if st[_NPK] < cfg.min_packets or st[_NBYTES] < cfg.min_payload:
            return
        proto, addr, alen, client_first, cport, sport = st[_META]
        heads = st[_HEADS]
        kinds, oaddr, oalen, tid, _ = resolve(st[_TUN]) or ("", b"", 0, 0, ())
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
            kinds,
            _addr_text(oaddr, oalen, client_first),
            _addr_text(oaddr, oalen, not client_first),
            tid,
        )
        self.sink.add(st[_PAY], st[_ROWS], record)

    def _drop_state(self, st: list) -> None:
        for k in st[_KEYS]:
            self.table.pop(k, None)

    def _end(self, st: list) -> None:
        self._finish(st)
        self._drop_state(st)

    def tcp_end(self, st: list, d: float, flags: int) -> None:
        """A FIN or RST of an object: mark it closed once the connection is over."""
        bits = st[_CLOSE] | (CLOSED | 4 if flags & 4 else 1 if d > 0 else 2)
        if bits & 3 == 3 or self.cfg.segmentation == "flow":
            bits |= CLOSED
        st[_CLOSE] = bits

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
            self._end(st)

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

    def _open(self, key: tuple, alen: int, flags: int, ts: float, tun: Chain) -> list:
        """A new (bi)flow for `key` = (proto, addresses, sport, dport[, tunnel key ids])."""
        proto, addr, sport, dport = key[:4]
        if self.cfg.segmentation == "flow":
            st = self._new_state(ts, (proto, addr, alen, True, sport, dport), (key,), tun)
            ent = [st, UP, None]
            self.table[key] = ent
            return ent
        rkey = (proto, addr[alen:] + addr[:alen], dport, sport, *key[4:])
        flip = client_is_receiver(proto, flags, sport, dport)
        meta = (proto, addr, alen, True, sport, dport)
        if flip:
            meta = (proto, addr, alen, False, dport, sport)
        st = self._new_state(ts, meta, (key, rkey), tun)
        ent = [st, DOWN if flip else UP, None]
        if rkey != key:  # a host talking to itself on one port has one direction only
            self.table[rkey] = [st, UP if flip else DOWN, None]
        self.table[key] = ent
        return ent

    def _open_conn(self, key: tuple, alen: int, flags: int, ts: float) -> list:
        """Burst mode: conn entry [burst key, direction, next seq, last ts, meta, partner]."""
        proto, addr, sport, dport = key[:4]
        rkey = (proto, addr[alen:] + addr[:alen], dport, sport, *key[4:])
        flip = client_is_receiver(proto, flags, sport, dport)
        if flip:
            bkey = (proto, addr[:alen], sport, *key[4:])
            meta = (proto, addr, alen, False, dport, sport)
        else:
            bkey = (proto, addr[alen:], dport, *key[4:])
            meta = (proto, addr, alen, True, sport, dport)
        ent = [bkey, DOWN if flip else UP, None, ts, meta, None]
        rev = [bkey, UP if flip else DOWN, None, ts, meta, ent]
        ent[5] = rev  # both directions share the idle clock
        self.table[key] = ent
        self.table[rkey] = rev
        return ent
