/* log.c - stderr logger with ISO-8601 UTC millisecond timestamps and level
 * names padded to five characters, so lines align and parse with one regex. */
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "clock.h"
#include "fota_str.h"

/* The process-wide threshold (atomic: SIGHUP sets it, every thread reads it). */
int fota_log_threshold = FOTA_LOG_INFO;

static const char *const level_tag[] = { "DEBUG", "INFO ", "WARN ", "ERROR" };
static const char *const level_names[] = { "debug", "info", "warn", "error" };

void fota_log_set_level(int level)
{
    if (level < FOTA_LOG_DEBUG)
        level = FOTA_LOG_DEBUG;
    if (level > FOTA_LOG_ERROR)
        level = FOTA_LOG_ERROR;
    __atomic_store_n(&fota_log_threshold, level, __ATOMIC_RELAXED);
}

int fota_log_level_parse(const char *s)
{
    for (int i = 0; i < 4; i++)
        if (strcmp(s, level_names[i]) == 0)
            return i;
    if (strcmp(s, "warning") == 0)
        return FOTA_LOG_WARN;
    return -1;
}

const char *fota_log_level_name(int level)
{
    if (level < 0 || level > 3)
        return "info";
    return level_names[level];
}

void fota_log_write(int level, const char *fmt, ...)
{
    char line[4096];
    struct tm tm;
    size_t n;
    int r;

    if (level < 0 || level > 3)
        level = FOTA_LOG_ERROR;
    int64_t ms = fota_clock_wall_ms();
    time_t sec = (time_t)(ms / 1000);
    gmtime_r(&sec, &tm);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &tm);
    r = snprintf(line + n, sizeof(line) - n, ".%03dZ %s ", (int)(ms % 1000), level_tag[level]);
    if (r > 0)
        n += (size_t)r;
    va_list ap;
    va_start(ap, fmt);
    r = vsnprintf(line + n, sizeof(line) - n - 1, fmt, ap);
    va_end(ap);
    if (r < 0)
        r = 0;
    size_t msg = n;
    n += (size_t)r;
    if (n > sizeof(line) - 2)
        n = sizeof(line) - 2;
    /* One event, one line: a control byte that reached the message unquoted
     * (a name, a topic) cannot end the line, forge another or drive a terminal. */
    for (size_t i = msg; i < n; i++)
        if ((unsigned char)line[i] < ' ' || line[i] == 0x7f)
            line[i] = '?';
    line[n++] = '\n';
    /* One write per line: concurrent threads do not interleave. */
    size_t off = 0;
    while (off < n) {
        ssize_t w = write(2, line + off, n - off);
        if (w <= 0)
            break;
        off += (size_t)w;
    }
}

void fota_log_lib_cb(void *ud, int level, const char *msg)
{
    if (level < FOTA_LOG_THRESHOLD())
        return;
    if (ud)
        fota_log_write(level, "%s mod=%s", msg, (const char *)ud);
    else
        fota_log_write(level, "%s", msg);
}

const char *fota_log_quote(const char *s, char *out, unsigned cap)
{
    unsigned o = 0;
    int plain = s[0] != '\0';

    if (cap == 0)
        return out;
    for (const char *p = s; *p; p++) {
        unsigned char c = (unsigned char)*p;
        if (c <= ' ' || c == '"' || c == '\\' || c == '=' || c == 0x7f)
            plain = 0;
    }
    if (plain) {
        fota_str_copy(out, cap, s);
        return out;
    }
    if (o + 1 < cap)
        out[o++] = '"';
    for (const char *p = s; *p && o + 3 < cap; p++) {
        unsigned char c = (unsigned char)*p;
        if (c == '"' || c == '\\') {
            out[o++] = '\\';
            out[o++] = (char)c;
        } else if (c < ' ' || c == 0x7f) {
            out[o++] = '?';
        } else {
            out[o++] = (char)c;
        }
    }
    if (o + 1 < cap)
        out[o++] = '"';
    out[o] = '\0';
    return out;
}
