// Host test shim for the bond store (not part of the firmware).
#ifndef HOST_TESTS_BONDSTORE_SHIM_H
#define HOST_TESTS_BONDSTORE_SHIM_H

#include <stdint.h>

#include "bondstore.h"

#define SHIM_CUT_UNCHANGED (0)
#define SHIM_CUT_GARBAGE (1)
#define SHIM_CUT_ZEROS (2)

// Field order is mirrored by ctypes structures in bondstore_harness.py.
typedef struct {
    uint64_t points;  // fault points consumed so far
    uint64_t bytes_written;
    uint64_t bytes_read;
    uint64_t writes;
    uint64_t reads;
    uint64_t syncs;
    uint64_t opens;
    uint64_t closes;
    uint64_t creates;
    uint64_t removes;
} shim_stats_t;

typedef struct {
    int64_t cut_at;        // fault point at which power is cut (-1: never)
    int32_t cut_mode;      // SHIM_CUT_*
    int32_t cut_lose_unsynced;
    int64_t fail_sync_at;  // 0-based index of the sync call that fails (-1: none)
    int64_t fail_read_at;  // 0-based index of the read call that fails (-1: none)
    uint32_t space_limit;  // total bytes over all files before ENOSPC
    int32_t rofs;          // read-only filesystem
    int32_t short_reads;   // return half of each read
} shim_fault_t;

extern shim_stats_t shim_mem_stats;
extern shim_fault_t shim_mem_fault;
extern const mp_bondstore_io_t shim_mem_io;
extern const mp_bondstore_io_t shim_mem_io_atomic;

void shim_mem_reset(void);
void shim_mem_power_on(void);
void shim_mem_set_atomic(int on);
int shim_mem_is_dead(void);
int shim_mem_get_file(int idx, uint8_t *buf, uint32_t size);
void shim_mem_set_file(int idx, const uint8_t *buf, int size);
uint32_t shim_store_size(void);
int shim_store_mode(const mp_bondstore_t *store);
int shim_store_found(const mp_bondstore_t *store);

#endif
