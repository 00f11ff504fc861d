/*
 * test_lv2_rt.c: loads the LV2 module like a host does and checks that the
 * audio-thread functions (run and work_response) never allocate or free.
 *
 * The heap functions of tests/alloc_trap.c are linked into this executable
 * and exported (export_dynamic), so every call from the dlopen'ed module,
 * the engine and FFTW lands there and is counted while the trap is armed.
 * The test also acts as the host's worker: jobs scheduled in run() are
 * queued in static memory and work() runs them outside the trap.
 *
 * The other tests check what run() outputs for unusual input (NaN, Inf,
 * denormals), that a FIFO as the model path fails at once, how restore()
 * treats the model key, and how the Model port switches between the
 * built-in models and yields to a model file.
 *
 * Environment: DRSN_LV2_MODULE is the path of drsn.so, DRSN_TEST_MODEL a
 * valid model file.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "alloc_trap.h"

#include <lv2/atom/atom.h>
#include <lv2/atom/forge.h>
#include <lv2/atom/util.h>
#include <lv2/buf-size/buf-size.h>
#include <lv2/core/lv2.h>
#include <lv2/log/log.h>
#include <lv2/options/options.h>
#include <lv2/patch/patch.h>
#include <lv2/state/state.h>
#include <lv2/urid/urid.h>
#include <lv2/worker/worker.h>

#include <dlfcn.h>
#include <math.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ---------------------------------------------------------------------- */
/* Minimal host: URID map, log, options, worker                            */

#define MAX_URIS 64
static char uri_table[MAX_URIS][128];
static uint32_t uri_count;

static LV2_URID map_uri(LV2_URID_Map_Handle handle, const char *uri)
{
  (void)handle;
  for (uint32_t i = 0; i < uri_count; ++i) {
    if (!strcmp(uri_table[i], uri)) {
      return i + 1;
    }
  }
  if (uri_count == MAX_URIS || strlen(uri) >= sizeof uri_table[0]) {
    return 0;
  }
  strcpy(uri_table[uri_count], uri);
  return ++uri_count;
}

static int error_logs;
static char last_error[1024];

static int log_vprintf(LV2_Log_Handle handle, LV2_URID type, const char *fmt,
                       va_list ap)
{
  (void)handle;
  if (type == map_uri(NULL, LV2_LOG__Error)) {
    ++error_logs;
    va_list copy;
    va_copy(copy, ap);
    vsnprintf(last_error, sizeof last_error, fmt, copy);
    va_end(copy);
  }
  return vfprintf(stderr, fmt, ap);
}

static int log_printf(LV2_Log_Handle handle, LV2_URID type, const char *fmt,
                      ...)
{
  va_list ap;
  va_start(ap, fmt);
  const int n = log_vprintf(handle, type, fmt, ap);
  va_end(ap);
  return n;
}

/* Fixed-size job queues, so that scheduling from run() allocates nothing. */
#define JOB_MAX 8
#define JOB_BYTES 8192
typedef struct {
  uint32_t count;
  uint32_t size[JOB_MAX];
  uint8_t data[JOB_MAX][JOB_BYTES];
} job_queue;

static job_queue work_jobs;
static job_queue responses;

static LV2_Worker_Status push_job(job_queue *queue, uint32_t size,
                                  const void *data)
{
  if (queue->count == JOB_MAX || size > JOB_BYTES) {
    return LV2_WORKER_ERR_NO_SPACE;
  }
  memcpy(queue->data[queue->count], data, size);
  queue->size[queue->count++] = size;
  return LV2_WORKER_SUCCESS;
}

static LV2_Worker_Status schedule_work(LV2_Worker_Schedule_Handle handle,
                                       uint32_t size, const void *data)
{
  (void)handle;
  return push_job(&work_jobs, size, data);
}

static LV2_Worker_Status respond(LV2_Worker_Respond_Handle handle,
                                 uint32_t size, const void *data)
{
  (void)handle;
  return push_job(&responses, size, data);
}

/* ---------------------------------------------------------------------- */
/* Plugin instance under test                                              */

enum {
  PORT_CONTROL,
  PORT_NOTIFY,
  PORT_ENABLE,
  PORT_LIMIT,
  PORT_MIX,
  PORT_RESIDUAL,
  PORT_LATENCY,
  PORT_VOICE,
  PORT_REDUCTION,
  PORT_AUDIO
};

/* The Model port follows the audio ports (mono) or the Link port (stereo). */
static uint32_t model_port_index(uint32_t channels)
{
  return channels == 2 ? PORT_AUDIO + 5 : PORT_AUDIO + 2;
}

/* Latencies at RATE of the models that the Model port selects. */
#define DEFAULT_LATENCY 960.0f
#define LOW_LATENCY 480.0f

#define RATE 48000.0

/* Sample rate that open_host() passes to instantiate(). */
static double host_rate = RATE;
#define MAX_BLOCK 8192
#define ATOM_BYTES 8192

typedef struct {
  void *library;
  const LV2_Descriptor *descriptor;
  LV2_Handle handle;
  const LV2_Worker_Interface *worker;
  const LV2_State_Interface *state;
  uint32_t channels;

  float enable, limit, mix, residual, link, model;
  float latency, voice, reduction;
  float in[2][MAX_BLOCK];
  float out[2][MAX_BLOCK];
  union {
    LV2_Atom_Sequence seq;
    uint8_t bytes[ATOM_BYTES];
  } control, notify;

  LV2_Atom_Forge forge;
  uint32_t noise_state;
  int freed_stages; /* FREE jobs seen by the worker */
} host;

