/* devproto_d4.c - the stock D4 acknowledgement recognised by its exact bytes
 * (no JSON parse, no allocation); everything else is left to
 * fota_devproto_classify, so both paths agree on every line (the differential
 * fuzzer tests/fuzz/devproto_d4_fuzz.c holds them to it). */
#include "devproto.h"

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* A JSON integer without sign at *p ("0" or no leading zero), at most max
 * digits. Advances *p. 0, or -1 if there is none. */
static int json_uint(const char **p, const char *end, int max, int64_t *out)
{
    const char *s = *p;
    int64_t v = 0;
    int n = 0;
    while (s < end && *s >= '0' && *s <= '9' && n <= max) {
        v = v * 10 + (*s - '0');
        s++;
        n++;
    }
    if (n == 0 || n > max || (n > 1 && **p == '0'))
        return -1;
    *p = s;
    *out = v;
    return 0;
}

static int lit(const char **p, const char *end, const char *s, size_t n)
{
    if ((size_t)(end - *p) < n || memcmp(*p, s, n) != 0)
        return -1;
    *p += n;
    return 0;
}

#define LIT(p, end, s) lit(p, end, s, sizeof(s) - 1)

int fota_devproto_d4_parse(const char *line, size_t len, struct fota_devproto_frame *f)
{
    const char *p = line, *end = line + len;
    int64_t status, nonce;
    if (LIT(&p, end, "{\"status\": ") < 0 || json_uint(&p, end, 9, &status) < 0 ||
        LIT(&p, end, ", \"nonce\": ") < 0 || json_uint(&p, end, 18, &nonce) < 0 ||
        LIT(&p, end, ", \"deliver_to_device\": true}") < 0 || p != end)
        return 0;
    memset(f, 0, offsetof(struct fota_devproto_frame, body));
    f->body[0] = '\0';
    f->kind = FOTA_DP_REPLY;
    f->has_nonce = 1;
    f->nonce = nonce;
    f->status = (int)status;
    return 1;
}
