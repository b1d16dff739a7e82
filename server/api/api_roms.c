/* api_roms.c - ROM releases of a product (admin key):
 * POST /v1/products/ID/roms/ (multipart upload), GET /v1/products/ID/roms/,
 * POST /v1/products/ID/roms/VERSION/current, GET /v1/products/ID/roms/VERSION/
 * and GET|HEAD /v1/products/ID/roms/VERSION/files/NAME (the stored file).
 * Publishing is atomic: every file is checked, then written as a durable blob,
 * then ONE store transaction (rom_create) makes the release visible; both
 * on the upload thread, never on a loop. */
#include <event2/buffer.h>
#include <event2/event.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "api.h"
#include "arduino.h"
#include "fota_str.h"
#include "fwimg.h"
#include "log.h"
#include "multipart.h"
#include "recovery.h"
#include "rom.h"
#include "version.h"
#include "xmalloc.h"

#define MAX_PARTS 24

/* Copies a text field; 0 ok, else replies. */
static int field_copy(struct fota_req *r, const struct fota_mp_part *p, const char *name,
                      char *out, size_t cap)
{
    if (p->len >= cap) {
        fota_reply_error(r, 422, "%s is longer than %zu bytes", name, cap - 1);
        return -1;
    }
    if (!fota_api_utf8_ok((const char *)p->data, p->len)) {
        fota_reply_error(r, 400, "%s is not valid UTF-8 text", name);
        return -1;
    }
    memcpy(out, p->data, p->len);
    out[p->len] = '\0';
    return 0;
}

/* 0 if v is an acceptable release version, else replies 400. */
static int version_ok(struct fota_req *r, const char *v)
{
    struct fota_version pv;
    for (const char *c = v; *c; c++)
        if (*c <= ' ' || *c == '/' || *c == '"' || *c == '\\' || *c == '&' || *c == '?' ||
            *c == '#' || *c == '%' || (unsigned char)*c >= 0x7f) {
            fota_reply_error(r, 400, "version \"%s\" contains a character that is not allowed", v);
            return -1;
        }
    if (fota_version_parse(v, &pv) != 0) {
        fota_reply_error(r, 400, "version \"%s\" is not a version (vN1.N2.N3[tPTYPE(x)] "
                                 "or dotted numbers, at most %d characters)", v,
                         FOTA_VERSION_TEXT_MAX);
        return -1;
    }
    return 0;
}

/* A release's JSON: the rom module's view, with an arduino product's facts. */
static json_t *rom_view(struct fota_server *srv, const struct fota_rom *rom)
{
    json_t *rj = fota_rom_json(rom);
    fota_arduino_rom_json(srv, rom, rj);
    return rj;
}

struct upload {
    struct fota_product product;
    struct fota_rom rom;
    struct fota_mp_part parts[MAX_PARTS];
    size_t nparts;
    const struct fota_mp_part *files[FOTA_ROM_MAX_FILES];
    size_t nfiles;
    int fresh[FOTA_ROM_MAX_FILES];       /* blob written by this upload */
    struct fota_fwimg_info info[FOTA_ROM_MAX_FILES];
    int parsed[FOTA_ROM_MAX_FILES];
    char names[FOTA_ROM_MAX_FILES][FOTA_NAME_MAX];
    struct fota_arduino_release *arduino; /* an arduino product's files (server/arduino/) */
    /* Set by the blob writer (worker thread). */
    int err;
    size_t err_file;
    int refused;                          /* a file failed its check: the status */
    char refused_why[512];
    int product_err;                      /* the product could not be read: its error */
    int commit_err;                       /* the release's store transaction: 0 or its error */
    json_t *view;                         /* the release's JSON view once committed */
    /* The request waiting for this upload, and the queue link. */
    struct fota_req *r;
    struct upload *next;
};

