/*
 * test_model.c: model loader acceptance and rejection.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "drsn_internal.h"
#include "model_writer.h"

#define NAME "unit-test.drsn"

static drsn_status load(const unsigned char *data, size_t size,
                        drsn_error *err)
{
  drsn_model *m = (drsn_model *)0x1;
  drsn_status s = drsn_model_load_memory(data, size, NAME, &m, err);
  if (s == DRSN_OK) {
    assert_non_null(m);
    drsn_model_free(m);
  } else {
    assert_null(m);
  }
  return s;
}

/** Builds a default-shaped model with faults and expects status. */
static void expect_fault(const mw_faults *faults, drsn_status expected,
                         const char *needle)
{
  mw_spec spec;
  mw_small_spec(&spec);
  unsigned char *data;
  size_t size;
  assert_int_equal(mw_build(&spec, faults, &data, &size), 0);
  drsn_error err;
  memset(&err, 0, sizeof err);
  const drsn_status s = load(data, size, &err);
  if (s != expected || !strstr(err.message, NAME) ||
      (needle && !strstr(err.message, needle)))
    print_error("status %d (want %d), message: %s\n", s, expected,
                err.message);
  assert_int_equal(s, expected);
  assert_int_equal(err.status, expected);
  assert_non_null(strstr(err.message, NAME));
  if (needle)
    assert_non_null(strstr(err.message, needle));
  free(data);
}

static void test_valid_models_load(void **state)
{
  (void)state;
  mw_spec spec;
  unsigned char *data;
  size_t size;
  drsn_error err;

  mw_default_spec(&spec);
  assert_int_equal(mw_build(&spec, NULL, &data, &size), 0);
  drsn_model *m = NULL;
  assert_int_equal(drsn_model_load_memory(data, size, NAME, &m, &err),
                   DRSN_OK);
  assert_int_equal(err.status, DRSN_OK);
  assert_int_equal(drsn_model_rate_hz(m), 48000);
  assert_int_equal(m->band_count, 32);
  assert_int_equal(m->blocks[3].dilation, 8);

  /* design.md: about 304 k MACs per frame, 30.4 M per second. */
  const double per_frame = 2 * 16.0 * 2 * 3 * 32 +
                           4 * (16.0 * 16 * 2 * 3 * 32 + 16.0 * 16 * 3 * 32 +
                                2 * 16 * 16) +
                           16 * 32 + 16;
  assert_true(fabs(drsn_model_macs_per_frame(m) - per_frame) < 0.5);
  assert_true(fabs(drsn_model_macs_per_second(m) - per_frame * 100) < 1.0);
  assert_true(per_frame > 280e3 && per_frame < 320e3);

  /* The data is copied: freeing the buffer leaves the model usable. */
  const float first = m->stem_weight[0];
  memset(data, 0, size);
  assert_true(m->stem_weight[0] == first);
  drsn_model_free(m);
  free(data);

  /* Any tensor order is accepted and gives the same weights. */
  mw_faults reversed = {.reverse_order = 1};
  assert_int_equal(mw_build(&spec, &reversed, &data, &size), 0);
  assert_int_equal(drsn_model_load_memory(data, size, NAME, &m, &err),
                   DRSN_OK);
  assert_true(m->stem_weight[0] == first);
  drsn_model_free(m);
  free(data);

  /* Zero blocks is a valid model. */
  spec.block_count = 0;
  assert_int_equal(mw_build(&spec, NULL, &data, &size), 0);
  assert_int_equal(load(data, size, &err), DRSN_OK);
  free(data);
}

static void test_default_model_loads(void **state)
{
  (void)state;
  drsn_model *m = NULL;
  drsn_error err;
  assert_int_equal(drsn_model_load_default(&m, &err), DRSN_OK);
  assert_non_null(m);
  assert_int_equal(drsn_model_rate_hz(m), 48000);
  assert_true(drsn_model_macs_per_second(m) > 1e6);
  drsn_model_free(m);
}

/* Every built-in model loads, stays within 40 M MAC/s and has the latency
 * its name promises at 48 kHz. */
