// A NimBLE host configuration for compiling extmod/nimble/nimble_bond_store.c
// on the build machine against a NimBLE tree (lib/mynewt-nimble or
// Espressif's esp-nimble) without a port: the values MicroPython's own
// extmod/nimble/syscfg/syscfg.h and ESP-IDF's esp_nimble_cfg.h give the
// options the store and the host headers it includes look at.
#ifndef NIMBLE_GLUE_CHECK_SYSCFG_H
#define NIMBLE_GLUE_CHECK_SYSCFG_H

#define MYNEWT_VAL(x) MYNEWT_VAL_##x

#define MYNEWT_VAL_BLE_ROLE_CENTRAL (1)
#define MYNEWT_VAL_BLE_ROLE_PERIPHERAL (1)
#define MYNEWT_VAL_BLE_ROLE_BROADCASTER (1)
#define MYNEWT_VAL_BLE_ROLE_OBSERVER (1)
#define MYNEWT_VAL_BLE_MAX_CONNECTIONS (4)
#define MYNEWT_VAL_BLE_SM_LEGACY (1)
#define MYNEWT_VAL_BLE_SM_SC (1)
#define MYNEWT_VAL_BLE_SM_BONDING (1)
#define MYNEWT_VAL_BLE_STORE_MAX_BONDS (16)
#define MYNEWT_VAL_BLE_STORE_MAX_CCCDS (32)
#define MYNEWT_VAL_BLE_EXT_ADV (0)
#define MYNEWT_VAL_BLE_EXT_ADV_MAX_SIZE (31)
#define MYNEWT_VAL_BLE_MULTI_ADV_INSTANCES (0)
#define MYNEWT_VAL_BLE_L2CAP_COC_MAX_NUM (0)
#define MYNEWT_VAL_BLE_L2CAP_COC_SDU_BUFF_COUNT (1)
#define MYNEWT_VAL_BLE_GATT_MAX_PROCS (4)
#define MYNEWT_VAL_BLE_HS_DEBUG (0)
#define MYNEWT_VAL_BLE_HS_LOG_LVL (0)
#define MYNEWT_VAL_BLE_MESH (0)
#define MYNEWT_VAL_MSYS_1_BLOCK_COUNT (12)
#define MYNEWT_VAL_MSYS_1_BLOCK_SIZE (292)

#endif
