/* cli_sse_fuzz.c - libFuzzer target for cli/sse.c (fotactl's event-stream
 * parser). The first input byte picks a chunk size, the rest is fed in
 * chunks of it. Checks: every event's data is a NUL-terminated string within
 * the limit, names and ids fit their buffers, and the result is the same
 * whatever the chunking (compared with a one-shot parse). */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fota_err.h"
#include "sse.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

struct tally {
    unsigned long n;
    unsigned long sum;   /* a checksum over every event seen */
};

static int on_event(void *ud, const char *event, const char *id, const char *d)
{
    struct tally *t = ud;
    size_t dl = strlen(d), el = strlen(event), il = strlen(id);

    if (dl >= FOTA_CLI_SSE_MAX || el >= FOTA_CLI_SSE_NAME_MAX || il >= FOTA_CLI_SSE_NAME_MAX)
        abort();
    t->n++;
    t->sum = t->sum * 31 + dl * 7 + el * 3 + il;
    for (size_t i = 0; i < dl; i++)
        t->sum = t->sum * 33 + (unsigned char)d[i];
    return t->n >= 64;   /* stop after many events: the stop path gets fuzzed too */
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct fota_cli_sse a, b;
    struct tally ta = { 0, 0 }, tb = { 0, 0 };
    size_t step, i;
    int ra, rb = 0;

    if (size < 1)
        return 0;
    step = (size_t)data[0] % 17 + 1;
    data++;
    size--;
    fota_cli_sse_init(&a, on_event, &ta);
    ra = fota_cli_sse_feed(&a, (const char *)data, size);
    fota_cli_sse_init(&b, on_event, &tb);
    for (i = 0; i < size && rb == 0; i += step)
        rb = fota_cli_sse_feed(&b, (const char *)data + i, size - i < step ? size - i : step);
    if (ra != rb || ta.n != tb.n || ta.sum != tb.sum)
        abort();
    fota_cli_sse_cleanup(&a);
    fota_cli_sse_cleanup(&b);
    return 0;
}
