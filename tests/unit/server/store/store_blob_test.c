/* store_blob_test.c - the content-addressed blob store: known hashes, put/open
 * round trip, idempotent put, the free-space reserve, streaming writes, the
 * removal of temp files left by an interrupted upload, and a shared remote
 * (puts go there too; fill copies from it, verified). Runs in a mkdtemp
 * dir under /tmp. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include "fota_str.h"
#include "store/blob.h"

static char root[64];
static int warn_lines, error_lines;
static char last_warn[512], last_error[512];

static void test_log(void *ud, int level, const char *msg)
{
    (void)ud;
    if (level == FOTA_LOG_WARN) {
        warn_lines++;
        fota_str_copy(last_warn, sizeof last_warn, msg);
    } else if (level == FOTA_LOG_ERROR) {
        error_lines++;
        fota_str_copy(last_error, sizeof last_error, msg);
    }
}

static int rm_rf(const char *path)
{
    char cmd[256];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", path);
    return system(cmd);
}

static int setup(void **state)
{
    (void)state;
    snprintf(root, sizeof root, "/tmp/fota-blob-test-XXXXXX");
    assert_non_null(mkdtemp(root));
    warn_lines = error_lines = 0;
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rm_rf(root);
    return 0;
}

static void test_known_hashes(void **state)
{
    char h[FOTA_HASH_HEX];

    (void)state;
    assert_int_equal(fota_blob_hash("", 0, h), 0);
    assert_string_equal(h, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_int_equal(fota_blob_hash("abc", 3, h), 0);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_true(fota_blob_hash_valid(h));
    assert_false(fota_blob_hash_valid("BA7816BF8F01CFEA414140DE5DAE2223B00361A396177A9CB410FF61F20015AD"));
    assert_false(fota_blob_hash_valid("../../../../etc/passwd"));
    assert_false(fota_blob_hash_valid("ba7816bf"));
    h[64] = 'a';   /* 65 chars */
    assert_false(fota_blob_hash_valid(h));
}

static void test_put_open(void **state)
{
    struct fota_blob_store *bs = NULL;
    char dir[128], h[FOTA_HASH_HEX], h2[FOTA_HASH_HEX], path[512], buf[64];
    unsigned char data[5000];
    int fd = -1;
    int64_t size = 0;
    struct stat st1, st2;

    (void)state;
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)(i * 31 + 7);
    snprintf(dir, sizeof dir, "%s/blobs", root);   /* does not exist yet */
    assert_int_equal(fota_blob_store_open(dir, test_log, NULL, &bs), 0);
    assert_int_equal(fota_blob_put(bs, data, sizeof data, h), 0);
    assert_int_equal(fota_blob_hash(data, sizeof data, h2), 0);
    assert_string_equal(h, h2);
    assert_int_equal(fota_blob_exists(bs, h), 1);

    assert_int_equal(fota_blob_path(bs, h, path, sizeof path), 0);
    snprintf(buf, sizeof buf, "/sha256/%.2s/", h);
    assert_non_null(strstr(path, buf));
    assert_int_equal(fota_blob_path(bs, h, buf, 10), FOTA_ERANGE);

    assert_int_equal(fota_blob_open(bs, h, &fd, &size), 0);
    assert_true(fd >= 0);
    assert_int_equal(size, sizeof data);
    {
        unsigned char back[sizeof data];
        assert_int_equal(read(fd, back, sizeof back), sizeof back);
        assert_memory_equal(back, data, sizeof data);
    }
    close(fd);

    /* idempotent: same hash, the file is not rewritten */
    assert_int_equal(stat(path, &st1), 0);
    assert_int_equal(fota_blob_put(bs, data, sizeof data, h2), 0);
    assert_string_equal(h, h2);
    assert_int_equal(stat(path, &st2), 0);
    assert_int_equal(st1.st_ino, st2.st_ino);

    /* unknown and malformed hashes */
    h2[0] = h2[0] == '0' ? '1' : '0';
    assert_int_equal(fota_blob_open(bs, h2, &fd, &size), FOTA_ENOENT);
    assert_int_equal(fd, -1);
    assert_int_equal(fota_blob_exists(bs, h2), 0);
    assert_int_equal(fota_blob_open(bs, "../x", &fd, &size), FOTA_EINVAL);

    /* empty blob, and removal */
    assert_int_equal(fota_blob_put(bs, "", 0, h2), 0);
    assert_string_equal(h2, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_int_equal(fota_blob_open(bs, h2, &fd, &size), 0);
    assert_int_equal(size, 0);
    close(fd);
    assert_int_equal(fota_blob_remove(bs, h2), 0);
    assert_int_equal(fota_blob_remove(bs, h2), FOTA_ENOENT);
    assert_int_equal(fota_blob_exists(bs, h), 1);
    fota_blob_store_close(bs);
    assert_int_equal(warn_lines, 0);
}

