/* cmd_release.c - `fotactl release publish|list|current|show|download|delete`. publish checks every image with the codec's release rules before a
 * byte is sent, so a CI job learns about a wrong-slot or truncated build
 * locally, with the same reason the server would give; for an arduino
 * product it uploads firmware.bin (and firmware-minimal.bin), signed on the
 * way with --sign-key (`release sign` is cmd_sign.c). */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/pem.h>

#include "arduino.h"
#include "arduino_img.h"
#include "cmd.h"
#include "fota_str.h"
#include "file.h"
#include "fwimg.h"
#include "out.h"
#include "sha256.h"
#include "sign.h"

#define CHANGELOG_MAX 8191

struct local_file {
    const char *path;
    char name[64];      /* the name the server sees */
    uint8_t *data;
    size_t len;
};

/* The slot a file's base name names: 1 for "user1.bin" or
 * "app.user1.4096.new.6.bin", 2 likewise, 0 when it names neither or both. */
static int named_slot(const char *path)
{
    const char *base = strrchr(path, '/');
    int u1, u2;

    base = base ? base + 1 : path;
    u1 = strstr(base, "user1") != NULL;
    u2 = strstr(base, "user2") != NULL;
    return u1 == u2 ? 0 : (u1 ? 1 : 2);
}

/* The names files are uploaded under: user1.bin/user2.bin for files whose
 * base name says so; then the first two files that say nothing take the
 * slot names still free, in order (the synopsis is USER1.BIN USER2.BIN);
 * every other file keeps its base name. The slot byte inside the image is
 * NOT used to pick a name: a user2 image given as user1 must be refused,
 * not silently fixed. */
static void upload_names(struct local_file *f, size_t n)
{
    int taken[3] = { 0, 0, 0 };
    size_t i;

    for (i = 0; i < n; i++) {
        int s = named_slot(f[i].path);

        f[i].name[0] = '\0';
        if (s && !taken[s]) {
            snprintf(f[i].name, sizeof(f[i].name), "user%d.bin", s);
            taken[s] = 1;
        }
    }
    for (i = 0; i < n; i++) {
        const char *base = strrchr(f[i].path, '/');

        if (f[i].name[0])
            continue;
        if (i < 2 && !named_slot(f[i].path) && (!taken[1] || !taken[2])) {
            int s = taken[1] ? 2 : 1;

            snprintf(f[i].name, sizeof(f[i].name), "user%d.bin", s);
            taken[s] = 1;
            continue;
        }
        fota_str_copy(f[i].name, sizeof(f[i].name), base ? base + 1 : f[i].path);
    }
}

/* "; big1.bin was sent as user1.bin" for every renamed file, so a refusal
 * that names user1.bin can be traced to the file given. */
static const char *renames(const struct local_file *f, size_t n, char *buf, size_t cap)
{
    size_t i, o = 0;

    buf[0] = '\0';
    for (i = 0; i < n; i++) {
        const char *base = strrchr(f[i].path, '/');
        int k;

        base = base ? base + 1 : f[i].path;
        if (strcmp(base, f[i].name) == 0)
            continue;
        k = snprintf(buf + o, cap - o, "%s%s is %s", o ? ", " : "; ", f[i].path, f[i].name);
        if (k < 0 || (size_t)k >= cap - o)
            break;
        o += (size_t)k;
    }
    return buf;
}

/* What publish needs to know about the product. */
struct product_facts {
    int map;              /* size map code, -1 when the server does not say */
    uint32_t flags;       /* FOTA_RELEASE_F_* of its slot check */
    int arduino;          /* platform "arduino" */
    int gzip;             /* arduino: serves the gzip container */
    int legacy;           /* arduino: core line 2.5 (the legacy signature form) */
    EVP_PKEY *signing;    /* arduino: the public key its devices verify with, or NULL */
};

