/*
 * drsn-denoise: offline noise suppression of sound files with the drsn engine.
 *
 *   drsn-denoise [options] IN OUT
 *   drsn-denoise [options] -o DIR IN...
 */
#include <errno.h>
#include <getopt.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sndfile.h>

#include "drsn.h"
#include "output_file.h"
#include "render.h"

#ifndef DRSN_VERSION
#define DRSN_VERSION "unknown"
#endif

enum { EXIT_ALL_OK = 0, EXIT_SOME_FAILED = 1, EXIT_USAGE = 2 };

static const char program_name[] = "drsn-denoise";

/* Help text is wrapped to fit this many columns. */
enum { HELP_COLUMNS = 80 };

/* Prints the space-separated words of list from column indent onwards,
 * wrapped at HELP_COLUMNS. */
static void print_wrapped_list(FILE *stream, int indent, const char *list) {
  int column = indent;
  fprintf(stream, "%*s", indent, "");
  while (*list) {
    size_t length = strcspn(list, " ");
    if (column > indent && column + 1 + (int)length > HELP_COLUMNS) {
      fprintf(stream, "\n%*s", indent, "");
      column = indent;
    }
    if (column > indent) {
      fputc(' ', stream);
      column++;
    }
    fprintf(stream, "%.*s", (int)length, list);
    column += (int)length;
    list += length;
    list += strspn(list, " ");
  }
  fputc('\n', stream);
}

static void print_help(FILE *stream) {
  fprintf(stream,
          "Usage: %s [OPTION]... IN OUT\n"
          "       %s [OPTION]... -o DIR IN...\n"
          "Remove background noise from speech recordings.\n"
          "\n"
          "Reads any file libsndfile reads (WAV, FLAC, Ogg, AIFF, ...) at 8000 to\n"
          "192000 Hz with 1 to %d channels. The output has the input's sample rate,\n"
          "channel count and exact length, aligned sample for sample with the input.\n"
          "It keeps the input's container unless -F is given or OUT's extension\n"
          "names another container from the -F list; an unrecognised extension\n"
          "keeps the input's container. It keeps the input's encoding where the\n"
          "container allows it (see -S). IN and OUT are always files: '-' names a\n"
          "file called '-', not standard input or output.\n"
          "\n"
          "Options:\n"
          "  -o, --output-dir DIR  write each IN to DIR under its own base name (the\n"
          "                        directory is created if missing); with -F the\n"
          "                        extension changes to the -F name\n"
          "  -l, --limit DB        maximum attenuation in dB, 0 to 100 (default 30);\n"
          "                        0 disables suppression, so the output equals the\n"
          "                        input up to float rounding in the STFT (exactly\n"
          "                        for 8- and 16-bit PCM)\n"
          "  -m, --model MODEL     a built-in model, 'default' (20 ms latency at\n"
          "                        48 kHz) or 'low-latency' (10 ms), or a model file;\n"
          "                        write ./NAME for a file named like a built-in one\n"
          "      --link            share one gain between channels (default)\n"
          "      --no-link         denoise every channel on its own\n"
          "  -F, --format NAME     output container (opus is Ogg Opus), one of\n",
          program_name, program_name, DRSN_MAX_CHANNELS);
  print_wrapped_list(stream, 24, render_container_names());
  fprintf(stream, "  -S, --subtype NAME    output encoding, one of\n");
  print_wrapped_list(stream, 24, render_subtype_names());
  fprintf(stream,
          "                        (default: the input's where the container allows\n"
          "                        it; pcm8 is unsigned in WAV, W64 and RF64)\n"
          "  -f, --force           overwrite existing output files (only regular\n"
          "                        files, never an input)\n"
          "  -q, --quiet           do not show progress\n"
          "  -h, --help            show this help and exit\n"
          "  -V, --version         show the version and exit\n"
          "\n"
          "Output goes to a temporary file in the output directory that is renamed\n"
          "into place only when complete; a replaced file keeps its permissions.\n"
          "Progress is shown only when standard error is a terminal.\n"
          "\n"
          "Exit status:\n"
          "  0  every file was processed\n"
          "  1  at least one file failed (the others are still processed), or the\n"
          "     model could not be loaded\n"
          "  2  invalid command line\n");
}

