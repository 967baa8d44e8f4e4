"""Deterministic synthetic app captures: the embedded data of the demo and the tests.

Each app gets a profile (TLS client fingerprint: cipher list, extensions and
SNIs; share of QUIC and DNS flows; request/response sizes; TCP window; pacing)
and `flows_per_app` flows spread over `captures_per_app` pcap files, one
folder per app, as `trafficdl extract` expects. The first two apps, facebook
and messenger, share their TLS fingerprint, window and part of their servers,
like the paper's FB/FBM pair: the task is not trivial, but the rest is easy.
Everything derives from `seed` (profiles from the app index), so the same
call writes byte-identical files.
"""

from __future__ import annotations

import random
import zlib
from dataclasses import dataclass
from pathlib import Path

from trafficdl.capture.appproto import (
    app_data,
    client_hello,
    dns_answer,
    dns_query,
    quic_long,
    server_flight_tls12,
    server_hello,
)
from trafficdl.capture.pktbuild import ACK, FIN, PSH, SYN, tcp_frame, udp_frame, write_pcap
from trafficdl.errors import TrafficdlError

NAMES = ("facebook", "messenger", "instagram", "spotify", "youtube", "whatsapp", "netflix",
         "telegram", "twitter", "maps", "gmail", "tiktok")  # fmt: skip
_GROUPS = (0x001D, 0x0017, 0x0018, 0x0019, 0x0100)
_SIGALGS = (0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601, 0x0201, 0x0203)
_CIPHERS = (0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030, 0xCCA9, 0xCCA8, 0xC013,
            0xC014, 0x009C, 0x009D, 0x002F, 0x0035)  # fmt: skip


class SynthError(TrafficdlError):
    """Invalid synthesis settings."""


@dataclass(frozen=True)
class AppProfile:
    """What makes one app's traffic its own."""

    name: str
    domains: tuple[str, ...]
    domain_weights: tuple[float, ...]
    ciphers: tuple[int, ...]
    alpn: tuple[bytes, ...]
    groups: tuple[int, ...]
    sigalgs: tuple[int, ...]
    session_id: bool
    padding: int
    org: str
    tls12: bool  # server sends a plaintext certificate (TLS 1.2) instead of TLS 1.3
    quic_share: float  # fraction of flows that are QUIC (UDP 443)
    quic_version: int
    quic_dcid: int
    dns_share: float  # fraction of flows that are plain DNS lookups
    req: float  # mean request record size (bytes)
    resp: float  # mean response size (bytes)
    exchanges: tuple[int, int]  # request/response rounds per flow
    window: int  # client TCP window
    rtt: float  # seconds


def _domains(name: str, rng: random.Random) -> tuple[str, ...]:
    subs = ("api", "cdn", "static", "edge", "graph", "media", "push", "i", "upload", "v")
    return tuple(
        f"{s}.{name}{rng.choice(('.com', '.net', 'cdn.net'))}" for s in rng.sample(subs, 4)
    )


def app_profiles(apps: int) -> list[AppProfile]:
    """Profiles of the first `apps` apps (the same for every seed)."""
    out: list[AppProfile] = []
    for i in range(apps):
        name = NAMES[i] if i < len(NAMES) else f"app{i:02d}"
        rng = random.Random(7919 * (i + 1))
        ciphers = tuple(rng.sample(_CIPHERS, rng.randint(5, 12)))
        p = AppProfile(
            name=name,
            domains=_domains(name, rng),
            domain_weights=(1.0, 1.0, 1.0, 1.0),
            ciphers=ciphers,
            alpn=rng.choice(((b"h2", b"http/1.1"), (b"h2",), (b"http/1.1",), (b"h3", b"h2"))),
            groups=tuple(rng.sample(_GROUPS, rng.randint(2, 4))),
            sigalgs=tuple(rng.sample(_SIGALGS, rng.randint(3, 8))),
            session_id=rng.random() < 0.5,
            padding=rng.choice((0, 0, 15, 41, 87, 120)),
            org=f"{name.capitalize()} {rng.choice(('Inc.', 'Ltd', 'LLC', 'AB'))}",
            tls12=rng.random() < 0.7,
            quic_share=rng.choice((0.0, 0.05, 0.1)),
            quic_version=rng.choice((0x00000001, 0xFF00001D, 0x51303530, 0x6B3343CF)),
            quic_dcid=rng.choice((8, 12, 16, 20)),
            dns_share=0.05,
            req=rng.uniform(150, 900),
            resp=rng.uniform(800, 12000),
            exchanges=(1, rng.randint(2, 6)),
            window=rng.choice((65535, 29200, 64240, 42340, 14600, 32768, 8192)),
            rtt=rng.uniform(0.01, 0.12),
        )
        if i == 1:  # messenger: facebook's TLS stack and network, some servers shared
            fb = out[0]
            p = AppProfile(
                **{
                    **p.__dict__,
                    "domains": ("graph.facebook.com", "edge-chat.messenger.com",
                                "mqtt-mini.messenger.com", "edge-mqtt.messenger.com"),
                    "domain_weights": (0.3, 1.0, 1.0, 1.0),
                    "ciphers": fb.ciphers, "alpn": fb.alpn, "groups": fb.groups,
                    "sigalgs": fb.sigalgs, "session_id": fb.session_id, "padding": fb.padding,
                    "org": fb.org, "tls12": fb.tls12,
                    "window": fb.window, "rtt": fb.rtt * 1.15, "quic_share": 0.0,
                    "req": fb.req * 0.7, "resp": fb.resp * 0.6, "exchanges": fb.exchanges,
                },
            )  # fmt: skip
        elif i == 0:
            p = AppProfile(
                **{
                    **p.__dict__,
                    "domains": ("graph.facebook.com", "www.facebook.com",
                                "scontent.xx.fbcdn.net", "static.xx.fbcdn.net"),
                    "domain_weights": (0.3, 1.0, 1.0, 1.0),
                    "org": "Facebook, Inc.", "tls12": True,
                },
            )  # fmt: skip
        out.append(p)
    return out