/* The public key of a PEM text, or NULL. */
static EVP_PKEY *public_key(const json_t *pem)
{
    BIO *b;
    EVP_PKEY *k;

    if (!json_is_string(pem))
        return NULL;
    b = BIO_new_mem_buf(json_string_value(pem), (int)json_string_length(pem));
    k = b ? PEM_read_bio_PUBKEY(b, NULL, NULL, NULL) : NULL;
    BIO_free(b);
    return k;
}

/* GET the product into *pf (EVP_PKEY_free pf->signing). Returns 0 or an
 * exit status (reported). */
static int product_facts(struct fota_cli_ctx *c, int64_t pid, const char *ref,
                         struct product_facts *pf)
{
    struct fota_cli_reply r;
    char path[64], what[128];
    json_t *p, *m, *sc, *core;
    int st;

    memset(pf, 0, sizeof(*pf));
    pf->map = -1;
    snprintf(path, sizeof(path), "/v1/products/%" PRId64 "/", pid);
    snprintf(what, sizeof(what), "product '%s'", ref);
    st = fota_cli_ctx_call(c, "GET", path, NULL, &r, what);
    if (st != 0)
        return st;
    p = fota_cli_reply_object(r.json, "product");
    m = json_object_get(p, "flash_map");
    if (json_is_integer(m))
        pf->map = (int)json_integer_value(m);
    /* the server checks with the product's slot_check: check the same way here */
    sc = json_object_get(p, "slot_check");
    if (json_is_string(sc) && strcmp(json_string_value(sc), "name") == 0)
        pf->flags = FOTA_RELEASE_F_SLOT_BY_NAME;
    pf->arduino = json_is_string(json_object_get(p, "platform")) &&
                  strcmp(json_string_value(json_object_get(p, "platform")), "arduino") == 0;
    pf->gzip = json_is_true(json_object_get(p, "gzip"));
    core = json_object_get(p, "arduino_core");
    pf->legacy = json_is_string(core) && strncmp(json_string_value(core), "2.5", 3) == 0;
    pf->signing = public_key(json_object_get(p, "signing_key"));
    fota_cli_reply_cleanup(&r);
    return 0;
}

static int read_changelog(const char *arg, char **out)
{
    uint8_t *data;
    size_t len;
    int st;

    if (arg[0] != '@') {
        *out = strdup(arg);
        return *out ? 0 : fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "out of memory");
    }
    st = fota_cli_file_read(arg + 1, CHANGELOG_MAX, &data, &len);
    if (st != 0)
        return st;
    if (memchr(data, 0, len)) {
        free(data);
        return fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "%s is not a text file", arg + 1);
    }
    *out = (char *)data;
    return 0;
}

static int set_current(struct fota_cli_ctx *c, int64_t pid, const char *version,
                       struct fota_cli_reply *r)
{
    char path[256], enc[200];

    if (fota_cli_api_urlencode(version, enc, sizeof(enc)) < 0)
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "the version is too long");
    snprintf(path, sizeof(path), "/v1/products/%" PRId64 "/roms/%s/current", pid, enc);
    /* 404 is the product or the version: the server's message says which. */
    return fota_cli_ctx_call(c, "POST", path, NULL, r, NULL);
}

/* Reads the release's files (the positionals) into f. Returns 0 or an
 * exit status (reported). */
static int read_files(struct fota_cli_ctx *c, struct local_file *f)
{
    size_t i, n = (size_t)c->args.npos;
    int st;

    for (i = 0; i < n; i++) {
        f[i].path = c->args.pos[i];
        st = fota_cli_file_read(f[i].path, FOTA_FWIMG_MAX_SIZE, &f[i].data, &f[i].len);
        if (st != 0)
            return st;
    }
    return 0;
}

/* The release rules of the codec, applied to f with the product's flash map
 * and slot check, as the server will. Returns 0 or FOTA_CLI_EXIT_FAIL
 * (reported). */
