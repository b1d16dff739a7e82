/* cmd_image.c - `fotactl image info|check|make`: inspect ESP8266 images with
 * the codec in common/fwimg.h (aligned report or --json), apply the release
 * rules to a set of files offline, and write synthetic test images. Local
 * only: no server involved. Exit 0 ok, 1 bad image/file, 2 usage. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "cmd.h"
#include "fota_err.h"
#include "fwimg.h"
#include "hex.h"

#define IMG_MAX_FILES 64

const char fota_cli_cmd_image_help[] =
    "  image info [--json] FILE...          report layout, slot, segments, CRC of images\n"
    "  image check [--flash-map N] FILE...  apply the release rules to a set of files\n"
    "  image make --slot 1|2 [--flash-map N] [--version V] [--size N] -o FILE\n"
    "                                       write a valid test image\n";

static const char usage_text[] =
    "usage: fotactl image info [--json] FILE...\n"
    "       fotactl image check [--flash-map N] [--json] FILE...\n"
    "       fotactl image make --slot 1|2 [--flash-map N] [--version V] [--size N]\n"
    "                          [--flash-mode qio|qout|dio|dout] [--flash-freq 40|26|20|80]\n"
    "                          [--seed N] -o FILE\n"
    "\n"
    "info   parses each FILE (user1.bin / user2.bin, any layout) and prints what it\n"
    "       holds; exit 1 if any is not a sound image (the reason goes to stderr).\n"
    "check  applies the release rules (user1.bin + user2.bin, slots, CRC, budget,\n"
    "       flash map) to FILEs as one release, named by their base names.\n"
    "make   writes a NONOS >= 2.0 image with a valid checksum and CRC that embeds\n"
    "       the version (for tests and simulators; the code in it does not run).\n"
    "       --size N makes it as large as possible but at most N bytes.\n";

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

static int usage_error(const char *fmt, ...)
{
    va_list ap;

    fprintf(stderr, "fotactl image: ");
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n(see fotactl image --help)\n");
    return 2;
}

/* Streams a file through the codec. Returns 0 with *rc = the codec's result,
 * or -1 after printing why the file could not be read. */
static int scan_file(const char *path, uint32_t flags, struct fota_fwimg_info *in, int *rc,
                     uint64_t *fsize)
{
    struct fota_fwimg_stream s;
    uint8_t buf[16384];
    FILE *f = fopen(path, "rb");
    size_t n;

    if (!f) {
        fprintf(stderr, "fotactl: cannot read %s (%s)\n", path, strerror(errno));
        return -1;
    }
    fota_fwimg_begin(&s, flags);
    *fsize = 0;
    while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
        *fsize += n;
        (void)fota_fwimg_update(&s, buf, n);
    }   /* keeps feeding after an error: head stays whole */
    if (ferror(f)) {
        fprintf(stderr, "fotactl: cannot read %s (%s)\n", path, strerror(errno));
        fclose(f);
        return -1;
    }
    fclose(f);
    *rc = fota_fwimg_end(&s, in);
    return 0;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s ? s + 1 : path;
}

/* One sentence on why an image is not sound (for stderr and JSON). */
static void why_invalid(const struct fota_fwimg_info *in, int rc, char *out, size_t cap)
{
    enum fota_fwimg_kind k = fota_fwimg_sniff(in->head, in->head_len);

    if (k != FOTA_FWIMG_KIND_IMAGE)
        snprintf(out, cap, "%s, not an ESP8266 image", fota_fwimg_kind_name(k));
    else if (rc == FOTA_ECRC && in->crc_state == FOTA_FWIMG_CRC_INVALID)
        snprintf(out, cap, "CRC mismatch (stored 0x%08X, computed 0x%08X)", in->crc_stored,
                 in->crc_computed);
    else if (rc == FOTA_ECHECKSUM)
        snprintf(out, cap, "segment checksum mismatch (stored 0x%02X, computed 0x%02X)",
                 in->checksum_stored, in->checksum_computed);
    else
        snprintf(out, cap, "%s at byte %u", in->error_what ? in->error_what : fota_strerror(rc),
                 (unsigned)in->error_offset);
}

