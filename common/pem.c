/* pem.c - the kind of key a PEM text holds, by its markers (pem.h). */
#include "pem.h"

#include <string.h>

static int contains(const char *s, size_t n, const char *needle)
{
    size_t k = strlen(needle);

    for (size_t i = 0; i + k <= n; i++)
        if (memcmp(s + i, needle, k) == 0)
            return 1;
    return 0;
}

enum fota_pem_kind fota_pem_kind(const char *text, size_t len)
{
    if (contains(text, len, "PRIVATE KEY-----"))
        return contains(text, len, "ENCRYPTED") ? FOTA_PEM_ENCRYPTED : FOTA_PEM_PRIVATE;
    if (contains(text, len, "-----BEGIN PUBLIC KEY-----") ||
        contains(text, len, "-----BEGIN RSA PUBLIC KEY-----"))
        return FOTA_PEM_PUBLIC;
    return FOTA_PEM_NONE;
}