/* Uploads write their blobs (and fsync) on a worker thread, one at a time in
 * arrival order, so the event loop keeps serving devices meanwhile; an
 * arduino release's files are checked there first (inflating, compressing
 * at the best level, verifying signatures: up to a second of CPU for a
 * large image). The release transaction runs there too, after the blobs;
 * the reply happens back on the loop thread. Strictly
 * one at a time: a failed upload deletes the blobs it created, which must not
 * be blobs a concurrent upload of the same bytes believes already existed. */
struct fota_api_uploads {
    struct fota_server *srv;
    struct upload *head, *tail;   /* head: the one being written */
    int64_t enqueued;             /* uploads queued since start (fota_api_uploads_mark) */
    pthread_t thread;
    int thread_live;
    struct event *done_ev;
};

static void remove_fresh_blobs(struct fota_server *srv, struct upload *u)
{
    for (size_t i = 0; i < u->rom.nfiles; i++)
        if (u->fresh[i])
            fota_blob_remove(srv->blobs, u->rom.files[i].sha256);
}

/* Worker thread: an arduino release's files checked and derived (only u is
 * touched), then files durable first (temp, fsync, rename). Touches only u
 * and the blob store (thread-safe). */
static void write_blobs(struct fota_server *srv, struct upload *u)
{
    if (u->arduino) {
        u->refused = fota_arduino_release_check(u->arduino, u->refused_why,
                                                sizeof(u->refused_why));
        if (u->refused)
            return;
        u->nfiles = fota_arduino_release_nfiles(u->arduino);
        for (size_t i = 0; i < u->nfiles; i++) {
            u->files[i] = fota_arduino_release_part(u->arduino, i);
            fota_str_copy(u->names[i], sizeof(u->names[i]),
                          fota_arduino_release_name(u->arduino, i));
        }
    }
    for (size_t i = 0; i < u->nfiles; i++) {
        struct fota_rom_file *f = &u->rom.files[i];
        char hash[FOTA_HASH_HEX];
        fota_blob_hash(u->files[i]->data, u->files[i]->len, hash);
        int existed = fota_blob_exists(srv->blobs, hash) == 1;
        int e = fota_blob_put(srv->blobs, u->files[i]->data, u->files[i]->len, f->sha256);
        if (e) {
            u->err = e;
            u->err_file = i;
            return;
        }
        u->fresh[i] = !existed;
        memcpy(f->name, u->names[i], strlen(u->names[i]) + 1);
        f->size = (int64_t)u->files[i]->len;
        f->slot = u->parsed[i] ? (int)u->info[i].slot : 0;
        u->rom.nfiles = i + 1;
    }
}

/* Worker thread, after the blobs: the release's one transaction (an
 * arduino release's facts first), and its JSON view, which reads the store
 * too. Touches only u, the store and the blob store. */
static void commit_release(struct fota_server *srv, struct upload *u)
{
    if (u->refused || u->err)
        return;
    fota_recovery_crash_point("after_blobs");   /* test hook (recovery.h) */
    u->commit_err = u->arduino ? fota_arduino_release_commit(srv, u->arduino) : 0;
    if (u->commit_err == 0)
        u->commit_err = srv->store->ops->rom_create(srv->store, &u->rom);
    if (u->commit_err == 0)
        u->view = rom_view(srv, &u->rom);
}

static void upload_check(struct fota_server *srv, struct upload *u);

/* The upload thread's part of the head upload, in order. */
static void upload_work(struct fota_server *srv, struct upload *u)
{
    upload_check(srv, u);
    if (u->refused || u->product_err)
        return;
    write_blobs(srv, u);
    commit_release(srv, u);
}

static void *blob_worker(void *arg)
{
    struct fota_api_uploads *q = arg;
    upload_work(q->srv, q->head);
    event_active(q->done_ev, EV_READ, 0);
    return NULL;
}

