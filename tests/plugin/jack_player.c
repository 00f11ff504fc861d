/*
 * jack_player.c: test client that plays a sound file into JACK ports and
 * records other ports while it plays.
 *
 * Usage: jack-player IN.wav OUT.wav TAIL_SECONDS PLAY_PORT... -- RECORD_PORT...
 *
 * It opens two clients, "<pid>-play" and "<pid>-rec", so that JACK orders the
 * graph player -> device under test -> recorder within one cycle. Both
 * start in the same cycle when possible, and each notes the JACK frame time
 * of its first cycle. OUT.wav is written so that its sample j was recorded
 * at the frame where sample j of IN.wav was played: a client with latency D
 * shows up as a delay of exactly D samples. OUT.wav has the length of IN.wav
 * plus TAIL_SECONDS, and as many channels as RECORD_PORTs.
 *
 * Prints "player_start=F recorder_start=F" on success. Exit status 0 on
 * success, 1 on any failure.
 */
#include <jack/jack.h>
#include <sndfile.h>

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define MAX_PORTS 2

typedef struct {
  jack_client_t *play_client;
  jack_client_t *rec_client;
  jack_port_t *play_ports[MAX_PORTS];
  jack_port_t *rec_ports[MAX_PORTS];
  int play_count;
  int rec_count;

  float *input; /* interleaved, play_count channels */
  int64_t input_frames;
  int64_t play_pos;
  float *recording; /* interleaved, rec_count channels */
  int64_t record_frames;
  int64_t record_pos;

  atomic_bool go;
  atomic_bool play_started;
  atomic_bool rec_started;
  atomic_bool done;
  jack_nframes_t play_start;
  jack_nframes_t rec_start;
} player;

static int play_process(jack_nframes_t frames, void *arg)
{
  player *p = arg;
  float *out[MAX_PORTS];
  for (int c = 0; c < p->play_count; ++c) {
    out[c] = jack_port_get_buffer(p->play_ports[c], frames);
    memset(out[c], 0, frames * sizeof(float));
  }
  if (!atomic_load(&p->go)) {
    return 0;
  }
  if (!atomic_load(&p->play_started)) {
    p->play_start = jack_last_frame_time(p->play_client);
    atomic_store(&p->play_started, true);
  }
  for (jack_nframes_t i = 0; i < frames && p->play_pos < p->input_frames; ++i) {
    for (int c = 0; c < p->play_count; ++c) {
      out[c][i] = p->input[p->play_pos * p->play_count + c];
    }
    ++p->play_pos;
  }
  return 0;
}

static int rec_process(jack_nframes_t frames, void *arg)
{
  player *p = arg;
  if (!atomic_load(&p->go) || atomic_load(&p->done)) {
    return 0;
  }
  if (!atomic_load(&p->rec_started)) {
    p->rec_start = jack_last_frame_time(p->rec_client);
    atomic_store(&p->rec_started, true);
  }
  const float *in[MAX_PORTS];
  for (int c = 0; c < p->rec_count; ++c) {
    in[c] = jack_port_get_buffer(p->rec_ports[c], frames);
  }
  for (jack_nframes_t i = 0; i < frames && p->record_pos < p->record_frames;
       ++i) {
    for (int c = 0; c < p->rec_count; ++c) {
      p->recording[p->record_pos * p->rec_count + c] = in[c][i];
    }
    ++p->record_pos;
  }
  if (p->record_pos == p->record_frames) {
    atomic_store(&p->done, true);
  }
  return 0;
}

static jack_client_t *open_client(const char *suffix)
{
  char name[64];
  snprintf(name, sizeof name, "%ld-%s", (long)getpid(), suffix);
  jack_status_t status;
  jack_client_t *client = jack_client_open(name, JackNoStartServer, &status);
  if (!client) {
    fprintf(stderr, "jack-player: cannot open client %s (status 0x%x)\n",
            name, (unsigned)status);
  }
  return client;
}

static bool read_input(player *p, const char *path, int *rate)
{
  SF_INFO info;
  memset(&info, 0, sizeof info);
  SNDFILE *file = sf_open(path, SFM_READ, &info);
  if (!file) {
    fprintf(stderr, "jack-player: cannot open %s: %s\n", path,
            sf_strerror(NULL));
    return false;
  }
  if (info.channels != p->play_count) {
    fprintf(stderr, "jack-player: %s has %d channels, expected %d\n", path,
            info.channels, p->play_count);
    sf_close(file);
    return false;
  }
  p->input_frames = info.frames;
  p->input = malloc((size_t)info.frames * (size_t)info.channels * sizeof(float));
  if (!p->input ||
      sf_readf_float(file, p->input, info.frames) != info.frames) {
    fprintf(stderr, "jack-player: cannot read %s\n", path);
    sf_close(file);
    return false;
  }
  *rate = info.samplerate;
  sf_close(file);
  return true;
}

/* Writes the recording shifted so that it lines up with the played file. */
static bool write_output(const player *p, const char *path, int rate)
{
  SF_INFO info;
  memset(&info, 0, sizeof info);
  info.samplerate = rate;
  info.channels = p->rec_count;
  info.format = SF_FORMAT_WAV | SF_FORMAT_FLOAT;
  SNDFILE *file = sf_open(path, SFM_WRITE, &info);
  if (!file) {
    fprintf(stderr, "jack-player: cannot create %s: %s\n", path,
            sf_strerror(NULL));
    return false;
  }
  /* Recording index of played frame 0; the recorder never starts later
   * than the player because it is activated first. */
  const int64_t shift = (int64_t)(jack_nframes_t)(p->play_start - p->rec_start);
  float frame[MAX_PORTS];
  for (int64_t j = 0; j < p->record_frames; ++j) {
    const int64_t k = j + shift;
    for (int c = 0; c < p->rec_count; ++c) {
      frame[c] = k < p->record_frames ? p->recording[k * p->rec_count + c]
                                      : 0.0f;
    }
    sf_writef_float(file, frame, 1);
  }
  sf_close(file);
  return true;
}