static LV2_URID_Map urid_map = {NULL, map_uri};
static LV2_Log_Log log_feature = {NULL, log_printf, log_vprintf};
static LV2_Worker_Schedule schedule = {NULL, schedule_work};
static int32_t nominal_block = 256;
static LV2_Options_Option options[3];
static LV2_Feature map_f = {LV2_URID__map, &urid_map};
static LV2_Feature log_f = {LV2_LOG__log, &log_feature};
static LV2_Feature sched_f = {LV2_WORKER__schedule, &schedule};
static LV2_Feature opts_f = {LV2_OPTIONS__options, options};
static const LV2_Feature *all_features[] = {&map_f, &log_f, &sched_f, &opts_f,
                                            NULL};

static float next_noise(host *h)
{
  h->noise_state = h->noise_state * 1664525u + 1013904223u;
  return (float)((int32_t)h->noise_state) / 2147483648.0f * 0.3f;
}

static void fill_input(host *h, uint32_t frames)
{
  for (uint32_t i = 0; i < frames; ++i) {
    for (uint32_t c = 0; c < h->channels; ++c) {
      h->in[c][i] = next_noise(h);
    }
  }
}

/* Clears the control port to an empty sequence. */
static void clear_control(host *h)
{
  lv2_atom_forge_set_buffer(&h->forge, h->control.bytes, ATOM_BYTES);
  LV2_Atom_Forge_Frame frame;
  lv2_atom_forge_sequence_head(&h->forge, &frame, 0);
  lv2_atom_forge_pop(&h->forge, &frame);
}

/* Writes patch:Set <model> = path into the control port. */
static void send_model_path(host *h, const char *path)
{
  lv2_atom_forge_set_buffer(&h->forge, h->control.bytes, ATOM_BYTES);
  LV2_Atom_Forge_Frame seq_frame;
  LV2_Atom_Forge_Frame obj_frame;
  lv2_atom_forge_sequence_head(&h->forge, &seq_frame, 0);
  lv2_atom_forge_frame_time(&h->forge, 0);
  lv2_atom_forge_object(&h->forge, &obj_frame, 0,
                        map_uri(NULL, LV2_PATCH__Set));
  lv2_atom_forge_key(&h->forge, map_uri(NULL, LV2_PATCH__property));
  lv2_atom_forge_urid(&h->forge, map_uri(NULL, "urn:drsn-denoise:model"));
  lv2_atom_forge_key(&h->forge, map_uri(NULL, LV2_PATCH__value));
  lv2_atom_forge_path(&h->forge, path, (uint32_t)strlen(path));
  lv2_atom_forge_pop(&h->forge, &obj_frame);
  lv2_atom_forge_pop(&h->forge, &seq_frame);
}

/* Returns the path of the last patch:Set in the notify port, or NULL. */
static const char *notified_path(host *h)
{
  const char *found = NULL;
  const LV2_URID patch_set = map_uri(NULL, LV2_PATCH__Set);
  const LV2_URID patch_value = map_uri(NULL, LV2_PATCH__value);
  LV2_ATOM_SEQUENCE_FOREACH (&h->notify.seq, ev) {
    const LV2_Atom_Object *obj = (const LV2_Atom_Object *)&ev->body;
    if (obj->body.otype != patch_set) {
      continue;
    }
    const LV2_Atom *value = NULL;
    lv2_atom_object_get(obj, patch_value, &value, 0);
    if (value) {
      found = (const char *)LV2_ATOM_BODY_CONST(value);
    }
  }
  return found;
}

/* Runs one block inside the trap, then the worker outside it, then the
 * responses inside it again. Returns the number of trapped calls. */
static int run_block(host *h, uint32_t frames)
{
  h->notify.seq.atom.type = 0;
  h->notify.seq.atom.size = ATOM_BYTES - sizeof(LV2_Atom);

  alloc_trap_arm();
  h->descriptor->run(h->handle, frames);
  alloc_trap_disarm();
  int calls = alloc_trap_calls();

  for (uint32_t j = 0; j < work_jobs.count; ++j) {
    uint32_t kind;
    memcpy(&kind, work_jobs.data[j], sizeof kind);
    if (kind == 2) { /* free request: see worker_msg in drsn_lv2.c */
      ++h->freed_stages;
    }
    h->worker->work(h->handle, respond, NULL, work_jobs.size[j],
                    work_jobs.data[j]);
  }
  work_jobs.count = 0;

  alloc_trap_arm();
  for (uint32_t j = 0; j < responses.count; ++j) {
    h->worker->work_response(h->handle, responses.size[j],
                             responses.data[j]);
  }
  alloc_trap_disarm();
  calls += alloc_trap_calls();
  responses.count = 0;

  clear_control(h);
  return calls;
}

