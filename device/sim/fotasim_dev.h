/* fota_sim.h - the fota-sim executable's internals: options, fault plan,
 * and one virtual device = flash + loader + libfotadev agent, with the HAL
 * implemented on a shared libevent base. */
#ifndef FOTA_SIM_INT_H
#define FOTA_SIM_INT_H

#include <event2/event.h>
#include <event2/bufferevent.h>

#include "sim.h"

#define FOTASIM_MSS 1460              /* one receive callback = at most one segment */
#define FOTASIM_SEGMENT_MAX 65536     /* --segment: largest piece a download callback gets */
#define FOTASIM_DL_BUFFER 65536       /* download bytes read from the socket per wake-up, at most */
#define FOTASIM_DL_LOWAT 65536        /* SO_RCVLOWAT of a download while this much is still due */

struct fotasim_fault {
    long flash_at;        /* power cut at this flash op after first boot; -1 none */
    long rx_at;           /* power cut after this many received bytes; -1 none */
    long drop_at;         /* close the download after this many image bytes; -1 none */
    long corrupt_at;      /* flip the bits of this download byte (headers count); -1 none */
    long flash_hi, rx_hi, drop_hi, corrupt_hi; /* KIND@A-B: each device draws from [A, B] */
    unsigned pct;         /* share of devices affected, 0..100 */
    long slow_bps;        /* slow link: download receive rate in bytes/s; 0 none */
};

struct fotasim_opts {
    const char *server;           /* numeric address */
    int http_port, device_port, legacy_port;
    const char *admin_key, *product, *keys_file;
    enum fotadev_profile profile;
    int devices;
    const char *upgrade_to;       /* target version, NULL = check-in only */
    char *upgrade_to_enc;         /* URL-encoded, for the RPC */
    const char *initial_version;
    unsigned map;
    int loader;                   /* boot loader version (2, 31, 7) */
    double time_scale;            /* divides every device timer */
    unsigned timeout_s;
    unsigned max_attempts;        /* seed-dfu: upgrade attempts per device */
    int stream_ext;               /* seed-dfu: 0x81/0x82 */
    uint32_t seed;
    struct fotasim_fault fault;
    int have_fault;
    const char *flash_dir;        /* optional: devNNNNN.bin per device, loaded and saved */
    unsigned hold_s;              /* keep running at least this long (pings, presence) */
    int tls;                      /* channel over TLS (CLIENT_SSL_ENABLE, port 8443) */
    int json;                     /* summary as JSON */
    unsigned source_addrs;        /* >0: bind to 127.0.0.(2 + idx % N) before connect */
    int await_push;               /* --upgrade-to without RPCs: the server pushes (bulk job) */
    int ack_only;                 /* acknowledge upgrades, never download (fan-out benchmark) */
    int json_devices;             /* --json-devices: plus one entry per device */
    unsigned segment;             /* download bytes per receive callback, at most (1460) */
};

#define FOTASIM_FIRED_FLASH 1
#define FOTASIM_FIRED_RX 2
#define FOTASIM_FIRED_DROP 4
#define FOTASIM_FIRED_CORRUPT 8
/* what the loader started, per boot (--json-devices "booted") */
#define FOTASIM_BOOT_INITIAL 0u   /* --initial-version */
#define FOTASIM_BOOT_TARGET 1u    /* --upgrade-to */
#define FOTASIM_BOOT_OTHER 2u     /* a valid image of another version */
#define FOTASIM_BOOT_NONE 3u      /* nothing bootable */
#define FOTASIM_BOOT_LOG_MAX 16u

enum fotasim_state { DEV_BOOTING = 0, DEV_RUNNING, DEV_DONE, DEV_FAILED, DEV_DEAD };

struct fotasim;
struct evhttp_connection;

#define FOTASIM_API_CONNS 4

struct fotasim_conn {
    struct bufferevent *bev;
    struct event *rd;             /* download: our own reads (bev writes only); NULL otherwise */
    int direct;                   /* read with rd once connected (not rate-limited) */
    int up;
};

