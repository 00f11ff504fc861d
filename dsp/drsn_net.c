/*
 * drsn_net.c: the causal Deep Residual Shrinkage Network, one frame at a
 * time (docs/design.md, Network).
 *
 * Activations are kept as [channels][bands + 2 * pad] rows whose pad bands
 * on either side stay zero, so a frequency tap is a plain offset and the
 * inner loops run over contiguous bands, which gcc vectorises. Each
 * convolution input lives in a ring of its last (KT-1)*dilation + 1 frames;
 * the layer before writes straight into the next ring slot. The optional
 * gated recurrent unit keeps its hidden state between frames.
 */
#include "drsn_internal.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/** The last frames of one convolution input. */
typedef struct {
  uint32_t slots; /**< (KT - 1) * dilation + 1 */
  uint32_t pos;   /**< slot of the current frame */
  size_t slot_floats;
  float *data; /**< [slots][cin][Bp] */
} drsn_ring;

struct drsn_net {
  const drsn_model *model;
  uint32_t B, P, Bp, C, H, KT, KF;

  drsn_ring stem_in;   /**< features, I channels, dilation 1 */
  drsn_ring *block_in; /**< [block_count] block inputs h */
  float *h_out;        /**< [C][Bp] output of the last layer before relu */
  float *a;            /**< [C][Bp] relu(conv1) */
  float *r;            /**< [C][Bp] conv2, then [C][B] relu(h) for rnn_in */
  float *mean_abs;     /**< [C] */
  float *hidden;       /**< [H] */
  float *tau;          /**< [C] */
  float *u_mean;       /**< [C] */
  uint32_t R;          /**< recurrent width, 0 without the GRU */
  float *rnn_x;        /**< [R] GRU input */
  float *rnn_h;        /**< [R] GRU state, kept between frames */
  float *rnn_gi;       /**< [3R] input gate sums */
  float *rnn_gh;       /**< [3R] state gate sums */
  const float **taps;  /**< [KT] frame pointers */
  float *state;        /**< one buffer behind the rings and the rows above */
  size_t state_bytes;
};

static float sigmoidf(float x)
{
  return 1.0f / (1.0f + expf(-x));
}

/* The sizes below serve both drsn_net_create() and the model loader, which
 * bounds the state before anything is allocated. */

static uint32_t padded_bands(const drsn_model *m)
{
  return m->band_count + 2 * ((m->kernel_freq - 1) / 2);
}

/** Frames block i keeps of its input: its causal span. */
static uint32_t block_slots(const drsn_model *m, uint32_t block)
{
  return (m->kernel_time - 1) * m->blocks[block].dilation + 1;
}

/** Floats of the per-frame rows and vectors that follow the rings. */
static double scratch_floats(const drsn_model *m)
{
  const double row = (double)m->channels * padded_bands(m);
  const double R = m->recurrent_hidden ? m->recurrent_hidden : 1;
  /* h_out, a, r; mean_abs, tau, u_mean; hidden; rnn_x, rnn_h, rnn_gi, rnn_gh */
  return 3 * row + 3.0 * m->channels + m->attention_hidden + 8 * R;
}

double drsn_net_state_floats(const drsn_model *m)
{
  const double Bp = padded_bands(m), C = m->channels;
  double floats = (double)m->kernel_time * m->input_channels * Bp;
  for (uint32_t i = 0; i < m->block_count; i++)
    floats += block_slots(m, i) * C * Bp;
  return floats + scratch_floats(m);
}

/** Gives ring the next slots * slot_floats floats of the state buffer. */
static void ring_init(drsn_ring *ring, uint32_t slots, size_t slot_floats,
                      float **next)
{
  ring->slots = slots;
  ring->pos = 0;
  ring->slot_floats = slot_floats;
  ring->data = *next;
  *next += (size_t)slots * slot_floats;
}

/** Takes the next count floats of the state buffer. */
static float *take(float **next, size_t count)
{
  float *p = *next;
  *next += count;
  return p;
}

static float *ring_advance(drsn_ring *ring)
{
  ring->pos = ring->pos + 1 == ring->slots ? 0 : ring->pos + 1;
  return ring->data + ring->pos * ring->slot_floats;
}

static float *ring_current(const drsn_ring *ring)
{
  return ring->data + ring->pos * ring->slot_floats;
}

/** Points taps[dt] at the frame (KT - 1 - dt) * dilation frames back. */
static void ring_taps(const drsn_ring *ring, uint32_t kt, uint32_t dilation,
                      const float **taps)
{
  for (uint32_t dt = 0; dt < kt; dt++) {
    const uint32_t lag = (kt - 1 - dt) * dilation;
    const uint32_t slot = (ring->pos + ring->slots - lag) % ring->slots;
    taps[dt] = ring->data + slot * ring->slot_floats;
  }
}

