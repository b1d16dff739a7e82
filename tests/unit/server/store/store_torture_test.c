/* store_torture_test.c - the store under allocation failure (curl's torture
 * tests): a representative sequence of store, blob and reserve operations
 * runs in a forked child whose N-th allocation through fota_x* fails
 * (fota_xmalloc_fail_at, built into the sanitizer trees; jansson allocates
 * through the same functions). Every run must either complete the sequence
 * (N past its last allocation) or end in the allocation policy's abort:
 * SIGABRT with `fotad: out of memory allocating ...` as the last line, no
 * sanitizer report. After each run the database must open again (as fotad
 * would at its next start), pass PRAGMA integrity_check and take a write,
 * and the blob store must open again.
 *
 * N is sampled to keep the run short: every N from 1 to 40, then steps that
 * grow by a quarter each time, each N at a random place within its step (the
 * seed is printed; FOTA_TORTURE_SEED repeats a run), until a run completes;
 * FOTA_TORTURE_ALL=1 tries every N. Without a failure the sequence must
 * complete (the first run). */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <jansson.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include "clock.h"
#include "fota_str.h"
#include "store/blob.h"
#include "store/reserve.h"
#include "store_fixture.h"
#include "xmalloc.h"

#define RUNS_MAX 4000

static char root[128];   /* the runs' directory (setup) */

/* ---- the sequence (child) ------------------------------------------------ */

/* In the child: an op that returns anything but want ends it with status 3
 * (allocations fail by aborting, so no op may see an error). */
static void expect(int rc, int want, const char *what)
{
    if (rc != want) {
        fprintf(stderr, "torture: %s returned %d, want %d\n", what, rc, want);
        _exit(3);
    }
}