static int check_locally(const struct product_facts *pf, const struct local_file *f, size_t n)
{
    struct fota_release_file rf[FOTA_RELEASE_MAX_FILES];
    char reason[512], names[512];
    size_t i;

    for (i = 0; i < n; i++)
        rf[i] = (struct fota_release_file){ f[i].name, f[i].data, f[i].len, NULL };
    if (fota_fwimg_release_check_flags(pf->map >= 0 ? fota_flash_map_get(pf->map) : NULL, rf, n,
                                       pf->flags, reason, sizeof(reason)) == 0)
        return 0;
    return fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "%s (checked locally, nothing was uploaded%s)",
                             reason, renames(f, n, names, sizeof(names)));
}

/* The key of --sign-key, checked against the product: it must sign for the
 * public key the product's devices verify with. Returns 0 with *key
 * (NULL without --sign-key), or an exit status (reported). */
static int sign_key(struct fota_cli_ctx *c, const struct product_facts *pf, EVP_PKEY **key)
{
    const char *path = fota_cli_ctx_opt(c, "sign-key"), *product = fota_cli_ctx_opt(c, "product");
    char err[512];

    *key = NULL;
    if (!path)
        return 0;
    if (!pf->arduino)
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "--sign-key is for arduino products; "
                                 "%s is not one", product);
    if (!pf->signing)
        return fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "%s has no signing key: its devices do not "
                                 "verify signatures (fotactl product arduino %s --signing-key "
                                 "public.pem sets one); nothing was uploaded", product, product);
    if (fota_cli_sign_key_load(path, key, err, sizeof(err)) != 0)
        return fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "%s", err);
    if (EVP_PKEY_eq(*key, pf->signing) != 1) {
        EVP_PKEY_free(*key);
        *key = NULL;
        return fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "%s does not belong to the public key of "
                                 "%s: its devices would refuse every file; nothing was uploaded",
                                 path, product);
    }
    return 0;
}

/* An arduino release's files: each checked as fotad will (unless
 * --no-check), compressed for a gzip product and signed with --sign-key,
 * then named firmware.bin / firmware-minimal.bin (".gz" when gzip). Returns
 * 0 or an exit status (reported). */
static int arduino_files(struct fota_cli_ctx *c, const struct product_facts *pf,
                         struct local_file *f, size_t n)
{
    const char *by_kind[2] = { NULL, NULL };
    char reason[256], err[512];
    EVP_PKEY *key = NULL;
    size_t i;
    int st;

    if (n > 2)
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "an arduino release is firmware.bin and "
                                 "optionally firmware-minimal.bin (%zu files given)", n);
    st = sign_key(c, pf, &key);
    for (i = 0; st == 0 && i < n; i++) {
        uint8_t *out;
        size_t len;
        int kind;

        if (!fota_cli_ctx_opt(c, "no-check") &&
            fota_cli_arduino_check(f[i].data, f[i].len, reason, sizeof(reason)) != 0) {
            st = fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "%s: %s (checked locally, nothing was "
                                   "uploaded)", f[i].path, reason);
            break;
        }
        /* fotad cannot compress what the signature covers: do it before signing */
        if (key && pf->gzip && !fota_cli_arduino_is_gzip(f[i].data, f[i].len)) {
            if (fota_cli_arduino_gzip(f[i].data, f[i].len, &out, &len) != 0) {
                st = fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "cannot compress %s", f[i].path);
                break;
            }
            free(f[i].data);
            f[i].data = out;
            f[i].len = len;
        }
        if (key) {
            if (fota_cli_sign(key, pf->legacy ? FOTA_CLI_SIGN_LEGACY : FOTA_CLI_SIGN_STANDARD,
                              f[i].data, f[i].len, &out, &len, err, sizeof(err)) != 0) {
                st = fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "%s: %s", f[i].path, err);
                break;
            }
            free(f[i].data);
            f[i].data = out;
            f[i].len = len;
        }
        fota_cli_arduino_file_name(f[i].path, f[i].data, f[i].len, f[i].name, sizeof(f[i].name));
        kind = strncmp(f[i].name, "firmware-minimal", 16) == 0;
        if (by_kind[kind]) {
            st = fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "%s and %s are both %s (a file whose "
                                   "name says \"minimal\" is firmware-minimal.bin)",
                                   by_kind[kind], f[i].path,
                                   kind ? "firmware-minimal.bin" : "firmware.bin");
            break;
        }
        by_kind[kind] = f[i].path;
    }
    if (st == 0 && !by_kind[0])
        st = fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "an arduino release needs firmware.bin "
                               "(a file whose name does not say \"minimal\")");
    EVP_PKEY_free(key);
    return st;
}