static void print_report(const char *path, const struct fota_fwimg_info *in, int rc,
                         const char *why, uint64_t fsize)
{
    const struct fota_flash_map *m = in->size_map >= 0 ? fota_flash_map_get(in->size_map) : NULL;
    char sha[2 * FOTA_SHA256_LEN + 1];
    uint32_t i;

    printf("%s\n", path);
    printf("  %-10s %s\n", "status", rc ? "invalid" : "valid");
    if (rc)
        printf("  %-10s %s\n", "reason", why);
    if (in->layout == FOTA_FWIMG_LAYOUT_UNKNOWN) {
        printf("  %-10s %llu bytes\n\n", "size", (unsigned long long)fsize);
        return;
    }
    printf("  %-10s %s (%s), bytes 2-3 %02X %02X\n", "layout", fota_fwimg_layout_name(in->layout),
           fota_fwimg_variant_name(in->variant), in->byte2, in->byte3);
    printf("  %-10s %s (from %s)\n", "slot", fota_fwimg_slot_name(in->slot),
           in->slot_src == FOTA_FWIMG_SLOTSRC_NONE ? "nothing: byte 3 is no slot number"
                                                   : fota_fwimg_slot_src_name(in->slot_src));
    printf("  %-10s %llu bytes\n", "size", (unsigned long long)fsize);
    if (in->size_map >= 0)
        printf("  %-10s %s, %s, size map %d (%s)\n", "flash", fota_fwimg_flash_mode_name(in->flash_mode),
               fota_fwimg_flash_freq_name(in->flash_freq), in->size_map, m ? m->name : "no OTA layout");
    else
        printf("  %-10s not in this layout's header\n", "flash");
    printf("  %-10s 0x%08X\n", "entry", in->entry);
    if (in->irom_offset)
        printf("  %-10s %u bytes at file offset 0x%X\n", "irom", (unsigned)in->irom_len,
               (unsigned)in->irom_offset);
    printf("  %-10s %u\n", "segments", (unsigned)in->nsegs);
    for (i = 0; i < in->nsegs && i < FOTA_FWIMG_MAX_SEGS; i++)
        printf("  %-10s %u: 0x%08X %7u bytes at file offset 0x%X\n", "", (unsigned)i,
               in->segs[i].addr, (unsigned)in->segs[i].len, (unsigned)in->segs[i].offset);
    if (in->checksum_offset)
        printf("  %-10s 0x%02X %s (computed 0x%02X, at 0x%X)\n", "checksum", in->checksum_stored,
               in->checksum_valid ? "valid" : "invalid", in->checksum_computed,
               (unsigned)in->checksum_offset);
    if (in->checksum_offset && !(in->error && in->error != FOTA_ECRC && in->error != FOTA_ECHECKSUM)) {
        if (in->crc_state == FOTA_FWIMG_CRC_ABSENT)
            printf("  %-10s absent\n", "crc");
        else
            printf("  %-10s 0x%08X %s (computed 0x%08X)\n", "crc", in->crc_stored,
                   fota_fwimg_crc_state_name(in->crc_state), in->crc_computed);
    }
    if (in->has_sha256) {
        fota_hex_encode(in->sha256, FOTA_SHA256_LEN, sha);
        printf("  %-10s %s\n", "sha256", sha);
    }
    printf("  %-10s %s\n\n", "version", in->version[0] ? in->version : "-");
}

