/*
 * test_engine.c: streaming behaviour of the engine: reconstruction at every
 * rate, block-size independence, causality, bad input, channels, framing.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "drsn_internal.h"
#include "model_writer.h"

#if defined(__SSE__) || defined(__x86_64__)
#include <xmmintrin.h>
#endif

static uint32_t rng_state = 12345;

static uint32_t rand_u32(void)
{
  rng_state ^= rng_state << 13;
  rng_state ^= rng_state >> 17;
  rng_state ^= rng_state << 5;
  return rng_state;
}

static float rand_signed(void)
{
  return (float)((rand_u32() >> 8) * (1.0 / 16777216.0)) * 2.0f - 1.0f;
}

/** A speech-like test signal: harmonic glide, amplitude wobble, noise. */
static float *make_signal(size_t n, double rate_hz, float noise)
{
  float *x = malloc(n * sizeof *x);
  assert_non_null(x);
  double phase = 0.0;
  for (size_t i = 0; i < n; i++) {
    const double t = (double)i / rate_hz;
    phase += 2.0 * 3.14159265358979 * (120.0 + 40.0 * sin(t * 2.0)) / rate_hz;
    double v = 0.0;
    for (int k = 1; k < 12; k++)
      v += sin(k * phase) / k;
    v *= 0.2 * (0.5 + 0.5 * sin(2.0 * 3.14159265358979 * 2.5 * t));
    x[i] = (float)v + noise * rand_signed();
  }
  return x;
}

/* Loads the built-in model named by DRSN_TEST_MODEL ("default" if unset). */
static drsn_model *load_default(void)
{
  const char *name = getenv("DRSN_TEST_MODEL");
  drsn_model *m = NULL;
  drsn_error err;
  if (drsn_model_load_builtin(name && *name ? name : "default", &m, &err) !=
      DRSN_OK)
    print_error("%s\n", err.message);
  assert_non_null(m);
  return m;
}

static drsn_model *load_spec(const mw_spec *spec)
{
  unsigned char *data;
  size_t size;
  assert_int_equal(mw_build(spec, NULL, &data, &size), 0);
  drsn_model *m = NULL;
  drsn_error err;
  assert_int_equal(drsn_model_load_memory(data, size, "spec", &m, &err),
                   DRSN_OK);
  free(data);
  return m;
}

static drsn_engine *make_engine(const drsn_model *m, double rate,
                                uint32_t channels)
{
  drsn_engine *e = NULL;
  drsn_error err;
  if (drsn_engine_create(m, rate, channels, &e, &err) != DRSN_OK)
    print_error("%s\n", err.message);
  assert_non_null(e);
  return e;
}

/** Processes planar buffers in blocks: 0 means one block, else random. */
static void run(drsn_engine *e, uint32_t channels, float **in, float **out,
                size_t n, uint32_t max_block)
{
  size_t done = 0;
  while (done < n) {
    uint32_t block = max_block ? 1 + rand_u32() % max_block : (uint32_t)n;
    if (block > n - done)
      block = (uint32_t)(n - done);
    const float *ip[DRSN_MAX_CHANNELS];
    float *op[DRSN_MAX_CHANNELS];
    for (uint32_t c = 0; c < channels; c++) {
      ip[c] = in[c] + done;
      op[c] = out[c] + done;
    }
    drsn_engine_process(e, ip, op, block);
    done += block;
  }
}

static void run_mono(drsn_engine *e, const float *in, float *out, size_t n,
                     uint32_t max_block)
{
  float *ip = (float *)in;
  run(e, 1, &ip, &out, n, max_block);
}

/* ------------------------------------------------------------------------ */

static void test_framing(void **state)
{
  (void)state;
  drsn_model *m = load_default();
  /* Hops for the default model's 480 at 48 kHz; other models scale them. */
  static const struct {
    double rate;
    uint32_t hop;
  } cases[] = {{48000, 480}, {44100, 441}, {16000, 160}, {8000, 80},
               {11025, 110}, {22050, 221}, {96000, 960}, {192000, 1920}};
  const uint32_t overlap = m->window_samples / m->hop_samples;
  for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
    const uint32_t hop =
        m->hop_samples == 480
            ? cases[i].hop
            : (uint32_t)lround(m->hop_samples * cases[i].rate / m->rate_hz);
    drsn_engine *e = make_engine(m, cases[i].rate, 1);
    assert_int_equal(drsn_engine_hop_samples(e), hop);
    assert_int_equal(drsn_engine_latency_samples(e), overlap * hop);
    drsn_engine_destroy(e);
  }
  drsn_model_free(m);
}