struct fotasim_dev {
    struct fotasim *sim;
    int idx;
    enum fotasim_state state;
    struct fotasim_flash flash;
    struct fotadev_layout lay;
    struct fotadev_hal hal;
    struct fotadev_agent agent;
    struct fotasim_conn conn[FOTADEV_CONN_MAX];
    struct event *timers[FOTADEV_TIMER_MAX];
    struct event *reboot_ev;
    int pending;                  /* 1 restart, 2 flip + restart, 3 power loss */
    int halted;                   /* between a restart request and the reboot */
    char devkey[FOTADEV_KEY_LEN + 1], token[FOTADEV_KEY_LEN + 1];
    uint8_t bssid[6];
    char version[FOTA_FWIMG_VERSION_MAX];
    int activated, ever_activated;
    unsigned boots, attempts, power_cuts;
    int loaded;                   /* flash came from --flash-dir */
    int faulty, fault_fired;      /* fault_fired: FOTASIM_FIRED_* bits, each fault once */
    long flash_at, rx_at, drop_at, corrupt_at; /* this device's fault positions (-1 none) */
    uint32_t boot_log;            /* 2 bits per boot past the loader: FOTASIM_BOOT_* */
    unsigned boot_logged;
    uint64_t rx_bytes;
    uint64_t dl_bytes;
    int dl_lowat;                 /* SO_RCVLOWAT set on the direct download socket */
    uint32_t rnd;
    const char *reason;           /* last failure */
    long long api_id;             /* device id from registration, 0 if unknown */
    int rpc_upgrade_sent;         /* sys_upgrade requested in this boot */
    int rpc_on_rx;                /* send sys_upgrade at the next channel receive */
    unsigned rpc_upgrades;        /* sys_upgrade requests in total */
    float t_start, t_done;        /* s since start: first upgrade push, running the target */
};

struct fotasim {
    struct event_base *base;
    struct fotasim_opts o;
    struct fotasim_dev *devs;
    struct event *tick;
    struct timeval t0;
    int tty;
    int finished;
    int hold_over;
    struct event *hold;
    struct fotasim_pool pool;     /* downloaded sectors, shared by content */
    struct ssl_ctx_st *ssl_ctx;   /* --tls: one client context, no verification (IoT_Demo) */
    unsigned activated, upgraded, failed, connected;
    unsigned chan_drops;          /* channel connections closed from the far side */
    struct event *check_ev;       /* coalesces fotasim_check_done */
    struct ev_token_bucket_cfg *slow_cfg; /* --faults slow=BPS: shared by the faulty devices' downloads */
    struct evhttp_connection *api[FOTASIM_API_CONNS];
    unsigned api_next, api_pending, registered, api_errors;
    struct fotasim_api_call *api_calls; /* in flight: freed at cleanup if unanswered */
    char api_error[160];
    double cpu_at_push;           /* CPU seconds (user + system) at the first upgrade push; <0 none */
};

/* Device lifecycle (fota_sim_dev.c). */
int fotasim_dev_init(struct fotasim *s, struct fotasim_dev *d, int idx, const char *devkey);
void fotasim_dev_cleanup(struct fotasim_dev *d);
/* The device key changed (registration): rewrite the factory esp_param. */
void fotasim_dev_rekey(struct fotasim_dev *d);
/* Power on: boot loader, then run the agent (or finish). */
void fotasim_dev_boot(struct fotasim_dev *d);
/* REST API (fota_sim_api.c), used when --key is given: registration
 * (POST /v1/products/ID/devices/) and the app's RPCs (sys_upgrade with the
 * target version when a device connects on an older one, sys_reboot once
 * it reported success), sent with the device's master key. */
int fotasim_api_init(struct fotasim *s);
void fotasim_api_cleanup(struct fotasim *s);
/* Registers every device; boots each as its key arrives. */
int fotasim_api_register_all(struct fotasim *s);
void fotasim_api_rpc(struct fotasim_dev *d, const char *action);

/* The factory user1 image, padded with 0xFF to whole sectors (main). */
const uint8_t *fotasim_factory_image(struct fotasim *s, size_t *len);

/* Seconds since the simulator started (main). */
double fotasim_elapsed(struct fotasim *s);
/* CPU seconds (user + system) this process used so far (main). */
double fotasim_cpu_seconds(void);

/* Called by a device whenever its state may have changed. */
void fotasim_check_done(struct fotasim *s);

#endif