static json_t *report_json(const char *path, const struct fota_fwimg_info *in, int rc,
                           const char *why, uint64_t fsize)
{
    json_t *o = json_object(), *segs = json_array();
    char sha[2 * FOTA_SHA256_LEN + 1];
    uint32_t i;

    json_object_set_new(o, "file", json_string(path));
    json_object_set_new(o, "valid", json_boolean(rc == 0));
    json_object_set_new(o, "error", rc ? json_string(why) : json_null());
    json_object_set_new(o, "error_code", rc ? json_string(fota_errname(rc)) : json_null());
    json_object_set_new(o, "error_offset", rc ? json_integer(in->error_offset) : json_null());
    json_object_set_new(o, "kind", json_string(fota_fwimg_kind_name(fota_fwimg_sniff(in->head, in->head_len))));
    json_object_set_new(o, "size", json_integer((json_int_t)fsize));
    json_object_set_new(o, "layout", json_string(fota_fwimg_layout_name(in->layout)));
    json_object_set_new(o, "variant", json_string(fota_fwimg_variant_name(in->variant)));
    json_object_set_new(o, "slot", in->slot ? json_integer(in->slot) : json_null());
    json_object_set_new(o, "slot_name", json_string(fota_fwimg_slot_name(in->slot)));
    json_object_set_new(o, "slot_source", json_string(fota_fwimg_slot_src_name(in->slot_src)));
    json_object_set_new(o, "byte2", json_integer(in->byte2));
    json_object_set_new(o, "byte3", json_integer(in->byte3));
    json_object_set_new(o, "entry", json_integer(in->entry));
    json_object_set_new(o, "flash_mode", in->flash_mode >= 0 ? json_string(fota_fwimg_flash_mode_name(in->flash_mode)) : json_null());
    json_object_set_new(o, "flash_freq", in->flash_freq >= 0 ? json_string(fota_fwimg_flash_freq_name(in->flash_freq)) : json_null());
    json_object_set_new(o, "size_map", in->size_map >= 0 ? json_integer(in->size_map) : json_null());
    json_object_set_new(o, "irom", json_pack("{s:I,s:I,s:I}", "offset", (json_int_t)in->irom_offset,
                                             "len", (json_int_t)in->irom_len, "addr", (json_int_t)in->irom_addr));
    for (i = 0; i < in->nsegs && i < FOTA_FWIMG_MAX_SEGS; i++)
        json_array_append_new(segs, json_pack("{s:I,s:I,s:I}", "addr", (json_int_t)in->segs[i].addr,
                                              "len", (json_int_t)in->segs[i].len,
                                              "offset", (json_int_t)in->segs[i].offset));
    json_object_set_new(o, "segments", segs);
    json_object_set_new(o, "checksum", json_pack("{s:i,s:i,s:b,s:I}", "stored", in->checksum_stored,
                                                 "computed", in->checksum_computed,
                                                 "valid", in->checksum_valid,
                                                 "offset", (json_int_t)in->checksum_offset));
    json_object_set_new(o, "crc", json_pack("{s:s,s:I,s:I}", "state", fota_fwimg_crc_state_name(in->crc_state),
                                            "stored", (json_int_t)in->crc_stored,
                                            "computed", (json_int_t)in->crc_computed));
    if (in->has_sha256) {
        fota_hex_encode(in->sha256, FOTA_SHA256_LEN, sha);
        json_object_set_new(o, "sha256", json_string(sha));
    } else {
        json_object_set_new(o, "sha256", json_null());
    }
    json_object_set_new(o, "version", in->version[0] ? json_string(in->version) : json_null());
    return o;
}

static int print_json(json_t *j)
{
    char *s = json_dumps(j, JSON_INDENT(2) | JSON_SORT_KEYS);

    json_decref(j);
    if (!s) {
        fprintf(stderr, "fotactl: out of memory\n");
        return 1;
    }
    puts(s);
    free(s);
    return 0;
}

/* Splits argv into --flags (handled by the caller's table) and files. */
struct img_args {
    int json;
    const char *opt[8];      /* values by index of the names table */
    char *files[IMG_MAX_FILES];
    int nfiles;
};

/* names: NULL-terminated; name[i] ending in '=' takes a value. Returns 0 or 2. */
static int parse_args(int argc, char **argv, const char *const *names, struct img_args *a)
{
    int i, k;

    memset(a, 0, sizeof *a);
    for (i = 1; i < argc; i++) {
        const char *arg = strcmp(argv[i], "-o") ? argv[i] : "--output";
        int found = 0;

        if (!strcmp(arg, "--")) {
            for (i++; i < argc; i++) {
                if (a->nfiles >= IMG_MAX_FILES)
                    return usage_error("at most %d files", IMG_MAX_FILES);
                a->files[a->nfiles++] = argv[i];
            }
            break;
        }
        if (arg[0] != '-' || !strcmp(arg, "-")) {
            if (a->nfiles >= IMG_MAX_FILES)
                return usage_error("at most %d files", IMG_MAX_FILES);
            a->files[a->nfiles++] = argv[i];
            continue;
        }
        if (!strcmp(arg, "--json")) {
            a->json = 1;
            continue;
        }
        for (k = 0; names && names[k]; k++) {
            const char *n = names[k];
            size_t nl = strlen(n);
            int takes = nl && n[nl - 1] == '=';
            size_t bl = takes ? nl - 1 : nl;

            if (!(strncmp(arg, n, bl) == 0 && (arg[bl] == '\0' || (takes && arg[bl] == '='))))
                continue;
            found = 1;
            if (!takes) {
                a->opt[k] = "";
            } else if (arg[bl] == '=') {
                a->opt[k] = arg + bl + 1;
            } else {
                if (i + 1 >= argc)
                    return usage_error("%s needs a value", arg);
                a->opt[k] = argv[++i];
            }
            break;
        }
        if (!found)
            return usage_error("unknown option %s", arg);
    }
    return 0;
}