static void test_create_rejects(void **state)
{
  (void)state;
  drsn_model *m = load_default();
  drsn_engine *e = (drsn_engine *)0x1;
  drsn_error err;
  assert_int_equal(drsn_engine_create(m, 7999.0, 1, &e, &err),
                   DRSN_ERR_SAMPLE_RATE);
  assert_null(e);
  assert_non_null(strstr(err.message, "7999"));
  assert_int_equal(drsn_engine_create(m, 192001.0, 1, &e, &err),
                   DRSN_ERR_SAMPLE_RATE);
  assert_int_equal(drsn_engine_create(m, NAN, 1, &e, &err),
                   DRSN_ERR_SAMPLE_RATE);
  assert_int_equal(drsn_engine_create(m, 48000.0, 0, &e, &err),
                   DRSN_ERR_CHANNELS);
  assert_int_equal(drsn_engine_create(m, 48000.0, DRSN_MAX_CHANNELS + 1, &e,
                                      &err),
                   DRSN_ERR_CHANNELS);
  assert_non_null(strstr(err.message, "9"));
  assert_int_equal(drsn_engine_create(NULL, 48000.0, 1, &e, &err),
                   DRSN_ERR_INVALID_ARGUMENT);
  assert_int_equal(drsn_engine_create(m, 48000.0, 1, NULL, NULL),
                   DRSN_ERR_INVALID_ARGUMENT);

  /* NULL engines are ignored by every call. */
  drsn_engine_destroy(NULL);
  drsn_engine_reset(NULL);
  drsn_engine_set_linked(NULL, 1);
  drsn_engine_set_reduction_limit_db(NULL, 3.0f);
  drsn_engine_process(NULL, NULL, NULL, 10);
  assert_int_equal(drsn_engine_latency_samples(NULL), 0);
  drsn_model_free(m);
}

/** Output equals input delayed by the latency when the limit is 0 dB. */
static void check_reconstruction(const drsn_model *m, double rate,
                                 uint32_t channels, int linked)
{
  drsn_engine *e = make_engine(m, rate, channels);
  drsn_engine_set_reduction_limit_db(e, 0.0f);
  drsn_engine_set_linked(e, linked);
  const uint32_t L = drsn_engine_latency_samples(e);
  const size_t n = (size_t)(rate * 0.5) + 3 * L + 17;

  float *in[DRSN_MAX_CHANNELS], *out[DRSN_MAX_CHANNELS];
  for (uint32_t c = 0; c < channels; c++) {
    in[c] = malloc(n * sizeof(float));
    out[c] = malloc(n * sizeof(float));
    assert_non_null(in[c]);
    assert_non_null(out[c]);
    for (size_t i = 0; i < n; i++)
      in[c][i] = rand_signed();
  }
  run(e, channels, in, out, n, 1000);

  for (uint32_t c = 0; c < channels; c++) {
    double max_err = 0.0;
    for (size_t i = 0; i < n; i++) {
      const float want = i >= L ? in[c][i - L] : 0.0f;
      const double d = fabs((double)out[c][i] - want);
      if (d > max_err)
        max_err = d;
    }
    if (max_err >= 1e-5)
      print_error("rate %g channel %u: max error %g\n", rate, c, max_err);
    assert_true(max_err < 1e-5);
    free(in[c]);
    free(out[c]);
  }
  assert_true(drsn_engine_reduction_db(e) == 0.0f);
  drsn_engine_destroy(e);
}

static void test_perfect_reconstruction(void **state)
{
  (void)state;
  drsn_model *m = load_default();
  static const double rates[] = {48000, 44100, 16000, 8000,
                                 11025, 96000, 192000, 22050};
  for (size_t i = 0; i < sizeof rates / sizeof rates[0]; i++)
    check_reconstruction(m, rates[i], 1, 1);
  check_reconstruction(m, 48000, 2, 1);
  check_reconstruction(m, 44100, 3, 0);
  check_reconstruction(m, 8000, DRSN_MAX_CHANNELS, 0);
  drsn_model_free(m);
}

