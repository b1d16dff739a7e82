/* tls_policy.c - explicit TLS versions and cipher suites for every TLS
 * listener (HTTPS and the device channel share one SSL_CTX). */
#include "tls_policy.h"

#include <openssl/err.h>

#include "fota_err.h"
#include "log.h"

int fota_tls_policy_apply(SSL_CTX *ctx)
{
    if (SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION) != 1 ||
        SSL_CTX_set_cipher_list(ctx, FOTA_TLS12_CIPHERS) != 1) {
        char e[256];
        ERR_error_string_n(ERR_get_error(), e, sizeof(e));
        FOTA_ERROR("cannot apply the TLS policy error=\"%s\"", e);
        return FOTA_ECONFIG;
    }
    SSL_CTX_set_options(ctx, SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_NO_RENEGOTIATION |
                             SSL_OP_NO_COMPRESSION);
    return 0;
}
