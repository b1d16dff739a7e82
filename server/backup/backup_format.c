/* backup_format.c - reading fota's backup archive (backup_format.h): member
 * names, the manifest's parser and checks, and the sans-IO reader that
 * verifies every member against the manifest as the bytes arrive. */
#include "backup_format.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fota_err.h"
#include "fota_str.h"
#include "hex.h"
#include "xmalloc.h"

static int is_hex64(const char *s)
{
    size_t i;
    for (i = 0; i < 64; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return s[64] == '\0';
}

int fota_backup_name_kind(const char *name, char hash[65])
{
    static const char blobs[] = "blobs/sha256/";

    if (strcmp(name, "fota.db") == 0)
        return FOTA_BACKUP_DB;
    if (strcmp(name, "secret.key") == 0)
        return FOTA_BACKUP_SECRET;
    if (strcmp(name, "owner.key") == 0)
        return FOTA_BACKUP_OWNER;
    if (strncmp(name, blobs, sizeof(blobs) - 1) != 0)
        return 0;
    const char *p = name + sizeof(blobs) - 1;   /* "xx/<hash>" */
    if (strlen(p) != 3 + 64 || p[2] != '/' || !is_hex64(p + 3) || p[0] != p[3] || p[1] != p[4])
        return 0;
    if (hash)
        memcpy(hash, p + 3, 65);
    return FOTA_BACKUP_BLOB;
}

const struct fota_backup_count_table fota_backup_count_tables[] = {
    { "products", "products" },
    { "releases", "roms" },
    { "release_files", "rom_files" },
    { "devices", "devices" },
    { "keys", "api_keys" },
    { "commands", "commands" },
    { "messages", "messages" },
    { "rollouts", "rollouts" },
};
const size_t fota_backup_count_ntables =
    sizeof(fota_backup_count_tables) / sizeof(fota_backup_count_tables[0]);

int64_t fota_backup_manifest_count(const struct fota_backup_manifest *m, const char *name)
{
    for (size_t i = 0; i < m->ncounts; i++)
        if (strcmp(m->counts[i].name, name) == 0)
            return m->counts[i].n;
    return -1;
}

void fota_backup_manifest_cleanup(struct fota_backup_manifest *m)
{
    free(m->members);
    memset(m, 0, sizeof(*m));
}

static int cmp_member_name(const void *a, const void *b)
{
    const struct fota_backup_member *const *x = a, *const *y = b;
    return strcmp((*x)->name, (*y)->name);
}

/* Each name once; fota.db and secret.key present. */
static int check_members(struct fota_backup_manifest *m, char *err, size_t errlen)
{
    const struct fota_backup_member **by = fota_xreallocarray(NULL, m->nmembers, sizeof(*by));
    int have_db = 0, have_secret = 0, rc = 0;

    for (size_t i = 0; i < m->nmembers; i++) {
        by[i] = &m->members[i];
        have_db += m->members[i].kind == FOTA_BACKUP_DB;
        have_secret += m->members[i].kind == FOTA_BACKUP_SECRET;
    }
    qsort(by, m->nmembers, sizeof(*by), cmp_member_name);
    for (size_t i = 1; i < m->nmembers && rc == 0; i++)
        if (strcmp(by[i - 1]->name, by[i]->name) == 0)
            rc = fota_str_err(err, errlen, FOTA_EPROTO, "the manifest lists %s twice", by[i]->name);
    free(by);
    if (rc == 0 && !have_db)
        rc = fota_str_err(err, errlen, FOTA_EPROTO, "the manifest lists no fota.db");
    if (rc == 0 && !have_secret)
        rc = fota_str_err(err, errlen, FOTA_EPROTO, "the manifest lists no secret.key (without the "
                                              "server secret no device key could be checked)");
    return rc;
}

static int parse_member(json_t *o, size_t i, struct fota_backup_member *mb, char *err,
                        size_t errlen)
{
    json_t *name = json_object_get(o, "name"), *size = json_object_get(o, "sha256");
    char hash[65];

    if (!json_is_object(o) || !json_is_string(name) || !json_is_string(size) ||
        !json_is_integer(json_object_get(o, "size")))
        return fota_str_err(err, errlen, FOTA_EPROTO, "manifest member %zu is not {name, size, sha256}",
                      i);
    const char *n = json_string_value(name), *h = json_string_value(size);
    json_int_t sz = json_integer_value(json_object_get(o, "size"));
    if (strlen(n) >= sizeof(mb->name) || !(mb->kind = fota_backup_name_kind(n, hash)))
        return fota_str_err(err, errlen, FOTA_EPROTO, "manifest member %zu has a name that is not part "
                                                "of a fota backup: \"%.100s\"",
                      i, n);
    fota_str_copy(mb->name, sizeof(mb->name), n);
    if (strlen(h) != 64 || !is_hex64(h))
        return fota_str_err(err, errlen, FOTA_EPROTO, "manifest member %s: sha256 is not 64 lower-case "
                                                "hex digits",
                      mb->name);
    memcpy(mb->sha256, h, 65);
    if (sz < 0)
        return fota_str_err(err, errlen, FOTA_EPROTO, "manifest member %s: negative size", mb->name);
    mb->size = (uint64_t)sz;
    if (mb->kind == FOTA_BACKUP_BLOB && strcmp(hash, mb->sha256) != 0)
        return fota_str_err(err, errlen, FOTA_EPROTO, "manifest member %s: a blob's sha256 must be its "
                                                "name",
                      mb->name);
    if (mb->kind == FOTA_BACKUP_SECRET && mb->size != FOTA_BACKUP_SECRET_LEN)
        return fota_str_err(err, errlen, FOTA_EPROTO, "manifest member secret.key: %llu bytes, a server "
                                                "secret has %d",
                      (unsigned long long)mb->size, FOTA_BACKUP_SECRET_LEN);
    if (mb->kind == FOTA_BACKUP_OWNER && (mb->size < 40 || mb->size > FOTA_BACKUP_OWNER_MAX))
        return fota_str_err(err, errlen, FOTA_EPROTO, "manifest member owner.key: %llu bytes is not an "
                                                "admin key file",
                      (unsigned long long)mb->size);
    return 0;
}

static int parse_counts(json_t *counts, struct fota_backup_manifest *m, char *err, size_t errlen)
{
    const char *k;
    json_t *v;

    if (!counts)
        return 0;
    if (!json_is_object(counts))
        return fota_str_err(err, errlen, FOTA_EPROTO, "manifest \"counts\" is not an object");
    json_object_foreach (counts, k, v) {
        if (m->ncounts >= FOTA_BACKUP_COUNTS_MAX || !json_is_integer(v) ||
            json_integer_value(v) < 0 || strlen(k) >= sizeof(m->counts[0].name))
            return fota_str_err(err, errlen, FOTA_EPROTO, "manifest count \"%.40s\" is not usable", k);
        fota_str_copy(m->counts[m->ncounts].name, sizeof(m->counts[0].name), k);
        m->counts[m->ncounts++].n = json_integer_value(v);
    }
    return 0;
}

static int parse_json(json_t *j, size_t manifest_bytes, struct fota_backup_manifest *m, char *err,
                      size_t errlen)
{
    json_t *fmt = json_object_get(j, "format"), *ver = json_object_get(j, "format_version");
    json_t *members = json_object_get(j, "members"), *fv = json_object_get(j, "fotad_version");
    json_t *sv = json_object_get(j, "schema_version"), *cr = json_object_get(j, "created");
    json_t *src = json_object_get(j, "source");
    int rc;

    if (!json_is_string(fmt) || strcmp(json_string_value(fmt), FOTA_BACKUP_FORMAT) != 0)
        return fota_str_err(err, errlen, FOTA_EMAGIC, "not a fota backup (its manifest.json has no "
                                                "\"format\": \"" FOTA_BACKUP_FORMAT "\")");
    if (!json_is_integer(ver))
        return fota_str_err(err, errlen, FOTA_EPROTO, "the manifest has no format_version");
    if (json_integer_value(ver) != FOTA_BACKUP_FORMAT_VERSION)
        return fota_str_err(err, errlen, FOTA_EPROTO, "backup format version %lld, this fotad reads "
                                                "version %d%s",
                      (long long)json_integer_value(ver),
                      FOTA_BACKUP_FORMAT_VERSION,
                      json_integer_value(ver) > FOTA_BACKUP_FORMAT_VERSION
                          ? ": restore it with the fotad that wrote it (or a newer one)"
                          : "");
    m->format_version = FOTA_BACKUP_FORMAT_VERSION;
    if (!json_is_string(fv) || !json_is_integer(sv) || json_integer_value(sv) < 1 ||
        json_integer_value(sv) > 1000000 || !json_is_integer(cr))
        return fota_str_err(err, errlen, FOTA_EPROTO, "the manifest lacks fotad_version, schema_version "
                                                "or created");
    fota_str_copy(m->fotad_version, sizeof(m->fotad_version), json_string_value(fv));
    m->schema_version = (int)json_integer_value(sv);
    m->created = json_integer_value(cr);
    if (json_is_string(src))
        fota_str_copy(m->source, sizeof(m->source), json_string_value(src));
    if ((rc = parse_counts(json_object_get(j, "counts"), m, err, errlen)) != 0)
        return rc;
    if (!json_is_array(members) || json_array_size(members) == 0 ||
        json_array_size(members) > FOTA_BACKUP_MEMBERS_MAX)
        return fota_str_err(err, errlen, FOTA_EPROTO, "the manifest has no usable \"members\" list");
    m->nmembers = json_array_size(members);
    m->members = fota_xcalloc(m->nmembers, sizeof(*m->members));
    m->archive_bytes = fota_tar_member_bytes(manifest_bytes) + FOTA_TAR_END_BYTES;
    for (size_t i = 0; i < m->nmembers; i++) {
        rc = parse_member(json_array_get(members, i), i, &m->members[i], err, errlen);
        if (rc)
            return rc;
        m->content_bytes += m->members[i].size;
        m->archive_bytes += fota_tar_member_bytes(m->members[i].size);
    }
    return check_members(m, err, errlen);
}

int fota_backup_manifest_parse(const char *text, size_t len, struct fota_backup_manifest *m,
                               char *err, size_t errlen)
{
    json_error_t je;
    json_t *j;
    int rc;

    memset(m, 0, sizeof(*m));
    j = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
    if (!j)
        return fota_str_err(err, errlen, FOTA_EMAGIC, "manifest.json is not JSON (line %d: %s)",
                      je.line, je.text);
    rc = json_is_object(j) ? parse_json(j, len, m, err, errlen)
                           : fota_str_err(err, errlen, FOTA_EMAGIC, "manifest.json is not an object");
    json_decref(j);
    if (rc)
        fota_backup_manifest_cleanup(m);
    return rc;
}

/* ---------------------------------------------------------------- reader */

enum { R_HEADER,
       R_MANIFEST,
       R_DATA,
       R_PAD,
       R_END,
       R_DONE };

void fota_backup_reader_init(struct fota_backup_reader *r, fota_backup_read_cb cb, void *ud)
{
    memset(r, 0, sizeof(*r));
    r->cb = cb;
    r->ud = ud;
    r->state = R_HEADER;
}

void fota_backup_reader_cleanup(struct fota_backup_reader *r)
{
    free(r->mtext);
    fota_backup_manifest_cleanup(&r->man);
    r->mtext = NULL;
}

const struct fota_backup_manifest *fota_backup_reader_manifest(const struct fota_backup_reader *r)
{
    return r->have_manifest ? &r->man : NULL;
}

const char *fota_backup_reader_error(const struct fota_backup_reader *r)
{
    return r->err;
}

static int fail(struct fota_backup_reader *r, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static int fail(struct fota_backup_reader *r, int code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->err, sizeof(r->err), fmt, ap);
    va_end(ap);
    r->error = code;
    return code;
}

/* The callback's result: a stop keeps the callback's own message. */
static int call(struct fota_backup_reader *r, int ev, const struct fota_backup_member *m,
                const uint8_t *p, size_t n)
{
    int rc = r->cb ? r->cb(r->ud, ev, m, p, n) : 0;
    if (rc) {
        fota_str_copy(r->err, sizeof(r->err), "stopped");
        r->error = rc < 0 ? rc : FOTA_EIO;
    }
    return r->error;
}

static const struct fota_backup_member *current(const struct fota_backup_reader *r)
{
    return &r->man.members[r->next];
}

/* A whole header block is in r->block. */
static int on_header(struct fota_backup_reader *r)
{
    struct fota_tar_entry e;
    int rc = fota_tar_header_parse(r->block, &e);

    if (rc == 1) {
        if (!r->have_manifest)
            return fail(r, FOTA_EMAGIC, "the archive is empty");
        if (r->next < r->man.nmembers)
            return fail(r, FOTA_ETRUNC, "the archive ends after %zu of its %zu members (%s "
                                        "missing)",
                        r->next, r->man.nmembers, current(r)->name);
        r->state = R_END;
        return 0;
    }
    if (rc == FOTA_EMAGIC && r->block_at == 0)
        return fail(r, rc, "not a tar archive, so not a fota backup");
    if (rc == FOTA_ECHECKSUM)
        return fail(r, FOTA_EPROTO, "damaged tar header at byte %llu",
                    (unsigned long long)r->block_at);
    if (rc < 0)
        return fail(r, FOTA_EPROTO, "malformed tar header at byte %llu",
                    (unsigned long long)r->block_at);
    if (e.type != '0')
        return fail(r, FOTA_EPROTO, "member %.100s is not a regular file (type '%c'); a fota "
                                    "backup holds files only",
                    e.name, e.type);
    if (!r->have_manifest) {
        if (strcmp(e.name, FOTA_BACKUP_MANIFEST) != 0)
            return fail(r, FOTA_EMAGIC, "not a fota backup: its first member is %.100s, not " FOTA_BACKUP_MANIFEST, e.name);
        if (e.size > FOTA_BACKUP_MANIFEST_MAX)
            return fail(r, FOTA_EPROTO, "manifest.json of %llu bytes is too large",
                        (unsigned long long)e.size);
        r->mcap = (size_t)e.size + 1;
        r->mtext = fota_xmalloc(r->mcap);
        r->left = e.size;
        r->pad = fota_tar_pad(e.size);
        r->state = R_MANIFEST;
        return 0;
    }
    if (r->next >= r->man.nmembers)
        return fail(r, FOTA_EPROTO, "member %.100s is not in the manifest", e.name);
    const struct fota_backup_member *m = current(r);
    if (strcmp(e.name, m->name) != 0)
        return fail(r, FOTA_EPROTO, "member %zu is %.100s, the manifest lists %s there",
                    r->next + 1, e.name, m->name);
    if (e.size != m->size)
        return fail(r, FOTA_EPROTO, "member %s has %llu bytes, the manifest says %llu", m->name,
                    (unsigned long long)e.size, (unsigned long long)m->size);
    fota_sha256_init(&r->sha);
    r->left = e.size;
    r->pad = fota_tar_pad(e.size);
    r->state = R_DATA;
    return call(r, FOTA_BACKUP_EV_BEGIN, m, NULL, 0);
}

static int on_manifest_done(struct fota_backup_reader *r)
{
    char err[200];
    int rc = fota_backup_manifest_parse(r->mtext, r->mlen, &r->man, err, sizeof(err));

    free(r->mtext);
    r->mtext = NULL;
    if (rc)
        return fail(r, rc, "%s", err);
    r->have_manifest = 1;
    return call(r, FOTA_BACKUP_EV_MANIFEST, NULL, NULL, 0);
}

static int on_member_done(struct fota_backup_reader *r)
{
    const struct fota_backup_member *m = current(r);
    uint8_t sum[FOTA_SHA256_LEN];
    char hex[65];

    fota_sha256_final(&r->sha, sum);
    fota_hex_encode(sum, sizeof sum, hex);
    if (strcmp(hex, m->sha256) != 0)
        return fail(r, FOTA_ECHECKSUM, "member %s is damaged: its bytes hash to %.12s..., the "
                                       "manifest says %.12s...",
                    m->name, hex, m->sha256);
    if (call(r, FOTA_BACKUP_EV_END, m, NULL, 0))
        return r->error;
    r->next++;
    return 0;
}

/* Consumes from p what the current state takes; returns the count or < 0. */
static long step(struct fota_backup_reader *r, const uint8_t *p, size_t n)
{
    size_t take;

    switch (r->state) {
    case R_HEADER:
    case R_END:
        take = FOTA_TAR_BLOCK - r->have;
        take = take < n ? take : n;
        memcpy(r->block + r->have, p, take);
        r->have += take;
        if (r->have < FOTA_TAR_BLOCK)
            return (long)take;
        r->have = 0;
        r->block_at = r->offset + take - FOTA_TAR_BLOCK;
        if (r->state == R_END) {
            /* After the first zero block only zeros may follow (the second
             * one and any record padding). */
            for (size_t i = 0; i < FOTA_TAR_BLOCK; i++)
                if (r->block[i])
                    return fail(r, FOTA_EPROTO, "data after the end of the archive");
            r->state = R_DONE;
            return (long)take;
        }
        return on_header(r) < 0 ? r->error : (long)take;
    case R_MANIFEST:
    case R_DATA:
        take = r->left < n ? (size_t)r->left : n;
        if (r->state == R_MANIFEST) {
            memcpy(r->mtext + r->mlen, p, take);
            r->mlen += take;
        } else if (take > 0) {
            fota_sha256_update(&r->sha, p, take);
            if (call(r, FOTA_BACKUP_EV_DATA, current(r), p, take))
                return r->error;
        }
        r->left -= take;
        if (r->left > 0)
            return (long)take;
        r->state = R_PAD;
        if ((r->have_manifest ? on_member_done(r) : on_manifest_done(r)) < 0)
            return r->error;
        return (long)take;
    case R_PAD:
        take = r->pad < n ? r->pad : n;
        r->pad -= take;
        if (r->pad == 0)
            r->state = R_HEADER;
        return (long)take;
    default:   /* R_DONE: record padding */
        for (take = 0; take < n; take++)
            if (p[take])
                return fail(r, FOTA_EPROTO, "data after the end of the archive");
        return (long)take;
    }
}

/* 1 while the state can move on without input (an empty member, no padding). */
static int can_step_empty(const struct fota_backup_reader *r)
{
    return ((r->state == R_MANIFEST || r->state == R_DATA) && r->left == 0) ||
           (r->state == R_PAD && r->pad == 0);
}

int fota_backup_reader_feed(struct fota_backup_reader *r, const uint8_t *p, size_t n)
{
    if (r->error)
        return r->error;
    while (n > 0 || can_step_empty(r)) {
        long used = step(r, p, n);
        if (used < 0)
            return (int)used;
        p += used;
        n -= (size_t)used;
        r->offset += (uint64_t)used;
    }
    return 0;
}

int fota_backup_reader_finish(struct fota_backup_reader *r)
{
    if (r->error)
        return r->error;
    if (fota_backup_reader_feed(r, NULL, 0) < 0)   /* an empty last member */
        return r->error;
    if (r->state == R_END)
        for (size_t i = 0; i < r->have; i++)
            if (r->block[i])
                return fail(r, FOTA_EPROTO, "data after the end of the archive");
    if (r->state == R_DONE || r->state == R_END)
        return 0;
    if (!r->have_manifest && r->offset == 0)
        return fail(r, FOTA_ETRUNC, "the file is empty");
    if (!r->have_manifest)
        return fail(r, FOTA_ETRUNC, "the archive is truncated inside manifest.json");
    if (r->next < r->man.nmembers)
        return fail(r, FOTA_ETRUNC, "the archive is truncated after %llu bytes, inside member %s "
                                    "(%zu of %zu)",
                    (unsigned long long)r->offset, current(r)->name, r->next + 1,
                    r->man.nmembers);
    return fail(r, FOTA_ETRUNC, "the archive is truncated: its end marker is missing");
}