static void sequence(const char *dir)
{
    char path[512], err[256], hash[2][FOTA_HASH_HEX];
    struct fota_store *s = NULL;
    struct fota_blob_store *bs = NULL;
    struct fota_reserve *res = NULL;
    struct fota_product p = { 0 }, *plist = NULL;
    struct fota_rom r = { 0 }, r2, *rlist = NULL, got;
    struct fota_device d = { 0 }, *dlist = NULL;
    struct fota_presence pres;
    struct fota_key k = { 0 }, kout;
    struct fota_command c = { 0 }, found = { 0 }, *clist = NULL;
    struct fota_command_set set;
    struct fota_message m = { 0 }, *mlist = NULL;
    struct fota_message_filter f = { .limit = 10 };
    struct fota_transfer t = { 0 }, *tlist = NULL;
    struct fota_rollout_row ro = { 0 }, *rolist = NULL;
    struct fota_rollout_member_row mem = { 0 }, *memlist = NULL;
    struct fota_retention ret;
    char (*refs)[FOTA_HASH_HEX] = NULL;
    int64_t devs[3], nonces[3] = { 0 }, ids[3];
    size_t n, deleted;
    int more;

    snprintf(path, sizeof path, "%s/fota.db", dir);
    expect(fota_store_sqlite_open(path, NULL, NULL, &s, err, sizeof err), 0, "store open");
    snprintf(path, sizeof path, "%s/blobs", dir);
    expect(fota_blob_store_open(path, NULL, NULL, &bs), 0, "blob store open");
    snprintf(path, sizeof path, "%s/reserve", dir);
    expect(fota_reserve_open(path, 64 * 1024, NULL, NULL, &res), 0, "reserve open");
    fota_store_set_reserve(s, res);
    expect(fota_blob_put(bs, "first file", 10, hash[0]), 0, "blob put");
    expect(fota_blob_put(bs, "second file", 11, hash[1]), 0, "blob put");

    snprintf(p.name, sizeof p.name, "torture");
    expect(s->ops->product_create(s, &p), 0, "product_create");
    expect(s->ops->product_list(s, &plist, &n), 0, "product_list");
    free(plist);
    r.product_id = p.id;
    snprintf(r.version, sizeof r.version, "v1");
    r.nfiles = 2;
    for (int i = 0; i < 2; i++) {
        snprintf(r.files[i].name, sizeof r.files[i].name, "user%d.bin", i + 1);
        memcpy(r.files[i].sha256, hash[i], FOTA_HASH_HEX);
        r.files[i].size = 10 + i;
        r.files[i].slot = i + 1;
    }
    r2 = r;
    expect(s->ops->rom_create(s, &r), 0, "rom_create");
    snprintf(r2.version, sizeof r2.version, "v2");
    expect(s->ops->rom_create(s, &r2), 0, "rom_create");
    expect(s->ops->rom_set_current(s, p.id, "v1"), 0, "rom_set_current");
    expect(s->ops->rom_list(s, p.id, &rlist, &n), 0, "rom_list");
    free(rlist);
    expect(s->ops->rom_current(s, p.id, &got), 0, "rom_current");
    expect(s->ops->blob_refs(s, &refs, &n), 0, "blob_refs");
    free(refs);

    for (int i = 0; i < 3; i++) {
        memset(&d, 0, sizeof d);
        d.product_id = p.id;
        snprintf(d.name, sizeof d.name, "dev-%d", i);
        expect(s->ops->device_create(s, &d), 0, "device_create");
        devs[i] = d.id;
    }
    expect(s->ops->device_list(s, p.id, &dlist, &n), 0, "device_list");
    free(dlist);
    snprintf(d.rom_version, sizeof d.rom_version, "v1");
    expect(s->ops->device_update(s, &d, FOTA_DEV_F_ROM_VERSION), 0, "device_update");
    pres = (struct fota_presence){ devs[0], fota_clock_wall_s(), 1 };
    expect(s->ops->device_presence_batch(s, &pres, 1), 0, "device_presence_batch");
    fake_hash(k.hash, 5);
    k.kind = FOTA_KEY_MASTER;
    k.product_id = p.id;
    k.device_id = devs[0];
    expect(s->ops->key_create(s, &k), 0, "key_create");
    expect(s->ops->key_lookup(s, k.hash, &kout), 0, "key_lookup");

    c.device_id = devs[0];
    snprintf(c.action, sizeof c.action, "sys_upgrade");
    c.params = json_pack("{s:s}", "version", "v1");
    expect(s->ops->command_create(s, &c), 0, "command_create");
    expect(s->ops->command_list_device(s, devs[0], 0, &clist, &n), 0, "command_list_device");
    fota_store_command_list_free(clist, n);
    expect(s->ops->command_find_nonce(s, devs[0], c.nonce, &found), 0, "command_find_nonce");
    fota_store_command_cleanup(&found);
    expect(s->ops->command_create_many(s, &c, devs, nonces, ids, 3), 0, "command_create_many");
    json_decref(c.params);
    c.params = NULL;
    set = (struct fota_command_set){ ids[1], FOTA_CMD_DONE, 0, NULL };
    expect(s->ops->command_update_batch(s, &set, 1), 0, "command_update_batch");

    for (int i = 0; i < 6; i++) {
        m = (struct fota_message){ .product_id = p.id, .device_id = devs[i % 2] };
        snprintf(m.action, sizeof m.action, "datapoint");
        snprintf(m.body, sizeof m.body, "{\"n\": %d}", i);
        expect(s->ops->message_add(s, &m), 0, "message_add");
        t = (struct fota_transfer){ .section = 1, .bytes = i };
        snprintf(t.result, sizeof t.result, "ok");
        expect(s->ops->transfer_add(s, &t), 0, "transfer_add");
    }
    expect(s->ops->message_list(s, &f, &mlist, &n), 0, "message_list");
    free(mlist);
    expect(s->ops->transfer_list(s, 0, &tlist, &n), 0, "transfer_list");
    free(tlist);
    expect(s->ops->download_add(s, devs[0], r.files[0].id, 10, 1), 0, "download_add");

    ro.product_id = p.id;
    snprintf(ro.version, sizeof ro.version, "v1");
    snprintf(ro.filter, sizeof ro.filter, "{}");
    ro.state = FOTA_ROLLOUT_RUNNING;
    ro.window = 2;
    expect(s->ops->rollout_create(s, &ro), 0, "rollout_create");
    mem = (struct fota_rollout_member_row){ .rollout_id = ro.id, .device_id = devs[1],
                                            .state = FOTA_RM_WAITING };
    expect(s->ops->rollout_save(s, &ro, 1, &mem, 1), 0, "rollout_save");
    expect(s->ops->rollout_list(s, p.id, 0, &rolist, &n), 0, "rollout_list");
    free(rolist);
    expect(s->ops->rollout_members(s, ro.id, 0, 0, 0, &memlist, &n), 0, "rollout_members");
    free(memlist);

    ret = (struct fota_retention){ .keep_rows = 4, .keep_per_device = 1, .max_batch = 2 };
    do
        expect(s->ops->message_prune(s, &ret, &deleted, &more), 0, "message_prune");
    while (more);
    ret = (struct fota_retention){ .keep_rows = 2 };
    do
        expect(s->ops->transfer_prune(s, &ret, &deleted, &more), 0, "transfer_prune");
    while (more);

    expect(s->ops->rom_delete(s, p.id, "v2", &got), 0, "rom_delete");
    expect(s->ops->key_delete_for_device(s, devs[0], 0), 0, "key_delete_for_device");
    expect(s->ops->device_delete(s, devs[2]), 0, "device_delete");
    expect(s->ops->product_delete(s, p.id), FOTA_EBUSY, "product_delete");
    fota_reserve_release(res, "torture");

    fota_store_set_reserve(s, NULL);
    fota_store_close(s);
    fota_blob_store_close(bs);
    fota_reserve_close(res);
}

