/*
 * drsn_error.c: status sentences and error reporting.
 */
#include "drsn_internal.h"

#include <stdarg.h>
#include <stdio.h>

const char *drsn_strerror(drsn_status status)
{
  switch (status) {
  case DRSN_OK:
    return "The call succeeded.";
  case DRSN_ERR_INVALID_ARGUMENT:
    return "An argument was NULL or out of range.";
  case DRSN_ERR_SAMPLE_RATE:
    return "The sample rate is outside 8000 to 192000 Hz.";
  case DRSN_ERR_CHANNELS:
    return "The channel count is outside 1 to 8.";
  case DRSN_ERR_NO_MEMORY:
    return "Memory could not be allocated.";
  case DRSN_ERR_FFT_PLAN:
    return "FFTW could not make a transform plan.";
  case DRSN_ERR_MODEL_IO:
    return "The model file could not be opened or read.";
  case DRSN_ERR_MODEL_MAGIC:
    return "The data is not a drsn model (wrong magic bytes).";
  case DRSN_ERR_MODEL_VERSION:
    return "The model format version is not supported.";
  case DRSN_ERR_MODEL_TRUNCATED:
    return "The model data ends before the model does.";
  case DRSN_ERR_MODEL_CHECKSUM:
    return "The model's CRC-32 does not match its contents.";
  case DRSN_ERR_MODEL_HEADER:
    return "A model header field is out of range.";
  case DRSN_ERR_MODEL_TENSOR:
    return "A model tensor is missing, unknown, duplicated, misshapen or "
           "not finite.";
  }
  return "Unknown status code.";
}

drsn_status drsn_error_set(drsn_error *err, drsn_status status,
                           const char *format, ...)
{
  if (err) {
    err->status = status;
    if (format) {
      va_list args;
      va_start(args, format);
      vsnprintf(err->message, sizeof err->message, format, args);
      va_end(args);
    } else {
      snprintf(err->message, sizeof err->message, "%s",
               drsn_strerror(status));
    }
  }
  return status;
}