static void test_builtin_models(void **state)
{
  (void)state;
  const char *const *names = drsn_model_builtin_names();
  assert_string_equal(names[0], "default");
  assert_string_equal(names[1], "low-latency");
  assert_null(names[2]);
  assert_int_equal(drsn_model_is_builtin("default"), 1);
  assert_int_equal(drsn_model_is_builtin("low-latency"), 1);
  assert_int_equal(drsn_model_is_builtin("./default"), 0);
  assert_int_equal(drsn_model_is_builtin(NULL), 0);

  const uint32_t max_latency[] = {960, 480};
  for (size_t i = 0; names[i]; i++) {
    drsn_model *m = NULL;
    drsn_error err;
    assert_int_equal(drsn_model_load_builtin(names[i], &m, &err), DRSN_OK);
    assert_true(drsn_model_macs_per_second(m) <= 40e6);
    drsn_engine *e = NULL;
    assert_int_equal(drsn_engine_create(m, 48000, 1, &e, &err), DRSN_OK);
    assert_true(drsn_engine_latency_samples(e) <= max_latency[i]);
    drsn_engine_destroy(e);
    drsn_model_free(m);
  }

  drsn_model *m = (drsn_model *)&m;
  drsn_error err;
  assert_int_equal(drsn_model_load_builtin("fast", &m, &err),
                   DRSN_ERR_INVALID_ARGUMENT);
  assert_null(m);
  assert_non_null(strstr(err.message, "'fast'"));
  assert_non_null(strstr(err.message, "'low-latency'"));
  assert_int_equal(drsn_model_load_builtin(NULL, &m, &err),
                   DRSN_ERR_INVALID_ARGUMENT);
}

static void test_load_file(void **state)
{
  (void)state;
  mw_spec spec;
  mw_small_spec(&spec);
  unsigned char *data;
  size_t size;
  assert_int_equal(mw_build(&spec, NULL, &data, &size), 0);

  char path[] = "/tmp/drsn-test-model-XXXXXX";
  const int fd = mkstemp(path);
  assert_true(fd >= 0);
  FILE *f = fdopen(fd, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, size, f), size);
  fclose(f);

  drsn_model *m = NULL;
  drsn_error err;
  assert_int_equal(drsn_model_load_file(path, &m, &err), DRSN_OK);
  drsn_model_free(m);

  /* A short file names the path in its message. */
  f = fopen(path, "wb");
  assert_non_null(f);
  assert_int_equal(fwrite(data, 1, size / 2, f), size / 2);
  fclose(f);
  assert_int_equal(drsn_model_load_file(path, &m, &err),
                   DRSN_ERR_MODEL_TRUNCATED);
  assert_null(m);
  assert_non_null(strstr(err.message, path));
  remove(path);

  assert_int_equal(drsn_model_load_file(path, &m, &err), DRSN_ERR_MODEL_IO);
  assert_non_null(strstr(err.message, path));
  assert_int_equal(drsn_model_load_file(NULL, &m, &err),
                   DRSN_ERR_INVALID_ARGUMENT);
  free(data);
}

/* A FIFO with no writer, a directory and a device must fail at once: a
 * blocking open or an endless read would hang a host's worker thread. */
static void test_load_special_files(void **state)
{
  (void)state;
  char dir[] = "/tmp/drsn-test-special-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char fifo[sizeof dir + 16];
  snprintf(fifo, sizeof fifo, "%s/model.fifo", dir);
  assert_int_equal(mkfifo(fifo, 0600), 0);

  static const struct {
    int which; /* 0 the FIFO, 1 the directory, 2 /dev/zero */
    const char *needle;
  } cases[] = {
      {0, "not a regular file"}, {1, "is a directory"}, {2, "not a regular file"}};
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const char *path = cases[i].which == 0 ? fifo
                       : cases[i].which == 1 ? dir
                                             : "/dev/zero";
    drsn_model *m = NULL;
    drsn_error err;
    assert_int_equal(drsn_model_load_file(path, &m, &err), DRSN_ERR_MODEL_IO);
    assert_null(m);
    assert_non_null(strstr(err.message, path));
    assert_non_null(strstr(err.message, cases[i].needle));
  }

  remove(fifo);
  rmdir(dir);
}

