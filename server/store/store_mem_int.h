/* store_mem_int.h - the in-memory store's tables and lookups, shared by
 * store_mem.c (create, read, update) and store_mem_delete.c (deletion).
 * Not public: everything above the store uses struct fota_store_ops. */
#ifndef FOTA_STORE_MEM_INT_H
#define FOTA_STORE_MEM_INT_H

#include <pthread.h>
#include <string.h>
#include "store_int.h"

struct mem_download {
    int64_t device_id;
    int64_t file_id;
    int64_t bytes;
    int64_t completions;
};

#define MEM_ARRAY(type, name) type *name; size_t n_##name, cap_##name

struct mem_store {
    struct fota_store base;           /* first: the public handle */
    pthread_mutex_t lock;
    int64_t next_id;                  /* one sequence for every table: ids never repeat */
    MEM_ARRAY(struct fota_product, products);
    MEM_ARRAY(struct fota_rom, roms);
    MEM_ARRAY(struct fota_device, devices);
    MEM_ARRAY(struct fota_key, keys);
    MEM_ARRAY(struct fota_command, commands);
    MEM_ARRAY(struct fota_message, messages);
    MEM_ARRAY(struct mem_download, downloads);
    MEM_ARRAY(struct fota_transfer, transfers);
};

static inline struct mem_store *M(struct fota_store *s)
{
    return (struct mem_store *)s;
}

static inline void mem_lock(struct mem_store *m)
{
    pthread_mutex_lock(&m->lock);
}

static inline int mem_unlock(struct mem_store *m, int rc)
{
    pthread_mutex_unlock(&m->lock);
    return rc;
}

static inline struct fota_product *find_product(struct mem_store *m, int64_t id)
{
    for (size_t i = 0; i < m->n_products; i++)
        if (m->products[i].id == id)
            return &m->products[i];
    return NULL;
}

static inline struct fota_device *find_device(struct mem_store *m, int64_t id)
{
    for (size_t i = 0; i < m->n_devices; i++)
        if (m->devices[i].id == id)
            return &m->devices[i];
    return NULL;
}

static inline struct fota_rom *find_rom(struct mem_store *m, int64_t product_id, const char *version)
{
    for (size_t i = 0; i < m->n_roms; i++)
        if (m->roms[i].product_id == product_id && strcmp(m->roms[i].version, version) == 0)
            return &m->roms[i];
    return NULL;
}

/* store_mem_delete.c */
int fota_store_mem_rom_delete(struct fota_store *s, int64_t product_id, const char *version,
                              struct fota_rom *out);
int fota_store_mem_device_delete(struct fota_store *s, int64_t id);
int fota_store_mem_product_delete(struct fota_store *s, int64_t id);

#endif
