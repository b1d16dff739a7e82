/* multipart.c - the parser of multipart.h. Delimiters are found with memmem
 * on "\r\n--boundary"; headers are parsed line by line with fixed bounds.
 * The parser never reads past len and never writes outside parts[]. */
#include "multipart.h"

#include <string.h>

#include "fota_err.h"

int fota_multipart_str_eq(struct fota_mp_str s, const char *t)
{
    size_t n = strlen(t);
    return s.ptr && s.len == n && memcmp(s.ptr, t, n) == 0;
}

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c + 32 : c;
}

static int ci_prefix(const char *s, size_t len, const char *pfx)
{
    size_t n = strlen(pfx);
    if (len < n)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (lower((unsigned char)s[i]) != lower((unsigned char)pfx[i]))
            return 0;
    return 1;
}

/* RFC 2046 bchars. */
static int bchar(int c)
{
    return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
           strchr("'()+_,-./:=? ", c) != NULL;
}

int fota_multipart_boundary(const char *ct, char *out, size_t cap)
{
    const char *p;
    size_t n = 0;

    if (!ct || cap < 2)
        return FOTA_EINVAL;
    while (*ct == ' ')
        ct++;
    if (!ci_prefix(ct, strlen(ct), "multipart/form-data"))
        return FOTA_EINVAL;
    p = ct + strlen("multipart/form-data");
    for (;;) {
        while (*p == ' ' || *p == '\t')
            p++;
        if (*p != ';')
            return FOTA_EINVAL;
        p++;
        while (*p == ' ' || *p == '\t')
            p++;
        if (ci_prefix(p, strlen(p), "boundary="))
            break;
        p = strchr(p, ';');
        if (!p)
            return FOTA_EINVAL;
    }
    p += strlen("boundary=");
    if (*p == '"') {
        p++;
        while (*p && *p != '"') {
            if (n + 1 >= cap || n >= FOTA_MP_BOUNDARY_MAX || !bchar((unsigned char)*p))
                return FOTA_EINVAL;
            out[n++] = *p++;
        }
        if (*p != '"')
            return FOTA_EINVAL;
    } else {
        while (*p && *p != ';' && *p != ' ' && *p != '\t') {
            if (n + 1 >= cap || n >= FOTA_MP_BOUNDARY_MAX || !bchar((unsigned char)*p) || *p == ' ')
                return FOTA_EINVAL;
            out[n++] = *p++;
        }
    }
    if (n == 0 || out[n - 1] == ' ')
        return FOTA_EINVAL;
    out[n] = '\0';
    return 0;
}

static const uint8_t *find(const uint8_t *hay, size_t hlen, const char *needle, size_t nlen)
{
    return memmem(hay, hlen, needle, nlen);
}

/* Parses one parameter list of Content-Disposition after "form-data". */
static int parse_disposition(const char *v, size_t len, struct fota_mp_part *part)
{
    size_t i = 0;

    if (!ci_prefix(v, len, "form-data"))
        return FOTA_EPROTO;
    i = strlen("form-data");
    while (i < len) {
        while (i < len && (v[i] == ' ' || v[i] == '\t'))
            i++;
        if (i == len)
            break;
        if (v[i] != ';')
            return FOTA_EPROTO;
        i++;
        while (i < len && (v[i] == ' ' || v[i] == '\t'))
            i++;
        size_t ks = i;
        while (i < len && v[i] != '=' && v[i] != ';' && v[i] != ' ')
            i++;
        size_t klen = i - ks;
        if (i >= len || v[i] != '=')
            return FOTA_EPROTO;
        i++;
        struct fota_mp_str val = { NULL, 0 };
        if (i < len && v[i] == '"') {
            size_t vs = ++i;
            while (i < len && v[i] != '"') {
                if (v[i] == '\\' && i + 1 < len)
                    i++;
                i++;
            }
            if (i >= len)
                return FOTA_EPROTO;
            val.ptr = v + vs;
            val.len = i - vs;
            i++;
        } else {
            size_t vs = i;
            while (i < len && v[i] != ';' && v[i] != ' ' && v[i] != '\t')
                i++;
            val.ptr = v + vs;
            val.len = i - vs;
        }
        if (klen == 4 && ci_prefix(v + ks, klen, "name"))
            part->name = val;
        else if (klen == 8 && ci_prefix(v + ks, klen, "filename"))
            part->filename = val;
        /* Other parameters (filename*, size...) are ignored. */
    }
    return part->name.ptr ? 0 : FOTA_EPROTO;
}

