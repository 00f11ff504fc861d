/*
 * audio_header.c: the declared audio data size of chunked sound files.
 */
#include "audio_header.h"

#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/types.h>
#include <unistd.h>

/* Chunks examined before giving up; real files have a few dozen at most. */
enum { MAX_CHUNKS = 4096 };

/* Sony Wave64 identifies chunks by GUID rather than by four characters. */
static const unsigned char w64_riff_guid[16] = {'r',  'i',  'f',  'f', 0x2E, 0x91,
                                                0xCF, 0x11, 0xA5, 0xD6, 0x28, 0xDB,
                                                0x04, 0xC1, 0x00, 0x00};
static const unsigned char w64_data_guid[16] = {'d',  'a',  't',  'a', 0xF3, 0xAC,
                                                0xD3, 0x11, 0x8C, 0xD1, 0x00, 0xC0,
                                                0x4F, 0x8E, 0xDB, 0x8A};

static int read_at(int fd, long long offset, void *buffer, size_t size) {
  unsigned char *bytes = buffer;
  size_t done = 0;
  while (done < size) {
    ssize_t got = pread(fd, bytes + done, size - done, (off_t)(offset + (long long)done));
    if (got < 0 && errno == EINTR) {
      continue;
    }
    if (got <= 0) {
      return -1;
    }
    done += (size_t)got;
  }
  return 0;
}

static uint32_t read_u32(const unsigned char *p, int big_endian) {
  if (big_endian) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
  }
  return (uint32_t)p[3] << 24 | (uint32_t)p[2] << 16 | (uint32_t)p[1] << 8 | p[0];
}

static uint64_t read_u64_le(const unsigned char *p) {
  return (uint64_t)read_u32(p + 4, 0) << 32 | read_u32(p, 0);
}

/*
 * Writers that cannot seek back to the header leave a size near a 32-bit
 * limit in it: 0xFFFFFFFF (ffmpeg, and the AU convention for "unknown"),
 * 0x7FFFF000 (sox WAV) or 0x7F000000 plus 8 (sox AIFF). A cut-off file whose
 * real size falls into these ranges is taken for a streamed one.
 */
static int is_placeholder_u32(uint32_t size) {
  return (size >= 0x7F000000u && size <= 0x7FFFFFFFu) || size >= 0xFFFF0000u;
}

/* 64-bit sizes of W64 and RF64: ffmpeg writes 0x7FFFFFFFFFFFFFFF. */
static int is_placeholder_u64(uint64_t size) {
  return size >= (UINT64_C(1) << 62);
}

static audio_header_layout sized_layout(long long data_start, uint64_t data_size) {
  audio_header_layout layout = {AUDIO_HEADER_SIZED, data_start, 0};
  layout.data_end = data_start + (long long)data_size;
  return layout;
}

static audio_header_layout streamed_layout(long long data_start) {
  audio_header_layout layout = {AUDIO_HEADER_STREAMED, data_start, 0};
  return layout;
}

static const audio_header_layout unknown_layout = {AUDIO_HEADER_UNKNOWN, 0, 0};

/* Returns whether a chunk header can start at offset: an identifier of 4
 * printable ASCII characters, as "fmt " and "LIST" are, and a size that fits
 * in the rest of the file. Audio samples sometimes pass the first test, the
 * second rarely. */
static int is_chunk_at(int fd, long long offset, long long file_size, int big_endian) {
  unsigned char header[8];
  if (offset + 8 > file_size || read_at(fd, offset, header, sizeof header) != 0) {
    return 0;
  }
  for (size_t i = 0; i < 4; i++) {
    if (header[i] < 0x20 || header[i] > 0x7E) {
      return 0;
    }
  }
  return read_u32(header + 4, big_endian) <= (uint64_t)(file_size - offset - 8);
}

/*
 * Follows the chunks of a RIFF, RIFX, RF64 or BW64 file from byte 12 to its
 * "data" chunk. An RF64 data chunk of size 0xFFFFFFFF takes its real size
 * from the "ds64" chunk, where 0 means a streamed file.
 */
static audio_header_layout read_riff(int fd, long long file_size, int big_endian,
                                     int is_rf64) {
  uint64_t ds64_data_size = 0;
  int have_ds64 = 0;
  long long position = 12;
  for (int i = 0; i < MAX_CHUNKS && position + 8 <= file_size; i++) {
    unsigned char chunk[8];
    if (read_at(fd, position, chunk, sizeof chunk) != 0) {
      break;
    }
    uint32_t size = read_u32(chunk + 4, big_endian);
    long long body = position + 8;

    if (is_rf64 && memcmp(chunk, "ds64", 4) == 0 && size >= 16) {
      unsigned char sizes[16];
      if (read_at(fd, body, sizes, sizeof sizes) != 0) {
        break;
      }
      ds64_data_size = read_u64_le(sizes + 8);
      have_ds64 = 1;
    } else if (memcmp(chunk, "data", 4) == 0) {
      if (is_rf64 && size == 0xFFFFFFFFu) {
        if (!have_ds64) {
          break;
        }
        if (ds64_data_size == 0 || is_placeholder_u64(ds64_data_size)) {
          return streamed_layout(body);
        }
        return sized_layout(body, ds64_data_size);
      }
      if (size == 0 && body < file_size && !is_chunk_at(fd, body, file_size, big_endian)) {
        audio_header_layout layout = {AUDIO_HEADER_UNFINISHED, body, body};
        return layout;
      }
      return is_placeholder_u32(size) ? streamed_layout(body) : sized_layout(body, size);
    }
    /* Chunks are padded to an even length. */
    position = body + (long long)size + (size & 1u);
  }
  return unknown_layout;
}