MSS = 1448
EPOCH = 1_700_000_000.0
CAPTURE_SECONDS = 600.0
RESOLVER = bytes((10, 0, 0, 1))
_SERVER_WINDOWS = (65535, 28960, 65160, 31856, 43690)


def _server_ip(domain: str) -> bytes:
    h = zlib.crc32(domain.encode())
    return bytes((31 + h % 150, (h >> 8) & 0xFF, (h >> 16) & 0xFF, 1 + (h >> 24) % 250))


class FlowWriter:
    """Generates one capture's flows for one app; `frames()` returns them time-ordered."""

    def __init__(self, prof: AppProfile, rng: random.Random, client: bytes) -> None:
        self.p = prof
        self.rng = rng
        self.client = client
        self.macs = (b"\x02\x00" + client, b"\x02\x00\xc0\xa8\x00\x01")
        self.rev_macs = (self.macs[1], self.macs[0])
        self._frames: list[tuple[float, int, bytes]] = []
        self._ident = rng.randrange(65536)

    def frames(self) -> list[tuple[float, bytes]]:
        self._frames.sort(key=lambda x: (x[0], x[1]))
        return [(t, f) for t, _, f in self._frames]

    def _emit(self, t: float, frame: bytes) -> None:
        self._frames.append((t, len(self._frames), frame))
        self._ident += 1

    def _size(self, mean: float) -> int:
        return max(16, int(self.rng.lognormvariate(0, 0.35) * mean))

    def add_flow(self) -> None:
        p, rng = self.p, self.rng
        t0 = EPOCH + rng.uniform(0, CAPTURE_SECONDS)
        domain = rng.choices(p.domains, weights=p.domain_weights)[0]
        r = rng.random()
        if r < p.dns_share:
            self._dns(t0, domain)
        elif r < p.dns_share + p.quic_share:
            self._quic(t0, domain)
        else:
            self._tls(t0, domain)

    # ------------------------------------------------------------- flows
    def _dns(self, t: float, domain: str) -> None:
        sport = self.rng.randint(32768, 60999)
        q = dns_query(domain, self.rng.randrange(65536))
        a = dns_answer(q, _server_ip(domain))
        self._emit(t, udp_frame(self.macs, self.client, RESOLVER, sport, 53, q, self._ident))
        t += self.rng.uniform(0.005, 0.03)
        self._emit(t, udp_frame(self.rev_macs, RESOLVER, self.client, 53, sport, a, self._ident))

    def _quic(self, t: float, domain: str) -> None:
        p, rng = self.p, self.rng
        srv, sport, rtt = _server_ip(domain), rng.randint(32768, 60999), p.rtt
        dcid = rng.randbytes(p.quic_dcid)

        def up(t: float, data: bytes) -> None:
            self._emit(t, udp_frame(self.macs, self.client, srv, sport, 443, data, self._ident))

        def down(t: float, data: bytes) -> None:
            self._emit(t, udp_frame(self.rev_macs, srv, self.client, 443, sport, data, self._ident))

        up(t, quic_long(p, dcid, 1200 + rng.randrange(0, 52), rng, 0))
        t += rtt
        down(t, quic_long(p, rng.randbytes(8), 1200, rng, 0))
        down(t + 0.0004, quic_long(p, rng.randbytes(8), rng.randint(300, 1100), rng, 2))
        t += 0.002
        up(t, quic_long(p, dcid, rng.randint(80, 120), rng, 2))
        for _ in range(rng.randint(*p.exchanges)):
            t += rng.expovariate(1 / (rtt * 4))
            up(t, bytes([0x40 | rng.randrange(64)]) + dcid[:8] + rng.randbytes(self._size(p.req)))
            t += rtt
            left = self._size(p.resp)
            while left > 0:
                n = min(left, 1350)
                down(t, bytes([0x40 | rng.randrange(64)]) + rng.randbytes(8 + n))
                left -= n
                t += rng.uniform(0.0002, 0.001)

    def _tls(self, t: float, domain: str) -> None:
        p, rng = self.p, self.rng
        srv, sport = _server_ip(domain), rng.randint(32768, 60999)
        rtt = p.rtt * rng.uniform(0.8, 1.3)
        swin = _SERVER_WINDOWS[zlib.crc32(domain.encode()) % len(_SERVER_WINDOWS)]
        seq = [rng.getrandbits(32), rng.getrandbits(32)]  # client, server next byte

        def send(t: float, up: bool, flags: int, data: bytes = b"") -> None:
            i = 0 if up else 1
            macs, a, b = (self.macs, self.client, srv) if up else (self.rev_macs, srv, self.client)
            ports = (sport, 443) if up else (443, sport)
            frame = tcp_frame(macs, a, b, *ports, seq[i], seq[1 - i], flags,
                              p.window if up else swin, data, self._ident)  # fmt: skip
            self._emit(t, frame)
            seq[i] = (seq[i] + len(data) + (1 if flags & (SYN | FIN) else 0)) & 0xFFFFFFFF

        def stream(t: float, up: bool, data: bytes) -> float:
            for off in range(0, len(data), MSS):
                seg = data[off : off + MSS]
                if not up and rng.random() < 0.02:  # a retransmission, seen twice
                    i = seq[1]
                    send(t, up, PSH | ACK, seg)
                    seq[1] = i
                    t += rtt
                send(t, up, PSH | ACK, seg)
                t += rng.uniform(0.0002, 0.0012)
            return t

        send(t, True, SYN)
        seq[1] = seq[1]
        send(t + rtt, False, SYN | ACK)
        t += rtt + 0.0003
        send(t, True, ACK)
        t = stream(t + 0.0002, True, client_hello(p, domain, rng))
        if p.tls12:
            flight = server_flight_tls12(p, domain, rng)
        else:
            flight = server_hello(rng) + app_data(rng.randint(2000, 4000), rng)
        t = stream(t + rtt, False, flight)
        send(t, True, ACK)
        t = stream(t + 0.001, True, app_data(rng.choice((53, 74)), rng))
        for _ in range(rng.randint(*p.exchanges)):
            t = stream(t + rng.expovariate(1 / (rtt * 4)), True, app_data(self._size(p.req), rng))
            t = stream(t + rtt, False, app_data(self._size(p.resp), rng))
            send(t + 0.0005, True, ACK)
        t += rng.expovariate(1 / (rtt * 8))
        send(t, True, FIN | ACK)
        send(t + rtt, False, FIN | ACK)
        send(t + rtt + 0.0003, True, ACK)