/* ---- the runs (parent) --------------------------------------------------- */

struct outcome {
    int completed;                    /* 1: the sequence ran to its end */
    char why[512];                    /* a failure, "" when the run was as it must be */
};

static const char *const sanitizer_marks[] = {
    "AddressSanitizer", "LeakSanitizer", "UndefinedBehaviorSanitizer", "ThreadSanitizer",
    "runtime error:",
};

/* The last non-empty line of text (in place). */
static const char *last_line(char *text)
{
    size_t len = strlen(text);

    while (len && (text[len - 1] == '\n' || text[len - 1] == '\r'))
        text[--len] = '\0';
    const char *nl = strrchr(text, '\n');
    return nl ? nl + 1 : text;
}

/* Runs the sequence in a child with allocation n failing (0: none) on a
 * fresh directory dir and judges how it ended. */
static void run_one(const char *dir, unsigned long n, struct outcome *o)
{
    static char out[1 << 16];
    size_t used = 0;
    int fds[2], status = 0;
    pid_t pid;
    ssize_t k;

    memset(o, 0, sizeof *o);
    fflush(NULL);
    if (pipe(fds) != 0 || (pid = fork()) < 0) {
        snprintf(o->why, sizeof o->why, "pipe/fork: %s", strerror(errno));
        return;
    }
    if (pid == 0) {
        /* the child dies of what it meets: cmocka's handlers would carry on
         * with its test runner */
        static const int sigs[] = { SIGSEGV, SIGBUS, SIGILL, SIGFPE, SIGSYS, SIGABRT };
        for (size_t i = 0; i < sizeof sigs / sizeof sigs[0]; i++)
            signal(sigs[i], SIG_DFL);
        close(fds[0]);
        dup2(fds[1], 2);
        close(fds[1]);
        fota_xmalloc_fail_at(n);
        sequence(dir);
        exit(0);   /* through exit(): LeakSanitizer checks the complete run */
    }
    close(fds[1]);
    while ((k = read(fds[0], out + used, sizeof out - 1 - used)) > 0 ||
           (k < 0 && errno == EINTR))
        if (k > 0)
            used += (size_t)k;
    close(fds[0]);
    out[used] = '\0';
    while (waitpid(pid, &status, 0) < 0 && errno == EINTR)
        ;
    for (size_t i = 0; i < sizeof sanitizer_marks / sizeof sanitizer_marks[0]; i++)
        if (strstr(out, sanitizer_marks[i])) {
            snprintf(o->why, sizeof o->why, "N=%lu: sanitizer report:\n%.400s", n, out);
            return;
        }
    if (WIFEXITED(status) && WEXITSTATUS(status) == 0 && used == 0) {
        o->completed = 1;
        return;
    }
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT) {
        static const char oom[] = "fotad: out of memory allocating ";
        const char *last = last_line(out);
        char *end;
        if (strncmp(last, oom, sizeof oom - 1) == 0 &&
            (strtoul(last + sizeof oom - 1, &end, 10), strcmp(end, " bytes") == 0))
            return;
    }
    snprintf(o->why, sizeof o->why, "N=%lu: status %#x, output:\n%.400s", n, status, out);
}

/* The database and the blob store after a run: they open as at fotad's next
 * start, the database is intact and takes a write. */
static void check_after(const char *dir, unsigned long n, struct outcome *o)
{
    char path[512], err[256];
    struct fota_store *s = NULL;
    struct fota_blob_store *bs = NULL;
    struct fota_product p = { 0 };
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    int rc;

    snprintf(path, sizeof path, "%s/fota.db", dir);
    rc = fota_store_sqlite_open(path, NULL, NULL, &s, err, sizeof err);
    if (rc != 0) {
        snprintf(o->why, sizeof o->why, "N=%lu: reopen: %s", n, err);
        return;
    }
    snprintf(p.name, sizeof p.name, "after");
    rc = s->ops->product_create(s, &p);
    fota_store_close(s);
    if (rc != 0) {
        snprintf(o->why, sizeof o->why, "N=%lu: a write after the reopen: %d", n, rc);
        return;
    }
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK ||
        sqlite3_prepare_v2(db, "PRAGMA integrity_check", -1, &st, NULL) != SQLITE_OK ||
        sqlite3_step(st) != SQLITE_ROW ||
        strcmp((const char *)sqlite3_column_text(st, 0), "ok") != 0)
        snprintf(o->why, sizeof o->why, "N=%lu: integrity_check: %s", n,
                 st && sqlite3_column_text(st, 0) ? (const char *)sqlite3_column_text(st, 0)
                                                  : sqlite3_errmsg(db));
    sqlite3_finalize(st);
    sqlite3_close(db);
    snprintf(path, sizeof path, "%s/blobs", dir);
    if (!o->why[0] && fota_blob_store_open(path, NULL, NULL, &bs) != 0)
        snprintf(o->why, sizeof o->why, "N=%lu: the blob store does not open again", n);
    fota_blob_store_close(bs);
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

