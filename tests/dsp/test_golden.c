/*
 * test_golden.c: the C engine against the PyTorch twin's golden vectors
 * (tests/data/golden.bin, layout in docs/design.md).
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

#include "drsn_internal.h"

#ifndef DRSN_GOLDEN_PATH
#define DRSN_GOLDEN_PATH "tests/data/golden.bin"
#endif
#ifndef DRSN_MODEL_PATH
#define DRSN_MODEL_PATH "models/default.drsn"
#endif

#define TOLERANCE 1e-4
/* u32 header fields after the magic, version included. */
#define GOLDEN_FIELDS 11

/* The environment variables of the same names override the built-in paths, so the training
 * smoke test can check a freshly exported model. */
static const char *path_setting(const char *name, const char *fallback)
{
  const char *value = getenv(name);
  return value && *value ? value : fallback;
}

typedef struct {
  uint32_t version, rate_hz, window_samples, hop_samples, band_count,
      channels, block_count, input_channels, frame_count, sample_count,
      recurrent_hidden;
  float *signal;
  float *table; /**< [frame_count][per_frame] */
  size_t per_frame;
} golden;

static unsigned char *read_all(const char *path, size_t *size)
{
  FILE *f = fopen(path, "rb");
  if (!f)
    return NULL;
  size_t cap = 1 << 20, n = 0;
  unsigned char *buf = malloc(cap);
  while (buf) {
    if (n == cap) {
      unsigned char *g = realloc(buf, cap *= 2);
      if (!g) {
        free(buf);
        buf = NULL;
        break;
      }
      buf = g;
    }
    const size_t got = fread(buf + n, 1, cap - n, f);
    if (!got)
      break;
    n += got;
  }
  fclose(f);
  *size = n;
  return buf;
}

static uint32_t le32(const unsigned char *p)
{
  return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
         (uint32_t)p[3] << 24;
}

static void read_floats(const unsigned char *p, float *out, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    const uint32_t v = le32(p + 4 * i);
    memcpy(&out[i], &v, 4);
  }
}

static void load_golden(golden *g)
{
  size_t size = 0;
  const char *golden_path = path_setting("DRSN_GOLDEN_PATH", DRSN_GOLDEN_PATH);
  unsigned char *data = read_all(golden_path, &size);
  if (!data)
    fail_msg("cannot read %s", golden_path);
  const size_t header = 8 + GOLDEN_FIELDS * 4;
  assert_true(size >= header);
  assert_memory_equal(data, "DRSNGOLD", 8);
  uint32_t *fields = &g->version;
  for (int i = 0; i < GOLDEN_FIELDS; i++)
    fields[i] = le32(data + 8 + 4 * i);
  assert_int_equal(g->version, 2);
  g->per_frame = g->band_count * ((size_t)g->input_channels + 1) +
                 (size_t)g->channels * g->band_count * (1 + g->block_count) +
                 g->recurrent_hidden + 1;
  const size_t floats =
      g->sample_count + (size_t)g->frame_count * g->per_frame;
  assert_int_equal(size, header + 4 * floats);
  g->signal = malloc(g->sample_count * sizeof(float));
  g->table = malloc(g->frame_count * g->per_frame * sizeof(float));
  assert_non_null(g->signal);
  assert_non_null(g->table);
  read_floats(data + header, g->signal, g->sample_count);
  read_floats(data + header + 4 * (size_t)g->sample_count, g->table,
              g->frame_count * g->per_frame);
  free(data);
}

/** Tracks the worst error of one layer across frames. */
typedef struct {
  const char *name;
  double max_err;
  uint32_t frame, index;
} layer_error;

static void compare(layer_error *l, uint32_t frame, const float *got,
                    const float *want, size_t n)
{
  for (size_t i = 0; i < n; i++) {
    const double d = fabs((double)got[i] - (double)want[i]);
    if (!(d <= l->max_err)) {
      l->max_err = isnan(d) ? INFINITY : d;
      l->frame = frame;
      l->index = (uint32_t)i;
    }
  }
}

