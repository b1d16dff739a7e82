/* fotasim_report.h - fota-sim's summary at the end of a run, as text or
 * (--json, --json-devices) one JSON object on stdout. */
#ifndef FOTASIM_REPORT_H
#define FOTASIM_REPORT_H

#include "fotasim_app.h"
#include "fotasim_fleet.h"

/* Prints the summary; returns the exit status: 0 when every device is done
 * (on --upgrade-to, or checked in), else 1. */
int fotasim_report_print(const struct fotasim *s, const struct fotasim_app *app);

#endif
