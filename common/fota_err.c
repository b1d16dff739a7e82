/* fota_err.c - messages and names for the FOTA_E* codes of fota_err.h. */
#include "fota_err.h"

const char *fota_strerror(int err)
{
    switch (err) {
    case FOTA_OK: return "success";
#define FOTA_ERR_MSG_(name, val, msg) case FOTA_##name: return msg;
    FOTA_ERRNO_MAP(FOTA_ERR_MSG_)
#undef FOTA_ERR_MSG_
    default: return "unknown error";
    }
}

const char *fota_errname(int err)
{
    switch (err) {
    case FOTA_OK: return "OK";
#define FOTA_ERR_NAME_(name, val, msg) case FOTA_##name: return #name;
    FOTA_ERRNO_MAP(FOTA_ERR_NAME_)
#undef FOTA_ERR_NAME_
    default: return "EUNKNOWN";
    }
}