/* Loop thread, after the blobs and the transaction: the reply. Frees u. */
static void upload_finish(struct fota_server *srv, struct upload *u)
{
    struct fota_req *r = u->r;
    int64_t pid = u->rom.product_id;
    int e = u->commit_err;

    if (u->product_err) {
        fota_reply_status(r, u->product_err, "product %lld", (long long)pid);
        goto out;
    }
    if (u->refused) {
        fota_reply_error(r, u->refused, "%s", u->refused_why);
        goto out;
    }
    if (u->err) {
        remove_fresh_blobs(srv, u);
        fota_reply_error(r, u->err == FOTA_ENOSPC ? 507 : 500, "cannot store %s: %s",
                         u->names[u->err_file], fota_strerror(u->err));
        goto out;
    }
    if (e) {
        remove_fresh_blobs(srv, u);
        if (e == FOTA_EEXIST)
            fota_reply_error(r, 409, "version %s of product %lld exists", u->rom.version,
                             (long long)pid);
        else
            fota_reply_status(r, e, "release %s", u->rom.version);
        goto out;
    }
    FOTA_INFO("rom released product=%lld version=%s files=%zu", (long long)pid, u->rom.version,
              u->rom.nfiles);
    fota_server_publish_json(srv, pid, 0, "rom_released",
                             fota_http_json_pack("{s:s, s:I}", "version", u->rom.version, "files",
                                                 (json_int_t)u->rom.nfiles));
    json_t *j = json_object();
    json_object_set_new(j, "rom", u->view);
    u->view = NULL;
    struct fota_version pv;
    if (fota_version_parse(u->rom.version, &pv) == 0 && pv.espressif &&
        strlen(u->rom.version) != 15) {
        json_object_set_new(j, "warnings", fota_http_json_pack("[s]",
            "stock IoT_Demo firmware copies exactly 15 characters of the sys_upgrade version; "
            "prefer the vN.N.NtPTYPE(a) form"));
    }
    fota_reply_json(r, 200, j);
out:
    fota_req_release(r);
    fota_arduino_release_free(u->arduino);
    json_decref(u->view);
    free(u);
}

/* Starts writing the head upload; without a thread, writes it inline. */
static void upload_start(struct fota_api_uploads *q)
{
    if (pthread_create(&q->thread, NULL, blob_worker, q) == 0) {
        q->thread_live = 1;
        return;
    }
    FOTA_WARN("no upload thread, writing on the loop thread");
    upload_work(q->srv, q->head);
    event_active(q->done_ev, EV_READ, 0);
}

static void upload_done(evutil_socket_t fd, short what, void *arg)
{
    struct fota_api_uploads *q = arg;
    struct upload *u = q->head;
    (void)fd;
    (void)what;
    if (!u)
        return;
    if (q->thread_live) {
        pthread_join(q->thread, NULL);
        q->thread_live = 0;
    }
    q->head = u->next;
    if (!q->head)
        q->tail = NULL;
    upload_finish(q->srv, u);
    if (q->head)
        upload_start(q);
}

/* Takes u and defers u->r. */
static void upload_enqueue(struct fota_api *api, struct upload *u)
{
    struct fota_api_uploads *q = api->uploads;
    fota_req_defer(u->r);
    u->next = NULL;
    if (q->tail)
        q->tail->next = u;
    else
        q->head = u;
    q->tail = u;
    q->enqueued++;
    if (q->head == u)
        upload_start(q);
}

int64_t fota_api_uploads_mark(const struct fota_api *api)
{
    if (!api->uploads)
        return 0;
    return api->uploads->head ? -1 : api->uploads->enqueued;
}

void fota_api_roms_shutdown(struct fota_api *api)
{
    struct fota_server *srv = api->srv;
    struct fota_api_uploads *q = api->uploads;
    if (!q)
        return;
    /* The upload being written completes (its release is committed); the
     * queued ones are refused. */
    if (q->thread_live) {
        pthread_join(q->thread, NULL);
        q->thread_live = 0;
    }
    if (q->head) {
        struct upload *u = q->head;
        q->head = u->next;
        upload_finish(srv, u);
    }
    while (q->head) {
        struct upload *u = q->head;
        q->head = u->next;
        fota_reply_error(u->r, 503, "fotad is shutting down; upload again");
        fota_req_release(u->r);
        fota_arduino_release_free(u->arduino);
        free(u);
    }
    event_free(q->done_ev);
    free(q);
    api->uploads = NULL;
}

