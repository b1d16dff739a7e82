/* devproto.c - device channel wire protocol, sans I/O (see devproto.h).
 *
 * Parsing uses jansson (a real JSON parser: stock frames have irregular
 * whitespace); replies are fixed shapes printed with snprintf so their bytes
 * are exactly what §2.4 asks for; pushes are jansson dumps with sorted keys
 * and the default (json.dumps) separators. */
#include "devproto.h"

#include <ctype.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>

#include "fota_str.h"

int fota_devproto_line(const char *buf, size_t len, size_t *line_len, size_t *consumed)
{
    size_t scan = len < FOTA_DEVPROTO_LINE_MAX + 1 ? len : FOTA_DEVPROTO_LINE_MAX + 1;
    const char *nl = memchr(buf, '\n', scan);
    if (!nl)
        return len > FOTA_DEVPROTO_LINE_MAX ? FOTA_ETOOBIG : 0;
    size_t n = (size_t)(nl - buf);
    *consumed = n + 1;
    if (n > 0 && buf[n - 1] == '\r')
        n--;
    *line_len = n;
    return 1;
}

/* A text field: the whole UTF-8 characters of src (NULL is "") that fit:
 * a value cut to its field, or raw bytes of a broken line, never leave
 * half a character, so every view of the field can encode it. */
static void set_text(char *dst, size_t cap, const char *src)
{
    fota_str_copy_utf8(dst, cap, src, src ? strlen(src) : 0);
}

static const char *obj_str(json_t *o, const char *k)
{
    return json_string_value(json_object_get(o, k));
}

/* "token K" or "Token K" (any case of the word) -> K. */
static void parse_auth(json_t *root, char *key, size_t cap)
{
    const char *a = obj_str(json_object_get(root, "meta"), "Authorization");
    if (!a)
        a = obj_str(json_object_get(root, "meta"), "authorization");
    if (a && strncasecmp(a, "token ", 6) == 0) {
        a += 6;
        while (*a == ' ')
            a++;
        set_text(key, cap, a);
    }
}

static int path_is(const char *p, const char *want)
{
    size_t n = strlen(want);
    /* want ends in '/'; the trailing slash is optional on the wire. */
    return strcmp(p, want) == 0 || (strncmp(p, want, n - 1) == 0 && p[n - 1] == '\0');
}

/* "/v1/datastreams/<name>/datapoint/" -> name */
static int path_datastream(const char *p, char *name, size_t cap)
{
    static const char pre[] = "/v1/datastreams/";
    if (strncmp(p, pre, sizeof pre - 1) != 0)
        return 0;
    const char *s = p + sizeof pre - 1;
    const char *e = strchr(s, '/');
    if (!e || e == s || !path_is(e, "/datapoint/"))
        return 0;
    fota_str_copy_utf8(name, cap, s, (size_t)(e - s));
    return 1;
}

/* Copies the text after needle up to the next '"' (bounded by the line). */
static int scan_after(const char *line, size_t len, const char *needle, char *out, size_t cap,
                      int to_end)
{
    const char *p = memmem(line, len, needle, strlen(needle));
    if (!p)
        return 0;
    p += strlen(needle);
    const char *end = line + len;
    const char *q = to_end ? end : memchr(p, '"', (size_t)(end - p));
    if (!q)
        q = end;
    fota_str_copy_utf8(out, cap, p, (size_t)(q - p));
    return 1;
}

/* A datapoint's body as it is stored: only the body (the frame also carries
 * the device's master key), sorted keys; "{}" when absent or too long. */
static void body_text(json_t *body, char *out, size_t cap)
{
    char *text = json_is_object(body) ? json_dumps(body, JSON_SORT_KEYS) : NULL;
    if (!text || fota_str_copy(out, cap, text) >= cap)
        fota_str_copy(out, cap, "{}");
    free(text);
}

/* D7 whose JSON a short version's junk broke: the exact UPGRADE_FRAME bytes. */
static void classify_raw_message(const char *line, size_t len, struct fota_devproto_frame *f)
{
    static const char path[] = "\"path\": \"/v1/messages/\"";
    if (!memmem(line, len, path, sizeof path - 1))
        return;
    if (!scan_after(line, len, "\"action\":\"", f->action, sizeof f->action, 0))
        return;
    if (!scan_after(line, len, "\"Authorization\": \"token ", f->key, sizeof f->key, 0))
        scan_after(line, len, "\"Authorization\": \"Token ", f->key, sizeof f->key, 0);
    scan_after(line, len, "\"pre_rom_version\":\"", f->pre_version, sizeof f->pre_version, 0);
    /* The junk may hold '"': keep everything, version_clean cuts it. */
    scan_after(line, len, "\",\"rom_version\":\"", f->rom_version, sizeof f->rom_version, 1);
    f->kind = FOTA_DP_MESSAGE;
    f->recovered = 1;
}

