// Coverage-guided, deterministic fuzzer for the mp_tlvstore loader (gcc only).
//
// Built by test_fuzz.py with -fsanitize=address,undefined; mp_tlvstore.c is
// additionally built with -fsanitize-coverage=trace-pc and this file supplies
// __sanitizer_cov_trace_pc(), so inputs that reach new code edges are kept in
// the corpus (a small AFL-style loop: no clang/libFuzzer needed).
//
// An input is both store files: [flags:u8][main_len:u16le][main][side]
//   flags bit0: main exists, bit1: side exists, bit2: io without truncate,
//   bit3: short reads, bit4: read-only filesystem, bit5: one read fails.
// Seeds are real store files produced by the core itself.  Mutations are
// byte-level (flip, set, insert, delete, copy, truncate, splice) plus
// structure-aware ones that forge slot headers, records, main/side headers
// with correct CRC-32 so the fuzzer gets past the integrity checks.
//
// Oracle per input: no sanitizer report; load returns a documented code;
// iterator/get agree; a protected store never writes; an operational store
// converges (a second load reports nothing and sees the same entries), no
// side file survives, and it accepts a store + delete that survive reload.
//
// Usage: fuzz_loader EXECS SEED [SECONDS]   (SECONDS > 0: run for that long)
// Prints "execs=N corpus=N edges=N crashes=0"; exits 1 on the first failure
// after writing the input to fuzz-crash.bin.

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "shim.h"

#define MAP_SIZE (1 << 16)
#define MAX_INPUT 4096
#define MAX_CORPUS 2048

static uint8_t cov_map[MAP_SIZE];
static uint8_t seen_map[MAP_SIZE];
static uintptr_t prev_pc;

void __sanitizer_cov_trace_pc(void);
void __sanitizer_cov_trace_pc(void) {
    uintptr_t pc = (uintptr_t)__builtin_return_address(0);
    cov_map[((pc >> 1) ^ prev_pc) & (MAP_SIZE - 1)] = 1;
    prev_pc = pc << 1;
}

typedef struct {
    uint8_t *data;
    size_t len;
} input_t;

static input_t corpus[MAX_CORPUS];
static int corpus_n;
static uint64_t rng_s;

static uint32_t rnd(void) {
    rng_s ^= rng_s << 13;
    rng_s ^= rng_s >> 7;
    rng_s ^= rng_s << 17;
    return (uint32_t)(rng_s >> 11);
}

static uint32_t below(uint32_t n) {
    return n ? rnd() % n : 0;
}

static mp_tlvstore_t store;
static mp_tlvstore_t store2;

static void fail(const char *why, const uint8_t *in, size_t len) {
    FILE *f = fopen("fuzz-crash.bin", "wb");
    if (f != NULL) {
        fwrite(in, 1, len, f);
        fclose(f);
    }
    fprintf(stderr, "FUZZ FAILURE: %s (input %zu bytes saved to fuzz-crash.bin)\n", why, len);
    exit(1);
}

static void put_files(const uint8_t *in, size_t len) {
    shim_mem_reset();
    if (len < 3) {
        return;
    }
    uint8_t flags = in[0];
    size_t mlen = (size_t)(in[1] | (in[2] << 8));
    if (mlen > len - 3) {
        mlen = len - 3;
    }
    if (flags & 1) {
        shim_mem_set_file(0, in + 3, (int)mlen);
    }
    if (flags & 2) {
        shim_mem_set_file(1, in + 3 + mlen, (int)(len - 3 - mlen));
    }
    shim_mem_fault.short_reads = (flags & 8) != 0;
    shim_mem_fault.rofs = (flags & 16) != 0;
    if (flags & 32) {
        // Fail one read, chosen by the input.
        shim_mem_fault.fail_read_at = (int64_t)(len % 23);
    }
}

static const mp_tlvstore_io_t *io_for(const uint8_t *in, size_t len) {
    return len > 0 && (in[0] & 4) ? &shim_mem_io_notrunc : &shim_mem_io;
}