static host *open_host(const char *uri, uint32_t channels,
                       const LV2_Feature *const *features)
{
  host *h = calloc(1, sizeof *h);
  assert_non_null(h);
  const char *module = getenv("DRSN_LV2_MODULE");
  assert_non_null(module);
  h->library = dlopen(module, RTLD_NOW | RTLD_LOCAL);
  if (!h->library) {
    fail_msg("dlopen %s failed: %s", module, dlerror());
  }
  LV2_Descriptor_Function get =
      (LV2_Descriptor_Function)(uintptr_t)dlsym(h->library, "lv2_descriptor");
  assert_non_null(get);
  for (uint32_t i = 0; get(i); ++i) {
    if (!strcmp(get(i)->URI, uri)) {
      h->descriptor = get(i);
    }
  }
  assert_non_null(h->descriptor);
  h->worker = h->descriptor->extension_data(LV2_WORKER__interface);
  h->state = h->descriptor->extension_data(LV2_STATE__interface);
  assert_non_null(h->worker);
  assert_non_null(h->state);

  h->handle =
      h->descriptor->instantiate(h->descriptor, host_rate, "", features);
  assert_non_null(h->handle);
  h->channels = channels;
  h->noise_state = 12345u;
  h->enable = 1.0f;
  h->limit = 30.0f;
  h->mix = 100.0f;
  h->residual = 0.0f;
  h->link = 1.0f;
  lv2_atom_forge_init(&h->forge, &urid_map);
  clear_control(h);

  const LV2_Descriptor *d = h->descriptor;
  d->connect_port(h->handle, PORT_CONTROL, &h->control);
  d->connect_port(h->handle, PORT_NOTIFY, &h->notify);
  d->connect_port(h->handle, PORT_ENABLE, &h->enable);
  d->connect_port(h->handle, PORT_LIMIT, &h->limit);
  d->connect_port(h->handle, PORT_MIX, &h->mix);
  d->connect_port(h->handle, PORT_RESIDUAL, &h->residual);
  d->connect_port(h->handle, PORT_LATENCY, &h->latency);
  d->connect_port(h->handle, PORT_VOICE, &h->voice);
  d->connect_port(h->handle, PORT_REDUCTION, &h->reduction);
  for (uint32_t c = 0; c < channels; ++c) {
    d->connect_port(h->handle, PORT_AUDIO + c, h->in[c]);
    d->connect_port(h->handle, PORT_AUDIO + channels + c, h->out[c]);
  }
  if (channels == 2) {
    d->connect_port(h->handle, PORT_AUDIO + 4, &h->link);
  }
  d->connect_port(h->handle, model_port_index(channels), &h->model);
  d->activate(h->handle);
  return h;
}

static void close_host(host *h)
{
  h->descriptor->deactivate(h->handle);
  h->descriptor->cleanup(h->handle);
  dlclose(h->library);
  free(h);
}

static int setup_options(void **state)
{
  (void)state;
  options[0] = (LV2_Options_Option){
      LV2_OPTIONS_INSTANCE, 0, map_uri(NULL, LV2_BUF_SIZE__nominalBlockLength),
      sizeof(int32_t), map_uri(NULL, LV2_ATOM__Int), &nominal_block};
  options[1] = (LV2_Options_Option){LV2_OPTIONS_INSTANCE, 0,
                                    map_uri(NULL, LV2_BUF_SIZE__maxBlockLength),
                                    sizeof(int32_t), map_uri(NULL, LV2_ATOM__Int),
                                    &nominal_block};
  options[2] = (LV2_Options_Option){LV2_OPTIONS_INSTANCE, 0, 0, 0, 0, NULL};
  return 0;
}

static void assert_finite_output(const host *h, uint32_t frames)
{
  for (uint32_t c = 0; c < h->channels; ++c) {
    for (uint32_t i = 0; i < frames; ++i) {
      assert_true(isfinite(h->out[c][i]));
    }
  }
}

/* ---------------------------------------------------------------------- */
/* Tests                                                                   */

static const uint32_t block_sizes[] = {1,   2,   3,    7,    31,   64,   100,
                                       128, 255, 256,  479,  480,  481,  512,
                                       960, 1000, 1024, 2048, 4096, 8192};

static void run_all_block_sizes(host *h)
{
  for (size_t k = 0; k < sizeof block_sizes / sizeof block_sizes[0]; ++k) {
    const uint32_t frames = block_sizes[k];
    for (int repeat = 0; repeat < 3; ++repeat) {
      fill_input(h, frames);
      const int calls = run_block(h, frames);
      if (calls) {
        fail_msg("run(%u) made %d allocator calls", frames, calls);
      }
      assert_finite_output(h, frames);
    }
  }
  assert_float_equal(h->latency, 960.0f, 0.0f);
}

/* The harness itself: calls from this binary and from the module count. */
static void trap_sees_allocations(void **state)
{
  (void)state;
  void *(*volatile allocate)(size_t) = malloc;
  void (*volatile release)(void *) = free;
  alloc_trap_arm();
  release(allocate(16));
  alloc_trap_disarm();
  assert_int_equal(alloc_trap_calls(), 2);

  host *h = open_host("urn:drsn-denoise:mono", 1, all_features);
  alloc_trap_arm();
  h->descriptor->cleanup(h->handle);
  alloc_trap_disarm();
  assert_true(alloc_trap_calls() > 0);
  dlclose(h->library);
  free(h);
}

static void block_sizes_mono(void **state)
{
  (void)state;
  host *h = open_host("urn:drsn-denoise:mono", 1, all_features);
  run_all_block_sizes(h);
  close_host(h);
}

static void block_sizes_stereo(void **state)
{
  (void)state;
  host *h = open_host("urn:drsn-denoise:stereo", 2, all_features);
  run_all_block_sizes(h);
  close_host(h);
}

static void control_changes(void **state)
{
  (void)state;
  host *h = open_host("urn:drsn-denoise:stereo", 2, all_features);
  for (int block = 0; block < 200; ++block) {
    const uint32_t frames = block_sizes[block % 20];
    h->limit = (float)(block % 7) * 10.0f;
    h->mix = (float)(block % 5) * 25.0f;
    h->residual = (float)((block / 3) % 2);
    h->link = (float)((block / 5) % 2);
    h->enable = (float)((block / 4) % 2);
    fill_input(h, frames);
    const int calls = run_block(h, frames);
    if (calls) {
      fail_msg("block %d (%u frames) made %d allocator calls", block, frames,
               calls);
    }
    assert_finite_output(h, frames);
    assert_float_equal(h->latency, 960.0f, 0.0f);
  }
  close_host(h);
}

