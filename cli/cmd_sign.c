/* cmd_sign.c - `fotactl release sign --key PRIVATE.PEM IN OUT`, local (no
 * server): the signature trailer the ESP8266 Arduino core's updater
 * verifies (cli/sign.h), written next to OUT and renamed into place so no
 * half-written file is left. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd.h"
#include "file.h"
#include "fwimg.h"
#include "out.h"
#include "sign.h"

/* Writes len bytes to path ("-": standard output) through a temp file
 * beside it and a rename, so no half-written file is left. Returns 0 or an
 * exit status (reported). */
static int write_out(const char *path, const uint8_t *data, size_t len)
{
    char tmp[4096];
    FILE *f;

    if (strcmp(path, "-") == 0) {
        if (fwrite(data, 1, len, stdout) != len || fflush(stdout) != 0)
            return fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "cannot write to standard output");
        return 0;
    }
    if ((size_t)snprintf(tmp, sizeof(tmp), "%s.tmp%ld", path, (long)getpid()) >= sizeof(tmp))
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "the output path is too long");
    f = fopen(tmp, "wb");
    if (!f)
        return fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "cannot write %s (%s)", path,
                                 strerror(errno));
    if (fwrite(data, 1, len, f) != len || fflush(f) != 0 || fsync(fileno(f)) != 0) {
        fclose(f);
        unlink(tmp);
        return fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "cannot write %s (%s)", path,
                                 strerror(errno));
    }
    if (fclose(f) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        return fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "cannot write %s (%s)", path,
                                 strerror(errno));
    }
    return 0;
}

/* `release sign --key PRIVATE.PEM IN OUT`: OUT = IN || signature ||
 * uint32_le(length), the signature as `openssl dgst -sha256 -sign` makes
 * it (--legacy: core 2.5's form). Local, no server. */
int fota_cli_cmd_release_sign(struct fota_cli_ctx *c)
{
    const char *keyfile = fota_cli_ctx_opt(c, "key"), *in = c->args.pos[0], *outp = c->args.pos[1];
    int legacy = fota_cli_ctx_opt(c, "legacy") != NULL;
    uint8_t *data = NULL, *out = NULL;
    size_t len, out_len;
    EVP_PKEY *key = NULL;
    char err[512];
    int st;

    if (!keyfile)
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "release sign needs --key PRIVATE.PEM");
    st = fota_cli_file_read(in, FOTA_FWIMG_MAX_SIZE, &data, &len);
    if (st != 0)
        return st;
    if (fota_cli_sign_key_load(keyfile, &key, err, sizeof(err)) != 0 ||
        fota_cli_sign(key, legacy ? FOTA_CLI_SIGN_LEGACY : FOTA_CLI_SIGN_STANDARD, data, len,
                      &out, &out_len, err, sizeof(err)) != 0)
        st = fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "%s", err);
    if (st == 0)
        st = write_out(outp, out, out_len);
    if (st == 0 && strcmp(outp, "-") != 0 && !c->json)
        printf("signed %s: %zu bytes + %zu-byte %s signature + 4-byte length = %zu bytes in %s\n",
               in, len, out_len - len - 4, legacy ? "legacy" : "standard", out_len, outp);
    EVP_PKEY_free(key);
    free(data);
    free(out);
    return st;
}