/* The request body into u->parts: a multipart/form-data body within
 * max_upload that leaves the disk its reserve (fota_blob_room). 0, or -1
 * after replying 400/413/507. */
static int upload_parse(struct fota_req *r, struct upload *u)
{
    char boundary[FOTA_MP_BOUNDARY_MAX + 1];
    if (fota_multipart_boundary(fota_req_header(r, "Content-Type"), boundary,
                                sizeof(boundary)) != 0) {
        fota_reply_error(r, 400, "Content-Type must be multipart/form-data with a boundary");
        return -1;
    }
    struct evbuffer *in = evhttp_request_get_input_buffer(r->ev);
    size_t blen = evbuffer_get_length(in);
    uint64_t max_upload = fota_http_conf(r->srv)->max_upload;
    if (blen > max_upload) {
        fota_reply_error(r, 413, "upload larger than max_upload (%llu bytes)",
                         (unsigned long long)max_upload);
        return -1;
    }
    if (fota_blob_room(r->srv->blobs, blen) != 0) {   /* before any file is written */
        fota_reply_error(r, 507, "no space left on device for an upload of %zu bytes", blen);
        return -1;
    }
    const uint8_t *body = blen ? evbuffer_pullup(in, -1) : (const uint8_t *)"";
    int e = fota_multipart_parse(body, blen, boundary, u->parts, MAX_PARTS, &u->nparts);
    if (e == FOTA_ETRUNC)
        fota_reply_error(r, 400, "truncated multipart body (no closing boundary)");
    else if (e == FOTA_ERANGE)
        fota_reply_error(r, 400, "too many parts or headers too large (at most %d parts)",
                         MAX_PARTS);
    else if (e)
        fota_reply_error(r, 400, "malformed multipart body");
    return e ? -1 : 0;
}

/* One file part into u->files. 0, or -1 after replying 422. */
static int upload_file(struct fota_req *r, struct upload *u, const struct fota_mp_part *p)
{
    if (u->nfiles == FOTA_ROM_MAX_FILES) {
        fota_reply_error(r, 422, "a release holds at most %d files", FOTA_ROM_MAX_FILES);
        return -1;
    }
    if (!fota_api_filename_ok(p->filename.ptr, p->filename.len)) {
        fota_reply_error(r, 422, "file name \"%.*s\" is not allowed (use 1-63 of "
                         "A-Z a-z 0-9 . _ -)", (int)(p->filename.len > 80 ? 80 :
                         p->filename.len), p->filename.ptr);
        return -1;
    }
    for (size_t k = 0; k < u->nfiles; k++)
        if (u->files[k]->filename.len == p->filename.len &&
            memcmp(u->files[k]->filename.ptr, p->filename.ptr, p->filename.len) == 0) {
            fota_reply_error(r, 422, "file %.*s is given twice", (int)p->filename.len,
                             p->filename.ptr);
            return -1;
        }
    u->files[u->nfiles++] = p;
    return 0;
}

/* The parts: files, version, codename, changelog (other form fields are
 * ignored: web forms send extras). 0, or -1 after replying. */
static int upload_fields(struct fota_req *r, struct upload *u)
{
    int have_version = 0;
    for (size_t i = 0; i < u->nparts; i++) {
        const struct fota_mp_part *p = &u->parts[i];
        int rc = 0;
        if (p->filename.ptr) {
            rc = upload_file(r, u, p);
        } else if (fota_multipart_str_eq(p->name, "version")) {
            if (have_version++) {
                fota_reply_error(r, 400, "version is given twice");
                return -1;
            }
            rc = field_copy(r, p, "version", u->rom.version, FOTA_VERSION_TEXT_MAX + 1);
        } else if (fota_multipart_str_eq(p->name, "codename") ||
                   fota_multipart_str_eq(p->name, "corename")) {
            rc = field_copy(r, p, "codename", u->rom.codename, sizeof(u->rom.codename));
        } else if (fota_multipart_str_eq(p->name, "changelog")) {
            rc = field_copy(r, p, "changelog", u->rom.changelog, sizeof(u->rom.changelog));
        }
        if (rc)
            return -1;
    }
    if (!have_version || !u->rom.version[0]) {
        fota_reply_error(r, 400, "version is required");
        return -1;
    }
    if (version_ok(r, u->rom.version))
        return -1;
    if (u->nfiles == 0) {
        fota_reply_error(r, 400, "no file parts (user1.bin and user2.bin are required; "
                                 "firmware.bin on an arduino product)");
        return -1;
    }
    return 0;
}

