// Host test shim: the le_device_db functions BTstack declares only with
// ENABLE_LE_SIGNED_WRITE.  test/le_device_db_tlv calls them unconditionally;
// force-included (-include) when it is built without ENABLE_LE_SIGNED_WRITE,
// so that it compiles.  The tests that call them are not run in that build.
#ifndef HOST_TESTS_BTSTACK_TLV_LE_DEVICE_DB_SIGNED_WRITE_H
#define HOST_TESTS_BTSTACK_TLV_LE_DEVICE_DB_SIGNED_WRITE_H

#include <stdint.h>

#include "btstack_defines.h"

#if defined __cplusplus
extern "C" {
#endif

void le_device_db_local_csrk_set(int index, sm_key_t csrk);
void le_device_db_local_csrk_get(int index, sm_key_t csrk);
void le_device_db_remote_csrk_set(int index, sm_key_t csrk);
void le_device_db_remote_csrk_get(int index, sm_key_t csrk);
uint32_t le_device_db_remote_counter_get(int index);
void le_device_db_remote_counter_set(int index, uint32_t counter);
uint32_t le_device_db_local_counter_get(int index);
void le_device_db_local_counter_set(int index, uint32_t counter);

#if defined __cplusplus
}
#endif

#endif