/** Random block sizes give the same bits as one block. */
static void check_streaming(const drsn_model *m, double rate,
                            uint32_t channels, int linked, float limit_db)
{
  const size_t n = (size_t)(rate * 2.0) + 123;
  float *in[DRSN_MAX_CHANNELS], *whole[DRSN_MAX_CHANNELS],
      *parts[DRSN_MAX_CHANNELS];
  for (uint32_t c = 0; c < channels; c++) {
    in[c] = make_signal(n, rate, 0.05f * (float)(c + 1));
    whole[c] = malloc(n * sizeof(float));
    parts[c] = malloc(n * sizeof(float));
    assert_non_null(whole[c]);
    assert_non_null(parts[c]);
  }

  drsn_engine *a = make_engine(m, rate, channels);
  drsn_engine *b = make_engine(m, rate, channels);
  drsn_engine_set_linked(a, linked);
  drsn_engine_set_linked(b, linked);
  drsn_engine_set_reduction_limit_db(a, limit_db);
  drsn_engine_set_reduction_limit_db(b, limit_db);
  run(a, channels, in, whole, n, 0);
  run(b, channels, in, parts, n, 4096);

  /* The network must actually be shaping the output. */
  double diff = 0.0;
  const uint32_t L = drsn_engine_latency_samples(a);
  for (size_t i = L; i < n; i++)
    diff += fabs(whole[0][i] - in[0][i - L]);
  assert_true(diff / (double)n > 1e-4);
  assert_true(drsn_engine_reduction_db(a) > 0.0f);
  assert_true(drsn_engine_reduction_db(a) <= limit_db + 1e-3f);
  assert_true(drsn_engine_voice_probability(a) >= 0.0f);
  assert_true(drsn_engine_voice_probability(a) <= 1.0f);

  for (uint32_t c = 0; c < channels; c++) {
    assert_memory_equal(whole[c], parts[c], n * sizeof(float));
    free(in[c]);
    free(whole[c]);
    free(parts[c]);
  }
  drsn_engine_destroy(a);
  drsn_engine_destroy(b);
}

static void test_streaming_matches_whole(void **state)
{
  (void)state;
  drsn_model *m = load_default();
  check_streaming(m, 48000, 1, 1, 30.0f);
  check_streaming(m, 44100, 2, 0, 60.0f);
  check_streaming(m, 16000, 2, 1, 12.0f);
  drsn_model_free(m);

  mw_spec spec;
  mw_small_spec(&spec);
  m = load_spec(&spec);
  check_streaming(m, 32000, 1, 1, 40.0f);
  drsn_model_free(m);
}

/** In-place processing gives the same result as separate buffers. */
static void test_in_place(void **state)
{
  (void)state;
  drsn_model *m = load_default();
  const size_t n = 48000;
  float *in[2] = {make_signal(n, 48000, 0.1f), make_signal(n, 48000, 0.3f)};
  float *out[2] = {malloc(n * sizeof(float)), malloc(n * sizeof(float))};
  float *buf[2] = {malloc(n * sizeof(float)), malloc(n * sizeof(float))};
  for (int c = 0; c < 2; c++)
    memcpy(buf[c], in[c], n * sizeof(float));

  drsn_engine *a = make_engine(m, 48000, 2);
  drsn_engine *b = make_engine(m, 48000, 2);
  drsn_engine_set_linked(a, 0);
  drsn_engine_set_linked(b, 0);
  run(a, 2, in, out, n, 700);
  run(b, 2, buf, buf, n, 700);
  for (int c = 0; c < 2; c++) {
    assert_memory_equal(out[c], buf[c], n * sizeof(float));
    free(in[c]);
    free(out[c]);
    free(buf[c]);
  }
  drsn_engine_destroy(a);
  drsn_engine_destroy(b);
  drsn_model_free(m);
}

