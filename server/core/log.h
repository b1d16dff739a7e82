/* log.h - fotad's logger: one line per event on stderr,
 * `2026-11-22T03:00:00.123Z INFO  message key=value ...`.
 * FOTA_LOG checks the level before formatting anything. Thread-safe: each
 * line is formatted in a local buffer and written with one write(2). */
#ifndef FOTA_LOG_H
#define FOTA_LOG_H

#include "fota_err.h"

/* Current threshold (FOTA_LOG_DEBUG..FOTA_LOG_ERROR); read with FOTA_LOG_THRESHOLD()
 * (an atomic load: every loop thread reads it, SIGHUP changes it). */
extern int fota_log_threshold;
#define FOTA_LOG_THRESHOLD() __atomic_load_n(&fota_log_threshold, __ATOMIC_RELAXED)

#define FOTA_LOG(level, ...)                                  \
    do {                                                      \
        if ((level) >= FOTA_LOG_THRESHOLD())                  \
            fota_log_write((level), __VA_ARGS__);             \
    } while (0)

#define FOTA_DEBUG(...) FOTA_LOG(FOTA_LOG_DEBUG, __VA_ARGS__)
#define FOTA_INFO(...)  FOTA_LOG(FOTA_LOG_INFO, __VA_ARGS__)
#define FOTA_WARN(...)  FOTA_LOG(FOTA_LOG_WARN, __VA_ARGS__)
#define FOTA_ERROR(...) FOTA_LOG(FOTA_LOG_ERROR, __VA_ARGS__)

/* Writes one line (printf format; no trailing newline needed). Lines longer
 * than 4 KiB are truncated; control bytes of the message (newline, tab, ESC,
 * DEL ...) are written as '?'. Unconditional: use FOTA_LOG. */
void fota_log_write(int level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Sets the threshold. */
void fota_log_set_level(int level);

/* "debug", "info", "warn", "error" -> level; -1 if unknown. */
int fota_log_level_parse(const char *s);
/* Level -> "debug" ... (never NULL). */
const char *fota_log_level_name(int level);

/* A fota_log_cb for libraries (store, legacy, device): ud may be a
 * const char * module name that is prefixed as `mod=NAME`, or NULL. */
void fota_log_lib_cb(void *ud, int level, const char *msg);

/* Copies s into out (cap bytes) so it can stand as a key=value value:
 * unchanged if it has no space, quote, backslash or control byte, else
 * double-quoted with those escaped. Always NUL-terminates. Returns out. */
const char *fota_log_quote(const char *s, char *out, unsigned cap);

#endif
