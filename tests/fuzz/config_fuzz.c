/* config_fuzz.c - libFuzzer target for fotad's configuration (config.c):
 * the input is an INI file, loaded through inih (fmemopen) over the
 * defaults of core's rows and every module's, as fotad builds its set
 * (main.c), then checked (cross-row rules, a port configured twice); its
 * lines are also given as command-line flags. Checks, each an abort: a
 * loaded file leaves every row within its type and bounds, and setting each
 * row again from its value printed as text gives the same value and the
 * same verdict; failures say why (a NUL-terminated, non-empty message);
 * the reloadable rows copy over with a bounded list of names. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "arduino.h"
#include "backup.h"
#include "config.h"
#include "fota_err.h"
#include "log.h"
#include "metrics.h"
#include "mqtt.h"
#include "server.h"
#include "store_module.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ARGS 32

/* main.c's module table (the modules with rows bring them to the set). */
static const struct fota_module *const modules[] = {
    &fota_store_module,   &fota_http_module,   &fota_api_module,     &fota_rom_module,
    &fota_device_module,  &fota_rollout_module, &fota_legacy_module, &fota_arduino_module,
    &fota_mqtt_module,    &fota_backup_module, &fota_metrics_module,
};
#define NMODULES (sizeof(modules) / sizeof(modules[0]))

struct conf_mem {
    struct fota_config core;
    void *mod[NMODULES];
    struct fota_conf_set set;
};

static struct conf_mem loaded, again, fresh;

static void fail_at(int line)
{
    fprintf(stderr, "config_fuzz.c:%d: check failed\n", line);
    abort();
}
#define never() fail_at(__LINE__)

static void set_build(struct conf_mem *m)
{
    memset(&m->set, 0, sizeof m->set);
    fota_config_add_part(&m->set, "core", fota_config_opts, &m->core, fota_config_check_core);
    for (size_t i = 0; i < NMODULES; i++) {
        if (!modules[i]->conf_opts)
            continue;
        if (!m->mod[i])
            m->mod[i] = calloc(1, modules[i]->conf_size);
        fota_config_add_part(&m->set, modules[i]->name, modules[i]->conf_opts, m->mod[i],
                             modules[i]->conf_check);
    }
}

static void check_msg(int rc, const char *err, size_t cap)
{
    if (rc == 0)
        return;
    if (!memchr(err, '\0', cap) || err[0] == '\0')
        never();
}

static void *field(const struct fota_conf_part *p, const struct fota_conf_opt *o)
{
    return (char *)p->base + o->offset;
}

/* Every row within its type and bounds. */
static void check_rows(const struct fota_conf_set *s)
{
    for (size_t i = 0; i < s->n; i++)
        for (const struct fota_conf_opt *o = s->part[i].opts; o->name; o++) {
            const void *f = field(&s->part[i], o);
            switch (o->type) {
            case FOTA_CONF_T_STR:
                if (!memchr(f, '\0', o->size))
                    never();
                break;
            case FOTA_CONF_T_PORT: {
                int v = *(const int *)f;
                if (v != FOTA_PORT_OFF && (v < 0 || v > 65535))
                    never();
                break;
            }
            case FOTA_CONF_T_UINT: {
                unsigned v = *(const unsigned *)f;
                if (v < o->min || v > o->max)
                    never();
                break;
            }
            case FOTA_CONF_T_SIZE: {
                uint64_t v = *(const uint64_t *)f;
                if (v < o->min || v > o->max)
                    never();
                break;
            }
            case FOTA_CONF_T_LEVEL: {
                int v = *(const int *)f;
                if (v < FOTA_LOG_DEBUG || v > FOTA_LOG_ERROR)
                    never();
                break;
            }
            default:
                never();
            }
        }
}

