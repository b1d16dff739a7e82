/* file.c - reading and writing fotactl's local files: bounded whole-file
 * reads (images, change logs) and private atomic writes (keys). */
#include "file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "cli.h"
#include "fota_str.h"
#include "out.h"

int fota_cli_file_read(const char *path, size_t max, uint8_t **data, size_t *len)
{
    struct stat st;
    uint8_t *buf = NULL;
    size_t got = 0;
    ssize_t n;
    int fd, rc = 0;
    char why[128];

    *data = NULL;
    *len = 0;
    fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        goto fail;
    if (fstat(fd, &st) < 0)
        goto fail;
    if (!S_ISREG(st.st_mode)) {
        close(fd);
        return fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "cannot read %s (not a regular file)", path);
    }
    if ((uint64_t)st.st_size > max) {
        close(fd);
        return fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "cannot read %s (larger than %zu bytes)", path,
                                 max);
    }
    buf = malloc((size_t)st.st_size + 1);
    if (!buf)
        goto fail;
    while (got < (size_t)st.st_size) {
        n = read(fd, buf + got, (size_t)st.st_size - got);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0)
            goto fail;
        got += (size_t)n;
    }
    buf[got] = 0;
    close(fd);
    *data = buf;
    *len = got;
    return 0;
fail:
    fota_str_copy(why, sizeof(why), strerror(errno ? errno : EIO));
    if (why[0] >= 'A' && why[0] <= 'Z' && !(why[1] >= 'A' && why[1] <= 'Z'))
        why[0] = (char)(why[0] - 'A' + 'a');
    rc = fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "cannot read %s (%s)", path, why);
    if (fd >= 0)
        close(fd);
    free(buf);
    return rc;
}

int fota_cli_file_write_private(const char *path, const void *data, size_t len)
{
    char tmp[4096];
    const char *p = data;
    ssize_t n;
    int fd, e = 0;

    if (snprintf(tmp, sizeof(tmp), "%s.tmp%ld", path, (long)getpid()) >= (int)sizeof(tmp))
        return fota_cli_out_fail(FOTA_CLI_EXIT_USAGE, "the output path is too long");
    fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
    if (fd < 0)
        return fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "cannot write %s (%s)", path, strerror(errno));
    while (len > 0) {
        n = write(fd, p, len);
        if (n < 0 && errno == EINTR)
            continue;
        if (n <= 0) {
            e = n < 0 ? errno : EIO;
            break;
        }
        p += n;
        len -= (size_t)n;
    }
    if (len == 0 && fsync(fd) < 0)
        e = errno;
    if (close(fd) < 0 && !e)
        e = errno;
    if (!e && rename(tmp, path) < 0)
        e = errno;
    if (e) {
        unlink(tmp);
        return fota_cli_out_fail(FOTA_CLI_EXIT_FAIL, "cannot write %s (%s)", path, strerror(e));
    }
    return 0;
}
