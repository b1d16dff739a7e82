/* logf.c - a printf-style line for a library's log callback (logf.h). */
#include "logf.h"

#include <stdio.h>

void fota_vlogf(fota_log_cb log, void *ud, int level, const char *fmt, va_list ap)
{
    char line[FOTA_LOGF_MAX];

    if (!log)
        return;
    vsnprintf(line, sizeof line, fmt, ap);
    log(ud, level, line);
}

void fota_logf(fota_log_cb log, void *ud, int level, const char *fmt, ...)
{
    va_list ap;

    va_start(ap, fmt);
    fota_vlogf(log, ud, level, fmt, ap);
    va_end(ap);
}