static void test_truncated_everywhere(void **state)
{
  (void)state;
  mw_spec spec;
  mw_small_spec(&spec);
  unsigned char *data;
  size_t size;
  assert_int_equal(mw_build(&spec, NULL, &data, &size), 0);

  /* Every cut point up to 200 bytes, then a stride, then the last bytes. */
  for (size_t cut = 0; cut < size; cut += cut < 200 ? 1 : 37) {
    drsn_error err;
    memset(&err, 0, sizeof err);
    unsigned char *copy = malloc(cut ? cut : 1);
    assert_non_null(copy);
    memcpy(copy, data, cut);
    const drsn_status s = load(copy, cut, &err);
    if (s != DRSN_ERR_MODEL_TRUNCATED)
      print_error("cut at %zu of %zu: %s\n", cut, size, err.message);
    assert_int_equal(s, DRSN_ERR_MODEL_TRUNCATED);
    assert_non_null(strstr(err.message, NAME));
    free(copy);
  }
  for (size_t cut = size - 12; cut < size; cut++) {
    drsn_error err;
    assert_int_equal(load(data, cut, &err), DRSN_ERR_MODEL_TRUNCATED);
    assert_non_null(strstr(err.message, NAME));
  }
  free(data);
}

/** Loads data and expects status with needle in the message. */
static void expect_load(const unsigned char *data, size_t size,
                        drsn_status expected, const char *needle)
{
  drsn_error err;
  memset(&err, 0, sizeof err);
  const drsn_status s = load(data, size, &err);
  if (s != expected || !strstr(err.message, needle))
    print_error("status %d (want %d), message: %s\n", s, expected,
                err.message);
  assert_int_equal(s, expected);
  assert_non_null(strstr(err.message, NAME));
  assert_non_null(strstr(err.message, needle));
}

/* Format version 2: the recurrent_hidden field and the GRU tensors. */
static void test_recurrent_model(void **state)
{
  (void)state;
  mw_spec spec;
  unsigned char *data;
  size_t size;
  drsn_error err;
  drsn_model *m = NULL;

  mw_default_spec(&spec);
  spec.recurrent_hidden = 80;
  assert_int_equal(mw_build(&spec, NULL, &data, &size), 0);
  assert_int_equal(drsn_model_load_memory(data, size, NAME, &m, &err),
                   DRSN_OK);
  assert_int_equal(m->recurrent_hidden, 80);
  /* design.md: C*B*R + 6*R^2 + R*B on top of the version 1 count. */
  const double base = 2 * 16.0 * 2 * 3 * 32 +
                      4 * (16.0 * 16 * 2 * 3 * 32 + 16.0 * 16 * 3 * 32 +
                           2 * 16 * 16) +
                      16 * 32 + 16;
  const double extra = 16.0 * 32 * 80 + 6.0 * 80 * 80 + 80.0 * 32;
  assert_true(fabs(drsn_model_macs_per_frame(m) - (base + extra)) < 0.5);
  assert_true(drsn_model_macs_per_second(m) < 40e6);
  drsn_model_free(m);

  /* Cut anywhere, the file is reported as truncated. */
  for (size_t cut = 0; cut < size; cut += cut < 200 ? 1 : 4099)
    expect_load(data, cut, DRSN_ERR_MODEL_TRUNCATED, NAME);
  free(data);

  /* recurrent_hidden (the u32 after running_mean_ms) out of range. */
  mw_small_spec(&spec);
  spec.recurrent_hidden = 1025;
  assert_int_equal(mw_build(&spec, NULL, &data, &size), 0);
  expect_load(data, size, DRSN_ERR_MODEL_HEADER, "recurrent_hidden 1025");
  free(data);

  /* A GRU tensor with the wrong shape, or missing. */
  mw_small_spec(&spec);
  spec.recurrent_hidden = 6;
  mw_faults f = {.fault = MW_FAULT_RESHAPE,
                 .tensor = "rnn.weight_hh",
                 .reshape_ndim = 2,
                 .reshape_dims = {18, 5}};
  assert_int_equal(mw_build(&spec, &f, &data, &size), 0);
  expect_load(data, size, DRSN_ERR_MODEL_TENSOR, "'rnn.weight_hh' has shape [18,5], expected [18,6]");
  free(data);
  mw_faults omit = {.fault = MW_FAULT_OMIT, .tensor = "rnn_out.bias"};
  assert_int_equal(mw_build(&spec, &omit, &data, &size), 0);
  expect_load(data, size, DRSN_ERR_MODEL_TENSOR, "'rnn_out.bias' is missing");
  free(data);

  /* GRU tensors in a version 1 file are unknown there. */
  mw_faults v1 = {.version = 1};
  mw_small_spec(&spec);
  spec.recurrent_hidden = 6;
  assert_int_equal(mw_build(&spec, &v1, &data, &size), 0);
  assert_true(load(data, size, &err) != DRSN_OK);
  free(data);
}