/**
 * out[co][P + b] = bias[co] + sum_{ci,dt,df} w[co][ci][dt][df] *
 * taps[dt][ci][b + df], i.e. tap df reads band b + df - P.
 */
static void conv_frame(const float *restrict weight, const float *restrict bias,
                       uint32_t cout, uint32_t cin, uint32_t kt, uint32_t kf,
                       const float *const *taps, uint32_t bands,
                       uint32_t padded_bands, uint32_t pad,
                       float *restrict out, int relu)
{
  /* size_t indices: with uint32_t, b + 1 may wrap, which stops gcc from
   * treating x[b + df] as contiguous. */
  const size_t B = bands, Bp = padded_bands;
  for (size_t co = 0; co < cout; co++) {
    float *restrict y = out + co * Bp + pad;
    for (size_t b = 0; b < B; b++)
      y[b] = bias[co];

    for (size_t ci = 0; ci < cin; ci++) {
      for (size_t dt = 0; dt < kt; dt++) {
        const float *restrict x = taps[dt] + ci * Bp;
        const float *w = weight + ((co * cin + ci) * kt + dt) * kf;
        if (kf == 3) {
          const float w0 = w[0], w1 = w[1], w2 = w[2];
          for (size_t b = 0; b < B; b++)
            y[b] += w0 * x[b] + w1 * x[b + 1] + w2 * x[b + 2];
        } else if (kf == 1) {
          const float w0 = w[0];
          for (size_t b = 0; b < B; b++)
            y[b] += w0 * x[b];
        } else {
          for (size_t df = 0; df < kf; df++) {
            const float wv = w[df];
            const float *restrict xs = x + df;
            for (size_t b = 0; b < B; b++)
              y[b] += wv * xs[b];
          }
        }
      }
    }

    if (relu)
      for (size_t b = 0; b < B; b++)
        y[b] = y[b] > 0.0f ? y[b] : 0.0f;
  }
}

drsn_status drsn_net_create(const drsn_model *model, drsn_net **out,
                            drsn_error *err)
{
  *out = NULL;
  drsn_net *net = calloc(1, sizeof *net);
  if (!net)
    return drsn_error_set(err, DRSN_ERR_NO_MEMORY,
                          "engine: out of memory for the network state");

  net->model = model;
  net->B = model->band_count;
  net->P = (model->kernel_freq - 1) / 2;
  net->Bp = padded_bands(model);
  net->C = model->channels;
  net->H = model->attention_hidden;
  net->KT = model->kernel_time;
  net->KF = model->kernel_freq;
  net->R = model->recurrent_hidden;

  const size_t row = (size_t)net->C * net->Bp;
  const size_t floats = (size_t)drsn_net_state_floats(model);
  const size_t R = net->R ? net->R : 1;
  net->state = calloc(floats, sizeof(float));
  net->block_in = calloc(model->block_count ? model->block_count : 1,
                         sizeof *net->block_in);
  net->taps = calloc(net->KT, sizeof *net->taps);
  if (!net->state || !net->block_in || !net->taps) {
    drsn_net_destroy(net);
    return drsn_error_set(err, DRSN_ERR_NO_MEMORY,
                          "engine: out of memory for the network state");
  }

  float *next = net->state;
  ring_init(&net->stem_in, net->KT, (size_t)model->input_channels * net->Bp,
            &next);
  for (uint32_t i = 0; i < model->block_count; i++)
    ring_init(&net->block_in[i], block_slots(model, i), row, &next);
  net->h_out = take(&next, row);
  net->a = take(&next, row);
  net->r = take(&next, row);
  net->mean_abs = take(&next, net->C);
  net->tau = take(&next, net->C);
  net->u_mean = take(&next, net->C);
  net->hidden = take(&next, net->H);
  net->rnn_x = take(&next, R);
  net->rnn_h = take(&next, R);
  net->rnn_gi = take(&next, 3 * R);
  net->rnn_gh = take(&next, 3 * R);
  net->state_bytes = (size_t)(next - net->state) * sizeof(float) + sizeof *net +
                     model->block_count * sizeof *net->block_in +
                     net->KT * sizeof *net->taps;
  *out = net;
  return DRSN_OK;
}

void drsn_net_destroy(drsn_net *net)
{
  if (!net)
    return;
  free(net->state);
  free(net->block_in);
  free(net->taps);
  free(net);
}

static void ring_clear(drsn_ring *ring)
{
  memset(ring->data, 0, (size_t)ring->slots * ring->slot_floats * sizeof(float));
  ring->pos = 0;
}

