/* devchan_requeue.h - a sys_upgrade written to a device connection that
 * closes before the device's D4 reply goes back to the queue, once, unless
 * the device has started downloading since (docs/protocol.md, "Commands
 * whose connection drops"). Main loop only. */
#ifndef FOTA_DEVCHAN_REQUEUE_H
#define FOTA_DEVCHAN_REQUEUE_H

struct fota_dconn;
struct fota_command;

/* cmd was just written to c (fota_devchan_push_cmd): remembers an
 * unacknowledged sys_upgrade for c's close. Other commands are ignored. */
void fota_devchan_requeue_note(struct fota_dconn *c, const struct fota_command *cmd);

/* c is being freed: if the sys_upgrade noted on it is still DELIVERED (no
 * D4 reply), the device has not started a download since, and it was not
 * requeued before, the command goes back to QUEUED (result says why), a
 * waiting RPC is answered 202 at once, and a newer connection of the device
 * gets it on its next delivery pass. */
void fota_devchan_requeue_on_close(struct fota_dconn *c);

#endif