void fota_devproto_classify(const char *line, size_t len, struct fota_devproto_frame *out)
{
    memset(out, 0, sizeof *out);
    json_error_t jerr;
    json_t *root = json_loadb(line, len, 0, &jerr);
    if (!root || !json_is_object(root)) {
        json_decref(root);
        classify_raw_message(line, len, out);
        return;
    }
    json_t *nonce = json_object_get(root, "nonce");
    if (json_is_integer(nonce)) {
        out->has_nonce = 1;
        out->nonce = json_integer_value(nonce);
    }
    parse_auth(root, out->key, sizeof out->key);
    const char *path = obj_str(root, "path");
    json_t *body = json_object_get(root, "body");
    out->kind = FOTA_DP_UNKNOWN;
    if (!path) {
        json_t *st = json_object_get(root, "status");
        if (json_is_integer(st) && out->has_nonce) {
            out->kind = FOTA_DP_REPLY;
            out->status = (int)json_integer_value(st);
        }
    } else if (path_is(path, "/v1/device/activate/")) {
        out->kind = FOTA_DP_ACTIVATE;
        set_text(out->token, sizeof out->token, obj_str(body, "token"));
        set_text(out->bssid, sizeof out->bssid, obj_str(body, "bssid"));
        for (char *c = out->bssid; *c; c++)
            *c = (char)tolower((unsigned char)*c);
        set_text(out->rom_version, sizeof out->rom_version, obj_str(body, "rom_version"));
    } else if (path_is(path, "/v1/device/identify/")) {
        out->kind = FOTA_DP_IDENTIFY;
    } else if (path_is(path, "/v1/ping/")) {
        out->kind = FOTA_DP_PING;
    } else if (path_is(path, "/v1/device/timers/")) {
        out->kind = FOTA_DP_TIMERS;
    } else if (path_is(path, "/v1/messages/")) {
        out->kind = FOTA_DP_MESSAGE;
        set_text(out->action, sizeof out->action, obj_str(json_object_get(root, "get"), "action"));
        set_text(out->pre_version, sizeof out->pre_version, obj_str(body, "pre_rom_version"));
        set_text(out->rom_version, sizeof out->rom_version, obj_str(body, "rom_version"));
    } else if (path_datastream(path, out->stream, sizeof out->stream)) {
        out->kind = FOTA_DP_DATAPOINT;
        body_text(body, out->body, sizeof out->body);
    }
    if (out->kind == FOTA_DP_REPLY)
        out->reply = root; /* decoded once: the command's result and the RPC's answer */
    else
        json_decref(root);
}

void fota_devproto_frame_cleanup(struct fota_devproto_frame *f)
{
    json_decref(f->reply);
    f->reply = NULL;
}

json_t *fota_devproto_reply_value(const struct fota_devproto_frame *f)
{
    if (f->kind != FOTA_DP_REPLY)
        return NULL;
    if (f->reply)
        return json_incref(f->reply);
    json_t *v = json_object();
    json_object_set_new_nocheck(v, "deliver_to_device", json_true());
    json_object_set_new_nocheck(v, "nonce", json_integer(f->nonce));
    json_object_set_new_nocheck(v, "status", json_integer(f->status));
    return v;
}

static int finish(int n, size_t cap)
{
    if (n < 0 || (size_t)n >= cap)
        return FOTA_ETOOBIG;
    return n;
}

int fota_devproto_reply_activate(char *buf, size_t cap, int64_t nonce, int64_t device_id,
                                 const char *rom_version)
{
    (void)rom_version; /* device text is never echoed: it could hold dispatch triggers */
    return finish(snprintf(buf, cap,
                           "{\"activate_status\": 1, \"device\": {\"id\": %" PRId64 "}, "
                           "\"message\": \"device activated\", \"nonce\": %" PRId64
                           ", \"status\": 200}\n",
                           device_id, nonce), cap);
}

int fota_devproto_reply_activate_refused(char *buf, size_t cap, int64_t nonce)
{
    return finish(snprintf(buf, cap,
                           "{\"activate_status\": 0, \"message\": \"activation refused\", "
                           "\"nonce\": %" PRId64 ", \"status\": 403}\n", nonce), cap);
}

int fota_devproto_reply_identify(char *buf, size_t cap, int has_nonce, int64_t nonce,
                                 int64_t device_id, const char *rom_version)
{
    (void)rom_version;
    if (!has_nonce)
        return finish(snprintf(buf, cap,
                               "{\"device\": {\"id\": %" PRId64 "}, \"message\": "
                               "\"device identified\", \"status\": 200}\n", device_id), cap);
    return finish(snprintf(buf, cap,
                           "{\"device\": {\"id\": %" PRId64 "}, \"message\": \"device identified\", "
                           "\"nonce\": %" PRId64 ", \"status\": 200}\n", device_id, nonce), cap);
}

int fota_devproto_reply_ping(char *buf, size_t cap)
{
    return finish(snprintf(buf, cap, "{\"message\": \"ping success\", \"status\": 200}\n"), cap);
}

int fota_devproto_reply_message(char *buf, size_t cap)
{
    return finish(snprintf(buf, cap, "{\"message\": \"send message success\", \"status\": 200}\n"),
                  cap);
}

int fota_devproto_reply_timers(char *buf, size_t cap, int64_t now)
{
    return finish(snprintf(buf, cap, "{\"status\": 200, \"timestamp\": %" PRId64
                           ", \"timers\": \"\"}\n", now), cap);
}

