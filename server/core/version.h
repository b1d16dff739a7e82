/* version.h - ROM version strings: parse and compare (pure, no allocation).
 *
 * Espressif form (espressif-protocol §2.2): [v|b]N1.N2.N3 then an optional
 * type suffix "tPTYPE(f)" or ".tPTYPE(f)", e.g. "v1.0.5t45772(a)" or "v1.1";
 * its value is N1*10^6 + N2*10^3 + N3 and the suffix is ignored. Otherwise
 * dotted numbers ("1.0.4", "123331"), compared component by component,
 * optionally followed by a "-tag" (pre-release: sorts before the bare
 * version). */
#ifndef FOTA_VERSION_H
#define FOTA_VERSION_H

#include <stdint.h>

#define FOTA_VERSION_PARTS 8
#define FOTA_VERSION_TEXT_MAX 31   /* longest accepted version string */

struct fota_version {
    int      espressif;                   /* 1 if it had the v/b prefix */
    char     prefix;                      /* 'v', 'b' or 0 */
    unsigned nparts;                      /* 1..FOTA_VERSION_PARTS */
    uint32_t parts[FOTA_VERSION_PARTS];   /* each < 10^9 */
    long     ptype;                       /* tPTYPE value, -1 if none */
    char     flag;                        /* letter in "(a)", 0 if none */
    const char *tag;                      /* borrowed: text after '-', NULL if none */
};

/* 0 and *out filled, or FOTA_EINVAL (empty, too long, bad characters, a
 * component over 9 digits, more than 8 components, junk after the suffix). */
int fota_version_parse(const char *s, struct fota_version *out);

/* Espressif value N1*10^6 + N2*10^3 + N3 (missing parts are 0). */
uint64_t fota_version_value(const struct fota_version *v);

/* Orders two version strings: <0, 0, >0. Both Espressif form: by value, then
 * further parts. Otherwise component by component (missing = 0), then a
 * pre-release tag sorts first. Unparsable strings sort below every valid
 * one and among themselves by strcmp. */
int fota_version_cmp(const char *a, const char *b);

#endif