/* Format version 3: the pitch field and a third input channel. */
static void test_pitch_model(void **state)
{
  (void)state;
  mw_spec spec;
  unsigned char *data;
  size_t size;
  drsn_error err;
  drsn_model *m = NULL;

  mw_default_spec(&spec);
  spec.recurrent_hidden = 80;
  spec.pitch = 1;
  assert_int_equal(mw_build(&spec, NULL, &data, &size), 0);
  assert_int_equal(drsn_model_load_memory(data, size, NAME, &m, &err),
                   DRSN_OK);
  assert_int_equal(m->pitch, 1);
  assert_int_equal(m->input_channels, 3);
  assert_true(drsn_model_macs_per_second(m) < 40e6);
  drsn_model_free(m);
  for (size_t cut = 0; cut < 200; cut++)
    expect_load(data, cut, DRSN_ERR_MODEL_TRUNCATED, NAME);
  free(data);

  /* Pitch without the running mean: two input channels, the second pitch. */
  mw_small_spec(&spec);
  spec.running_mean_ms = 0;
  spec.pitch = 1;
  assert_int_equal(mw_build(&spec, NULL, &data, &size), 0);
  assert_int_equal(drsn_model_load_memory(data, size, NAME, &m, &err),
                   DRSN_OK);
  assert_int_equal(m->input_channels, 2);
  drsn_model_free(m);
  free(data);

  /* pitch (the u32 after recurrent_hidden) is a flag. */
  mw_small_spec(&spec);
  spec.pitch = 2;
  assert_int_equal(mw_build(&spec, NULL, &data, &size), 0);
  expect_load(data, size, DRSN_ERR_MODEL_HEADER, "pitch 2 is outside 0..1");
  free(data);

  /* A format_version changed from 3 to 2, with the CRC made to match. The
   * pitch flag is then read as the first dilation, and the last dilation as
   * the first band centre. From 2 to 3 the first dilation is read as the
   * pitch flag. Either way the message names the version the header was
   * read as. */
  mw_small_spec(&spec);
  spec.recurrent_hidden = 6;
  for (uint32_t built = 2; built <= 3; built++) {
    mw_faults as_built = {.version = built};
    spec.pitch = built == 3;
    assert_int_equal(mw_build(&spec, &as_built, &data, &size), 0);
    /* format_version is a little-endian u32 at byte 8. Its other bytes are
     * 0 for both versions. */
    const uint32_t altered = 5 - built;
    data[8] = (unsigned char)altered;
    const uint32_t crc = mw_crc32(data, size - 4);
    for (int i = 0; i < 4; i++)
      data[size - 4 + i] = (unsigned char)(crc >> (8 * i));
    char needle[32];
    snprintf(needle, sizeof needle,
             altered == 2 ? "format_version (read as %u)" : "format version %u",
             altered);
    expect_load(data, size, DRSN_ERR_MODEL_HEADER, needle);
    free(data);
  }

  /* A version 2 file has no pitch field, so a stem with the pitch channel
   * is one input channel too wide for it. */
  spec.pitch = 1;
  spec.recurrent_hidden = 6;
  mw_faults v2 = {.version = 2};
  assert_int_equal(mw_build(&spec, &v2, &data, &size), 0);
  assert_true(load(data, size, &err) != DRSN_OK);
  free(data);
}

