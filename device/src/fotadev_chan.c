/* fotadev_chan.c - the device side of the :8000 channel, sans-IO.
 * Frames D1-D7 are the IoT_Demo format strings byte for byte (§2.3).
 * Two receive dialects: NONOS reproduces IoT_Demo's strstr dispatch (§2.5,
 * 15-byte version copy, first "nonce": wins); JSON parses each line with
 * jsmn and validates nonces strictly. This is the one file with jsmn. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define JSMN_STATIC
#include <jsmn.h>

#include "fotadev.h"
#include "fota_str.h"

#define ACTIVE_FRAME                                                                             \
    "{\"nonce\": %ld,\"path\": \"/v1/device/activate/\", \"method\": \"POST\", \"body\": "       \
    "{\"encrypt_method\": \"PLAIN\", \"token\": \"%s\", \"bssid\": "                             \
    "\"%02x:%02x:%02x:%02x:%02x:%02x\",\"rom_version\":\"%s\"}, \"meta\": {\"Authorization\": "  \
    "\"token %s\"}}\n"
#define FIRST_FRAME                                                                              \
    "{\"nonce\": %ld, \"path\": \"/v1/device/identify\", \"method\": \"GET\",\"meta\": "         \
    "{\"Authorization\": \"token %s\"}}\n"
#define BEACON_FRAME                                                                             \
    "{\"path\": \"/v1/ping/\", \"method\": \"POST\",\"meta\": {\"Authorization\": \"token %s\"}}\n"
#define RPC_RESPONSE_FRAME "{\"status\": 200, \"nonce\": %ld, \"deliver_to_device\": true}\n"
#define RESPONSE_FRAME                                                                           \
    "{\"status\": 200, \"datapoint\": {\"x\": %d}, \"nonce\": %ld, \"deliver_to_device\": true}\n"
#define TIMER_FRAME                                                                              \
    "{\"body\": {}, \"get\":{\"is_humanize_format_simple\":\"true\"},\"meta\": "                 \
    "{\"Authorization\": \"Token %s\"},\"path\": \"/v1/device/timers/\",\"post\":{},"            \
    "\"method\": \"GET\"}\n"
#define UPGRADE_FRAME                                                                            \
    "{\"path\": \"/v1/messages/\", \"method\": \"POST\", \"meta\": {\"Authorization\": "         \
    "\"token %s\"},\"get\":{\"action\":\"%s\"},\"body\":{\"pre_rom_version\":\"%s\","            \
    "\"rom_version\":\"%s\"}}\n"

#define CHAN_MAXTOK 64

int fotadev_chan_init(struct fotadev_chan *ch, const struct fotadev_chan_cfg *cfg)
{
    if (!cfg->devkey || strlen(cfg->devkey) != FOTADEV_KEY_LEN || !cfg->version ||
        strlen(cfg->version) > FOTADEV_VERSION_LEN)
        return FOTA_EINVAL;
    memset(ch, 0, sizeof(*ch));
    ch->dialect = cfg->dialect;
    fota_str_copy(ch->devkey, sizeof(ch->devkey), cfg->devkey);
    fota_str_copy(ch->token, sizeof(ch->token), cfg->token);
    fota_str_copy(ch->version, sizeof(ch->version), cfg->version);
    memcpy(ch->bssid, cfg->bssid, 6);
    ch->activated = cfg->activated ? 1 : 0;
    return 0;
}

/* Appends one formatted frame to the tx queue. */
static int queue(struct fotadev_chan *ch, int n)
{
    if (n < 0 || (size_t)n >= sizeof(ch->tx) - ch->tx_len)
        return FOTA_ETOOBIG;
    ch->tx_len += (size_t)n;
    return n;
}

#define QUEUE(ch, ...) queue((ch), snprintf((ch)->tx + (ch)->tx_len, sizeof((ch)->tx) - (ch)->tx_len, __VA_ARGS__))

static int send_identify(struct fotadev_chan *ch, uint32_t rnd)
{
    ch->ident_nonce = (int32_t)(rnd & 0x7FFFFFFFu);
    ch->identified = 0;
    return QUEUE(ch, FIRST_FRAME, (long)ch->ident_nonce, ch->devkey);
}

static int send_activate(struct fotadev_chan *ch, uint32_t rnd)
{
    const uint8_t *m = ch->bssid;
    ch->active_nonce = (int32_t)(rnd & 0x7FFFFFFFu);
    return QUEUE(ch, ACTIVE_FRAME, (long)ch->active_nonce, ch->token, m[0], m[1], m[2], m[3], m[4],
                 m[5], ch->version, ch->devkey);
}

