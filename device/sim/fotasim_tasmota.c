/* fotasim_tasmota.c - Tasmota's OTA URL rules (§8, support_tasmota.ino):
 * GetOtaUrl's chip-id placeholders, the -minimal rewrite after a -100 or
 * -107, and the ".gz" of the later attempts. Pure. */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "fota_str.h"
#include "fotasim_ard.h"
#include "fotasim_tasmota.h"

#define OTA_ATTEMPTS 10                     /* ESP8266 */

/* ---- the URL of an attempt (pure) ---- */

void fotasim_tasmota_get_ota_url(const char *otaurl, uint32_t chip_id, char *out, size_t cap)
{
    if (strstr(otaurl, "%04d"))
        snprintf(out, cap, "%.*s%04u%s", (int)(strstr(otaurl, "%04d") - otaurl), otaurl,
                 (unsigned)(chip_id & 0x1fff), strstr(otaurl, "%04d") + 4);
    else if (strstr(otaurl, "%d"))
        snprintf(out, cap, "%.*s%u%s", (int)(strstr(otaurl, "%d") - otaurl), otaurl,
                 (unsigned)chip_id, strstr(otaurl, "%d") + 2);
    else
        fota_str_copy(out, cap, otaurl);
}

void fotasim_tasmota_minimal_url(char *url, size_t cap)
{
    char type[FOTASIM_URL_MAX], *file = strrchr(url, '/'), *dot, *dash;

    if (!file)
        file = url;                          /* no path: the file name only */
    dot = strchr(file, '.');                 /* the type: none, .bin, .bin.gz, .ino.bin, ... */
    if (!dot)
        dot = url + strlen(url);
    fota_str_copy(type, sizeof(type), dot);
    dash = strrchr(file, '-');               /* tasmota-DE: the part after the last dash goes */
    if (!dash)
        dash = dot;
    *dash = '\0';
    if (strlen(url) + 8 + strlen(type) < cap)
        snprintf(url + strlen(url), cap - strlen(url), "-minimal%s", type);
}

static int has_gz(const char *url)
{
    size_t i;
    for (i = 0; url[i] && url[i + 1] && url[i + 2]; i++)
        if (url[i] == '.' && tolower((unsigned char)url[i + 1]) == 'g' &&
            tolower((unsigned char)url[i + 2]) == 'z')
            return 1;
    return 0;
}

int fotasim_tasmota_attempt_url(const char *otaurl, uint32_t chip_id, int ota_loader, int minimal,
                                int *retry, char *out, size_t cap)
{
    fotasim_tasmota_get_ota_url(otaurl, chip_id, out, cap);
    if (ota_loader && !minimal)
        fotasim_tasmota_minimal_url(out, cap);
    if (*retry < OTA_ATTEMPTS / 2) {
        if (has_gz(out))
            *retry = 1;                      /* this is the last attempt */
        else if (strlen(out) + 3 < cap)
            fota_str_copy(out + strlen(out), cap - strlen(out), ".gz");
    }
    return 0;
}

