/*
 * drsn_jack.c: drsn-jack, a JACK client that denoises one or two channels.
 *
 * Threads:
 * - JACK's process thread runs the processor. It reads controls from atomics
 *   and exchanges processors and stages with the other threads through
 *   atomic pointers; it never locks, allocates or does I/O.
 * - JACK's notification thread builds a new processor when the sample rate
 *   changes (under build_lock) and publishes it.
 * - The main thread reads commands from stdin and signals from a self-pipe,
 *   frees whatever the process thread hands back, and calls
 *   jack_recompute_total_latencies() when the latency changes.
 * - A loader thread per model change reads the file, while the main thread
 *   keeps handling signals, so that SIGINT and SIGTERM stop the program
 *   even when the file system blocks the read.
 *
 * A model is named as in drsn-denoise --model: a built-in name such as
 * "default" or "low-latency" wins over a file of that name, which
 * "./NAME" reaches.
 */
#include "processor.h"

#include <jack/jack.h>

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#define MODEL_PATH_MAX 4096
#define COMMAND_LINE_MAX 4352

/* Byte a loader thread writes to the signal pipe when it finishes; no
 * signal has number 0. */
#define LOAD_FINISHED_BYTE 0

typedef struct {
  jack_client_t *client;
  uint32_t channels;
  uint32_t chunk;
  jack_port_t *in[2];
  jack_port_t *out[2];

  /* Controls, written by the main thread and read once per cycle. */
  _Atomic float limit_db;
  _Atomic float mix;
  atomic_bool bypass;
  atomic_bool residual;
  atomic_bool linked;

  /* Owned by the process thread. */
  fe_processor *processor;

  /* Hand-over slots: the writer fills an empty slot, the reader empties it. */
  _Atomic(fe_processor *) next_processor; /* notification -> process */
  _Atomic(fe_processor *) old_processor;  /* process -> main (to free) */
  _Atomic(fe_stage *) next_stage;         /* main -> process */
  _Atomic(fe_stage *) old_stage;          /* process -> main (to free) */

  /* Meters and status, written by the process thread. */
  atomic_bool started;
  atomic_uint first_frame; /* JACK frame time of the first processed cycle */
  atomic_uint latency;
  _Atomic float voice;
  _Atomic float reduction_db;
  atomic_uint xruns;

  /* Non-audio threads: current model (built-in name or file path) and
   * rate, under build_lock. */
  pthread_mutex_t build_lock;
  char model[MODEL_PATH_MAX];
  double build_rate;

  atomic_bool server_gone;

  /* Main thread: SIGHUP arrived while a model was loading. */
  bool reload_pending;
} app_state;

/* Self-pipe that wakes the main thread: signal numbers from the handler,
 * LOAD_FINISHED_BYTE from loader threads. */
static int signal_pipe[2] = {-1, -1};

/* Async-signal-safe. */
static void wake_main_thread(unsigned char byte)
{
  const int saved = errno;
  if (write(signal_pipe[1], &byte, 1) < 0) {
    /* The pipe is full, so the main thread wakes up anyway. */
  }
  errno = saved;
}

static void on_signal(int signo) { wake_main_thread((unsigned char)signo); }

static void print_usage(FILE *stream, const char *program)
{
  fprintf(stream,
          "Usage: %s [OPTION]...\n"
          "Real-time speech noise suppressor for JACK.\n"
          "\n"
          "Options:\n"
          "  -l, --limit DB          deepest attenuation in dB, 0..100 "
          "(default 30; 0 passes the input up to rounding)\n"
          "  -m, --mix PERCENT       share of denoised signal, 0..100 "
          "(default 100)\n"
          "  -r, --listen-residual   output what is being removed "
          "(delayed input minus output)\n"
          "  -b, --bypass            start bypassed (output = input delayed "
          "by the latency)\n"
          "      --link              stereo: one set of gains for both "
          "channels (default)\n"
          "      --no-link           stereo: process the channels "
          "independently\n"
          "  -c, --channels 1|2      number of channels (default 1)\n"
          "  -M, --model NAME|FILE   built-in model 'default' (20 ms "
          "latency, the default)\n"
          "                          or 'low-latency' (10 ms), or a model "
          "file; ./NAME for a\n"
          "                          file named like a built-in model\n"
          "  -n, --name NAME         JACK client name (default drsn-jack)\n"
          "  -N, --no-connect        do not connect to the physical ports\n"
          "  -h, --help              show this help and exit\n"
          "\n"
          "Ports: in/out (mono) or in_L, in_R, out_L, out_R (stereo). By "
          "default the\n"
          "inputs are connected to the first physical capture ports and the "
          "outputs to\n"
          "the first physical playback ports (mono output to the first two).\n"
          "\n"
          "Commands on standard input, one per line:\n"
          "  limit DB | mix PERCENT | bypass on|off|toggle | residual "
          "on|off|toggle\n"
          "  link on|off|toggle | model NAME|FILE | model (the default "
          "model) | reload\n"
          "  status | help | quit (or exit)\n"
          "\n"
          "Signals: SIGUSR1 toggles bypass, SIGUSR2 toggles residual listen, "
          "SIGHUP\n"
          "reloads the model, SIGINT and SIGTERM stop the client. When standard input\n"
          "ends, the client keeps running until one of these stops it.\n"
          "\n"
          "Exit status: 0 after a stop signal or quit, 1 when the client could not run\n"
          "or the JACK server stopped, 2 on an invalid option.\n",
          program);
}