int fota_devproto_reply_datapoint(char *buf, size_t cap, int has_nonce, int64_t nonce)
{
    if (!has_nonce)
        return finish(snprintf(buf, cap, "{\"status\": 200}\n"), cap);
    return finish(snprintf(buf, cap, "{\"nonce\": %" PRId64 ", \"status\": 200}\n", nonce), cap);
}

int fota_devproto_reply_refusal(char *buf, size_t cap, int status, const char *why)
{
    if (!why || strpbrk(why, "\"\\\n") || strstr(why, "device"))
        return FOTA_EINVAL;
    return finish(snprintf(buf, cap, "{\"message\": \"%s\", \"status\": %d}\n", why, status), cap);
}

int fota_devproto_version_pad(char *out, size_t cap, const char *version)
{
    size_t n = strlen(version);
    size_t want = n < FOTA_DEVPROTO_VCOPY ? FOTA_DEVPROTO_VCOPY : n;
    if (want >= cap)
        return FOTA_ETOOBIG;
    memcpy(out, version, n);
    memset(out + n, FOTA_DEVPROTO_VPAD, want - n);
    out[want] = '\0';
    return (int)want;
}

static int version_char(unsigned char c)
{
    return isalnum(c) || c == '.' || c == '_' || c == '-' || c == '(' || c == ')' ||
           c == FOTA_DEVPROTO_VPAD;
}

size_t fota_devproto_version_clean(char *out, size_t cap, const char *raw, size_t rawlen)
{
    size_t n = 0;
    while (n < rawlen && raw[n] && version_char((unsigned char)raw[n]))
        n++;
    while (n > 0 && raw[n - 1] == FOTA_DEVPROTO_VPAD)
        n--;
    if (cap == 0)
        return 0;
    if (n >= cap)
        n = cap - 1;
    memcpy(out, raw, n);
    out[n] = '\0';
    return n;
}

int64_t fota_devproto_nonce(uint32_t random_bits)
{
    int64_t n = (int64_t)(random_bits & 0x7FFFFFFFu);
    return n ? n : 1;
}

int fota_devproto_push(char *buf, size_t cap, const char *method, const char *path,
                       const json_t *get_in, const json_t *body, const char *auth, int64_t nonce)
{
    int rc = FOTA_EINVAL;
    json_t *root = NULL, *get = NULL;
    char *text = NULL;
    if (!method || !path || nonce <= 0 || nonce > 0x7FFFFFFF)
        return FOTA_EINVAL;
    if ((get_in && !json_is_object(get_in)) || (body && !json_is_object(body)))
        return FOTA_EINVAL;
    /* The caller's object stays as it is: a padded version goes into a copy. */
    get = get_in ? json_incref((json_t *)get_in) : NULL;
    const char *action = obj_str(get, "action");
    const char *version = obj_str(get, "version");
    if (action && version && strcmp(action, "sys_upgrade") == 0) {
        char padded[FOTA_DEVPROTO_VER_MAX];
        if (fota_devproto_version_pad(padded, sizeof padded, version) < 0)
            goto out;
        json_t *copy = json_copy(get);
        json_decref(get);
        get = copy;
        json_object_set_new(get, "version", json_string(padded));
    }
    char meta[8 + FOTA_DEVPROTO_KEY_MAX];
    snprintf(meta, sizeof meta, "token %s", auth ? auth : "");
    root = json_object();
    if (!root)
        goto out;
    if (body)
        json_object_set(root, "body", (json_t *)body);
    json_object_set_new(root, "deliver_to_device", json_true());
    if (get)
        json_object_set(root, "get", get);
    json_object_set_new(root, "meta", json_pack("{s:s}", "Authorization", meta));
    json_object_set_new(root, "method", json_string(method));
    json_object_set_new(root, "nonce", json_integer(nonce));
    json_object_set_new(root, "path", json_string(path));
    /* No JSON_COMPACT: jansson then separates with ", " and ": " (json.dumps). */
    text = json_dumps(root, JSON_SORT_KEYS);
    if (!text) {
        rc = FOTA_ENOMEM;
        goto out;
    }
    size_t n = strlen(text);
    if (n + 1 >= FOTA_DEVPROTO_PUSH_MAX || n + 2 > cap) {
        rc = FOTA_ETOOBIG;
        goto out;
    }
    memcpy(buf, text, n);
    buf[n] = '\n';
    buf[n + 1] = '\0';
    rc = (int)(n + 1);
out:
    free(text);
    json_decref(root);
    json_decref(get);
    return rc;
}

int fota_devproto_push_rpc(char *buf, size_t cap, const char *action, const char *version,
                           const char *auth, int64_t nonce)
{
    if (!action)
        return FOTA_EINVAL;
    json_t *get = version ? json_pack("{s:s, s:s}", "action", action, "version", version)
                          : json_pack("{s:s}", "action", action);
    if (!get)
        return FOTA_EINVAL;
    int rc = fota_devproto_push(buf, cap, "GET", "/v1/device/rpc/", get, NULL, auth, nonce);
    json_decref(get);
    return rc;
}
