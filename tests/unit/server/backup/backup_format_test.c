/* backup_format_test.c - server/backup/backup_format.c: member names, the
 * manifest's checks, and the reader on whole, damaged, truncated and
 * foreign archives, fed at once and a byte at a time. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "backup_format.h"
#include "fota_err.h"
#include "fota_str.h"

#define HASH_A "abababababababababababababababababababababababababababababababab"

struct buf {
    uint8_t *p;
    size_t len;
};

static void put(struct buf *b, const void *p, size_t n)
{
    b->p = realloc(b->p, b->len + n + 1);
    assert_non_null(b->p);
    memcpy(b->p + b->len, p, n);
    b->len += n;
}

static void put_member(struct buf *b, const char *name, const void *data, size_t n)
{
    static const uint8_t zeros[FOTA_TAR_BLOCK];
    uint8_t h[FOTA_TAR_BLOCK];
    assert_int_equal(fota_tar_header_make(h, name, n, 0600, 1796588431), 0);
    put(b, h, sizeof(h));
    put(b, data, n);
    put(b, zeros, fota_tar_pad(n));
}

static void hex(const void *p, size_t n, char out[65])
{
    uint8_t d[FOTA_SHA256_LEN];
    fota_sha256(p, n, d);
    for (int i = 0; i < FOTA_SHA256_LEN; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

/* The members of the test archive. */
static const uint8_t secret[32] = { 1, 2, 3 };
static const char owner[] = "0123456789abcdef0123456789abcdef01234567\n";
static const char db[] = "SQLite format 3\0 not really";
static const char blob[] = "\xe9\x03\x02\x20 a firmware image";

struct members {
    char blob_hash[65], blob_name[96];
    char h_secret[65], h_owner[65], h_db[65];
};

static void members_init(struct members *m)
{
    hex(blob, sizeof(blob) - 1, m->blob_hash);
    snprintf(m->blob_name, sizeof(m->blob_name), "blobs/sha256/%.2s/%s", m->blob_hash,
             m->blob_hash);
    hex(secret, sizeof(secret), m->h_secret);
    hex(owner, sizeof(owner) - 1, m->h_owner);
    hex(db, sizeof(db) - 1, m->h_db);
}

static char *manifest(const struct members *m, int version)
{
    static char text[4096];
    snprintf(text, sizeof(text),
             "{\"format\": \"fota-backup\", \"format_version\": %d, \"fotad_version\": \"0.1.0\","
             " \"schema_version\": 6, \"created\": 1796588431, \"source\": \"test\","
             " \"counts\": {\"products\": 1, \"devices\": 2},"
             " \"members\": ["
             "{\"name\": \"secret.key\", \"size\": 32, \"sha256\": \"%s\"},"
             "{\"name\": \"owner.key\", \"size\": %zu, \"sha256\": \"%s\"},"
             "{\"name\": \"fota.db\", \"size\": %zu, \"sha256\": \"%s\"},"
             "{\"name\": \"%s\", \"size\": %zu, \"sha256\": \"%s\"}]}\n",
             version, m->h_secret, sizeof(owner) - 1, m->h_owner, sizeof(db) - 1, m->h_db,
             m->blob_name, sizeof(blob) - 1, m->blob_hash);
    return text;
}

/* A whole archive; blob_bytes replaces the blob's content (damage). */
static struct buf archive(const char *man, const char *blob_bytes)
{
    static const uint8_t end[FOTA_TAR_END_BYTES];
    struct members m;
    struct buf b = { NULL, 0 };
    members_init(&m);
    put_member(&b, "manifest.json", man, strlen(man));
    put_member(&b, "secret.key", secret, sizeof(secret));
    put_member(&b, "owner.key", owner, sizeof(owner) - 1);
    put_member(&b, "fota.db", db, sizeof(db) - 1);
    put_member(&b, m.blob_name, blob_bytes ? blob_bytes : blob, sizeof(blob) - 1);
    put(&b, end, sizeof(end));
    return b;
}

struct seen {
    int manifest, begins, ends;
    size_t data;
    char last[96];
    int stop_at_begin;
};