static void test_golden_vectors(void **state)
{
  (void)state;
  golden g;
  load_golden(&g);

  drsn_model *m = NULL;
  drsn_error err;
  if (drsn_model_load_file(path_setting("DRSN_MODEL_PATH", DRSN_MODEL_PATH), &m, &err) != DRSN_OK)
    fail_msg("%s", err.message);
  assert_int_equal(g.rate_hz, m->rate_hz);
  assert_int_equal(g.window_samples, m->window_samples);
  assert_int_equal(g.hop_samples, m->hop_samples);
  assert_int_equal(g.band_count, m->band_count);
  assert_int_equal(g.channels, m->channels);
  assert_int_equal(g.block_count, m->block_count);
  assert_int_equal(g.input_channels, m->input_channels);
  assert_int_equal(g.recurrent_hidden, m->recurrent_hidden);
  assert_true((size_t)g.frame_count * g.hop_samples <= g.sample_count);

  drsn_engine *e = NULL;
  assert_int_equal(drsn_engine_create(m, g.rate_hz, 1, &e, &err), DRSN_OK);
  const uint32_t B = g.band_count, C = g.channels, nb = g.block_count;
  const uint32_t R = g.recurrent_hidden;
  float *out = malloc(g.hop_samples * sizeof(float));
  float *act = malloc(((size_t)C * B > R ? (size_t)C * B : R) * sizeof(float));
  assert_non_null(out);
  assert_non_null(act);

  layer_error layers[5 + 64];
  const size_t n_layers = 5 + nb;
  char names[64][24];
  memset(layers, 0, sizeof layers);
  layers[0].name = "features";
  layers[1].name = "stem";
  for (uint32_t i = 0; i < nb; i++) {
    snprintf(names[i], sizeof names[i], "blocks.%u", i);
    layers[2 + i].name = names[i];
  }
  layers[2 + nb].name = "recurrent";
  layers[3 + nb].name = "gains";
  layers[4 + nb].name = "voice";

  for (uint32_t t = 0; t < g.frame_count; t++) {
    /* Frame t is analysed after input sample (t + 1) * hop - 1. */
    const float *in = g.signal + (size_t)t * g.hop_samples;
    float *op = out;
    drsn_engine_process(e, &in, &op, g.hop_samples);
    assert_int_equal(drsn_engine_frames(e), t + 1);

    const float *row = g.table + (size_t)t * g.per_frame;
    compare(&layers[0], t, drsn_engine_features(e, 0), row,
            (size_t)g.input_channels * B);
    row += (size_t)g.input_channels * B;
    const drsn_net *net = drsn_engine_net(e, 0);
    drsn_net_copy_stem(net, act);
    compare(&layers[1], t, act, row, (size_t)C * B);
    row += (size_t)C * B;
    for (uint32_t i = 0; i < nb; i++) {
      drsn_net_copy_block(net, i, act);
      compare(&layers[2 + i], t, act, row, (size_t)C * B);
      row += (size_t)C * B;
    }
    drsn_net_copy_recurrent(net, act);
    compare(&layers[2 + nb], t, act, row, R);
    row += R;
    compare(&layers[3 + nb], t, drsn_engine_gains(e, 0), row, B);
    row += B;
    const float voice = drsn_engine_net_voice(e, 0);
    compare(&layers[4 + nb], t, &voice, row, 1);
  }

  int ok = 1;
  for (size_t i = 0; i < n_layers; i++) {
    print_message("golden %-10s max abs error %.3g (frame %u, index %u)\n",
                  layers[i].name, layers[i].max_err, layers[i].frame,
                  layers[i].index);
    ok = ok && layers[i].max_err < TOLERANCE;
  }
  assert_true(ok);

  free(out);
  free(act);
  free(g.signal);
  free(g.table);
  drsn_engine_destroy(e);
  drsn_model_free(m);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_golden_vectors),
  };
  return cmocka_run_group_tests_name("dsp_golden", tests, NULL, NULL);
}
