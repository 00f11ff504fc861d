/*
 * test_realtime.c: drsn_engine_process must not touch the heap. The test
 * binary interposes malloc and friends; while the trap is armed any call is
 * counted, and the test fails if the count is not zero.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "alloc_trap.h"
#include "drsn_internal.h"

static void test_trap_works(void **state)
{
  (void)state;
  alloc_trap_arm();
  void *volatile p = malloc(16);
  free(p);
  alloc_trap_disarm();
  assert_int_equal(alloc_trap_calls(), 2);
}

static void run_blocks(drsn_engine *e, uint32_t channels, uint32_t max_block,
                       float *const *buf, uint32_t seconds_samples)
{
  uint32_t done = 0, block = 1;
  while (done < seconds_samples) {
    uint32_t n = block;
    if (n > seconds_samples - done)
      n = seconds_samples - done;
    alloc_trap_arm();
    drsn_engine_process(e, (const float *const *)buf, buf, n);
    alloc_trap_disarm();
    if (alloc_trap_calls())
      fail_msg("%lu heap calls in process(%u frames, %u channels)",
               (unsigned long)alloc_trap_calls(), n, channels);
    done += n;
    block = block * 3 + 1;
    if (block > max_block)
      block = block % max_block + 1;
  }
}

/** Every block size from 1 to 8192 once, at 48 kHz in stereo. */
/* Loads the built-in model named by DRSN_TEST_MODEL ("default" if unset). */
static drsn_status load_test_model(drsn_model **m, drsn_error *err)
{
  const char *name = getenv("DRSN_TEST_MODEL");
  return drsn_model_load_builtin(name && *name ? name : "default", m, err);
}

static void test_every_block_size(void **state)
{
  (void)state;
  drsn_model *m = NULL;
  drsn_engine *e = NULL;
  drsn_error err;
  assert_int_equal(load_test_model(&m, &err), DRSN_OK);
  assert_int_equal(drsn_engine_create(m, 48000, 2, &e, &err), DRSN_OK);
  drsn_engine_set_linked(e, 0);
  float *buf[2] = {malloc(8192 * sizeof(float)), malloc(8192 * sizeof(float))};
  assert_non_null(buf[0]);
  assert_non_null(buf[1]);

  for (uint32_t n = 1; n <= 8192; n++) {
    for (uint32_t i = 0; i < n; i++)
      buf[0][i] = buf[1][i] = 0.1f * sinf(0.05f * (float)i);
    alloc_trap_arm();
    drsn_engine_process(e, (const float *const *)buf, buf, n);
    alloc_trap_disarm();
    if (alloc_trap_calls())
      fail_msg("%lu heap calls in process(%u frames)",
               (unsigned long)alloc_trap_calls(), n);
  }
  free(buf[0]);
  free(buf[1]);
  drsn_engine_destroy(e);
  drsn_model_free(m);
}

static void test_process_never_allocates(void **state)
{
  (void)state;
  drsn_model *m = NULL;
  drsn_error err;
  assert_int_equal(load_test_model(&m, &err), DRSN_OK);

  static const double rates[] = {48000, 44100, 8000, 192000};
  static const uint32_t sizes[] = {1, 2, 3, 64, 479, 480, 481, 1024, 4096,
                                   8192};
  for (size_t r = 0; r < sizeof rates / sizeof rates[0]; r++) {
    for (uint32_t channels = 1; channels <= 2; channels++) {
      drsn_engine *e = NULL;
      assert_int_equal(drsn_engine_create(m, rates[r], channels, &e, &err),
                       DRSN_OK);
      drsn_engine_set_linked(e, channels == 2 && r % 2);
      float *buf[2];
      for (uint32_t c = 0; c < channels; c++) {
        buf[c] = malloc(8192 * sizeof(float));
        assert_non_null(buf[c]);
      }

      for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        /* Fixed size blocks with noisy, NaN-sprinkled input. */
        for (int rep = 0; rep < 4; rep++) {
          for (uint32_t c = 0; c < channels; c++)
            for (uint32_t i = 0; i < sizes[s]; i++)
              buf[c][i] = (i % 997 == 5) ? NAN
                                         : 0.3f * sinf(0.01f * (float)i * (float)(rep + 1));
          alloc_trap_arm();
          drsn_engine_process(e, (const float *const *)buf, buf, sizes[s]);
          drsn_engine_set_reduction_limit_db(e, (float)(rep * 20));
          drsn_engine_set_linked(e, rep & 1);
          (void)drsn_engine_voice_probability(e);
          (void)drsn_engine_reduction_db(e);
          alloc_trap_disarm();
          if (alloc_trap_calls())
            fail_msg("%lu heap calls in process(%u frames) at %g Hz",
                     (unsigned long)alloc_trap_calls(), sizes[s], rates[r]);
        }
      }

      /* Sizes from 1 to 8192 in a scrambled sequence. */
      run_blocks(e, channels, 8192, buf, (uint32_t)rates[r] * 2);

      alloc_trap_arm();
      drsn_engine_reset(e);
      alloc_trap_disarm();
      assert_int_equal(alloc_trap_calls(), 0);

      for (uint32_t c = 0; c < channels; c++)
        free(buf[c]);
      drsn_engine_destroy(e);
    }
  }
  drsn_model_free(m);
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_trap_works),
      cmocka_unit_test(test_process_never_allocates),
      cmocka_unit_test(test_every_block_size),
  };
  return cmocka_run_group_tests_name("dsp_realtime", tests, NULL, NULL);
}
