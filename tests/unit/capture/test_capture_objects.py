"""Traffic objects: biflow direction, flows, idle timeout, service bursts, TCP sequence logic."""

from __future__ import annotations

import pytest
from scapy.layers.inet import IP, TCP, UDP
from scapy.layers.l2 import Ether
from scapy.packet import Raw

from trafficdl.capture import ExtractConfig

C, S, S2 = "10.0.0.1", "31.13.0.1", "31.13.0.2"


def tcp(src, dst, sport, dport, flags="PA", seq=0, data=b"", window=5000):
    pkt = Ether() / IP(src=src, dst=dst) / TCP(sport=sport, dport=dport, flags=flags, seq=seq,
                                               window=window)  # fmt: skip
    return pkt / Raw(data) if data else pkt


def udp(src, dst, sport, dport, data=b"x"):
    return Ether() / IP(src=src, dst=dst) / UDP(sport=sport, dport=dport) / Raw(data)


def test_first_sender_is_client_and_directions(extract_pkts):
    pkts = [
        tcp(C, S, 40000, 443, "S", 100),
        tcp(S, C, 443, 40000, "SA", 900),
        tcp(C, S, 40000, 443, "A", 101),
        tcp(C, S, 40000, 443, "PA", 101, b"abc"),
        tcp(S, C, 443, 40000, "PA", 901, b"defg"),
    ]
    res = extract_pkts(pkts)
    o = res.objects[0]
    assert (o["src"], o["sport"], o["dst"], o["dport"]) == (C, 40000, S, 443)
    assert res.packets[0][:5, 1].tolist() == [1, -1, 1, 1, -1]
    assert bytes(res.payload[0][:7]) == b"abcdefg"
    assert o["encrypted"] == 0


def test_biflow_opened_by_server_side_syn_ack(extract_pkts):
    # capture starts after the SYN: the SYN+ACK's sender is the server
    pkts = [tcp(S, C, 443, 40000, "SA", 900), tcp(C, S, 40000, 443, "A", 101)]
    res = extract_pkts(pkts)
    o = res.objects[0]
    assert (o["src"], o["sport"], o["dst"], o["dport"]) == (C, 40000, S, 443)
    assert res.packets[0][:2, 1].tolist() == [-1, 1]


def test_mid_stream_start_uses_well_known_port(extract_pkts):
    pkts = [udp(S, C, 53, 50000, b"answer"), udp(C, S, 50000, 53, b"q")]
    o = extract_pkts(pkts).objects[0]
    assert (o["src"], o["sport"], o["dst"], o["dport"]) == (C, 50000, S, 53)


def test_pure_syn_sender_is_client_even_from_low_port(extract_pkts):
    pkts = [tcp(C, S, 80, 40000, "S", 1), tcp(S, C, 40000, 80, "SA", 5)]
    o = extract_pkts(pkts).objects[0]
    assert (o["src"], o["sport"]) == (C, 80)


def test_flow_segmentation_splits_directions(extract_pkts):
    pkts = [udp(C, S, 5000, 443, b"up1"), udp(S, C, 443, 5000, b"down"), udp(C, S, 5000, 443)]
    res = extract_pkts(pkts, ExtractConfig(segmentation="flow"))
    assert len(res.objects) == 2
    by_src = {o["src"]: o for o in res.objects}
    assert by_src[C]["n_packets"] == 2 and by_src[S]["n_packets"] == 1
    assert set(res.packets[:, 0, 1].tolist()) == {1.0}


def test_idle_timeout_starts_a_new_biflow(extract_pkts):
    pkts = [udp(C, S, 5000, 443), udp(S, C, 443, 5000), udp(C, S, 5000, 443), udp(C, S, 5000, 443)]
    times = [0.0, 0.5, 10.0, 10.2]
    res = extract_pkts(pkts, ExtractConfig(idle_timeout=5.0), times=times)
    assert res.objects["n_packets"].tolist() == [2, 2]
    assert res.objects["start"].tolist() == [0.0, 10.0]
    assert res.objects["duration"].tolist() == pytest.approx([0.5, 0.2], abs=1e-5)