/* Bypassed output is exactly the input delayed by the reported latency. */
static void bypass_is_delayed_input(void **state)
{
  (void)state;
  host *h = open_host("urn:drsn-denoise:mono", 1, all_features);
  h->enable = 0.0f;
  static float history[48000];
  uint32_t written = 0;
  uint32_t checked = 0;
  while (written + 256 <= 48000) {
    fill_input(h, 256);
    memcpy(history + written, h->in[0], 256 * sizeof(float));
    assert_int_equal(run_block(h, 256), 0);
    for (uint32_t i = 0; i < 256; ++i) {
      const uint32_t t = written + i;
      const float expected = t >= 960 ? history[t - 960] : 0.0f;
      assert_float_equal(h->out[0][i], expected, 0.0f);
      ++checked;
    }
    written += 256;
  }
  assert_int_equal(checked, written);
  assert_float_equal(h->latency, 960.0f, 0.0f);
  assert_float_equal(h->reduction, 0.0f, 0.0f);
  close_host(h);
}

/* Loads a model through the worker and checks the swap in run(). */
static void model_swap(void **state)
{
  (void)state;
  const char *model = getenv("DRSN_TEST_MODEL");
  assert_non_null(model);
  host *h = open_host("urn:drsn-denoise:stereo", 2, all_features);
  for (int i = 0; i < 5; ++i) {
    fill_input(h, 512);
    assert_int_equal(run_block(h, 512), 0);
  }

  const int freed_before = h->freed_stages;
  send_model_path(h, model);
  fill_input(h, 512);
  assert_int_equal(run_block(h, 512), 0);

  /* The offered stage fills its 960-sample latency, then crossfades over
   * 20 ms; run enough blocks of varied size to finish both. */
  bool announced = false;
  for (int block = 0; block < 40; ++block) {
    const uint32_t frames = block_sizes[block % 20] % 700 + 1;
    fill_input(h, frames);
    const int calls = run_block(h, frames);
    if (calls) {
      fail_msg("block %d after the model request made %d allocator calls",
               block, calls);
    }
    const char *path = notified_path(h);
    if (path && !strcmp(path, model)) {
      announced = true;
    }
    assert_finite_output(h, frames);
  }
  assert_true(announced);
  /* The built-in stage that the file replaced stays with the plugin. */
  assert_int_equal(h->freed_stages, freed_before);

  /* A file that is not a model is logged and leaves the model in place. */
  const int errors_before = error_logs;
  send_model_path(h, "/nonexistent/model.drsn");
  assert_int_equal(run_block(h, 256), 0);
  assert_int_equal(error_logs, errors_before + 1);
  assert_int_equal(run_block(h, 256), 0);
  const char *path = notified_path(h);
  assert_non_null(path);
  assert_string_equal(path, model);

  /* Loading the file again replaces its stage, which the worker frees. */
  send_model_path(h, model);
  for (int block = 0; block < 20; ++block) {
    fill_input(h, 256);
    assert_int_equal(run_block(h, 256), 0);
  }
  assert_int_equal(h->freed_stages, freed_before + 1);
  close_host(h);
}

/* State holding one property, as a host would store it. */
typedef struct {
  uint32_t key;
  uint32_t type;
  char value[4096];
  bool stored;
} saved_state;

static LV2_State_Status store_value(LV2_State_Handle handle, uint32_t key,
                                    const void *value, size_t size,
                                    uint32_t type, uint32_t flags)
{
  (void)flags;
  saved_state *saved = handle;
  if (size > sizeof saved->value) {
    return LV2_STATE_ERR_UNKNOWN;
  }
  saved->key = key;
  saved->type = type;
  memcpy(saved->value, value, size);
  saved->stored = true;
  return LV2_STATE_SUCCESS;
}

static const void *retrieve_value(LV2_State_Handle handle, uint32_t key,
                                  size_t *size, uint32_t *type,
                                  uint32_t *flags)
{
  saved_state *saved = handle;
  if (!saved->stored || key != saved->key) {
    return NULL;
  }
  *size = strlen(saved->value) + 1;
  *type = saved->type;
  *flags = LV2_STATE_IS_POD;
  return saved->value;
}

static void state_round_trip(void **state)
{
  (void)state;
  const char *model = getenv("DRSN_TEST_MODEL");
  host *h = open_host("urn:drsn-denoise:mono", 1, all_features);
  saved_state saved = {0};

  /* The built-in model stores nothing. */
  assert_int_equal(h->state->save(h->handle, store_value, &saved, 0, NULL),
                   LV2_STATE_SUCCESS);
  assert_false(saved.stored);

  send_model_path(h, model);
  for (int i = 0; i < 8; ++i) {
    fill_input(h, 512);
    assert_int_equal(run_block(h, 512), 0);
  }
  assert_int_equal(h->state->save(h->handle, store_value, &saved, 0, NULL),
                   LV2_STATE_SUCCESS);
  assert_true(saved.stored);
  assert_int_equal(saved.key, map_uri(NULL, "urn:drsn-denoise:model"));
  assert_int_equal(saved.type, map_uri(NULL, LV2_ATOM__Path));
  assert_string_equal(saved.value, model);
  close_host(h);

  /* A fresh instance restores it before activation, synchronously. */
  host *restored = open_host("urn:drsn-denoise:mono", 1, all_features);
  restored->descriptor->deactivate(restored->handle);
  assert_int_equal(restored->state->restore(restored->handle, retrieve_value,
                                            &saved, 0, NULL),
                   LV2_STATE_SUCCESS);
  restored->descriptor->activate(restored->handle);
  fill_input(restored, 256);
  assert_int_equal(run_block(restored, 256), 0);
  const char *path = notified_path(restored);
  assert_non_null(path);
  assert_string_equal(path, model);
  close_host(restored);
}

