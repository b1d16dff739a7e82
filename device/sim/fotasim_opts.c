/* fotasim_opts.c - fota-sim's option table: name, value kind and range or
 * choices, default, help text. Parsing, defaults, validation and --help all
 * come from it, so an option cannot be parsed one way and documented
 * another. */
#include <errno.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "fota_str.h"
#include "fotasim_opts.h"

enum kind {
    K_FLAG,      /* int = 1 */
    K_STR,       /* const char * */
    K_INT,       /* int in [lo, hi] */
    K_UINT,      /* unsigned in [lo, hi] */
    K_REAL,      /* double > 0 */
    K_CHOICE,    /* int: the value of one of `choices` */
    K_FAULTS     /* struct fotasim_fault (+ have_fault) */
};

struct choice {
    const char *name;
    int value;
};

struct opt {
    const char *name;            /* without the leading "--" */
    const char *meta;            /* value placeholder in --help; NULL for flags */
    enum kind kind;
    size_t off;                  /* offsetof(struct fotasim_opts, field) */
    long lo, hi;                 /* K_INT, K_UINT */
    const struct choice *choices; /* K_CHOICE, NULL-terminated */
    const char *def;             /* default, parsed like a given value; NULL none */
    const char *help;
};

#define OFF(f) offsetof(struct fotasim_opts, f)

static const struct choice profiles[] = {
    {"nonos", FOTADEV_PROFILE_NONOS}, {"rtos", FOTADEV_PROFILE_RTOS},
    {"seed-dfu", FOTADEV_PROFILE_SEED_DFU}, {"fota", FOTADEV_PROFILE_FOTA},
    {"arduino", FOTASIM_PROFILE_ARDUINO}, {"tasmota", FOTASIM_PROFILE_TASMOTA},
    {"esphome", FOTASIM_PROFILE_ESPHOME}, {NULL, 0}};
static const struct choice cores[] = {
    {"2.5", 25}, {"2.6", 26}, {"2.7", 27}, {"3.0", 30}, {"3.1", 31}, {NULL, 0}};
static const struct choice modes[] = {{"qio", 0}, {"qout", 1}, {"dio", 2}, {"dout", 3}, {NULL, 0}};
static const struct choice chips[] = {
    {"512K", 0}, {"1M", 2}, {"2M", 3}, {"4M", 4}, {"8M", 8}, {"16M", 9}, {NULL, 0}};
static const struct choice hdr_sizes[] = {
    {"256K", 1}, {"512K", 0}, {"1M", 2}, {"2M", 3}, {"4M", 4}, {"8M", 8}, {"16M", 9}, {NULL, 0}};
static const struct choice maps[] = {
    {"0", 0}, {"2", 2}, {"3", 3}, {"4", 4}, {"5", 5}, {"6", 6}, {"8", 8}, {"9", 9}, {NULL, 0}};
static const struct choice loaders[] = {{"2", 2}, {"31", 31}, {"7", 7}, {NULL, 0}};

