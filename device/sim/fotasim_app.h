/* fotasim_app.h - the phone app of the stock protocol (§1), played by
 * fota-sim when it has the admin key: it registers the devices through the
 * REST API (POST /v1/products/ID/devices/), asks for sys_upgrade when a
 * device is on an older version (again after a failure, up to
 * --max-attempts) and for sys_reboot once it reported success, each with
 * the device's master key. Without the admin key it does nothing: the
 * server pushes by itself. */
#ifndef FOTASIM_APP_H
#define FOTASIM_APP_H

#include "fotasim_api.h"
#include "fotasim_fleet.h"

struct fotasim_app {
    struct fotasim *s;
    struct fotasim_api api;
    int have_api;                 /* --key given */
    char *upgrade_to_enc;         /* --upgrade-to, URL-encoded */
    unsigned registered, errors;
    char first_error[160];
};

/* Becomes the fleet's on_event. Returns 0 or FOTA_E*; call
 * fotasim_app_cleanup either way (before the devices are freed). */
int fotasim_app_init(struct fotasim_app *a, struct fotasim *s);
void fotasim_app_cleanup(struct fotasim_app *a);
/* Registers every device; each boots once its key arrives (a device whose
 * registration fails ends with the server's answer as its reason). */
int fotasim_app_register_all(struct fotasim_app *a);

#endif
