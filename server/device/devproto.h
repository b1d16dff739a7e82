/* devproto.h - the device channel's wire protocol, sans I/O.
 *
 * Pure functions over byte buffers: line framing (one JSON object per '\n'),
 * classification of the stock IoT_Demo frames D1-D8 (espressif-protocol.md
 * §2.3), the replies the device's substring dispatch needs (§2.4/§2.5), the
 * server push encoder (sorted keys, json.dumps separators) and the lenient
 * version handling that makes short versions survive the device's fixed
 * 15-byte copy. No logging, no globals, every buffer bounded. */
#ifndef FOTA_DEVPROTO_H
#define FOTA_DEVPROTO_H

#include <stddef.h>
#include <stdint.h>
#include "fota_err.h"

struct json_t;

#define FOTA_DEVPROTO_LINE_MAX  2048 /* a device line longer than this is a protocol error */
#define FOTA_DEVPROTO_PUSH_MAX  1460 /* pushes are strictly shorter (one TCP segment) */
#define FOTA_DEVPROTO_VCOPY     15   /* bytes the device copies after "version": " */
#define FOTA_DEVPROTO_VPAD      '~'  /* padding for versions shorter than VCOPY */
#define FOTA_DEVPROTO_KEY_MAX   65   /* key text incl. NUL (stock keys are 40 chars) */
#define FOTA_DEVPROTO_VER_MAX   64   /* version text incl. NUL */
#define FOTA_DEVPROTO_BODY_MAX  2048 /* a datapoint's body as stored (the message body size) */

/* Finds one line in buf[0..len). Returns 1 and sets *line_len (without the
 * '\n' and an optional '\r' before it) and *consumed (incl. the '\n');
 * 0 if no '\n' yet and len <= LINE_MAX (need more); FOTA_ETOOBIG if a line
 * is (or will be) longer than LINE_MAX. */
int fota_devproto_line(const char *buf, size_t len, size_t *line_len, size_t *consumed);

enum fota_devproto_kind {
    FOTA_DP_INVALID = 0, /* not a JSON object (and not a recoverable D7) */
    FOTA_DP_ACTIVATE,    /* D1 POST /v1/device/activate/ */
    FOTA_DP_IDENTIFY,    /* D2 GET /v1/device/identify[/] */
    FOTA_DP_PING,        /* D3 POST /v1/ping/ */
    FOTA_DP_REPLY,       /* D4/D5 {"status": N, "nonce": N, ...}: a reply to a push */
    FOTA_DP_TIMERS,      /* D6 GET /v1/device/timers/ */
    FOTA_DP_MESSAGE,     /* D7 POST /v1/messages/ */
    FOTA_DP_DATAPOINT,   /* D8 POST /v1/datastreams/<name>/datapoint/ */
    FOTA_DP_UNKNOWN      /* a JSON object with no path fotad knows */
};

/* One classified frame. Strings are NUL-terminated copies of whole UTF-8
 * characters: a value longer than its field is cut at a character boundary,
 * and the raw bytes of a broken D7 stop at the first one that is not valid
 * UTF-8, so every view of a field (JSON replies, stored rows) can encode it.
 * A frame may own a decoded value (reply): fota_devproto_frame_cleanup
 * releases it. */
struct fota_devproto_frame {
    int     kind;                           /* enum fota_devproto_kind */
    int     has_nonce;
    int64_t nonce;
    int     status;                         /* REPLY: the "status" value */
    char    key[FOTA_DEVPROTO_KEY_MAX];     /* from meta.Authorization "token K" / "Token K"; "" none */
    char    token[FOTA_DEVPROTO_KEY_MAX];   /* ACTIVATE: body.token */
    char    bssid[18];                      /* ACTIVATE: body.bssid, lower-cased */
    char    rom_version[FOTA_DEVPROTO_VER_MAX]; /* ACTIVATE: body.rom_version; MESSAGE: body.rom_version (raw) */
    char    pre_version[FOTA_DEVPROTO_VER_MAX]; /* MESSAGE: body.pre_rom_version */
    char    action[48];                     /* MESSAGE: get.action */
    char    stream[48];                     /* DATAPOINT: the <name> of the path */
    int     recovered;                      /* MESSAGE parsed by the raw fallback (broken JSON) */
    struct json_t *reply;                   /* REPLY from the full parser: the whole line, decoded
                                               (owned); NULL from the D4 fast path and other kinds */
    /* Last, so the D4 fast path clears only what precedes it. DATAPOINT: the
     * "body" object as sorted JSON text (json.dumps separators), "{}" when
     * there is none or it does not fit; "" for every other kind. */
    char    body[FOTA_DEVPROTO_BODY_MAX];
};