static int image_info(int argc, char **argv)
{
    struct fota_fwimg_info in;
    struct img_args a;
    json_t *all = NULL;
    uint64_t fsize;
    char why[200];
    int i, rc, status = 0;

    if ((rc = parse_args(argc, argv, NULL, &a)))
        return rc;
    if (a.nfiles == 0)
        return usage_error("image info needs at least one FILE");
    if (a.json)
        all = json_array();
    for (i = 0; i < a.nfiles; i++) {
        if (scan_file(a.files[i], 0, &in, &rc, &fsize) < 0) {
            status = 1;
            if (all)
                json_array_append_new(all, json_pack("{s:s,s:b,s:s}", "file", a.files[i],
                                                     "valid", 0, "error", "cannot read the file"));
            continue;
        }
        why[0] = '\0';
        if (rc) {
            why_invalid(&in, rc, why, sizeof why);
            fprintf(stderr, "fotactl: %s: invalid: %s\n", a.files[i], why);
            status = 1;
        }
        if (all)
            json_array_append_new(all, report_json(a.files[i], &in, rc, why, fsize));
        else
            print_report(a.files[i], &in, rc, why, fsize);
    }
    if (all && print_json(all))
        return 1;
    return status;
}

static int image_check(int argc, char **argv)
{
    static const char *const names[] = { "--flash-map=", NULL };
    /* static: 64 image reports (head bytes included) are too big for the stack;
     * one call per process, so the storage is never shared. */
    static struct fota_fwimg_info infos[IMG_MAX_FILES];
    struct fota_release_file files[IMG_MAX_FILES];
    const struct fota_flash_map *map = NULL;
    struct img_args a;
    char why[400], *end;
    int i, rc;

    if ((rc = parse_args(argc, argv, names, &a)))
        return rc;
    if (a.opt[0]) {
        long m = strtol(a.opt[0], &end, 10);
        if (*end || !(map = fota_flash_map_get((int)m)))
            return usage_error("no flash map %s (known: 0 2 3 4 5 6 8 9)", a.opt[0]);
    }
    if (a.nfiles == 0)
        return usage_error("image check needs the release's FILEs");
    for (i = 0; i < a.nfiles; i++) {
        uint64_t fsize;
        int prc;
        if (scan_file(a.files[i], 0, &infos[i], &prc, &fsize) < 0)
            return 1;
        files[i] = (struct fota_release_file){ base_name(a.files[i]), NULL, 0, &infos[i] };
    }
    rc = fota_fwimg_release_check(map, files, (size_t)a.nfiles, why, sizeof why);
    if (a.json) {
        print_json(json_pack("{s:b,s:s?,s:s?,s:o}", "accepted", rc == 0, "reason", rc ? why : NULL,
                             "error_code", rc ? fota_errname(rc) : NULL, "flash_map",
                             map ? json_integer(map->map) : json_null()));
    } else if (rc == 0) {
        if (map)
            printf("accepted: %d file%s for flash map %d (%s)\n", a.nfiles,
                   a.nfiles == 1 ? "" : "s", map->map, map->name);
        else
            printf("accepted: %d file%s\n", a.nfiles, a.nfiles == 1 ? "" : "s");
    }
    if (rc)
        fprintf(stderr, "fotactl: refused: %s\n", why);
    return rc ? 1 : 0;
}

static int parse_num(const char *s, unsigned long max, unsigned long *v)
{
    char *end;

    errno = 0;
    *v = strtoul(s, &end, 0);
    return (errno || !*s || *end || *v > max || s[0] == '-') ? -1 : 0;
}

static const char *const make_names[] = { "--slot=", "--flash-map=", "--version=", "--size=",
                                          "--flash-mode=", "--flash-freq=", "--seed=",
                                          "--output=", NULL };
enum { MK_SLOT, MK_MAP, MK_VERSION, MK_SIZE, MK_MODE, MK_FREQ, MK_SEED, MK_OUTPUT };

/* --flash-mode and --flash-freq into o. Returns 0 or 2 (reported). */
static int make_flash_opts(const struct img_args *a, struct fota_fwimg_build_opts *o)
{
    static const char *const modes[] = { "qio", "qout", "dio", "dout" };
    static const char *const fr[] = { "40", "26", "20", "80" };
    static const int code[] = { 0, 1, 2, 15 };
    int i;

    if (a->opt[MK_MODE]) {
        for (i = 0; i < 4 && strcmp(a->opt[MK_MODE], modes[i]); i++)
            ;
        if (i == 4)
            return usage_error("--flash-mode %s: use qio, qout, dio or dout", a->opt[MK_MODE]);
        o->flash_mode = i;
    }
    if (a->opt[MK_FREQ]) {
        for (i = 0; i < 4 && strcmp(a->opt[MK_FREQ], fr[i]); i++)
            ;
        if (i == 4)
            return usage_error("--flash-freq %s: use 40, 26, 20 or 80", a->opt[MK_FREQ]);
        o->flash_freq = code[i];
    }
    return 0;
}

