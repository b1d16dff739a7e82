/* fota_err.h - the one error enum shared by every fota module.
 *
 * Functions return int: 0 on success, a negative FOTA_E* on failure.
 * Parsers are tri-state: bytes consumed (>= 0), FOTA_EAGAIN (need more
 * input), or another negative code (bad input). Portable C99, no OS code. */
#ifndef FOTA_ERR_H
#define FOTA_ERR_H

#ifdef __cplusplus
extern "C" {
#endif

#define FOTA_ERRNO_MAP(X)                                              \
    X(EAGAIN,    -1,  "need more input")                               \
    X(EINVAL,    -2,  "invalid argument or input")                     \
    X(ENOMEM,    -3,  "out of memory")                                 \
    X(ENOENT,    -4,  "not found")                                     \
    X(EEXIST,    -5,  "already exists")                                \
    X(EIO,       -6,  "input/output error")                            \
    X(ETOOBIG,   -7,  "too large")                                     \
    X(EPROTO,    -8,  "protocol error")                                \
    X(EAUTH,     -9,  "authentication failed")                         \
    X(EPERM,     -10, "not permitted")                                 \
    X(ETIMEDOUT, -11, "timed out")                                     \
    X(ECRC,      -12, "CRC mismatch")                                  \
    X(EMAGIC,    -13, "bad image magic")                               \
    X(ESLOT,     -14, "wrong slot")                                    \
    X(ECLOSED,   -15, "connection closed")                             \
    X(ERANGE,    -16, "out of range")                                  \
    X(EBUSY,     -17, "busy")                                          \
    X(ECHECKSUM, -18, "image checksum mismatch")                       \
    X(ETRUNC,    -19, "truncated")                                     \
    X(ECONFIG,   -20, "bad configuration")                             \
    X(ENOSPC,    -21, "no space left on device")                       \
    X(EUNAVAIL,  -22, "store unavailable")                             \
    X(ENOTSUP,   -23, "not supported")

enum fota_err {
    FOTA_OK = 0,
#define FOTA_ERR_ENUM_(name, val, msg) FOTA_##name = (val),
    FOTA_ERRNO_MAP(FOTA_ERR_ENUM_)
#undef FOTA_ERR_ENUM_
    FOTA_ERR_MIN_ = -24
};

/* Returns a static, human-readable message for an error code (never NULL). */
const char *fota_strerror(int err);
/* Returns the symbolic name ("EINVAL") of an error code (never NULL). */
const char *fota_errname(int err);

/* Log levels shared by the daemon and every library's log callback. */
enum fota_log_level { FOTA_LOG_DEBUG = 0, FOTA_LOG_INFO, FOTA_LOG_WARN, FOTA_LOG_ERROR };

/* Libraries never print: they call this with a finished message line. */
typedef void (*fota_log_cb)(void *ud, int level, const char *msg);

#ifdef __cplusplus
}
#endif

#endif