/* POSTs the release (version, --codename, changelog, the files) and reports
 * it with the server's warnings. Returns 0 or an exit status (reported). */
static int upload(struct fota_cli_ctx *c, int64_t pid, const struct local_file *f, size_t n,
                  size_t total, const char *changelog)
{
    struct fota_cli_part parts[3 + FOTA_RELEASE_MAX_FILES];
    const char *version = fota_cli_ctx_opt(c, "version"), *s;
    struct fota_cli_reply r;
    char path[64];
    size_t np = 0, i;
    int st, progress;
    json_t *w;

    parts[np++] = (struct fota_cli_part){ .name = "version", .value = version };
    if ((s = fota_cli_ctx_opt(c, "codename")))
        parts[np++] = (struct fota_cli_part){ .name = "codename", .value = s };
    if (changelog)
        parts[np++] = (struct fota_cli_part){ .name = "changelog", .value = changelog };
    for (i = 0; i < n; i++)
        parts[np++] = (struct fota_cli_part){ .name = "file", .data = f[i].data, .len = f[i].len,
                                              .filename = f[i].name };
    snprintf(path, sizeof(path), "/v1/products/%" PRId64 "/roms/", pid);
    progress = isatty(STDERR_FILENO) && !fota_cli_ctx_opt(c, "no-progress") && total >= 4096;
    st = fota_cli_api_upload(c->api, path, parts, np, progress, &r);
    st = fota_cli_ctx_check(c, st, &r, NULL);
    if (st != 0) {
        fota_cli_reply_cleanup(&r);
        return st;
    }
    if (c->json)
        fota_cli_out_json(stdout, r.json);
    else
        printf("published %s of %s (%zu file%s, %zu bytes)\n", version,
               fota_cli_ctx_opt(c, "product"), n, n == 1 ? "" : "s", total);
    /* Accepted with a caveat (e.g. a version stock firmware will mangle). */
    json_array_foreach(json_object_get(r.json, "warnings"), i, w)
        if (json_is_string(w))
            fprintf(stderr, "fotactl: warning: %s\n", json_string_value(w));
    fota_cli_reply_cleanup(&r);
    return 0;
}