void drsn_net_reset(drsn_net *net)
{
  const size_t row = (size_t)net->C * net->Bp;
  ring_clear(&net->stem_in);
  for (uint32_t i = 0; i < net->model->block_count; i++)
    ring_clear(&net->block_in[i]);
  memset(net->h_out, 0, row * sizeof(float));
  memset(net->rnn_h, 0, (net->R ? net->R : 1) * sizeof(float));
}

size_t drsn_net_state_bytes(const drsn_net *net)
{
  return net->state_bytes;
}

/** Shrinkage of block i: r becomes s = soft-threshold(r, alpha * mean|r|). */
static void shrink(const drsn_net *net, const drsn_block_weights *w)
{
  const uint32_t B = net->B, Bp = net->Bp, P = net->P, C = net->C, H = net->H;

  for (uint32_t c = 0; c < C; c++) {
    const float *r = net->r + (size_t)c * Bp + P;
    float sum = 0.0f;
    for (uint32_t b = 0; b < B; b++)
      sum += fabsf(r[b]);
    net->mean_abs[c] = sum / (float)B;
  }

  for (uint32_t h = 0; h < H; h++) {
    const float *row = w->fc1_weight + (size_t)h * C;
    float acc = w->fc1_bias[h];
    for (uint32_t c = 0; c < C; c++)
      acc += row[c] * net->mean_abs[c];
    net->hidden[h] = acc > 0.0f ? acc : 0.0f;
  }

  for (uint32_t c = 0; c < C; c++) {
    const float *row = w->fc2_weight + (size_t)c * H;
    float acc = w->fc2_bias[c];
    for (uint32_t h = 0; h < H; h++)
      acc += row[h] * net->hidden[h];
    net->tau[c] = sigmoidf(acc) * net->mean_abs[c];
  }

  for (uint32_t c = 0; c < C; c++) {
    float *restrict r = net->r + (size_t)c * Bp + P;
    const float tau = net->tau[c];
    for (uint32_t b = 0; b < B; b++) {
      const float excess = fabsf(r[b]) - tau;
      r[b] = excess > 0.0f ? copysignf(excess, r[b]) : 0.0f;
    }
  }
}

/*
 * The dot products below accumulate in DOT_LANES independent partial sums,
 * because gcc vectorises a reduction only when it may reorder the additions,
 * and a single running sum forbids that without -ffast-math. The result
 * differs from the sequential sum only by float rounding.
 */
#define DOT_LANES 8
_Static_assert(DOT_LANES == 8, "sum_lanes adds exactly 8 lanes");

static float sum_lanes(const float *lane)
{
  float half[DOT_LANES / 2];
  for (size_t k = 0; k < DOT_LANES / 2; k++)
    half[k] = lane[k] + lane[k + DOT_LANES / 2];
  return (half[0] + half[2]) + (half[1] + half[3]);
}

/** Returns sum_j a[j] b[j] for j < n. */
static float dot(const float *restrict a, const float *restrict b, size_t n)
{
  float lane[DOT_LANES] = {0.0f};
  size_t j = 0;
  for (; j + DOT_LANES <= n; j += DOT_LANES)
    for (size_t k = 0; k < DOT_LANES; k++)
      lane[k] += a[j + k] * b[j + k];

  float tail = 0.0f;
  for (; j < n; j++)
    tail += a[j] * b[j];
  return sum_lanes(lane) + tail;
}

/** y[i] = bias[i] + sum_j w[i][j] x[j] for i < rows, j < cols. */
static void dense(const float *restrict w, const float *restrict bias,
                  const float *restrict x, uint32_t rows, uint32_t cols,
                  float *restrict y)
{
  for (size_t i = 0; i < rows; i++)
    y[i] = bias[i] + dot(w + i * cols, x, cols);
}

/**
 * The recurrent path: x = relu(rnn_in(relu(h))), one GRU step on x, and
 * rnn_out of the new state added to the gain logits[B].
 */
static void recurrent(drsn_net *net, float *logits)
{
  const drsn_model *m = net->model;
  const uint32_t B = net->B, Bp = net->Bp, P = net->P, C = net->C, R = net->R;

  /* relu(h) without the pad bands, as [C][B] like the rnn_in weight rows.
   * It reuses net->r, because the blocks no longer need it and no layer
   * reads its pad bands. */
  float *restrict u = net->r;
  for (size_t c = 0; c < C; c++) {
    const float *restrict hc = net->h_out + c * Bp + P;
    for (size_t b = 0; b < B; b++)
      u[c * B + b] = hc[b] > 0.0f ? hc[b] : 0.0f;
  }
  dense(m->rnn_in_weight, m->rnn_in_bias, u, R, C * B, net->rnn_x);
  for (size_t i = 0; i < R; i++)
    net->rnn_x[i] = net->rnn_x[i] > 0.0f ? net->rnn_x[i] : 0.0f;

  dense(m->rnn_weight_ih, m->rnn_bias_ih, net->rnn_x, 3 * R, R, net->rnn_gi);
  dense(m->rnn_weight_hh, m->rnn_bias_hh, net->rnn_h, 3 * R, R, net->rnn_gh);
  for (size_t i = 0; i < R; i++) {
    const float reset = sigmoidf(net->rnn_gi[i] + net->rnn_gh[i]);
    const float update = sigmoidf(net->rnn_gi[R + i] + net->rnn_gh[R + i]);
    const float candidate =
        tanhf(net->rnn_gi[2 * R + i] + reset * net->rnn_gh[2 * R + i]);
    net->rnn_h[i] = (1.0f - update) * candidate + update * net->rnn_h[i];
  }

  for (size_t b = 0; b < B; b++) {
    const float *restrict w = m->rnn_out_weight + b * R;
    logits[b] += m->rnn_out_bias[b] + dot(w, net->rnn_h, R);
  }
}