/* Legal header fields whose combination would break the engine or make it
 * unbounded in memory or time. */
static void test_costly_models_rejected(void **state)
{
  (void)state;
  mw_spec spec;
  unsigned char *data;
  size_t size;

  mw_small_spec(&spec); /* window == hop: the windows would not overlap */
  spec.hop_samples = spec.window_samples;
  assert_int_equal(mw_build(&spec, NULL, &data, &size), 0);
  /* The hop must lie in 8 .. window_samples / 2. */
  expect_load(data, size, DRSN_ERR_MODEL_HEADER, "hop_samples");
  expect_load(data, size, DRSN_ERR_MODEL_HEADER, "is outside 8..");
  free(data);

  mw_small_spec(&spec); /* 1500 frames per second */
  spec.window_samples = 256;
  spec.hop_samples = 32;
  assert_int_equal(mw_build(&spec, NULL, &data, &size), 0);
  expect_load(data, size, DRSN_ERR_MODEL_HEADER, "shorter than 1 ms");
  free(data);

  mw_small_spec(&spec); /* about 600 MiB of history per channel */
  spec.kernel_time = 16;
  spec.block_count = 64;
  for (uint32_t i = 0; i < 64; i++)
    spec.dilations[i] = 1024;
  assert_int_equal(mw_build(&spec, NULL, &data, &size), 0);
  expect_load(data, size, DRSN_ERR_MODEL_HEADER, "network state");
  free(data);

  mw_small_spec(&spec); /* 420 M multiply-accumulates per second */
  spec.band_count = 128;
  for (uint32_t b = 0; b < 128; b++)
    spec.band_centres_hz[b] = 150.0f * (float)b;
  spec.channels = 128;
  spec.block_count = 1;
  spec.kernel_time = 1;
  spec.kernel_freq = 1;
  assert_int_equal(mw_build(&spec, NULL, &data, &size), 0);
  expect_load(data, size, DRSN_ERR_MODEL_HEADER, "multiply-accumulates");
  free(data);
}

static void test_wrong_magic(void **state)
{
  (void)state;
  mw_faults f = {.magic = "RIFFWAVE"};
  expect_fault(&f, DRSN_ERR_MODEL_MAGIC, NULL);

  drsn_error err;
  assert_int_equal(load((const unsigned char *)"RIFF", 4, &err),
                   DRSN_ERR_MODEL_MAGIC);
}

static void test_wrong_version(void **state)
{
  (void)state;
  mw_faults f = {.version = 4};
  expect_fault(&f, DRSN_ERR_MODEL_VERSION, "version 4");
  f.version = 0xFFFFFFFFu;
  expect_fault(&f, DRSN_ERR_MODEL_VERSION, "version 4294967295");
}