int fotadev_chan_connected(struct fotadev_chan *ch, uint32_t rnd)
{
    ch->rx_len = 0;
    ch->rx[0] = '\0';
    ch->ping_status = 1;
    return ch->activated ? send_identify(ch, rnd) : send_activate(ch, rnd);
}

int fotadev_chan_beacon(struct fotadev_chan *ch)
{
    if (!ch->activated)
        return send_activate(ch, (uint32_t)ch->active_nonce) < 0 ? FOTA_ETOOBIG : FOTADEV_ACT_NONE;
    if (!ch->ping_status)
        return FOTADEV_ACT_DISCONNECT;
    ch->ping_status = 0;
    return QUEUE(ch, BEACON_FRAME, ch->devkey) < 0 ? FOTA_ETOOBIG : FOTADEV_ACT_NONE;
}

int fotadev_chan_report(struct fotadev_chan *ch, int success)
{
    return QUEUE(ch, UPGRADE_FRAME, ch->devkey,
                 success ? "device_upgrade_success" : "device_upgrade_failed", ch->version,
                 ch->upgrade_version);
}

const char *fotadev_chan_tx(struct fotadev_chan *ch, size_t *len)
{
    *len = ch->tx_len;
    ch->tx_len = 0;
    return ch->tx;
}

/* IoT_Demo parse_nonce(): first "nonce": , up to the next ',' (else '}',
 * else ']'), at most 10 characters (stock would overflow noncestr[11]:
 * we refuse instead), then atoi. Returns 0 or FOTA_EPROTO. */
static int nonos_nonce(const char *buf, int32_t *out)
{
    const char *p = strstr(buf, "\"nonce\": "), *e;
    char tmp[11];
    size_t n;

    *out = 0;
    if (!p)
        return 0;                 /* stock: nonce 0 */
    p += 9;
    if (!(e = strchr(p, ',')) && !(e = strchr(p, '}')) && !(e = strchr(p, ']')))
        return FOTA_EPROTO;
    n = (size_t)(e - p);
    if (n > 10)
        return FOTA_EPROTO;
    memcpy(tmp, p, n);
    tmp[n] = '\0';
    *out = (int32_t)strtol(tmp, NULL, 10);   /* atoi: leading digits, junk after ignored */
    return 0;
}

/* Notes the server's refusal of the key (status, message of len bytes). */
static void note_refusal(struct fotadev_chan *ch, int status, const char *msg, size_t len)
{
    ch->refused_status = status;
    fota_str_copy_n(ch->refusal, sizeof(ch->refusal), msg, msg ? len : 0);
}

/* The refusal in a NONOS-dialect message, by substrings as the rest of the
 * dialect: `"status": 401|403` and the `"message": "..."` text. Returns the
 * status, or 0 when buf holds none (activation: any status). */
static int nonos_refusal(struct fotadev_chan *ch, const char *buf, int any_status)
{
    const char *st = strstr(buf, "\"status\": "), *m = strstr(buf, "\"message\": \""), *e = NULL;
    int status = 0, i;

    for (i = 0; st && i < 3 && st[10 + i] >= '0' && st[10 + i] <= '9'; i++)
        status = status * 10 + (st[10 + i] - '0');
    if (!any_status && status != 401 && status != 403)
        return 0;
    if (m && (e = strchr(m + 12, '"')) == NULL)
        m = NULL;
    note_refusal(ch, status, m ? m + 12 : NULL, m ? (size_t)(e - (m + 12)) : 0);
    return status ? status : 1;
}