/* ---------------------------------------------------------------------- */
/* JACK callbacks                                                          */

static void exchange_stages(app_state *app, fe_processor *p)
{
  if (atomic_load(&app->old_stage)) {
    return; /* the main thread has not freed the previous one yet */
  }
  fe_stage *retired = fe_processor_take_retired(p);
  if (retired) {
    atomic_store(&app->old_stage, retired);
    return;
  }
  if (fe_processor_offered(p)) {
    return; /* one model change at a time */
  }
  fe_stage *next = atomic_exchange(&app->next_stage, NULL);
  if (next) {
    fe_stage *displaced = fe_processor_offer(p, next);
    if (displaced) {
      atomic_store(&app->old_stage, displaced);
    }
  }
}

static int on_process(jack_nframes_t frames, void *arg)
{
  app_state *app = arg;

  if (!atomic_load(&app->old_processor)) {
    fe_processor *next = atomic_exchange(&app->next_processor, NULL);
    if (next) {
      atomic_store(&app->old_processor, app->processor);
      app->processor = next;
    }
  }

  const float *in[2] = {NULL, NULL};
  float *out[2] = {NULL, NULL};
  for (uint32_t c = 0; c < app->channels; ++c) {
    in[c] = jack_port_get_buffer(app->in[c], frames);
    out[c] = jack_port_get_buffer(app->out[c], frames);
  }

  if (!atomic_load_explicit(&app->started, memory_order_relaxed)) {
    atomic_store(&app->first_frame, jack_last_frame_time(app->client));
    atomic_store(&app->started, true);
  }

  fe_processor *p = app->processor;
  if (!p) {
    for (uint32_t c = 0; c < app->channels; ++c) {
      memset(out[c], 0, frames * sizeof(float));
    }
    return 0;
  }
  exchange_stages(app, p);

  const fe_controls controls = {
      .enabled = atomic_load_explicit(&app->bypass, memory_order_relaxed)
                     ? 0.0f
                     : 1.0f,
      .limit_db = atomic_load_explicit(&app->limit_db, memory_order_relaxed),
      .mix = atomic_load_explicit(&app->mix, memory_order_relaxed),
      .residual = atomic_load_explicit(&app->residual, memory_order_relaxed)
                      ? 1.0f
                      : 0.0f,
      .linked = atomic_load_explicit(&app->linked, memory_order_relaxed),
  };
  fe_processor_process(p, &controls, in, out, frames);

  atomic_store_explicit(&app->latency, fe_processor_latency(p),
                        memory_order_relaxed);
  atomic_store_explicit(&app->voice, fe_processor_voice_probability(p),
                        memory_order_relaxed);
  atomic_store_explicit(&app->reduction_db, fe_processor_reduction_db(p),
                        memory_order_relaxed);
  return 0;
}

/* Creates a stage for a built-in model name or a model file. Not real-time
 * safe. */
static drsn_status load_model_stage(const char *model, double rate,
                                    uint32_t channels, uint32_t chunk,
                                    fe_stage **out, drsn_error *err)
{
  if (drsn_model_is_builtin(model)) {
    return fe_stage_load_builtin(model, rate, channels, chunk, out, err);
  }
  return fe_stage_load(model, rate, channels, chunk, out, err);
}

/* Builds a processor for rate with the current model. Caller holds
 * build_lock. Prints the reason on failure. */
static fe_processor *build_processor(app_state *app, double rate)
{
  fe_stage *stage = NULL;
  fe_processor *processor = NULL;
  drsn_error err = {0};
  drsn_status status = load_model_stage(app->model, rate, app->channels,
                                        app->chunk, &stage, &err);
  if (status == DRSN_OK) {
    status = fe_processor_create(stage, rate, app->channels, app->chunk,
                                 &processor, &err);
  }
  if (status != DRSN_OK) {
    fprintf(stderr, "drsn-jack: cannot start the engine at %.0f Hz: %s\n",
            rate, err.message[0] ? err.message : drsn_strerror(status));
    return NULL;
  }
  return processor;
}

