/*
 * denoise_cli.h: the command line and file handling that speex-denoise and
 * webrtc-denoise share.
 *
 *   PROGRAM [-f] [-q] IN OUT
 *
 * IN must be a mono sound file that libsndfile reads. OUT gets IN's format
 * and is written through tools/output_file.h, so it appears only when
 * complete. IN is never overwritten, and an existing OUT only with --force.
 * -q is accepted for compatibility with drsn-denoise and has no effect.
 */
#ifndef DRSN_BENCH_DENOISE_CLI_H
#define DRSN_BENCH_DENOISE_CLI_H

#include <stdio.h>

#include <sndfile.h>

#ifdef __cplusplus
extern "C" {
#endif

/** A file-to-file denoising program. */
typedef struct {
  /** Name used in messages. */
  const char *program_name;
  /** Prints the --help text to stream. */
  void (*print_help)(FILE *stream);
  /** The only sample rate accepted, in Hz, or 0 to accept every rate. */
  int required_rate_hz;
  /**
   * Denoises the mono stream in into out. Returns 0, or -1 after printing a
   * message that names in_path or out_path.
   */
  int (*run)(SNDFILE *in, SNDFILE *out, int rate_hz, const char *in_path,
             const char *out_path);
} denoise_cli;

/**
 * Parses the command line, denoises IN into OUT with cli->run and returns
 * the exit status: 0 on success, 1 when the file failed, 2 on usage errors.
 */
int denoise_cli_main(const denoise_cli *cli, int argc, char **argv);

#ifdef __cplusplus
}
#endif

#endif /* DRSN_BENCH_DENOISE_CLI_H */