/* Worker thread, first: the product read, and the images checked against
 * its rules (a refusal names the file and the reason in u->refused and
 * u->refused_why). An existing version is found by the release's own
 * transaction (FOTA_EEXIST, 409). Touches only u and the store. */
static void upload_check(struct fota_server *srv, struct upload *u)
{
    char reason[512];
    int64_t pid = u->rom.product_id;
    int e = srv->store->ops->product_head(srv->store, pid, &u->product);
    if (e) {
        u->product_err = e;
        return;
    }
    /* An arduino product's files are its own (firmware.bin, firmware-minimal.bin,
     * derived gzip): the module takes them here and checks them in
     * write_blobs, which then stores what it says. */
    if (fota_arduino_is_product(srv, pid)) {
        e = fota_arduino_release_prepare(srv, pid, u->files, u->nfiles, &u->arduino, reason,
                                         sizeof(reason));
        if (e) {
            u->refused = e;
            fota_str_copy(u->refused_why, sizeof u->refused_why, reason);
            return;
        }
        u->nfiles = 0;
        return;
    }
    struct fota_release_file rf[FOTA_ROM_MAX_FILES];
    for (size_t i = 0; i < u->nfiles; i++) {
        const struct fota_mp_part *p = u->files[i];
        memcpy(u->names[i], p->filename.ptr, p->filename.len);
        u->names[i][p->filename.len] = '\0';
        u->parsed[i] = fota_fwimg_parse(p->data, p->len, &u->info[i]) == 0;
        rf[i] = (struct fota_release_file){ .name = u->names[i], .data = p->data, .len = p->len };
    }
    reason[0] = '\0';
    int by_name = u->product.slot_check == FOTA_SLOT_CHECK_NAME;
    e = fota_fwimg_release_check_flags(fota_flash_map_get(u->product.flash_map), rf, u->nfiles,
                                       by_name ? FOTA_RELEASE_F_SLOT_BY_NAME : 0, reason,
                                       sizeof(reason));
    if (e) {
        u->refused = 422;
        fota_str_copy(u->refused_why, sizeof u->refused_why,
                      reason[0] ? reason : fota_strerror(e));
        return;
    }
    /* slot_check "name": an image without a slot number is the slot its name says. */
    for (size_t i = 0; by_name && i < u->nfiles; i++) {
        int s = strcmp(u->names[i], "user1.bin") == 0   ? 1
                : strcmp(u->names[i], "user2.bin") == 0 ? 2
                                                        : 0;
        if (s && u->parsed[i] && u->info[i].slot == FOTA_FWIMG_SLOT_UNKNOWN) {
            u->info[i].slot = (enum fota_fwimg_slot)s;
            u->info[i].slot_src = FOTA_FWIMG_SLOTSRC_NAME;
        }
    }
}

/* On the loop: the key, the body's form; the rest is the upload thread's
 * (upload_check, write_blobs, commit_release). */
static void handle_rom_upload(struct fota_req *r)
{
    struct fota_key key;
    if (fota_req_admin(r, &key))
        return;
    int64_t pid = fota_req_cap_id(r, 0);
    if (pid < 0)
        return;   /* replied */
    struct upload *u = fota_xcalloc(1, sizeof(*u));
    if (upload_parse(r, u) || upload_fields(r, u)) {
        free(u);
        return;
    }
    u->rom.product_id = pid;
    u->r = r;
    upload_enqueue(r->ud, u);
}