static int on_sample_rate(jack_nframes_t rate, void *arg)
{
  app_state *app = arg;
  pthread_mutex_lock(&app->build_lock);
  if ((double)rate == app->build_rate) {
    pthread_mutex_unlock(&app->build_lock);
    return 0;
  }
  fprintf(stderr, "drsn-jack: sample rate changed to %u Hz, rebuilding\n",
          (unsigned)rate);
  fe_processor *processor = build_processor(app, (double)rate);
  if (!processor) {
    pthread_mutex_unlock(&app->build_lock);
    return 1;
  }
  app->build_rate = (double)rate;
  /* A stage built for the old rate must not reach the new processor. */
  fe_stage_destroy(atomic_exchange(&app->next_stage, NULL));
  fe_processor_destroy(atomic_exchange(&app->next_processor, processor));
  pthread_mutex_unlock(&app->build_lock);
  return 0;
}

static int on_buffer_size(jack_nframes_t frames, void *arg)
{
  (void)arg;
  /* The processor splits any block into chunks, so nothing is rebuilt. */
  fprintf(stderr, "drsn-jack: buffer size is now %u frames\n",
          (unsigned)frames);
  return 0;
}

static int on_xrun(void *arg)
{
  app_state *app = arg;
  atomic_fetch_add(&app->xruns, 1);
  return 0;
}

static void on_latency(jack_latency_callback_mode_t mode, void *arg)
{
  app_state *app = arg;
  const jack_nframes_t latency = atomic_load(&app->latency);
  jack_latency_range_t range;

  for (uint32_t c = 0; c < app->channels; ++c) {
    if (mode == JackCaptureLatency) {
      jack_port_get_latency_range(app->in[c], JackCaptureLatency, &range);
      range.min += latency;
      range.max += latency;
      jack_port_set_latency_range(app->out[c], JackCaptureLatency, &range);
    } else {
      jack_port_get_latency_range(app->out[c], JackPlaybackLatency, &range);
      range.min += latency;
      range.max += latency;
      jack_port_set_latency_range(app->in[c], JackPlaybackLatency, &range);
    }
  }
}

static void on_shutdown(jack_status_t code, const char *reason, void *arg)
{
  (void)code;
  app_state *app = arg;
  atomic_store(&app->server_gone, true);
  fprintf(stderr, "drsn-jack: JACK server shut down: %s\n", reason);
  on_signal(SIGTERM);
}

/* ---------------------------------------------------------------------- */
/* Main thread                                                             */

typedef enum {
  LOAD_OK,
  LOAD_FAILED,  /* reported on stderr */
  LOAD_STOPPED, /* SIGINT or SIGTERM arrived: the program must stop */
} load_result;

enum { JOB_RUNNING, JOB_DONE, JOB_ABANDONED };

/* One model load. The loader thread owns the job while it runs. Whichever
 * thread loses the race on state frees it: the main thread after JOB_DONE,
 * the loader after the main thread set JOB_ABANDONED. */
typedef struct {
  char model[MODEL_PATH_MAX]; /* built-in name or file path */
  double rate;
  uint32_t channels;
  uint32_t chunk;
  fe_stage *stage;
  drsn_status status;
  drsn_error err;
  atomic_int state;
} load_job;

static void *run_load_job(void *arg)
{
  load_job *job = arg;
  job->status = load_model_stage(job->model, job->rate, job->channels,
                                 job->chunk, &job->stage, &job->err);
  int expected = JOB_RUNNING;
  if (!atomic_compare_exchange_strong(&job->state, &expected, JOB_DONE)) {
    fe_stage_destroy(job->stage);
    free(job);
    return NULL;
  }
  wake_main_thread(LOAD_FINISHED_BYTE);
  return NULL;
}

static void toggle(atomic_bool *flag, const char *name)
{
  const bool value = !atomic_load(flag);
  atomic_store(flag, value);
  printf("%s %s\n", name, value ? "on" : "off");
  fflush(stdout);
}

/* Empties the signal pipe. SIGHUP only marks a reload as pending, because
 * a load may be running. Returns false when SIGINT or SIGTERM arrived. */
static bool handle_signals(app_state *app)
{
  bool keep_running = true;
  unsigned char signo;
  while (read(signal_pipe[0], &signo, 1) == 1) {
    switch (signo) {
    case SIGUSR1:
      toggle(&app->bypass, "bypass");
      break;
    case SIGUSR2:
      toggle(&app->residual, "residual");
      break;
    case SIGHUP:
      app->reload_pending = true;
      break;
    case SIGINT:
    case SIGTERM:
      keep_running = false;
      break;
    default: /* LOAD_FINISHED_BYTE */
      break;
    }
  }
  return keep_running;
}

static void print_load_error(const load_job *job, const char *consequence)
{
  /* A file that cannot be opened and whose name has no slash may be a
   * misspelt built-in name. */
  char hint[256] = "";
  if (job->status == DRSN_ERR_MODEL_IO && !strchr(job->model, '/')) {
    size_t used = (size_t)snprintf(hint, sizeof hint,
                                   " (the built-in models are");
    const char *separator = " ";
    for (const char *const *builtin = drsn_model_builtin_names(); *builtin;
         ++builtin) {
      if (used < sizeof hint) {
        used += (size_t)snprintf(hint + used, sizeof hint - used, "%s%s",
                                 separator, *builtin);
      }
      separator = ", ";
    }
    if (used < sizeof hint) {
      snprintf(hint + used, sizeof hint - used, ")");
    }
  }

  /* Model errors name the model already: "model '<name>': <reason>". */
  if (job->err.message[0]) {
    fprintf(stderr, "drsn-jack: %s%s%s\n", job->err.message, hint,
            consequence);
  } else {
    fprintf(stderr, "drsn-jack: model '%s': %s%s%s\n", job->model,
            drsn_strerror(job->status), hint, consequence);
  }
}

