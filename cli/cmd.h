/* cmd.h - fotactl's command handlers, one file per group (cli/cmd_*.c),
 * named in the command table (cli/commands.c). A REST handler takes the
 * running command (cli/ctx.h) and returns the exit status (cli/cli.h);
 * it depends on the shared helpers below it, never on the table or the
 * dispatcher. */
#ifndef FOTA_CLI_CMD_H
#define FOTA_CLI_CMD_H

#include "ctx.h"

/* cmd_login.c */
int fota_cli_cmd_login(struct fota_cli_ctx *c);

/* cmd_product.c */
int fota_cli_cmd_product_create(struct fota_cli_ctx *c);
int fota_cli_cmd_product_list(struct fota_cli_ctx *c);
int fota_cli_cmd_product_show(struct fota_cli_ctx *c);
int fota_cli_cmd_product_delete(struct fota_cli_ctx *c);
int fota_cli_cmd_product_arduino(struct fota_cli_ctx *c);
int fota_cli_cmd_product_mqtt(struct fota_cli_ctx *c);

/* cmd_release.c */
int fota_cli_cmd_release_publish(struct fota_cli_ctx *c);
int fota_cli_cmd_release_list(struct fota_cli_ctx *c);
int fota_cli_cmd_release_current(struct fota_cli_ctx *c);
int fota_cli_cmd_release_show(struct fota_cli_ctx *c);
int fota_cli_cmd_release_download(struct fota_cli_ctx *c);
int fota_cli_cmd_release_delete(struct fota_cli_ctx *c);

/* cmd_sign.c: local, no server */
int fota_cli_cmd_release_sign(struct fota_cli_ctx *c);

/* cmd_device.c */
int fota_cli_cmd_device_add(struct fota_cli_ctx *c);
int fota_cli_cmd_device_list(struct fota_cli_ctx *c);
int fota_cli_cmd_device_show(struct fota_cli_ctx *c);
int fota_cli_cmd_device_key(struct fota_cli_ctx *c);
int fota_cli_cmd_device_commands(struct fota_cli_ctx *c);
int fota_cli_cmd_device_tag(struct fota_cli_ctx *c);
int fota_cli_cmd_device_command(struct fota_cli_ctx *c);
int fota_cli_cmd_device_rotate_keys(struct fota_cli_ctx *c);
int fota_cli_cmd_device_delete(struct fota_cli_ctx *c);

/* cmd_rpc.c: commands sent to one device */
int fota_cli_cmd_rpc_upgrade(struct fota_cli_ctx *c);
int fota_cli_cmd_rpc_reboot(struct fota_cli_ctx *c);
int fota_cli_cmd_rpc_action(struct fota_cli_ctx *c);

/* cmd_rollout.c */
int fota_cli_cmd_rollout_start(struct fota_cli_ctx *c);
int fota_cli_cmd_rollout_list(struct fota_cli_ctx *c);
int fota_cli_cmd_rollout_show(struct fota_cli_ctx *c);
int fota_cli_cmd_rollout_cancel(struct fota_cli_ctx *c);
int fota_cli_cmd_rollout_approve(struct fota_cli_ctx *c);
int fota_cli_cmd_rollout_pause(struct fota_cli_ctx *c);
int fota_cli_cmd_rollout_resume(struct fota_cli_ctx *c);
int fota_cli_cmd_rollout_rollback(struct fota_cli_ctx *c);

/* cmd_backup.c */
int fota_cli_cmd_backup(struct fota_cli_ctx *c);

/* cmd_messages.c */
int fota_cli_cmd_messages(struct fota_cli_ctx *c);

/* cmd_image.c: `fotactl image info|make|check ...`, local only (no server,
 * not in the REST table). argv[0] is "image"; returns the exit status: 0 ok,
 * 1 a file or image failed, 2 bad command line. */
int fota_cli_cmd_image(int argc, char **argv);

/* The image commands' lines for the overall help ("  image info ...\n"). */
extern const char fota_cli_cmd_image_help[];

#endif