static void handle_rom_list(struct fota_req *r)
{
    struct fota_product p;
    struct fota_rom *list = NULL;
    size_t n = 0;
    int64_t pid;

    if (fota_api_admin_product(r, &p))
        return;
    pid = p.id;
    fota_hub_publish(r->srv, FOTA_HUB_DOWNLOADS_SYNC, NULL);
    int e = r->srv->store->ops->rom_list(r->srv->store, pid, &list, &n);
    if (e) {
        fota_reply_status(r, e, "releases of product %lld", (long long)pid);
        return;
    }
    json_t *arr = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(arr, rom_view(r->srv, &list[i]));
    free(list);
    json_t *j = json_object();
    json_object_set_new(j, "roms", arr);
    json_object_set_new(j, "recommended_rom_version", json_string(p.current_version));
    fota_reply_json(r, 200, j);
}

/* Records "rom_update_available" for each device running an older version. */
static int notify_devices(struct fota_server *srv, int64_t pid, const char *version)
{
    struct fota_device *devs = NULL;
    size_t n = 0;
    int notified = 0;

    if (srv->store->ops->device_list(srv->store, pid, &devs, &n) != 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        const struct fota_device *d = &devs[i];
        if (!d->rom_version[0] || fota_version_cmp(d->rom_version, version) >= 0)
            continue;
        char text[FOTA_NAME_MAX + FOTA_VERSION_MAX + 64], zh[FOTA_NAME_MAX + FOTA_VERSION_MAX + 64];
        snprintf(text, sizeof(text), "device %s has version %s available", d->name, version);
        snprintf(zh, sizeof(zh), "设备 %s 有版本 %s 更新", d->name, version);
        json_t *b = fota_http_json_pack("{s:s, s:I, s:s, s:s, s:s, s:s}", "device", d->name, "device_id",
                              (json_int_t)d->id, "from_version", d->rom_version, "version",
                              version, "text", text, "text_zh", zh);
        if (fota_server_publish_json(srv, pid, d->id, "rom_update_available", b) == 0)
            notified++;
    }
    free(devs);
    return notified;
}

static void handle_rom_set_current(struct fota_req *r)
{
    struct fota_server *srv = r->srv;
    struct fota_product p;
    struct fota_rom *rom = NULL;
    int64_t pid;

    if (fota_api_admin_product(r, &p))
        return;
    pid = p.id;
    const char *version = r->caps[1];
    rom = fota_xmalloc(sizeof(*rom));
    fota_hub_publish(srv, FOTA_HUB_DOWNLOADS_SYNC, NULL);
    int e = srv->store->ops->rom_get(srv->store, pid, version, rom);
    if (e == FOTA_ENOENT) {
        fota_reply_error(r, 404, "product %lld has no version %s", (long long)pid, version);
        goto out;
    }
    if (e == 0)
        e = srv->store->ops->rom_set_current(srv->store, pid, version);
    if (e) {
        fota_reply_error(r, e == FOTA_ENOENT ? 404 : 500, "cannot set current: %s",
                         fota_strerror(e));
        goto out;
    }
    rom->current = 1;
    int notified = notify_devices(srv, pid, version);
    FOTA_INFO("rom current product=%lld version=%s notified=%d", (long long)pid, version,
              notified);
    json_t *j = json_object();
    json_object_set_new(j, "rom", rom_view(r->srv, rom));
    json_object_set_new(j, "notified", json_integer(notified));
    fota_reply_json(r, 200, j);
out:
    free(rom);
}

/* Loads product cap 0, release cap 1; replies on failure. Caller frees. */
static struct fota_rom *load_rom(struct fota_req *r)
{
    struct fota_product p;
    int64_t pid;

    if (fota_api_admin_product(r, &p))
        return NULL;
    pid = p.id;
    struct fota_rom *rom = fota_xmalloc(sizeof(*rom));
    fota_hub_publish(r->srv, FOTA_HUB_DOWNLOADS_SYNC, NULL);
    int e = r->srv->store->ops->rom_get(r->srv->store, pid, r->caps[1], rom);
    if (e) {
        free(rom);
        if (e == FOTA_ENOENT)
            fota_reply_error(r, 404, "product %lld has no version %s", (long long)pid, r->caps[1]);
        else
            fota_reply_status(r, e, "release %s of product %lld", r->caps[1], (long long)pid);
        return NULL;
    }
    return rom;
}