static int on_event(void *ud, int ev, const struct fota_backup_member *m, const uint8_t *p,
                    size_t n)
{
    struct seen *s = ud;
    (void)p;
    switch (ev) {
    case FOTA_BACKUP_EV_MANIFEST:
        s->manifest++;
        break;
    case FOTA_BACKUP_EV_BEGIN:
        s->begins++;
        fota_str_copy(s->last, sizeof(s->last), m->name);
        if (s->stop_at_begin && s->begins == s->stop_at_begin)
            return FOTA_EIO;
        break;
    case FOTA_BACKUP_EV_DATA:
        assert_true(n > 0);
        s->data += n;
        break;
    case FOTA_BACKUP_EV_END:
        s->ends++;
        break;
    }
    return 0;
}

static size_t trailing_zeros;   /* record padding after the archive's end */

/* Reads b in pieces of `step` bytes; the result of feed/finish. */
static int read_all(const struct buf *b, size_t step, struct seen *s, char *err, size_t errlen)
{
    struct fota_backup_reader r;
    int rc = 0;
    fota_backup_reader_init(&r, on_event, s);
    for (size_t at = 0; at < b->len && rc == 0; at += step)
        rc = fota_backup_reader_feed(&r, b->p + at, b->len - at < step ? b->len - at : step);
    if (rc == 0)
        rc = fota_backup_reader_finish(&r);
    fota_str_copy(err, errlen, fota_backup_reader_error(&r));
    if (rc == 0) {
        const struct fota_backup_manifest *m = fota_backup_reader_manifest(&r);
        assert_non_null(m);
        assert_int_equal(m->nmembers, 4);
        assert_int_equal(m->archive_bytes, b->len - trailing_zeros);
        assert_int_equal(fota_backup_manifest_count(m, "devices"), 2);
        assert_int_equal(fota_backup_manifest_count(m, "keys"), -1);
        assert_string_equal(m->fotad_version, "0.1.0");
        assert_int_equal(m->schema_version, 6);
    }
    fota_backup_reader_cleanup(&r);
    return rc;
}

static void test_names(void **st)
{
    char h[65];
    (void)st;
    assert_int_equal(fota_backup_name_kind("fota.db", NULL), FOTA_BACKUP_DB);
    assert_int_equal(fota_backup_name_kind("secret.key", NULL), FOTA_BACKUP_SECRET);
    assert_int_equal(fota_backup_name_kind("owner.key", NULL), FOTA_BACKUP_OWNER);
    assert_int_equal(fota_backup_name_kind("blobs/sha256/ab/" HASH_A, h), FOTA_BACKUP_BLOB);
    assert_string_equal(h, HASH_A);
    assert_int_equal(fota_backup_name_kind("blobs/sha256/ba/" HASH_A, NULL), 0);
    assert_int_equal(fota_backup_name_kind("blobs/sha256/AB/" HASH_A, NULL), 0);
    assert_int_equal(fota_backup_name_kind("blobs/sha256/ab/" HASH_A "x", NULL), 0);
    assert_int_equal(fota_backup_name_kind("blobs/sha256/ab/../../../etc/passwd", NULL), 0);
    assert_int_equal(fota_backup_name_kind("../fota.db", NULL), 0);
    assert_int_equal(fota_backup_name_kind("/fota.db", NULL), 0);
    assert_int_equal(fota_backup_name_kind("fotad.lock", NULL), 0);
    assert_int_equal(fota_backup_name_kind("", NULL), 0);
}

static void test_read_whole(void **st)
{
    struct buf b = archive(manifest(&(struct members){ 0 }, 1), NULL);
    struct members m;
    char err[256];
    (void)st;
    members_init(&m);
    free(b.p);
    b = archive(manifest(&m, 1), NULL);
    /* at once, a byte at a time, and in odd pieces: the same result */
    const size_t steps[] = { b.len, 1, 7, 511, 513, 4096 };
    for (size_t i = 0; i < sizeof(steps) / sizeof(steps[0]); i++) {
        struct seen s = { 0 };
        assert_int_equal(read_all(&b, steps[i], &s, err, sizeof(err)), 0);
        assert_int_equal(s.manifest, 1);
        assert_int_equal(s.begins, 4);
        assert_int_equal(s.ends, 4);
        assert_int_equal(s.data, 32 + sizeof(owner) - 1 + sizeof(db) - 1 + sizeof(blob) - 1);
    }
    /* GNU tar pads the archive to a 10 KiB record: zeros after the end are fine */
    uint8_t zeros[9000] = { 0 };
    put(&b, zeros, sizeof(zeros));
    struct seen s = { 0 };
    trailing_zeros = sizeof(zeros);
    assert_int_equal(read_all(&b, 1000, &s, err, sizeof(err)), 0);
    trailing_zeros = 0;
    free(b.p);
}