static int same_entries(const mp_tlvstore_t *a, const mp_tlvstore_t *b) {
    if (mp_tlvstore_count(a) != mp_tlvstore_count(b)) {
        return 0;
    }
    mp_tlvstore_iter_t it;
    mp_tlvstore_iter_init(&it);
    uint32_t tag;
    const uint8_t *v;
    size_t n;
    uint8_t buf[256];
    while (mp_tlvstore_iter_next(a, &it, &tag, &v, &n)) {
        int r = mp_tlvstore_get(b, tag, buf, sizeof(buf));
        if (r < 0 || (size_t)r != n || memcmp(buf, v, n) != 0) {
            return 0;
        }
    }
    return 1;
}

static void run_one(const uint8_t *in, size_t len) {
    put_files(in, len);
    const mp_tlvstore_io_t *io = io_for(in, len);
    static uint8_t before_main[1 << 16], before_side[1 << 16];
    int bm = shim_mem_get_file(0, before_main, sizeof(before_main));
    int bs = shim_mem_get_file(1, before_side, sizeof(before_side));

    mp_tlvstore_init(&store, io, NULL);
    mp_tlvstore_load_result_t res;
    int rc = mp_tlvstore_load(&store, &res);
    int mode = mp_tlvstore_mode(&store);
    if (!(rc == 0 || rc == MP_TLVSTORE_ERR_FULL || rc == MP_TLVSTORE_ERR_VERSION
          || ((in[0] & 48) && rc <= MP_TLVSTORE_ERR_IO))) {
        fail("unexpected load return code", in, len);
    }
    if ((rc == 0) != (mode == MP_TLVSTORE_MODE_OK)) {
        fail("return code and mode disagree", in, len);
    }
    if (res.entries != mp_tlvstore_count(&store)) {
        fail("result entries != count", in, len);
    }
    // Iterator and get() agree; sizes within limits.
    mp_tlvstore_iter_t it;
    mp_tlvstore_iter_init(&it);
    uint32_t tag;
    const uint8_t *v;
    size_t n;
    size_t count = 0;
    uint8_t buf[256];
    while (mp_tlvstore_iter_next(&store, &it, &tag, &v, &n)) {
        ++count;
        if (n > MP_TLVSTORE_MAX_VALUE || mp_tlvstore_get(&store, tag, buf, sizeof(buf)) != (int)n
            || memcmp(buf, v, n) != 0) {
            fail("iterator/get mismatch", in, len);
        }
    }
    if (count != mp_tlvstore_count(&store)) {
        fail("iterator count", in, len);
    }

    if (len > 0 && (in[0] & 48)) {
        // Read-only fs or a read error: no write may succeed, nothing else to
        // check beyond consistency of what was loaded.
        if (mode == MP_TLVSTORE_MODE_OK && (in[0] & 16) && (res.flags & MP_TLVSTORE_LOAD_REPAIRED)) {
            fail("repair reported on read-only fs", in, len);
        }
        return;
    }
    if (mode == MP_TLVSTORE_MODE_PROTECTED && !(res.flags & MP_TLVSTORE_LOAD_SIDE_REPLAYED)) {
        // Protected stores never touch the files (completing an interrupted
        // compaction first is fine: it loses nothing).
        mp_tlvstore_store(&store, 0x42544401, (const uint8_t *)"x", 1);
        mp_tlvstore_clear(&store);
        static uint8_t m2[1 << 16], s2[1 << 16];
        int am = shim_mem_get_file(0, m2, sizeof(m2));
        int as = shim_mem_get_file(1, s2, sizeof(s2));
        if (am != bm || as != bs || (am > 0 && memcmp(m2, before_main, (size_t)am) != 0)
            || (as > 0 && memcmp(s2, before_side, (size_t)as) != 0)) {
            fail("protected store modified the files", in, len);
        }
        return;
    }
    if (mode == MP_TLVSTORE_MODE_PROTECTED) {
        return;
    }

    // Operational: recovery converged.
    if (shim_mem_get_file(1, NULL, 0) >= 0) {
        fail("side file survived load", in, len);
    }
    mp_tlvstore_init(&store2, io, NULL);
    rc = mp_tlvstore_load(&store2, &res);
    if (rc != 0 || (res.flags & ~(uint32_t)MP_TLVSTORE_LOAD_NO_FILE) != 0) {
        fail("second load not clean", in, len);
    }
    if (!same_entries(&store, &store2) || !same_entries(&store2, &store)) {
        fail("second load differs", in, len);
    }
    // Keeps working: mutate and reload.
    static const uint8_t val[60] = {1, 2, 3};
    rc = mp_tlvstore_store(&store, 0x42544403, val, sizeof(val));
    if (rc != 0 && rc != MP_TLVSTORE_ERR_FULL) {
        fail("store after load failed", in, len);
    }
    if (mp_tlvstore_count(&store) > 0) {
        mp_tlvstore_iter_init(&it);
        mp_tlvstore_iter_next(&store, &it, &tag, &v, &n);
        if (mp_tlvstore_delete(&store, tag) != 0) {
            fail("delete after load failed", in, len);
        }
    }
    mp_tlvstore_init(&store2, io, NULL);
    rc = mp_tlvstore_load(&store2, &res);
    if (rc != 0 || res.flags != 0 || !same_entries(&store, &store2) || !same_entries(&store2, &store)) {
        fail("state after mutation not durable", in, len);
    }
}