float drsn_net_forward(drsn_net *net, const float *features, float *gains)
{
  const drsn_model *m = net->model;
  const uint32_t B = net->B, Bp = net->Bp, P = net->P, C = net->C;
  const uint32_t KT = net->KT, KF = net->KF;

  /* Stem. */
  float *x = ring_advance(&net->stem_in);
  for (uint32_t i = 0; i < m->input_channels; i++)
    memcpy(x + (size_t)i * Bp + P, features + (size_t)i * B, B * sizeof(float));
  ring_taps(&net->stem_in, KT, 1, net->taps);
  float *h = m->block_count ? ring_advance(&net->block_in[0]) : net->h_out;
  conv_frame(m->stem_weight, m->stem_bias, C, m->input_channels, KT, KF,
             net->taps, B, Bp, P, h, 1);

  /* Residual shrinkage blocks; h lives in block i's ring. */
  for (uint32_t i = 0; i < m->block_count; i++) {
    const drsn_block_weights *w = &m->blocks[i];
    ring_taps(&net->block_in[i], KT, w->dilation, net->taps);
    conv_frame(w->conv1_weight, w->conv1_bias, C, C, KT, KF, net->taps, B, Bp,
               P, net->a, 1);
    const float *a_tap = net->a;
    conv_frame(w->conv2_weight, w->conv2_bias, C, C, 1, KF, &a_tap, B, Bp, P,
               net->r, 0);
    shrink(net, w);

    float *next =
        i + 1 < m->block_count ? ring_advance(&net->block_in[i + 1]) : net->h_out;
    for (uint32_t c = 0; c < C; c++) {
      const float *restrict hc = h + (size_t)c * Bp + P;
      const float *restrict sc = net->r + (size_t)c * Bp + P;
      float *restrict nc = next + (size_t)c * Bp + P;
      for (uint32_t b = 0; b < B; b++)
        nc[b] = hc[b] + sc[b];
    }
    h = next;
  }

  /* Heads on u = relu(h). */
  const float gain_bias = m->gain_bias[0];
  for (uint32_t b = 0; b < B; b++)
    gains[b] = gain_bias;
  float voice_acc = m->vad_bias[0];
  for (uint32_t c = 0; c < C; c++) {
    const float *restrict hc = net->h_out + (size_t)c * Bp + P;
    const float gw = m->gain_weight[c];
    float sum = 0.0f;
    for (uint32_t b = 0; b < B; b++) {
      const float u = hc[b] > 0.0f ? hc[b] : 0.0f;
      gains[b] += gw * u;
      sum += u;
    }
    voice_acc += m->vad_weight[c] * (sum / (float)B);
  }
  if (net->R > 0)
    recurrent(net, gains);
  for (uint32_t b = 0; b < B; b++)
    gains[b] = sigmoidf(gains[b]);
  return sigmoidf(voice_acc);
}

static void copy_rows(const drsn_net *net, const float *src, float *out)
{
  for (uint32_t c = 0; c < net->C; c++)
    memcpy(out + (size_t)c * net->B, src + (size_t)c * net->Bp + net->P,
           net->B * sizeof(float));
}

void drsn_net_copy_stem(const drsn_net *net, float *out)
{
  copy_rows(net,
            net->model->block_count ? ring_current(&net->block_in[0])
                                    : net->h_out,
            out);
}

void drsn_net_copy_block(const drsn_net *net, uint32_t block, float *out)
{
  const uint32_t n = net->model->block_count;
  if (block >= n)
    return;
  copy_rows(net,
            block + 1 < n ? ring_current(&net->block_in[block + 1])
                          : net->h_out,
            out);
}

void drsn_net_copy_recurrent(const drsn_net *net, float *out)
{
  if (net->R > 0)
    memcpy(out, net->rnn_h, net->R * sizeof(float));
}

uint32_t drsn_net_recurrent_width(const drsn_net *net)
{
  return net->R;
}
