/*
 * test_net.c: the vectorised network against a plain transcription of
 * design.md's formulas, for kernel shapes and dilations the default model
 * does not use.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "drsn_internal.h"
#include "model_writer.h"

#define FRAMES 40

/** Activation of layer input `layer` at frame t, channel c, band b. */
typedef struct {
  uint32_t C, B;
  float *data; /**< [FRAMES][C][B] */
} history;

static float at(const history *h, int t, int c, int b)
{
  if (t < 0 || b < 0 || b >= (int)h->B)
    return 0.0f;
  return h->data[((size_t)t * h->C + c) * h->B + b];
}

static float *slot(history *h, int t)
{
  return h->data + (size_t)t * h->C * h->B;
}

static float sig(float x)
{
  return 1.0f / (1.0f + expf(-x));
}

/** conv(x; w [cout][cin][kt][kf]) at frame t, per design.md. */
static void ref_conv(const history *x, int t, const float *w,
                     const float *bias, uint32_t cout, uint32_t cin,
                     uint32_t kt, uint32_t kf, uint32_t dilation, float *out)
{
  const int B = (int)x->B, half = (int)(kf - 1) / 2;
  for (uint32_t co = 0; co < cout; co++)
    for (int b = 0; b < B; b++) {
      double acc = bias[co];
      for (uint32_t ci = 0; ci < cin; ci++)
        for (uint32_t dt = 0; dt < kt; dt++)
          for (uint32_t df = 0; df < kf; df++) {
            const int past = (int)((kt - 1 - dt) * dilation);
            acc += (double)w[((co * cin + ci) * kt + dt) * kf + df] *
                   at(x, t - past, (int)ci, b + (int)df - half);
          }
      out[co * B + b] = (float)acc;
    }
}