/* lv2apply passes no features and runs one sample at a time. */
static void no_host_features(void **state)
{
  (void)state;
  static const LV2_Feature *none[] = {NULL};
  host *h = open_host("urn:drsn-denoise:mono", 1, none);
  h->descriptor->connect_port(h->handle, PORT_CONTROL, NULL);
  h->descriptor->connect_port(h->handle, PORT_NOTIFY, NULL);
  for (int i = 0; i < 4800; ++i) {
    fill_input(h, 1);
    alloc_trap_arm();
    h->descriptor->run(h->handle, 1);
    alloc_trap_disarm();
    assert_int_equal(alloc_trap_calls(), 0);
    assert_true(isfinite(h->out[0][0]));
  }
  assert_float_equal(h->latency, DEFAULT_LATENCY, 0.0f);

  /* The Model port needs no worker: both built-in stages exist already. */
  h->model = 1.0f;
  for (int i = 0; i < 4800; ++i) {
    fill_input(h, 1);
    alloc_trap_arm();
    h->descriptor->run(h->handle, 1);
    alloc_trap_disarm();
    assert_int_equal(alloc_trap_calls(), 0);
    assert_true(isfinite(h->out[0][0]));
  }
  assert_float_equal(h->latency, LOW_LATENCY, 0.0f);
  close_host(h);
}

/* Input of one channel since activation, to compare the output with. */
#define HISTORY_MAX 131072
#define LATENCY 960
typedef struct {
  float samples[HISTORY_MAX];
  uint32_t length;
} input_history;

/* Runs one block of noise, appends its input to past and returns the
 * largest difference between the output and the input delayed by latency
 * samples (silence before the first input). */
static float run_against_input_delayed_by(host *h, input_history *past,
                                          uint32_t frames, uint32_t latency)
{
  fill_input(h, frames);
  assert_true(past->length + frames <= HISTORY_MAX);
  memcpy(past->samples + past->length, h->in[0], frames * sizeof(float));
  assert_int_equal(run_block(h, frames), 0);
  float worst = 0.0f;
  for (uint32_t i = 0; i < frames; ++i) {
    const uint32_t t = past->length + i;
    const float expected = t >= latency ? past->samples[t - latency] : 0.0f;
    worst = fmaxf(worst, fabsf(h->out[0][i] - expected));
  }
  past->length += frames;
  return worst;
}

static float run_against_delayed_input(host *h, input_history *past,
                                       uint32_t frames)
{
  return run_against_input_delayed_by(h, past, frames, LATENCY);
}

/* Fills the input of one block of a mix case. */
typedef void (*block_filler)(host *h, int block);

/* Runs 12 blocks of 256 samples at mix 100, 50 and 0 %, each with and
 * without the residual, and fails on the first output sample for which
 * is_valid is false. */
static void check_mix_cases(block_filler fill, bool (*is_valid)(float),
                            const char *problem)
{
  static const float mixes[] = {100.0f, 50.0f, 0.0f};
  for (size_t m = 0; m < sizeof mixes / sizeof mixes[0]; ++m) {
    for (int residual = 0; residual <= 1; ++residual) {
      host *h = open_host("urn:drsn-denoise:mono", 1, all_features);
      h->mix = mixes[m];
      h->residual = (float)residual;
      for (int block = 0; block < 12; ++block) {
        fill(h, block);
        assert_int_equal(run_block(h, 256), 0);
        for (uint32_t i = 0; i < 256; ++i) {
          if (!is_valid(h->out[0][i])) {
            fail_msg("mix %.0f, residual %d: output sample %u of block %d "
                     "is %s: %g",
                     (double)h->mix, residual, i, block, problem,
                     (double)h->out[0][i]);
          }
        }
      }
      close_host(h);
    }
  }
}

static void fill_noise_with_nonfinite(host *h, int block)
{
  fill_input(h, 256);
  if (block == 2) {
    h->in[0][10] = NAN;
    h->in[0][11] = INFINITY;
    h->in[0][12] = -INFINITY;
    h->in[0][13] = 1e30f;
  }
}

static bool is_finite_sample(float value) { return isfinite(value); }

/* NaN and Inf give finite output while enabled, at any mix and with the
 * residual, because the dry path is cleaned like the engine's input. */
static void nonfinite_input_finite_output(void **state)
{
  (void)state;
  check_mix_cases(fill_noise_with_nonfinite, is_finite_sample, "not finite");
}

static void fill_denormals(host *h, int block)
{
  (void)block;
  for (uint32_t i = 0; i < 256; ++i) {
    h->in[0][i] = (i % 2 ? 1e-40f : -3e-39f) * (float)(1 + i % 5);
  }
}

static bool is_not_denormal(float value)
{
  return fpclassify(value) != FP_SUBNORMAL;
}

/* Denormal input never reaches the output while enabled, also where the
 * dry signal is mixed in. */
static void denormal_input_flushed(void **state)
{
  (void)state;
  check_mix_cases(fill_denormals, is_not_denormal, "a denormal");
}

/* A settled bypass is the delayed input bit for bit, NaN, Inf and
 * denormals included. */