/** Output before T never depends on input at or after T. */
static void test_causality(void **state)
{
  (void)state;
  drsn_model *m = load_default();
  const double rate = 48000;
  const size_t n = 48000;
  float *x = make_signal(n, rate, 0.05f);
  float *x2 = malloc(n * sizeof(float));
  float *y = malloc(n * sizeof(float));
  float *y2 = malloc(n * sizeof(float));
  assert_non_null(x2);
  assert_non_null(y);
  assert_non_null(y2);

  drsn_engine *e = make_engine(m, rate, 1);
  const uint32_t L = drsn_engine_latency_samples(e);
  run_mono(e, x, y, n, 0);

  static const size_t cuts[] = {1, 479, 480, 481, 959, 960, 5000, 20011};
  for (size_t k = 0; k < sizeof cuts / sizeof cuts[0]; k++) {
    const size_t T = cuts[k];
    memcpy(x2, x, n * sizeof(float));
    for (size_t i = T; i < n; i++)
      x2[i] = 3.0f * rand_signed();
    drsn_engine_reset(e);
    run_mono(e, x2, y2, n, 1 + k * 300);
    assert_memory_equal(y, y2, T * sizeof(float));

    /* And the change does show up once it has passed the latency. */
    int changed = 0;
    for (size_t i = T + L; i < n && !changed; i++)
      changed = y[i] != y2[i];
    assert_true(changed);
  }
  free(x);
  free(x2);
  free(y);
  free(y2);
  drsn_engine_destroy(e);
  drsn_model_free(m);
}

/** Frames of receptive field of the network (history of every conv). */
static uint32_t receptive_frames(const drsn_model *m)
{
  uint32_t r = 1 + (m->kernel_time - 1);
  for (uint32_t i = 0; i < m->block_count; i++)
    r += (m->kernel_time - 1) * m->blocks[i].dilation;
  return r;
}

static void test_non_finite_input(void **state)
{
  (void)state;
  drsn_model *m = load_default();
  const double rate = 48000;
  const size_t n = 288000, bad_start = 30000, bad_end = 31000;
  float *clean = make_signal(n, rate, 0.05f);
  float *bad = malloc(n * sizeof(float));
  float *zeroed = malloc(n * sizeof(float));
  float *y_clean = malloc(n * sizeof(float));
  float *y_bad = malloc(n * sizeof(float));
  float *y_zeroed = malloc(n * sizeof(float));
  memcpy(bad, clean, n * sizeof(float));
  memcpy(zeroed, clean, n * sizeof(float));
  for (size_t i = bad_start; i < bad_end; i++) {
    switch (i % 5) {
    case 0: bad[i] = NAN; zeroed[i] = 0.0f; break;
    case 1: bad[i] = INFINITY; zeroed[i] = 0.0f; break;
    case 2: bad[i] = -INFINITY; zeroed[i] = 0.0f; break;
    case 3: bad[i] = 1e30f; zeroed[i] = 1000.0f; break;
    default: bad[i] = -5000.0f; zeroed[i] = -1000.0f; break;
    }
  }

  drsn_engine *e = make_engine(m, rate, 1);
  const uint32_t L = drsn_engine_latency_samples(e);
  const uint32_t hop = drsn_engine_hop_samples(e);
  run_mono(e, clean, y_clean, n, 0);
  drsn_engine_reset(e);
  run_mono(e, bad, y_bad, n, 333);
  assert_int_equal(drsn_engine_replaced_samples(e), bad_end - bad_start);
  drsn_engine_reset(e);
  assert_int_equal(drsn_engine_replaced_samples(e), 0);
  run_mono(e, zeroed, y_zeroed, n, 0);

  for (size_t i = 0; i < n; i++)
    assert_true(isfinite(y_bad[i]));
  assert_true(isfinite(drsn_engine_voice_probability(e)));
  assert_true(isfinite(drsn_engine_reduction_db(e)));

  /* Bad samples enter as silence or the clamp, nothing else. The clamped
   * samples of the zeroed run hold the network for the same hops. */
  assert_memory_equal(y_bad, y_zeroed, n * sizeof(float));

  /* Hops whose window contains a replaced sample keep the last gains and
   * leave the running mean and the network state alone. After the burst the
   * output is the clean run's again, up to the few frames the network
   * skipped. Without the hold, the error over these 5 s was 28.8 to 31.2 dB
   * below the output for the low-latency models ll4 and ll5. */
  const size_t settled = bad_end + L + (receptive_frames(m) + 2) * hop;
  assert_true(settled < n);
  double diff = 0.0, power = 0.0;
  for (size_t i = settled; i < n; i++) {
    const double d = (double)y_bad[i] - (double)y_clean[i];
    diff += d * d;
    power += (double)y_clean[i] * y_clean[i];
  }
  print_message("after the burst: error %.1f dB below the clean output\n",
                10.0 * log10(power / (diff + 1e-30)));
  assert_true(diff < power * 1e-4);

  /* With unity gains the audio path is back to normal within two hops. */
  drsn_engine_reset(e);
  drsn_engine_set_reduction_limit_db(e, 0.0f);
  run_mono(e, bad, y_bad, n, 1024);
  for (size_t i = bad_end + L + 2 * hop; i < n; i++)
    assert_true(fabsf(y_bad[i] - clean[i - L]) < 1e-5f);

  free(clean);
  free(bad);
  free(zeroed);
  free(y_clean);
  free(y_bad);
  free(y_zeroed);
  drsn_engine_destroy(e);
  drsn_model_free(m);
}

