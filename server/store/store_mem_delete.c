/* store_mem_delete.c - deletion of releases, devices and products in the
 * in-memory store. Same checks as store_sqlite_delete.c, made before anything
 * is removed, so a refused call changes nothing. Ids never repeat here (one
 * sequence for every table). */
#include "store_mem_int.h"

/* Drops the download ledger rows of file_id (device_id < 0) or of device_id. */
static void drop_downloads(struct mem_store *m, int64_t file_id, int64_t device_id)
{
    size_t k = 0;

    for (size_t i = 0; i < m->n_downloads; i++) {
        const struct mem_download *d = &m->downloads[i];
        if (device_id < 0 ? d->file_id == file_id : d->device_id == device_id)
            continue;
        m->downloads[k++] = *d;
    }
    m->n_downloads = k;
}

int fota_store_mem_rom_delete(struct fota_store *s, int64_t product_id, const char *version,
                              struct fota_rom *out)
{
    struct mem_store *m = M(s);
    struct fota_rom *r;
    size_t at;

    mem_lock(m);
    r = find_rom(m, product_id, version);
    if (!r)
        return mem_unlock(m, FOTA_ENOENT);
    for (size_t i = 0; r->current && i < m->n_devices; i++)
        if (m->devices[i].product_id == product_id)
            return mem_unlock(m, FOTA_EBUSY);
    if (out)
        *out = *r;
    for (size_t j = 0; j < r->nfiles; j++)
        drop_downloads(m, r->files[j].id, -1);
    at = (size_t)(r - m->roms);
    /* keep the order: rom_list relies on position growing with the id */
    memmove(&m->roms[at], &m->roms[at + 1], (m->n_roms - at - 1) * sizeof *m->roms);
    m->n_roms--;
    return mem_unlock(m, 0);
}

int fota_store_mem_device_delete(struct fota_store *s, int64_t id)
{
    struct mem_store *m = M(s);
    struct fota_device *d;
    size_t k = 0, at;

    mem_lock(m);
    d = find_device(m, id);
    if (!d)
        return mem_unlock(m, FOTA_ENOENT);
    at = (size_t)(d - m->devices);
    memmove(&m->devices[at], &m->devices[at + 1], (m->n_devices - at - 1) * sizeof *m->devices);
    m->n_devices--;
    for (size_t i = 0; i < m->n_keys; i++)
        if (m->keys[i].device_id != id)
            m->keys[k++] = m->keys[i];
    m->n_keys = k;
    k = 0;
    for (size_t i = 0; i < m->n_commands; i++)
        if (m->commands[i].device_id != id)
            m->commands[k++] = m->commands[i];
    m->n_commands = k;
    drop_downloads(m, 0, id);
    return mem_unlock(m, 0);
}

int fota_store_mem_product_delete(struct fota_store *s, int64_t id)
{
    struct mem_store *m = M(s);
    struct fota_product *p;
    size_t k = 0, at;

    mem_lock(m);
    p = find_product(m, id);
    if (!p)
        return mem_unlock(m, FOTA_ENOENT);
    for (size_t i = 0; i < m->n_devices; i++)
        if (m->devices[i].product_id == id)
            return mem_unlock(m, FOTA_EBUSY);
    for (size_t i = 0; i < m->n_roms; i++)
        if (m->roms[i].product_id == id)
            return mem_unlock(m, FOTA_EBUSY);
    at = (size_t)(p - m->products);
    memmove(&m->products[at], &m->products[at + 1],
            (m->n_products - at - 1) * sizeof *m->products);
    m->n_products--;
    for (size_t i = 0; i < m->n_keys; i++)
        if (m->keys[i].product_id != id)
            m->keys[k++] = m->keys[i];
    m->n_keys = k;
    return mem_unlock(m, 0);
}