static void handle_rom_get_one(struct fota_req *r)
{
    struct fota_rom *rom = load_rom(r);
    if (!rom)
        return;
    json_t *j = json_object();
    json_object_set_new(j, "rom", rom_view(r->srv, rom));
    free(rom);
    fota_reply_json(r, 200, j);
}

/* The stored bytes of one file (admin: check what was published). A store
 * job: the file segment travels to the request's loop with the reply and
 * leaves by sendfile there. */
static void handle_rom_file(struct fota_req *r)
{
    struct fota_rom *rom = load_rom(r);
    const struct fota_rom_file *f = NULL;
    int fd = -1;
    int64_t size = 0;

    if (!rom)
        return;
    for (size_t i = 0; i < rom->nfiles && i < FOTA_ROM_MAX_FILES; i++)
        if (strcmp(rom->files[i].name, r->caps[2]) == 0)
            f = &rom->files[i];
    if (!f) {
        fota_reply_error(r, 404, "version %s has no file %s", rom->version, r->caps[2]);
        goto out;
    }
    /* A store job: a file another instance received is copied here first
     * (blob_share.h). */
    int e = fota_blob_shared(r->srv->blobs) ? fota_blob_fill(r->srv->blobs, f->sha256) : 0;
    if (e && e != FOTA_ENOENT) {
        fota_reply_header(r, "Retry-After", "10");
        fota_reply_error(r, 503, "file %s of %s is not available here yet (%s)", f->name,
                         rom->version, fota_errname(e));
        goto out;
    }
    e = fota_blob_open(r->srv->blobs, f->sha256, &fd, &size);
    if (e || size != f->size) {
        fota_reply_error(r, 500, "file %s of %s is missing or damaged in the blob store",
                         f->name, rom->version);
        goto out;
    }
    struct evbuffer *b = evbuffer_new();
    /* A file segment (sendfile); for HEAD it only gives the length. */
    if (size > 0) {
        if (evbuffer_add_file(b, fd, 0, size) != 0) {
            evbuffer_free(b);
            fota_reply_error(r, 500, "cannot read %s", f->name);
            goto out;
        }
        fd = -1; /* the evbuffer owns it now */
    }
    char disp[128];
    snprintf(disp, sizeof(disp), "attachment; filename=%s", f->name);
    fota_reply_header(r, "Content-Disposition", disp);
    fota_reply_header(r, "X-Fota-Sha256", f->sha256);
    fota_reply_raw(r, 200, "application/octet-stream", b);
    evbuffer_free(b);
out:
    if (fd >= 0)
        close(fd);
    free(rom);
}

int fota_api_roms_routes(struct fota_api *api)
{
    static const struct fota_api_route routes[] = {
        { FOTA_M_POST, "/v1/products/*/roms/", handle_rom_upload, 0 },
        { FOTA_M_GET, "/v1/products/*/roms/", handle_rom_list, FOTA_ROUTE_STORE },
        { FOTA_M_POST | FOTA_M_PUT, "/v1/products/*/roms/*/current", handle_rom_set_current,
          FOTA_ROUTE_STORE },
        { FOTA_M_GET, "/v1/products/*/roms/*/", handle_rom_get_one, FOTA_ROUTE_STORE },
        { FOTA_M_GET, "/v1/products/*/roms/*/files/*", handle_rom_file, FOTA_ROUTE_STORE },
    };
    struct fota_api_uploads *q = fota_xcalloc(1, sizeof(*q));
    q->srv = api->srv;
    q->done_ev = event_new(api->srv->base, -1, 0, upload_done, q);
    api->uploads = q;
    return fota_api_routes_add(api, routes, sizeof(routes) / sizeof(routes[0]));
}