static void rm_rf(const char *dir)
{
    assert_int_equal(nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS), 0);
}

/* Copies the template database into a run's directory: the schema is made
 * once (the migrations allocate nothing through fota_x*, so no N is lost). */
static void copy_file(const char *from, const char *to)
{
    char buf[1 << 16];
    int in = open(from, O_RDONLY | O_CLOEXEC), out;
    ssize_t k;

    assert_true(in >= 0);
    out = open(to, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    assert_true(out >= 0);
    while ((k = read(in, buf, sizeof buf)) > 0)
        assert_int_equal(write(out, buf, (size_t)k), k);
    assert_int_equal(k, 0);
    close(in);
    close(out);
}

/* The next N to try after n: every N up to 40, then steps growing by a
 * quarter, each N at a random place in its step. */
static unsigned long next_n(unsigned long n, unsigned long *step_len, int all)
{
    unsigned long base;

    if (all || n < 40)
        return n + 1;
    *step_len += *step_len / 4 + 1;
    base = n + 1;
    return base + (unsigned long)rand() % *step_len;
}

static void test_store_torture(void **state)
{
    const char *seed_env = getenv("FOTA_TORTURE_SEED");
    unsigned seed = seed_env ? (unsigned)strtoul(seed_env, NULL, 10) : (unsigned)time(NULL);
    int all = getenv("FOTA_TORTURE_ALL") != NULL;
    unsigned long n = 0, step_len = 1, runs = 0, aborted = 0;
    char dir[600], tmpl[160], path[640], err[256];
    struct fota_store *s = NULL;
    struct outcome o;

    (void)state;
    snprintf(tmpl, sizeof tmpl, "%s/template.db", root);
    assert_int_equal(fota_store_sqlite_open(tmpl, NULL, NULL, &s, err, sizeof err), 0);
    fota_store_close(s);
    srand(seed);
    printf("torture: seed=%u (FOTA_TORTURE_SEED repeats it)%s\n", seed,
           all ? ", every N" : "");
    for (;;) {
        snprintf(dir, sizeof dir, "%s/run-%lu", root, n);
        assert_int_equal(mkdir(dir, 0700), 0);
        snprintf(path, sizeof path, "%s/fota.db", dir);
        copy_file(tmpl, path);
        run_one(dir, n, &o);
        if (!o.why[0])
            check_after(dir, n, &o);
        rm_rf(dir);
        if (o.why[0])
            fail_msg("%s", o.why);
        runs++;
        if (n == 0 && !o.completed)
            fail_msg("the sequence does not complete without a failure");
        if (n > 0 && o.completed)
            break;
        aborted += n > 0;
        assert_true(runs < RUNS_MAX);
        n = next_n(n, &step_len, all);
    }
    printf("torture: %lu runs, %lu ended in the out-of-memory abort, the first N past the "
           "sequence's allocations: %lu\n", runs, aborted, n);
}

/* The runs' directory: each run fsyncs a dozen durable transactions, which
 * on a memory file system cost nothing while the same code runs. Removed
 * with everything in it also when the test fails. */
static int setup(void **state)
{
    (void)state;
    fota_str_copy(root, sizeof root, "/dev/shm/fota-torture-XXXXXX");
    if (mkdtemp(root) == NULL) {
        snprintf(root, sizeof root, "%s/torture", store_sqlite_dir);
        assert_int_equal(mkdir(root, 0700), 0);
    }
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    rm_rf(root);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_store_torture, setup, teardown),
    };
    int fails;

    fota_xmalloc_install();   /* jansson's allocations count too, as in fotad */
    if (store_backend_sqlite.suite_begin() != 0)
        return 1;
    fails = cmocka_run_group_tests_name("store.torture", tests, NULL, NULL);
    store_backend_sqlite.suite_end();
    return fails ? 1 : 0;
}