/** Denormal input and decaying tails never leave denormals in the output,
 * and the caller's floating-point mode is restored. */
static void test_bad_channel_held_alone(void **state)
{
  (void)state;
  drsn_model *m = load_default();
  const size_t n = 48000;
  float *x = make_signal(n, 48000, 0.05f);
  float *mono = malloc(n * sizeof(float));
  float *nans = malloc(n * sizeof(float));
  float *st[2] = {malloc(n * sizeof(float)), malloc(n * sizeof(float))};
  for (size_t i = 0; i < n; i++)
    nans[i] = NAN;

  drsn_engine *e1 = make_engine(m, 48000, 1);
  run_mono(e1, x, mono, n, 0);

  /* Unlinked, a channel of NaN holds only its own network. */
  float *in[2] = {x, nans};
  drsn_engine *e2 = make_engine(m, 48000, 2);
  drsn_engine_set_linked(e2, 0);
  run(e2, 2, in, st, n, 512);
  assert_memory_equal(mono, st[0], n * sizeof(float));
  for (size_t i = 0; i < n; i++)
    assert_true(st[1][i] == 0.0f);

  /* A network held from the start keeps unity gains: a NaN in every hop's
   * window leaves the other samples as they came in, delayed. */
  float *sparse = malloc(n * sizeof(float));
  memcpy(sparse, x, n * sizeof(float));
  for (size_t i = 0; i < n; i += 480)
    sparse[i] = NAN;
  drsn_engine_reset(e1);
  run_mono(e1, sparse, mono, n, 0);
  const uint32_t L = drsn_engine_latency_samples(e1);
  for (size_t i = L; i < n; i++) {
    const float expected = (i - L) % 480 == 0 ? 0.0f : x[i - L];
    assert_true(fabsf(mono[i] - expected) < 1e-5f);
  }

  free(sparse);
  free(x);
  free(mono);
  free(nans);
  free(st[0]);
  free(st[1]);
  drsn_engine_destroy(e1);
  drsn_engine_destroy(e2);
  drsn_model_free(m);
}

static void test_denormals(void **state)
{
  (void)state;
  drsn_model *m = load_default();
  const size_t n = 48000;
  float *x = make_signal(n, 48000, 0.0f);
  float *y = malloc(n * sizeof(float));
  for (size_t i = n / 4; i < n; i++)
    x[i] = (i % 2 ? 1e-39f : -3e-42f) * (float)(i % 7);
  for (size_t i = n / 4; i < n / 2; i++)
    x[i] *= 1e-20f;

  drsn_engine *e = make_engine(m, 48000, 1);
#if defined(__SSE__) || defined(__x86_64__)
  const unsigned int before = _mm_getcsr();
#endif
  run_mono(e, x, y, n, 256);
#if defined(__SSE__) || defined(__x86_64__)
  assert_int_equal(_mm_getcsr(), before);
#endif
  for (size_t i = 0; i < n; i++) {
    assert_true(isfinite(y[i]));
    assert_true(fpclassify(y[i]) != FP_SUBNORMAL);
  }
  /* Long after the speech ends the output is exactly silent. */
  for (size_t i = n / 4 + 2 * drsn_engine_latency_samples(e); i < n; i++)
    assert_true(y[i] == 0.0f);
  free(x);
  free(y);
  drsn_engine_destroy(e);
  drsn_model_free(m);
}