static int nonos_dispatch(struct fotadev_chan *ch)
{
    char *buf = ch->rx, *p;
    int32_t nonce;

    if (nonos_nonce(buf, &nonce) < 0)
        return FOTA_EPROTO;
    if ((p = strstr(buf, "\"activate_status\": ")) && nonce == ch->active_nonce) {
        if (p[19] != '1') {
            nonos_refusal(ch, buf, 1);
            return FOTADEV_ACT_ACTIVATE_FAILED;
        }
        ch->activated = 1;
        if (send_identify(ch, (uint32_t)nonce * 1103515245u + 12345u) < 0)
            return FOTA_ETOOBIG;
        return FOTADEV_ACT_ACTIVATED;
    }
    if (strstr(buf, "\"action\": \"sys_upgrade\"")) {
        if (!(p = strstr(buf, "\"version\":")))
            return FOTADEV_ACT_NONE;
        ch->last_nonce = nonce;
        if (QUEUE(ch, RPC_RESPONSE_FRAME, (long)nonce) < 0)
            return FOTA_ETOOBIG;
        /* os_memcpy(upgrade_version, pstr + 12, 16); [15] = 0: junk and all */
        memcpy(ch->upgrade_version, p + 12, FOTADEV_VERSION_LEN);
        ch->upgrade_version[FOTADEV_VERSION_LEN] = '\0';
        return FOTADEV_ACT_UPGRADE;
    }
    if (strstr(buf, "\"action\": \"sys_reboot\""))
        return FOTADEV_ACT_REBOOT;          /* no reply, like stock */
    if (strstr(buf, "/v1/device/timers/")) {
        ch->last_nonce = nonce;
        return QUEUE(ch, RPC_RESPONSE_FRAME, (long)nonce) < 0 ? FOTA_ETOOBIG : FOTADEV_ACT_NONE;
    }
    if (strstr(buf, "\"method\": ")) {      /* datastream GET/POST: a plug that is off */
        ch->last_nonce = nonce;
        return QUEUE(ch, RESPONSE_FRAME, 0, (long)nonce) < 0 ? FOTA_ETOOBIG : FOTADEV_ACT_NONE;
    }
    if (strstr(buf, "ping success")) {
        ch->ping_status = 1;
        return FOTADEV_ACT_NONE;
    }
    if (strstr(buf, "send message success") || strstr(buf, "timers"))
        return FOTADEV_ACT_NONE;
    if (nonos_refusal(ch, buf, 0))
        return FOTADEV_ACT_REFUSED;         /* stock ignores it; the server closes */
    if (strstr(buf, "device")) {
        ch->identified = 1;
        return QUEUE(ch, TIMER_FRAME, ch->devkey) < 0 ? FOTA_ETOOBIG : FOTADEV_ACT_NONE;
    }
    return FOTADEV_ACT_NONE;
}

/* ---- JSON dialect ---- */

static int tok_is(const char *js, const jsmntok_t *t, const char *s)
{
    size_t n = strlen(s);
    return t->type == JSMN_STRING && (size_t)(t->end - t->start) == n && memcmp(js + t->start, s, n) == 0;
}

/* Index of the token after token i (skipping its whole subtree). */
static int tok_skip(const jsmntok_t *t, int ntok, int i)
{
    int todo = 1;
    while (todo > 0 && i < ntok) {
        todo += t[i].type == JSMN_OBJECT ? 2 * t[i].size : t[i].type == JSMN_ARRAY ? t[i].size : 0;
        todo--;
        i++;
    }
    return i;
}

/* Value token of key `key` in the object at index obj, or -1. */
static int obj_get(const char *js, const jsmntok_t *t, int ntok, int obj, const char *key)
{
    int i = obj + 1, k;
    if (obj < 0 || t[obj].type != JSMN_OBJECT)
        return -1;
    for (k = 0; k < t[obj].size && i + 1 < ntok; k++) {
        if (tok_is(js, &t[i], key))
            return i + 1;
        i = tok_skip(t, ntok, i + 1);
    }
    return -1;
}

static int tok_int(const char *js, const jsmntok_t *t, int32_t *out)
{
    long v = 0;
    int i, n = t->end - t->start;
    if (t->type != JSMN_PRIMITIVE || n < 1 || n > 10)
        return FOTA_EPROTO;
    for (i = 0; i < n; i++) {
        char c = js[t->start + i];
        if (c < '0' || c > '9')
            return FOTA_EPROTO;
        v = v * 10 + (c - '0');
    }
    if (v > 0x7FFFFFFFL)
        return FOTA_EPROTO;
    *out = (int32_t)v;
    return 0;
}

/* The refusal in a JSON message: "status" 401/403 (any status with
 * any_status) and its "message" string. Returns 1 when noted. */
static int json_refusal(struct fotadev_chan *ch, const char *js, const jsmntok_t *t, int n,
                        int any_status)
{
    int32_t status = 0;
    int st = obj_get(js, t, n, 0, "status"), m = obj_get(js, t, n, 0, "message");

    if (st >= 0 && tok_int(js, &t[st], &status) < 0)
        status = 0;
    if (!any_status && status != 401 && status != 403)
        return 0;
    if (m >= 0 && t[m].type != JSMN_STRING)
        m = -1;
    note_refusal(ch, (int)status, m >= 0 ? js + t[m].start : NULL,
                 m >= 0 ? (size_t)(t[m].end - t[m].start) : 0);
    return 1;
}

