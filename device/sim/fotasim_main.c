/* fotasim_main.c - fota-sim: wires the parts of one run together. Options
 * (fotasim_opts), keys (fotasim_keys), the factory image (fotasim_image),
 * the fleet's loop (fotasim_fleet), N devices (fotasim_dev), the phone app
 * that drives them (fotasim_app) and the summary (fotasim_report). Exit 0
 * when every device ends on the target version (or, without --upgrade-to,
 * checked in), 1 otherwise, 2 for a usage error. */
#include <netdb.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include <event2/event.h>

#include "fotasim_app.h"
#include "fotasim_ardsk.h"
#include "fotasim_dev.h"
#include "fotasim_fleet.h"
#include "fotasim_image.h"
#include "fotasim_keys.h"
#include "fotasim_mqtt.h"
#include "fotasim_opts.h"
#include "fotasim_report.h"

/* --server as a numeric address (the devices' HAL connects to numbers,
 * as a device given an IP does). Returns 0 or -1 after a message. */
static int resolve(const char *name, char *host, size_t cap)
{
    struct addrinfo hints, *ai = NULL;
    int rc = -1;

    memset(&hints, 0, sizeof(hints));
    hints.ai_flags = AI_NUMERICSERV;
    hints.ai_socktype = SOCK_STREAM;
    if (getaddrinfo(name, NULL, &hints, &ai) == 0 &&
        getnameinfo(ai->ai_addr, ai->ai_addrlen, host, (socklen_t)cap, NULL, 0, NI_NUMERICHOST) == 0)
        rc = 0;
    else
        fprintf(stderr, "fota-sim: --server: cannot resolve %s\n", name);
    if (ai)
        freeaddrinfo(ai);
    return rc;
}

static const struct fotasim_sketch *sketch_of(int profile)
{
    return profile == FOTASIM_PROFILE_TASMOTA ? &fotasim_tasmota_dev_sketch
           : profile == FOTASIM_PROFILE_ESPHOME ? &fotasim_esphome_dev_sketch : &fotasim_ardsk_checkin;
}

/* Creates the devices; s->ndevs counts those to clean up. */
static int make_devices(struct fotasim *s, const struct fotasim_keys *keys)
{
    if (!(s->devs = calloc((size_t)s->o.devices, sizeof(*s->devs))))
        return FOTA_ENOMEM;
    for (s->ndevs = 0; s->ndevs < s->o.devices; s->ndevs++) {
        int i = s->ndevs, rc;
        if (FOTASIM_PROFILE_IS_ARD(s->o.profile))
            rc = fotasim_ard_init(s, &s->devs[i], i, sketch_of(s->o.profile));
        else
            rc = fotasim_esp_init(s, &s->devs[i], i, i < keys->n ? keys->key[i] : NULL,
                                  fotasim_keys_sector(keys, i));
        if (rc < 0) {
            s->ndevs++;                  /* cleaned up with the others */
            fprintf(stderr, "fota-sim: cannot create device %d: %s\n", i,
                    rc == FOTA_EINVAL ? "no parameter area for a key sector in this --map"
                    : rc == FOTA_ERANGE ? "the factory image and --free-space exceed --chip-size"
                                        : fota_strerror(rc));
            return rc;
        }
    }
    return 0;
}

#define FOTASIM_BOOT_BATCH 64

static void boot_cb(evutil_socket_t fd, short what, void *arg)
{
    struct fotasim *s = arg;
    struct timeval next = { 0, 0 };   /* after the loop's next poll: I/O goes first */
    for (int n = 0; n < FOTASIM_BOOT_BATCH && s->booted < s->ndevs; n++)
        fotasim_dev_boot(&s->devs[s->booted++]);
    if (s->booted < s->ndevs)
        evtimer_add(s->boot_ev, &next);
}

/* Boots every device from the run's loop, FOTASIM_BOOT_BATCH a loop turn:
 * a device's connection and first message are served between the boots of
 * the others, as devices booting at once on CPUs of their own send theirs,
 * not after every device of the process booted. 0 or FOTA_ENOMEM. */
static int boot_from_loop(struct fotasim *s)
{
    struct timeval now = { 0, 0 };
    if (!(s->boot_ev = evtimer_new(s->base, boot_cb, s)))
        return FOTA_ENOMEM;
    return evtimer_add(s->boot_ev, &now) < 0 ? FOTA_ENOMEM : 0;
}

int main(int argc, char **argv)
{
    struct fotasim s;
    struct fotasim_keys keys;
    struct fotasim_app app;
    uint8_t *factory = NULL;
    char host[64];
    int i, rc = 2;

    memset(&s, 0, sizeof(s));
    memset(&keys, 0, sizeof(keys));
    memset(&app, 0, sizeof(app));
    switch (fotasim_opts_parse(&s.o, argc, argv, stderr)) {
    case FOTASIM_OPTS_HELP:
        fotasim_opts_usage(stdout);
        return 0;
    case FOTASIM_OPTS_USAGE:
        return 2;
    default:
        break;
    }
    if (s.o.write_image)
        return fotasim_image_write(&s.o, stderr);
    if (resolve(s.o.server, host, sizeof(host)) < 0)
        return 2;
    s.o.server = host;
    if (s.o.keys_file && fotasim_keys_load(&keys, s.o.keys_file, s.o.devices, stderr) < 0)
        return 2;
    if (FOTASIM_PROFILE_IS_ARD(s.o.profile) && s.o.pubkey_file) {
        char why[160];
        if (!(s.pubkey = fotasim_ard_load_pubkey(s.o.pubkey_file, why, sizeof(why)))) {
            fprintf(stderr, "fota-sim: --pubkey: %s\n", why);
            goto out;
        }
    }
    if (s.o.profile == FOTASIM_PROFILE_TASMOTA && fotasim_mqtt_lib_init() < 0) {
        fprintf(stderr, "fota-sim: libmosquitto does not start\n");
        goto out;
    }
    if (fotasim_image_factory(&s.o, &factory, &s.factory_len) < 0) {
        fprintf(stderr, "fota-sim: cannot build the factory image (map %d, version %s)\n", s.o.map,
                s.o.initial_version);
        goto out;
    }
    s.factory = factory;
    signal(SIGPIPE, SIG_IGN);
    if (fotasim_fleet_init(&s) < 0 || make_devices(&s, &keys) < 0 || fotasim_app_init(&app, &s) < 0)
        goto out;
    if (s.o.admin_key && !s.o.keys_file) {
        if (fotasim_app_register_all(&app) < 0)
            goto out;
    } else if (boot_from_loop(&s) < 0) {
        goto out;
    }
    fotasim_fleet_run(&s);
    rc = fotasim_report_print(&s, &app);
out:
    fotasim_app_cleanup(&app);            /* before the devices: pending calls point at them */
    for (i = 0; i < s.ndevs; i++)
        fotasim_dev_cleanup(&s.devs[i]);
    free(s.devs);
    fotasim_fleet_cleanup(&s);
    fotasim_ard_free_pubkey(s.pubkey);
    if (s.o.profile == FOTASIM_PROFILE_TASMOTA)
        fotasim_mqtt_lib_cleanup();
    fotasim_keys_free(&keys);
    free(factory);
    return rc;
}