def synthesize(
    out_dir: str | Path,
    apps: int = 5,
    flows_per_app: int = 200,
    seed: int = 0,
    captures_per_app: int = 2,
) -> list[Path]:
    """Write `apps` folders of pcaps under out_dir; return the capture paths written."""
    if not 1 <= apps <= 100:
        raise SynthError("apps must be between 1 and 100")
    if flows_per_app < 1 or captures_per_app < 1:
        raise SynthError("flows per app and captures per app must be >= 1")
    root = Path(out_dir)
    written: list[Path] = []
    for ai, prof in enumerate(app_profiles(apps)):
        folder = root / prof.name
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SynthError(f"{folder}: cannot create ({exc.strerror or exc})") from exc
        counts = [flows_per_app // captures_per_app] * captures_per_app
        for c in range(flows_per_app % captures_per_app):
            counts[c] += 1
        for ci, count in enumerate(counts):
            if count == 0:
                continue
            rng = random.Random(f"{seed}/{ai}/{ci}")
            writer = FlowWriter(prof, rng, client=bytes((10, ai % 250, ci % 250, 2)))
            for _ in range(count):
                writer.add_flow()
            path = folder / f"{prof.name}-{ci:02d}.pcap"
            with open(path, "wb") as f:
                write_pcap(f, writer.frames())
            written.append(path)
    return written


__all__ = ["AppProfile", "FlowWriter", "SynthError", "app_profiles", "synthesize"]
