/*
 * input_file.c: sound files opened for reading, with checks for truncation.
 */
#include "input_file.h"

#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The plural ending for count things. */
#define PLURAL(count) ((count) == 1 ? "" : "s")

int input_file_open(input_file *input, const char *path, char *error, size_t error_size) {
  /* libsndfile reads standard input for the name "-". */
  const char *open_path = strcmp(path, "-") == 0 ? "./-" : path;
  memset(input, 0, sizeof *input);
  input->file_size = -1;
  input->layout.kind = AUDIO_HEADER_UNKNOWN;

  /* O_NONBLOCK keeps open() from waiting for a writer when the input is a
   * FIFO, which is then left to libsndfile alone. */
  int fd = open(open_path, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
  if (fd >= 0) {
    struct stat fd_stat;
    if (fstat(fd, &fd_stat) == 0 && S_ISREG(fd_stat.st_mode)) {
      input->file_size = (long long)fd_stat.st_size;
      input->layout = audio_header_read(fd, input->file_size);
    }
    close(fd);
  }

  /* By name rather than by descriptor, because libsndfile finds the
   * resource fork of an SD2 file through the name. */
  input->file = sf_open(open_path, SFM_READ, &input->info);
  if (!input->file) {
    /* libsndfile calls an empty file an unrecognised format. */
    if (input->file_size == 0) {
      snprintf(error, error_size, "cannot open: the file is empty");
    } else {
      snprintf(error, error_size, "cannot open: %s", sf_strerror(NULL));
    }
    return -1;
  }

  const audio_header_layout *layout = &input->layout;
  if (layout->kind == AUDIO_HEADER_SIZED && layout->data_end > input->file_size) {
    long long declared = layout->data_end - layout->data_start;
    long long present = input->file_size - layout->data_start;
    snprintf(error, error_size,
             "the file is truncated: its header declares %lld byte%s of audio "
             "data but the file contains only %lld",
             declared, PLURAL(declared), present > 0 ? present : 0);
    sf_close(input->file);
    input->file = NULL;
    return -1;
  }
  return 0;
}

int input_file_check_complete(const input_file *input, sf_count_t frames_read,
                              char *error, size_t error_size) {
  const SF_INFO *info = &input->info;
  int major = info->format & SF_FORMAT_TYPEMASK;
  /* libsndfile estimates the length of an MP3 without a Xing or VBRI header
   * from its bit rate, and the estimate can exceed what it decodes. */
  int known_length = major != SF_FORMAT_MPEG && info->frames != SF_COUNT_MAX;
  if (sf_error(input->file) != SF_ERR_NO_ERROR) {
    if (known_length && frames_read < info->frames) {
      snprintf(error, error_size,
               "the file is truncated or damaged: reading failed after %lld of "
               "the %lld frames its header declares: %s",
               (long long)frames_read, (long long)info->frames, sf_strerror(input->file));
    } else {
      snprintf(error, error_size, "read error after %lld frame%s: %s",
               (long long)frames_read, PLURAL(frames_read), sf_strerror(input->file));
    }
    return -1;
  }
  if (known_length && frames_read < info->frames) {
    snprintf(error, error_size,
             "the file is truncated: it ends after %lld of the %lld frames "
             "its header declares",
             (long long)frames_read, (long long)info->frames);
    return -1;
  }
  /* libsndfile 1.2.0 takes the length of a seekable Ogg file from its last
   * complete page and reports SF_COUNT_MAX when the file ends inside one. */
  if (major == SF_FORMAT_OGG && info->seekable && info->frames == SF_COUNT_MAX) {
    snprintf(error, error_size,
             "the file is truncated: it ends inside an Ogg page after %lld "
             "frame%s",
             (long long)frames_read, PLURAL(frames_read));
    return -1;
  }
  /* libsndfile 1.2.0 reads a streamed RF64 file whose ds64 sizes are zero
   * (as ffmpeg writes to a pipe) as empty. */
  const audio_header_layout *layout = &input->layout;
  if (layout->kind == AUDIO_HEADER_STREAMED && frames_read == 0 &&
      input->file_size > layout->data_start) {
    long long present = input->file_size - layout->data_start;
    snprintf(error, error_size,
             "libsndfile reads no audio frames although %lld byte%s of audio "
             "data follow the header, whose sizes are the placeholders of a "
             "streamed file; convert it with another program first",
             present, PLURAL(present));
    return -1;
  }
  if (layout->kind == AUDIO_HEADER_UNFINISHED && frames_read == 0) {
    long long present = input->file_size - layout->data_start;
    snprintf(error, error_size,
             "the header declares no audio data, but the file goes on for "
             "%lld more byte%s. "
             "The program that wrote the file probably stopped before it "
             "filled in the sizes. Convert it first with ffmpeg -i FILE "
             "OUT.wav, which reads the data to the end of the file",
             present, PLURAL(present));
    return -1;
  }
  return 0;
}
