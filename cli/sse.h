/* sse.h - a server-sent-events (text/event-stream) parser for fotactl's
 * `messages --follow`: bytes in any chunking, one callback per dispatched
 * event. Pure: no I/O, no printing; its buffers grow up to a fixed maximum
 * and a longer line or event is an error, not growth. */
#ifndef FOTA_CLI_SSE_H
#define FOTA_CLI_SSE_H

#include <stddef.h>

#define FOTA_CLI_SSE_MAX      (256u << 10)  /* one line, and one event's data */
#define FOTA_CLI_SSE_NAME_MAX 64            /* event name and id, incl. NUL */

/* Called per event with its name ("" = default "message"), its last id
 * ("" if none) and its data lines joined by '\n' (NUL-terminated; all
 * borrowed until the callback returns). Return 0 to go on, 1 to stop. */
typedef int (*fota_cli_sse_cb)(void *ud, const char *event, const char *id, const char *data);

/* Parser state in caller storage; the fields are private. */
struct fota_cli_sse {
    fota_cli_sse_cb cb;
    void *ud;
    char *line;                       /* the line being received (malloc'ed) */
    size_t line_len, line_cap;
    char *data;                       /* the event's data so far (malloc'ed) */
    size_t data_len, data_cap;
    int has_data;                     /* a data field was seen (even an empty one) */
    char event[FOTA_CLI_SSE_NAME_MAX];
    char id[FOTA_CLI_SSE_NAME_MAX];
    int skip_lf;                      /* the last byte was a CR: a following LF belongs to it */
    int err;                          /* sticky result once stopped or failed */
};

void fota_cli_sse_init(struct fota_cli_sse *s, fota_cli_sse_cb cb, void *ud);

/* Feeds len bytes. Lines end with LF, CR or CRLF (also split across calls);
 * a blank line dispatches the event if it had data; ":" lines are comments;
 * "event", "data" and "id" fields are kept, others ignored. Returns 0, 1
 * when the callback asked to stop (later calls return 1 and do nothing),
 * FOTA_ETOOBIG for a line or event over FOTA_CLI_SSE_MAX, FOTA_ENOMEM. */
int fota_cli_sse_feed(struct fota_cli_sse *s, const char *buf, size_t len);

/* Frees the buffers; s may be fed again only after fota_cli_sse_init. */
void fota_cli_sse_cleanup(struct fota_cli_sse *s);

#endif
