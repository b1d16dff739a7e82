/* addr.c - listener addresses (addr.h). */
#include "addr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <string.h>

#include "fota_err.h"
#include "fota_str.h"

int fota_addr_parse(const char *text, int port, struct sockaddr_storage *ss, socklen_t *len,
                    char *host, size_t cap)
{
    char h[64];
    size_t n = text ? strlen(text) : 0;
    if (n == 0 || n >= sizeof(h))
        return FOTA_EINVAL;
    if (text[0] == '[' && n > 2 && text[n - 1] == ']')
        fota_str_copy_n(h, sizeof(h), text + 1, n - 2);
    else
        fota_str_copy(h, sizeof(h), text);
    memset(ss, 0, sizeof(*ss));
    struct sockaddr_in *s4 = (struct sockaddr_in *)ss;
    struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)ss;
    if (inet_pton(AF_INET, h, &s4->sin_addr) == 1) {
        s4->sin_family = AF_INET;
        s4->sin_port = htons((uint16_t)port);
        *len = sizeof(*s4);
    } else if (inet_pton(AF_INET6, h, &s6->sin6_addr) == 1) {
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons((uint16_t)port);
        *len = sizeof(*s6);
    } else {
        return FOTA_EINVAL;
    }
    if (host)
        fota_str_copy(host, cap, h);
    return 0;
}