static const struct opt table[] = {
    {"server", "HOST", K_STR, OFF(server), 0, 0, NULL, NULL,
     "the server's address (required, except with --write-image)"},
    {"http-port", "N", K_INT, OFF(http_port), 1, 65535, NULL, "80",
     "HTTP port: ROM downloads, REST API"},
    {"device-port", "N", K_INT, OFF(device_port), 1, 65535, NULL, "8000",
     "device channel port (the TLS port with --tls)"},
    {"legacy-port", "N", K_INT, OFF(legacy_port), 1, 65535, NULL, "5555",
     "raw-TCP DFU port (seed-dfu)"},
    {"key", "ADMIN_KEY", K_STR, OFF(admin_key), 0, 0, NULL, NULL,
     "register every device through the REST API and play the phone app's RPCs"},
    {"product", "ID", K_STR, OFF(product), 0, 0, NULL, NULL,
     "product to register the devices in (with --key)"},
    {"keys", "FILE", K_STR, OFF(keys_file), 0, 0, NULL, NULL,
     "the devices' master keys: one 40-character key per line (device i uses\n"
     "line i), or master_device_key.bin key sectors (4 KiB each, as fotactl\n"
     "device key --bin writes them)"},
    {"profile", NULL, K_CHOICE, OFF(profile), 0, 0, profiles, "nonos",
     "the device firmware: stock NONOS IoT_Demo, IOT_PLATFORM (RTOS), the\n"
     "seed's raw-TCP DFU client, libfotadev's own (resuming) client; or the\n"
     "ESP8266 Arduino core: a sketch calling ESPhttpUpdate.update() (arduino),\n"
     "Tasmota (over MQTT), ESPHome (manifest polling)"},
    {"devices", "N", K_INT, OFF(devices), 1, 100000, NULL, "1", "how many virtual devices"},
    {"upgrade-to", "VERSION", K_STR, OFF(upgrade_to), 0, 0, NULL, NULL,
     "succeed when every device runs this version (else: when all checked in)"},
    {"initial-version", "V", K_STR, OFF(initial_version), 0, 0, NULL, "v1.0.0t45772(a)",
     "the version of the factory image"},
    {"map", NULL, K_CHOICE, OFF(map), 0, 0, maps, "2", "flash size map (layout of the two slots)"},
    {"loader", NULL, K_CHOICE, OFF(loader), 0, 0, loaders, "7",
     "boot loader: v1.2 and v1.1 (old nibble format) or v1.7"},
    {"time-scale", "X", K_REAL, OFF(time_scale), 0, 0, NULL, "1",
     "divide every device timer by X (ping 50 s / X)"},
    {"timeout", "SECONDS", K_UINT, OFF(timeout_s), 1, 86400, NULL, "300",
     "give up and report after this long"},
    {"max-attempts", "N", K_UINT, OFF(max_attempts), 1, 1000, NULL, "3",
     "upgrade attempts per device (the app's retries; seed-dfu's boots)"},
    {"stream-ext", NULL, K_FLAG, OFF(stream_ext), 0, 0, NULL, NULL,
     "seed-dfu: request bytes 0x81/0x82, no 1280-byte receive limit"},
    {"faults", "SPEC", K_FAULTS, OFF(fault), 0, 0, NULL, NULL,
     "comma list: flash@N (power cut at the Nth flash operation after boot),\n"
     "rx@N (power cut after N received bytes), drop@N (close the download\n"
     "after N bytes), corrupt@N (invert the Nth byte received on download\n"
     "connections, headers included), slow=BPS (download links of at most\n"
     "BPS bytes/s), pct=P (share of devices affected, default 100); KIND@A-B\n"
     "draws N per device from [A, B] (reproducible with --seed)"},
    {"seed", "N", K_UINT, OFF(seed), 0, 0x7FFFFFFF, NULL, "1",
     "random seed: keys, bssids, fault positions, image contents"},
    {"hold", "SECONDS", K_UINT, OFF(hold_s), 0, 86400, NULL, "0",
     "run at least this long; devices stay connected and ping"},
    {"flash-dir", "DIR", K_STR, OFF(flash_dir), 0, 0, NULL, NULL,
     "load/save each device's flash as DIR/devNNNNN.bin"},
    {"tls", NULL, K_FLAG, OFF(tls), 0, 0, NULL, NULL,
     "the device channel over TLS (give the TLS port as --device-port)"},
    {"json", NULL, K_FLAG, OFF(json), 0, 0, NULL, NULL,
     "print the summary as one JSON object (with channel drops and per-device\n"
     "upgrade times: p50/p99 from push to running the target)"},
    {"json-devices", NULL, K_FLAG, OFF(json_devices), 0, 0, NULL, NULL,
     "--json plus \"per_device\": state, version, boots, power cuts and the\n"
     "versions booted, for every device"},
    {"source-addrs", "N", K_UINT, OFF(source_addrs), 0, 250, NULL, "0",
     "bind device i's sockets to 127.0.0.(2 + i % N) (IPv4 loopback servers;\n"
     "more source addresses, more ports)"},
    {"await-push", NULL, K_FLAG, OFF(await_push), 0, 0, NULL, NULL,
     "with --upgrade-to: send no RPCs, wait for the server's pushes (a rollout\n"
     "with reboot)"},
    {"ack-only", NULL, K_FLAG, OFF(ack_only), 0, 0, NULL, NULL,
     "acknowledge upgrade pushes but never download (fan-out runs)"},
    {"segment", "BYTES", K_UINT, OFF(segment), 536, FOTASIM_SEGMENT_MAX, NULL, "1460",
     "download bytes per receive callback, at most: one TCP segment per\n"
     "callback, as lwIP delivers them (a NONOS espconn callback may also get a\n"
     "pbuf chain up to its 5840-byte window). The nonos profile's substring\n"
     "tests run per callback, so the default is the faithful choice"},
    {"write-image", "SLOT:VERSION:FILE", K_STR, OFF(write_image), 0, 0, NULL, NULL,
     "write a valid test image for slot 1 or 2 (with --map, --image-size,\n"
     "--seed) and exit"},
    {"image-size", "BYTES", K_UINT, OFF(image_size), 1024, 16 << 20, NULL, NULL,
     "--write-image: pad the image to this size (default: the builder's size);\n"
     "Arduino-core profiles: the factory image's size (default 64 KiB)"},
    {"url", "URL", K_STR, OFF(url), 0, 0, NULL, NULL,
     "Arduino-core profiles: arduino, the URL update() is called with; tasmota,\n"
     "the OtaUrl it starts with; esphome, the manifest (with --md5-url or --md5:\n"
     "the firmware). {index} and {mac} are replaced per device"},
    {"core", NULL, K_CHOICE, OFF(core), 0, 0, cores, "3.1",
     "the Arduino core line the devices run: request bytes and behaviours\n"
     "follow it (tasmota is always 2.7, its fork)"},
    {"flash-mode", NULL, K_CHOICE, OFF(flash_mode), 0, 0, modes, "dio",
     "the devices' flash mode (byte 2 of what they boot), and --write-image's"},
    {"chip-size", NULL, K_CHOICE, OFF(chip_size), 0, 0, chips, "4M",
     "the physical flash chip (x-ESP8266-chip-size), and --write-image's header"},
    {"image-flash-size", NULL, K_CHOICE, OFF(image_flash_size), 0, 0, hdr_sizes, NULL,
     "--write-image: the header's flash size (default --chip-size)"},
    {"free-space", "BYTES", K_UINT, OFF(free_space), 0, 16 << 20, NULL, "983040",
     "getFreeSketchSpace() with the factory image, a multiple of 4096: the\n"
     "sketch area ends there (where the file system starts)"},
    {"checkin-interval", "SECONDS", K_UINT, OFF(checkin_s), 1, 86400, NULL, "60",
     "arduino: seconds between update() calls; esphome: between manifest polls"},
    {"sketch-version", "V", K_STR, OFF(sketch_version), 0, 0, NULL, NULL,
     "arduino: update()'s version argument (\"\" sends no x-ESP8266-version);\n"
     "default: the version embedded in the running image"},
    {"pubkey", "PEM", K_STR, OFF(pubkey_file), 0, 0, NULL, NULL,
     "Arduino-core profiles: a signed build: the updater checks each image's\n"
     "signature with this RSA public key (core 2.5: the raw-digest form)"},
    {"mqtt-port", "N", K_INT, OFF(mqtt_port), 1, 65535, NULL, "1883",
     "tasmota: the MQTT broker's port on --server"},
    {"md5-url", "URL", K_STR, OFF(md5_url), 0, 0, NULL, NULL,
     "esphome: run ota.http_request.flash on --url with this md5_url"},
    {"md5", "HEX", K_STR, OFF(md5), 0, 0, NULL, NULL,
     "esphome: run ota.http_request.flash on --url with this md5"},
    {"sdk-version", "TEXT", K_STR, OFF(sdk_version), 0, 0, NULL, NULL,
     "x-ESP8266-sdk-version (default: the core's SDK, 2.2.2-dev(38a443e) from 2.7)"},
    {"gzip", NULL, K_FLAG, OFF(gzip), 0, 0, NULL, NULL,
     "--write-image arduino:...: write the image as a gzip member"},
    {"sign-key", "PEM", K_STR, OFF(sign_key), 0, 0, NULL, NULL,
     "--write-image arduino:...: append the signature trailer made with this\n"
     "RSA private key (after --gzip: it covers the compressed bytes)"},
    {"legacy-sign", NULL, K_FLAG, OFF(legacy_sign), 0, 0, NULL, NULL,
     "--sign-key: core 2.5's form (PKCS#1 v1.5 over the raw SHA-256)"},
};