/** Mono, linked stereo of identical channels and independent stereo agree. */
static void test_channels(void **state)
{
  (void)state;
  drsn_model *m = load_default();
  const size_t n = 30000;
  float *x = make_signal(n, 48000, 0.1f);
  float *mono = malloc(n * sizeof(float));
  float *st[2] = {malloc(n * sizeof(float)), malloc(n * sizeof(float))};
  float *in2[2] = {x, x};

  drsn_engine *e1 = make_engine(m, 48000, 1);
  run_mono(e1, x, mono, n, 0);

  for (int linked = 0; linked < 2; linked++) {
    drsn_engine *e2 = make_engine(m, 48000, 2);
    drsn_engine_set_linked(e2, linked);
    run(e2, 2, in2, st, n, 512);
    assert_memory_equal(mono, st[0], n * sizeof(float));
    assert_memory_equal(mono, st[1], n * sizeof(float));
    assert_int_equal(drsn_engine_net_count(e2), linked ? 1 : 2);
    drsn_engine_destroy(e2);
  }

  /* Independent channels: silence on one side does not change the other. */
  float *silence = calloc(n, sizeof(float));
  float *in3[2] = {x, silence};
  drsn_engine *e3 = make_engine(m, 48000, 2);
  drsn_engine_set_linked(e3, 0);
  run(e3, 2, in3, st, n, 0);
  assert_memory_equal(mono, st[0], n * sizeof(float));
  for (size_t i = 0; i < n; i++)
    assert_true(st[1][i] == 0.0f);

  /* Linked: the silent side changes the shared gains. */
  drsn_engine_set_linked(e3, 1);
  drsn_engine_reset(e3);
  run(e3, 2, in3, st, n, 0);
  assert_true(memcmp(mono, st[0], n * sizeof(float)) != 0);

  /* NULL channel pointers read as silence and are not written. */
  const float *ip[2] = {x, NULL};
  float *op[2] = {st[0], NULL};
  drsn_engine_process(e3, ip, op, 1000);

  free(silence);
  free(x);
  free(mono);
  free(st[0]);
  free(st[1]);
  drsn_engine_destroy(e1);
  drsn_engine_destroy(e3);
  drsn_model_free(m);
}

static void test_reset_and_limit(void **state)
{
  (void)state;
  drsn_model *m = load_default();
  const size_t n = 20000;
  float *x = make_signal(n, 48000, 0.2f);
  float *y1 = malloc(n * sizeof(float));
  float *y2 = malloc(n * sizeof(float));
  drsn_engine *e = make_engine(m, 48000, 1);
  run_mono(e, x, y1, n, 0);
  drsn_engine_reset(e);
  assert_int_equal(drsn_engine_frames(e), 0);
  run_mono(e, x, y2, n, 0);
  assert_memory_equal(y1, y2, n * sizeof(float));
  assert_int_equal(drsn_engine_frames(e), n / m->hop_samples);

  /* The limit bounds the per-band reduction, and is clamped to 0..100. */
  drsn_engine_set_reduction_limit_db(e, 6.0f);
  drsn_engine_reset(e);
  run_mono(e, x, y2, n, 0);
  assert_true(drsn_engine_reduction_db(e) <= 6.0f + 1e-3f);
  drsn_engine_set_reduction_limit_db(e, 1000.0f);
  drsn_engine_set_reduction_limit_db(e, NAN);
  drsn_engine_reset(e);
  run_mono(e, x, y2, n, 0);
  assert_true(drsn_engine_reduction_db(e) <= 100.0f);
  drsn_engine_set_reduction_limit_db(e, -5.0f);
  drsn_engine_reset(e);
  run_mono(e, x, y2, n, 0);
  assert_true(drsn_engine_reduction_db(e) == 0.0f);

  free(x);
  free(y1);
  free(y2);
  drsn_engine_destroy(e);
  drsn_model_free(m);
}

/** The output within the reported latency stands for the time before the
 * first input sample, so it is silent, also after a reset. A full-scale
 * square wave tests it, because its gains would spread back in time. */
