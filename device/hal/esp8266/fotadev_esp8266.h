/* fotadev_esp8266.h - libfotadev's HAL for ESP8266_RTOS_SDK: flash and the
 * protected parameter area through the SDK, the boot flip through
 * system_upgrade_reboot, lwIP sockets, and a poll loop that drives the
 * agent's timers and sockets from one FreeRTOS task. */
#ifndef FOTADEV_ESP8266_H
#define FOTADEV_ESP8266_H

#include "fotadev.h"

#ifdef __cplusplus
extern "C" {
#endif

struct fotadev_esp8266 {
    struct fotadev_hal hal;
    struct fotadev_agent agent;
    int fd[FOTADEV_CONN_MAX];                 /* -1 when closed */
    uint8_t want_connect[FOTADEV_CONN_MAX];
    uint16_t port[FOTADEV_CONN_MAX];
    uint32_t ip[FOTADEV_CONN_MAX];            /* network order */
    uint32_t deadline[FOTADEV_TIMER_MAX];     /* ms, system_get_time()/1000 */
    uint8_t armed[FOTADEV_TIMER_MAX];
    fota_log_cb app_log;
    void *app_log_ud;
    uint8_t rx[1460];
};

/* Fills the HAL and initialises the agent with cfg (strings are copied).
 * log may be NULL. Returns 0 or FOTA_EINVAL. */
int fotadev_esp8266_init(struct fotadev_esp8266 *p, const struct fotadev_agent_cfg *cfg,
                         fota_log_cb log, void *log_ud);
/* Runs the agent for about max_wait_ms: connects what the agent asked for,
 * delivers received data and due timers. Call it in a loop from one task. */
void fotadev_esp8266_poll(struct fotadev_esp8266 *p, uint32_t max_wait_ms);

#ifdef __cplusplus
}
#endif

#endif
