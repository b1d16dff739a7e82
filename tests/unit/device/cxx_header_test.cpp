// cxx_header_test.cpp - libfotadev's public headers from C++ (the ESP8266
// Arduino core is C++): they compile with -pedantic, and every function a
// sketch would call keeps its C name. cxx_header_test.cmake compiles this
// file and checks the object's undefined symbols: all unmangled.
#include "fotadev.h"
#include "fotadev_esp8266.h"

static void use_all(void)
{
    struct fotadev_layout lay;
    struct fotadev_esp8266 port;
    struct fotadev_agent_cfg cfg = {};
    struct fotadev_backoff_cfg bo = {1000, 60000, 10};
    struct fotadev_http_resp resp;
    struct fotadev_legacy leg;
    struct fotadev_chan ch;
    struct fotadev_chan_cfg cc = {};
    struct fotadev_ota ota;
    uint8_t bp[2] = {0, 0};
    size_t n;

    (void)fotadev_layout_get(2, &lay);
    (void)fotadev_boot_running_slot(bp);
    (void)fotadev_boot_flip(bp);
    (void)fotadev_boot_wanted_slot(bp);
    (void)fotadev_sysparam_load(&port.hal.flash, 0, 0, bp, 2);
    (void)fotadev_sysparam_save(&port.hal.flash, 0, bp, 2);
    (void)fotadev_backoff_delay(&bo, 1, 7);
    (void)fotadev_chan_init(&ch, &cc);
    (void)fotadev_chan_connected(&ch, 1);
    (void)fotadev_chan_feed(&ch, "{}\n", 3);
    (void)fotadev_chan_beacon(&ch);
    (void)fotadev_chan_report(&ch, 1);
    (void)fotadev_chan_tx(&ch, &n);
    fotadev_http_resp_init(&resp);
    (void)fotadev_http_resp_feed(&resp, "HTTP/1.0 200 OK\r\n", 17);
    fotadev_legacy_init(&leg, 0, 1);
    (void)fotadev_legacy_hello(&leg, FOTADEV_SLOT_USER1);
    (void)fotadev_ota_begin(&ota, &port.hal.flash, &lay, FOTADEV_SLOT_USER2);
    (void)fotadev_ota_offset(&ota);
    (void)fotadev_ota_end(&ota, NULL);
    if (fotadev_esp8266_init(&port, &cfg, NULL, NULL) == 0) {
        fotadev_agent_start(&port.agent);
        fotadev_esp8266_poll(&port, 50);
        (void)fotadev_agent_dl_due(&port.agent);
    }
    (void)fota_strerror(FOTA_EINVAL);
}

int main()
{
    use_all();
    return 0;
}