#define NOPT (sizeof(table) / sizeof(table[0]))

static void *field(struct fotasim_opts *o, const struct opt *t)
{
    return (char *)o + t->off;
}

/* "a, b, c" of a choice list into buf. */
static const char *choice_list(const struct choice *c, const char *sep, char *buf, size_t cap)
{
    size_t n = 0;
    buf[0] = '\0';
    for (; c->name && n < cap; c++) {
        n += fota_str_copy(buf + n, cap - n, n ? sep : "");
        if (n < cap)
            n += fota_str_copy(buf + n, cap - n, c->name);
    }
    return buf;
}

static int parse_range(const char *spec, long *lo, long *hi)
{
    char *end;
    errno = 0;
    *lo = strtol(spec, &end, 10);
    *hi = *lo;
    if (*end == '-' && end[1] >= '0' && end[1] <= '9')
        *hi = strtol(end + 1, &end, 10);    /* KIND@A-B: a range */
    return errno || *end || *lo < 0 || *hi < *lo ? -1 : 0;
}

/* One item of a --faults list. Returns NULL or what is wrong with it. */
static const char *fault_item(const char *tok, struct fotasim_fault *f)
{
    static const struct { const char *kind; size_t at; size_t hi; } kinds[] = {
        {"flash@", offsetof(struct fotasim_fault, flash_at), offsetof(struct fotasim_fault, flash_hi)},
        {"rx@", offsetof(struct fotasim_fault, rx_at), offsetof(struct fotasim_fault, rx_hi)},
        {"drop@", offsetof(struct fotasim_fault, drop_at), offsetof(struct fotasim_fault, drop_hi)},
        {"corrupt@", offsetof(struct fotasim_fault, corrupt_at),
         offsetof(struct fotasim_fault, corrupt_hi)},
    };
    char *end;
    long v, hi;
    size_t k;

    if (strncmp(tok, "slow=", 5) == 0) {         /* a slow link: bytes per second */
        errno = 0;
        v = strtol(tok + 5, &end, 10);
        if (errno || *end || v < 1 || v > 1000000000L)
            return "slow=BPS wants 1 to 1000000000 bytes per second";
        f->slow_bps = v;
        return NULL;
    }
    if (strncmp(tok, "pct=", 4) == 0) {
        errno = 0;
        v = strtol(tok + 4, &end, 10);
        if (errno || *end || v < 0 || v > 100)
            return "pct=P wants a share from 0 to 100";
        f->pct = (unsigned)v;
        return NULL;
    }
    for (k = 0; k < sizeof(kinds) / sizeof(kinds[0]); k++) {
        size_t n = strlen(kinds[k].kind);
        if (strncmp(tok, kinds[k].kind, n) != 0)
            continue;
        if (parse_range(tok + n, &v, &hi) < 0)
            return "KIND@N wants a count N >= 0 or a range A-B";
        *(long *)((char *)f + kinds[k].at) = v;
        *(long *)((char *)f + kinds[k].hi) = hi;
        return NULL;
    }
    return "items are flash@N, rx@N, drop@N, corrupt@N (or @A-B), slow=BPS, pct=P";
}

