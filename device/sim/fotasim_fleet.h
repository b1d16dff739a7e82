/* fotasim_fleet.h - the state one fota-sim run shares with its devices:
 * the options, the event loop, the factory image, the sector pool, the
 * counters, and the end of the run (every device finished, the hold over,
 * or the timeout). Devices report what happens to them through one
 * callback (on_event), so the device model knows nothing of who drives it
 * (the phone app of fotasim_app.c). */
#ifndef FOTASIM_FLEET_H
#define FOTASIM_FLEET_H

#include <stddef.h>
#include <stdint.h>

#include <event2/event.h>

#include "fotasim.h"
#include "fotasim_opts.h"

struct fotasim_dev;
struct ssl_ctx_st;
struct ev_token_bucket_cfg;
struct evp_pkey_st;

/* Beyond libfotadev's FOTADEV_EV_*: the channel delivered a message (the
 * server has answered the device on this connection). */
#define FOTASIM_EV_CHAN_RX 100

/* A device event: ev is FOTADEV_EV_* or FOTASIM_EV_*; what is valid during
 * the call only. */
typedef void (*fotasim_event_cb)(void *ud, struct fotasim_dev *d, int ev, const char *what);

struct fotasim {
    struct event_base *base;
    struct fotasim_opts o;
    struct fotasim_dev *devs;     /* o.devices of them */
    int ndevs;                    /* initialised so far */
    const uint8_t *factory;       /* the factory user1 image, padded with 0xFF to sectors */
    size_t factory_len;
    struct fotasim_pool pool;     /* downloaded sectors, shared by content */
    struct ssl_ctx_st *ssl_ctx;   /* --tls: one client context, no verification (IoT_Demo) */
    struct ev_token_bucket_cfg *slow_cfg; /* --faults slow=BPS: shared by the faulty downloads */
    struct evp_pkey_st *pubkey;   /* --pubkey: the verifier Arduino-core devices install */
    fotasim_event_cb on_event;
    void *on_event_ud;
    unsigned activated;           /* devices activated at least once */
    unsigned chan_drops;          /* channel connections closed from the far side */
    double cpu_at_push;           /* CPU seconds at the first upgrade push; < 0 none */
    /* the run */
    struct timespec t0;
    int tty;
    int finished, hold_over;
    struct event *check_ev;       /* coalesces fotasim_fleet_check_done */
    struct event *tick, *hold, *timeout;
    struct event *term;           /* SIGTERM: the run ends now, with its summary */
    struct event *boot_ev;        /* boots the devices from the loop (fotasim_main.c) */
    int booted;                   /* devices booted so far */
};

/* Device counts at this moment. */
struct fotasim_counts {
    unsigned running, done, failed;
    uint64_t bytes;               /* received on download connections */
};

/* Sets up the loop and the run's timers for the options in s->o (already
 * filled). Returns 0 or FOTA_ENOMEM. */
int fotasim_fleet_init(struct fotasim *s);
/* Frees what fotasim_fleet_init made (the devices are the caller's: free
 * them first, as they use the loop). */
void fotasim_fleet_cleanup(struct fotasim *s);
/* Runs the loop until the run ends. */
void fotasim_fleet_run(struct fotasim *s);

/* Seconds since fotasim_fleet_init (monotonic). */
double fotasim_fleet_elapsed(const struct fotasim *s);
/* CPU seconds (user + system) this process used so far. */
double fotasim_fleet_cpu_seconds(void);
void fotasim_fleet_counts(const struct fotasim *s, struct fotasim_counts *c);
/* A device's state may have changed: the run ends once none is running
 * (and --hold is over). Coalesced: the count runs at most every 10 ms. */
void fotasim_fleet_check_done(struct fotasim *s);

#endif