/* Loads a model (built-in name or file path) for rate in a loader thread
 * and handles signals while it runs. On failure prints the error followed
 * by consequence. */
static load_result load_stage(app_state *app, const char *model, double rate,
                              const char *consequence, fe_stage **out)
{
  *out = NULL;
  load_job *job = calloc(1, sizeof *job);
  if (!job) {
    fprintf(stderr, "drsn-jack: out of memory loading a model%s\n",
            consequence);
    return LOAD_FAILED;
  }
  snprintf(job->model, sizeof job->model, "%s", model);
  job->rate = rate;
  job->channels = app->channels;
  job->chunk = app->chunk;
  atomic_init(&job->state, JOB_RUNNING);

  /* The loader blocks every signal, so that they reach the main thread. */
  pthread_attr_t attr;
  pthread_t thread;
  sigset_t all;
  sigset_t previous;
  sigfillset(&all);
  pthread_attr_init(&attr);
  pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
  pthread_sigmask(SIG_BLOCK, &all, &previous);
  const int create_error = pthread_create(&thread, &attr, run_load_job, job);
  pthread_sigmask(SIG_SETMASK, &previous, NULL);
  pthread_attr_destroy(&attr);
  if (create_error) {
    /* NOTE: without a thread the load runs here and a signal cannot
     * interrupt it. */
    run_load_job(job);
  }

  while (atomic_load(&job->state) == JOB_RUNNING) {
    struct pollfd fd = {signal_pipe[0], POLLIN, 0};
    if (poll(&fd, 1, 100) > 0 && !handle_signals(app)) {
      int expected = JOB_RUNNING;
      if (atomic_compare_exchange_strong(&job->state, &expected,
                                         JOB_ABANDONED)) {
        fprintf(stderr, "drsn-jack: stopping while model '%s' is still "
                        "loading\n", model);
        return LOAD_STOPPED; /* the loader frees the job */
      }
      fe_stage_destroy(job->stage);
      free(job);
      return LOAD_STOPPED;
    }
  }

  load_result result = LOAD_OK;
  if (job->status == DRSN_OK) {
    *out = job->stage;
  } else {
    print_load_error(job, consequence);
    result = LOAD_FAILED;
  }
  free(job);
  return result;
}

/* Loads a model (built-in name or file path) and hands it to the process
 * thread, which crossfades to it. Keeps the current model on failure. */
static load_result change_model(app_state *app, const char *model)
{
  if (strlen(model) >= MODEL_PATH_MAX) {
    fprintf(stderr, "drsn-jack: model path is longer than %d bytes\n",
            MODEL_PATH_MAX - 1);
    return LOAD_FAILED;
  }
  char requested[MODEL_PATH_MAX];
  strcpy(requested, model); /* model may be app->model */

  for (;;) {
    pthread_mutex_lock(&app->build_lock);
    const double rate = app->build_rate;
    pthread_mutex_unlock(&app->build_lock);

    fe_stage *stage = NULL;
    const load_result result = load_stage(
        app, requested, rate, "; keeping the current model", &stage);
    if (result != LOAD_OK) {
      return result;
    }

    pthread_mutex_lock(&app->build_lock);
    if (app->build_rate == rate) {
      strcpy(app->model, requested);
      /* A stage that the process thread has not picked up yet is
       * replaced. */
      fe_stage_destroy(atomic_exchange(&app->next_stage, stage));
      pthread_mutex_unlock(&app->build_lock);
      printf("model %s\n", requested);
      fflush(stdout);
      return LOAD_OK;
    }
    /* The sample rate changed during the load, and on_sample_rate() built
     * its processor with the previous model: load again for the new rate. */
    pthread_mutex_unlock(&app->build_lock);
    fe_stage_destroy(stage);
  }
}

static void free_handed_back(app_state *app)
{
  fe_processor_destroy(atomic_exchange(&app->old_processor, NULL));
  fe_stage_destroy(atomic_exchange(&app->old_stage, NULL));
}

static void print_status(app_state *app)
{
  pthread_mutex_lock(&app->build_lock);
  const double rate = app->build_rate;
  printf("status limit=%.1f mix=%.0f bypass=%s residual=%s link=%s "
         "latency=%u rate=%.0f voice=%.2f reduction=%.1f xruns=%u "
         "first_frame=%u model=%s\n",
         (double)atomic_load(&app->limit_db),
         100.0 * (double)atomic_load(&app->mix),
         atomic_load(&app->bypass) ? "on" : "off",
         atomic_load(&app->residual) ? "on" : "off",
         atomic_load(&app->linked) ? "on" : "off", atomic_load(&app->latency),
         rate, (double)atomic_load(&app->voice),
         (double)atomic_load(&app->reduction_db), atomic_load(&app->xruns),
         atomic_load(&app->first_frame),
         app->model);
  pthread_mutex_unlock(&app->build_lock);
}

