/*
 * drsn-bench: network cost and processing speed of the drsn engine.
 *
 * Prints "key: value" lines: the model's multiply-accumulates per second of
 * audio, then the CPU time and wall time of processing a synthetic signal in
 * fixed blocks on the calling thread, the real-time factor and the worst
 * block time. Every block of at most one hop contains at most one network
 * evaluation, so the worst block time is the worst time per hop.
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include "drsn.h"

static const char program_name[] = "drsn-bench";

static const double pi = 3.14159265358979323846;

typedef struct {
  /* A built-in model name, a model file, or NULL for the default model. */
  const char *model;
  double seconds;
  double rate_hz;
  uint32_t block;
  uint32_t channels;
  int macs_only;
  int list_models;
} bench_options;

static void print_help(FILE *stream) {
  fprintf(stream,
          "Usage: %s [OPTION]...\n"
          "Measure the drsn engine: network MACs per second of audio, and the time\n"
          "to process a synthetic signal in fixed blocks on one thread.\n"
          "\n"
          "  -m, --model MODEL   a built-in model (",
          program_name);
  for (const char *const *builtin = drsn_model_builtin_names(); *builtin; builtin++) {
    fprintf(stream, "%s'%s'", builtin == drsn_model_builtin_names() ? "" : ", ", *builtin);
  }
  fprintf(stream,
          ")\n"
          "                      or a model file; write ./NAME for a file named like\n"
          "                      a built-in model (default: 'default')\n"
          "  -s, --seconds S     seconds of audio to process (default 60)\n"
          "  -r, --rate HZ       sample rate (default 48000)\n"
          "  -b, --block N       frames per process call (default 256)\n"
          "  -c, --channels N    channel count, linked (default 1)\n"
          "      --macs-only     print the MACs per second and exit\n"
          "      --list-models   print the built-in model names, one a line, and exit\n"
          "  -h, --help          show this help and exit\n");
}

static int parse_number(const char *text, double minimum, double maximum, double *value) {
  char *end = NULL;
  errno = 0;
  *value = strtod(text, &end);
  return errno == 0 && end != text && *end == '\0' && isfinite(*value) &&
                 *value >= minimum && *value <= maximum
             ? 0
             : -1;
}

