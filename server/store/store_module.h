/* store_module.h - the store module (server.h's struct fota_module): the
 * retention of messages and legacy transfers and the disk reserve, with
 * their settings (message_retention_*, transfer_retention_*,
 * retention_interval, disk_reserve). docs/store.md, "Retention" and "A full
 * disk". */
#ifndef FOTA_STORE_MODULE_H
#define FOTA_STORE_MODULE_H

#include "server.h"

/* The module, first in main.c's table. */
extern const struct fota_module fota_store_module;

#endif