static const char *parse_faults(const char *spec, struct fotasim_fault *f, char *bad, size_t badcap)
{
    char buf[256], *tok, *save = NULL;
    const char *why;

    f->flash_at = f->rx_at = f->drop_at = f->corrupt_at = -1;
    f->flash_hi = f->rx_hi = f->drop_hi = f->corrupt_hi = -1;
    f->pct = 100;
    f->slow_bps = 0;
    if (fota_str_copy(buf, sizeof(buf), spec) >= sizeof(buf))
        return "the list is longer than 255 characters";
    for (tok = strtok_r(buf, ",", &save); tok; tok = strtok_r(NULL, ",", &save)) {
        if ((why = fault_item(tok, f)) != NULL) {
            fota_str_copy(bad, badcap, tok);
            return why;
        }
    }
    return NULL;
}

/* Stores the value of table entry t. Returns 0, or -1 after a message
 * naming the option and what it accepts. */
static int set_value(struct fotasim_opts *o, const struct opt *t, const char *v, FILE *err)
{
    char list[160], bad[64] = "";
    const struct choice *c;
    const char *why;
    char *end;
    long n;
    double d;

    switch (t->kind) {
    case K_FLAG:
        *(int *)field(o, t) = 1;
        return 0;
    case K_STR:
        *(const char **)field(o, t) = v;
        return 0;
    case K_INT:
    case K_UINT:
        errno = 0;
        n = strtol(v, &end, 10);
        if (errno || end == v || *end || n < t->lo || n > t->hi) {
            fprintf(err, "fota-sim: --%s: '%s' is not a whole number from %ld to %ld\n", t->name,
                    v, t->lo, t->hi);
            return -1;
        }
        if (t->kind == K_INT)
            *(int *)field(o, t) = (int)n;
        else
            *(unsigned *)field(o, t) = (unsigned)n;
        return 0;
    case K_REAL:
        errno = 0;
        d = strtod(v, &end);
        if (errno || end == v || *end || !(d > 0.0) || d > 1e6) {
            fprintf(err, "fota-sim: --%s: '%s' is not a number above 0 (at most 1e6)\n", t->name, v);
            return -1;
        }
        *(double *)field(o, t) = d;
        return 0;
    case K_CHOICE:
        for (c = t->choices; c->name; c++) {
            if (strcmp(c->name, v) == 0) {
                *(int *)field(o, t) = c->value;
                return 0;
            }
        }
        fprintf(err, "fota-sim: --%s: '%s' is not one of %s\n", t->name, v,
                choice_list(t->choices, ", ", list, sizeof(list)));
        return -1;
    case K_FAULTS:
        if ((why = parse_faults(v, &o->fault, bad, sizeof(bad))) != NULL) {
            if (bad[0])
                fprintf(err, "fota-sim: --%s: '%s': %s\n", t->name, bad, why);
            else
                fprintf(err, "fota-sim: --%s: %s\n", t->name, why);
            return -1;
        }
        o->have_fault = 1;
        return 0;
    }
    return -1;
}