static void test_bad_header(void **state)
{
  (void)state;
  static const struct {
    size_t field; /* index of the u32 after the version */
    uint32_t value;
    const char *needle;
  } cases[] = {
      {0, 7999, "rate_hz"},        {0, 192001, "rate_hz"},
      {1, 8, "window_samples"},    {1, 20000, "window_samples"},
      {2, 7, "hop_samples"},       {2, 300, "multiple"},
      {2, 16, "more than 16 times"}, {0, 8000, "100 ms"},
      {3, 1, "band_count"},        {3, 257, "band_count"},
      {4, 0, "channels"},          {4, 300, "channels"},
      {5, 65, "block_count"},      {6, 0, "kernel_time"},
      {6, 17, "kernel_time"},      {7, 2, "kernel_freq"},
      {7, 17, "kernel_freq"},      {8, 0, "attention_hidden"},
      {8, 1025, "attention_hidden"}, {9, 60001, "running_mean_ms"},
      {10, 0, "dilation"},         {10, 1025, "dilation"},
  };
  mw_spec spec;
  mw_small_spec(&spec);
  unsigned char *data;
  size_t size;
  assert_int_equal(mw_build(&spec, NULL, &data, &size), 0);

  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    unsigned char *copy = malloc(size);
    assert_non_null(copy);
    memcpy(copy, data, size);
    const size_t at = 12 + 4 * cases[i].field;
    const uint32_t v = cases[i].value;
    copy[at] = (unsigned char)v;
    copy[at + 1] = (unsigned char)(v >> 8);
    copy[at + 2] = (unsigned char)(v >> 16);
    copy[at + 3] = (unsigned char)(v >> 24);
    const uint32_t crc = mw_crc32(copy, size - 4);
    memcpy(copy + size - 4, &crc, 4);

    drsn_error err;
    const drsn_status s = load(copy, size, &err);
    if (s != DRSN_ERR_MODEL_HEADER || !strstr(err.message, cases[i].needle))
      print_error("case %zu: %s\n", i, err.message);
    assert_int_equal(s, DRSN_ERR_MODEL_HEADER);
    assert_non_null(strstr(err.message, cases[i].needle));
    assert_non_null(strstr(err.message, NAME));
    free(copy);
  }
  free(data);

  /* Band centres must rise strictly and be finite and >= 0. */
  mw_small_spec(&spec);
  spec.band_centres_hz[3] = spec.band_centres_hz[2];
  mw_faults none = {0};
  (void)none;
  assert_int_equal(mw_build(&spec, NULL, &data, &size), 0);
  drsn_error err;
  assert_int_equal(load(data, size, &err), DRSN_ERR_MODEL_HEADER);
  assert_non_null(strstr(err.message, "band centre 3"));
  free(data);

  mw_small_spec(&spec);
  spec.band_centres_hz[0] = -1.0f;
  assert_int_equal(mw_build(&spec, NULL, &data, &size), 0);
  assert_int_equal(load(data, size, &err), DRSN_ERR_MODEL_HEADER);
  free(data);

  mw_small_spec(&spec);
  spec.band_centres_hz[7] = INFINITY;
  assert_int_equal(mw_build(&spec, NULL, &data, &size), 0);
  assert_int_equal(load(data, size, &err), DRSN_ERR_MODEL_HEADER);
  free(data);
}

static void test_wrong_shape(void **state)
{
  (void)state;
  /* The small model has C 4, KT 3, KF 3. */
  mw_faults f = {.fault = MW_FAULT_RESHAPE,
                 .tensor = "blocks.1.conv1.weight",
                 .reshape_ndim = 4,
                 .reshape_dims = {4, 4, 2, 3}};
  expect_fault(&f, DRSN_ERR_MODEL_TENSOR,
               "tensor 'blocks.1.conv1.weight' has shape [4,4,2,3], expected "
               "[4,4,3,3]");

  mw_faults g = {.fault = MW_FAULT_RESHAPE,
                 .tensor = "vad.weight",
                 .reshape_ndim = 1,
                 .reshape_dims = {4}};
  expect_fault(&g, DRSN_ERR_MODEL_TENSOR, "'vad.weight' has shape [4]");
}

static void test_missing_tensor(void **state)
{
  (void)state;
  mw_faults f = {.fault = MW_FAULT_OMIT, .tensor = "blocks.0.fc2.bias"};
  expect_fault(&f, DRSN_ERR_MODEL_TENSOR, "'blocks.0.fc2.bias' is missing");
  mw_faults g = {.fault = MW_FAULT_OMIT, .tensor = "feature_scale"};
  expect_fault(&g, DRSN_ERR_MODEL_TENSOR, "'feature_scale' is missing");
}

static void test_unknown_and_duplicate_tensor(void **state)
{
  (void)state;
  mw_faults f = {.fault = MW_FAULT_RENAME,
                 .tensor = "blocks.1.conv2.bias",
                 .rename_to = "blocks.2.conv2.bias"};
  expect_fault(&f, DRSN_ERR_MODEL_TENSOR, "unknown tensor 'blocks.2.conv2.bias'");
  mw_faults g = {.fault = MW_FAULT_DUPLICATE, .tensor = "stem.bias"};
  expect_fault(&g, DRSN_ERR_MODEL_TENSOR, "'stem.bias' appears more than once");
}

