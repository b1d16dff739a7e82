/* flash_map.c - the ESP8266 flash layouts by size-map code (reference §7.1,
 * §7.2): slot addresses, the slot budget (see fwimg.h for how it was chosen)
 * and where the RF-cal, PHY-init and system-parameter sectors live. */
#include "fwimg.h"

#include <stddef.h>

#define KB(x) ((uint32_t)(x) * 1024u)
#define MB(x) ((uint32_t)(x) * 1024u * 1024u)
#define SEC(n) ((uint32_t)(n) * 4096u)

/* rf_cal = size - 5 sectors, phy = size - 4, system params = size - 3 */
#define TAIL(size) (size) - 0x5000u, (size) - 0x4000u, (size) - 0x3000u, 2

static const struct fota_flash_map maps[] = {
    { 0, "512KB 256+256",  KB(512), KB(256),  0x1000u, 0x41000u,  SEC(58),  0,        0x3C000u, TAIL(KB(512)) },
    { 2, "1MB 512+512",    MB(1),   KB(512),  0x1000u, 0x81000u,  SEC(122), 0x6A000u, 0x7C000u, TAIL(MB(1)) },
    { 3, "2MB 512+512",    MB(2),   KB(512),  0x1000u, 0x81000u,  SEC(122), 0x6A000u, 0x7C000u, TAIL(MB(2)) },
    { 4, "4MB 512+512",    MB(4),   KB(512),  0x1000u, 0x81000u,  SEC(122), 0x6A000u, 0x7C000u, TAIL(MB(4)) },
    { 5, "2MB 1024+1024",  MB(2),   MB(1),    0x1000u, 0x101000u, SEC(250), 0x6A000u, 0xFC000u, TAIL(MB(2)) },
    { 6, "4MB 1024+1024",  MB(4),   MB(1),    0x1000u, 0x101000u, SEC(250), 0x6A000u, 0xFC000u, TAIL(MB(4)) },
    { 8, "8MB 1024+1024",  MB(8),   MB(1),    0x1000u, 0x101000u, SEC(250), 0x6A000u, 0,        TAIL(MB(8)) },
    { 9, "16MB 1024+1024", MB(16),  MB(1),    0x1000u, 0x101000u, SEC(250), 0x6A000u, 0,        TAIL(MB(16)) },
};

const struct fota_flash_map *fota_flash_map_get(int map)
{
    size_t i;

    for (i = 0; i < sizeof maps / sizeof maps[0]; i++)
        if (maps[i].map == map)
            return &maps[i];
    return NULL;
}