static void usage_error(const char *message, const char *value) {
  if (value) {
    fprintf(stderr, "%s: %s: '%s'\n", program_name, message, value);
  } else {
    fprintf(stderr, "%s: %s\n", program_name, message);
  }
  fprintf(stderr, "Try '%s --help' for more information.\n", program_name);
}

/* Command-line settings. */
typedef struct {
  const char *output_dir;
  const char *model_path;
  double limit_db;
  int linked;
  /* Output container from -F, else from OUT's extension, or NULL. */
  const render_container *container;
  int subtype;
  int force;
  int quiet;
} cli_options;

/* Parses options; returns -1 to exit with EXIT_USAGE, 1 to exit with 0. */
static int parse_options(int argc, char **argv, cli_options *cli) {
  enum { OPTION_LINK = 256, OPTION_NO_LINK };
  static const struct option long_options[] = {
      {"output-dir", required_argument, NULL, 'o'},
      {"limit", required_argument, NULL, 'l'},
      {"model", required_argument, NULL, 'm'},
      {"link", no_argument, NULL, OPTION_LINK},
      {"no-link", no_argument, NULL, OPTION_NO_LINK},
      {"format", required_argument, NULL, 'F'},
      {"subtype", required_argument, NULL, 'S'},
      {"force", no_argument, NULL, 'f'},
      {"quiet", no_argument, NULL, 'q'},
      {"help", no_argument, NULL, 'h'},
      {"version", no_argument, NULL, 'V'},
      {NULL, 0, NULL, 0},
  };

  memset(cli, 0, sizeof *cli);
  cli->limit_db = 30.0;
  cli->linked = 1;
  int option;
  while ((option = getopt_long(argc, argv, "o:l:m:F:S:fqhV", long_options, NULL)) != -1) {
    char *end = NULL;
    switch (option) {
    case 'o':
      if (optarg[0] == '\0') {
        usage_error("--output-dir needs a non-empty directory name", NULL);
        return -1;
      }
      cli->output_dir = optarg;
      break;
    case 'l':
      errno = 0;
      cli->limit_db = strtod(optarg, &end);
      if (errno != 0 || end == optarg || *end != '\0' || !isfinite(cli->limit_db) ||
          cli->limit_db < 0.0 || cli->limit_db > 100.0) {
        usage_error("invalid --limit, expected dB from 0 to 100", optarg);
        return -1;
      }
      break;
    case 'm':
      cli->model_path = optarg;
      break;
    case OPTION_LINK:
      cli->linked = 1;
      break;
    case OPTION_NO_LINK:
      cli->linked = 0;
      break;
    case 'F':
      cli->container = render_container_from_name(optarg);
      if (!cli->container) {
        usage_error("unknown --format (see --help for the names)", optarg);
        return -1;
      }
      break;
    case 'S':
      cli->subtype = render_subtype_from_name(optarg);
      if (!cli->subtype) {
        usage_error("unknown --subtype (see --help for the names)", optarg);
        return -1;
      }
      break;
    case 'f':
      cli->force = 1;
      break;
    case 'q':
      cli->quiet = 1;
      break;
    case 'h':
      print_help(stdout);
      return 1;
    case 'V':
      printf("%s %s (%s)\n", program_name, DRSN_VERSION, sf_version_string());
      return 1;
    default:
      fprintf(stderr, "Try '%s --help' for more information.\n", program_name);
      return -1;
    }
  }
  return 0;
}

static drsn_model *load_model(const char *path) {
  struct stat path_stat;
  if (path && !drsn_model_is_builtin(path) && stat(path, &path_stat) == 0 &&
      S_ISDIR(path_stat.st_mode)) {
    fprintf(stderr, "%s: model %s is a directory; --model expects a model file\n",
            program_name, path);
    return NULL;
  }
  drsn_model *model = NULL;
  drsn_error error;
  memset(&error, 0, sizeof error);
  drsn_status status;
  if (!path) {
    status = drsn_model_load_default(&model, &error);
  } else if (drsn_model_is_builtin(path)) {
    status = drsn_model_load_builtin(path, &model, &error);
  } else {
    status = drsn_model_load_file(path, &model, &error);
  }
  if (status != DRSN_OK) {
    /* The engine's messages start with "model '<name>': ". */
    if (error.message[0]) {
      fprintf(stderr, "%s: %s\n", program_name, error.message);
    } else {
      fprintf(stderr, "%s: cannot load the %s model: %s\n", program_name,
              path ? path : "built-in", drsn_strerror(status));
    }
    return NULL;
  }
  return model;
}

