/* fotadev_hal_esp8266.c - the ESP8266_RTOS_SDK port of struct fotadev_hal:
 * SDK flash calls (4-byte aligned buffers), the SDK's own protected
 * parameter save, system_upgrade_reboot for the boot flip, and lwIP
 * sockets polled from one task (non-blocking receive, blocking connect). */
#include <errno.h>
#include <string.h>

#include "esp_sdk_decls.h"
#include "fotadev_esp8266.h"

#define CHUNK 64u

static int p_read(void *ud, uint32_t addr, void *buf, uint32_t len)
{
    uint32_t tmp[CHUNK / 4], n;
    uint8_t *out = buf;
    /* the SDK wants word-aligned RAM buffers: bounce through tmp */
    while (len > 0) {
        uint32_t off = addr & 3u, base = addr - off;
        n = CHUNK - off < len ? CHUNK - off : len;
        if (spi_flash_read(base, tmp, (off + n + 3u) & ~3u) != SPI_FLASH_RESULT_OK)
            return FOTA_EIO;
        memcpy(out, (uint8_t *)tmp + off, n);
        out += n;
        addr += n;
        len -= n;
    }
    return 0;
}

static int p_erase(void *ud, uint32_t sector)
{
    return spi_flash_erase_sector((uint16_t)sector) == SPI_FLASH_RESULT_OK ? 0 : FOTA_EIO;
}

static int p_write(void *ud, uint32_t addr, const void *buf, uint32_t len)
{
    uint32_t tmp[CHUNK / 4], n;
    const uint8_t *in = buf;
    if ((addr & 3u) || (len & 3u))
        return FOTA_EINVAL;
    while (len > 0) {
        n = len < CHUNK ? len : CHUNK;
        memcpy(tmp, in, n);
        if (spi_flash_write(addr, tmp, n) != SPI_FLASH_RESULT_OK)
            return FOTA_EIO;
        in += n;
        addr += n;
        len -= n;
    }
    return 0;
}

static int p_sp_load(void *ud, uint16_t sec, uint32_t off, void *buf, uint32_t len)
{
    return system_param_load(sec, (uint16_t)off, buf, (uint16_t)len) ? 0 : FOTA_EIO;
}

static int p_sp_save(void *ud, uint16_t sec, const void *buf, uint32_t len)
{
    return system_param_save_with_protect(sec, (void *)(uintptr_t)buf, (uint16_t)len) ? 0 : FOTA_EIO;
}

static int p_running_slot(void *ud)
{
    return system_upgrade_userbin_check() == 1 ? FOTADEV_SLOT_USER2 : FOTADEV_SLOT_USER1;
}

static void p_upgrade_reboot(void *ud)
{
    system_upgrade_flag_set(UPGRADE_FLAG_FINISH);
    system_upgrade_reboot();          /* flips the boot byte and restarts */
}

static void p_restart(void *ud)
{
    system_restart();
}

static uint32_t p_now(void *ud)
{
    return system_get_time() / 1000u;
}

static void p_timer(void *ud, int id, uint32_t ms)
{
    struct fotadev_esp8266 *p = ud;
    if (id < 0 || id >= FOTADEV_TIMER_MAX)
        return;
    p->armed[id] = ms != 0;
    p->deadline[id] = p_now(ud) + ms;
}

static int p_connect(void *ud, int c, const char *host, uint16_t port)
{
    struct fotadev_esp8266 *p = ud;
    uint32_t ip = ipaddr_addr(host);
    if (c < 0 || c >= FOTADEV_CONN_MAX || ip == 0xFFFFFFFFu)
        return FOTA_EINVAL;
    if (p->fd[c] >= 0)
        lwip_close(p->fd[c]);
    p->fd[c] = -1;
    p->ip[c] = ip;
    p->port[c] = port;
    p->want_connect[c] = 1;           /* done by the poll loop, outside the agent */
    return 0;
}

static int p_send(void *ud, int c, const void *buf, size_t len)
{
    struct fotadev_esp8266 *p = ud;
    const uint8_t *b = buf;
    if (c < 0 || c >= FOTADEV_CONN_MAX || p->fd[c] < 0)
        return FOTA_ECLOSED;
    while (len > 0) {
        int n = lwip_send(p->fd[c], b, len, 0);
        if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            vTaskDelay(1);
            continue;
        }
        if (n <= 0)
            return FOTA_EIO;
        b += n;
        len -= (size_t)n;
    }
    return 0;
}

