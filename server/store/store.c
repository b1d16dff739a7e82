/* store.c - what every store backend shares (store_int.h): command nonces,
 * the decoding and encoding of command params and results, logging through
 * the store's callback (rate-limited where a full disk would repeat a line)
 * the list limits, the tag rule, a device's position in an order
 * (device_page's cursor), and the checks and results every backend's ops
 * share (product_create, rom_create, device_tags_edit, command_create).
 *
 * Nonces come from OpenSSL's CSPRNG so that a device cannot predict the next
 * command id. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include <openssl/rand.h>
#include "clock.h"
#include "fota_str.h"
#include "logf.h"
#include "store_int.h"

static _Thread_local int64_t fence_epoch;

void fota_store_fence(int64_t epoch)
{
    fence_epoch = epoch;
}

int64_t fota_store_fence_epoch(void)
{
    return fence_epoch;
}

int64_t fota_store_nonce(void)
{
    /* Process-wide and atomic (every loop thread creates commands); used
     * only if OpenSSL has no randomness to give, so that nonces still
     * differ from one call to the next. */
    static uint32_t fallback;
    uint32_t v = 0;

    if (RAND_bytes((unsigned char *)&v, sizeof v) != 1)
        v = (uint32_t)fota_clock_mono_ms() * 2654435761u +
            __atomic_add_fetch(&fallback, 1, __ATOMIC_RELAXED);
    v &= 0x7fffffffu;
    return v ? (int64_t)v : 1;
}

void fota_store_logf(struct fota_store *s, int level, const char *fmt, ...)
{
    va_list ap;

    if (!s)
        return;
    va_start(ap, fmt);
    fota_vlogf(s->log, s->log_ud, level, fmt, ap);
    va_end(ap);
}

size_t fota_store_limit(size_t limit)
{
    if (limit == 0)
        return FOTA_STORE_LIST_DEFAULT;
    return limit > FOTA_STORE_LIST_MAX ? FOTA_STORE_LIST_MAX : limit;
}

void fota_store_command_cleanup(struct fota_command *c)
{
    if (!c)
        return;
    json_decref(c->params);
    json_decref(c->result);
    c->params = c->result = NULL;
}

void fota_store_command_give(struct fota_command *row, struct fota_command *out, int rc)
{
    if (out && (rc == 0 || rc == FOTA_EBUSY)) {
        *out = *row;
        return;
    }
    fota_store_command_cleanup(row);
    if (out)
        memset(out, 0, sizeof *out);
}

void fota_store_command_list_free(struct fota_command *list, size_t n)
{
    for (size_t i = 0; list && i < n; i++)
        fota_store_command_cleanup(&list[i]);
    free(list);
}

json_t *fota_store_json_decode(const char *text, size_t len, int object)
{
    json_error_t jerr;
    json_t *v = len ? json_loadb(text, len, JSON_DECODE_ANY, &jerr) : NULL;
    if (object && !json_is_object(v)) {
        json_decref(v);
        return json_object();
    }
    if (!v && len) /* a row written by hand or an older fotad: keep its text */
        v = json_stringn(text, len);
    return v;
}

char *fota_store_json_encode(const json_t *v)
{
    return v ? json_dumps(v, JSON_SORT_KEYS | JSON_ENCODE_ANY) : NULL;
}

int fota_store_ratelimit_pass(struct fota_store_ratelimit *rl, unsigned *suppressed)
{
    int64_t now = fota_clock_mono_ms();

    if (rl->next_ms && now < rl->next_ms) {
        rl->suppressed++;
        return 0;
    }
    *suppressed = rl->suppressed;
    rl->suppressed = 0;
    rl->next_ms = now + 1000;
    return 1;
}

int fota_store_tag_valid(const char *tag)
{
    size_t n = 0;

    if (!tag)
        return 0;
    for (; tag[n]; n++) {
        char c = tag[n];
        if (n + 1 >= FOTA_TAG_MAX ||
            !((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '.' || c == '_' || c == '-' || c == ':' || c == '='))
            return 0;
    }
    return n > 0;
}

void fota_device_key_of(const struct fota_device *d, int sort, struct fota_device_key *out)
{
    memset(out, 0, sizeof *out);
    out->id = d->id;
    if (sort == FOTA_DEVICE_SORT_NAME)
        fota_str_copy(out->text, sizeof out->text, d->name);
    else if (sort == FOTA_DEVICE_SORT_VERSION)
        fota_str_copy(out->text, sizeof out->text, d->rom_version);
    else if (sort == FOTA_DEVICE_SORT_LAST_ACTIVE)
        out->num = d->last_active;
    else if (sort == FOTA_DEVICE_SORT_CREATED)
        out->num = d->created;
}

int fota_store_product_check(struct fota_product *p)
{
    if (!p->name[0] ||
        (p->slot_check != FOTA_SLOT_CHECK_BYTE3 && p->slot_check != FOTA_SLOT_CHECK_NAME))
        return FOTA_EINVAL;
    if (!p->status[0])
        fota_str_copy(p->status, sizeof p->status, "development");
    return 0;
}

int fota_store_tags_edit_check(int mode, const char *const *tags, size_t nt)
{
    if (mode != FOTA_TAGS_ADD && mode != FOTA_TAGS_REMOVE && mode != FOTA_TAGS_SET)
        return FOTA_EINVAL;
    for (size_t i = 0; i < nt; i++)
        if (!fota_store_tag_valid(tags[i]))
            return FOTA_EINVAL;
    return 0;
}

int fota_store_report_rows_check(const struct fota_report_row *rows, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!rows[i].m.action[0] ||
            (rows[i].fields & ~(unsigned)(FOTA_DEV_F_ROM_VERSION | FOTA_DEV_F_SLOT)))
            return FOTA_EINVAL;
    return 0;
}

void fota_store_command_created(struct fota_command *c, int64_t id, int64_t nonce, int64_t now)
{
    c->id = id;
    c->nonce = nonce;
    c->state = c->state ? c->state : FOTA_CMD_QUEUED;
    c->created = c->updated = now;
}

void fota_store_replaced_out(const int64_t *old, size_t nold, int64_t *replaced, size_t cap,
                             size_t *nreplaced)
{
    for (size_t i = 0; replaced && i < nold && i < cap; i++)
        replaced[i] = old[i];
    if (nreplaced)
        *nreplaced = nold;
}

void fota_store_rom_created(struct fota_rom *rom, int64_t id, int64_t now, const int64_t *fid)
{
    rom->id = id;
    rom->created = now;
    rom->current = 0;
    for (size_t i = 0; i < rom->nfiles; i++) {
        rom->files[i].id = fid[i];
        rom->files[i].download_count = 0;
    }
}

int fota_store_command_open(int state)
{
    return state == FOTA_CMD_DELIVERED || state == FOTA_CMD_ACKED || state == FOTA_CMD_TIMEOUT;
}

int fota_store_command_reply_state(const char *action, int status)
{
    if (status != 200)
        return FOTA_CMD_FAILED;
    return strcmp(action, "sys_upgrade") == 0 ? FOTA_CMD_ACKED : FOTA_CMD_DONE;
}