static void bypass_passes_special_values(void **state)
{
  (void)state;
  static const float specials[] = {NAN, INFINITY, -INFINITY, 1e-40f, 1e30f};
  const uint32_t count = sizeof specials / sizeof specials[0];
  host *h = open_host("urn:drsn-denoise:mono", 1, all_features);
  h->enable = 0.0f;
  static input_history past;
  past.length = 0;
  for (int block = 0; block < 8; ++block) {
    fill_input(h, 256);
    if (block == 1) {
      memcpy(h->in[0] + 100, specials, sizeof specials);
    }
    memcpy(past.samples + past.length, h->in[0], 256 * sizeof(float));
    assert_int_equal(run_block(h, 256), 0);
    for (uint32_t i = 0; i < 256; ++i) {
      const uint32_t t = past.length + i;
      const float expected = t >= LATENCY ? past.samples[t - LATENCY] : 0.0f;
      if (memcmp(&h->out[0][i], &expected, sizeof expected)) {
        fail_msg("bypassed output %g at %u differs from the input %g",
                 (double)h->out[0][i], t, (double)expected);
      }
    }
    past.length += 256;
  }
  assert_true(past.length >= 256 + 100 + count + LATENCY);
  close_host(h);
}

/* A state holding path as the model, as a host would store it. */
static saved_state state_naming(const char *path)
{
  saved_state saved = {0};
  saved.key = map_uri(NULL, "urn:drsn-denoise:model");
  saved.type = map_uri(NULL, LV2_ATOM__Path);
  snprintf(saved.value, sizeof saved.value, "%s", path);
  saved.stored = true;
  return saved;
}

/* A FIFO as the model fails at once in the worker and in restore(), and
 * the current model stays. A blocking open would hang here until the
 * alarm ends the test. */
static void fifo_model_rejected(void **state)
{
  (void)state;
  char dir[] = "/tmp/drsn-lv2-test-XXXXXX";
  assert_non_null(mkdtemp(dir));
  char fifo[64];
  snprintf(fifo, sizeof fifo, "%s/model.drsn", dir);
  assert_int_equal(mkfifo(fifo, 0600), 0);
  alarm(60);

  host *h = open_host("urn:drsn-denoise:mono", 1, all_features);
  assert_int_equal(run_block(h, 256), 0);
  const int errors_before = error_logs;
  send_model_path(h, fifo);
  assert_int_equal(run_block(h, 256), 0);
  assert_int_equal(error_logs, errors_before + 1);
  assert_non_null(strstr(last_error, "is not a regular file"));
  assert_non_null(strstr(last_error, "keeping the current model"));
  const char *named = strstr(last_error, fifo);
  assert_non_null(named);
  assert_null(strstr(named + 1, fifo)); /* the path appears once */

  assert_int_equal(run_block(h, 256), 0);
  const char *path = notified_path(h);
  assert_non_null(path);
  assert_string_equal(path, "");

  saved_state saved = state_naming(fifo);
  assert_int_not_equal(
      h->state->restore(h->handle, retrieve_value, &saved, 0, NULL),
      LV2_STATE_SUCCESS);
  assert_int_equal(error_logs, errors_before + 2);
  saved_state stored = {0};
  assert_int_equal(h->state->save(h->handle, store_value, &stored, 0, NULL),
                   LV2_STATE_SUCCESS);
  assert_false(stored.stored); /* still the built-in model */
  close_host(h);

  alarm(0);
  assert_int_equal(unlink(fifo), 0);
  assert_int_equal(rmdir(dir), 0);
}

/* Restoring a state that changes the model crossfades like a patch:Set:
 * at a 0 dB limit the output stays the delayed input throughout, while a
 * swap without warm-up would output 20 ms of silence. */
static void restore_crossfades_model(void **state)
{
  (void)state;
  const char *model = getenv("DRSN_TEST_MODEL");
  assert_non_null(model);
  host *h = open_host("urn:drsn-denoise:mono", 1, all_features);
  h->limit = 0.0f;
  static input_history past;
  past.length = 0;
  for (int block = 0; block < 20; ++block) {
    assert_true(run_against_delayed_input(h, &past, 256) < 1e-5f);
  }

  /* Custom model, then back to the built-in one by an explicit empty
   * path. */
  const char *const paths[] = {model, ""};
  for (size_t k = 0; k < 2; ++k) {
    saved_state saved = state_naming(paths[k]);
    assert_int_equal(
        h->state->restore(h->handle, retrieve_value, &saved, 0, NULL),
        LV2_STATE_SUCCESS);
    const char *announced = NULL;
    for (int block = 0; block < 30; ++block) {
      const float difference = run_against_delayed_input(h, &past, 256);
      if (difference >= 1e-5f) {
        fail_msg("restore to \"%s\": block %d differs from the delayed "
                 "input by %g",
                 paths[k], block, (double)difference);
      }
      const char *path = notified_path(h);
      if (path) {
        announced = path;
      }
    }
    assert_non_null(announced);
    assert_string_equal(announced, paths[k]);
    assert_float_equal(h->latency, 960.0f, 0.0f);
  }
  close_host(h);
}

/* A state without the model key, like every factory preset, keeps a
 * custom model. */
static void restore_without_key_keeps_model(void **state)
{
  (void)state;
  const char *model = getenv("DRSN_TEST_MODEL");
  assert_non_null(model);
  host *h = open_host("urn:drsn-denoise:stereo", 2, all_features);
  saved_state custom = state_naming(model);
  assert_int_equal(
      h->state->restore(h->handle, retrieve_value, &custom, 0, NULL),
      LV2_STATE_SUCCESS);
  for (int block = 0; block < 10; ++block) {
    fill_input(h, 512);
    assert_int_equal(run_block(h, 512), 0);
  }

  saved_state without_key = {0};
  assert_int_equal(
      h->state->restore(h->handle, retrieve_value, &without_key, 0, NULL),
      LV2_STATE_SUCCESS);
  fill_input(h, 512);
  assert_int_equal(run_block(h, 512), 0);
  const char *path = notified_path(h);
  assert_non_null(path);
  assert_string_equal(path, model);

  saved_state stored = {0};
  assert_int_equal(h->state->save(h->handle, store_value, &stored, 0, NULL),
                   LV2_STATE_SUCCESS);
  assert_true(stored.stored);
  assert_string_equal(stored.value, model);
  close_host(h);
}