static void test_latency_stretch_silent(void **state)
{
  (void)state;
  drsn_model *m = load_default();
  static const double rates[] = {48000, 44100, 96000, 16000};
  for (size_t r = 0; r < sizeof rates / sizeof rates[0]; r++) {
    const double rate = rates[r];
    drsn_engine *e = make_engine(m, rate, 1);
    const uint32_t L = drsn_engine_latency_samples(e);
    const size_t n = (size_t)L * 4;
    float *x = malloc(n * sizeof(float));
    float *y = malloc(n * sizeof(float));
    assert_non_null(x);
    assert_non_null(y);
    const size_t period = (size_t)(rate / 220.0);
    for (size_t i = 0; i < n; i++)
      x[i] = (i / (period / 2)) % 2 ? -1.0f : 1.0f;
    for (int pass = 0; pass < 2; pass++) {
      run_mono(e, x, y, n, 64);
      for (size_t i = 0; i < L; i++)
        if (y[i] != 0.0f)
          fail_msg("%.0f Hz pass %d: output %zu of %u in the latency is %g",
                   rate, pass, i, L, (double)y[i]);
      double energy = 0.0;
      for (size_t i = L; i < n; i++)
        energy += (double)y[i] * y[i];
      assert_true(energy / (double)(n - L) > 1e-3);
      drsn_engine_reset(e);
    }
    free(x);
    free(y);
    drsn_engine_destroy(e);
  }
  drsn_model_free(m);
}

/** A DC offset in the input passes to the output unchanged, after the
 * latency, and changes nothing else because the network never receives it.
 * Digital silence has no offset, even where it starts or ends within a hop:
 * the signal has a gap from 0.5 to 0.6 s and starts after 700 zeros. */
static void test_dc_offset_passes(void **state)
{
  (void)state;
  drsn_model *m = load_default();
  const size_t n = 72000, gap_start = 24000 + 123, gap_end = 28800 + 45;
  static const float offsets[] = {0.05f, -0.002f};
  float *x = make_signal(n, 48000, 0.05f);
  for (size_t i = 0; i < n; i++)
    if (i < 700 || (i >= gap_start && i < gap_end))
      x[i] = 0.0f;
  float *shifted = malloc(n * sizeof(float));
  float *y0 = malloc(n * sizeof(float));
  float *y1 = malloc(n * sizeof(float));
  assert_non_null(shifted);
  assert_non_null(y0);
  assert_non_null(y1);
  drsn_engine *e = make_engine(m, 48000, 1);
  const uint32_t L = drsn_engine_latency_samples(e);
  run_mono(e, x, y0, n, 0);
  for (size_t k = 0; k < sizeof offsets / sizeof offsets[0]; k++) {
    for (size_t i = 0; i < n; i++)
      shifted[i] = x[i] == 0.0f ? 0.0f : x[i] + offsets[k];
    drsn_engine_reset(e);
    run_mono(e, shifted, y1, n, 700);
    double max_err = 0.0;
    for (size_t i = 0; i < n; i++) {
      const int offset_in = i >= L && shifted[i - L] != 0.0f;
      const double want = (double)y0[i] + (offset_in ? offsets[k] : 0.0f);
      const double d = fabs((double)y1[i] - want);
      if (d > max_err)
        max_err = d;
    }
    if (max_err >= 1e-4)
      print_error("offset %g: max error %g\n", offsets[k], max_err);
    assert_true(max_err < 1e-4);
  }
  free(x);
  free(shifted);
  free(y0);
  free(y1);
  drsn_engine_destroy(e);
  drsn_model_free(m);
}

/** Band weights add up to 1 in every bin and follow design.md's rules. */
static void test_band_weights(void **state)
{
  (void)state;
  drsn_model *m = load_default();
  static const double rates[] = {48000, 44100, 8000, 11025, 192000};
  for (size_t r = 0; r < sizeof rates / sizeof rates[0]; r++) {
    drsn_engine *e = make_engine(m, rates[r], 1);
    const drsn_bands *bands = drsn_engine_bands(e);
    const uint32_t W = drsn_engine_latency_samples(e);
    for (uint32_t k = 0; k < bands->bins; k++) {
      double sum = 0.0;
      for (uint32_t b = 0; b < bands->band_count; b++) {
        const float w = drsn_bands_weight(bands, b, k);
        assert_true(w >= 0.0f && w <= 1.0f);
        sum += w;
      }
      assert_true(fabs(sum - 1.0) < 1e-6);
      const double f = k * rates[r] / W;
      if (f >= 20000.0)
        assert_true(drsn_bands_weight(bands, 31, k) == 1.0f);
    }
    drsn_engine_destroy(e);
  }

  /* At 48 kHz, 50 Hz bins: 100 Hz is band 1 alone, 150 Hz is half 1, half 2,
   * 1400 Hz is half 13 (1300) and half 14 (1500). This needs the default
   * model's 960-sample window. */
  if (m->window_samples != 960) {
    drsn_model_free(m);
    return;
  }
  drsn_engine *e = make_engine(m, 48000, 1);
  const drsn_bands *bands = drsn_engine_bands(e);
  assert_true(drsn_bands_weight(bands, 0, 0) == 1.0f);
  assert_true(drsn_bands_weight(bands, 1, 2) == 1.0f);
  assert_true(fabsf(drsn_bands_weight(bands, 1, 3) - 0.5f) < 1e-7f);
  assert_true(fabsf(drsn_bands_weight(bands, 2, 3) - 0.5f) < 1e-7f);
  assert_true(fabsf(drsn_bands_weight(bands, 13, 28) - 0.5f) < 1e-7f);
  assert_true(fabsf(drsn_bands_weight(bands, 14, 28) - 0.5f) < 1e-7f);
  assert_true(bands->energy_scale == 1.0f);
  drsn_engine_destroy(e);
  drsn_model_free(m);
}