static const struct opt *find(const char *name, size_t len)
{
    size_t i;
    for (i = 0; i < NOPT; i++)
        if (strlen(table[i].name) == len && strncmp(table[i].name, name, len) == 0)
            return &table[i];
    return NULL;
}

static int set_defaults(struct fotasim_opts *o, FILE *err)
{
    size_t i;
    memset(o, 0, sizeof(*o));
    o->fault.flash_at = o->fault.rx_at = o->fault.drop_at = o->fault.corrupt_at = -1;
    o->fault.flash_hi = o->fault.rx_hi = o->fault.drop_hi = o->fault.corrupt_hi = -1;
    o->fault.pct = 100;
    o->image_flash_size = -1;
    for (i = 0; i < NOPT; i++) {
        if (table[i].def && set_value(o, &table[i], table[i].def, err) < 0)
            return -1;
    }
    return 0;
}

/* Checks between options, after all were read. */
static int validate(struct fotasim_opts *o, FILE *err)
{
    if (o->json_devices)
        o->json = 1;
    if (o->write_image)
        return 0;
    if (!o->server) {
        fprintf(err, "fota-sim: --server HOST is required (fota-sim --help lists the options)\n");
        return -1;
    }
    if (o->upgrade_to && (!o->upgrade_to[0] || strlen(o->upgrade_to) >= FOTA_FWIMG_VERSION_MAX)) {
        fprintf(err, "fota-sim: --upgrade-to: a version of 1 to %d characters\n",
                FOTA_FWIMG_VERSION_MAX - 1);
        return -1;
    }
    if (o->free_space % 4096u) {
        fprintf(err, "fota-sim: --free-space: %u is not a multiple of 4096\n", o->free_space);
        return -1;
    }
    if (o->profile == FOTASIM_PROFILE_TASMOTA)
        o->core = 27;                    /* Tasmota's fork: core 2.7.4's update code */
    if (FOTASIM_PROFILE_IS_ARD(o->profile) && !o->url && o->profile != FOTASIM_PROFILE_TASMOTA) {
        fprintf(err, "fota-sim: --profile %s needs --url URL\n",
                o->profile == FOTASIM_PROFILE_ARDUINO ? "arduino" : "esphome");
        return -1;
    }
    if (o->admin_key && !o->keys_file && !o->product) {
        fprintf(err, "fota-sim: --key needs --product ID to register the devices\n");
        return -1;
    }
    return 0;
}