static void p_close(void *ud, int c)
{
    struct fotadev_esp8266 *p = ud;
    if (c < 0 || c >= FOTADEV_CONN_MAX)
        return;
    if (p->fd[c] >= 0)
        lwip_close(p->fd[c]);
    p->fd[c] = -1;
    p->want_connect[c] = 0;
}

static uint32_t p_random(void *ud)
{
    return os_random();
}

static void p_log(void *ud, int level, const char *msg)
{
    struct fotadev_esp8266 *p = ud;
    if (p->app_log)
        p->app_log(p->app_log_ud, level, msg);
}

int fotadev_esp8266_init(struct fotadev_esp8266 *p, const struct fotadev_agent_cfg *cfg,
                         fota_log_cb log, void *log_ud)
{
    int i;
    memset(p, 0, sizeof(*p));
    for (i = 0; i < FOTADEV_CONN_MAX; i++)
        p->fd[i] = -1;
    p->app_log = log;
    p->app_log_ud = log_ud;
    p->hal.ud = p;
    p->hal.flash.ud = p;
    p->hal.flash.read = p_read;
    p->hal.flash.erase = p_erase;
    p->hal.flash.write = p_write;
    p->hal.sysparam_load = p_sp_load;
    p->hal.sysparam_save = p_sp_save;
    p->hal.running_slot = p_running_slot;
    p->hal.upgrade_reboot = p_upgrade_reboot;
    p->hal.restart = p_restart;
    p->hal.now_ms = p_now;
    p->hal.timer = p_timer;
    p->hal.tcp_connect = p_connect;
    p->hal.tcp_send = p_send;
    p->hal.tcp_close = p_close;
    p->hal.random = p_random;
    p->hal.log = p_log;
    return fotadev_agent_init(&p->agent, &p->hal, cfg);
}

static void do_connect(struct fotadev_esp8266 *p, int c)
{
    struct sockaddr_in sa;
    int fd, one = 1;
    p->want_connect[c] = 0;
    memset(&sa, 0, sizeof(sa));
    sa.sin_len = sizeof(sa);
    sa.sin_family = AF_INET;
    sa.sin_port = (uint16_t)((p->port[c] >> 8) | (p->port[c] << 8));   /* htons */
    sa.sin_addr.s_addr = p->ip[c];
    fd = lwip_socket(AF_INET, SOCK_STREAM, 0);
    if (fd >= 0 && lwip_connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0) {
        lwip_setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        lwip_fcntl(fd, F_SETFL, O_NONBLOCK);
        p->fd[c] = fd;
        fotadev_agent_on_connect(&p->agent, c, 0);
        return;
    }
    if (fd >= 0)
        lwip_close(fd);
    fotadev_agent_on_connect(&p->agent, c, FOTA_EIO);
}

void fotadev_esp8266_poll(struct fotadev_esp8266 *p, uint32_t max_wait_ms)
{
    int c, id, busy = 0;
    uint32_t now;

    for (c = 0; c < FOTADEV_CONN_MAX; c++)
        if (p->want_connect[c])
            do_connect(p, c);
    for (c = 0; c < FOTADEV_CONN_MAX; c++) {
        int n;
        if (p->fd[c] < 0)
            continue;
        n = lwip_recv(p->fd[c], p->rx, sizeof(p->rx), MSG_DONTWAIT);
        if (n > 0) {
            busy = 1;
            fotadev_agent_on_data(&p->agent, c, p->rx, (size_t)n);
        } else if (n == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
            lwip_close(p->fd[c]);
            p->fd[c] = -1;
            fotadev_agent_on_close(&p->agent, c);
        }
    }
    now = p_now(p);
    for (id = 0; id < FOTADEV_TIMER_MAX; id++) {
        if (p->armed[id] && (int32_t)(now - p->deadline[id]) >= 0) {
            p->armed[id] = 0;
            fotadev_agent_on_timer(&p->agent, id);
        }
    }
    if (!busy && max_wait_ms)
        vTaskDelay(max_wait_ms < 10 ? 1 : max_wait_ms / portTICK_RATE_MS);
}