/* Returns 0, 1 to exit with success, or -1 on a usage error. */
static int parse_options(int argc, char **argv, bench_options *options) {
  enum { OPTION_MACS_ONLY = 256, OPTION_LIST_MODELS };
  static const struct option long_options[] = {
      {"model", required_argument, NULL, 'm'},
      {"seconds", required_argument, NULL, 's'},
      {"rate", required_argument, NULL, 'r'},
      {"block", required_argument, NULL, 'b'},
      {"channels", required_argument, NULL, 'c'},
      {"macs-only", no_argument, NULL, OPTION_MACS_ONLY},
      {"list-models", no_argument, NULL, OPTION_LIST_MODELS},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  *options = (bench_options){NULL, 60.0, 48000.0, 256, 1, 0, 0};
  int option;
  double value;
  while ((option = getopt_long(argc, argv, "m:s:r:b:c:h", long_options, NULL)) != -1) {
    switch (option) {
    case 'm':
      options->model = optarg;
      break;
    case 's':
      if (parse_number(optarg, 0.01, 36000.0, &options->seconds) != 0) {
        fprintf(stderr, "%s: invalid --seconds '%s'\n", program_name, optarg);
        return -1;
      }
      break;
    case 'r':
      if (parse_number(optarg, 8000.0, 192000.0, &options->rate_hz) != 0) {
        fprintf(stderr, "%s: invalid --rate '%s', expected 8000 to 192000\n",
                program_name, optarg);
        return -1;
      }
      break;
    case 'b':
      if (parse_number(optarg, 1.0, 65536.0, &value) != 0) {
        fprintf(stderr, "%s: invalid --block '%s', expected 1 to 65536\n", program_name,
                optarg);
        return -1;
      }
      options->block = (uint32_t)value;
      break;
    case 'c':
      if (parse_number(optarg, 1.0, DRSN_MAX_CHANNELS, &value) != 0) {
        fprintf(stderr, "%s: invalid --channels '%s', expected 1 to %d\n", program_name,
                optarg, DRSN_MAX_CHANNELS);
        return -1;
      }
      options->channels = (uint32_t)value;
      break;
    case OPTION_MACS_ONLY:
      options->macs_only = 1;
      break;
    case OPTION_LIST_MODELS:
      options->list_models = 1;
      break;
    case 'h':
      print_help(stdout);
      return 1;
    default:
      fprintf(stderr, "Try '%s --help' for more information.\n", program_name);
      return -1;
    }
  }
  if (optind != argc) {
    fprintf(stderr, "%s: unexpected argument '%s'\n", program_name, argv[optind]);
    return -1;
  }
  return 0;
}

static double seconds_of(clockid_t clock) {
  struct timespec now;
  clock_gettime(clock, &now);
  return (double)now.tv_sec + (double)now.tv_nsec * 1e-9;
}

/*
 * Fills a channel with a repeatable test signal: pseudo-random noise at about
 * -26 dBFS plus a 200 Hz harmonic tone switched on and off at 3 Hz. The
 * engine's cost does not depend on the content; the mix only keeps every
 * code path (speech-like and noise-like frames) in use.
 */
static void fill_test_signal(float *samples, size_t count, double rate_hz, uint32_t seed) {
  uint32_t state = 2463534242u ^ seed;
  for (size_t i = 0; i < count; i++) {
    state ^= state << 13;
    state ^= state >> 17;
    state ^= state << 5;
    double noise = ((double)state / 4294967296.0 - 0.5) * 0.1;
    double time = (double)i / rate_hz;
    double gate = sin(2.0 * pi * 3.0 * time) > 0.0 ? 1.0 : 0.0;
    double tone = 0.0;
    for (int k = 1; k <= 10; k++) {
      tone += sin(2.0 * pi * 200.0 * k * time) / k;
    }
    samples[i] = (float)(noise + 0.05 * gate * tone);
  }
}

static int compare_doubles(const void *a, const void *b) {
  double x = *(const double *)a;
  double y = *(const double *)b;
  return (x > y) - (x < y);
}

static int run_timing(const drsn_model *model, const bench_options *options) {
  drsn_engine *engine = NULL;
  drsn_error error;
  memset(&error, 0, sizeof error);
  if (drsn_engine_create(model, options->rate_hz, options->channels, &engine, &error) !=
      DRSN_OK) {
    fprintf(stderr, "%s: cannot create the engine: %s\n", program_name, error.message);
    return -1;
  }
  drsn_engine_set_linked(engine, 1);

  size_t total = (size_t)llround(options->seconds * options->rate_hz);
  size_t block_count = (total + options->block - 1) / options->block;
  float *input[DRSN_MAX_CHANNELS] = {0};
  float *output[DRSN_MAX_CHANNELS] = {0};
  double *block_seconds = calloc(block_count, sizeof *block_seconds);
  int status = block_seconds ? 0 : -1;
  for (uint32_t c = 0; c < options->channels && status == 0; c++) {
    input[c] = malloc(total * sizeof(float));
    output[c] = malloc(options->block * sizeof(float));
    if (!input[c] || !output[c]) {
      status = -1;
    } else {
      fill_test_signal(input[c], total, options->rate_hz, c);
    }
  }
  if (status != 0) {
    fprintf(stderr, "%s: out of memory for %zu samples\n", program_name, total);
  }

  if (status == 0) {
    /* One untimed second first, so that first-touch page faults and cold
     * caches do not count. */
    const float *block_in[DRSN_MAX_CHANNELS];
    size_t warmup = total < (size_t)options->rate_hz ? total : (size_t)options->rate_hz;
    for (size_t start = 0; start < warmup; start += options->block) {
      uint32_t frames = (uint32_t)(warmup - start < options->block ? warmup - start
                                                                   : options->block);
      for (uint32_t c = 0; c < options->channels; c++) {
        block_in[c] = input[c] + start;
      }
      drsn_engine_process(engine, block_in, output, frames);
    }
    drsn_engine_reset(engine);

    double cpu_start = seconds_of(CLOCK_PROCESS_CPUTIME_ID);
    double wall_start = seconds_of(CLOCK_MONOTONIC);
    for (size_t b = 0; b < block_count; b++) {
      size_t start = b * options->block;
      uint32_t frames =
          (uint32_t)(total - start < options->block ? total - start : options->block);
      for (uint32_t c = 0; c < options->channels; c++) {
        block_in[c] = input[c] + start;
      }
      double block_start = seconds_of(CLOCK_THREAD_CPUTIME_ID);
      drsn_engine_process(engine, block_in, output, frames);
      block_seconds[b] = seconds_of(CLOCK_THREAD_CPUTIME_ID) - block_start;
    }
    double wall = seconds_of(CLOCK_MONOTONIC) - wall_start;
    double cpu = seconds_of(CLOCK_PROCESS_CPUTIME_ID) - cpu_start;

    qsort(block_seconds, block_count, sizeof *block_seconds, compare_doubles);
    double audio_seconds = (double)total / options->rate_hz;
    uint32_t hop = drsn_engine_hop_samples(engine);
    printf("rate_hz: %.0f\n", options->rate_hz);
    printf("channels: %u\n", options->channels);
    printf("block_frames: %u\n", options->block);
    printf("hop_frames: %u\n", hop);
    printf("latency_frames: %u\n", drsn_engine_latency_samples(engine));
    printf("audio_seconds: %.3f\n", audio_seconds);
    printf("cpu_seconds: %.4f\n", cpu);
    printf("wall_seconds: %.4f\n", wall);
    printf("realtime_factor_cpu: %.1f\n", audio_seconds / cpu);
    printf("realtime_factor_wall: %.1f\n", audio_seconds / wall);
    printf("block_cpu_us_median: %.1f\n", 1e6 * block_seconds[block_count / 2]);
    printf("block_cpu_us_p999: %.1f\n",
           1e6 * block_seconds[(size_t)((double)(block_count - 1) * 0.999)]);
    printf("block_cpu_us_max: %.1f\n", 1e6 * block_seconds[block_count - 1]);
    printf("hop_budget_us: %.1f\n", 1e6 * hop / options->rate_hz);
    if (options->block > hop) {
      printf("note: blocks longer than a hop hold several network evaluations, so "
             "block_cpu_us_max is not a per-hop time\n");
    }
  }

  for (uint32_t c = 0; c < DRSN_MAX_CHANNELS; c++) {
    free(input[c]);
    free(output[c]);
  }
  free(block_seconds);
  drsn_engine_destroy(engine);
  return status;
}

int main(int argc, char **argv) {
  bench_options options;
  int parsed = parse_options(argc, argv, &options);
  if (parsed != 0) {
    return parsed > 0 ? 0 : 2;
  }
  if (options.list_models) {
    for (const char *const *builtin = drsn_model_builtin_names(); *builtin; builtin++) {
      printf("%s\n", *builtin);
    }
    return 0;
  }

  /* A name of a built-in model wins over a file of the same name, as in
   * drsn-denoise. */
  drsn_model *model = NULL;
  drsn_error error;
  memset(&error, 0, sizeof error);
  int builtin = !options.model || drsn_model_is_builtin(options.model);
  drsn_status status =
      !options.model ? drsn_model_load_default(&model, &error)
      : builtin      ? drsn_model_load_builtin(options.model, &model, &error)
                     : drsn_model_load_file(options.model, &model, &error);
  if (status != DRSN_OK) {
    fprintf(stderr, "%s: cannot load the model: %s\n", program_name,
            error.message[0] ? error.message : drsn_strerror(status));
    return 1;
  }
  printf("model: %s%s\n", options.model ? options.model : "default",
         builtin ? " (built-in)" : "");
  printf("model_rate_hz: %u\n", drsn_model_rate_hz(model));
  printf("macs_per_second: %.0f\n", drsn_model_macs_per_second(model));

  int result = 0;
  if (!options.macs_only) {
    result = run_timing(model, &options);
    struct rusage usage;
    if (result == 0 && getrusage(RUSAGE_SELF, &usage) == 0) {
      printf("max_rss_kib: %ld\n", usage.ru_maxrss);
    }
  }
  drsn_model_free(model);
  return result == 0 ? 0 : 1;
}
