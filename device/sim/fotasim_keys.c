/* fotasim_keys.c - reads fota-sim's --keys file: text (one key per line)
 * or master_device_key.bin sectors, and refuses anything else with the
 * reason, so a wrong file fails at start instead of after a timeout. */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fota_str.h"
#include "fotasim_keys.h"

static int all_hex(const uint8_t *p, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (!isxdigit(p[i]))
            return 0;
    return 1;
}

/* The whole file into memory (key files are small: at most 64 MiB). */
static uint8_t *slurp(const char *path, size_t *len, FILE *err)
{
    FILE *fp = fopen(path, "rb");
    uint8_t *buf = NULL;
    long n;

    if (!fp) {
        fprintf(err, "fota-sim: --keys %s: %s\n", path, strerror(errno));
        return NULL;
    }
    if (fseek(fp, 0, SEEK_END) != 0 || (n = ftell(fp)) < 0 || n > (64L << 20) ||
        fseek(fp, 0, SEEK_SET) != 0 || !(buf = malloc((size_t)n + 1)) ||
        fread(buf, 1, (size_t)n, fp) != (size_t)n) {
        fprintf(err, "fota-sim: --keys %s: cannot read it (over 64 MiB or an I/O error)\n", path);
        free(buf);
        fclose(fp);
        return NULL;
    }
    fclose(fp);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

static int load_sectors(struct fotasim_keys *k, const char *path, uint8_t *buf, size_t len, FILE *err)
{
    int i, n = (int)(len / FOTASIM_KEY_SECTOR);
    k->sectors = buf;                    /* freed with k, also on failure */
    for (i = 0; i < n; i++) {
        const uint8_t *sec = buf + (size_t)i * FOTASIM_KEY_SECTOR;
        if (!all_hex(sec, 2 * FOTADEV_KEY_LEN)) {
            fprintf(err, "fota-sim: --keys %s: sector %d is not a master_device_key.bin sector "
                         "(key and token: 80 hex digits at its start)\n", path, i + 1);
            return -1;
        }
        fota_str_copy_n(k->key[i], sizeof(k->key[i]), (const char *)sec, FOTADEV_KEY_LEN);
    }
    k->n = n;
    return 0;
}

static int load_text(struct fotasim_keys *k, const char *path, char *text, int cap, FILE *err)
{
    char *line = text, *nl;
    int lineno = 0;

    for (; *line && k->n < cap; line = nl ? nl + 1 : line + strlen(line)) {
        size_t l;
        nl = strchr(line, '\n');
        l = nl ? (size_t)(nl - line) : strlen(line);
        lineno++;
        if (l && line[l - 1] == '\r')
            l--;
        if (l == 0)
            continue;
        if (l != FOTADEV_KEY_LEN || !all_hex((const uint8_t *)line, l)) {
            fprintf(err, "fota-sim: --keys %s: line %d is not a master key (40 hex digits; "
                         "it has %zu characters)\n", path, lineno, l);
            return -1;
        }
        fota_str_copy_n(k->key[k->n], sizeof(k->key[k->n]), line, l);
        k->n++;
    }
    return 0;
}

int fotasim_keys_load(struct fotasim_keys *k, const char *path, int want, FILE *err)
{
    size_t len = 0;
    uint8_t *buf = slurp(path, &len, err);
    int cap, rc;

    memset(k, 0, sizeof(*k));
    if (!buf)
        return -1;
    /* a text file holds at most one key per 41 bytes; sectors one per 4 KiB */
    cap = (int)(len / (FOTADEV_KEY_LEN + 1) + 1);
    if (!(k->key = calloc((size_t)cap, sizeof(*k->key)))) {
        free(buf);
        fprintf(err, "fota-sim: --keys %s: out of memory\n", path);
        return -1;
    }
    if (len >= FOTASIM_KEY_SECTOR && len % FOTASIM_KEY_SECTOR == 0 &&
        all_hex(buf, 2 * FOTADEV_KEY_LEN) && memchr(buf, '\n', 2 * FOTADEV_KEY_LEN + 1) == NULL) {
        rc = load_sectors(k, path, buf, len, err);
    } else {
        rc = load_text(k, path, (char *)buf, cap, err);
        free(buf);
    }
    if (rc == 0 && k->n < want) {
        fprintf(err, "fota-sim: --keys %s holds %d key%s for %d devices\n", path, k->n,
                k->n == 1 ? "" : "s", want);
        rc = -1;
    }
    if (rc < 0)
        fotasim_keys_free(k);
    return rc;
}

const uint8_t *fotasim_keys_sector(const struct fotasim_keys *k, int i)
{
    return k->sectors && i >= 0 && i < k->n ? k->sectors + (size_t)i * FOTASIM_KEY_SECTOR : NULL;
}

void fotasim_keys_free(struct fotasim_keys *k)
{
    free(k->key);
    free(k->sectors);
    memset(k, 0, sizeof(*k));
}
