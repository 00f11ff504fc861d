/*
 * model_writer.c: in-memory model files for the tests (format in
 * docs/design.md).
 */
#include "model_writer.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
  unsigned char *data;
  size_t size, cap;
  int failed;
} mw_buffer;

static void put_bytes(mw_buffer *b, const void *p, size_t n)
{
  if (b->failed)
    return;
  if (b->size + n > b->cap) {
    size_t cap = b->cap ? b->cap : 4096;
    while (cap < b->size + n)
      cap *= 2;
    unsigned char *grown = realloc(b->data, cap);
    if (!grown) {
      b->failed = 1;
      return;
    }
    b->data = grown;
    b->cap = cap;
  }
  memcpy(b->data + b->size, p, n);
  b->size += n;
}

static void put_u32(mw_buffer *b, uint32_t v)
{
  const unsigned char le[4] = {(unsigned char)v, (unsigned char)(v >> 8),
                               (unsigned char)(v >> 16),
                               (unsigned char)(v >> 24)};
  put_bytes(b, le, 4);
}

static void put_f32(mw_buffer *b, float f)
{
  uint32_t v;
  memcpy(&v, &f, 4);
  put_u32(b, v);
}

uint32_t mw_crc32(const unsigned char *data, size_t size)
{
  uint32_t crc = 0xFFFFFFFFu;
  for (size_t i = 0; i < size; i++) {
    crc ^= data[i];
    for (int k = 0; k < 8; k++)
      crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
  }
  return ~crc;
}

static const float default_centres_hz[32] = {
    0,    100,  200,  300,  400,  500,  600,   700,   800,   900,   1000,
    1100, 1200, 1300, 1500, 1750, 2100, 2450,  2850,  3350,  3900,  4550,
    5300, 6150, 7100, 8250, 9600, 11100, 12900, 14900, 17300, 20000};

void mw_default_spec(mw_spec *s)
{
  memset(s, 0, sizeof *s);
  s->rate_hz = 48000;
  s->window_samples = 960;
  s->hop_samples = 480;
  s->band_count = 32;
  s->channels = 16;
  s->block_count = 4;
  s->kernel_time = 2;
  s->kernel_freq = 3;
  s->attention_hidden = 16;
  s->running_mean_ms = 1000;
  for (uint32_t i = 0; i < 4; i++)
    s->dilations[i] = 1u << i;
  memcpy(s->band_centres_hz, default_centres_hz, sizeof default_centres_hz);
  s->seed = 1;
  s->weight_scale = 1.5f;
  s->gain_bias = 0.0f;
  s->feature_mean = -8.0f;
  s->feature_scale = 0.25f;
}

void mw_small_spec(mw_spec *s)
{
  mw_default_spec(s);
  s->band_count = 8;
  static const float centres[8] = {0, 300, 700, 1500, 3000, 6000, 12000, 20000};
  memcpy(s->band_centres_hz, centres, sizeof centres);
  s->channels = 4;
  s->attention_hidden = 3;
  s->block_count = 2;
  s->kernel_time = 3;
  s->kernel_freq = 3;
  s->dilations[0] = 1;
  s->dilations[1] = 3;
}

typedef struct {
  char name[40];
  uint32_t ndim;
  uint32_t dims[4];
  uint32_t fan_in; /**< 0 for biases and statistics */
  int kind;        /**< 0 weight/bias, 1 feature_mean, 2 feature_scale,
                      3 gain bias */
} mw_tensor;

static uint32_t next_random(uint32_t *state)
{
  *state ^= *state << 13;
  *state ^= *state >> 17;
  *state ^= *state << 5;
  return *state;
}

