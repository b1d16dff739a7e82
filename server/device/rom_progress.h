/* rom_progress.h - the body of a ROM download, added to the connection's
 * output as a sendfile segment whose progress feeds the device's download
 * record (server/core/dlprogress.h). */
#ifndef FOTA_ROM_PROGRESS_H
#define FOTA_ROM_PROGRESS_H

#include <stdint.h>

struct bufferevent;

/* Called once the body no longer needs the file (sent or dropped), on the
 * loop that owns the connection. */
typedef void (*fota_rom_body_done)(void *arg);

/* Adds bytes [from, from+len) of fd to bev's output (sendfile, as
 * evbuffer_add_file) and, for a device (device_id > 0), starts its download
 * record and counts body bytes as they leave the buffer: state "complete"
 * once all were written to the socket, "aborted" if the connection goes
 * first. Call on the loop that owns bev, after the header is queued.
 * done == NULL: returns 0 when fd is consumed (the output owns it and closes
 * it once sent or dropped). done != NULL: fd is only borrowed (a cached
 * descriptor): it is never closed here, and done(done_arg) runs once the
 * output is finished with it. -1: nothing was added, fd is the caller's and
 * done is not called. */
int fota_rom_add_body(struct bufferevent *bev, int fd, int64_t from, int64_t len, int64_t size,
                      int64_t device_id, const char *file, const char *version,
                      fota_rom_body_done done, void *done_arg);

#endif