/** A tone gives the same band features at every host rate. */
static void test_features_rate_independent(void **state)
{
  (void)state;
  drsn_model *m = load_default();
  static const double rates[] = {48000, 16000, 44100, 96000};
  float ref[32];
  for (size_t r = 0; r < sizeof rates / sizeof rates[0]; r++) {
    const double rate = rates[r];
    const size_t n = (size_t)(rate * 0.2);
    float *x = malloc(n * sizeof(float));
    float *y = malloc(n * sizeof(float));
    for (size_t i = 0; i < n; i++)
      x[i] = (float)(0.3 * sin(2.0 * 3.14159265358979 * 1000.0 * i / rate));
    drsn_engine *e = make_engine(m, rate, 1);
    run_mono(e, x, y, n, 0);
    const float *feat = drsn_engine_features(e, 0);
    const float *scale = m->feature_scale;
    if (r == 0) {
      memcpy(ref, feat, sizeof ref);
    } else {
      /* Band 10 is centred on 1 kHz. Compare in ln-energy units. */
      const float d = fabsf(feat[10] - ref[10]) / fabsf(scale[10]);
      if (d > 0.05f)
        print_error("rate %g: feature 10 is %g, at 48 kHz %g\n", rate,
                    (double)feat[10], (double)ref[10]);
      assert_true(d < 0.05f);
    }
    free(x);
    free(y);
    drsn_engine_destroy(e);
  }
  drsn_model_free(m);
}

static void *create_destroy_loop(void *arg)
{
  const drsn_model *m = arg;
  static const double rates[] = {44100, 48000, 22050, 96000, 11025};
  for (int i = 0; i < 40; i++) {
    drsn_engine *e = NULL;
    if (drsn_engine_create(m, rates[i % 5], 2, &e, NULL) != DRSN_OK)
      return (void *)1;
    float buf[256] = {0};
    float *p[2] = {buf, buf};
    drsn_engine_process(e, (const float *const *)p, p, 256);
    drsn_engine_destroy(e);
  }
  return NULL;
}

/** Engines may be made and freed from several threads at once. */
static void test_concurrent_create(void **state)
{
  (void)state;
  drsn_model *m = load_default();
  pthread_t threads[4];
  for (int i = 0; i < 4; i++)
    assert_int_equal(pthread_create(&threads[i], NULL, create_destroy_loop, m),
                     0);
  for (int i = 0; i < 4; i++) {
    void *result;
    pthread_join(threads[i], &result);
    assert_null(result);
  }
  drsn_model_free(m);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_framing),
      cmocka_unit_test(test_create_rejects),
      cmocka_unit_test(test_perfect_reconstruction),
      cmocka_unit_test(test_streaming_matches_whole),
      cmocka_unit_test(test_in_place),
      cmocka_unit_test(test_causality),
      cmocka_unit_test(test_non_finite_input),
      cmocka_unit_test(test_bad_channel_held_alone),
      cmocka_unit_test(test_denormals),
      cmocka_unit_test(test_channels),
      cmocka_unit_test(test_reset_and_limit),
      cmocka_unit_test(test_latency_stretch_silent),
      cmocka_unit_test(test_dc_offset_passes),
      cmocka_unit_test(test_band_weights),
      cmocka_unit_test(test_features_rate_independent),
      cmocka_unit_test(test_concurrent_create),
  };
  return cmocka_run_group_tests_name("dsp_engine", tests, NULL, NULL);
}
