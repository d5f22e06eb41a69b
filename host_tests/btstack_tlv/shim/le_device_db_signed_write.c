// Host test shim: stubs for le_device_db_signed_write.h (a build without
// ENABLE_LE_SIGNED_WRITE).  They abort: no test that calls them may run.

#include <stdio.h>
#include <stdlib.h>

#include "le_device_db_signed_write.h"

static void not_built(const char *name) {
    fprintf(stderr, "%s: not built without ENABLE_LE_SIGNED_WRITE\n", name);
    abort();
}

void le_device_db_local_csrk_set(int index, sm_key_t csrk) {
    (void)index;
    (void)csrk;
    not_built(__func__);
}

void le_device_db_local_csrk_get(int index, sm_key_t csrk) {
    (void)index;
    (void)csrk;
    not_built(__func__);
}

void le_device_db_remote_csrk_set(int index, sm_key_t csrk) {
    (void)index;
    (void)csrk;
    not_built(__func__);
}

void le_device_db_remote_csrk_get(int index, sm_key_t csrk) {
    (void)index;
    (void)csrk;
    not_built(__func__);
}

uint32_t le_device_db_remote_counter_get(int index) {
    (void)index;
    not_built(__func__);
    return 0;
}

void le_device_db_remote_counter_set(int index, uint32_t counter) {
    (void)index;
    (void)counter;
    not_built(__func__);
}

uint32_t le_device_db_local_counter_get(int index) {
    (void)index;
    not_built(__func__);
    return 0;
}

void le_device_db_local_counter_set(int index, uint32_t counter) {
    (void)index;
    (void)counter;
    not_built(__func__);
}