int fotasim_opts_parse(struct fotasim_opts *o, int argc, char **argv, FILE *err)
{
    int i;

    if (set_defaults(o, err) < 0)
        return FOTASIM_OPTS_USAGE;
    for (i = 1; i < argc; i++) {
        const char *a = argv[i], *eq, *v;
        const struct opt *t;
        size_t len;

        if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0)
            return FOTASIM_OPTS_HELP;
        if (strncmp(a, "--", 2) != 0) {
            fprintf(err, "fota-sim: unexpected argument '%s' (fota-sim --help lists the options)\n", a);
            return FOTASIM_OPTS_USAGE;
        }
        a += 2;
        eq = strchr(a, '=');
        len = eq ? (size_t)(eq - a) : strlen(a);
        if (!(t = find(a, len))) {
            fprintf(err, "fota-sim: unknown option '--%.*s' (fota-sim --help lists them)\n",
                    (int)len, a);
            return FOTASIM_OPTS_USAGE;
        }
        if (t->kind == K_FLAG) {
            if (eq) {
                fprintf(err, "fota-sim: --%s takes no value\n", t->name);
                return FOTASIM_OPTS_USAGE;
            }
            v = "";
        } else if (eq) {
            v = eq + 1;
        } else if (i + 1 < argc) {
            v = argv[++i];
        } else {
            char list[160];
            fprintf(err, "fota-sim: --%s needs a value (%s)\n", t->name,
                    t->meta ? t->meta : choice_list(t->choices, "|", list, sizeof(list)));
            return FOTASIM_OPTS_USAGE;
        }
        if (set_value(o, t, v, err) < 0)
            return FOTASIM_OPTS_USAGE;
    }
    return validate(o, err) < 0 ? FOTASIM_OPTS_USAGE : FOTASIM_OPTS_RUN;
}

void fotasim_opts_usage(FILE *out)
{
    size_t i;

    fprintf(out,
            "usage: fota-sim --server HOST --profile P --devices N [--upgrade-to VERSION] [options]\n"
            "       fota-sim --write-image SLOT:VERSION:FILE [--map N] [--image-size BYTES] [--seed N]\n"
            "\n"
            "Runs many virtual ESP8266 devices against a server on one event loop.\n"
            "Exit 0 when every device ends on --upgrade-to (without it: every device\n"
            "activated or identified), 1 otherwise, 2 for a usage error.\n\n");
    for (i = 0; i < NOPT; i++) {
        const struct opt *t = &table[i];
        char head[96], list[160];
        const char *h = t->help, *nl;
        if (t->kind == K_FLAG)
            snprintf(head, sizeof(head), "--%s", t->name);
        else
            snprintf(head, sizeof(head), "--%s %s", t->name,
                     t->meta ? t->meta : choice_list(t->choices, "|", list, sizeof(list)));
        fprintf(out, "  %s\n", head);
        for (; (nl = strchr(h, '\n')) != NULL; h = nl + 1)
            fprintf(out, "        %.*s\n", (int)(nl - h), h);
        fprintf(out, "        %s", h);
        if (t->def)
            fprintf(out, " (default %s)", t->def);
        fprintf(out, "\n");
    }
}
