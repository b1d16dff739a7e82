/* devchan_gone.h - the device channel's side of deletion: installs the
 * server's device_gone and release_busy hooks (server.h) for channel ch. */
#ifndef FOTA_DEVCHAN_GONE_H
#define FOTA_DEVCHAN_GONE_H

struct fota_devchan;

/* on != 0 installs both hooks with ch as their ud; 0 removes them if they
 * are still ch's (module stop). Main loop thread. */
void fota_devchan_gone_hooks(struct fota_devchan *ch, int on);

#endif