/* Follows the 8-byte aligned chunks of a Sony Wave64 file to its data. */
static audio_header_layout read_w64(int fd, long long file_size) {
  long long position = 40;
  for (int i = 0; i < MAX_CHUNKS && position + 24 <= file_size; i++) {
    unsigned char chunk[24];
    if (read_at(fd, position, chunk, sizeof chunk) != 0) {
      break;
    }
    /* The size counts the 24-byte chunk header. */
    uint64_t size = read_u64_le(chunk + 16);
    if (memcmp(chunk, w64_data_guid, 16) == 0) {
      long long body = position + 24;
      if (is_placeholder_u64(size) || size < 24) {
        return streamed_layout(body);
      }
      return sized_layout(body, size - 24);
    }
    if (size < 24 || size > (uint64_t)file_size) {
      break;
    }
    position += (long long)((size + 7) & ~UINT64_C(7));
  }
  return unknown_layout;
}

/*
 * Follows the chunks of an IFF file (AIFF, AIFC or 8SVX) from byte 12 to its
 * audio chunk: "SSND", whose body starts with an 8-byte offset and block
 * size, or "BODY" for 8SVX.
 */
static audio_header_layout read_iff(int fd, long long file_size) {
  long long position = 12;
  for (int i = 0; i < MAX_CHUNKS && position + 8 <= file_size; i++) {
    unsigned char chunk[16];
    if (read_at(fd, position, chunk, 8) != 0) {
      break;
    }
    uint32_t size = read_u32(chunk + 4, 1);
    long long body = position + 8;
    if (memcmp(chunk, "BODY", 4) == 0) {
      return is_placeholder_u32(size) ? streamed_layout(body)
                                      : sized_layout(body, size);
    }
    if (memcmp(chunk, "SSND", 4) == 0) {
      if (read_at(fd, body, chunk + 8, 8) != 0) {
        break;
      }
      long long data_start = body + 8 + read_u32(chunk + 8, 1);
      if (is_placeholder_u32(size)) {
        return streamed_layout(data_start);
      }
      long long data_end = body + (long long)size;
      return sized_layout(data_start,
                          data_end > data_start ? (uint64_t)(data_end - data_start) : 0);
    }
    position = body + (long long)size + (size & 1u);
  }
  return unknown_layout;
}

/* Reads the 24-byte AU header: magic, data offset, data size, ... */
static audio_header_layout read_au(const unsigned char *header, int big_endian) {
  long long data_start = read_u32(header + 4, big_endian);
  uint32_t size = read_u32(header + 8, big_endian);
  return is_placeholder_u32(size) ? streamed_layout(data_start)
                                  : sized_layout(data_start, size);
}

audio_header_layout audio_header_read(int fd, long long file_size) {
  /* Bytes that identify the format: 12 for RIFF and IFF, 24 for AU and 40
   * for W64. Shorter files leave the rest zero, which matches nothing. */
  unsigned char header[40];
  memset(header, 0, sizeof header);
  size_t header_size = file_size < (long long)sizeof header ? (size_t)file_size
                                                            : sizeof header;
  if (header_size < 12 || read_at(fd, 0, header, header_size) != 0) {
    return unknown_layout;
  }
  if (memcmp(header + 8, "WAVE", 4) == 0) {
    if (memcmp(header, "RIFF", 4) == 0) {
      return read_riff(fd, file_size, 0, 0);
    }
    if (memcmp(header, "RIFX", 4) == 0) {
      return read_riff(fd, file_size, 1, 0);
    }
    if (memcmp(header, "RF64", 4) == 0 || memcmp(header, "BW64", 4) == 0) {
      return read_riff(fd, file_size, 0, 1);
    }
  }
  if (header_size >= 40 && memcmp(header, w64_riff_guid, 16) == 0) {
    return read_w64(fd, file_size);
  }
  if (memcmp(header, "FORM", 4) == 0 &&
      (memcmp(header + 8, "AIFF", 4) == 0 || memcmp(header + 8, "AIFC", 4) == 0 ||
       memcmp(header + 8, "8SVX", 4) == 0 || memcmp(header + 8, "16SV", 4) == 0)) {
    return read_iff(fd, file_size);
  }
  if (header_size >= 24 && memcmp(header, ".snd", 4) == 0) {
    return read_au(header, 1);
  }
  if (header_size >= 24 && memcmp(header, "dns.", 4) == 0) {
    return read_au(header, 0);
  }
  return unknown_layout;
}
