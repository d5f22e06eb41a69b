// ESP-IDF's error type, which esp-nimble's headers use without including
// esp_err.h themselves (ESP-IDF's build force-includes it with sdkconfig).
#ifndef NIMBLE_GLUE_CHECK_ESP_ERR_H
#define NIMBLE_GLUE_CHECK_ESP_ERR_H
typedef int esp_err_t;
#endif
