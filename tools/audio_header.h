/*
 * audio_header.h: where a sound file's header says its audio data ends.
 *
 * libsndfile 1.2.0 shortens the audio data of a cut-off WAV, RF64, W64,
 * AIFF, AU or 8SVX file to the bytes present and reads it without an error,
 * so only the size fields of the header show that data is missing.
 *
 * NOTE: libsndfile shortens cut-off NIST, IRCAM, VOC, PAF, MAT, PVF, AVR,
 * XI and MPC2K files the same way, and they are not recognised here.
 */
#ifndef DRSN_TOOLS_AUDIO_HEADER_H
#define DRSN_TOOLS_AUDIO_HEADER_H

/** Kind of audio data length that a file header declares. */
typedef enum {
  /** Another format, or a header whose chunks could not be followed. */
  AUDIO_HEADER_UNKNOWN,
  /** The size field is a placeholder left by a writer that could not seek
   * back (a pipe), so the data runs to the end of the file. */
  AUDIO_HEADER_STREAMED,
  /** The header declares where the data ends. */
  AUDIO_HEADER_SIZED,
  /** A WAV data chunk declared empty and followed by bytes that do not
   * start another chunk, as a writer leaves it when it stops before it
   * fills in the sizes. */
  AUDIO_HEADER_UNFINISHED,
} audio_header_kind;

/** Position of the audio data in a file, in bytes from its start. */
typedef struct {
  audio_header_kind kind;
  /** First byte of the audio data (not set for AUDIO_HEADER_UNKNOWN). */
  long long data_start;
  /** Byte after the declared end of the data (AUDIO_HEADER_SIZED only). */
  long long data_end;
} audio_header_layout;

/**
 * Reads the header of the regular file of file_size bytes open on fd with
 * pread, which leaves the file offset alone. Recognises WAV (RIFF and
 * RIFX), RF64, Sony Wave64, AIFF, AIFC, 8SVX and Sun/NeXT AU.
 */
audio_header_layout audio_header_read(int fd, long long file_size);

#endif /* DRSN_TOOLS_AUDIO_HEADER_H */
