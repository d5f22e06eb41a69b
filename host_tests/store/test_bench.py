"""Write-cost benchmark for a 16-bond BTstack workload (bytes written, measured by the shim).

Prints bytes written per operation class and checks the targets: amortised bytes
written per store <= 2 x the record (16-byte record overhead + value), and the main
file never larger than 2 x live data + header.  Results go to build/host_store/bench.txt.
"""

from __future__ import annotations

from collections import defaultdict

from tlvstore_harness import BUILD_DIR, MAIN, Lib, Store, tag

BTD = [tag("BTD", i) for i in range(16)]


def dev(i: int, n: int) -> bytes:
    return bytes([i, n & 0xFF]) + bytes((i * 7 + n * 13 + k) & 0xFF for k in range(58))


def test_sixteen_bond_write_cost(mem: Lib) -> None:
    s = Store(mem)
    assert s.load()[0] == 0
    cost: dict[str, list[int]] = defaultdict(list)
    record: dict[str, list[int]] = defaultdict(list)
    max_ratio = 0.0

    def op(kind: str, fn, rec_len: int = 0) -> None:  # type: ignore[no-untyped-def]
        nonlocal max_ratio
        w = mem.stats.bytes_written
        assert fn() == 0
        cost[kind].append(mem.stats.bytes_written - w)
        record[kind].append(rec_len)
        main = mem.mem_get(MAIN) or b""
        live = sum(8 + 16 + len(v) for v in s.items().values())
        assert len(main) <= 24 + 2 * live or (not live and len(main) <= 24)
        if live:
            max_ratio = max(max_ratio, (len(main) - 24) / live)

    op("store new (SMER/SMIR 16 B)", lambda: s.store(tag("SMER"), bytes(16)), 32)
    op("store new (SMER/SMIR 16 B)", lambda: s.store(tag("SMIR"), bytes(range(16))), 32)
    for i in range(16):
        op("store new (BTD 60 B)", lambda i=i: s.store(BTD[i], dev(i, 0)), 76)  # add
        op("replace (BTD 60 B)", lambda i=i: s.store(BTD[i], dev(i, 1)), 76)  # encryption_set
    for i in range(20):
        op("store new (BTC 8 B)", lambda i=i: s.store(tag("BTC", i), bytes([i]) * 8), 24)
    for n in range(200):
        i = (n * 7) % 16
        op("replace (BTD 60 B)", lambda i=i, n=n: s.store(BTD[i], dev(i, n + 2)), 76)
        if n % 10 == 0:
            j = n % 20
            op("replace (BTC 8 B)", lambda j=j, n=n: s.store(tag("BTC", j), bytes([n]) * 8), 24)
    for i in range(12):
        op("delete (BTD)", lambda i=i: s.delete(BTD[i]), 76)
    op("clear (compaction)", s.clear)

    lines = ["bond store write cost (16-bond scenario, bytes written incl. compactions):"]
    total_store_bytes = total_store_rec = 0
    for kind, costs in cost.items():
        avg = sum(costs) / len(costs)
        rec = sum(record[kind]) / len(record[kind])
        ratio = f", {avg / rec:.2f}x record" if rec else ""
        lines.append(f"  {kind:<28} n={len(costs):<4} avg={avg:7.1f} max={max(costs):5d}{ratio}")
        if kind.startswith(("store", "replace")):
            total_store_bytes += sum(costs)
            total_store_rec += sum(record[kind])
    amortised = total_store_bytes / total_store_rec
    lines.append(f"  amortised store/replace cost: {amortised:.2f}x record bytes")
    lines.append(f"  max (file - header) / live data: {max_ratio:.2f}")
    lines.append(f"  compactions: {mem.stats.creates // 2}")
    text = "\n".join(lines)
    print("\n" + text)
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    (BUILD_DIR / "bench.txt").write_text(text + "\n")
    assert amortised <= 2.0
    assert max_ratio <= 2.0