/* Runs blocks of varied size, fails on any allocator call, and checks that
 * the output is finite and, at a 0 dB limit, no larger than the input's
 * peak: a crossfade blends two delayed copies of the input. */
static void run_varied_blocks(host *h, int blocks, const char *phase)
{
  for (int block = 0; block < blocks; ++block) {
    const uint32_t frames = block_sizes[block % 20] % 700 + 1;
    fill_input(h, frames);
    const int calls = run_block(h, frames);
    if (calls) {
      fail_msg("%s: block %d (%u frames) made %d allocator calls", phase,
               block, frames, calls);
    }
    assert_finite_output(h, frames);
    if (h->limit != 0.0f) {
      continue;
    }
    for (uint32_t c = 0; c < h->channels; ++c) {
      for (uint32_t i = 0; i < frames; ++i) {
        if (fabsf(h->out[c][i]) > 0.3001f) {
          fail_msg("%s: block %d, channel %u, sample %u is %g, beyond the "
                   "input's peak of 0.3",
                   phase, block, c, i, (double)h->out[c][i]);
        }
      }
    }
  }
}

/* Runs blocks of 256 samples and returns the largest difference between
 * the output of channel 0 and its input delayed by latency samples. The
 * first latency samples are skipped, because their input came earlier. */
static float delay_error(host *h, uint32_t latency, int blocks)
{
  static input_history past;
  past.length = 0;
  float worst = 0.0f;
  for (int block = 0; block < blocks; ++block) {
    fill_input(h, 256);
    assert_true(past.length + 256 <= HISTORY_MAX);
    memcpy(past.samples + past.length, h->in[0], 256 * sizeof(float));
    assert_int_equal(run_block(h, 256), 0);
    for (uint32_t i = 0; i < 256; ++i) {
      const uint32_t t = past.length + i;
      if (t >= latency) {
        worst = fmaxf(worst, fabsf(h->out[0][i] - past.samples[t - latency]));
      }
    }
    past.length += 256;
  }
  return worst;
}

/* Runs 40 blocks of varied size, enough for a warm-up and a crossfade, then
 * checks the latency output and, at a 0 dB limit, that the output is the
 * input delayed by that latency. */
static void check_settles_on_latency(host *h, float latency,
                                     const char *phase)
{
  run_varied_blocks(h, 40, phase);
  assert_float_equal(h->latency, latency, 0.0f);
  assert_true(delay_error(h, (uint32_t)latency, 12) < 1e-5f);
}

/* The Model port switches to the low-latency model and back while running:
 * the latency output changes once the new model is in use, and at a 0 dB
 * limit the output is then the input delayed by that latency. */
static void check_model_port_switch(const char *uri, uint32_t channels)
{
  host *h = open_host(uri, channels, all_features);
  h->limit = 0.0f;
  run_varied_blocks(h, 10, "default model");
  assert_float_equal(h->latency, DEFAULT_LATENCY, 0.0f);

  /* The new model first fills its 480-sample latency, so the old one
   * still plays after one block of 256. */
  h->model = 1.0f;
  fill_input(h, 256);
  assert_int_equal(run_block(h, 256), 0);
  assert_float_equal(h->latency, DEFAULT_LATENCY, 0.0f);
  check_settles_on_latency(h, LOW_LATENCY, "switch to the low-latency model");

  h->model = 0.0f;
  check_settles_on_latency(h, DEFAULT_LATENCY, "switch to the default model");
  assert_int_equal(h->freed_stages, 0); /* built-in stages are kept */
  close_host(h);
}

static void model_port_switch_mono(void **state)
{
  (void)state;
  check_model_port_switch("urn:drsn-denoise:mono", 1);
}

static void model_port_switch_stereo(void **state)
{
  (void)state;
  check_model_port_switch("urn:drsn-denoise:stereo", 2);
}

/* Toggling the port every other block interrupts warm-ups and has to wait
 * for running crossfades, but the plugin still settles on the last value. */
static void model_port_toggling(void **state)
{
  (void)state;
  host *h = open_host("urn:drsn-denoise:stereo", 2, all_features);
  h->limit = 0.0f;
  for (int block = 0; block < 120; ++block) {
    const uint32_t frames = block_sizes[block % 20] % 700 + 1;
    h->model = (float)((block / 2) % 2);
    fill_input(h, frames);
    const int calls = run_block(h, frames);
    if (calls) {
      fail_msg("block %d (%u frames, model %.0f) made %d allocator calls",
               block, frames, (double)h->model, calls);
    }
    assert_finite_output(h, frames);
  }
  h->model = 1.0f;
  check_settles_on_latency(h, LOW_LATENCY, "settle on the low-latency model");
  assert_int_equal(h->freed_stages, 0);
  close_host(h);
}

/* A port value set before the first block after activate() takes effect
 * at once, without warm-up or crossfade, as in lv2apply or a session that
 * is being loaded. */
static void model_port_at_activation(void **state)
{
  (void)state;
  host *h = open_host("urn:drsn-denoise:mono", 1, all_features);
  h->limit = 0.0f;
  h->model = 1.0f;
  static input_history past;
  past.length = 0;
  for (int block = 0; block < 10; ++block) {
    const float difference = run_against_input_delayed_by(h, &past, 256, 480);
    if (difference >= 1e-5f) {
      fail_msg("block %d differs from the input delayed by 480 samples by "
               "%g",
               block, (double)difference);
    }
    assert_float_equal(h->latency, LOW_LATENCY, 0.0f);
  }

  h->descriptor->deactivate(h->handle);
  h->model = 0.0f;
  h->descriptor->activate(h->handle);
  past.length = 0;
  for (int block = 0; block < 10; ++block) {
    assert_true(run_against_input_delayed_by(h, &past, 256, 960) < 1e-5f);
    assert_float_equal(h->latency, DEFAULT_LATENCY, 0.0f);
  }
  close_host(h);
}

