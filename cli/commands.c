/* commands.c - the one table of fotactl's REST commands (and the local
 * `release sign` that belongs with them): names, synopses,
 * options and one-line help. --help output, the man page's synopsis and the
 * bash completion are kept in step with this table (tests/integration/
 * cli_help_test.py checks the man page and completion against --help). It
 * names each command's handler (cli/cmd_*.c); nothing else here. */
#include "commands.h"

#include <stddef.h>

#include "cmd.h"

static const struct fota_cli_opt o_none[] = { { NULL, 0, NULL, NULL } };

static const struct fota_cli_opt o_login[] = {
    { "no-check", 0, NULL, "save without asking the server whether the key works" },
    { NULL, 0, NULL, NULL }
};

static const struct fota_cli_opt o_product_create[] = {
    { "serial", 0, "S", "Espressif serial / product type code (e.g. 23701)" },
    { "description", 0, "TEXT", "free text" },
    { "flash-map", 0, "N", "flash size map code 0..9 of the devices (default: server's)" },
    { "slot-check", 0, "byte3|name", "how release images name their slot: byte3 (default, "
                                      "NONOS >= 2.0) or name (RTOS 1.x / seed-era images)" },
    { "platform", 0, "nonos|arduino", "the devices' firmware: nonos (Espressif NONOS, the "
                                      "default) or arduino (Arduino core: sketches, Tasmota, "
                                      "ESPHome)" },
    { "gzip", 0, NULL, "arduino: serve the gzip container (fleets on core >= 2.7)" },
    { "arduino-core", 0, "X.Y", "arduino: the core line the devices run, 2.4 ... 3.1 "
                                "(default 3.1)" },
    { "flash-mode", 0, "MODE", "arduino: the fleet's flash mode, qio|qout|dio|dout (default: "
                               "the first release's)" },
    { "signing-key", 0, "FILE", "arduino: the RSA public key (PEM) the devices verify "
                                "releases with" },
    { "checkin-interval", 0, "S", "arduino: a device is online while its last check-in is "
                                  "younger (default 1h; s, m, h, d)" },
    { "confirm-after", 0, "S", "arduino: how long after a whole download the old image "
                               "counts as a failure (default 60s)" },
    { NULL, 0, NULL, NULL }
};

static const struct fota_cli_opt o_product_arduino[] = {
    { "gzip", 0, NULL, "serve the gzip container (fleets on core >= 2.7)" },
    { "no-gzip", 0, NULL, "serve plain images" },
    { "arduino-core", 0, "X.Y", "the core line the devices run, 2.4 ... 3.1" },
    { "flash-mode", 0, "MODE", "the fleet's flash mode, qio|qout|dio|dout, or none (the next "
                               "release's)" },
    { "signing-key", 0, "FILE", "the RSA public key (PEM) the devices verify releases with" },
    { "no-signing-key", 0, NULL, "unsigned releases from now on" },
    { "checkin-interval", 0, "S", "a device is online while its last check-in is younger "
                                  "(s, m, h, d)" },
    { "confirm-after", 0, "S", "how long after a whole download the old image counts as a "
                               "failure (s, m, h, d)" },
    { NULL, 0, NULL, NULL }
};

static const struct fota_cli_opt o_product_mqtt[] = {
    { "url", 0, "URL", "the broker: mqtt://HOST[:PORT] or mqtts://HOST[:PORT]" },
    { "username", 0, "NAME", "the user fotad logs in as" },
    { "password-file", 0, "FILE", "read the password from FILE (- for standard input; never "
                                  "on the command line, where ps shows it)" },
    { "no-password", 0, NULL, "log in without a password" },
    { "remove", 0, NULL, "forget the broker and its credentials" },
    { NULL, 0, NULL, NULL }
};

