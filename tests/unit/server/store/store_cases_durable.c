/* store_cases_durable.c - conformance cases: what a store keeps across a
 * restart (a clean close and open) and across a crash of the process that
 * wrote it (SIGKILL right after the calls returned: durable and batched
 * commits alike survive it, store.h). */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include "store_fixture.h"

static void test_reopen(void **state)
{
    struct store_fixture *fx = store_fx(state);
    struct fota_store *s = fx->s;
    int64_t pid = mk_product(s, "keep"), dev = mk_device(s, pid, "d", 1);
    struct fota_product p;
    struct fota_device d;
    struct fota_rom r;
    struct fota_key k, g;
    struct fota_command c;
    int64_t cmd = mk_command(s, dev);

    mk_rom(s, pid, "v3");
    assert_int_equal(s->ops->rom_set_current(s, pid, "v3"), 0);
    memset(&k, 0, sizeof k);
    fake_hash(k.hash, 3);
    k.kind = FOTA_KEY_MASTER;
    k.product_id = pid;
    k.device_id = dev;
    assert_int_equal(s->ops->key_create(s, &k), 0);
    add_msg(s, pid, dev, "hello");

    store_fixture_reopen(fx);
    s = fx->s;
    assert_true(fota_store_generation(s) > 0);
    assert_int_equal(s->ops->product_get(s, pid, &p), 0);
    assert_string_equal(p.name, "keep");
    assert_string_equal(p.current_version, "v3");
    assert_int_equal(p.devices_total, 1);
    assert_int_equal(s->ops->device_get(s, dev, &d), 0);
    assert_string_equal(d.name, "d");
    assert_int_equal(s->ops->rom_get(s, pid, "v3", &r), 0);
    assert_int_equal(r.nfiles, 2);
    assert_int_equal(s->ops->key_lookup(s, k.hash, &g), 0);
    assert_int_equal(g.device_id, dev);
    assert_int_equal(s->ops->command_get(s, cmd, &c), 0);
    assert_int_equal(c.device_id, dev);
    fota_store_command_cleanup(&c);
    /* new ids do not reuse old ones */
    assert_true(mk_product(s, "next") > pid);
    assert_int_equal(store_log_errors, 0);
}

/* The writer is killed (SIGKILL) right after its calls returned: no close,
 * no checkpoint. Durable writes (product, release, current) and batched ones
 * (a message) are all there when the store is opened again. */
static void test_crash(void **state)
{
    struct store_fixture *fx = store_fx(state);
    struct fota_product p;
    struct fota_rom r;
    struct fota_message_filter f;
    struct fota_message *list = NULL;
    size_t n = 0;
    int status = 0;
    pid_t pid;

    fota_store_close(fx->s);
    fx->s = NULL;
    pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* no cmocka asserts here: a failure must not unwind into the
         * parent's copy of the test runner */
        struct fota_store *s = NULL;
        struct fota_message m = { .action = "before-crash" };
        if (fx->backend->open(fx, &s) != 0)
            _exit(2);
        memset(&p, 0, sizeof p);
        snprintf(p.name, sizeof p.name, "crashy");
        if (s->ops->product_create(s, &p) != 0)
            _exit(3);
        fill_rom(&r, p.id, "v1");
        if (s->ops->rom_create(s, &r) != 0 || s->ops->rom_set_current(s, p.id, "v1") != 0)
            _exit(4);
        m.product_id = p.id;
        if (s->ops->message_add(s, &m) != 0)
            _exit(5);
        raise(SIGKILL);
        _exit(6);
    }
    assert_int_equal(waitpid(pid, &status, 0), pid);
    if (!WIFSIGNALED(status))
        fail_msg("the writer exited with %d before its crash", WEXITSTATUS(status));
    assert_int_equal(WTERMSIG(status), SIGKILL);

    assert_int_equal(fx->backend->open(fx, &fx->s), 0);
    assert_int_equal(fx->s->ops->product_find(fx->s, "crashy", &p), 0);
    assert_string_equal(p.current_version, "v1");
    assert_int_equal(fx->s->ops->rom_get(fx->s, p.id, "v1", &r), 0);
    assert_int_equal(r.nfiles, 2);
    memset(&f, 0, sizeof f);
    assert_int_equal(fx->s->ops->message_list(fx->s, &f, &list, &n), 0);
    assert_int_equal(n, 1);
    assert_string_equal(list[0].action, "before-crash");
    free(list);
}

const struct CMUnitTest store_cases_durable[] = {
    cmocka_unit_test(test_reopen),
    cmocka_unit_test(test_crash),
};
const size_t store_cases_durable_n = sizeof store_cases_durable / sizeof store_cases_durable[0];