static float uniform(uint32_t *state)
{
  return (float)((next_random(state) >> 8) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

static void add(mw_tensor *t, size_t *n, const char *name, uint32_t ndim,
                uint32_t d0, uint32_t d1, uint32_t d2, uint32_t d3,
                uint32_t fan_in, int kind)
{
  mw_tensor *x = &t[(*n)++];
  snprintf(x->name, sizeof x->name, "%s", name);
  x->ndim = ndim;
  x->dims[0] = d0;
  x->dims[1] = d1;
  x->dims[2] = d2;
  x->dims[3] = d3;
  x->fan_in = fan_in;
  x->kind = kind;
}

static void write_tensor(mw_buffer *b, const mw_spec *s, const mw_tensor *t,
                         const mw_faults *f, uint32_t *rng)
{
  const int hit = f->tensor && strcmp(f->tensor, t->name) == 0;
  const char *name = hit && f->fault == MW_FAULT_RENAME ? f->rename_to : t->name;
  uint32_t ndim = t->ndim;
  const uint32_t *dims = t->dims;
  if (hit && f->fault == MW_FAULT_RESHAPE) {
    ndim = f->reshape_ndim;
    dims = f->reshape_dims;
  }

  put_u32(b, (uint32_t)strlen(name));
  put_bytes(b, name, strlen(name));
  put_u32(b, ndim);
  size_t count = 1;
  for (uint32_t i = 0; i < ndim; i++) {
    put_u32(b, dims[i]);
    count *= dims[i];
  }
  for (size_t i = 0; i < count; i++) {
    float v;
    switch (t->kind) {
    case 1:
      v = s->feature_mean;
      break;
    case 2:
      v = s->feature_scale;
      break;
    case 3:
      v = s->gain_bias;
      break;
    default:
      v = t->fan_in ? uniform(rng) * s->weight_scale / sqrtf((float)t->fan_in)
                    : 0.1f * uniform(rng);
    }
    if (hit && i == count / 2 && f->fault == MW_FAULT_NAN)
      v = NAN;
    if (hit && i == count / 2 && f->fault == MW_FAULT_INF)
      v = INFINITY;
    put_f32(b, v);
  }
}

int mw_build(const mw_spec *s, const mw_faults *faults, unsigned char **data,
             size_t *size)
{
  static const mw_faults none;
  const mw_faults *f = faults ? faults : &none;
  mw_buffer b = {0};
  const uint32_t B = s->band_count, C = s->channels, H = s->attention_hidden;
  const uint32_t KT = s->kernel_time, KF = s->kernel_freq;

  put_bytes(&b, f->magic ? f->magic : "DRSNMODL", 8);
  const uint32_t R = s->recurrent_hidden;
  uint32_t version = 1;
  if (R)
    version = 2;
  if (s->pitch)
    version = 3;
  if (f->version)
    version = f->version;
  put_u32(&b, version);
  put_u32(&b, s->rate_hz);
  put_u32(&b, s->window_samples);
  put_u32(&b, s->hop_samples);
  put_u32(&b, B);
  put_u32(&b, C);
  put_u32(&b, s->block_count);
  put_u32(&b, KT);
  put_u32(&b, KF);
  put_u32(&b, H);
  put_u32(&b, s->running_mean_ms);
  if (R || version >= 3)
    put_u32(&b, R);
  if (version >= 3)
    put_u32(&b, s->pitch);
  for (uint32_t i = 0; i < s->block_count; i++)
    put_u32(&b, s->dilations[i]);
  for (uint32_t i = 0; i < B; i++)
    put_f32(&b, s->band_centres_hz[i]);

  const size_t max_tensors = 16 + 8 * (size_t)s->block_count;
  mw_tensor *t = calloc(max_tensors, sizeof *t);
  if (!t) {
    free(b.data);
    return -1;
  }
  size_t n = 0;
  char name[40];
  add(t, &n, "feature_mean", 1, B, 0, 0, 0, 0, 1);
  add(t, &n, "feature_scale", 1, B, 0, 0, 0, 0, 2);
  const uint32_t I = 1 + (s->running_mean_ms > 0) + (s->pitch > 0);
  add(t, &n, "stem.weight", 4, C, I, KT, KF, I * KT * KF, 0);
  add(t, &n, "stem.bias", 1, C, 0, 0, 0, 0, 0);
  for (uint32_t i = 0; i < s->block_count; i++) {
    snprintf(name, sizeof name, "blocks.%u.conv1.weight", i);
    add(t, &n, name, 4, C, C, KT, KF, C * KT * KF, 0);
    snprintf(name, sizeof name, "blocks.%u.conv1.bias", i);
    add(t, &n, name, 1, C, 0, 0, 0, 0, 0);
    snprintf(name, sizeof name, "blocks.%u.conv2.weight", i);
    add(t, &n, name, 4, C, C, 1, KF, C * KF, 0);
    snprintf(name, sizeof name, "blocks.%u.conv2.bias", i);
    add(t, &n, name, 1, C, 0, 0, 0, 0, 0);
    snprintf(name, sizeof name, "blocks.%u.fc1.weight", i);
    add(t, &n, name, 2, H, C, 0, 0, C, 0);
    snprintf(name, sizeof name, "blocks.%u.fc1.bias", i);
    add(t, &n, name, 1, H, 0, 0, 0, 0, 0);
    snprintf(name, sizeof name, "blocks.%u.fc2.weight", i);
    add(t, &n, name, 2, C, H, 0, 0, H, 0);
    snprintf(name, sizeof name, "blocks.%u.fc2.bias", i);
    add(t, &n, name, 1, C, 0, 0, 0, 0, 0);
  }
  add(t, &n, "gain.weight", 4, 1, C, 1, 1, C, 0);
  add(t, &n, "gain.bias", 1, 1, 0, 0, 0, 0, 3);
  add(t, &n, "vad.weight", 2, 1, C, 0, 0, C, 0);
  add(t, &n, "vad.bias", 1, 1, 0, 0, 0, 0, 0);
  if (R) {
    add(t, &n, "rnn_in.weight", 2, R, C * B, 0, 0, C * B, 0);
    add(t, &n, "rnn_in.bias", 1, R, 0, 0, 0, 0, 0);
    add(t, &n, "rnn.weight_ih", 2, 3 * R, R, 0, 0, R, 0);
    add(t, &n, "rnn.weight_hh", 2, 3 * R, R, 0, 0, R, 0);
    add(t, &n, "rnn.bias_ih", 1, 3 * R, 0, 0, 0, 0, 0);
    add(t, &n, "rnn.bias_hh", 1, 3 * R, 0, 0, 0, 0, 0);
    add(t, &n, "rnn_out.weight", 2, B, R, 0, 0, R, 0);
    add(t, &n, "rnn_out.bias", 1, B, 0, 0, 0, 0, 0);
  }

  uint32_t written = 0;
  for (size_t i = 0; i < n; i++) {
    const int hit = f->tensor && strcmp(f->tensor, t[i].name) == 0;
    if (hit && f->fault == MW_FAULT_OMIT)
      continue;
    written += hit && f->fault == MW_FAULT_DUPLICATE ? 2 : 1;
  }
  put_u32(&b, written);

  /* Weights depend on the seed and the tensor, not on the write order. */
  for (size_t j = 0; j < n; j++) {
    const size_t i = f->reverse_order ? n - 1 - j : j;
    const int hit = f->tensor && strcmp(f->tensor, t[i].name) == 0;
    if (hit && f->fault == MW_FAULT_OMIT)
      continue;
    uint32_t rng = s->seed * 2654435761u + (uint32_t)i * 40503u + 1u;
    for (int k = 0; k < 4; k++)
      next_random(&rng);
    write_tensor(&b, s, &t[i], f, &rng);
    if (hit && f->fault == MW_FAULT_DUPLICATE) {
      rng = s->seed * 2654435761u + (uint32_t)i * 40503u + 1u;
      write_tensor(&b, s, &t[i], f, &rng);
    }
  }
  free(t);

  for (uint32_t i = 0; i < f->trailing_bytes; i++) {
    const unsigned char zero = 0;
    put_bytes(&b, &zero, 1);
  }
  if (b.failed) {
    free(b.data);
    return -1;
  }
  put_u32(&b, mw_crc32(b.data, b.size) ^ f->crc_xor);
  if (b.failed) {
    free(b.data);
    return -1;
  }
  *data = b.data;
  *size = b.size;
  return 0;
}