/* The build options image make's line asks for. Returns 0 or 2 (reported). */
static int make_opts(const struct img_args *a, struct fota_fwimg_build_opts *o)
{
    unsigned long v;
    int rc;

    if (a->nfiles)
        return usage_error("unexpected argument %s", a->files[0]);
    fota_fwimg_build_opts_init(o);
    if (!a->opt[MK_SLOT] || parse_num(a->opt[MK_SLOT], 2, &v) || v < 1)
        return usage_error("--slot 1 or --slot 2 is required");
    o->slot = (int)v;
    if (a->opt[MK_MAP]) {
        if (parse_num(a->opt[MK_MAP], 15, &v) || !fota_flash_map_get((int)v))
            return usage_error("no flash map %s (known: 0 2 3 4 5 6 8 9)", a->opt[MK_MAP]);
        o->size_map = (int)v;
    }
    o->version = a->opt[MK_VERSION];
    if ((rc = make_flash_opts(a, o)))
        return rc;
    if (a->opt[MK_SEED]) {
        if (parse_num(a->opt[MK_SEED], 0xFFFFFFFFul, &v))
            return usage_error("--seed %s: not a number", a->opt[MK_SEED]);
        o->seed = (uint32_t)v;
    }
    if (!a->opt[MK_OUTPUT])
        return usage_error("-o FILE is required");
    if (!fota_fwimg_build_size(o))
        return usage_error("--version '%s' is too long or not printable ASCII (at most 31)",
                           o->version ? o->version : "");
    if (a->opt[MK_SIZE]) {
        if (parse_num(a->opt[MK_SIZE], FOTA_FWIMG_MAX_SIZE, &v))
            return usage_error("--size %s: not a size up to 16 MiB", a->opt[MK_SIZE]);
        if (fota_fwimg_build_fit(o, (size_t)v) < 0) {
            o->irom_size = 0;
            return usage_error("--size: %lu bytes is below the smallest image (%zu)", v,
                               fota_fwimg_build_size(o));
        }
    }
    return 0;
}

/* Builds the image o describes and writes it to path ("-": standard
 * output). Returns 0 or 1 (reported). */
static int write_image(const struct fota_fwimg_build_opts *o, const char *path)
{
    size_t len, need = fota_fwimg_build_size(o);
    uint8_t *buf = malloc(need);
    FILE *f = NULL;
    int rc, status = 1;

    if (!buf) {
        fprintf(stderr, "fotactl: out of memory\n");
        goto out;
    }
    if ((rc = fota_fwimg_build(o, buf, need, &len)) < 0) {
        fprintf(stderr, "fotactl: cannot build the image (%s)\n", fota_strerror(rc));
        goto out;
    }
    f = strcmp(path, "-") ? fopen(path, "wb") : stdout;
    if (!f || fwrite(buf, 1, len, f) != len || fflush(f) != 0) {
        fprintf(stderr, "fotactl: cannot write %s (%s)\n", path, strerror(errno));
        goto out;
    }
    if (f != stdout)
        fprintf(stderr, "wrote %s: %zu bytes, user%d, flash map %d, version %s\n", path, len,
                o->slot, o->size_map, o->version ? o->version : "-");
    status = 0;
out:
    if (f && f != stdout && fclose(f) != 0 && status == 0) {
        fprintf(stderr, "fotactl: cannot write %s (%s)\n", path, strerror(errno));
        status = 1;
    }
    free(buf);
    return status;
}

static int image_make(int argc, char **argv)
{
    struct fota_fwimg_build_opts o;
    struct img_args a;
    int rc;

    if ((rc = parse_args(argc, argv, make_names, &a)))
        return rc;
    if ((rc = make_opts(&a, &o)))
        return rc;
    return write_image(&o, a.opt[MK_OUTPUT]);
}

int fota_cli_cmd_image(int argc, char **argv)
{
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") ||
        !strcmp(argv[1], "help")) {
        fputs(usage_text, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    for (int i = 2; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            fputs(usage_text, stdout);
            return 0;
        }
    if (!strcmp(argv[1], "info"))
        return image_info(argc - 1, argv + 1);
    if (!strcmp(argv[1], "check"))
        return image_check(argc - 1, argv + 1);
    if (!strcmp(argv[1], "make"))
        return image_make(argc - 1, argv + 1);
    return usage_error("no image command '%s' (info, check, make)", argv[1]);
}
