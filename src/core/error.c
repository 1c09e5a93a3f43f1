#include "core/error.h"

#include <stdarg.h>
#include <stdio.h>

effnet_status en_fail(effnet_error *err, effnet_status status, const char *fmt, ...) {
  if (err) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
  }
  return status;
}

const char *effnet_status_name(effnet_status status) {
  switch (status) {
    case EFFNET_OK: return "ok";
    case EFFNET_E_ARGUMENT: return "argument";
    case EFFNET_E_IO: return "io";
    case EFFNET_E_FORMAT: return "format";
    case EFFNET_E_SHAPE: return "shape";
    case EFFNET_E_MISSING: return "missing";
    case EFFNET_E_NOMEM: return "nomem";
    case EFFNET_E_UNSUPPORTED: return "unsupported";
    case EFFNET_E_LIMIT: return "limit";
    case EFFNET_E_NUMERIC: return "numeric";
  }
  return "unknown";
}
