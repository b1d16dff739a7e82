/* fotadev.h - libfotadev, the portable device side of fota (C99).
 *
 * Everything here is caller-owned storage: no malloc, no globals, no I/O
 * except through the HAL (struct fotadev_hal). Pieces, each usable alone:
 * flash layouts + the SDK's 3-sector parameter save + boot byte logic,
 * reconnect backoff, the device-channel dialect, the HTTP and legacy
 * download clients (sans-IO), image streaming into the inactive slot, and
 * the agent that runs them on a HAL (stock NONOS/RTOS, FOTA, seed-dfu). */
#ifndef FOTADEV_H
#define FOTADEV_H

#include <stddef.h>
#include <stdint.h>

#include "fota_err.h"
#include "fwimg.h"

#ifdef __cplusplus
extern "C" {
#endif

#define FOTADEV_SECTOR 4096u

/* ------------------------------------------------------------------ HAL */

/* Low-level flash access, shared by the HAL and the pure sysparam code.
 * All return 0 or a negative FOTA_E*. Writes must be 4-byte aligned in
 * address and length; NOR semantics (a write can only clear bits). */
struct fotadev_flash_ops {
    void *ud;
    int (*read)(void *ud, uint32_t addr, void *buf, uint32_t len);
    int (*erase)(void *ud, uint32_t sector);
    int (*write)(void *ud, uint32_t addr, const void *buf, uint32_t len);
    /* Optional host accelerators for the image checks (NULL on a device;
     * the results must not differ, only the time they take):
     * crc32: a faster CRC-32 with exactly fota_crc32_update's semantics
     * (a host's zlib crc32); NULL: fota_crc32_update.
     * crc_read: *crc = fota_crc32_update(*crc, <flash [addr, addr + len)>),
     * with read's errors (power, range); NULL: read in small chunks + crc32. */
    uint32_t (*crc32)(uint32_t crc, const void *data, size_t len);
    int (*crc_read)(void *ud, uint32_t addr, uint32_t len, uint32_t *crc);
};

/* The hardware abstraction. The simulator and the ESP8266 port implement
 * the same table. Callbacks into the library (tcp data, timers) are the
 * fotadev_agent_on_* functions below; the HAL calls them from its loop. */
struct fotadev_hal {
    void *ud;
    struct fotadev_flash_ops flash;
    /* Protected 3-sector parameter area (system_param_save_with_protect /
     * system_param_load). start_sec is the first of the three sectors. */
    int (*sysparam_load)(void *ud, uint16_t start_sec, uint32_t off, void *buf, uint32_t len);
    int (*sysparam_save)(void *ud, uint16_t start_sec, const void *buf, uint32_t len);
    /* system_upgrade_userbin_check(): running slot, FOTADEV_SLOT_USER1/2. */
    int (*running_slot)(void *ud);
    /* system_upgrade_flag_set(FINISH) + system_upgrade_reboot(): flips the
     * boot byte to the other slot and restarts. Does not return on hardware. */
    void (*upgrade_reboot)(void *ud);
    void (*restart)(void *ud);
    uint32_t (*now_ms)(void *ud);
    /* One timer per id (FOTADEV_TIMER_*); re-arming replaces; ms == 0 stops. */
    void (*timer)(void *ud, int id, uint32_t ms);
    /* TCP: conn ids are FOTADEV_CONN_*. connect is asynchronous: the HAL
     * later calls fotadev_agent_on_connect/on_data/on_close. */
    int (*tcp_connect)(void *ud, int conn, const char *host, uint16_t port);
    int (*tcp_send)(void *ud, int conn, const void *buf, size_t len);
    void (*tcp_close)(void *ud, int conn);
    uint32_t (*random)(void *ud);
    /* Optional: progress notices for the embedding application
     * (FOTADEV_EV_*; err is 0 or the FOTA_E* that caused a failure). `what`
     * is valid during the call only. EV_ACTIVATE_FAILED and EV_REFUSED
     * (the server refused the device's key: status 401/403) carry the
     * server's message; the device keeps behaving as stock firmware does
     * (it reconnects), so giving up is the application's choice. */
    void (*event)(void *ud, int ev, int err, const char *what);
    fota_log_cb log;
};

enum { FOTADEV_CONN_CHAN = 0, FOTADEV_CONN_DL = 1, FOTADEV_CONN_MAX };
enum { FOTADEV_TIMER_BEACON = 0, FOTADEV_TIMER_RECONNECT, FOTADEV_TIMER_REBOOT,
       FOTADEV_TIMER_WATCHDOG, FOTADEV_TIMER_DL_RETRY, FOTADEV_TIMER_MAX };
enum { FOTADEV_EV_CONNECTED = 1, FOTADEV_EV_ACTIVATED, FOTADEV_EV_ACTIVATE_FAILED,
       FOTADEV_EV_UPGRADE_START, FOTADEV_EV_UPGRADE_DONE, FOTADEV_EV_UPGRADE_FAILED,
       FOTADEV_EV_REBOOT, FOTADEV_EV_RESTART, FOTADEV_EV_RESUME, FOTADEV_EV_REFUSED };

/* ------------------------------------------------------- flash layouts */

enum { FOTADEV_SLOT_USER1 = 0, FOTADEV_SLOT_USER2 = 1 };

/* One row of §7.2: where the two slots and the system-parameter area are. */
struct fotadev_layout {
    uint8_t map;              /* size map code 0..9 */
    uint32_t flash_size;
    uint32_t slot_addr[2];    /* user1, user2 */
    uint32_t slot_size;       /* bytes a slot may hold (sector multiple) */
    uint16_t sysparam_sec;    /* first of the 3 system-parameter sectors */
    uint16_t privparam_sec;   /* IoT_Demo private param area (esp_param at +1) */
};

/* Fills *out for size map `map` (0, 2, 3, 4, 5, 6, 8, 9) from the shared
 * codec's table (fota_flash_map_get; slot_size = its slot_budget).
 * Returns 0 or FOTA_EINVAL for an unknown map. */
int fotadev_layout_get(unsigned map, struct fotadev_layout *out);

/* --------------------------------------- system parameters and boot byte */

/* The flag sector record (first 32 bytes of start_sec + 2). */
#define FOTADEV_SYSPARAM_MAGIC1 0x55AA55AAu
#define FOTADEV_SYSPARAM_MAGIC2 0xAA55AA55u

/* system_param_load(): reads `len` bytes at `off` of the active copy
 * (copy 1 if flag byte0 != 0, else copy 0). Returns 0 or a flash error. */
int fotadev_sysparam_load(const struct fotadev_flash_ops *f, uint16_t start_sec,
                          uint32_t off, void *buf, uint32_t len);
/* system_param_save_with_protect(): writes buf into the inactive copy
 * (skipped if it already holds these bytes), then rewrites the flag sector to
 * make it active. A power cut at any step leaves either the old or the new
 * data readable. len <= FOTADEV_SECTOR, multiple of 4. */
int fotadev_sysparam_save(const struct fotadev_flash_ops *f, uint16_t start_sec,
                          const void *buf, uint32_t len);

/* Boot parameter bytes 0..1 of the active copy (§7.4). */
#define FOTADEV_BOOT_VER(b1) ((b1) & 0x1Fu)
/* system_upgrade_userbin_check() on the two boot bytes. */
int fotadev_boot_running_slot(const uint8_t bp[2]);
/* The rewrite done by system_upgrade_reboot(): afterwards the loader boots
 * the slot that is not running now. Returns the slot it will boot. */
int fotadev_boot_flip(uint8_t bp[2]);
/* The slot the boot loader tries first for these boot bytes (usr_bin; the
 * low nibble for boot versions 2 and 31). */
int fotadev_boot_wanted_slot(const uint8_t bp[2]);

/* ------------------------------------- image streaming into the slot */

/* Writes an image into the inactive slot while the shared codec
 * (struct fota_fwimg_stream) checks it: magic and slot byte are checked
 * before anything is written, sectors are erased only when a write
 * reaches them (or up front with _erase), every write is read back, and
 * _end re-reads the slot from flash for the CRC. Never touches flash
 * outside [slot_addr, slot_addr + slot_size). */
struct fotadev_ota {
    struct fotadev_flash_ops flash;
    struct fota_fwimg_stream img;
    uint32_t base;              /* slot address */
    uint32_t limit;             /* slot size */
    uint32_t fed;               /* image bytes accepted */
    uint32_t erased;            /* bytes from base known erased */
    int slot;
    int err;                    /* sticky */
    uint8_t carry[4];
    uint8_t carry_len;
};
/* Starts writing `slot` of layout *lay. Returns 0 or FOTA_EINVAL. */
int fotadev_ota_begin(struct fotadev_ota *o, const struct fotadev_flash_ops *f,
                      const struct fotadev_layout *lay, int slot);
/* Erases the sectors that `len` image bytes need (stock NONOS erases after
 * HEAD). FOTA_ETOOBIG if len exceeds the slot. */
int fotadev_ota_erase(struct fotadev_ota *o, uint32_t len);
/* Next image bytes. 0, or a sticky negative FOTA_E*: FOTA_EMAGIC/ESLOT/
 * ERANGE/EPROTO from the codec, FOTA_ETOOBIG (beyond the slot), FOTA_EIO
 * (flash error or read-back mismatch). */
int fotadev_ota_update(struct fotadev_ota *o, const void *data, size_t len);
/* Bytes accepted so far (the resume offset). */
uint32_t fotadev_ota_offset(const struct fotadev_ota *o);
/* Completes: flushes, runs the codec's end (checksum, CRC), then re-reads
 * the slot and checks the CRC from flash. info may be NULL. Returns 0 or
 * FOTA_ETRUNC / FOTA_ECHECKSUM / FOTA_ECRC / FOTA_EIO / the sticky error. */
int fotadev_ota_end(struct fotadev_ota *o, struct fota_fwimg_info *info);

/* ---------------------------------------------------------- backoff */

struct fotadev_backoff_cfg {
    uint32_t base_ms;    /* first delay, e.g. 1000 */
    uint32_t max_ms;     /* cap, e.g. 300000 */
    unsigned jitter_pct; /* 0..100: delay drawn from [d*(100-j)/100, d] */
};
/* Delay before reconnect attempt number `attempt` (0 = first retry):
 * min(max, base * 2^attempt) minus up to jitter_pct percent, using `rnd`.
 * Pure function, never 0 when base_ms > 0. */
uint32_t fotadev_backoff_delay(const struct fotadev_backoff_cfg *cfg, unsigned attempt, uint32_t rnd);

/* ---------------------------------------------------- device channel */

#define FOTADEV_KEY_LEN 40
#define FOTADEV_VERSION_LEN 15          /* stock devices copy exactly 15 bytes */
#define FOTADEV_CHAN_RXMAX 2048         /* IoT_Demo's pbuffer */
#define FOTADEV_CHAN_TXMAX 512
#define FOTADEV_BEACON_MS 50000u
#define FOTADEV_REFUSAL_MAX 48          /* the server's message when it refuses the key */

enum fotadev_dialect {
    FOTADEV_DIALECT_NONOS = 0,  /* IoT_Demo byte-faithful: strstr dispatch (§2.5) */
    FOTADEV_DIALECT_JSON = 1    /* jsmn parse, strict nonces, exact version */
};

enum fotadev_chan_action {
    FOTADEV_ACT_NONE = 0,
    FOTADEV_ACT_ACTIVATED,      /* activation accepted: persist activeflag */
    FOTADEV_ACT_ACTIVATE_FAILED,
    FOTADEV_ACT_UPGRADE,        /* start download of chan->upgrade_version */
    FOTADEV_ACT_REBOOT,         /* sys_reboot: call system_upgrade_reboot in 1 s */
    FOTADEV_ACT_DISCONNECT,     /* ping went unanswered: drop and reconnect */
    FOTADEV_ACT_REFUSED         /* the server refused the key (401/403): ch->refusal */
};

struct fotadev_chan_cfg {
    enum fotadev_dialect dialect;
    const char *devkey;         /* 40 chars */
    const char *token;          /* 40 chars (activation) */
    uint8_t bssid[6];
    const char *version;        /* own ROM version, <= 15 chars */
    int activated;              /* esp_param.activeflag == 1 */
};

struct fotadev_chan {
    enum fotadev_dialect dialect;
    char devkey[FOTADEV_KEY_LEN + 1];
    char token[FOTADEV_KEY_LEN + 1];
    char version[FOTADEV_VERSION_LEN + 1];
    char upgrade_version[FOTADEV_VERSION_LEN + 1];
    uint8_t bssid[6];
    uint8_t activated;
    uint8_t ping_status;
    uint8_t identified;
    int32_t active_nonce;
    int32_t ident_nonce;
    int32_t last_nonce;         /* nonce of the last push (D4 echo) */
    int refused_status;         /* 401/403 of the last refusal, 0 none */
    char refusal[FOTADEV_REFUSAL_MAX]; /* its "message" ("" if it had none) */
    size_t rx_len;
    size_t tx_len;
    char rx[FOTADEV_CHAN_RXMAX + 32];  /* slack: the 15-byte version copy may read past the end */
    char tx[FOTADEV_CHAN_TXMAX];
};

/* Initialises *ch from cfg (strings are copied; cfg may go away). */
int fotadev_chan_init(struct fotadev_chan *ch, const struct fotadev_chan_cfg *cfg);
/* Connection established: queues D1 (not activated) or D2. rnd feeds the
 * nonce (& 0x7FFFFFFF). Returns bytes queued (read with _tx). */
int fotadev_chan_connected(struct fotadev_chan *ch, uint32_t rnd);
/* One TCP receive callback's bytes (the device treats each callback as
 * one message; a 1460-byte segment is joined with the next). May queue a
 * reply (read with _tx) and returns an enum fotadev_chan_action, or a
 * negative FOTA_E* (FOTA_ETOOBIG: join buffer overflow, FOTA_EPROTO).
 * A refusal (`"status": 401` or `403` with a "message", which stock
 * firmware ignores) is noted in refused_status/refusal: ACTIVATE_FAILED or
 * REFUSED. */
int fotadev_chan_feed(struct fotadev_chan *ch, const char *data, size_t len);
/* Beacon timer fired (50 s after the last receive): queues D1 / D3, or
 * returns FOTADEV_ACT_DISCONNECT when the last ping got no answer. */
int fotadev_chan_beacon(struct fotadev_chan *ch);
/* Queues D7 with device_upgrade_success / _failed. Returns bytes queued. */
int fotadev_chan_report(struct fotadev_chan *ch, int success);
/* Pending output: returns pointer and length, then clears the queue. */
const char *fotadev_chan_tx(struct fotadev_chan *ch, size_t *len);

/* ----------------------------------------------- HTTP download client */

enum fotadev_http_style {
    FOTADEV_HTTP_NONOS = 0,     /* IoT_Demo request text, HTTP/1.0, keep-alive */
    FOTADEV_HTTP_RTOS = 1,      /* IOT_PLATFORM: Host: iot.espressif.cn, close, + NUL */
    FOTADEV_HTTP_FOTA = 2       /* HTTP/1.1, Range: bytes=N- when resuming */
};

struct fotadev_http_req {
    enum fotadev_http_style style;
    int head;                   /* HEAD instead of GET */
    const char *version;        /* as received (not URL-encoded, like stock) */
    int slot;                   /* slot to download: FOTADEV_SLOT_USER1/2 */
    const char *host;           /* Host: for NONOS and FOTA (RTOS sends iot.espressif.cn) */
    uint16_t port;
    const char *devkey;
    uint32_t range_from;        /* FOTA style: >0 adds Range: bytes=N- */
};
/* Writes the request into buf (NUL-terminated). Returns the number of
 * bytes to send (RTOS style includes the trailing NUL, like stock), or
 * FOTA_ETOOBIG / FOTA_EINVAL. */
int fotadev_http_request(char *buf, size_t cap, const struct fotadev_http_req *req);

#define FOTADEV_HTTP_HDRMAX 1460

struct fotadev_http_resp {
    int status;                 /* 200, 206, ... */
    uint32_t content_length;    /* body bytes of this response */
    uint32_t range_start;       /* 206: first byte; else 0 */
    uint32_t total;             /* whole file size (206: from Content-Range) */
    int have_length;
    size_t hdr_len;
    char hdr[FOTADEV_HTTP_HDRMAX + 1];
};
void fotadev_http_resp_init(struct fotadev_http_resp *r);
/* Feeds response bytes until the header ends. Returns the number of bytes
 * of `data` that belonged to the header (the rest is body) once complete,
 * FOTA_EAGAIN if more is needed, FOTA_ETOOBIG for an oversized header,
 * FOTA_EPROTO for a malformed one or a missing Content-Length. */
int fotadev_http_resp_feed(struct fotadev_http_resp *r, const char *data, size_t len);

/* ------------------------------------------------ legacy (port 5555) */

#define FOTADEV_LEGACY_BUF 1280          /* the seed client's receive buffer */

enum fotadev_legacy_state { FOTADEV_LEG_IDLE = 0, FOTADEV_LEG_WAIT_LEN, FOTADEV_LEG_DATA,
                            FOTADEV_LEG_DONE, FOTADEV_LEG_FAILED };
struct fotadev_legacy {
    enum fotadev_legacy_state state;
    int stream_ext;             /* send 0x81/0x82 instead of 1/2 */
    int seed_strict;            /* seed semantics: length alone, <= 1280 per receive */
    uint32_t length;
    uint32_t remaining;
    uint8_t lenbuf[4];
    uint8_t lenhave;
};
void fotadev_legacy_init(struct fotadev_legacy *l, int stream_ext, int seed_strict);
/* Byte to send after connecting for a download of `slot`. */
uint8_t fotadev_legacy_hello(struct fotadev_legacy *l, int slot);
/* One receive callback. Sets *body and *body_len to image bytes in data (may
 * be 0 length). Returns 0 (more), 1 (image complete), or FOTA_EPROTO
 * (bad length / too many bytes), FOTA_ETOOBIG (seed buffer overflow). */
int fotadev_legacy_feed(struct fotadev_legacy *l, const uint8_t *data, size_t len,
                        const uint8_t **body, size_t *body_len);

/* ------------------------------------------------------------- agent */

/* The device behaviour the simulator's profiles need, on top of the HAL:
 *  NONOS    IoT_Demo + NONOS >= 2.0 libupgrade: D1/D2, pings, D4, HEAD, erase,
 *           reconnect, GET, magic/slot check, CRC, D7, reboot on sys_reboot
 *           only after FINISH;
 *  RTOS     IOT_PLATFORM: GET (+NUL), pre-erase on the first response, close,
 *           reconnect, GET again, trim, CRC;
 *  FOTA     this library's own: JSON dialect, Range resume with backoff;
 *  SEED_DFU seed 000 dfu_ota.c: port 5555, 1280-byte receive buffer. */
enum fotadev_profile { FOTADEV_PROFILE_NONOS = 0, FOTADEV_PROFILE_RTOS, FOTADEV_PROFILE_FOTA,
                       FOTADEV_PROFILE_SEED_DFU };
enum { FOTADEV_UPGRADE_IDLE = 0, FOTADEV_UPGRADE_START = 1, FOTADEV_UPGRADE_FINISH = 2 };

struct fotadev_agent_cfg {
    enum fotadev_profile profile;
    const char *host;            /* server address; stock Host: uses the IP */
    uint16_t chan_port, http_port, legacy_port;
    const char *devkey, *token;  /* 40 chars each */
    uint8_t bssid[6];
    const char *version;         /* the running image's version, <= 15 chars */
    int activated;
    unsigned map;                /* flash size map */
    int legacy_stream_ext;       /* seed-dfu: ask for the unpaced stream */
    uint32_t check_ms;           /* upgrade watchdog; 0 = 120 s (NONOS, seed), 1200 s (RTOS), 600 s (FOTA) */
    struct fotadev_backoff_cfg backoff;   /* FOTA profile reconnects */
};

struct fotadev_agent {
    const struct fotadev_hal *hal;
    enum fotadev_profile profile;
    char host[64];
    uint16_t chan_port, http_port, legacy_port;
    int legacy_stream_ext;
    uint32_t check_ms;
    struct fotadev_backoff_cfg backoff;
    struct fotadev_layout lay;
    int running_slot, target_slot;
    uint8_t upgrade_flag;        /* FOTADEV_UPGRADE_* (system_upgrade_flag) */
    uint8_t dl_phase;
    uint8_t conn_up[FOTADEV_CONN_MAX];
    uint8_t header_done;
    uint32_t sumlength;          /* image size */
    uint32_t received;           /* image bytes accepted */
    unsigned chan_attempts, dl_attempts;
    uint32_t bytes_in;           /* all image bytes received (incl. restarts) */
    int last_error;
    const char *fail_reason;     /* static text of the last failure */
    struct fotadev_chan chan;
    struct fotadev_http_resp resp;
    struct fotadev_legacy leg;
    struct fotadev_ota ota;
    char req[640];
};

/* Sets the agent up; no I/O yet. Returns 0 or FOTA_EINVAL. */
int fotadev_agent_init(struct fotadev_agent *a, const struct fotadev_hal *hal,
                       const struct fotadev_agent_cfg *cfg);
/* Connects the channel (or, SEED_DFU, starts the legacy download). */
void fotadev_agent_start(struct fotadev_agent *a);
/* HAL -> library. err is 0 or a negative FOTA_E* (connect failed). */
void fotadev_agent_on_connect(struct fotadev_agent *a, int conn, int err);
void fotadev_agent_on_data(struct fotadev_agent *a, int conn, const void *data, size_t len);
void fotadev_agent_on_close(struct fotadev_agent *a, int conn);
void fotadev_agent_on_timer(struct fotadev_agent *a, int id);
/* Image bytes the running download still expects on the download
 * connection once its response header was read (sumlength - received);
 * 0 when unknown (no download, HEAD, header not yet seen, legacy stream).
 * For a HAL that batches its socket reads; it changes nothing here. */
uint32_t fotadev_agent_dl_due(const struct fotadev_agent *a);

#ifdef __cplusplus
}
#endif

#endif