int fota_cli_cmd_release_publish(struct fota_cli_ctx *c)
{
    struct local_file files[FOTA_RELEASE_MAX_FILES];
    struct product_facts pf;
    struct fota_cli_reply r;
    const char *product = fota_cli_ctx_opt(c, "product"), *version = fota_cli_ctx_opt(c, "version");
    const char *s;
    char *changelog = NULL;
    size_t n = (size_t)c->args.npos, i, total = 0;
    int64_t pid;
    int st;

    memset(files, 0, sizeof(files));
    memset(&pf, 0, sizeof(pf));
    if (!product || !version)
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE,
                                 "release publish needs --product and --version");
    if (!version[0])
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "the version is empty");
    st = read_files(c, files);
    if (st == 0 && (s = fota_cli_ctx_opt(c, "changelog")))
        st = read_changelog(s, &changelog);
    if (st == 0)
        st = fota_cli_ctx_product_id(c, product, &pid);
    if (st == 0)
        st = product_facts(c, pid, product, &pf);
    if (st == 0 && pf.arduino) {
        st = arduino_files(c, &pf, files, n);
    } else if (st == 0) {
        if (fota_cli_ctx_opt(c, "sign-key"))
            st = fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "--sign-key is for arduino products; "
                                   "%s is not one", product);
        upload_names(files, n);
        if (st == 0 && !fota_cli_ctx_opt(c, "no-check"))
            st = check_locally(&pf, files, n);
    }
    for (i = 0; i < n; i++)
        total += files[i].len;
    if (st == 0)
        st = upload(c, pid, files, n, total, changelog);
    if (st == 0 && fota_cli_ctx_opt(c, "current")) {
        st = set_current(c, pid, version, &r);
        if (st == 0 && !c->json)
            printf("%s is now the current release of %s\n", version, product);
        if (st == 0)
            fota_cli_reply_cleanup(&r);
    }
    for (i = 0; i < n; i++)
        free(files[i].data);
    free(changelog);
    EVP_PKEY_free(pf.signing);
    return st;
}

/* "user1.bin,user2.bin" */
/* "user1.bin,user2.bin": the names of a release's files. */
static const char *file_names(const json_t *rom, const char *field, void *ud, char *buf,
                              size_t cap)
{
    json_t *f, *files = json_object_get(rom, field);
    size_t i, o = 0;

    (void)ud;
    buf[0] = '\0';
    json_array_foreach(files, i, f) {
        json_t *nm = json_object_get(f, "name");
        int k;

        if (!json_is_string(nm))
            continue;
        k = snprintf(buf + o, cap - o, "%s%s", o ? "," : "", json_string_value(nm));
        if (k < 0 || (size_t)k >= cap - o)
            break;
        o += (size_t)k;
    }
    return buf[0] ? buf : "-";
}

static int rom_is_current(const json_t *rom)
{
    return json_is_true(json_object_get(rom, "current")) ||
           json_is_true(json_object_get(rom, "recommended"));
}

static const char *current_cell(const json_t *rom, const char *field, void *ud, char *buf,
                                size_t cap)
{
    (void)field;
    (void)ud;
    if (!rom_is_current(rom))
        return "-";
    snprintf(buf, cap, "%scurrent%s", fota_cli_out_green(), fota_cli_out_off());
    return buf;
}

/* The first line of a member (a changelog). */
static const char *first_line(const json_t *rom, const char *field, void *ud, char *buf,
                              size_t cap)
{
    char *nl;

    (void)ud;
    fota_cli_out_fmt(json_object_get(rom, field), buf, cap);
    if ((nl = strchr(buf, '\n')))
        *nl = '\0';
    return buf;
}

static const struct fota_cli_col rom_cols[] = {
    { "VERSION", "version", NULL, 0 },
    { "CODENAME", "codename", NULL, 1 },
    { "CURRENT", NULL, current_cell, 0 },
    { "FILES", "files", file_names, 0 },
    { "CREATED", "created", fota_cli_out_cell_time, 0 },
    { "CHANGELOG", "changelog", first_line, 1 },
};
static const struct fota_cli_list rom_table = FOTA_CLI_LIST(rom_cols, 512, 0);

static const struct fota_cli_col file_cols[] = {
    { "FILE", "name", NULL, 0 },
    { "SIZE", "size", NULL, 0 },
    { "SLOT", "slot", NULL, 0 },
    { "DOWNLOADS", "download_count", NULL, 0 },
    { "SHA256", "sha256", NULL, 0 },
};
static const struct fota_cli_list file_table = FOTA_CLI_LIST(file_cols, 128, 0);

/* "38% (201 KiB) smaller": a gzip container's saving, or "-". */
static const char *saving_text(const json_t *gs, char *buf, size_t cap)
{
    json_t *pct = json_object_get(gs, "percent"), *bytes = json_object_get(gs, "bytes");

    if (!json_is_integer(pct) || !json_is_integer(bytes))
        return "-";
    snprintf(buf, cap, "%lld%% smaller (%lld bytes)", (long long)json_integer_value(pct),
             (long long)json_integer_value(bytes));
    return buf;
}