static void check_spec(const mw_spec *spec)
{
  unsigned char *data;
  size_t size;
  assert_int_equal(mw_build(spec, NULL, &data, &size), 0);
  drsn_model *m = NULL;
  drsn_error err;
  assert_int_equal(drsn_model_load_memory(data, size, "net", &m, &err),
                   DRSN_OK);
  free(data);
  drsn_net *net = NULL;
  assert_int_equal(drsn_net_create(m, &net, &err), DRSN_OK);
  /* The loader bounds the state with the same sizes the net allocates. */
  const size_t state_floats = (size_t)drsn_net_state_floats(m);
  assert_true(drsn_net_state_bytes(net) >= state_floats * sizeof(float));
  assert_true(drsn_net_state_bytes(net) < state_floats * sizeof(float) + 4096);

  const uint32_t B = m->band_count, C = m->channels, H = m->attention_hidden;
  const uint32_t KT = m->kernel_time, KF = m->kernel_freq, nb = m->block_count;
  const uint32_t I = m->input_channels;
  history feat = {I, B, calloc((size_t)FRAMES * I * B, sizeof(float))};
  history *hin = calloc(nb + 1, sizeof *hin); /* input of block i; [nb] = out */
  for (uint32_t i = 0; i <= nb; i++) {
    hin[i].C = C;
    hin[i].B = B;
    hin[i].data = calloc((size_t)FRAMES * C * B, sizeof(float));
  }
  float *a = calloc((size_t)C * B, sizeof(float));
  float *r = calloc((size_t)C * B, sizeof(float));
  float *got = calloc((size_t)C * B, sizeof(float));
  float *gains = calloc(B, sizeof(float));
  float *ref_gains = calloc(B, sizeof(float));
  history a_hist = {C, B, a};
  const uint32_t R = m->recurrent_hidden;
  float *state = calloc(R ? R : 1, sizeof(float));
  float *got_state = calloc(R ? R : 1, sizeof(float));

  uint32_t seed = 99;
  double worst = 0.0;
  for (int t = 0; t < FRAMES; t++) {
    for (uint32_t b = 0; b < I * B; b++) {
      seed = seed * 1664525u + 1013904223u;
      slot(&feat, t)[b] = (float)(seed >> 8) / 16777216.0f * 4.0f - 2.0f;
    }

    /* Reference. */
    float *h0 = slot(&hin[0], t);
    ref_conv(&feat, t, m->stem_weight, m->stem_bias, C, I, KT, KF, 1, h0);
    for (size_t i = 0; i < (size_t)C * B; i++)
      h0[i] = h0[i] > 0 ? h0[i] : 0;
    for (uint32_t i = 0; i < nb; i++) {
      const drsn_block_weights *w = &m->blocks[i];
      ref_conv(&hin[i], t, w->conv1_weight, w->conv1_bias, C, C, KT, KF,
               w->dilation, a);
      for (size_t k = 0; k < (size_t)C * B; k++)
        a[k] = a[k] > 0 ? a[k] : 0;
      ref_conv(&a_hist, 0, w->conv2_weight, w->conv2_bias, C, C, 1, KF, 1, r);
      float mean[256], z[1024];
      for (uint32_t c = 0; c < C; c++) {
        double s = 0;
        for (uint32_t b = 0; b < B; b++)
          s += fabsf(r[c * B + b]);
        mean[c] = (float)(s / B);
      }
      for (uint32_t hh = 0; hh < H; hh++) {
        double s = w->fc1_bias[hh];
        for (uint32_t c = 0; c < C; c++)
          s += (double)w->fc1_weight[hh * C + c] * mean[c];
        z[hh] = s > 0 ? (float)s : 0.0f;
      }
      float *next = slot(&hin[i + 1], t);
      const float *cur = slot(&hin[i], t);
      for (uint32_t c = 0; c < C; c++) {
        double s = w->fc2_bias[c];
        for (uint32_t hh = 0; hh < H; hh++)
          s += (double)w->fc2_weight[c * H + hh] * z[hh];
        const float tau = sig((float)s) * mean[c];
        for (uint32_t b = 0; b < B; b++) {
          const float v = r[c * B + b];
          const float mag = fabsf(v) - tau > 0 ? fabsf(v) - tau : 0;
          /* sign(v) * mag; mag is 0 when v is 0 because tau >= 0. */
          const float shrunk = v < 0 ? -mag : mag;
          next[c * B + b] = cur[c * B + b] + shrunk;
        }
      }
    }
    const float *hl = slot(&hin[nb], t);
    double vacc = m->vad_bias[0];
    for (uint32_t b = 0; b < B; b++) {
      double g = m->gain_bias[0];
      for (uint32_t c = 0; c < C; c++) {
        const float u = hl[c * B + b] > 0 ? hl[c * B + b] : 0;
        g += (double)m->gain_weight[c] * u;
        vacc += (double)m->vad_weight[c] * u / B;
      }
      ref_gains[b] = (float)g;
    }
    /* GRU, as PyTorch defines it (gates reset, update, new). */
    if (R) {
      float x[1024], next_state[1024];
      for (uint32_t i = 0; i < R; i++) {
        double s = m->rnn_in_bias[i];
        for (size_t k = 0; k < (size_t)C * B; k++)
          s += (double)m->rnn_in_weight[i * (size_t)C * B + k] *
               (hl[k] > 0 ? hl[k] : 0);
        x[i] = s > 0 ? (float)s : 0.0f;
      }
      for (uint32_t i = 0; i < R; i++) {
        double gi[3], gh[3];
        for (uint32_t g = 0; g < 3; g++) {
          const size_t row = (size_t)(g * R + i) * R;
          gi[g] = m->rnn_bias_ih[g * R + i];
          gh[g] = m->rnn_bias_hh[g * R + i];
          for (uint32_t j = 0; j < R; j++) {
            gi[g] += (double)m->rnn_weight_ih[row + j] * x[j];
            gh[g] += (double)m->rnn_weight_hh[row + j] * state[j];
          }
        }
        const double reset = 1.0 / (1.0 + exp(-(gi[0] + gh[0])));
        const double update = 1.0 / (1.0 + exp(-(gi[1] + gh[1])));
        const double cand = tanh(gi[2] + reset * gh[2]);
        next_state[i] = (float)((1.0 - update) * cand + update * state[i]);
      }
      memcpy(state, next_state, R * sizeof(float));
      for (uint32_t b = 0; b < B; b++) {
        double s = m->rnn_out_bias[b];
        for (uint32_t j = 0; j < R; j++)
          s += (double)m->rnn_out_weight[(size_t)b * R + j] * state[j];
        ref_gains[b] += (float)s;
      }
    }
    for (uint32_t b = 0; b < B; b++)
      ref_gains[b] = sig(ref_gains[b]);
    const float ref_voice = sig((float)vacc);

    /* Engine network. */
    const float voice = drsn_net_forward(net, slot(&feat, t), gains);
    drsn_net_copy_stem(net, got);
    for (size_t k = 0; k < (size_t)C * B; k++)
      worst = fmax(worst, fabs(got[k] - slot(&hin[0], t)[k]));
    for (uint32_t i = 0; i < nb; i++) {
      drsn_net_copy_block(net, i, got);
      for (size_t k = 0; k < (size_t)C * B; k++)
        worst = fmax(worst, fabs(got[k] - slot(&hin[i + 1], t)[k]));
    }
    drsn_net_copy_recurrent(net, got_state);
    for (uint32_t i = 0; i < R; i++)
      worst = fmax(worst, fabs(got_state[i] - state[i]));
    for (uint32_t b = 0; b < B; b++)
      worst = fmax(worst, fabs(gains[b] - ref_gains[b]));
    worst = fmax(worst, fabs(voice - ref_voice));
  }
  if (worst >= 1e-4)
    print_error("KT %u KF %u blocks %u: worst error %g\n", KT, KF, nb, worst);
  assert_true(worst < 1e-4);
  assert_int_equal(drsn_net_recurrent_width(net), R);

  /* Reset gives the first frame's output again. */
  drsn_net_reset(net);
  drsn_net_forward(net, slot(&feat, 0), gains);
  drsn_net_copy_stem(net, got);
  for (size_t k = 0; k < (size_t)C * B; k++)
    assert_true(fabsf(got[k] - slot(&hin[0], 0)[k]) < 1e-4f);

  for (uint32_t i = 0; i <= nb; i++)
    free(hin[i].data);
  free(hin);
  free(feat.data);
  free(a);
  free(r);
  free(got);
  free(gains);
  free(ref_gains);
  free(state);
  free(got_state);
  drsn_net_destroy(net);
  drsn_model_free(m);
}

