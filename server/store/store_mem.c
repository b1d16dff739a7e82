/* store_mem.c - the in-memory fota_store (unit tests, throwaway daemons).
 *
 * Same semantics as store_sqlite.c, table by table, in realloc-grown arrays
 * guarded by one mutex. Every check that SQLite makes with a constraint is
 * made here BEFORE anything is written, so a refused call changes nothing. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include "store_mem_int.h"

/* Makes room for one more element; 0 or FOTA_ENOMEM. */
static int mem_grow(void **arr, size_t *cap, size_t n, size_t elem)
{
    size_t ncap;
    void *p;

    if (n < *cap)
        return 0;
    ncap = *cap ? *cap * 2 : 8;
    p = realloc(*arr, ncap * elem);
    if (!p)
        return FOTA_ENOMEM;
    *arr = p;
    *cap = ncap;
    return 0;
}

#define MEM_PUSH(m, name, valp)                                                   \
    (mem_grow((void **)&(m)->name, &(m)->cap_##name, (m)->n_##name, sizeof *(m)->name) \
         ? FOTA_ENOMEM                                                            \
         : (memcpy(&(m)->name[(m)->n_##name++], (valp), sizeof *(m)->name), 0))

static struct fota_rom_file *find_file(struct mem_store *m, int64_t file_id)
{
    for (size_t i = 0; i < m->n_roms; i++)
        for (size_t j = 0; j < m->roms[i].nfiles; j++)
            if (m->roms[i].files[j].id == file_id)
                return &m->roms[i].files[j];
    return NULL;
}

static void fill_product(struct mem_store *m, struct fota_product *p)
{
    p->devices_total = 0;
    p->devices_activated = 0;
    p->current_version[0] = '\0';
    for (size_t i = 0; i < m->n_devices; i++) {
        if (m->devices[i].product_id != p->id)
            continue;
        p->devices_total++;
        if (m->devices[i].activated)
            p->devices_activated++;
    }
    for (size_t i = 0; i < m->n_roms; i++)
        if (m->roms[i].product_id == p->id && m->roms[i].current)
            fota_store_strlcpy(p->current_version, m->roms[i].version, sizeof p->current_version);
}

/* ---- products ---------------------------------------------------------- */

static int mem_product_create(struct fota_store *s, struct fota_product *p)
{
    struct mem_store *m = M(s);
    struct fota_product row;

    if (!p->name[0] ||
        (p->slot_check != FOTA_SLOT_CHECK_BYTE3 && p->slot_check != FOTA_SLOT_CHECK_NAME))
        return FOTA_EINVAL;
    mem_lock(m);
    for (size_t i = 0; i < m->n_products; i++)
        if (strcmp(m->products[i].name, p->name) == 0)
            return mem_unlock(m, FOTA_EEXIST);
    row = *p;
    row.id = m->next_id;
    row.created = fota_store_now();
    if (!row.status[0])
        fota_store_strlcpy(row.status, "development", sizeof row.status);
    row.devices_total = row.devices_activated = 0;
    row.current_version[0] = '\0';
    if (MEM_PUSH(m, products, &row))
        return mem_unlock(m, FOTA_ENOMEM);
    m->next_id++;
    p->id = row.id;
    p->created = row.created;
    fota_store_strlcpy(p->status, row.status, sizeof p->status);
    return mem_unlock(m, 0);
}

static int mem_product_get(struct fota_store *s, int64_t id, struct fota_product *out)
{
    struct mem_store *m = M(s);
    struct fota_product *p;

    mem_lock(m);
    p = find_product(m, id);
    if (!p)
        return mem_unlock(m, FOTA_ENOENT);
    *out = *p;
    fill_product(m, out);
    return mem_unlock(m, 0);
}

static int mem_product_find(struct fota_store *s, const char *name, struct fota_product *out)
{
    struct mem_store *m = M(s);

    mem_lock(m);
    for (size_t i = 0; i < m->n_products; i++) {
        if (strcmp(m->products[i].name, name) == 0) {
            *out = m->products[i];
            fill_product(m, out);
            return mem_unlock(m, 0);
        }
    }
    return mem_unlock(m, FOTA_ENOENT);
}

static int mem_product_list(struct fota_store *s, struct fota_product **out, size_t *n)
{
    struct mem_store *m = M(s);
    struct fota_product *arr;

    mem_lock(m);
    arr = malloc((m->n_products ? m->n_products : 1) * sizeof *arr);
    if (!arr)
        return mem_unlock(m, FOTA_ENOMEM);
    for (size_t i = 0; i < m->n_products; i++) {
        arr[i] = m->products[i];
        fill_product(m, &arr[i]);
    }
    *out = arr;
    *n = m->n_products;
    return mem_unlock(m, 0);
}

/* ---- releases ---------------------------------------------------------- */

static int mem_rom_create(struct fota_store *s, struct fota_rom *rom)
{
    struct mem_store *m = M(s);
    struct fota_rom row;

    if (!rom->version[0] || rom->nfiles > FOTA_ROM_MAX_FILES)
        return FOTA_EINVAL;
    mem_lock(m);
    if (!find_product(m, rom->product_id))
        return mem_unlock(m, FOTA_ENOENT);
    if (find_rom(m, rom->product_id, rom->version))
        return mem_unlock(m, FOTA_EEXIST);
    for (size_t i = 0; i < rom->nfiles; i++)
        for (size_t j = i + 1; j < rom->nfiles; j++)
            if (strcmp(rom->files[i].name, rom->files[j].name) == 0)
                return mem_unlock(m, FOTA_EEXIST);
    row = *rom;
    row.id = m->next_id++;
    row.created = fota_store_now();
    row.current = 0;
    for (size_t i = 0; i < row.nfiles; i++) {
        row.files[i].id = m->next_id++;
        row.files[i].download_count = 0;
    }
    if (MEM_PUSH(m, roms, &row))
        return mem_unlock(m, FOTA_ENOMEM);
    rom->id = row.id;
    rom->created = row.created;
    rom->current = 0;
    for (size_t i = 0; i < row.nfiles; i++) {
        rom->files[i].id = row.files[i].id;
        rom->files[i].download_count = 0;
    }
    return mem_unlock(m, 0);
}

static int mem_rom_get(struct fota_store *s, int64_t product_id, const char *version,
                       struct fota_rom *out)
{
    struct mem_store *m = M(s);
    struct fota_rom *r;

    mem_lock(m);
    r = find_rom(m, product_id, version);
    if (!r)
        return mem_unlock(m, FOTA_ENOENT);
    *out = *r;
    return mem_unlock(m, 0);
}

static int mem_rom_list(struct fota_store *s, int64_t product_id, struct fota_rom **out, size_t *n)
{
    struct mem_store *m = M(s);
    struct fota_rom *arr;
    size_t k = 0;

    mem_lock(m);
    arr = malloc((m->n_roms ? m->n_roms : 1) * sizeof *arr);
    if (!arr)
        return mem_unlock(m, FOTA_ENOMEM);
    for (size_t i = m->n_roms; i-- > 0;)   /* ids grow with position: newest first */
        if (m->roms[i].product_id == product_id)
            arr[k++] = m->roms[i];
    *out = arr;
    *n = k;
    return mem_unlock(m, 0);
}

static int hash_cmp(const void *a, const void *b)
{
    return strcmp(a, b);
}

static int mem_blob_refs(struct fota_store *s, char (**out)[FOTA_HASH_HEX], size_t *n)
{
    struct mem_store *m = M(s);
    char (*arr)[FOTA_HASH_HEX];
    size_t k = 0, total = 0;

    mem_lock(m);
    for (size_t i = 0; i < m->n_roms; i++)
        total += m->roms[i].nfiles;
    arr = malloc((total ? total : 1) * sizeof *arr);
    if (!arr)
        return mem_unlock(m, FOTA_ENOMEM);
    for (size_t i = 0; i < m->n_roms; i++)
        for (size_t j = 0; j < m->roms[i].nfiles; j++)
            memcpy(arr[k++], m->roms[i].files[j].sha256, FOTA_HASH_HEX);
    qsort(arr, k, sizeof *arr, hash_cmp);
    size_t u = 0;
    for (size_t i = 0; i < k; i++)
        if (u == 0 || strcmp(arr[u - 1], arr[i]) != 0)
            memmove(arr[u++], arr[i], FOTA_HASH_HEX);
    *out = arr;
    *n = u;
    return mem_unlock(m, 0);
}

static int mem_rom_set_current(struct fota_store *s, int64_t product_id, const char *version)
{
    struct mem_store *m = M(s);

    mem_lock(m);
    if (!find_rom(m, product_id, version))
        return mem_unlock(m, FOTA_ENOENT);
    for (size_t i = 0; i < m->n_roms; i++)
        if (m->roms[i].product_id == product_id)
            m->roms[i].current = strcmp(m->roms[i].version, version) == 0;
    return mem_unlock(m, 0);
}

static int mem_rom_current(struct fota_store *s, int64_t product_id, struct fota_rom *out)
{
    struct mem_store *m = M(s);

    mem_lock(m);
    for (size_t i = 0; i < m->n_roms; i++) {
        if (m->roms[i].product_id == product_id && m->roms[i].current) {
            *out = m->roms[i];
            return mem_unlock(m, 0);
        }
    }
    return mem_unlock(m, FOTA_ENOENT);
}

/* ---- devices ----------------------------------------------------------- */

static int mem_device_create(struct fota_store *s, struct fota_device *d)
{
    struct mem_store *m = M(s);
    struct fota_device row;

    mem_lock(m);
    if (!find_product(m, d->product_id))
        return mem_unlock(m, FOTA_ENOENT);
    row = *d;
    row.id = m->next_id;
    row.created = fota_store_now();
    if (MEM_PUSH(m, devices, &row))
        return mem_unlock(m, FOTA_ENOMEM);
    m->next_id++;
    d->id = row.id;
    d->created = row.created;
    return mem_unlock(m, 0);
}

static int mem_device_get(struct fota_store *s, int64_t id, struct fota_device *out)
{
    struct mem_store *m = M(s);
    struct fota_device *d;

    mem_lock(m);
    d = find_device(m, id);
    if (!d)
        return mem_unlock(m, FOTA_ENOENT);
    *out = *d;
    return mem_unlock(m, 0);
}

static int mem_device_list(struct fota_store *s, int64_t product_id, struct fota_device **out,
                           size_t *n)
{
    struct mem_store *m = M(s);
    struct fota_device *arr;
    size_t k = 0;

    mem_lock(m);
    arr = malloc((m->n_devices ? m->n_devices : 1) * sizeof *arr);
    if (!arr)
        return mem_unlock(m, FOTA_ENOMEM);
    for (size_t i = 0; i < m->n_devices; i++)
        if (product_id == 0 || m->devices[i].product_id == product_id)
            arr[k++] = m->devices[i];
    *out = arr;
    *n = k;
    return mem_unlock(m, 0);
}

static int mem_device_update(struct fota_store *s, const struct fota_device *d, unsigned fields)
{
    struct mem_store *m = M(s);
    struct fota_device *row;

    mem_lock(m);
    row = find_device(m, d->id);
    if (!row)
        return mem_unlock(m, FOTA_ENOENT);
    if (fields & FOTA_DEV_F_NAME)
        memcpy(row->name, d->name, sizeof row->name);
    if (fields & FOTA_DEV_F_BSSID)
        memcpy(row->bssid, d->bssid, sizeof row->bssid);
    if (fields & FOTA_DEV_F_ACTIVATION) {
        row->activated = d->activated;
        row->activated_at = d->activated_at;
    }
    if (fields & FOTA_DEV_F_ROM_VERSION)
        memcpy(row->rom_version, d->rom_version, sizeof row->rom_version);
    if (fields & FOTA_DEV_F_SLOT)
        row->running_slot = d->running_slot;
    if (fields & FOTA_DEV_F_PRESENCE) {
        row->last_active = d->last_active;
        row->online = d->online;
    }
    if (fields & FOTA_DEV_F_KEYGEN)
        row->key_generation = d->key_generation;
    return mem_unlock(m, 0);
}

static int mem_device_presence_batch(struct fota_store *s, const struct fota_presence *rows, size_t n)
{
    struct mem_store *m = M(s);

    mem_lock(m);
    for (size_t i = 0; i < n; i++) {
        struct fota_device *d = find_device(m, rows[i].device_id);
        if (!d)
            continue;   /* a device deleted since the ping: nothing to record */
        d->last_active = rows[i].last_active;
        d->online = rows[i].online;
    }
    return mem_unlock(m, 0);
}

/* ---- keys -------------------------------------------------------------- */

static int mem_key_create(struct fota_store *s, const struct fota_key *k)
{
    struct mem_store *m = M(s);
    struct fota_key row;

    if (!k->hash[0])
        return FOTA_EINVAL;
    mem_lock(m);
    if ((k->product_id && !find_product(m, k->product_id)) ||
        (k->device_id && !find_device(m, k->device_id)))
        return mem_unlock(m, FOTA_ENOENT);
    for (size_t i = 0; i < m->n_keys; i++)
        if (strcmp(m->keys[i].hash, k->hash) == 0)
            return mem_unlock(m, FOTA_EEXIST);
    row = *k;
    if (!row.created)
        row.created = fota_store_now();
    return mem_unlock(m, MEM_PUSH(m, keys, &row));
}

static int mem_key_lookup(struct fota_store *s, const char *hash_hex, struct fota_key *out)
{
    struct mem_store *m = M(s);

    mem_lock(m);
    for (size_t i = 0; i < m->n_keys; i++) {
        if (strcmp(m->keys[i].hash, hash_hex) == 0) {
            *out = m->keys[i];
            return mem_unlock(m, 0);
        }
    }
    return mem_unlock(m, FOTA_ENOENT);
}

static int mem_key_delete_for_device(struct fota_store *s, int64_t device_id, int kind)
{
    struct mem_store *m = M(s);
    size_t k = 0;

    mem_lock(m);
    for (size_t i = 0; i < m->n_keys; i++) {
        if (m->keys[i].device_id == device_id && (kind == 0 || m->keys[i].kind == kind))
            continue;
        m->keys[k++] = m->keys[i];
    }
    m->n_keys = k;
    return mem_unlock(m, 0);
}

/* ---- commands ---------------------------------------------------------- */

static struct fota_command *find_command(struct mem_store *m, int64_t id)
{
    for (size_t i = 0; i < m->n_commands; i++)
        if (m->commands[i].id == id)
            return &m->commands[i];
    return NULL;
}

static int mem_command_create(struct fota_store *s, struct fota_command *c)
{
    struct mem_store *m = M(s);
    struct fota_command row;

    if (!c->action[0])
        return FOTA_EINVAL;
    mem_lock(m);
    if (!find_device(m, c->device_id))
        return mem_unlock(m, FOTA_ENOENT);
    row = *c;
    row.id = m->next_id;
    row.created = row.updated = fota_store_now();
    if (!row.nonce)
        row.nonce = fota_store_nonce();
    if (!row.state)
        row.state = FOTA_CMD_QUEUED;
    if (MEM_PUSH(m, commands, &row))
        return mem_unlock(m, FOTA_ENOMEM);
    m->next_id++;
    c->id = row.id;
    c->created = c->updated = row.created;
    c->nonce = row.nonce;
    c->state = row.state;
    return mem_unlock(m, 0);
}

static int mem_command_update(struct fota_store *s, const struct fota_command *c)
{
    struct mem_store *m = M(s);
    struct fota_command *row;

    mem_lock(m);
    row = find_command(m, c->id);
    if (!row)
        return mem_unlock(m, FOTA_ENOENT);
    row->state = c->state;
    memcpy(row->result, c->result, sizeof row->result);
    row->updated = c->updated ? c->updated : fota_store_now();
    return mem_unlock(m, 0);
}

static int mem_command_get(struct fota_store *s, int64_t id, struct fota_command *out)
{
    struct mem_store *m = M(s);
    struct fota_command *c;

    mem_lock(m);
    c = find_command(m, id);
    if (!c)
        return mem_unlock(m, FOTA_ENOENT);
    *out = *c;
    return mem_unlock(m, 0);
}

static int mem_command_list_device(struct fota_store *s, int64_t device_id, int state,
                                   struct fota_command **out, size_t *n)
{
    struct mem_store *m = M(s);
    struct fota_command *arr;
    size_t k = 0;

    mem_lock(m);
    arr = malloc((m->n_commands ? m->n_commands : 1) * sizeof *arr);
    if (!arr)
        return mem_unlock(m, FOTA_ENOMEM);
    for (size_t i = 0; i < m->n_commands; i++)
        if (m->commands[i].device_id == device_id && (state == 0 || m->commands[i].state == state))
            arr[k++] = m->commands[i];
    *out = arr;
    *n = k;
    return mem_unlock(m, 0);
}

static int mem_command_create_many(struct fota_store *s, const struct fota_command *tmpl,
                                   const int64_t *device_ids, int64_t *nonces, int64_t *ids, size_t n)
{
    struct mem_store *m = M(s);
    int64_t now = fota_store_now();

    if (!tmpl->action[0])
        return FOTA_EINVAL;
    mem_lock(m);
    for (size_t i = 0; i < n; i++)
        if (!find_device(m, device_ids[i]))
            return mem_unlock(m, FOTA_ENOENT);
    size_t before = m->n_commands;
    for (size_t i = 0; i < n; i++) {
        struct fota_command row = *tmpl;
        row.id = m->next_id;
        row.device_id = device_ids[i];
        row.nonce = nonces[i] ? nonces[i] : fota_store_nonce();
        row.state = tmpl->state ? tmpl->state : FOTA_CMD_QUEUED;
        row.created = row.updated = now;
        if (MEM_PUSH(m, commands, &row)) {
            m->n_commands = before; /* all or nothing */
            return mem_unlock(m, FOTA_ENOMEM);
        }
        m->next_id++;
        ids[i] = row.id;
        nonces[i] = row.nonce;
    }
    return mem_unlock(m, 0);
}

static int mem_command_update_batch(struct fota_store *s, const struct fota_command_set *rows, size_t n)
{
    struct mem_store *m = M(s);
    int64_t now = fota_store_now();

    mem_lock(m);
    for (size_t i = 0; i < n; i++) {
        struct fota_command *row = find_command(m, rows[i].id);
        if (!row)
            continue;
        row->state = rows[i].state;
        if (rows[i].result) {
            size_t l = strnlen(rows[i].result, sizeof row->result - 1);
            memcpy(row->result, rows[i].result, l);
            row->result[l] = '\0';
        }
        row->updated = rows[i].updated ? rows[i].updated : now;
    }
    return mem_unlock(m, 0);
}

/* ---- messages ---------------------------------------------------------- */

static int mem_message_add(struct fota_store *s, struct fota_message *msg)
{
    struct mem_store *m = M(s);
    struct fota_message row;

    if (!msg->action[0])
        return FOTA_EINVAL;
    mem_lock(m);
    row = *msg;
    row.id = m->next_id;
    if (!row.created)
        row.created = fota_store_now();
    if (MEM_PUSH(m, messages, &row))
        return mem_unlock(m, FOTA_ENOMEM);
    m->next_id++;
    msg->id = row.id;
    msg->created = row.created;
    return mem_unlock(m, 0);
}

static int message_matches(const struct fota_message *msg, const struct fota_message_filter *f)
{
    return (!f->product_id || msg->product_id == f->product_id) &&
           (!f->device_id || msg->device_id == f->device_id) &&
           (!f->before_id || msg->id < f->before_id) &&
           (!f->after_id || msg->id > f->after_id);
}

static int mem_message_list(struct fota_store *s, const struct fota_message_filter *f,
                            struct fota_message **out, size_t *n)
{
    struct mem_store *m = M(s);
    size_t limit = fota_store_limit(f->limit), k = 0;
    struct fota_message *arr;

    mem_lock(m);
    arr = malloc(limit * sizeof *arr);
    if (!arr)
        return mem_unlock(m, FOTA_ENOMEM);
    if (f->after_id) {             /* following: oldest first so nothing is skipped */
        for (size_t i = 0; i < m->n_messages && k < limit; i++)
            if (message_matches(&m->messages[i], f))
                arr[k++] = m->messages[i];
    } else {                        /* browsing: newest first */
        for (size_t i = m->n_messages; i-- > 0 && k < limit;)
            if (message_matches(&m->messages[i], f))
                arr[k++] = m->messages[i];
    }
    *out = arr;
    *n = k;
    return mem_unlock(m, 0);
}

/* ---- download ledger and transfers ------------------------------------- */

static int mem_download_add(struct fota_store *s, int64_t device_id, int64_t file_id, int64_t bytes,
                            int completed)
{
    struct mem_store *m = M(s);
    struct fota_rom_file *file;
    struct mem_download row = { device_id, file_id, 0, 0 };
    struct mem_download *d = NULL;

    if (bytes < 0 || completed < 0)
        return FOTA_EINVAL;
    mem_lock(m);
    file = find_file(m, file_id);
    if (!file)
        return mem_unlock(m, FOTA_ENOENT);
    for (size_t i = 0; i < m->n_downloads && !d; i++)
        if (m->downloads[i].device_id == device_id && m->downloads[i].file_id == file_id)
            d = &m->downloads[i];
    if (!d) {
        if (MEM_PUSH(m, downloads, &row))
            return mem_unlock(m, FOTA_ENOMEM);
        d = &m->downloads[m->n_downloads - 1];
    }
    d->bytes += bytes;
    d->completions += completed;
    file->download_count += completed;
    return mem_unlock(m, 0);
}

static int mem_download_bytes(struct fota_store *s, int64_t device_id, int64_t *bytes)
{
    struct mem_store *m = M(s);
    int64_t sum = 0;

    mem_lock(m);
    for (size_t i = 0; i < m->n_downloads; i++)
        if (m->downloads[i].device_id == device_id)
            sum += m->downloads[i].bytes;
    *bytes = sum;
    return mem_unlock(m, 0);
}

static int mem_transfer_add(struct fota_store *s, struct fota_transfer *t)
{
    struct mem_store *m = M(s);
    struct fota_transfer row;

    mem_lock(m);
    row = *t;
    row.id = m->next_id;
    if (!row.created)
        row.created = fota_store_now();
    if (MEM_PUSH(m, transfers, &row))
        return mem_unlock(m, FOTA_ENOMEM);
    m->next_id++;
    t->id = row.id;
    t->created = row.created;
    return mem_unlock(m, 0);
}

static int mem_transfer_list(struct fota_store *s, size_t limit, struct fota_transfer **out, size_t *n)
{
    struct mem_store *m = M(s);
    struct fota_transfer *arr;
    size_t k = 0;

    limit = fota_store_limit(limit);
    mem_lock(m);
    arr = malloc(limit * sizeof *arr);
    if (!arr)
        return mem_unlock(m, FOTA_ENOMEM);
    for (size_t i = m->n_transfers; i-- > 0 && k < limit;)
        arr[k++] = m->transfers[i];
    *out = arr;
    *n = k;
    return mem_unlock(m, 0);
}

static void mem_close(struct fota_store *s)
{
    struct mem_store *m = M(s);

    free(m->products);
    free(m->roms);
    free(m->devices);
    free(m->keys);
    free(m->commands);
    free(m->messages);
    free(m->downloads);
    free(m->transfers);
    pthread_mutex_destroy(&m->lock);
    free(m);
}

static const struct fota_store_ops mem_ops = {
    .name = "memory",
    .close = mem_close,
    .product_create = mem_product_create,
    .product_get = mem_product_get,
    .product_find = mem_product_find,
    .product_list = mem_product_list,
    .rom_create = mem_rom_create,
    .rom_get = mem_rom_get,
    .rom_list = mem_rom_list,
    .blob_refs = mem_blob_refs,
    .rom_set_current = mem_rom_set_current,
    .rom_current = mem_rom_current,
    .device_create = mem_device_create,
    .device_get = mem_device_get,
    .device_list = mem_device_list,
    .device_update = mem_device_update,
    .device_presence_batch = mem_device_presence_batch,
    .key_create = mem_key_create,
    .key_lookup = mem_key_lookup,
    .key_delete_for_device = mem_key_delete_for_device,
    .command_create = mem_command_create,
    .command_update = mem_command_update,
    .command_get = mem_command_get,
    .command_list_device = mem_command_list_device,
    .command_create_many = mem_command_create_many,
    .command_update_batch = mem_command_update_batch,
    .message_add = mem_message_add,
    .message_list = mem_message_list,
    .download_add = mem_download_add,
    .download_bytes = mem_download_bytes,
    .transfer_add = mem_transfer_add,
    .transfer_list = mem_transfer_list,
    .rom_delete = fota_store_mem_rom_delete,
    .device_delete = fota_store_mem_device_delete,
    .product_delete = fota_store_mem_product_delete,
};

int fota_store_mem_open(fota_log_cb log, void *log_ud, struct fota_store **out)
{
    struct mem_store *m;

    *out = NULL;
    m = calloc(1, sizeof *m);
    if (!m)
        return FOTA_ENOMEM;
    if (pthread_mutex_init(&m->lock, NULL) != 0) {
        free(m);
        return FOTA_ENOMEM;
    }
    m->base.ops = &mem_ops;
    m->base.log = log;
    m->base.log_ud = log_ud;
    m->next_id = 1;
    *out = &m->base;
    return 0;
}