/******************************************************************************/
// Mutations.

static void le16(uint8_t *p, uint16_t v) {
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

static void le32(uint8_t *p, uint32_t v) {
    le16(p, (uint16_t)v);
    le16(p + 2, (uint16_t)(v >> 16));
}

static size_t mutate(uint8_t *d, size_t len, size_t cap) {
    int rounds = 1 + (int)below(4);
    for (int r = 0; r < rounds; ++r) {
        size_t mlen = len >= 3 ? (size_t)(d[1] | (d[2] << 8)) : 0;
        if (mlen > len - 3) {
            mlen = len >= 3 ? len - 3 : 0;
        }
        uint32_t pos = len ? below((uint32_t)len) : 0;
        switch (below(14)) {
            case 0:
                if (len) {
                    d[pos] ^= (uint8_t)(1u << below(8));
                }
                break;
            case 1: {
                static const uint8_t interesting[] = {0, 1, 0xff, 0xa5, 0x10, 0x1a, 0x80, 0x7f};
                if (len) {
                    d[pos] = interesting[below(sizeof(interesting))];
                }
                break;
            }
            case 2:
                if (len) {
                    d[pos] = (uint8_t)rnd();
                }
                break;
            case 3: { // insert bytes
                uint32_t n = 1 + below(16);
                if (len + n <= cap) {
                    memmove(d + pos + n, d + pos, len - pos);
                    for (uint32_t i = 0; i < n; ++i) {
                        d[pos + i] = (uint8_t)rnd();
                    }
                    len += n;
                }
                break;
            }
            case 4: { // delete bytes
                uint32_t n = 1 + below(32);
                if (pos + n <= len) {
                    memmove(d + pos, d + pos + n, len - pos - n);
                    len -= n;
                }
                break;
            }
            case 5: // truncate
                len = pos;
                break;
            case 6: { // copy a chunk within the input
                uint32_t n = 1 + below(64);
                uint32_t src = len ? below((uint32_t)len) : 0;
                if (src + n <= len && pos + n <= len) {
                    memmove(d + pos, d + src, n);
                }
                break;
            }
            case 7: { // splice with another corpus entry
                const input_t *o = &corpus[below((uint32_t)corpus_n)];
                uint32_t at = o->len ? below((uint32_t)o->len) : 0;
                if (pos + (o->len - at) <= cap) {
                    memcpy(d + pos, o->data + at, o->len - at);
                    len = pos + (o->len - at);
                }
                break;
            }
            case 8: // toggle flags (I/O faults less often)
                if (len) {
                    d[0] ^= (uint8_t)(1u << (below(4) ? below(4) : 4 + below(2)));
                }
                break;
            case 9: { // forge a slot header in main
                if (mlen >= 8) {
                    uint8_t *p = d + 3 + below((uint32_t)(mlen - 7));
                    p[0] = 0xa5;
                    p[1] = 0;
                    le16(p + 2, (uint16_t)(below(3) ? 16 + below(256) : rnd()));
                    le32(p + 4, mp_tlvstore_crc32(0, p, 4));
                }
                break;
            }
            case 10: { // forge a record with a valid CRC in main
                if (mlen >= 16) {
                    uint32_t off = below((uint32_t)(mlen - 15));
                    uint32_t room = (uint32_t)mlen - off - 16;
                    uint16_t vlen = (uint16_t)(below(4) ? below(room + 1 < 256 ? room + 1 : 256) : rnd());
                    if (16u + vlen <= mlen - off) {
                        uint8_t *p = d + 3 + off;
                        p[0] = below(8) ? 1 : (uint8_t)rnd();
                        p[1] = below(8) ? 0 : (uint8_t)rnd();
                        le16(p + 2, vlen);
                        le32(p + 4, 0x42544400 | below(20));
                        le32(p + 8, below(4) ? below(64) : rnd());
                        le32(p + 12 + vlen, mp_tlvstore_crc32(0, p, 12 + (size_t)vlen));
                    }
                }
                break;
            }
            case 11: { // fix or forge the main header
                if (mlen >= 24) {
                    uint8_t *p = d + 3;
                    memcpy(p, "MPTLVDB\x1a", 8);
                    if (below(4) == 0) {
                        le16(p + 8, (uint16_t)below(3));
                    }
                    if (below(2) == 0) {
                        le32(p + 12, below(5));
                    }
                    le32(p + 20, mp_tlvstore_crc32(0, p, 20));
                }
                break;
            }
            case 12: { // rebuild the side file as a valid snapshot of (mutated) main
                if (mlen >= 24 && 3 + mlen + 32 + mlen <= cap) {
                    uint8_t *m = d + 3;
                    uint8_t *p = d + 3 + mlen;
                    uint32_t gen = below(6);
                    memcpy(m, "MPTLVDB\x1a", 8);
                    le16(m + 8, 1);
                    le16(m + 10, 24);
                    le32(m + 12, gen);
                    le32(m + 20, mp_tlvstore_crc32(0, m, 20));
                    memcpy(p, "MPTLVSN\x1a", 8);
                    le16(p + 8, 1);
                    le16(p + 10, 32);
                    le32(p + 12, gen);
                    le32(p + 16, (uint32_t)mlen);
                    memcpy(p + 32, m, mlen);
                    le32(p + 20, mp_tlvstore_crc32(0, p + 32, mlen));
                    le32(p + 24, 0);
                    le32(p + 28, mp_tlvstore_crc32(0, p, 28));
                    if (below(2)) {
                        // Make main older or damaged so the side file wins.
                        le32(m + 12, gen - 1);
                        m[below(24)] ^= below(2) ? 0x40 : 0;
                    }
                    len = 3 + mlen + 32 + mlen;
                    d[0] |= 2;
                }
                break;
            }
            default: { // change the main/side split
                if (len >= 3) {
                    le16(d + 1, (uint16_t)below((uint32_t)len));
                }
                break;
            }
        }
    }
    return len;
}

/******************************************************************************/
// Seeds: real files written by the core.

static void add_corpus(const uint8_t *d, size_t len) {
    if (corpus_n >= MAX_CORPUS) {
        free(corpus[corpus_n - 1].data);
        corpus_n -= 1;
    }
    corpus[corpus_n].data = malloc(len ? len : 1);
    memcpy(corpus[corpus_n].data, d, len);
    corpus[corpus_n].len = len;
    corpus_n += 1;
}

static void add_seed_from_files(uint8_t flags) {
    static uint8_t buf[MAX_INPUT];
    int ml = shim_mem_get_file(0, buf + 3, MAX_INPUT - 3);
    if (ml < 0 || ml > MAX_INPUT - 3) {
        return;
    }
    int sl = shim_mem_get_file(1, buf + 3 + ml, (uint32_t)(MAX_INPUT - 3 - ml));
    buf[0] = (uint8_t)(flags | 1 | (sl >= 0 ? 2 : 0));
    le16(buf + 1, (uint16_t)ml);
    size_t len = 3 + (size_t)ml + (size_t)(sl > 0 ? sl : 0);
    if (len <= MAX_INPUT) {
        add_corpus(buf, len);
    }
}

static void make_seeds(void) {
    shim_mem_reset();
    mp_tlvstore_init(&store, &shim_mem_io, NULL);
    mp_tlvstore_load(&store, NULL);
    uint8_t v[100];
    for (int i = 0; i < 40; ++i) {
        memset(v, i + 1, sizeof(v));
        uint32_t tag = i < 2 ? (i ? 0x534d4952 : 0x534d4552) : 0x42544400 | (uint32_t)(i % 16);
        size_t n = i < 2 ? 16 : (i % 5 == 0 ? 8 : 60);
        mp_tlvstore_store(&store, tag, v, n);
        if (i % 7 == 3) {
            mp_tlvstore_delete(&store, 0x42544400 | (uint32_t)((i * 3) % 16));
        }
        if (i % 4 == 0) {
            add_seed_from_files((uint8_t)(i % 8 == 0 ? 4 : 0));
        }
    }
    // A torn compaction: side file present, main half rewritten.
    shim_mem_fault.cut_at = (int64_t)shim_mem_stats.points + 900;
    mp_tlvstore_clear(&store);
    shim_mem_power_on();
    add_seed_from_files(0);
    uint8_t empty[3] = {0, 0, 0};
    add_corpus(empty, 3);
    // Synthetic files that reach capacity paths: many free slots, more
    // entries than MP_TLVSTORE_MAX_ENTRIES, exhausted sequence numbers.
    static uint8_t f[MAX_INPUT];
    for (int kind = 0; kind < 3; ++kind) {
        memset(f, 0, sizeof(f));
        uint8_t *m = f + 3;
        memcpy(m, "MPTLVDB\x1a", 8);
        le16(m + 8, 1);
        le16(m + 10, 24);
        le32(m + 12, 1);
        le32(m + 20, mp_tlvstore_crc32(0, m, 20));
        size_t off = 24;
        int n = kind == 2 ? 2 : MP_TLVSTORE_MAX_ENTRIES + 8;
        for (int i = 0; i < n && off + 32 <= MAX_INPUT - 3; ++i) {
            uint8_t *p = m + off;
            p[0] = 0xa5;
            le16(p + 2, 16);
            le32(p + 4, mp_tlvstore_crc32(0, p, 4));
            if (kind != 0) {
                uint8_t *r = p + 8;
                r[0] = 1;
                le32(r + 4, 0x42540000 | (uint32_t)i);
                le32(r + 8, kind == 2 ? 0xfffffffeu + (uint32_t)i : (uint32_t)i + 1);
                le32(r + 12, mp_tlvstore_crc32(0, r, 12));
            }
            off += 24;
        }
        f[0] = 1;
        le16(f + 1, (uint16_t)off);
        add_corpus(f, 3 + off);
    }
}

int main(int argc, char **argv) {
    long execs_max = argc > 1 ? atol(argv[1]) : 10000;
    rng_s = argc > 2 ? (uint64_t)atoll(argv[2]) * 0x9e3779b97f4a7c15ull + 1 : 1;
    double seconds = argc > 3 ? atof(argv[3]) : 0;
    make_seeds();
    int seeds = corpus_n;
    for (int i = 0; i < seeds; ++i) {
        memset(cov_map, 0, sizeof(cov_map));
        run_one(corpus[i].data, corpus[i].len);
        for (int j = 0; j < MAP_SIZE; ++j) {
            seen_map[j] |= cov_map[j];
        }
    }
    clock_t start = clock();
    static uint8_t buf[MAX_INPUT];
    long execs = 0;
    for (;;) {
        if (seconds > 0) {
            if ((double)(clock() - start) / CLOCKS_PER_SEC >= seconds) {
                break;
            }
        } else if (execs >= execs_max) {
            break;
        }
        const input_t *base = &corpus[below((uint32_t)corpus_n)];
        memcpy(buf, base->data, base->len);
        size_t len = mutate(buf, base->len, MAX_INPUT);
        memset(cov_map, 0, sizeof(cov_map));
        prev_pc = 0;
        run_one(buf, len);
        ++execs;
        int fresh = 0;
        for (int j = 0; j < MAP_SIZE; ++j) {
            if (cov_map[j] && !seen_map[j]) {
                seen_map[j] = 1;
                fresh = 1;
            }
        }
        if (fresh) {
            add_corpus(buf, len);
        }
    }
    int edges = 0;
    for (int j = 0; j < MAP_SIZE; ++j) {
        edges += seen_map[j];
    }
    printf("execs=%ld corpus=%d seeds=%d edges=%d crashes=0\n", execs, corpus_n, seeds, edges);
    return 0;
}
