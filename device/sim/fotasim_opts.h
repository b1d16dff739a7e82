/* fotasim_opts.h - fota-sim's command line. One table (fotasim_opts.c)
 * gives every option's parser, default, check and --help line; a wrong
 * value is refused with the option's name and what it accepts. */
#ifndef FOTASIM_OPTS_H
#define FOTASIM_OPTS_H

#include <stdio.h>

#include "fotadev.h"

/* --faults: where each fault kind fires (-1 never). */
struct fotasim_fault {
    long flash_at;        /* power cut at this flash op after first boot */
    long rx_at;           /* power cut after this many received bytes */
    long drop_at;         /* close the download after this many image bytes */
    long corrupt_at;      /* flip the bits of this download byte (headers count) */
    long flash_hi, rx_hi, drop_hi, corrupt_hi; /* KIND@A-B: each device draws from [A, B] */
    unsigned pct;         /* share of devices affected, 0..100 */
    long slow_bps;        /* slow link: download receive rate in bytes/s; 0 none */
};

/* Every setting of one run. Strings point into argv (or the table's
 * defaults) and live as long as the process. */
struct fotasim_opts {
    const char *server;           /* address; resolved to a numeric one by main */
    int http_port, device_port, legacy_port;
    const char *admin_key, *product, *keys_file;
    int profile;                  /* enum fotadev_profile */
    int devices;
    const char *upgrade_to;       /* target version, NULL = check-in only */
    const char *initial_version;
    int map;                      /* flash size map */
    int loader;                   /* boot loader version (2, 31, 7) */
    double time_scale;            /* divides every device timer */
    unsigned timeout_s;
    unsigned max_attempts;        /* upgrade attempts per device */
    int stream_ext;               /* seed-dfu: 0x81/0x82 */
    unsigned seed;
    struct fotasim_fault fault;
    int have_fault;
    const char *flash_dir;        /* optional: devNNNNN.bin per device, loaded and saved */
    unsigned hold_s;              /* keep running at least this long (pings, presence) */
    int tls;                      /* channel over TLS (CLIENT_SSL_ENABLE, port 8443) */
    int json;                     /* summary as JSON */
    int json_devices;             /* --json-devices: plus one entry per device */
    unsigned source_addrs;        /* >0: bind to 127.0.0.(2 + idx % N) before connect */
    int await_push;               /* --upgrade-to without RPCs: the server pushes (rollout) */
    int ack_only;                 /* acknowledge upgrades, never download (fan-out benchmark) */
    unsigned segment;             /* download bytes per receive callback, at most (1460) */
    const char *write_image;      /* --write-image SLOT:VERSION:FILE: write and exit */
    unsigned image_size;          /* --image-size: images written or flashed, 0 = the builder's */
    /* the Arduino-core profiles (arduino, tasmota, esphome) */
    const char *url;              /* update()'s URL / Tasmota's OtaUrl / ESPHome's manifest */
    int core;                     /* FOTASIM_CORE_*: 25 .. 31 */
    int flash_mode;               /* the device's (and --write-image's) mode byte, 0..3 */
    int chip_size;                /* size code of the physical chip (4 = 4 MB) */
    int image_flash_size;         /* --write-image's header size code, -1: chip_size */
    unsigned free_space;          /* getFreeSketchSpace() with the factory image */
    unsigned checkin_s;           /* check-in / manifest poll interval */
    const char *sketch_version;   /* update()'s version argument; NULL: the image's */
    const char *pubkey_file;      /* the verifier a signed build installs */
    int mqtt_port;                /* Tasmota's broker, on --server */
    const char *md5_url, *md5;    /* ESPHome's flash action instead of the manifest */
    const char *sdk_version;      /* x-ESP8266-sdk-version; NULL: the core's default SDK */
    int gzip;                     /* --write-image: a gzip member */
    const char *sign_key;         /* --write-image: sign with this RSA private key (PEM) */
    int legacy_sign;              /* --write-image: core 2.5's raw-digest signature */
};

/* Profiles beyond libfotadev's (enum fotadev_profile). */
enum { FOTASIM_PROFILE_ARDUINO = 10, FOTASIM_PROFILE_TASMOTA = 11, FOTASIM_PROFILE_ESPHOME = 12 };
/* An Arduino-core profile (fotasim_ard.c) rather than libfotadev's agent. */
#define FOTASIM_PROFILE_IS_ARD(p) ((p) >= FOTASIM_PROFILE_ARDUINO)

#define FOTASIM_MSS 1460              /* one receive callback = at most one segment */
#define FOTASIM_SEGMENT_MAX 65536     /* --segment: largest piece a download callback gets */

enum { FOTASIM_OPTS_RUN = 0, FOTASIM_OPTS_HELP = 1, FOTASIM_OPTS_USAGE = 2 };

/* Sets every default, then parses argv[1..argc-1] ("--name value" or
 * "--name=value"). Returns FOTASIM_OPTS_RUN, FOTASIM_OPTS_HELP (--help:
 * the caller prints fotasim_opts_usage and exits 0) or FOTASIM_OPTS_USAGE
 * after one line on err naming the option and what it accepts (exit 2). */
int fotasim_opts_parse(struct fotasim_opts *o, int argc, char **argv, FILE *err);
/* The --help text, from the table. */
void fotasim_opts_usage(FILE *out);

#endif