/* Parses "on", "off" or "toggle" against the current value. */
static bool parse_switch(const char *word, bool current, bool *out)
{
  if (!word || !strcasecmp(word, "toggle")) {
    *out = !current;
  } else if (!strcasecmp(word, "on") || !strcmp(word, "1")) {
    *out = true;
  } else if (!strcasecmp(word, "off") || !strcmp(word, "0")) {
    *out = false;
  } else {
    return false;
  }
  return true;
}

static bool parse_number(const char *word, double low, double high,
                         double *out)
{
  if (!word) {
    return false;
  }
  char *end = NULL;
  errno = 0;
  const double value = strtod(word, &end);
  if (errno || end == word || *end != '\0' || !(value >= low) ||
      value > high) {
    return false;
  }
  *out = value;
  return true;
}

static void set_switch(atomic_bool *flag, const char *name, const char *word)
{
  bool value;
  if (!parse_switch(word, atomic_load(flag), &value)) {
    fprintf(stderr, "drsn-jack: %s expects on, off or toggle, not \"%s\"\n",
            name, word);
    return;
  }
  atomic_store(flag, value);
  printf("%s %s\n", name, value ? "on" : "off");
}

/* Executes one command line. Returns false for "quit" and when a stop
 * signal arrived during a model load. */
static bool run_command(app_state *app, char *line)
{
  char *saveptr = NULL;
  char *verb = strtok_r(line, " \t\r\n", &saveptr);
  if (!verb) {
    return true;
  }
  char *rest = strtok_r(NULL, "\r\n", &saveptr);
  while (rest && (*rest == ' ' || *rest == '\t')) {
    ++rest;
  }
  if (rest) {
    /* Trailing blanks are never part of an argument, not even a path. */
    size_t length = strlen(rest);
    while (length > 0 &&
           (rest[length - 1] == ' ' || rest[length - 1] == '\t')) {
      rest[--length] = '\0';
    }
    if (length == 0) {
      rest = NULL;
    }
  }
  double value;
  bool keep_running = true;

  static const char *const without_argument[] = {"quit", "exit", "help",
                                                  "status", "reload"};
  const size_t count = sizeof without_argument / sizeof without_argument[0];
  for (size_t i = 0; rest && i < count; ++i) {
    if (!strcmp(verb, without_argument[i])) {
      fprintf(stderr,
              "drsn-jack: %s takes no argument, so \"%s %s\" was ignored\n",
              verb, verb, rest);
      fflush(stderr);
      return true;
    }
  }

  if (!strcmp(verb, "quit") || !strcmp(verb, "exit")) {
    return false;
  } else if (!strcmp(verb, "help")) {
    print_usage(stdout, "drsn-jack");
  } else if (!strcmp(verb, "status")) {
    print_status(app);
  } else if (!strcmp(verb, "limit")) {
    if (parse_number(rest, 0.0, 100.0, &value)) {
      atomic_store(&app->limit_db, (float)value);
      printf("limit %.1f\n", value);
    } else {
      fprintf(stderr, "drsn-jack: limit expects dB from 0 to 100\n");
    }
  } else if (!strcmp(verb, "mix")) {
    if (parse_number(rest, 0.0, 100.0, &value)) {
      atomic_store(&app->mix, (float)(value / 100.0));
      printf("mix %.0f\n", value);
    } else {
      fprintf(stderr, "drsn-jack: mix expects a percentage from 0 to 100\n");
    }
  } else if (!strcmp(verb, "bypass")) {
    set_switch(&app->bypass, "bypass", rest);
  } else if (!strcmp(verb, "residual")) {
    set_switch(&app->residual, "residual", rest);
  } else if (!strcmp(verb, "link")) {
    set_switch(&app->linked, "link", rest);
  } else if (!strcmp(verb, "model")) {
    keep_running = change_model(app, rest ? rest : "default") != LOAD_STOPPED;
  } else if (!strcmp(verb, "reload")) {
    keep_running = change_model(app, app->model) != LOAD_STOPPED;
  } else {
    fprintf(stderr, "drsn-jack: unknown command \"%s\" (try help)\n", verb);
  }
  fflush(stdout);
  return keep_running;
}

