/* devchan_gone.h - the device channel's side of deletion: its subscription
 * to the hub topic DEVICE_DELETED (hub.h). */
#ifndef FOTA_DEVCHAN_GONE_H
#define FOTA_DEVCHAN_GONE_H

struct fota_devchan;

/* on != 0 subscribes ch; 0 unsubscribes it (module stop). Main loop thread. */
void fota_devchan_gone_hooks(struct fota_devchan *ch, int on);

#endif