/* Classifies one line (without '\n'). Never fails: an unparsable line gives
 * kind FOTA_DP_INVALID. A D7 whose JSON a junk-tailed version broke is still
 * recognised by a bounded substring scan (recovered = 1). */
void fota_devproto_classify(const char *line, size_t len, struct fota_devproto_frame *out);
/* Releases what the frame owns (reply). The frame may be classified again. */
void fota_devproto_frame_cleanup(struct fota_devproto_frame *f);
/* A REPLY frame's reply as a JSON value (a new reference): the decoded line,
 * or for the D4 fast path the object its exact bytes stand for
 * ({"deliver_to_device": true, "nonce": N, "status": S}). NULL for other
 * kinds. */
struct json_t *fota_devproto_reply_value(const struct fota_devproto_frame *f);

/* The stock D4 acknowledgement ({"status": S, "nonce": N, "deliver_to_device":
 * true}, espressif-protocol §2.3) recognised by its exact bytes, without a
 * JSON parse, so a fan-out's 19,000 acknowledgements cost a few comparisons
 * each (devproto_d4.c). Returns 1 if line (len bytes, no '\n') is exactly
 * that line with non-negative JSON integers (status up to 9 digits, nonce up
 * to 18): *f is then what fota_devproto_classify gives for it (kind
 * FOTA_DP_REPLY, has_nonce, nonce, status). Else 0 and *f is untouched: the
 * caller classifies the line in full. */
int fota_devproto_d4_parse(const char *line, size_t len, struct fota_devproto_frame *f);

/* Reply builders. Each writes one NUL-terminated line ending in '\n' into
 * buf and returns its length (without the NUL), or FOTA_ETOOBIG. They keep
 * §2.4's rules: no reply but activation contains "activate_status": ,
 * none contains "method": , refusals do not contain "device".
 * activate: device_id/rom_version describe the device. */
int fota_devproto_reply_activate(char *buf, size_t cap, int64_t nonce, int64_t device_id,
                                 const char *rom_version);
/* D1 with a refused key: "activate_status": 0 with the echoed nonce (the
 * device marks DEVICE_ACTIVE_FAIL). */
int fota_devproto_reply_activate_refused(char *buf, size_t cap, int64_t nonce);
/* D2: echoes the nonce (when the device sent one) and carries "device". */
int fota_devproto_reply_identify(char *buf, size_t cap, int has_nonce, int64_t nonce,
                                 int64_t device_id, const char *rom_version);
int fota_devproto_reply_ping(char *buf, size_t cap);
int fota_devproto_reply_message(char *buf, size_t cap);
int fota_devproto_reply_timers(char *buf, size_t cap, int64_t now);
int fota_devproto_reply_datapoint(char *buf, size_t cap, int has_nonce, int64_t nonce);
/* {"message": "<why>", "status": <status>}; why must not contain "device". */
int fota_devproto_reply_refusal(char *buf, size_t cap, int status, const char *why);

/* Push encoder. Builds the request envelope of §2.5:
 * {"body": B, "deliver_to_device": true, "get": G, "meta": {"Authorization":
 * "token <auth>"}, "method": M, "nonce": N, "path": P}\n with sorted keys and
 * json.dumps separators. get/body are JSON objects (borrowed, not changed) or
 * NULL. For get.action == "sys_upgrade" a version shorter than 15 characters
 * is padded with '~' to 15 (see fota_devproto_version_pad). Returns the
 * length (< FOTA_DEVPROTO_PUSH_MAX) or FOTA_ETOOBIG / FOTA_EINVAL. */
int fota_devproto_push(char *buf, size_t cap, const char *method, const char *path,
                       const struct json_t *get, const struct json_t *body, const char *auth,
                       int64_t nonce);
/* Convenience: the sys_upgrade / sys_reboot RPC pushes. */
int fota_devproto_push_rpc(char *buf, size_t cap, const char *action, const char *version,
                           const char *auth, int64_t nonce);

/* Pads a version shorter than 15 characters with '~' to exactly 15, so the
 * device's 15-byte copy holds no JSON junk. Longer versions are copied as is.
 * Returns the length or FOTA_ETOOBIG. */
int fota_devproto_version_pad(char *out, size_t cap, const char *version);
/* Recovers a release version from what a device sent back (download
 * version= or D7 rom_version): cuts at the first character that cannot be
 * part of a version ('"', space, '}', ',', '&', control bytes...) and strips
 * trailing '~' padding. Returns the length (0 if nothing is left). */
size_t fota_devproto_version_clean(char *out, size_t cap, const char *raw, size_t rawlen);

/* A fresh positive 31-bit nonce from 4 random bytes (never 0). */
int64_t fota_devproto_nonce(uint32_t random_bits);

#endif
