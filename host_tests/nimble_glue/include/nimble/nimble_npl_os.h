// The OS layer's types that NimBLE's headers need (nimble/nimble_npl.h
// includes this), for compiling the store glue without a port: the glue
// calls no OS function.  Real ports provide their own (MicroPython's
// extmod/nimble/nimble/nimble_npl_os.h, ESP-IDF's FreeRTOS one).
#ifndef NIMBLE_GLUE_CHECK_NIMBLE_NPL_OS_H
#define NIMBLE_GLUE_CHECK_NIMBLE_NPL_OS_H

#include <stdbool.h>
#include <stdint.h>

#define BLE_NPL_OS_ALIGNMENT (__SIZEOF_POINTER__)
#define BLE_NPL_TIME_FOREVER (0xffffffff)

typedef uint32_t ble_npl_time_t;
typedef int32_t ble_npl_stime_t;

struct ble_npl_event {
    void *fn;
    void *arg;
    struct ble_npl_event *next;
};

struct ble_npl_eventq {
    struct ble_npl_event *head;
};

struct ble_npl_callout {
    struct ble_npl_event ev;
    uint32_t ticks;
};

struct ble_npl_mutex {
    int locked;
};

struct ble_npl_sem {
    int count;
};

#endif
