/* addr.h - the one parser of listener addresses (the `bind` setting and the
 * legacy drop-in's -bind): a numeric IPv4 or IPv6 address, IPv6 optionally
 * in brackets ("[::1]"). No name resolution: a listener address is never
 * looked up. */
#ifndef FOTA_ADDR_H
#define FOTA_ADDR_H

#include <stddef.h>
#include <sys/socket.h>

/* Fills *ss (and *len) with text's address and port. 0, or FOTA_EINVAL for
 * anything but a numeric address (host names included). host, if not NULL,
 * gets the address without brackets (for logs; cap bytes). */
int fota_addr_parse(const char *text, int port, struct sockaddr_storage *ss, socklen_t *len,
                    char *host, size_t cap);

#endif
