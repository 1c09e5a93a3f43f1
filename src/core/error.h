/* Error-message helpers shared by every module. */
#ifndef EN_ERROR_H
#define EN_ERROR_H

#include "effnet.h"

/* Format a message into err (if err is non-NULL) and return status, so a failure path is one
 * line: `return en_fail(err, EFFNET_E_IO, "%s: cannot open", path);` */
effnet_status en_fail(effnet_error *err, effnet_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