static const struct fota_cli_opt o_publish[] = {
    { "product", 'p', "P", "product id or name (required)" },
    { "version", 'v', "V", "release version, e.g. v1.1 (required)" },
    { "codename", 0, "C", "release channel / code name (e.g. beta)" },
    { "changelog", 0, "TEXT|@FILE", "change log text, or @FILE to read it from a file" },
    { "current", 0, NULL, "make it the current (recommended) version after the upload" },
    { "no-check", 0, NULL, "skip the local image check (the server checks anyway)" },
    { "no-progress", 0, NULL, "no progress bar even on a terminal" },
    { "sign-key", 0, "FILE", "arduino: sign each file with this RSA private key (PEM) before "
                             "the upload (core 2.5 fleets: the legacy form)" },
    { NULL, 0, NULL, NULL }
};

static const struct fota_cli_opt o_release_sign[] = {
    { "key", 'k', "FILE", "the RSA private key (PEM) (required)" },
    { "legacy", 0, NULL, "core 2.5's form: PKCS#1 around the bare SHA-256 (signing.py --legacy)" },
    { NULL, 0, NULL, NULL }
};

static const struct fota_cli_opt o_product[] = {
    { "product", 'p', "P", "product id or name (required)" },
    { NULL, 0, NULL, NULL }
};

static const struct fota_cli_opt o_release_download[] = {
    { "product", 'p', "P", "product id or name (required)" },
    { "output", 'o', "FILE", "write to FILE (default: the file's name in this directory)" },
    { NULL, 0, NULL, NULL }
};

static const struct fota_cli_opt o_device_commands[] = {
    { "product", 'p', "P", "look the device name up in this product only" },
    { "count", 'n', "N", "at most N commands (default 50)" },
    { NULL, 0, NULL, NULL }
};

static const struct fota_cli_opt o_device_add[] = {
    { "product", 'p', "P", "product id or name (required)" },
    { "bssid", 0, "MAC", "the device's station MAC (aa:bb:cc:dd:ee:ff)" },
    { NULL, 0, NULL, NULL }
};

static const struct fota_cli_opt o_device_list[] = {
    { "product", 'p', "P", "only this product (id or name); default: every product" },
    { "tag", 't', "T[,T...]", "only devices carrying every one of these tags" },
    { "version", 'v', "V[,V...]", "only devices on one of these versions" },
    { "online", 0, NULL, "only devices online now" },
    { "offline", 0, NULL, "only devices not online now" },
    { "search", 's', "TEXT", "only devices whose name, MAC or chip id holds TEXT" },
    { "name", 0, "NAME", "only devices called NAME" },
    { "checkin-before", 0, "WHEN", "only devices not seen since WHEN (Unix seconds, or 30m, "
                                   "12h, 7d ago)" },
    { "checkin-after", 0, "WHEN", "only devices seen since WHEN (Unix seconds, or 30m, 12h, "
                                  "7d ago)" },
    { "sort", 0, "KEY", "id (default), name, version, last_active, created; -KEY descending" },
    { "limit", 'n', "N", "devices per page, 1..1000 (default 50; with --all 1000)" },
    { "cursor", 0, "C", "the page after the one that printed this cursor" },
    { "all", 'a', NULL, "every page: every device that matches" },
    { NULL, 0, NULL, NULL }
};

static const struct fota_cli_opt o_rollout_list[] = {
    { "product", 'p', "P", "only this product (id or name); default: every product" },
    { NULL, 0, NULL, NULL }
};

static const struct fota_cli_opt o_device_ref[] = {
    { "product", 'p', "P", "look the device name up in this product only" },
    { NULL, 0, NULL, NULL }
};

static const struct fota_cli_opt o_device_key[] = {
    { "bin", 0, NULL, "write the flash-ready 4 KiB key sector (master_device_key.bin)" },
    { "output", 'o', "FILE", "write to FILE instead of standard output" },
    { "product", 'p', "P", "look the device name up in this product only" },
    { NULL, 0, NULL, NULL }
};

static const struct fota_cli_opt o_upgrade[] = {
    { "version", 'v', "V", "version to install (required)" },
    { "force", 0, NULL, "also when the device runs V already (else the server refuses)" },
    { "wait", 'w', NULL, "wait for the device's report (success: exit 0; failure: exit 1)" },
    { "timeout", 0, "S", "with --wait: give up after S seconds (default 300)" },
    { "product", 'p', "P", "look the device name up in this product only" },
    { NULL, 0, NULL, NULL }
};