static void test_default_shapes(void **state)
{
  (void)state;
  mw_spec spec;
  mw_default_spec(&spec);
  check_spec(&spec);
}

/** The default shapes with a recurrent layer, and a small one. */
static void test_recurrent(void **state)
{
  (void)state;
  mw_spec spec;
  mw_default_spec(&spec);
  spec.recurrent_hidden = 80;
  check_spec(&spec);
  mw_small_spec(&spec);
  spec.recurrent_hidden = 5;
  spec.block_count = 0;
  check_spec(&spec);
}

static void test_other_kernels(void **state)
{
  (void)state;
  mw_spec spec;
  static const struct {
    uint32_t kt, kf, blocks, d0, d1, d2;
  } cases[] = {
      {1, 1, 2, 1, 1, 1}, {3, 5, 3, 1, 3, 7}, {2, 7, 1, 5, 0, 0},
      {4, 3, 2, 2, 6, 0}, {1, 15, 1, 1, 0, 0}, {2, 3, 0, 0, 0, 0},
  };
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    mw_small_spec(&spec);
    spec.kernel_time = cases[i].kt;
    spec.kernel_freq = cases[i].kf;
    spec.block_count = cases[i].blocks;
    spec.dilations[0] = cases[i].d0;
    spec.dilations[1] = cases[i].d1;
    spec.dilations[2] = cases[i].d2;
    spec.seed = 7 + (uint32_t)i;
    spec.running_mean_ms = i % 2 ? 0 : 1000; /* one and two input channels */
    check_spec(&spec);
  }
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_default_shapes),
      cmocka_unit_test(test_other_kernels),
      cmocka_unit_test(test_recurrent),
  };
  return cmocka_run_group_tests_name("dsp_net", tests, NULL, NULL);
}