/* While a model file is set, the port has no effect. Clearing the path
 * with patch:Set "" switches to the model that the port selects, and the
 * worker frees the file's stage. */
static void model_file_wins_over_port(void **state)
{
  (void)state;
  const char *model = getenv("DRSN_TEST_MODEL");
  assert_non_null(model);
  host *h = open_host("urn:drsn-denoise:mono", 1, all_features);
  h->limit = 0.0f;
  send_model_path(h, model);
  run_varied_blocks(h, 40, "load the model file");

  h->model = 1.0f;
  check_settles_on_latency(h, DEFAULT_LATENCY,
                           "port set while a file is in use");
  assert_int_equal(h->freed_stages, 0);

  /* The worker responds after the first block, and the second block
   * announces the empty path. */
  send_model_path(h, "");
  for (int block = 0; block < 2; ++block) {
    fill_input(h, 256);
    assert_int_equal(run_block(h, 256), 0);
  }
  const char *path = notified_path(h);
  assert_non_null(path);
  assert_string_equal(path, "");
  check_settles_on_latency(h, LOW_LATENCY, "path cleared");
  assert_int_equal(h->freed_stages, 1);
  close_host(h);
}

/* restore() follows the same rule. A state with a file keeps the file's
 * model whatever the port's value, and one with an empty path returns to
 * the model that the port selects. */
static void restore_respects_model_port(void **state)
{
  (void)state;
  const char *model = getenv("DRSN_TEST_MODEL");
  assert_non_null(model);
  host *h = open_host("urn:drsn-denoise:mono", 1, all_features);
  h->limit = 0.0f;
  h->model = 1.0f;
  run_varied_blocks(h, 20, "low-latency model");
  assert_float_equal(h->latency, LOW_LATENCY, 0.0f);

  saved_state custom = state_naming(model);
  assert_int_equal(
      h->state->restore(h->handle, retrieve_value, &custom, 0, NULL),
      LV2_STATE_SUCCESS);
  check_settles_on_latency(h, DEFAULT_LATENCY, "restored model file");

  saved_state cleared = state_naming("");
  assert_int_equal(
      h->state->restore(h->handle, retrieve_value, &cleared, 0, NULL),
      LV2_STATE_SUCCESS);
  check_settles_on_latency(h, LOW_LATENCY, "restored empty path");

  saved_state stored = {0};
  assert_int_equal(h->state->save(h->handle, store_value, &stored, 0, NULL),
                   LV2_STATE_SUCCESS);
  assert_false(stored.stored);
  close_host(h);
}

/* The latency output at every sample rate of the table in
 * docs/user-guide.md: one window, whose hop is the model's hop (480 or 240
 * samples at 48 kHz) scaled to the rate and rounded half away from zero. */
static void latency_per_rate(void **state)
{
  (void)state;
  static const struct {
    double rate;
    float latency[2]; /* default model, low-latency model */
  } table[] = {
      {8000.0, {160.0f, 80.0f}},     {11025.0, {220.0f, 110.0f}},
      {16000.0, {320.0f, 160.0f}},   {22050.0, {442.0f, 220.0f}},
      {32000.0, {640.0f, 320.0f}},   {44100.0, {882.0f, 442.0f}},
      {48000.0, {960.0f, 480.0f}},   {96000.0, {1920.0f, 960.0f}},
      {192000.0, {3840.0f, 1920.0f}},
  };
  for (size_t k = 0; k < sizeof table / sizeof table[0]; ++k) {
    host_rate = table[k].rate;
    for (int model = 0; model < 2; ++model) {
      host *h = open_host("urn:drsn-denoise:mono", 1, all_features);
      h->model = (float)model;
      fill_input(h, 64);
      assert_int_equal(run_block(h, 64), 0);
      if (h->latency != table[k].latency[model]) {
        fail_msg("%.0f Hz, model %d: latency %g, expected %g",
                 table[k].rate, model, (double)h->latency,
                 (double)table[k].latency[model]);
      }
      close_host(h);
    }
  }
  host_rate = RATE;
}

int main(void)
{
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(trap_sees_allocations),
      cmocka_unit_test(block_sizes_mono),
      cmocka_unit_test(block_sizes_stereo),
      cmocka_unit_test(control_changes),
      cmocka_unit_test(bypass_is_delayed_input),
      cmocka_unit_test(model_swap),
      cmocka_unit_test(state_round_trip),
      cmocka_unit_test(no_host_features),
      cmocka_unit_test(nonfinite_input_finite_output),
      cmocka_unit_test(denormal_input_flushed),
      cmocka_unit_test(bypass_passes_special_values),
      cmocka_unit_test(fifo_model_rejected),
      cmocka_unit_test(restore_crossfades_model),
      cmocka_unit_test(restore_without_key_keeps_model),
      cmocka_unit_test(model_port_switch_mono),
      cmocka_unit_test(model_port_switch_stereo),
      cmocka_unit_test(model_port_toggling),
      cmocka_unit_test(model_port_at_activation),
      cmocka_unit_test(model_file_wins_over_port),
      cmocka_unit_test(restore_respects_model_port),
      cmocka_unit_test(latency_per_rate),
  };
  return cmocka_run_group_tests(tests, setup_options, NULL);
}
