/* http_req.c - request helpers of the API handlers: query and header
 * access, key authentication (401/403 replies), JSON bodies (400/413) and
 * numeric ids from route captures (404). */
#include <event2/buffer.h>
#include <string.h>

#include "http.h"

const char *fota_req_query(const struct fota_req *r, const char *name)
{
    return evhttp_find_header(&((struct fota_req *)r)->query, name);
}

const char *fota_req_header(const struct fota_req *r, const char *name)
{
    return evhttp_find_header(evhttp_request_get_input_headers(r->ev), name);
}

int fota_req_auth(struct fota_req *r, struct fota_key *key)
{
    const char *hdr = fota_req_header(r, "Authorization"), *k;
    size_t len;

    if (!hdr) {
        fota_reply_error(r, 401, "missing Authorization: token KEY");
        return FOTA_EAUTH;
    }
    if (fota_key_from_header(hdr, &k, &len) ||
        fota_server_key_lookup(r->srv, k, len, key)) {
        fota_reply_error(r, 401, "invalid key");
        return FOTA_EAUTH;
    }
    r->dev_id = key->device_id;
    return 0;
}

int fota_req_admin(struct fota_req *r, struct fota_key *key)
{
    if (fota_req_auth(r, key))
        return FOTA_EAUTH;
    if (key->kind != FOTA_KEY_ADMIN) {
        fota_reply_error(r, 403, "this needs the admin key");
        return FOTA_EPERM;
    }
    return 0;
}

json_t *fota_req_json_body(struct fota_req *r)
{
    struct evbuffer *in = evhttp_request_get_input_buffer(r->ev);
    size_t len = evbuffer_get_length(in);
    json_error_t je;
    json_t *j;

    if (len == 0) {
        fota_reply_error(r, 400, "a JSON object body is required");
        return NULL;
    }
    if (len > 65536) {
        fota_reply_error(r, 413, "JSON body larger than 64 KiB");
        return NULL;
    }
    const char *p = (const char *)evbuffer_pullup(in, -1);
    j = json_loadb(p, len, JSON_REJECT_DUPLICATES, &je);
    if (!j) {
        fota_reply_error(r, 400, "malformed JSON at line %d column %d: %s", je.line, je.column,
                         je.text);
        return NULL;
    }
    if (!json_is_object(j)) {
        json_decref(j);
        fota_reply_error(r, 400, "the body must be a JSON object");
        return NULL;
    }
    return j;
}

int64_t fota_req_cap_id(struct fota_req *r, int i)
{
    const char *s = i < r->ncaps ? r->caps[i] : "";
    int64_t v = 0;
    if (!*s || strlen(s) > 18) {
        fota_reply_error(r, 404, "no such id \"%s\"", s);
        return -1;
    }
    for (const char *p = s; *p; p++) {
        if (*p < '0' || *p > '9') {
            fota_reply_error(r, 404, "no such id \"%s\"", s);
            return -1;
        }
        v = v * 10 + (*p - '0');
    }
    if (v <= 0) {
        fota_reply_error(r, 404, "no such id \"%s\"", s);
        return -1;
    }
    return v;
}