static void test_damaged_member(void **st)
{
    struct members m;
    struct seen s = { 0 };
    char err[256], bad[sizeof(blob)];
    (void)st;
    members_init(&m);
    memcpy(bad, blob, sizeof(blob));
    bad[5] ^= 1;
    struct buf b = archive(manifest(&m, 1), bad);
    assert_int_equal(read_all(&b, 100, &s, err, sizeof(err)), FOTA_ECHECKSUM);
    assert_non_null(strstr(err, m.blob_name));
    assert_non_null(strstr(err, "damaged"));
    assert_int_equal(s.ends, 3);   /* the blob never ended */
    free(b.p);
}

static void test_truncated(void **st)
{
    struct members m;
    char err[256];
    (void)st;
    members_init(&m);
    struct buf b = archive(manifest(&m, 1), NULL);
    /* every proper prefix is refused, never taken for a whole archive */
    for (size_t cut = 0; cut < b.len - FOTA_TAR_BLOCK; cut += 37) {
        struct buf t = { b.p, cut };
        struct seen s = { 0 };
        int rc = read_all(&t, 64, &s, err, sizeof(err));
        if (rc == 0)
            fail_msg("a prefix of %zu of %zu bytes was accepted", cut, b.len);
        assert_int_equal(rc, FOTA_ETRUNC);
    }
    struct buf t = { b.p, b.len / 2 };
    struct seen s = { 0 };
    assert_int_equal(read_all(&t, 64, &s, err, sizeof(err)), FOTA_ETRUNC);
    assert_non_null(strstr(err, "truncated"));
    t.len = 0;
    assert_int_equal(read_all(&t, 64, &s, err, sizeof(err)), FOTA_ETRUNC);
    assert_string_equal(err, "the file is empty");
    free(b.p);
}

static void test_manifest_refused(void **st)
{
    struct members m;
    struct fota_backup_manifest man;
    char err[256], text[4096];
    (void)st;
    members_init(&m);
    /* another format version */
    const char *v2 = manifest(&m, 2);
    assert_int_equal(fota_backup_manifest_parse(v2, strlen(v2), &man, err, sizeof(err)),
                     FOTA_EPROTO);
    assert_non_null(strstr(err, "format version 2"));
    struct buf b = archive(v2, NULL);
    struct seen s = { 0 };
    assert_int_equal(read_all(&b, 4096, &s, err, sizeof(err)), FOTA_EPROTO);
    assert_int_equal(s.begins, 0);   /* nothing handed out */
    free(b.p);
    /* not JSON, not ours */
    assert_int_equal(fota_backup_manifest_parse("{", 1, &man, err, sizeof(err)), FOTA_EMAGIC);
    const char *other = "{\"format\": \"something\", \"format_version\": 1}";
    assert_int_equal(fota_backup_manifest_parse(other, strlen(other), &man, err, sizeof(err)),
                     FOTA_EMAGIC);
    /* a member twice, a blob whose hash is not its name, a short secret, no database */
    const char *ok = manifest(&m, 1);
    struct {
        const char *from, *to;
        const char *says;
    } edits[] = {
        { m.h_owner, HASH_A, NULL },   /* fine for the manifest: the reader finds it */
        { "\"size\": 32", "\"size\": 31", "secret.key" },
        { "\"fota.db\"", "\"fotad.lock\"", "not part of a fota backup" },
        { m.blob_name, "fota.db", "twice" },
        { "\"format_version\": 1", "\"format_version\": \"1\"", "format_version" },
        { "\"size\": 32", "\"size\": -1", "negative" },
    };
    for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
        const char *at = strstr(ok, edits[i].from);
        assert_non_null(at);
        snprintf(text, sizeof(text), "%.*s%s%s", (int)(at - ok), ok, edits[i].to,
                 at + strlen(edits[i].from));
        int rc = fota_backup_manifest_parse(text, strlen(text), &man, err, sizeof(err));
        if (!edits[i].says) {
            assert_int_equal(rc, 0);
            fota_backup_manifest_cleanup(&man);
            continue;
        }
        if (rc == 0 || !strstr(err, edits[i].says))
            fail_msg("edit %zu: rc %d, \"%s\"", i, rc, err);
    }
    /* a blob whose hash differs from its name */
    fota_str_copy(text, sizeof(text), ok);
    char *h = strstr(text, "\"sha256\": \"");
    for (int i = 0; i < 3; i++)
        h = strstr(h + 1, "\"sha256\": \"");
    memcpy(h + 11, HASH_A, 64);
    assert_int_equal(fota_backup_manifest_parse(text, strlen(text), &man, err, sizeof(err)),
                     FOTA_EPROTO);
    assert_non_null(strstr(err, "must be its name"));
}

