/* multipart.h - a pure multipart/form-data parser (RFC 7578 / RFC 2046):
 * bytes in, parts out. No allocation, no I/O: every part is a borrowed slice
 * of the body, valid as long as the body buffer. Bounded: at most max_parts
 * parts, 16 header lines of at most 1 KiB per part, 70-byte boundary. */
#ifndef FOTA_MULTIPART_H
#define FOTA_MULTIPART_H

#include <stddef.h>
#include <stdint.h>

#define FOTA_MP_BOUNDARY_MAX 70
#define FOTA_MP_HEADER_LINE_MAX 1024
#define FOTA_MP_HEADER_LINES_MAX 16

/* A borrowed byte slice; ptr NULL means absent. Not NUL-terminated. */
struct fota_mp_str {
    const char *ptr;
    size_t len;
};

struct fota_mp_part {
    struct fota_mp_str name;          /* form field name (Content-Disposition name=) */
    struct fota_mp_str filename;      /* filename= if present (a file part) */
    struct fota_mp_str content_type;  /* Content-Type header value if present */
    const uint8_t *data;              /* part body */
    size_t len;
};

/* Extracts the boundary from a Content-Type header value such as
 * `multipart/form-data; boundary="abc"`. Writes it NUL-terminated to out
 * (cap >= FOTA_MP_BOUNDARY_MAX + 1). 0, or FOTA_EINVAL (not
 * multipart/form-data, no or bad boundary). */
int fota_multipart_boundary(const char *content_type, char *out, size_t cap);

/* Parses a whole body. Fills parts[0..*nparts). Returns 0, FOTA_ETRUNC (the
 * body ends before the closing delimiter: a truncated upload), FOTA_EPROTO
 * (malformed: no opening delimiter, bad header, part without a
 * Content-Disposition form-data name), FOTA_ERANGE (more than max_parts
 * parts, or a header over the bounds). On error *nparts holds the parts
 * completed so far. */
int fota_multipart_parse(const uint8_t *body, size_t len, const char *boundary,
                         struct fota_mp_part *parts, size_t max_parts, size_t *nparts);

/* 1 if s equals the NUL-terminated text t exactly. */
int fota_multipart_str_eq(struct fota_mp_str s, const char *t);

#endif