/* Returns DIR/<base name of in_path>, with the extension replaced when
 * extension is not NULL. The caller frees the result. */
static char *output_path_in_directory(const char *directory, const char *in_path,
                                      const char *extension) {
  const char *slash = strrchr(in_path, '/');
  const char *base = slash ? slash + 1 : in_path;
  size_t base_length = strlen(base);
  if (extension) {
    const char *dot = strrchr(base, '.');
    if (dot && dot != base) {
      base_length = (size_t)(dot - base);
    }
  }
  size_t size = strlen(directory) + 1 + base_length + 1 +
                (extension ? strlen(extension) : 0) + 1;
  char *path = malloc(size);
  if (!path) {
    return NULL;
  }
  if (extension) {
    snprintf(path, size, "%s/%.*s.%s", directory, (int)base_length, base, extension);
  } else {
    snprintf(path, size, "%s/%s", directory, base);
  }
  return path;
}

/* Returns the container named by the extension of path, or NULL. */
static const render_container *container_of_extension(const char *path) {
  const char *slash = strrchr(path, '/');
  const char *base = slash ? slash + 1 : path;
  const char *dot = strrchr(base, '.');
  return dot && dot != base ? render_container_from_name(dot + 1) : NULL;
}

/* Progress line state; drawn on stderr only when it is a terminal. */
typedef struct {
  const char *name;
  size_t index;
  size_t count;
  int last_percent;
} progress_line;

static void show_progress(void *context, double fraction) {
  progress_line *line = context;
  int percent = (int)(fraction * 100.0);
  if (percent > 100) {
    percent = 100;
  }
  if (percent == line->last_percent) {
    return;
  }
  line->last_percent = percent;
  fprintf(stderr, "\r[%zu/%zu] %s: %3d%%\033[K", line->index + 1, line->count,
          line->name, percent);
  fflush(stderr);
}

static void clear_progress(const progress_line *line) {
  if (line->last_percent >= 0) {
    fprintf(stderr, "\r\033[K");
    fflush(stderr);
  }
}

/* Returns nonzero when out_path names a file this run has already written. */
static int is_earlier_output(const char *out_path, const struct stat *written,
                             size_t written_count) {
  struct stat out_stat;
  if (stat(out_path, &out_stat) != 0) {
    return 0;
  }
  for (size_t i = 0; i < written_count; i++) {
    if (output_file_same(&out_stat, &written[i])) {
      return 1;
    }
  }
  return 0;
}

static int prepare_output_dir(const char *directory) {
  struct stat directory_stat;
  if (stat(directory, &directory_stat) == 0) {
    if (!S_ISDIR(directory_stat.st_mode)) {
      fprintf(stderr, "%s: output directory %s is not a directory\n", program_name,
              directory);
      return -1;
    }
    return 0;
  }
  if (errno != ENOENT || mkdir(directory, 0777) != 0) {
    fprintf(stderr, "%s: cannot create output directory %s: %s\n", program_name,
            directory, strerror(errno));
    return -1;
  }
  return 0;
}