/* A put must leave the disk its reserve: with more reserve than the file
 * system has, nothing is written (FOTA_ENOSPC, one WARN); a blob that exists
 * needs no room; with the reserve back at 0 the put succeeds. */
static void test_room(void **state)
{
    struct fota_blob_store *bs = NULL;
    char dir[128], h[FOTA_HASH_HEX], h2[FOTA_HASH_HEX];
    unsigned char data[3000];
    struct statvfs fs;

    (void)state;
    memset(data, 0x5a, sizeof data);
    snprintf(dir, sizeof dir, "%s/blobs", root);
    assert_int_equal(fota_blob_store_open(dir, test_log, NULL, &bs), 0);
    assert_int_equal(statvfs(dir, &fs), 0);
    assert_int_equal(fota_blob_room(bs, sizeof data), 0);
    assert_int_equal(fota_blob_room(bs, UINT64_MAX), FOTA_ENOSPC);
    assert_int_equal(fota_blob_put(bs, "kept", 4, h2), 0);

    fota_blob_store_set_reserve(bs, (uint64_t)fs.f_blocks * fs.f_frsize);
    assert_int_equal(fota_blob_room(bs, 0), FOTA_ENOSPC);
    assert_int_equal(fota_blob_put(bs, data, sizeof data, h), FOTA_ENOSPC);
    assert_int_equal(fota_blob_hash(data, sizeof data, h), 0);
    assert_int_equal(fota_blob_exists(bs, h), 0);
    assert_int_equal(fota_blob_put(bs, "kept", 4, h2), 0);   /* already there */
    assert_int_equal(warn_lines, 3);   /* one per refusal */
    assert_non_null(strstr(last_warn, "no room for a blob bytes=3000"));

    fota_blob_store_set_reserve(bs, 0);
    assert_int_equal(fota_blob_put(bs, data, sizeof data, h), 0);
    assert_int_equal(fota_blob_exists(bs, h), 1);
    fota_blob_store_close(bs);
}

static int count_entries(const char *dir)
{
    char cmd[256];
    int n = -1;
    FILE *p;

    snprintf(cmd, sizeof cmd, "ls -A '%s' | wc -l", dir);
    p = popen(cmd, "r");
    assert_non_null(p);
    assert_int_equal(fscanf(p, "%d", &n), 1);
    pclose(p);
    return n;
}