static int json_dispatch(struct fotadev_chan *ch, const char *js, size_t len)
{
    jsmn_parser jp;
    jsmntok_t t[CHAN_MAXTOK];
    int n, v, get, act, ver;
    int32_t nonce = -1;

    jsmn_init(&jp);
    n = jsmn_parse(&jp, js, len, t, CHAN_MAXTOK);
    if (n < 1 || t[0].type != JSMN_OBJECT)
        return FOTA_EPROTO;
    if ((v = obj_get(js, t, n, 0, "nonce")) >= 0 && tok_int(js, &t[v], &nonce) < 0)
        return FOTA_EPROTO;
    if ((v = obj_get(js, t, n, 0, "activate_status")) >= 0 && !ch->activated && nonce == ch->active_nonce) {
        if (t[v].end - t[v].start != 1 || js[t[v].start] != '1') {
            json_refusal(ch, js, t, n, 1);
            return FOTADEV_ACT_ACTIVATE_FAILED;
        }
        ch->activated = 1;
        if (send_identify(ch, (uint32_t)nonce * 1103515245u + 12345u) < 0)
            return FOTA_ETOOBIG;
        return FOTADEV_ACT_ACTIVATED;
    }
    if (nonce >= 0 && nonce == ch->ident_nonce && !ch->identified) {
        ch->identified = 1;
        return FOTADEV_ACT_NONE;
    }
    get = obj_get(js, t, n, 0, "get");
    act = obj_get(js, t, n, get, "action");
    if (act >= 0 && tok_is(js, &t[act], "sys_upgrade")) {
        ver = obj_get(js, t, n, get, "version");
        if (ver < 0 || nonce < 0 || t[ver].type != JSMN_STRING || t[ver].end == t[ver].start ||
            t[ver].end - t[ver].start > FOTADEV_VERSION_LEN)
            return FOTA_EPROTO;
        ch->last_nonce = nonce;
        if (QUEUE(ch, RPC_RESPONSE_FRAME, (long)nonce) < 0)
            return FOTA_ETOOBIG;
        memcpy(ch->upgrade_version, js + t[ver].start, (size_t)(t[ver].end - t[ver].start));
        ch->upgrade_version[t[ver].end - t[ver].start] = '\0';
        return FOTADEV_ACT_UPGRADE;
    }
    if (act >= 0 && tok_is(js, &t[act], "sys_reboot"))
        return FOTADEV_ACT_REBOOT;
    if ((v = obj_get(js, t, n, 0, "message")) >= 0 && tok_is(js, &t[v], "ping success"))
        ch->ping_status = 1;
    else if (json_refusal(ch, js, t, n, 0))
        return FOTADEV_ACT_REFUSED;
    else if (obj_get(js, t, n, 0, "method") >= 0 && nonce >= 0)
        return QUEUE(ch, RPC_RESPONSE_FRAME, (long)nonce) < 0 ? FOTA_ETOOBIG : FOTADEV_ACT_NONE;
    return FOTADEV_ACT_NONE;
}

static int json_feed(struct fotadev_chan *ch)
{
    int best = FOTADEV_ACT_NONE, rc;
    char *line = ch->rx, *nl;

    while ((nl = memchr(line, '\n', ch->rx_len - (size_t)(line - ch->rx))) != NULL) {
        rc = json_dispatch(ch, line, (size_t)(nl - line));
        if (rc < 0 || rc > best)       /* keep the weightiest action; errors win */
            best = rc;
        line = nl + 1;
        if (rc < 0)
            break;
    }
    /* an unterminated tail that is one whole object is a message too */
    if (best >= 0 && line < ch->rx + ch->rx_len) {
        size_t tail = ch->rx_len - (size_t)(line - ch->rx);
        if (tail && line[tail - 1] == '}' && (rc = json_dispatch(ch, line, tail)) != FOTA_EPROTO) {
            if (rc < 0 || rc > best)
                best = rc;
            line += tail;
        }
    }
    memmove(ch->rx, line, ch->rx_len - (size_t)(line - ch->rx));
    ch->rx_len -= (size_t)(line - ch->rx);
    ch->rx[ch->rx_len] = '\0';
    return best;
}

int fotadev_chan_feed(struct fotadev_chan *ch, const char *data, size_t len)
{
    int rc;

    if (ch->dialect == FOTADEV_DIALECT_NONOS && len == 1460) {
        /* a full segment: keep it and join the next one before parsing */
        memcpy(ch->rx, data, len);
        ch->rx[len] = '\0';
        ch->rx_len = len;
        return FOTADEV_ACT_NONE;
    }
    if (len > FOTADEV_CHAN_RXMAX - ch->rx_len) {
        ch->rx_len = 0;
        ch->rx[0] = '\0';
        return FOTA_ETOOBIG;
    }
    memcpy(ch->rx + ch->rx_len, data, len);
    ch->rx_len += len;
    ch->rx[ch->rx_len] = '\0';
    if (ch->dialect == FOTADEV_DIALECT_JSON)
        return json_feed(ch);
    if (memchr(ch->rx, '\0', ch->rx_len))
        ch->rx_len = strlen(ch->rx);    /* stock works on C strings */
    rc = nonos_dispatch(ch);
    memset(ch->rx, 0, ch->rx_len + 1);  /* memset(pbuffer, 0) after each message */
    ch->rx_len = 0;
    return rc;
}
