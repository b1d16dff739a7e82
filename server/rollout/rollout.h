/* rollout.h - the rollout module: one version pushed to every device of a
 * product that matches a filter, at most `window` devices of the product
 * upgrading at once, with its state (settings, counters, every member) in
 * the store, so it resumes where it stopped when fotad starts again.
 *
 * REST (docs/api.md): POST /v1/rollouts/, GET /v1/rollouts/[?product_id=P],
 * GET /v1/rollouts/ID/, POST /v1/rollouts/ID/cancel,
 * GET /v1/rollouts/ID/devices/[?limit=&cursor=]. It pushes through the
 * device channel's "find and send" (fota_devchan_send) and hears of devices
 * through the hub: DEVICE_ONLINE, DEVICE_REPLY, DEVICE_REPORT,
 * DEVICE_DELETED, and answers DEVICE_BUSY and RELEASE_BUSY. Main loop only. */
#ifndef FOTA_ROLLOUT_H
#define FOTA_ROLLOUT_H

#include "server.h"

#define FOTA_ROLLOUT_WINDOW_DEFAULT  512    /* devices of one product upgrading at once */
#define FOTA_ROLLOUT_WINDOW_MAX      100000
#define FOTA_ROLLOUT_TIMEOUT_DEFAULT 600    /* s: a pushed device must report by then */
#define FOTA_ROLLOUT_FLUSH_MS        200    /* batched writes, timeouts and the window pump */
#define FOTA_ROLLOUT_RUNNING_MAX     64     /* rollouts running at once */
#define FOTA_ROLLOUT_ROWS_MS         1000   /* pushed members' rows: written by then at the latest */
#define FOTA_ROLLOUT_ONLINE_MS       300    /* a member that connects is pushed this long after */
#define FOTA_ROLLOUT_REBOOTS_DEFAULT 1      /* boots in a health time beyond the rollout's reboot */
#define FOTA_ROLLOUT_TAKE_S          3      /* s for another instance to say it pushed a member */
#define FOTA_ROLLOUT_EVENTS_MS       20     /* events of remote members: batched this long */

#endif