static const struct fota_cli_opt o_messages[] = {
    { "product", 'p', "P", "only messages of this product (id or name)" },
    { "device", 'd', "D", "only messages of this device (id or name)" },
    { "follow", 'f', NULL, "keep printing new messages as they arrive, like tail -f" },
    { "count", 'n', "N", "with --follow: exit after N messages; else: list at most N" },
    { "after", 0, "ID", "with --follow: first replay the messages newer than message ID" },
    { NULL, 0, NULL, NULL }
};

static const struct fota_cli_opt o_rollout_start[] = {
    { "product", 'p', "P", "product id or name (required)" },
    { "version", 'v', "V", "release to install (required)" },
    { "from", 0, "V[,V...]", "only devices now on one of these versions" },
    { "online", 0, NULL, "only devices connected now" },
    { "offline", 0, NULL, "only devices not connected now (they get it when they connect)" },
    { "devices", 0, "ID[,ID...]", "only these device ids" },
    { "tag", 't', "T[,T...]", "only devices carrying every one of these tags" },
    { "reboot", 0, NULL, "reboot each device into the new version once it reports success" },
    { "window", 0, "N", "at most N devices of the product upgrading at once (server default 512)" },
    { "timeout", 0, "S", "a device that has not reported S seconds after its push has timed out "
                         "(default 600)" },
    { "max-failures", 0, "N", "pause the rollout once more than N devices of a stage failed or "
                              "timed out" },
    { "stages", 0, "LIST", "stages, comma-separated: N% (up to N % of the devices), N (N more) or "
                           "@ID+ID (those devices); each waits for the one before" },
    { "success", 0, "P", "with --stages: % of a stage's devices upgraded before the next (100)" },
    { "approval", 0, NULL, "every stage after the first waits for `rollout approve`" },
    { "health", 0, "S", "a device counts as upgraded once it stayed healthy S seconds after its "
                        "report" },
    { "max-reboots", 0, "N", "boots allowed in the health time beyond the rollout's reboot (1)" },
    { "hours", 0, "HH:MM-HH:MM", "push only within these hours of the day (UTC)" },
    { "wait", 'w', NULL, "follow the rollout until every device reported (exit 0: all upgraded)" },
    { "wait-timeout", 0, "S", "with --wait: stop following after S seconds (default 3600)" },
    { NULL, 0, NULL, NULL }
};

static const struct fota_cli_opt o_backup[] = {
    { "no-progress", 0, NULL, "no progress bar even on a terminal" },
    { NULL, 0, NULL, NULL }
};

static const struct fota_cli_opt o_rollout_rollback[] = {
    { "upgraded", 0, NULL, "every device that reported success, not only the failed ones" },
    { "window", 0, "N", "at most N devices upgrading at once (default: the rollout's)" },
    { "reboot", 0, NULL, "reboot each device once it reports (default: as the rollout did)" },
    { NULL, 0, NULL, NULL }
};

static const struct fota_cli_opt o_rollout_show[] = {
    { "wait", 'w', NULL, "follow the rollout until every device reported (exit 0: all upgraded)" },
    { "wait-timeout", 0, "S", "with --wait: stop following after S seconds (default 3600)" },
    { NULL, 0, NULL, NULL }
};