static void test_foreign(void **st)
{
    struct members m;
    struct buf b = { NULL, 0 };
    struct seen s = { 0 };
    char err[256];
    static const uint8_t end[FOTA_TAR_END_BYTES];
    (void)st;
    members_init(&m);
    /* not a tar at all */
    uint8_t junk[2048];
    memset(junk, 'x', sizeof(junk));
    put(&b, junk, sizeof(junk));
    assert_int_equal(read_all(&b, 4096, &s, err, sizeof(err)), FOTA_EMAGIC);
    assert_non_null(strstr(err, "not a tar"));
    free(b.p);
    /* a tar whose first member is not the manifest */
    b = (struct buf){ NULL, 0 };
    put_member(&b, "fota.db", db, sizeof(db) - 1);
    put(&b, end, sizeof(end));
    assert_int_equal(read_all(&b, 4096, &s, err, sizeof(err)), FOTA_EMAGIC);
    assert_non_null(strstr(err, "first member is fota.db"));
    free(b.p);
    /* members out of the manifest's order, or one it does not list */
    b = (struct buf){ NULL, 0 };
    const char *man = manifest(&m, 1);
    put_member(&b, "manifest.json", man, strlen(man));
    put_member(&b, "owner.key", owner, sizeof(owner) - 1);
    assert_int_equal(read_all(&b, 4096, &s, err, sizeof(err)), FOTA_EPROTO);
    assert_non_null(strstr(err, "the manifest lists secret.key there"));
    free(b.p);
    /* data after the end */
    b = archive(man, NULL);
    put(&b, "trailing", 8);
    assert_int_equal(read_all(&b, 4096, &s, err, sizeof(err)), FOTA_EPROTO);
    assert_non_null(strstr(err, "after the end"));
    free(b.p);
    /* a member the manifest does not list, after the last one */
    b = archive(man, NULL);
    b.len -= FOTA_TAR_END_BYTES;
    put_member(&b, "fota.db", db, sizeof(db) - 1);
    put(&b, end, sizeof(end));
    assert_int_equal(read_all(&b, 4096, &s, err, sizeof(err)), FOTA_EPROTO);
    assert_non_null(strstr(err, "not in the manifest"));
    free(b.p);
}

static void test_callback_stops(void **st)
{
    struct members m;
    struct seen s = { .stop_at_begin = 2 };
    char err[256];
    (void)st;
    members_init(&m);
    struct buf b = archive(manifest(&m, 1), NULL);
    assert_int_equal(read_all(&b, 4096, &s, err, sizeof(err)), FOTA_EIO);
    assert_string_equal(err, "stopped");
    assert_int_equal(s.begins, 2);
    assert_int_equal(s.ends, 1);
    free(b.p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_read_whole),
        cmocka_unit_test(test_damaged_member),
        cmocka_unit_test(test_truncated),
        cmocka_unit_test(test_manifest_refused),
        cmocka_unit_test(test_foreign),
        cmocka_unit_test(test_callback_stops),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
