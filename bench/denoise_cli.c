/*
 * denoise_cli.c: the command line and file handling of the comparison
 * programs; see denoise_cli.h.
 */
#include "denoise_cli.h"

#include <getopt.h>
#include <string.h>
#include <sys/stat.h>

#include "output_file.h"

static int denoise_file(const denoise_cli *cli, const char *in_path, const char *out_path,
                        int force) {
  const char *program_name = cli->program_name;
  struct stat in_stat;
  struct stat out_stat;
  if (stat(in_path, &in_stat) != 0) {
    perror(in_path);
    return -1;
  }
  if (stat(out_path, &out_stat) == 0) {
    if (output_file_same(&in_stat, &out_stat)) {
      fprintf(stderr, "%s: %s: output %s is the input file; an input is never overwritten\n",
              program_name, in_path, out_path);
      return -1;
    }
    if (!force) {
      fprintf(stderr, "%s: output %s already exists; use --force to overwrite it\n",
              program_name, out_path);
      return -1;
    }
  }

  SF_INFO info;
  memset(&info, 0, sizeof info);
  SNDFILE *in = sf_open(in_path, SFM_READ, &info);
  if (!in) {
    fprintf(stderr, "%s: %s: cannot open: %s\n", program_name, in_path, sf_strerror(NULL));
    return -1;
  }
  if (info.channels != 1) {
    fprintf(stderr, "%s: %s: %d channels; only mono files are supported\n", program_name,
            in_path, info.channels);
    sf_close(in);
    return -1;
  }
  if (cli->required_rate_hz != 0 && info.samplerate != cli->required_rate_hz) {
    fprintf(stderr,
            "%s: %s: sample rate %d Hz; only %d Hz files are supported, so resample the "
            "input first\n",
            program_name, in_path, info.samplerate, cli->required_rate_hz);
    sf_close(in);
    return -1;
  }

  output_file file;
  char error[512];
  if (output_file_open(&file, out_path, error, sizeof error) != 0) {
    fprintf(stderr, "%s: cannot write %s: %s\n", program_name, out_path, error);
    sf_close(in);
    return -1;
  }
  SF_INFO out_info = info;
  SNDFILE *out = sf_open_fd(file.fd, SFM_WRITE, &out_info, SF_FALSE);
  int status = -1;
  if (!out) {
    fprintf(stderr, "%s: cannot write %s: %s\n", program_name, out_path, sf_strerror(NULL));
  } else {
    sf_command(out, SFC_SET_CLIPPING, NULL, SF_TRUE);
    status = cli->run(in, out, info.samplerate, in_path, out_path);
    if (sf_close(out) != SF_ERR_NO_ERROR && status == 0) {
      fprintf(stderr, "%s: cannot finish %s\n", program_name, out_path);
      status = -1;
    }
  }
  if (status == 0 && output_file_commit(&file, error, sizeof error) != 0) {
    fprintf(stderr, "%s: cannot write %s: %s\n", program_name, out_path, error);
    status = -1;
  } else if (status != 0) {
    output_file_discard(&file);
  }
  sf_close(in);
  return status;
}

int denoise_cli_main(const denoise_cli *cli, int argc, char **argv) {
  const char *program_name = cli->program_name;
  static const struct option long_options[] = {
      {"force", no_argument, NULL, 'f'},
      {"quiet", no_argument, NULL, 'q'},
      {"help", no_argument, NULL, 'h'},
      {NULL, 0, NULL, 0},
  };
  int force = 0;
  int option;
  while ((option = getopt_long(argc, argv, "fqh", long_options, NULL)) != -1) {
    switch (option) {
    case 'f':
      force = 1;
      break;
    case 'q':
      break;
    case 'h':
      cli->print_help(stdout);
      return 0;
    default:
      fprintf(stderr, "Try '%s --help' for more information.\n", program_name);
      return 2;
    }
  }
  if (argc - optind != 2) {
    fprintf(stderr, "%s: expected IN and OUT\nTry '%s --help' for more information.\n",
            program_name, program_name);
    return 2;
  }
  output_file_install_signal_handlers();
  return denoise_file(cli, argv[optind], argv[optind + 1], force) == 0 ? 0 : 1;
}