static void connect_physical(app_state *app)
{
  const char **capture = jack_get_ports(app->client, NULL,
                                        JACK_DEFAULT_AUDIO_TYPE,
                                        JackPortIsPhysical | JackPortIsOutput);
  const char **playback = jack_get_ports(app->client, NULL,
                                         JACK_DEFAULT_AUDIO_TYPE,
                                         JackPortIsPhysical | JackPortIsInput);
  for (uint32_t c = 0; c < app->channels; ++c) {
    if (capture && capture[c] &&
        jack_connect(app->client, capture[c], jack_port_name(app->in[c]))) {
      fprintf(stderr, "drsn-jack: cannot connect %s\n", capture[c]);
    }
    if (playback && playback[c] &&
        jack_connect(app->client, jack_port_name(app->out[c]), playback[c])) {
      fprintf(stderr, "drsn-jack: cannot connect to %s\n", playback[c]);
    }
  }
  /* A mono client feeds both ears. */
  if (app->channels == 1 && playback && playback[0] && playback[1]) {
    jack_connect(app->client, jack_port_name(app->out[0]), playback[1]);
  }
  jack_free(capture);
  jack_free(playback);
}

static bool register_ports(app_state *app)
{
  static const char *const mono[2][1] = {{"in"}, {"out"}};
  static const char *const stereo[2][2] = {{"in_L", "in_R"},
                                           {"out_L", "out_R"}};
  for (uint32_t c = 0; c < app->channels; ++c) {
    const char *in_name = app->channels == 1 ? mono[0][0] : stereo[0][c];
    const char *out_name = app->channels == 1 ? mono[1][0] : stereo[1][c];
    app->in[c] = jack_port_register(app->client, in_name,
                                    JACK_DEFAULT_AUDIO_TYPE, JackPortIsInput,
                                    0);
    app->out[c] = jack_port_register(app->client, out_name,
                                     JACK_DEFAULT_AUDIO_TYPE,
                                     JackPortIsOutput, 0);
    if (!app->in[c] || !app->out[c]) {
      fprintf(stderr, "drsn-jack: cannot register JACK ports\n");
      return false;
    }
  }
  return true;
}

static void install_signal_handlers(void)
{
  struct sigaction action;
  memset(&action, 0, sizeof action);
  action.sa_handler = on_signal;
  sigemptyset(&action.sa_mask);
  /* SA_RESTART keeps JACK's and stdio's calls from failing with EINTR.
   * Stop signals still end a model load, because the main thread waits
   * for the loader thread in poll(), which a signal always interrupts. */
  action.sa_flags = SA_RESTART;
  const int signals[] = {SIGINT, SIGTERM, SIGHUP, SIGUSR1, SIGUSR2};
  for (size_t i = 0; i < sizeof signals / sizeof signals[0]; ++i) {
    sigaction(signals[i], &action, NULL);
  }
  signal(SIGPIPE, SIG_IGN);
}

/* Waits for commands and signals until asked to stop. */
static void main_loop(app_state *app)
{
  char line[COMMAND_LINE_MAX];
  size_t used = 0;
  bool discarding = false; /* skipping the rest of an over-long line */
  bool stdin_open = true;
  bool running = true;
  unsigned reported_latency = atomic_load(&app->latency);

  while (running) {
    struct pollfd fds[2] = {
        {signal_pipe[0], POLLIN, 0},
        {stdin_open ? STDIN_FILENO : -1, POLLIN, 0},
    };
    const int ready = poll(fds, 2, 100);
    if (ready < 0 && errno != EINTR) {
      perror("drsn-jack: poll");
      break;
    }

    if (ready > 0 && (fds[0].revents & POLLIN)) {
      running = handle_signals(app);
    }

    if (running && ready > 0 && (fds[1].revents & (POLLIN | POLLHUP))) {
      const ssize_t got = read(STDIN_FILENO, line + used, sizeof line - 1 - used);
      if (got <= 0) {
        stdin_open = false; /* end of input: keep running on signals */
      } else {
        /* The input may contain NUL bytes, so lines are found by length,
         * not with the string functions. */
        used += (size_t)got;
        const char *end = line + used;
        char *start = line;
        char *newline;
        while (running &&
               (newline = memchr(start, '\n', (size_t)(end - start)))) {
          *newline = '\0';
          if (discarding) {
            discarding = false; /* the over-long line ends here */
          } else if (memchr(start, '\0', (size_t)(newline - start))) {
            fprintf(stderr, "drsn-jack: invalid command line: it contains a "
                            "NUL byte, ignored\n");
          } else {
            running = run_command(app, start);
          }
          start = newline + 1;
        }
        used = (size_t)(end - start);
        memmove(line, start, used);
        line[used] = '\0';
        if (used == sizeof line - 1) {
          /* Drop everything up to the next newline, so that no part of
           * the line runs as a command of its own. */
          if (!discarding) {
            fprintf(stderr,
                    "drsn-jack: command line longer than %zu bytes, "
                    "ignored\n",
                    sizeof line - 2);
          }
          discarding = true;
          used = 0;
        }
      }
    }

    if (running && app->reload_pending) {
      app->reload_pending = false;
      running = change_model(app, app->model) != LOAD_STOPPED;
    }

    free_handed_back(app);
    const unsigned latency = atomic_load(&app->latency);
    if (latency != reported_latency) {
      reported_latency = latency;
      jack_recompute_total_latencies(app->client);
      printf("latency %u\n", latency);
      fflush(stdout);
    }
    if (atomic_load(&app->server_gone)) {
      running = false;
    }
  }
}

