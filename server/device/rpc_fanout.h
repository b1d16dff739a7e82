/* rpc_fanout.h - bulk upgrades (issue 9): POST /v1/products/ID/upgrade pushes
 * sys_upgrade to every device of a product that matches a filter, as a job
 * answered at once (202) whose progress GET /v1/jobs/ID/ shows. The job's
 * command rows are written in one transaction (command_create_many), their
 * state changes in batches (command_update_batch); a window bounds how many
 * devices of a product download at once (the others wait in the job's queue).
 * Lives on the device channel's loop; the channel hands it D4 replies and
 * D7 reports of the devices it owns. Request and reply formats: docs/api.md. */
#ifndef FOTA_RPC_FANOUT_H
#define FOTA_RPC_FANOUT_H

#include <stddef.h>
#include <stdint.h>

struct fota_devchan;
struct fota_fanout;
struct fota_devproto_frame;

#define FOTA_FANOUT_WINDOW_DEFAULT 512    /* devices of one product upgrading at once */
#define FOTA_FANOUT_WINDOW_MAX     100000
#define FOTA_FANOUT_TIMEOUT_DEFAULT 600   /* s: a pushed device must report by then */
#define FOTA_FANOUT_FLUSH_MS       200    /* batched state writes and the window pump */
#define FOTA_FANOUT_JOBS_MAX       64     /* jobs kept (the oldest finished one goes) */
#define FOTA_FANOUT_ROWS_MS        1000   /* pushed members' rows: written by then at the latest */

/* Creates the fan-out of channel ch and adds its routes. NULL on out of
 * memory or when the routes cannot be added (logged). */
struct fota_fanout *fota_fanout_new(struct fota_devchan *ch);
/* Writes pending state and frees every job. NULL-safe. */
void fota_fanout_free(struct fota_fanout *fo);

/* A D4 reply (nonce, status) from device_id. Returns 1 if it answered a
 * job's push (the job counted it; nothing else must), else 0. */
int fota_fanout_on_reply(struct fota_fanout *fo, int64_t device_id, int64_t nonce, int status);

/* A D7 report from device_id (ok: device_upgrade_success). Returns 1 if the
 * device was upgrading in a job: the job marks its command done or failed
 * (batched) and, when the report's cleaned version `clean` is a prefix of the
 * job's version, copies the full version to real (cap bytes). Else 0. */
int fota_fanout_on_report(struct fota_fanout *fo, int64_t device_id, int ok, const char *clean,
                          char *real, size_t cap);

/* device_id was deleted (main loop, from the channel's device_gone hook):
 * each job member of it that has not finished ends as "deleted" (its command
 * row went with the device), freeing its window slot, and no reboot is sent
 * to it. */
void fota_fanout_device_gone(struct fota_fanout *fo, int64_t device_id);

#endif
