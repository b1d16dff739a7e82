/* devchan_d4.h - a fast path for the stock D4 acknowledgement line
 * ({"status": S, "nonce": N, "deliver_to_device": true}, espressif-protocol
 * §2.3): recognised by exact bytes instead of a JSON parse, so a fan-out's
 * 19,000 acknowledgements cost a few comparisons each. Any other line goes
 * to fota_devproto_classify. Private to server/device. */
#ifndef FOTA_DEVCHAN_D4_H
#define FOTA_DEVCHAN_D4_H

#include <stddef.h>

#include "devproto.h"

/* 1 if line (len bytes, no '\n') is exactly the stock D4 with non-negative
 * JSON integers (status up to 9 digits, nonce up to 18): *f is then what
 * fota_devproto_classify gives for it (kind FOTA_DP_REPLY, has_nonce, nonce,
 * status, no key). Else 0 and *f is untouched. */
int fota_devchan_d4_parse(const char *line, size_t len, struct fota_devproto_frame *f);

#endif