static void test_bad_crc(void **state)
{
  (void)state;
  mw_faults f = {.crc_xor = 0x10};
  expect_fault(&f, DRSN_ERR_MODEL_CHECKSUM, "CRC");

  /* A flipped weight bit is caught by the CRC too. */
  mw_spec spec;
  mw_small_spec(&spec);
  unsigned char *data;
  size_t size;
  assert_int_equal(mw_build(&spec, NULL, &data, &size), 0);
  data[size - 40] ^= 0x01;
  drsn_error err;
  assert_int_equal(load(data, size, &err), DRSN_ERR_MODEL_CHECKSUM);
  assert_non_null(strstr(err.message, NAME));
  free(data);
}

static void test_non_finite_weight(void **state)
{
  (void)state;
  mw_faults f = {.fault = MW_FAULT_NAN, .tensor = "blocks.1.fc1.weight"};
  expect_fault(&f, DRSN_ERR_MODEL_TENSOR, "'blocks.1.fc1.weight' has a non-finite");
  mw_faults g = {.fault = MW_FAULT_INF, .tensor = "gain.bias"};
  expect_fault(&g, DRSN_ERR_MODEL_TENSOR, "'gain.bias' has a non-finite");
}

static void test_trailing_bytes(void **state)
{
  (void)state;
  mw_faults f = {.trailing_bytes = 8};
  expect_fault(&f, DRSN_ERR_MODEL_TENSOR, "left over");
}

static void test_bad_arguments(void **state)
{
  (void)state;
  drsn_error err;
  drsn_model *m = NULL;
  assert_int_equal(drsn_model_load_memory(NULL, 10, NAME, &m, &err),
                   DRSN_ERR_INVALID_ARGUMENT);
  assert_int_equal(drsn_model_load_memory("x", 1, NAME, NULL, &err),
                   DRSN_ERR_INVALID_ARGUMENT);
  /* err may be NULL. */
  assert_int_equal(drsn_model_load_memory("DRSN", 4, NAME, &m, NULL),
                   DRSN_ERR_MODEL_TRUNCATED);
  drsn_model_free(NULL);
  assert_true(drsn_model_macs_per_second(NULL) == 0.0);
}

static void test_strerror(void **state)
{
  (void)state;
  for (int s = DRSN_OK; s <= DRSN_ERR_MODEL_TENSOR; s++) {
    const char *text = drsn_strerror((drsn_status)s);
    assert_non_null(text);
    assert_true(strlen(text) > 10);
    assert_int_equal(text[strlen(text) - 1], '.');
  }
  assert_non_null(drsn_strerror((drsn_status)999));
  assert_int_equal(drsn_crc32("123456789", 9), 0xCBF43926u);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_valid_models_load),
      cmocka_unit_test(test_default_model_loads),
      cmocka_unit_test(test_builtin_models),
      cmocka_unit_test(test_load_file),
      cmocka_unit_test(test_load_special_files),
      cmocka_unit_test(test_truncated_everywhere),
      cmocka_unit_test(test_wrong_magic),
      cmocka_unit_test(test_wrong_version),
      cmocka_unit_test(test_recurrent_model),
      cmocka_unit_test(test_pitch_model),
      cmocka_unit_test(test_costly_models_rejected),
      cmocka_unit_test(test_bad_header),
      cmocka_unit_test(test_wrong_shape),
      cmocka_unit_test(test_missing_tensor),
      cmocka_unit_test(test_unknown_and_duplicate_tensor),
      cmocka_unit_test(test_bad_crc),
      cmocka_unit_test(test_non_finite_weight),
      cmocka_unit_test(test_trailing_bytes),
      cmocka_unit_test(test_bad_arguments),
      cmocka_unit_test(test_strerror),
  };
  return cmocka_run_group_tests_name("dsp_model", tests, NULL, NULL);
}
