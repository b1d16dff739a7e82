/* logf.h - a printf-style line for a library's log callback (fota_log_cb,
 * common/fota_err.h): the store, the blob store, the disk reserve and the
 * legacy listener format their lines here and hand them to whoever opened
 * them. */
#ifndef FOTA_LOGF_H
#define FOTA_LOGF_H

#include <stdarg.h>

#include "fota_err.h"

/* Formats the line (cut at FOTA_LOGF_MAX - 1 bytes) and calls log(ud,
 * level, line); nothing when log is NULL. */
void fota_logf(fota_log_cb log, void *ud, int level, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* The same with a va_list (for a library's own logf taking its handle). */
void fota_vlogf(fota_log_cb log, void *ud, int level, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

#define FOTA_LOGF_MAX 4608   /* a line with a whole path (PATH_MAX) and its words */

#endif
