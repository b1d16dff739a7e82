/* esp_sdk_decls.h - DECLARATIONS OF ESPRESSIF'S ESP8266_RTOS_SDK API (and of
 * the lwIP socket calls it ships) that the libfotadev ESP8266 HAL uses.
 *
 * These are not implementations and not Espressif's headers: they restate
 * the prototypes documented in ESP8266_RTOS_SDK (include/espressif/
 * spi_flash.h, esp_system.h, upgrade.h, lwip/sockets.h) so that the HAL
 * compiles with plain xtensa-lx106-elf-gcc + picolibc (scripts/xtensa-size.sh).
 * In a real SDK project define FOTADEV_USE_SDK_HEADERS and the SDK's own
 * headers are used instead. */
#ifndef FOTADEV_ESP_SDK_DECLS_H
#define FOTADEV_ESP_SDK_DECLS_H

#ifdef FOTADEV_USE_SDK_HEADERS
#include "esp_common.h"
#include "lwip/sockets.h"
#include "upgrade.h"
#else
#include <stdint.h>
#include <stddef.h>

/* ---- spi_flash.h ---- */
typedef enum { SPI_FLASH_RESULT_OK, SPI_FLASH_RESULT_ERR, SPI_FLASH_RESULT_TIMEOUT } SpiFlashOpResult;
SpiFlashOpResult spi_flash_erase_sector(uint16_t sec);
SpiFlashOpResult spi_flash_write(uint32_t des_addr, uint32_t *src_addr, uint32_t size);
SpiFlashOpResult spi_flash_read(uint32_t src_addr, uint32_t *des_addr, uint32_t size);

/* ---- esp_system.h ---- */
typedef int bool_t_;                      /* the SDK's bool is an int-sized type */
bool_t_ system_param_save_with_protect(uint16_t start_sec, void *param, uint16_t len);
bool_t_ system_param_load(uint16_t start_sec, uint16_t offset, void *param, uint16_t len);
uint8_t system_upgrade_userbin_check(void);
void system_upgrade_flag_set(uint8_t flag);
uint8_t system_upgrade_flag_check(void);
void system_upgrade_reboot(void);
void system_restart(void);
uint32_t system_get_time(void);            /* microseconds since boot */
uint32_t os_random(void);
#define UPGRADE_FLAG_IDLE   0x00
#define UPGRADE_FLAG_START  0x01
#define UPGRADE_FLAG_FINISH 0x02

/* ---- FreeRTOS ---- */
void vTaskDelay(uint32_t ticks);
#ifndef portTICK_RATE_MS
#define portTICK_RATE_MS 10
#endif

/* ---- lwIP sockets (lwip/sockets.h, IPv4 only) ---- */
struct in_addr { uint32_t s_addr; };
struct sockaddr { uint8_t sa_len; uint8_t sa_family; char sa_data[14]; };
struct sockaddr_in {
    uint8_t sin_len;
    uint8_t sin_family;
    uint16_t sin_port;
    struct in_addr sin_addr;
    char sin_zero[8];
};
typedef uint32_t socklen_t;
#define AF_INET     2
#define SOCK_STREAM 1
#define IPPROTO_TCP 6
#define TCP_NODELAY 0x01
#define F_SETFL     4
#define O_NONBLOCK  1
#define MSG_DONTWAIT 0x08
int lwip_socket(int domain, int type, int protocol);
int lwip_connect(int s, const struct sockaddr *name, socklen_t namelen);
int lwip_send(int s, const void *dataptr, size_t size, int flags);
int lwip_recv(int s, void *mem, size_t len, int flags);
int lwip_close(int s);
int lwip_fcntl(int s, int cmd, int val);
int lwip_setsockopt(int s, int level, int optname, const void *optval, socklen_t optlen);
uint32_t ipaddr_addr(const char *cp);      /* dotted quad -> network order, 0xFFFFFFFF on error */
#endif

#endif