static void test_stream_and_cleanup(void **state)
{
    struct fota_blob_store *bs = NULL;
    struct fota_blob_writer *w = NULL, *left = NULL;
    char dir[128], tmp[160], h[FOTA_HASH_HEX], h2[FOTA_HASH_HEX];
    int64_t size = 0;

    (void)state;
    snprintf(dir, sizeof dir, "%s/b", root);
    snprintf(tmp, sizeof tmp, "%s/tmp", dir);
    assert_int_equal(fota_blob_store_open(dir, test_log, NULL, &bs), 0);

    /* streaming in pieces gives the hash of the whole */
    assert_int_equal(fota_blob_write_begin(bs, &w), 0);
    assert_int_equal(fota_blob_write_update(w, "a", 1), 0);
    assert_int_equal(fota_blob_write_update(w, "bc", 2), 0);
    assert_int_equal(count_entries(tmp), 1);
    assert_int_equal(fota_blob_write_end(w, h, &size), 0);
    assert_string_equal(h, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(size, 3);
    assert_int_equal(count_entries(tmp), 0);

    /* the same bytes again through the stream: kept, temp file gone */
    assert_int_equal(fota_blob_write_begin(bs, &w), 0);
    assert_int_equal(fota_blob_write_update(w, "abc", 3), 0);
    assert_int_equal(fota_blob_write_end(w, h2, NULL), 0);
    assert_string_equal(h, h2);
    assert_int_equal(count_entries(tmp), 0);

    /* abort removes its temp file */
    assert_int_equal(fota_blob_write_begin(bs, &w), 0);
    assert_int_equal(fota_blob_write_update(w, "zzz", 3), 0);
    fota_blob_write_abort(w);
    fota_blob_write_abort(NULL);
    assert_int_equal(count_entries(tmp), 0);

    /* a "crash" mid-upload: a writer never finished plus a stray file */
    assert_int_equal(fota_blob_write_begin(bs, &left), 0);
    assert_int_equal(fota_blob_write_update(left, "partial", 7), 0);
    {
        char p[200];
        FILE *f;
        snprintf(p, sizeof p, "%s/upload-stray", tmp);
        f = fopen(p, "w");
        assert_non_null(f);
        fputs("x", f);
        fclose(f);
    }
    assert_int_equal(count_entries(tmp), 2);
    fota_blob_store_close(bs);

    warn_lines = 0;
    assert_int_equal(fota_blob_store_open(dir, test_log, NULL, &bs), 0);
    assert_int_equal(count_entries(tmp), 0);
    assert_int_equal(warn_lines, 1);
    assert_non_null(strstr(last_warn, "count=2"));
    assert_int_equal(fota_blob_exists(bs, h), 1);   /* finished blobs survive */
    fota_blob_store_close(bs);

    /* the abandoned writer's file is gone; freeing it must not fail */
    fota_blob_write_abort(left);
}

/* Orphan sweep: keeps listed hashes, deletes the rest only if older than
 * `before`, counts the young ones, ignores names that are not blobs. */
static void test_sweep(void **state)
{
    struct fota_blob_store *bs = NULL;
    char dir[128], h[3][FOTA_HASH_HEX], keep[1][FOTA_HASH_HEX], path[512];
    unsigned removed = 9, young = 9;
    struct timespec past = { 1000, 0 }, future;

    (void)state;
    snprintf(dir, sizeof dir, "%s/blobs", root);
    assert_int_equal(fota_blob_store_open(dir, test_log, NULL, &bs), 0);
    for (int i = 0; i < 3; i++)
        assert_int_equal(fota_blob_put(bs, &"abc"[i], 1, h[i]), 0);
    snprintf(path, sizeof path, "%s/sha256/%.2s/not-a-blob", dir, h[0]);
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fclose(f);
    memcpy(keep[0], h[1], FOTA_HASH_HEX);
    /* everything is younger than 1970+1000 s: nothing goes */
    assert_int_equal(fota_blob_sweep(bs, (const char (*)[FOTA_HASH_HEX])keep, 1, &past,
                                     &removed, &young), 0);
    assert_int_equal(removed, 0);
    assert_int_equal(young, 2);
    clock_gettime(CLOCK_REALTIME, &future);
    future.tv_sec += 5;
    assert_int_equal(fota_blob_sweep(bs, (const char (*)[FOTA_HASH_HEX])keep, 1, &future,
                                     &removed, &young), 0);
    assert_int_equal(removed, 2);
    assert_int_equal(young, 0);
    assert_int_equal(fota_blob_exists(bs, h[0]), 0);
    assert_int_equal(fota_blob_exists(bs, h[1]), 1);
    assert_int_equal(fota_blob_exists(bs, h[2]), 0);
    assert_int_equal(access(path, F_OK), 0);
    /* nothing referenced at all: the kept one goes too */
    assert_int_equal(fota_blob_sweep(bs, NULL, 0, &future, &removed, &young), 0);
    assert_int_equal(removed, 1);
    assert_int_equal(fota_blob_exists(bs, h[1]), 0);
    fota_blob_store_close(bs);
}

/* Entries of directory path, "." and ".." aside. */
static int entries(const char *path)
{
    DIR *d = opendir(path);
    struct dirent *e;
    int n = 0;
    assert_non_null(d);
    while ((e = readdir(d)) != NULL)
        n += strcmp(e->d_name, ".") != 0 && strcmp(e->d_name, "..") != 0;
    closedir(d);
    return n;
}

/* A remote of the test's own: one blob held in memory, served in pieces of
 * 1000 bytes; `damage` flips a byte of what it serves, `down` makes every
 * call answer FOTA_EUNAVAIL. */
struct fake_remote {
    char hash[FOTA_HASH_HEX];
    unsigned char data[5000];
    size_t len;
    int puts, damage, down;
};

static int fake_put(void *ud, const char *hash, const void *data, size_t len)
{
    struct fake_remote *f = ud;
    if (f->down)
        return FOTA_EUNAVAIL;
    assert_true(len <= sizeof f->data);
    memcpy(f->data, data, len);
    f->len = len;
    fota_str_copy(f->hash, sizeof f->hash, hash);
    f->puts++;
    return 0;
}

static int fake_fetch(void *ud, const char *hash, int (*sink)(void *, const void *, size_t),
                      void *sink_ud, int64_t *size)
{
    struct fake_remote *f = ud;
    unsigned char piece[1000];
    if (f->down)
        return FOTA_EUNAVAIL;
    if (strcmp(hash, f->hash) != 0)
        return FOTA_ENOENT;
    *size = (int64_t)f->len;
    for (size_t at = 0; at < f->len; at += sizeof piece) {
        size_t n = f->len - at < sizeof piece ? f->len - at : sizeof piece;
        memcpy(piece, f->data + at, n);
        if (f->damage && at == 0)
            piece[n / 2] ^= 0x40;
        int rc = sink(sink_ud, piece, n);
        if (rc)
            return rc;
    }
    return 0;
}

/* With a remote: a put stores the blob here and there (a put the remote
 * refuses fails, the local copy stays as a cache); fill copies a blob this
 * store lacks from the remote, checked against its name: damaged bytes are
 * refused (ERROR, nothing kept, nothing left in tmp), an unknown blob is
 * FOTA_ENOENT, an unreachable remote FOTA_EUNAVAIL, and a blob already here
 * needs no remote at all. */
static void test_remote(void **state)
{
    struct fota_blob_store *bs = NULL, *other = NULL;
    struct fake_remote f = { .len = 0 };
    struct fota_blob_remote r = { fake_put, fake_fetch, &f };
    char dir[128], h[FOTA_HASH_HEX], path[512];
    unsigned char data[4321];
    int fd = -1;
    int64_t size = 0;

    (void)state;
    for (size_t i = 0; i < sizeof data; i++)
        data[i] = (unsigned char)(i * 7 + 3);
    snprintf(dir, sizeof dir, "%s/a", root);
    assert_int_equal(fota_blob_store_open(dir, test_log, NULL, &bs), 0);
    assert_int_equal(fota_blob_shared(bs), 0);
    assert_int_equal(fota_blob_fill(bs, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
                     FOTA_ENOENT);   /* no remote: only what is here */
    fota_blob_store_set_remote(bs, &r);
    assert_int_equal(fota_blob_shared(bs), 1);
    assert_int_equal(fota_blob_put(bs, data, sizeof data, h), 0);
    assert_int_equal(f.puts, 1);
    assert_string_equal(f.hash, h);
    assert_int_equal(f.len, sizeof data);
    f.down = 1;   /* a put the remote refuses: the caller must not name the blob */
    assert_int_equal(fota_blob_put(bs, data, sizeof data, h), FOTA_EUNAVAIL);
    assert_int_equal(fota_blob_exists(bs, h), 1);
    assert_int_equal(fota_blob_fill(bs, h), 0);   /* here already: the remote is not asked */
    f.down = 0;

    /* a second instance's store, empty */
    snprintf(dir, sizeof dir, "%s/b", root);
    assert_int_equal(fota_blob_store_open(dir, test_log, NULL, &other), 0);
    fota_blob_store_set_remote(other, &r);
    f.damage = 1;
    assert_int_equal(fota_blob_fill(other, h), FOTA_EIO);
    assert_int_equal(error_lines, 1);
    assert_non_null(strstr(last_error, "blob corrupt in the shared store"));
    assert_non_null(strstr(last_error, h));
    assert_int_equal(fota_blob_exists(other, h), 0);
    {
        char got[FOTA_HASH_HEX];
        unsigned char bad[sizeof data];
        memcpy(bad, data, sizeof data);
        bad[1000 / 2] ^= 0x40;
        assert_int_equal(fota_blob_hash(bad, sizeof bad, got), 0);
        assert_int_equal(fota_blob_exists(other, got), 0);   /* not kept under its own name */
    }
    snprintf(path, sizeof path, "%s/tmp", dir);
    assert_int_equal(entries(path), 0);   /* no temp file left */
    f.damage = 0;
    f.down = 1;
    assert_int_equal(fota_blob_fill(other, h), FOTA_EUNAVAIL);
    f.down = 0;
    assert_int_equal(fota_blob_fill(other, h), 0);
    assert_int_equal(fota_blob_open(other, h, &fd, &size), 0);
    assert_int_equal(size, sizeof data);
    {
        unsigned char back[sizeof data];
        assert_int_equal(read(fd, back, sizeof back), sizeof back);
        assert_memory_equal(back, data, sizeof data);
    }
    close(fd);
    h[0] = h[0] == '0' ? '1' : '0';
    assert_int_equal(fota_blob_fill(other, h), FOTA_ENOENT);
    assert_int_equal(fota_blob_fill(other, "../x"), FOTA_EINVAL);
    fota_blob_store_close(other);
    fota_blob_store_close(bs);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_hashes),
        cmocka_unit_test_setup_teardown(test_put_open, setup, teardown),
        cmocka_unit_test_setup_teardown(test_room, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_and_cleanup, setup, teardown),
        cmocka_unit_test_setup_teardown(test_sweep, setup, teardown),
        cmocka_unit_test_setup_teardown(test_remote, setup, teardown),
    };
    return cmocka_run_group_tests_name("store.blob", tests, NULL, NULL);
}