/** Logs a step to stderr, so that a caller that times out can tell where
 * the player stopped. */
static void log_step(const char *name)
{
  fprintf(stderr, "jack-player: %s\n", name);
  fflush(stderr);
}

static void sleep_ms(long ms)
{
  struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
  nanosleep(&ts, NULL);
}

int main(int argc, char **argv)
{
  if (argc < 6) {
    fprintf(stderr, "Usage: %s IN.wav OUT.wav TAIL_SECONDS PLAY_PORT... -- "
                    "RECORD_PORT...\n", argv[0]);
    return 1;
  }
  static player p;
  const char *in_path = argv[1];
  const char *out_path = argv[2];
  const double tail = atof(argv[3]);
  int arg = 4;
  const char *play_targets[MAX_PORTS];
  const char *rec_sources[MAX_PORTS];
  for (; arg < argc && strcmp(argv[arg], "--"); ++arg) {
    if (p.play_count == MAX_PORTS) {
      fprintf(stderr, "jack-player: at most %d ports\n", MAX_PORTS);
      return 1;
    }
    play_targets[p.play_count++] = argv[arg];
  }
  for (++arg; arg < argc; ++arg) {
    if (p.rec_count == MAX_PORTS) {
      fprintf(stderr, "jack-player: at most %d ports\n", MAX_PORTS);
      return 1;
    }
    rec_sources[p.rec_count++] = argv[arg];
  }
  if (p.play_count == 0 || p.rec_count == 0) {
    fprintf(stderr, "jack-player: need play and record ports\n");
    return 1;
  }

  int rate = 0;
  if (!read_input(&p, in_path, &rate)) {
    return 1;
  }
  log_step("opening clients");
  p.play_client = open_client("play");
  p.rec_client = open_client("rec");
  if (!p.play_client || !p.rec_client) {
    return 1;
  }
  if ((int)jack_get_sample_rate(p.play_client) != rate) {
    fprintf(stderr, "jack-player: %s is at %d Hz but JACK runs at %u Hz\n",
            in_path, rate, (unsigned)jack_get_sample_rate(p.play_client));
    return 1;
  }
  p.record_frames = p.input_frames + (int64_t)(tail * rate);
  p.recording = calloc((size_t)p.record_frames * (size_t)p.rec_count,
                       sizeof(float));
  if (!p.recording) {
    return 1;
  }

  for (int c = 0; c < p.play_count; ++c) {
    char name[16];
    snprintf(name, sizeof name, "out_%d", c + 1);
    p.play_ports[c] = jack_port_register(p.play_client, name,
                                         JACK_DEFAULT_AUDIO_TYPE,
                                         JackPortIsOutput, 0);
  }
  for (int c = 0; c < p.rec_count; ++c) {
    char name[16];
    snprintf(name, sizeof name, "in_%d", c + 1);
    p.rec_ports[c] = jack_port_register(p.rec_client, name,
                                        JACK_DEFAULT_AUDIO_TYPE,
                                        JackPortIsInput, 0);
  }
  log_step("activating");
  jack_set_process_callback(p.play_client, play_process, &p);
  jack_set_process_callback(p.rec_client, rec_process, &p);
  if (jack_activate(p.rec_client) || jack_activate(p.play_client)) {
    fprintf(stderr, "jack-player: cannot activate\n");
    return 1;
  }
  log_step("connecting");
  for (int c = 0; c < p.play_count; ++c) {
    if (jack_connect(p.play_client, jack_port_name(p.play_ports[c]),
                     play_targets[c])) {
      fprintf(stderr, "jack-player: cannot connect to %s\n", play_targets[c]);
      return 1;
    }
  }
  for (int c = 0; c < p.rec_count; ++c) {
    if (jack_connect(p.rec_client, rec_sources[c],
                     jack_port_name(p.rec_ports[c]))) {
      fprintf(stderr, "jack-player: cannot connect from %s\n",
              rec_sources[c]);
      return 1;
    }
  }
  sleep_ms(300); /* let the graph settle */
  log_step("playing");
  atomic_store(&p.go, true);

  const long limit_ms =
      (long)(1000.0 * (double)p.record_frames / rate) + 10000;
  long waited = 0;
  while (!atomic_load(&p.done) && waited < limit_ms) {
    sleep_ms(20);
    waited += 20;
  }
  log_step("deactivating");
  jack_deactivate(p.play_client);
  jack_deactivate(p.rec_client);
  if (!atomic_load(&p.done)) {
    fprintf(stderr, "jack-player: timed out after %ld ms\n", waited);
    return 1;
  }
  if ((int32_t)(p.play_start - p.rec_start) < 0) {
    fprintf(stderr, "jack-player: recorder started after the player\n");
    return 1;
  }
  if (!write_output(&p, out_path, rate)) {
    return 1;
  }
  printf("player_start=%u recorder_start=%u\n", (unsigned)p.play_start,
         (unsigned)p.rec_start);
  fflush(stdout);
  log_step("closing clients");
  jack_client_close(p.play_client);
  jack_client_close(p.rec_client);
  free(p.input);
  free(p.recording);
  return 0;
}