const struct fota_cli_command fota_cli_commands[] = {
    { "login", NULL, "--server URL --key KEY [--cacert FILE]",
      "check and store the server and key in ~/.config/fota/config (0600)",
      o_login, 0, 0, FOTA_CLI_CMD_SERVER | FOTA_CLI_CMD_LOGIN, fota_cli_cmd_login },
    { "product", "create", "NAME", "create a product",
      o_product_create, 1, 1, FOTA_CLI_CMD_SERVER, fota_cli_cmd_product_create },
    { "product", "list", "", "list products with their current version and device counts",
      o_none, 0, 0, FOTA_CLI_CMD_SERVER, fota_cli_cmd_product_list },
    { "product", "show", "PRODUCT", "show one product (id or name)",
      o_none, 1, 1, FOTA_CLI_CMD_SERVER, fota_cli_cmd_product_show },
    { "product", "delete", "PRODUCT",
      "delete a product that has no devices and no releases left",
      o_none, 1, 1, FOTA_CLI_CMD_SERVER, fota_cli_cmd_product_delete },
    { "product", "arduino", "PRODUCT [--gzip|--no-gzip] [--signing-key FILE] ...",
      "show an arduino product's fleet settings, or change the ones given",
      o_product_arduino, 1, 1, FOTA_CLI_CMD_SERVER, fota_cli_cmd_product_arduino },
    { "product", "mqtt", "PRODUCT [--url URL] [--username NAME] [--password-file FILE]",
      "show an arduino product's MQTT broker (Tasmota), its connection and devices, or set it",
      o_product_mqtt, 1, 1, FOTA_CLI_CMD_SERVER, fota_cli_cmd_product_mqtt },
    { "release", "publish", "--product P --version V USER1.BIN USER2.BIN [FILE...]",
      "check the images locally, then upload them as a new release (arduino: FIRMWARE.BIN "
      "[FIRMWARE-MINIMAL.BIN])",
      o_publish, 1, 10, FOTA_CLI_CMD_SERVER, fota_cli_cmd_release_publish },
    { "release", "sign", "--key PRIVATE.PEM IN OUT",
      "append the Arduino core's signature trailer to IN (what openssl dgst -sha256 -sign "
      "and signing.py write); local",
      o_release_sign, 2, 2, FOTA_CLI_CMD_LOCAL, fota_cli_cmd_release_sign },
    { "release", "list", "--product P", "list a product's releases, newest first",
      o_product, 0, 0, FOTA_CLI_CMD_SERVER, fota_cli_cmd_release_list },
    { "release", "current", "--product P [VERSION]",
      "show the current release, or make VERSION current (devices get an update message)",
      o_product, 0, 1, FOTA_CLI_CMD_SERVER, fota_cli_cmd_release_current },
    { "release", "show", "--product P VERSION", "show one release with its files and hashes",
      o_product, 1, 1, FOTA_CLI_CMD_SERVER, fota_cli_cmd_release_show },
    { "release", "download", "--product P VERSION FILE [-o OUT]",
      "download a stored file of a release, checked against its SHA-256",
      o_release_download, 2, 2, FOTA_CLI_CMD_SERVER, fota_cli_cmd_release_download },
    { "release", "delete", "--product P VERSION",
      "delete a release and the stored files no other release uses (not the current one "
      "while the product has devices)",
      o_product, 1, 2, FOTA_CLI_CMD_SERVER, fota_cli_cmd_release_delete },
    { "device", "add", "--product P NAME", "add a device; prints its master and owner keys",
      o_device_add, 1, 1, FOTA_CLI_CMD_SERVER, fota_cli_cmd_device_add },
    { "device", "list", "[--product P] [--tag T] [--version V] [--online|--offline] "
      "[--sort KEY] [--limit N] [--all]",
      "list devices a page at a time, sorted, searched and filtered (--all: every page)",
      o_device_list, 0, 0, FOTA_CLI_CMD_SERVER, fota_cli_cmd_device_list },
    { "device", "show", "DEVICE", "show one device (id or name)",
      o_device_ref, 1, 1, FOTA_CLI_CMD_SERVER, fota_cli_cmd_device_show },
    { "device", "key", "DEVICE [--bin] [-o FILE]",
      "print the master device key, or write the flash-ready key sector with --bin",
      o_device_key, 1, 1, FOTA_CLI_CMD_SERVER, fota_cli_cmd_device_key },
    { "device", "commands", "DEVICE", "the commands sent to a device and their state, newest first",
      o_device_commands, 1, 1, FOTA_CLI_CMD_SERVER, fota_cli_cmd_device_commands },
    { "device", "tag", "DEVICE add|remove|set|list [TAG...]",
      "a device's tags: add or remove some, set exactly these, or list them",
      o_device_ref, 2, -1, FOTA_CLI_CMD_SERVER, fota_cli_cmd_device_tag },
    { "device", "command", "cancel DEVICE COMMAND_ID",
      "cancel a command still queued for a device (see device commands)",
      o_device_ref, 3, 3, FOTA_CLI_CMD_SERVER, fota_cli_cmd_device_command },
    { "device", "rotate-keys", "DEVICE",
      "new master and owner keys (the old ones stop working; re-flash the key sector)",
      o_device_ref, 1, 1, FOTA_CLI_CMD_SERVER, fota_cli_cmd_device_rotate_keys },
    { "device", "delete", "DEVICE",
      "delete a device: its keys stop working and its connection is closed",
      o_device_ref, 1, 1, FOTA_CLI_CMD_SERVER, fota_cli_cmd_device_delete },
    { "rollout", "start",
      "--product P --version V [--from V] [--online] [--reboot] [--stages LIST] [--wait]",
      "upgrade every device of a product that matches (a bulk upgrade; the server paces it)",
      o_rollout_start, 0, 0, FOTA_CLI_CMD_SERVER, fota_cli_cmd_rollout_start },
    { "rollout", "list", "[--product P]", "list rollouts with their progress, newest first",
      o_rollout_list, 0, 0, FOTA_CLI_CMD_SERVER, fota_cli_cmd_rollout_list },
    { "rollout", "show", "ID [--wait]", "show one rollout's counters, or follow it with --wait",
      o_rollout_show, 1, 1, FOTA_CLI_CMD_SERVER, fota_cli_cmd_rollout_show },
    { "rollout", "cancel", "ID",
      "stop a rollout: devices not pushed yet are dropped, pushed ones finish",
      o_none, 1, 1, FOTA_CLI_CMD_SERVER, fota_cli_cmd_rollout_cancel },
    { "rollout", "approve", "ID", "start a rollout's next stage (the one awaiting approval)",
      o_none, 1, 1, FOTA_CLI_CMD_SERVER, fota_cli_cmd_rollout_approve },
    { "rollout", "pause", "ID", "hold a rollout: nothing new is pushed, pushed devices finish",
      o_none, 1, 1, FOTA_CLI_CMD_SERVER, fota_cli_cmd_rollout_pause },
    { "rollout", "resume", "ID", "go on with a paused rollout (a stage it paused in is accepted)",
      o_none, 1, 1, FOTA_CLI_CMD_SERVER, fota_cli_cmd_rollout_resume },
    { "rollout", "rollback", "ID [--upgraded]",
      "put a rollout's failed (or all upgraded) devices back on the version each ran before",
      o_rollout_rollback, 1, 1, FOTA_CLI_CMD_SERVER, fota_cli_cmd_rollout_rollback },
    { "upgrade", NULL, "DEVICE --version V [--force] [--wait [--timeout S]]",
      "tell a device to download and install version V (queued while it is offline)",
      o_upgrade, 1, 1, FOTA_CLI_CMD_SERVER, fota_cli_cmd_rpc_upgrade },
    { "reboot", NULL, "DEVICE", "tell a device to reboot into its other slot",
      o_device_ref, 1, 1, FOTA_CLI_CMD_SERVER, fota_cli_cmd_rpc_reboot },
    { "rpc", NULL, "DEVICE ACTION [KEY=VALUE...]", "send any action to a device",
      o_device_ref, 2, -1, FOTA_CLI_CMD_SERVER, fota_cli_cmd_rpc_action },
    { "messages", NULL, "[--product P] [--device D] [--follow [--count N]]",
      "list device and release messages, newest last; --follow streams new ones",
      o_messages, 0, 0, FOTA_CLI_CMD_SERVER, fota_cli_cmd_messages },
    { "backup", NULL, "FILE|-",
      "save the server's online backup (database, firmware, keys) to FILE, verified",
      o_backup, 1, 1, FOTA_CLI_CMD_SERVER, fota_cli_cmd_backup },
    { NULL, NULL, NULL, NULL, NULL, 0, 0, 0, NULL }
};