typedef struct {
  double limit_db;
  double mix_percent;
  bool bypass;
  bool residual;
  bool linked;
  uint32_t channels;
  const char *model;
  const char *name;
  bool connect;
} options;

/* Returns 0 to run, 1 on an error, 2 after --help. */
static int parse_options(int argc, char **argv, options *opt)
{
  enum { OPT_LINK = 256, OPT_NO_LINK };
  static const struct option long_options[] = {
      {"limit", required_argument, NULL, 'l'},
      {"mix", required_argument, NULL, 'm'},
      {"listen-residual", no_argument, NULL, 'r'},
      {"bypass", no_argument, NULL, 'b'},
      {"link", no_argument, NULL, OPT_LINK},
      {"no-link", no_argument, NULL, OPT_NO_LINK},
      {"channels", required_argument, NULL, 'c'},
      {"model", required_argument, NULL, 'M'},
      {"name", required_argument, NULL, 'n'},
      {"no-connect", no_argument, NULL, 'N'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  double value;
  int c;
  opterr = 0; /* getopt's own messages would start with the program's path */
  while ((c = getopt_long(argc, argv, ":l:m:rbc:M:n:Nh", long_options,
                          NULL)) != -1) {
    switch (c) {
    case ':':
    case '?': {
      /* A long option is shown as written. For a short one, also inside a
       * group such as -bx, optopt contains its letter. */
      char letter[3] = {'-', (char)optopt, '\0'};
      const char *word = argv[optind - 1];
      const char *shown =
          strncmp(word, "--", 2) == 0 || optopt == 0 ? word : letter;
      if (c == ':') {
        fprintf(stderr, "drsn-jack: option \"%s\" needs a value (try --help)\n",
                shown);
      } else {
        fprintf(stderr, "drsn-jack: unknown option \"%s\" (try --help)\n",
                shown);
      }
      return 1;
    }
    case 'l':
      if (!parse_number(optarg, 0.0, 100.0, &opt->limit_db)) {
        fprintf(stderr, "drsn-jack: --limit expects dB from 0 to 100, not "
                        "\"%s\"\n", optarg);
        return 1;
      }
      break;
    case 'm':
      if (!parse_number(optarg, 0.0, 100.0, &opt->mix_percent)) {
        fprintf(stderr, "drsn-jack: --mix expects a percentage from 0 to "
                        "100, not \"%s\"\n", optarg);
        return 1;
      }
      break;
    case 'r':
      opt->residual = true;
      break;
    case 'b':
      opt->bypass = true;
      break;
    case OPT_LINK:
      opt->linked = true;
      break;
    case OPT_NO_LINK:
      opt->linked = false;
      break;
    case 'c':
      if (!parse_number(optarg, 1.0, 2.0, &value) || value != floor(value)) {
        fprintf(stderr, "drsn-jack: --channels expects 1 or 2, not \"%s\"\n",
                optarg);
        return 1;
      }
      opt->channels = (uint32_t)value;
      break;
    case 'M':
      if (optarg[0] == '\0') {
        fprintf(stderr, "drsn-jack: --model expects 'default', 'low-latency' "
                        "or a model file, not an empty string\n");
        return 1;
      }
      opt->model = optarg;
      break;
    case 'n':
      if (optarg[0] == '\0') {
        fprintf(stderr, "drsn-jack: --name expects a JACK client name, not "
                        "an empty string\n");
        return 1;
      }
      /* jack_client_name_size() counts the terminating NUL. */
      if (strlen(optarg) >= (size_t)jack_client_name_size()) {
        fprintf(stderr,
                "drsn-jack: --name is too long: %zu bytes, but JACK client "
                "names may have at most %d\n",
                strlen(optarg), jack_client_name_size() - 1);
        return 1;
      }
      opt->name = optarg;
      break;
    case 'N':
      opt->connect = false;
      break;
    case 'h':
      print_usage(stdout, argv[0]);
      return 2;
    default:
      print_usage(stderr, "drsn-jack");
      return 1;
    }
  }
  if (optind < argc) {
    fprintf(stderr, "drsn-jack: unexpected argument \"%s\"\n", argv[optind]);
    return 1;
  }
  return 0;
}

static bool open_client(app_state *app, const options *opt)
{
  jack_status_t status;
  app->client = jack_client_open(opt->name, JackNoStartServer, &status);
  if (!app->client) {
    if (status & JackServerFailed) {
      fprintf(stderr,
              "drsn-jack: cannot connect to the JACK server (status 0x%x); "
              "is jackd running?\n",
              (unsigned)status);
    } else {
      fprintf(stderr,
              "drsn-jack: the JACK server rejected client \"%s\" (status "
              "0x%x)\n",
              opt->name, (unsigned)status);
    }
    return false;
  }
  jack_nframes_t block = jack_get_buffer_size(app->client);
  app->chunk = block >= 64 && block <= 8192 ? block : FE_DEFAULT_CHUNK;
  return true;
}

typedef enum { START_OK, START_FAILED, START_STOPPED } start_result;

static start_result start_client(app_state *app, const options *opt)
{
  const double rate = (double)jack_get_sample_rate(app->client);
  pthread_mutex_lock(&app->build_lock);
  app->build_rate = rate;
  pthread_mutex_unlock(&app->build_lock);

  fe_stage *stage = NULL;
  const load_result loaded =
      load_stage(app, app->model, rate, "", &stage);
  if (loaded != LOAD_OK) {
    return loaded == LOAD_STOPPED ? START_STOPPED : START_FAILED;
  }
  drsn_error err = {0};
  const drsn_status status = fe_processor_create(
      stage, rate, app->channels, app->chunk, &app->processor, &err);
  if (status != DRSN_OK) {
    fprintf(stderr, "drsn-jack: cannot start the engine at %.0f Hz: %s\n",
            rate, err.message[0] ? err.message : drsn_strerror(status));
    return START_FAILED;
  }
  atomic_store(&app->latency, fe_processor_latency(app->processor));

  if (!register_ports(app)) {
    return START_FAILED;
  }
  jack_set_process_callback(app->client, on_process, app);
  jack_set_sample_rate_callback(app->client, on_sample_rate, app);
  jack_set_buffer_size_callback(app->client, on_buffer_size, app);
  jack_set_xrun_callback(app->client, on_xrun, app);
  jack_set_latency_callback(app->client, on_latency, app);
  jack_on_info_shutdown(app->client, on_shutdown, app);

  if (jack_activate(app->client)) {
    fprintf(stderr, "drsn-jack: cannot activate the JACK client\n");
    return START_FAILED;
  }
  if (opt->connect) {
    connect_physical(app);
  }
  const unsigned latency = atomic_load(&app->latency);
  printf("drsn-jack: running as \"%s\" at %.0f Hz, %u channel(s), model "
         "%s, latency %u samples (%.1f ms); type help for commands\n",
         jack_get_client_name(app->client), rate, app->channels, app->model,
         latency, 1000.0 * latency / rate);
  fflush(stdout);
  return START_OK;
}

int main(int argc, char **argv)
{
  /* Status lines go to pipes as soon as they are printed. */
  setvbuf(stdout, NULL, _IOLBF, 0);

  options opt = {
      .limit_db = 30.0,
      .mix_percent = 100.0,
      .linked = true,
      .channels = 1,
      .name = "drsn-jack",
      .connect = true,
  };
  const int parsed = parse_options(argc, argv, &opt);
  if (parsed) {
    return parsed == 2 ? 0 : 2; /* help, or an invalid option */
  }

  static app_state app;
  app.channels = opt.channels;
  atomic_init(&app.limit_db, (float)opt.limit_db);
  atomic_init(&app.mix, (float)(opt.mix_percent / 100.0));
  atomic_init(&app.bypass, opt.bypass);
  atomic_init(&app.residual, opt.residual);
  atomic_init(&app.linked, opt.linked);
  pthread_mutex_init(&app.build_lock, NULL);
  /* Without --model the default model runs (parse_options rejects an empty
   * one). */
  const char *model = opt.model ? opt.model : "default";
  if (strlen(model) >= MODEL_PATH_MAX) {
    fprintf(stderr, "drsn-jack: model path is longer than %d bytes\n",
            MODEL_PATH_MAX - 1);
    return 1;
  }
  strcpy(app.model, model);

  if (pipe(signal_pipe)) {
    perror("drsn-jack: pipe");
    return 1;
  }
  fcntl(signal_pipe[0], F_SETFL, O_NONBLOCK);
  fcntl(signal_pipe[1], F_SETFL, O_NONBLOCK);
  install_signal_handlers();

  int exit_code = 1;
  bool started = false;
  if (open_client(&app, &opt)) {
    const start_result result = start_client(&app, &opt);
    if (result == START_OK) {
      started = true;
      main_loop(&app);
      exit_code = atomic_load(&app.server_gone) ? 1 : 0;
    } else if (result == START_STOPPED) {
      exit_code = 0;
    }
    if (!atomic_load(&app.server_gone)) {
      jack_deactivate(app.client);
    }
    jack_client_close(app.client);
  }

  free_handed_back(&app);
  fe_processor_destroy(app.processor);
  fe_processor_destroy(atomic_exchange(&app.next_processor, NULL));
  fe_stage_destroy(atomic_exchange(&app.next_stage, NULL));
  if (started) {
    fprintf(stderr, "drsn-jack: stopped after %u xrun(s)\n",
            atomic_load(&app.xruns));
  }
  pthread_mutex_destroy(&app.build_lock);
  return exit_code;
}