static const char *gzip_cell(const json_t *f, const char *field, void *ud, char *buf, size_t cap)
{
    json_t *gs = json_object_get(f, "gzip_saving");

    (void)field;
    (void)ud;
    if (json_is_object(gs))
        return saving_text(gs, buf, cap);
    return json_is_true(json_object_get(f, "gzip")) ? "gzip" : "-";
}

static const char *signature_cell(const json_t *f, const char *field, void *ud, char *buf,
                                  size_t cap)
{
    json_t *v = json_object_get(f, field);

    (void)ud;
    (void)cap;
    (void)buf;
    if (!json_is_string(v) || strcmp(json_string_value(v), "none") == 0)
        return "-";
    return json_string_value(v);
}

/* "dout 4M": the image's flash mode and the flash size its header names. */
static const char *flash_cell(const json_t *f, const char *field, void *ud, char *buf,
                              size_t cap)
{
    json_t *im = json_object_get(f, "image");
    json_t *mode = json_object_get(im, "flash_mode"), *size = json_object_get(im, "flash_size");
    json_int_t b = json_is_integer(size) ? json_integer_value(size) : 0;

    (void)field;
    (void)ud;
    if (!json_is_string(mode))
        return "-";
    if (b >= 1 << 20)
        snprintf(buf, cap, "%s %lldM", json_string_value(mode), (long long)(b >> 20));
    else
        snprintf(buf, cap, "%s %lldK", json_string_value(mode), (long long)(b >> 10));
    return buf;
}

/* An arduino release's files: the x-MD5 they are served with, the gzip
 * saving, the signature form and the image's flash facts. */
static const struct fota_cli_col arduino_file_cols[] = {
    { "FILE", "name", NULL, 0 },
    { "SIZE", "size", NULL, 0 },
    { "MD5", "md5", NULL, 1 },
    { "GZIP", NULL, gzip_cell, 0 },
    { "SIGNATURE", "signature", signature_cell, 0 },
    { "FLASH", NULL, flash_cell, 0 },
    { "DOWNLOADS", "download_count", NULL, 0 },
};
static const struct fota_cli_list arduino_file_table = FOTA_CLI_LIST(arduino_file_cols, 128, 0);

/* The id of the product --product names (it must be given). Returns 0 or
 * an exit status (reported). */
static int product_opt(struct fota_cli_ctx *c, int64_t *pid)
{
    const char *product = fota_cli_ctx_opt(c, "product");

    if (!product)
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "this command needs --product");
    return fota_cli_ctx_product_id(c, product, pid);
}

static int get_roms(struct fota_cli_ctx *c, int64_t *pid, struct fota_cli_reply *r)
{
    const char *product = fota_cli_ctx_opt(c, "product");
    char path[64], what[128];
    int st;

    st = product_opt(c, pid);
    if (st != 0)
        return st;
    snprintf(path, sizeof(path), "/v1/products/%" PRId64 "/roms/", *pid);
    snprintf(what, sizeof(what), "product '%s'", product);
    return fota_cli_ctx_call(c, "GET", path, NULL, r, what);
}

static json_t *rom_list(json_t *reply)
{
    json_t *a = json_object_get(reply, "productRoms");

    return json_is_array(a) ? a : fota_cli_reply_array(reply, "roms");
}

int fota_cli_cmd_release_list(struct fota_cli_ctx *c)
{
    struct fota_cli_reply r;
    int64_t pid;
    int st;

    st = get_roms(c, &pid, &r);
    if (st != 0)
        return st;
    return fota_cli_ctx_print_list(c, &r, rom_list(r.json), &rom_table, NULL);
}