/* A row's value as text, as a user would write it. */
static const char *row_text(const struct fota_conf_part *p, const struct fota_conf_opt *o,
                            char *buf, size_t cap)
{
    const void *f = field(p, o);
    switch (o->type) {
    case FOTA_CONF_T_STR: return f;
    case FOTA_CONF_T_PORT: return fota_config_port_str(*(const int *)f, buf, cap);
    case FOTA_CONF_T_UINT: snprintf(buf, cap, "%u", *(const unsigned *)f); return buf;
    case FOTA_CONF_T_SIZE:
        snprintf(buf, cap, "%llu", (unsigned long long)*(const uint64_t *)f);
        return buf;
    default: return fota_log_level_name(*(const int *)f);
    }
}

/* Each row of loaded set again from its text: the same values, the same
 * verdict of the cross-row checks. */
static void check_round_trip(int check_rc)
{
    char err[512], buf[64];

    fota_config_defaults(&again.set);
    for (size_t i = 0; i < loaded.set.n; i++)
        for (const struct fota_conf_opt *o = loaded.set.part[i].opts; o->name; o++) {
            const char *t = row_text(&loaded.set.part[i], o, buf, sizeof buf);
            if (fota_config_set(&again.set, o->name, t, err, sizeof err) != 0)
                never();
        }
    for (size_t i = 0; i < loaded.set.n; i++)
        for (const struct fota_conf_opt *o = loaded.set.part[i].opts; o->name; o++) {
            const void *a = field(&loaded.set.part[i], o), *b = field(&again.set.part[i], o);
            if (o->type == FOTA_CONF_T_STR ? strcmp(a, b) != 0 : memcmp(a, b, o->size) != 0)
                never();
        }
    if ((fota_config_check(&again.set, err, sizeof err) == 0) != (check_rc == 0))
        never();
}

/* The input's lines as flags ("-c" left out: it would name a file). */
static void check_flags(const uint8_t *data, size_t size)
{
    static char text[4096];
    char *argv[MAX_ARGS + 1], err[512];
    struct fota_cmdline cl;
    int argc = 0;
    size_t n = size < sizeof text - 1 ? size : sizeof text - 1;

    memcpy(text, data, n);
    text[n] = '\0';
    argv[argc++] = "fotad";
    for (char *save = NULL, *a = strtok_r(text, "\n", &save); a && argc < MAX_ARGS;
         a = strtok_r(NULL, "\n", &save)) {
        if (strcmp(a, "-c") == 0 || strncmp(a, "--config", 8) == 0)
            continue;
        argv[argc++] = a;
    }
    argv[argc] = NULL;
    err[0] = 'x';
    int rc = fota_config_from_args(&fresh.set, &cl, argc, argv, err, sizeof err);
    if (rc != 0 && rc != FOTA_ECONFIG)
        never();
    check_msg(rc, err, sizeof err);
    if (rc == 0 && !cl.help && !cl.version && !cl.config_doc)
        check_rows(&fresh.set);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char err[512], changed[256];

    if (!loaded.set.n) {
        set_build(&loaded);
        set_build(&again);
        set_build(&fresh);
    }
    fota_config_defaults(&loaded.set);
    check_rows(&loaded.set);
    /* fmemopen refuses an empty buffer: give it one byte that says nothing. */
    FILE *f = size ? fmemopen((void *)(uintptr_t)data, size, "r") : fmemopen("\n", 1, "r");
    if (!f)
        never();
    err[0] = 'x';
    int rc = fota_config_load_stream(&loaded.set, f, "fuzz.conf", err, sizeof err);
    fclose(f);
    if (rc != 0 && rc != FOTA_ECONFIG)
        never();
    check_msg(rc, err, sizeof err);
    if (rc == 0) {
        check_rows(&loaded.set);
        err[0] = 'x';
        int crc = fota_config_check(&loaded.set, err, sizeof err);
        check_msg(crc, err, sizeof err);
        check_round_trip(crc);
        fota_config_defaults(&fresh.set);
        fota_config_apply_reloadable(&fresh.set, &loaded.set, changed, sizeof changed);
        if (!memchr(changed, '\0', sizeof changed))
            never();
    }
    check_flags(data, size);
    return 0;
}
