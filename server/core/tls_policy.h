/* tls_policy.h - the protocol versions and cipher suites fotad's TLS ports
 * accept, set explicitly instead of inherited from the system's OpenSSL
 * configuration. */
#ifndef FOTA_TLS_POLICY_H
#define FOTA_TLS_POLICY_H

#include <openssl/ssl.h>

/* TLS 1.2 cipher suites, strongest first; the server's order wins.
 * ESP8266 SDK stacks (axTLS) speak only TLS 1.2 with AES128-SHA; AES-128-GCM
 * (ECDHE, then RSA key exchange) serves current clients; TLS 1.3 keeps
 * OpenSSL's default suites. */
#define FOTA_TLS12_CIPHERS                                                        \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:"                 \
    "ECDHE-ECDSA-AES256-GCM-SHA384:ECDHE-RSA-AES256-GCM-SHA384:"                 \
    "ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305:"                 \
    "AES128-GCM-SHA256:AES128-SHA"

/* Applies the policy to a server context: minimum TLS 1.2 (1.0 and 1.1
 * refused whatever openssl.cnf says), FOTA_TLS12_CIPHERS with server
 * preference, no renegotiation. The Max Fragment Length extension needs no
 * setting (OpenSSL 3 honours a client's request server-side). 0, or
 * FOTA_ECONFIG if OpenSSL rejects a setting (the error is logged). */
int fota_tls_policy_apply(SSL_CTX *ctx);

#endif
