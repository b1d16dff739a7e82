/* backup_read_fuzz.c - libFuzzer target for server/backup/backup_format.c
 * (the backup archive's verifying reader, the tar header codec and the
 * manifest's parser), which `fotad restore` and `fotactl backup` feed with
 * bytes from a file or the network. The first input byte picks a chunk
 * size; the rest is read as an archive at once and in chunks of that size:
 * the result, the events and the bytes handed out must be the same. Every
 * fourth input is also given to the manifest parser alone. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "backup_format.h"
#include "fota_err.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct tally {
    unsigned long events;       /* every event but DATA */
    unsigned long sum;          /* over every event and byte seen */
    uint64_t left;              /* bytes the current member may still hand out */
};

static int on_event(void *ud, int ev, const struct fota_backup_member *m, const uint8_t *p,
                    size_t n)
{
    struct tally *t = ud;
    if (ev != FOTA_BACKUP_EV_DATA) {   /* DATA comes once per chunk: its bytes count */
        t->events++;
        t->sum = t->sum * 31 + (unsigned long)ev;
    }
    if (ev == FOTA_BACKUP_EV_BEGIN) {
        if (!m || !fota_backup_name_kind(m->name, NULL))
            abort();   /* only names of the archive's own reach the caller */
        t->left = m->size;
    }
    if (ev == FOTA_BACKUP_EV_DATA) {
        if (n == 0 || n > t->left)
            abort();   /* never more than the member's size */
        t->left -= n;
        for (size_t i = 0; i < n; i++)
            t->sum = t->sum * 33 + p[i];
    }
    if (ev == FOTA_BACKUP_EV_END && t->left != 0)
        abort();       /* a member ends only when whole */
    return 0;
}

static int read_archive(const uint8_t *data, size_t size, size_t step, struct tally *t)
{
    struct fota_backup_reader r;
    int rc = 0;
    fota_backup_reader_init(&r, on_event, t);
    for (size_t i = 0; i < size && rc == 0; i += step)
        rc = fota_backup_reader_feed(&r, data + i, size - i < step ? size - i : step);
    if (rc == 0)
        rc = fota_backup_reader_finish(&r);
    if (rc == 0 && !fota_backup_reader_manifest(&r))
        abort();
    fota_backup_reader_cleanup(&r);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct tally a = { 0, 0, 0 }, b = { 0, 0, 0 };
    size_t step;

    if (size < 1)
        return 0;
    step = (size_t)data[0] * 7 % 1031 + 1;
    if (data[0] % 4 == 0) {
        struct fota_backup_manifest m;
        char err[256];
        if (fota_backup_manifest_parse((const char *)data + 1, size - 1, &m, err,
                                       sizeof(err)) == 0)
            fota_backup_manifest_cleanup(&m);
    }
    data++;
    size--;
    int ra = read_archive(data, size, size ? size : 1, &a);
    int rb = read_archive(data, size, step, &b);
    if (ra != rb || a.events != b.events || a.sum != b.sum)
        abort();
    return 0;
}