/* Parses the header block [p, end) of one part (lines ending in CRLF, the
 * block ending with an empty line). Returns bytes consumed or an error. */
static long parse_headers(const uint8_t *p, size_t avail, struct fota_mp_part *part)
{
    size_t off = 0;
    int lines = 0, have_cd = 0;

    for (;;) {
        const uint8_t *eol = find(p + off, avail - off, "\r\n", 2);
        if (!eol)
            return FOTA_ETRUNC;
        size_t ll = (size_t)(eol - (p + off));
        if (ll == 0)
            return have_cd ? (long)(off + 2) : FOTA_EPROTO;
        if (ll > FOTA_MP_HEADER_LINE_MAX || ++lines > FOTA_MP_HEADER_LINES_MAX)
            return FOTA_ERANGE;
        const char *line = (const char *)p + off;
        const char *colon = memchr(line, ':', ll);
        if (!colon || colon == line)
            return FOTA_EPROTO;
        size_t nl = (size_t)(colon - line);
        const char *v = colon + 1;
        size_t vl = ll - nl - 1;
        while (vl && (*v == ' ' || *v == '\t')) {
            v++;
            vl--;
        }
        while (vl && (v[vl - 1] == ' ' || v[vl - 1] == '\t'))
            vl--;
        if (nl == 19 && ci_prefix(line, nl, "content-disposition")) {
            if (have_cd)
                return FOTA_EPROTO;
            int r = parse_disposition(v, vl, part);
            if (r)
                return r;
            have_cd = 1;
        } else if (nl == 12 && ci_prefix(line, nl, "content-type")) {
            part->content_type.ptr = v;
            part->content_type.len = vl;
        }
        off += ll + 2;
    }
}

int fota_multipart_parse(const uint8_t *body, size_t len, const char *boundary,
                         struct fota_mp_part *parts, size_t max_parts, size_t *nparts)
{
    char delim[FOTA_MP_BOUNDARY_MAX + 5];
    size_t bl = boundary ? strlen(boundary) : 0, dl, pos;
    const uint8_t *d;

    *nparts = 0;
    if (bl == 0 || bl > FOTA_MP_BOUNDARY_MAX)
        return FOTA_EINVAL;
    /* delim = CRLF "--" boundary; the first one may start the body without CRLF. */
    memcpy(delim, "\r\n--", 4);
    memcpy(delim + 4, boundary, bl);
    dl = bl + 4;
    if (len >= dl - 2 && memcmp(body, delim + 2, dl - 2) == 0) {
        pos = dl - 2;
    } else {
        d = find(body, len, delim, dl);
        if (!d)
            return len < dl ? FOTA_ETRUNC : FOTA_EPROTO;
        pos = (size_t)(d - body) + dl;
    }
    for (;;) {
        /* After a delimiter: "--" closes, else optional padding then CRLF. */
        if (len - pos < 2)
            return FOTA_ETRUNC;
        if (body[pos] == '-' && body[pos + 1] == '-')
            return 0;
        while (pos < len && (body[pos] == ' ' || body[pos] == '\t'))
            pos++;
        if (len - pos < 2)
            return FOTA_ETRUNC;
        if (body[pos] != '\r' || body[pos + 1] != '\n')
            return FOTA_EPROTO;
        pos += 2;
        if (*nparts >= max_parts)
            return FOTA_ERANGE;
        struct fota_mp_part *part = &parts[*nparts];
        memset(part, 0, sizeof(*part));
        long h = parse_headers(body + pos, len - pos, part);
        if (h < 0)
            return (int)h;
        pos += (size_t)h;
        d = find(body + pos, len - pos, delim, dl);
        if (!d)
            return FOTA_ETRUNC;
        part->data = body + pos;
        part->len = (size_t)(d - (body + pos));
        (*nparts)++;
        pos = (size_t)(d - body) + dl;
    }
}
