/* version.c - the version grammar of version.h. The Espressif value formula
 * and suffix come from the Android parser (EspDeviceUpgradeParser.java). */
#include "version.h"

#include <string.h>

#include "fota_err.h"

static int is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int tag_char(char c)
{
    return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '.' ||
           c == '_' || c == '-' || c == '+';
}

int fota_version_parse(const char *s, struct fota_version *out)
{
    const char *p = s;
    size_t len = strlen(s);

    memset(out, 0, sizeof(*out));
    out->ptype = -1;
    if (len == 0 || len > FOTA_VERSION_TEXT_MAX)
        return FOTA_EINVAL;
    if (*p == 'v' || *p == 'V' || *p == 'b') {
        out->espressif = 1;
        out->prefix = *p == 'V' ? 'v' : *p;
        p++;
    }
    for (;;) {
        unsigned digits = 0;
        uint32_t v = 0;
        if (out->nparts == FOTA_VERSION_PARTS)
            return FOTA_EINVAL;
        while (is_digit(*p)) {
            if (++digits > 9)
                return FOTA_EINVAL;
            v = v * 10 + (uint32_t)(*p - '0');
            p++;
        }
        if (digits == 0)
            return FOTA_EINVAL;
        out->parts[out->nparts++] = v;
        if (*p == '.' && is_digit(p[1])) {
            p++;
            continue;
        }
        break;
    }
    /* Type suffix: "t45772(a)" or ".t45772(a)"; the "(x)" part optional. */
    if ((*p == '.' && p[1] == 't' && is_digit(p[2])) || (*p == 't' && is_digit(p[1]))) {
        long pt = 0;
        p += *p == '.' ? 2 : 1;
        for (unsigned d = 0; is_digit(*p); p++) {
            if (++d > 9)
                return FOTA_EINVAL;
            pt = pt * 10 + (*p - '0');
        }
        out->ptype = pt;
        if (*p == '(') {
            if (!((p[1] >= 'a' && p[1] <= 'z') || (p[1] >= 'A' && p[1] <= 'Z')) || p[2] != ')')
                return FOTA_EINVAL;
            out->flag = p[1];
            p += 3;
        }
    }
    if (*p == '-') {
        if (!p[1])
            return FOTA_EINVAL;
        out->tag = p + 1;
        for (const char *q = p + 1; *q; q++)
            if (!tag_char(*q))
                return FOTA_EINVAL;
        p += strlen(p);
    }
    return *p == '\0' ? 0 : FOTA_EINVAL;
}

uint64_t fota_version_value(const struct fota_version *v)
{
    uint64_t n1 = v->nparts > 0 ? v->parts[0] : 0;
    uint64_t n2 = v->nparts > 1 ? v->parts[1] : 0;
    uint64_t n3 = v->nparts > 2 ? v->parts[2] : 0;
    return n1 * 1000000u + n2 * 1000u + n3;
}

static int sgn(int64_t d)
{
    return d < 0 ? -1 : d > 0;
}

int fota_version_cmp(const char *a, const char *b)
{
    struct fota_version va, vb;
    int ea = fota_version_parse(a, &va), eb = fota_version_parse(b, &vb);
    unsigned i = 0;

    if (ea || eb) {
        if (ea && eb)
            return sgn(strcmp(a, b));
        return ea ? -1 : 1;
    }
    if (va.espressif && vb.espressif) {
        uint64_t x = fota_version_value(&va), y = fota_version_value(&vb);
        if (x != y)
            return x < y ? -1 : 1;
        i = 3;
    }
    unsigned n = va.nparts > vb.nparts ? va.nparts : vb.nparts;
    for (; i < n; i++) {
        uint32_t x = i < va.nparts ? va.parts[i] : 0;
        uint32_t y = i < vb.nparts ? vb.parts[i] : 0;
        if (x != y)
            return x < y ? -1 : 1;
    }
    if (!va.tag != !vb.tag)
        return va.tag ? -1 : 1;
    if (va.tag)
        return sgn(strcmp(va.tag, vb.tag));
    return 0;
}