def test_service_bursts_group_by_server_and_split_on_gap(extract_pkts):
    pkts = [
        udp(C, S, 5000, 443),  # burst A (server S:443), client port 5000
        udp(C, S, 5001, 443),  # same server, another biflow: same burst
        udp(S, C, 443, 5001),
        udp(C, S2, 5002, 443),  # another server: its own burst
        udp(C, S, 5000, 443),  # after a 3 s gap: a new burst for S:443
    ]
    times = [0.0, 0.2, 0.3, 0.4, 3.5]
    res = extract_pkts(pkts, ExtractConfig(segmentation="burst", burst_gap=1.0), times=times)
    got = sorted((o["dst"], o["n_packets"], o["start"]) for o in res.objects)
    assert got == [(S, 1, 3.5), (S, 3, 0.0), (S2, 1, 0.4)]
    first = next(i for i, o in enumerate(res.objects) if o["n_packets"] == 3)
    assert res.packets[first][:3, 1].tolist() == [1, 1, -1]


def test_retransmission_adds_no_payload_but_a_packet_row(extract_pkts):
    pkts = [
        tcp(C, S, 40000, 443, "PA", 1, b"AAAA"),
        tcp(C, S, 40000, 443, "PA", 1, b"AAAA"),  # retransmitted
        tcp(C, S, 40000, 443, "PA", 3, b"AABB"),  # overlaps 2 old bytes
        tcp(C, S, 40000, 443, "PA", 7, b"CC"),
    ]
    res = extract_pkts(pkts)
    assert bytes(res.payload[0][:9]) == b"AAAABBCC\0"
    assert res.objects[0]["n_packets"] == 4
    assert res.packets[0][:4, 0].tolist() == [4, 4, 4, 2]


def test_out_of_window_segment_adds_no_payload(extract_pkts):
    pkts = [
        tcp(C, S, 40000, 443, "PA", 1000, b"good"),
        tcp(C, S, 40000, 443, "PA", 1000 + (1 << 30), b"EVIL"),
        tcp(C, S, 40000, 443, "PA", 1004, b"more"),
    ]
    res = extract_pkts(pkts)
    assert bytes(res.payload[0][:9]) == b"goodmore\0"


def test_sequence_wraparound(extract_pkts):
    pkts = [tcp(C, S, 1, 443, "PA", 0xFFFFFFFE, b"wxyz"), tcp(C, S, 1, 443, "PA", 2, b"!")]
    assert bytes(extract_pkts(pkts).payload[0][:6]) == b"wxyz!\0"


def test_padding_and_truncation_to_nb_and_np(extract_pkts):
    cfg = ExtractConfig(payload_bytes=10, packets=3)
    many = [udp(C, S, 5000, 443, bytes([65 + i]) * 4) for i in range(5)]
    short = [udp(C, S2, 6000, 443, b"xy")]
    res = extract_pkts(many + short, cfg)
    assert res.payload.shape == (2, 10) and res.packets.shape == (2, 3, 4)
    big = int(res.objects["n_packets"].argmax())
    assert bytes(res.payload[big]) == b"AAAABBBBCC"
    assert res.objects[big]["n_packets"] == 5 and res.objects[big]["n_bytes"] == 20
    assert bytes(res.payload[1 - big]) == b"xy" + b"\0" * 8
    assert res.packets[1 - big][1:].tolist() == [[0, 0, 0, 0]] * 2


def test_min_packets_drops_small_objects(extract_pkts):
    pkts = [udp(C, S, 5000, 443), udp(C, S, 5000, 443), udp(C, S2, 6000, 443)]
    res = extract_pkts(pkts, ExtractConfig(min_packets=2))
    assert res.objects["n_packets"].tolist() == [2]


def test_many_flows_are_swept_as_time_advances(extract_pkts):
    # 50 short flows, 10 s apart with a 1 s idle timeout: swept during the walk
    pkts = [udp(C, S, 1000 + i, 443) for i in range(50)]
    res = extract_pkts(pkts, ExtractConfig(idle_timeout=1.0), times=[10.0 * i for i in range(50)])
    assert len(res.objects) == 50
    assert res.objects["start"].tolist() == sorted(res.objects["start"].tolist())


def test_self_talk_on_one_port_is_one_upstream_biflow(extract_pkts):
    pkts = [
        udp("127.0.0.1", "127.0.0.1", 7000, 7000, b"a"),
        udp("127.0.0.1", "127.0.0.1", 7000, 7000),
    ]
    res = extract_pkts(pkts)
    assert res.objects["n_packets"].tolist() == [2]
    assert res.packets[0][:2, 1].tolist() == [1.0, 1.0]
