/* version_fuzz.c - libFuzzer target for ROM version strings (version.c):
 * what devices report and admins name releases with, parsed and ordered.
 * The input is up to three versions separated by newlines. Checks, each an
 * abort: a parsed version's facts stay within the grammar (1..8 parts below
 * 10^9, its tag inside the text); the order is reflexive and antisymmetric,
 * unparsable text sorts below every version, and it is transitive among
 * versions of one form (Espressif "vN.N.N" by value, or dotted numbers). */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "version.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define TEXT_MAX 64   /* longer than any version: the length check runs too */

static void fail_at(int line)
{
    fprintf(stderr, "version_fuzz.c:%d: check failed\n", line);
    abort();
}
#define never() fail_at(__LINE__)

/* -1 unparsable, 0 dotted numbers, 1 Espressif form. */
static int form(const char *s)
{
    struct fota_version v;
    if (fota_version_parse(s, &v) != 0)
        return -1;
    if (v.nparts < 1 || v.nparts > FOTA_VERSION_PARTS || strlen(s) > FOTA_VERSION_TEXT_MAX)
        never();
    for (unsigned i = 0; i < v.nparts; i++)
        if (v.parts[i] >= 1000000000u)
            never();
    if (v.tag && (v.tag <= s || v.tag > s + strlen(s) || v.tag[-1] != '-' || !*v.tag))
        never();
    if (v.espressif != (v.prefix != 0) || (v.ptype < -1))
        never();
    return v.espressif;
}

static int sgn(int x)
{
    return (x > 0) - (x < 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char t[3][TEXT_MAX + 1];
    int f[3], n = 0;
    size_t i = 0;

    while (n < 3) {
        size_t k = 0;
        while (i < size && data[i] != '\n') {
            if (k < TEXT_MAX)
                t[n][k++] = data[i] ? (char)data[i] : ' ';
            i++;
        }
        t[n][k] = '\0';
        f[n] = form(t[n]);
        n++;
        if (i >= size)
            break;
        i++;
    }
    for (int a = 0; a < n; a++) {
        if (fota_version_cmp(t[a], t[a]) != 0)
            never();
        for (int b = 0; b < n; b++) {
            int ab = fota_version_cmp(t[a], t[b]), ba = fota_version_cmp(t[b], t[a]);
            if (ab < -1 || ab > 1 || ab != -ba)
                never();
            if ((f[a] < 0) != (f[b] < 0) && ab != (f[a] < 0 ? -1 : 1))
                never();
        }
    }
    if (n == 3 && f[0] == f[1] && f[1] == f[2]) {
        /* a <= b <= c implies a <= c, for every order of the three */
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 3; b++)
                for (int c = 0; c < 3; c++) {
                    int ab = sgn(fota_version_cmp(t[a], t[b]));
                    int bc = sgn(fota_version_cmp(t[b], t[c]));
                    int ac = sgn(fota_version_cmp(t[a], t[c]));
                    if (ab <= 0 && bc <= 0 && ac > 0)
                        never();
                    if (ab == 0 && bc == 0 && ac != 0)
                        never();
                }
    }
    return 0;
}