/* Processes every input; returns the number of files that failed. */
static size_t process_all(char **inputs, size_t input_count, const char *single_output,
                          const cli_options *cli, const drsn_model *model) {
  struct stat *input_stats = calloc(input_count, sizeof *input_stats);
  struct stat *written = calloc(input_count, sizeof *written);
  int *input_ok = calloc(input_count, sizeof *input_ok);
  if (!input_stats || !written || !input_ok) {
    fprintf(stderr, "%s: out of memory\n", program_name);
    free(input_stats);
    free(written);
    free(input_ok);
    return input_count;
  }

  /* Every input's identity is taken before any output is created, so that no
   * output can replace an input that comes later in the list. */
  size_t failed = 0;
  for (size_t i = 0; i < input_count; i++) {
    if (stat(inputs[i], &input_stats[i]) != 0) {
      fprintf(stderr, "%s: %s: cannot open: %s\n", program_name, inputs[i],
              strerror(errno));
      failed++;
    } else if (S_ISDIR(input_stats[i].st_mode)) {
      fprintf(stderr, "%s: %s: is a directory\n", program_name, inputs[i]);
      failed++;
    } else {
      input_ok[i] = 1;
    }
  }

  int show = !cli->quiet && isatty(STDERR_FILENO);
  render_options options = {
      .model = model,
      .model_name = cli->model_path ? cli->model_path : "default",
      .limit_db = (float)cli->limit_db,
      .linked = cli->linked,
      .force = cli->force,
      .container = cli->container,
      .subtype = cli->subtype,
      .input_stats = input_stats,
      .input_paths = (const char *const *)inputs,
      .input_count = input_count,
      .progress = show ? show_progress : NULL,
  };
  const char *extension = cli->container ? cli->container->name : NULL;

  size_t written_count = 0;
  for (size_t i = 0; i < input_count; i++) {
    if (!input_ok[i]) {
      continue;
    }
    char *out_path = single_output ? strdup(single_output)
                                   : output_path_in_directory(cli->output_dir,
                                                              inputs[i], extension);
    if (!out_path) {
      fprintf(stderr, "%s: %s: out of memory\n", program_name, inputs[i]);
      failed++;
      continue;
    }
    if (is_earlier_output(out_path, written, written_count)) {
      fprintf(stderr,
              "%s: %s: output %s was already written from another input of this "
              "run; rename one of the inputs\n",
              program_name, inputs[i], out_path);
      failed++;
      free(out_path);
      continue;
    }

    progress_line line = {inputs[i], i, input_count, -1};
    options.progress_context = &line;
    char error[1024];
    long long replaced = 0;
    options.replaced_samples = &replaced;
    int status = render_file(inputs[i], out_path, &options, error, sizeof error);
    if (show) {
      clear_progress(&line);
    }
    if (status != 0) {
      fprintf(stderr, "%s: %s: %s\n", program_name, inputs[i], error);
      failed++;
    } else if (stat(out_path, &written[written_count]) == 0) {
      written_count++;
    }
    if (status == 0 && replaced > 0) {
      fprintf(stderr,
              "%s: %s: warning: %lld samples were not finite or at least 1000 in "
              "magnitude (60 dB above full scale) and were replaced; a float file "
              "scaled like integers reads this way\n",
              program_name, inputs[i], replaced);
    }
    free(out_path);
  }

  free(input_stats);
  free(written);
  free(input_ok);
  return failed;
}

int main(int argc, char **argv) {
  cli_options cli;
  int parsed = parse_options(argc, argv, &cli);
  if (parsed != 0) {
    return parsed < 0 ? EXIT_USAGE : EXIT_ALL_OK;
  }

  char **inputs = argv + optind;
  size_t input_count = (size_t)(argc - optind);
  const char *single_output = NULL;
  if (cli.output_dir) {
    if (input_count < 1) {
      usage_error("missing input files after -o DIR", NULL);
      return EXIT_USAGE;
    }
  } else {
    if (input_count != 2) {
      usage_error(input_count < 2 ? "expected IN and OUT"
                                  : "expected exactly IN and OUT (use -o DIR for "
                                    "many files)",
                  NULL);
      return EXIT_USAGE;
    }
    single_output = inputs[1];
    input_count = 1;
    if (single_output[0] == '\0') {
      usage_error("OUT needs a non-empty file name", NULL);
      return EXIT_USAGE;
    }
    const render_container *named = container_of_extension(single_output);
    if (!cli.container) {
      cli.container = named;
    } else if (named && (named->major_format != cli.container->major_format ||
                         named->subtype != cli.container->subtype)) {
      /* Players that go by the extension would misread the file. */
      fprintf(stderr,
              "%s: warning: %s ends in .%s, but -F %s writes the %s format; "
              "rename it to .%s\n",
              program_name, single_output, named->name, cli.container->name,
              cli.container->name, cli.container->name);
    }
  }

  if (cli.output_dir && prepare_output_dir(cli.output_dir) != 0) {
    return EXIT_SOME_FAILED;
  }
  drsn_model *model = load_model(cli.model_path);
  if (!model) {
    return EXIT_SOME_FAILED;
  }

  output_file_install_signal_handlers();
  size_t failed = process_all(inputs, input_count, single_output, &cli, model);
  drsn_model_free(model);
  return failed ? EXIT_SOME_FAILED : EXIT_ALL_OK;
}