int fota_cli_cmd_release_current(struct fota_cli_ctx *c)
{
    struct fota_cli_reply r;
    json_t *rom, *found = NULL;
    int64_t pid;
    size_t i;
    int st;

    if (c->args.npos == 1) {
        st = product_opt(c, &pid);
        if (st != 0)
            return st;
        st = set_current(c, pid, c->args.pos[0], &r);
        if (st != 0)
            return st;
        if (c->json)
            fota_cli_out_json(stdout, r.json);
        else
            printf("%s is now the current release of %s\n", c->args.pos[0],
                   fota_cli_ctx_opt(c, "product"));
        fota_cli_reply_cleanup(&r);
        return 0;
    }
    st = get_roms(c, &pid, &r);
    if (st != 0)
        return st;
    json_array_foreach(rom_list(r.json), i, rom)
        if (rom_is_current(rom)) {
            found = rom;
            break;
        }
    if (!found) {
        fota_cli_reply_cleanup(&r);
        return fota_cli_out_fail(FOTA_CLI_EXIT_NOTFOUND, "%s has no current release",
                                 fota_cli_ctx_opt(c, "product"));
    }
    if (c->json)
        fota_cli_out_json(stdout, found);
    else {
        char v[256];

        printf("%s\n", fota_cli_out_fmt(json_object_get(found, "version"), v, sizeof(v)));
    }
    fota_cli_reply_cleanup(&r);
    return 0;
}

/* The path of one release (and file) with the version and name encoded. */
static int release_path(struct fota_cli_ctx *c, const char *version, const char *file,
                        int64_t *pid, char *path, size_t cap)
{
    const char *product = fota_cli_ctx_opt(c, "product");
    char ev[200], ef[200];
    int st;

    if (!product)
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "this command needs --product");
    if (fota_cli_api_urlencode(version, ev, sizeof(ev)) < 0 ||
        (file && fota_cli_api_urlencode(file, ef, sizeof(ef)) < 0))
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "the version or file name is too long");
    st = fota_cli_ctx_product_id(c, product, pid);
    if (st != 0)
        return st;
    if (file)
        snprintf(path, cap, "/v1/products/%" PRId64 "/roms/%s/files/%s", *pid, ev, ef);
    else
        snprintf(path, cap, "/v1/products/%" PRId64 "/roms/%s/", *pid, ev);
    return 0;
}

int fota_cli_cmd_release_show(struct fota_cli_ctx *c)
{
    static const char *const order[] = { "id", "product_id", "version", "codename", "current",
                                         "created", "changelog", NULL };
    struct fota_cli_reply r;
    char path[512];
    json_t *rom, *files, *f, *k;
    const char *key;
    int64_t pid;
    int st, arduino;

    st = release_path(c, c->args.pos[0], NULL, &pid, path, sizeof(path));
    if (st != 0)
        return st;
    st = fota_cli_ctx_call(c, "GET", path, NULL, &r, NULL);   /* 404 names product or version */
    if (st != 0)
        return st;
    if (c->json) {
        fota_cli_out_json(stdout, r.json);
        fota_cli_reply_cleanup(&r);
        return 0;
    }
    rom = json_deep_copy(fota_cli_reply_object(r.json, "rom"));
    files = json_incref(json_object_get(rom, "files"));
    arduino = json_is_string(json_object_get(rom, "platform"));
    if (json_is_object(json_object_get(rom, "gzip_saving"))) {
        char buf[96];

        json_object_set_new(rom, "gzip_saving", json_string(saving_text(
            json_object_get(rom, "gzip_saving"), buf, sizeof(buf))));
    }
    /* Scalars as a block, the files as a table below it. */
    json_object_foreach_safe(rom, k, key, f)
        if (json_is_array(f) || json_is_object(f) || strcmp(key, "visibly") == 0 ||
            strcmp(key, "updated") == 0 || strcmp(key, "life_cycle") == 0 ||
            strcmp(key, "recommended") == 0)
            json_object_del(rom, key);
    fota_cli_out_show(stdout, rom, order);
    fputc('\n', stdout);
    st = fota_cli_out_list(stdout, files, arduino ? &arduino_file_table : &file_table, NULL);
    json_decref(files);
    json_decref(rom);
    fota_cli_reply_cleanup(&r);
    return st == 0 ? 0 : fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "out of memory");
}

int fota_cli_cmd_release_download(struct fota_cli_ctx *c)
{
    struct fota_cli_reply r;
    const char *name = c->args.pos[1], *out = fota_cli_ctx_opt(c, "output"), *want;
    char path[512], hex[2 * FOTA_SHA256_LEN + 1];
    uint8_t sum[FOTA_SHA256_LEN];
    int64_t pid;
    FILE *f;
    size_t i;
    int st;

    if (strchr(name, '/') && !out)
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "give -o FILE for a name with '/'");
    st = release_path(c, c->args.pos[0], name, &pid, path, sizeof(path));
    if (st != 0)
        return st;
    st = fota_cli_ctx_call(c, "GET", path, NULL, &r, NULL);
    if (st != 0)
        return st;
    /* The store is content-addressed: what arrived must hash to its key. */
    fota_sha256(r.body, r.len, sum);
    for (i = 0; i < FOTA_SHA256_LEN; i++)
        snprintf(hex + 2 * i, 3, "%02x", sum[i]);
    want = fota_cli_api_header(c->api, "X-Fota-Sha256");
    if (want && strcasecmp(want, hex) != 0) {
        fota_cli_reply_cleanup(&r);
        return fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "%s arrived damaged (SHA-256 %s, the server "
                                 "says %s); nothing written", name, hex, want);
    }
    if (!out)
        out = name;
    if (strcmp(out, "-") == 0) {
        f = stdout;
    } else if (!(f = fopen(out, "wb"))) {
        fota_cli_reply_cleanup(&r);
        return fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "cannot write %s (%s)", out, strerror(errno));
    }
    if (fwrite(r.body, 1, r.len, f) != r.len || (f != stdout && fclose(f) != 0))
        st = fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "cannot write %s", out);
    else if (f != stdout && !c->json)
        fprintf(stderr, "wrote %zu bytes to %s (sha256 %s)\n", r.len, out, hex);
    fota_cli_reply_cleanup(&r);
    return st;
}

int fota_cli_cmd_release_delete(struct fota_cli_ctx *c)
{
    struct fota_cli_reply r;
    const char *product = fota_cli_ctx_opt(c, "product"), *version;
    char ev[200], path[320], line[512];
    size_t removed, kept;
    int64_t pid;
    int st;

    /* `release delete --product P VERSION` or `release delete PRODUCT VERSION` */
    if (c->args.npos == 2 && product)
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE,
                                 "give the product once (--product or PRODUCT)");
    if (c->args.npos == 2)
        product = c->args.pos[0];
    if (!product)
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "this command needs --product");
    version = c->args.pos[c->args.npos - 1];
    if (fota_cli_api_urlencode(version, ev, sizeof(ev)) < 0)
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "the version is too long");
    st = fota_cli_ctx_product_id(c, product, &pid);
    if (st != 0)
        return st;
    snprintf(path, sizeof(path), "/v1/products/%" PRId64 "/roms/%s/", pid, ev);
    st = fota_cli_ctx_call(c, "DELETE", path, NULL, &r, NULL);   /* 404 names product or version */
    if (st != 0)
        return st;
    removed = json_array_size(json_object_get(r.json, "blobs_removed"));
    kept = json_array_size(json_object_get(r.json, "blobs_kept"));
    snprintf(line, sizeof(line), "deleted release %s of %s (%zu stored file%s removed, %zu kept "
             "for other releases)", version, product, removed, removed == 1 ? "" : "s", kept);
    return fota_cli_ctx_done(c, &r, line);
}
