/*
 * drsn_lv2.c: LV2 front end of the drsn-denoise engine.
 *
 * Two descriptors, mono and stereo, share this implementation. The port
 * layout and all control metadata live in ttl/drsn.ttl; the indices below
 * must match it.
 *
 * Models: instantiate() creates a stage for each built-in model, so that
 * run() can follow the Model port by itself, also in hosts without the
 * worker feature. The built-in stages belong to the plugin until cleanup()
 * and are never freed earlier. A model file set through the Model file
 * parameter wins over the port until the path is set to "" again. Stages of
 * model files are loaded by the worker and freed through it.
 *
 * Threads: run(), work_response() and the port reads happen in the audio
 * thread and never allocate, lock or log. work() loads model files in the
 * host's worker thread. save() and restore() run in the host's main thread;
 * save() may overlap run(), so the saved model path lives behind a mutex that
 * only non-audio threads take.
 */
#include "processor.h"

#include <lv2/atom/atom.h>
#include <lv2/atom/forge.h>
#include <lv2/atom/util.h>
#include <lv2/buf-size/buf-size.h>
#include <lv2/core/lv2.h>
#include <lv2/log/log.h>
#include <lv2/log/logger.h>
#include <lv2/options/options.h>
#include <lv2/patch/patch.h>
#include <lv2/state/state.h>
#include <lv2/urid/urid.h>
#include <lv2/worker/worker.h>

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define DRSN_URI_MONO "urn:drsn-denoise:mono"
#define DRSN_URI_STEREO "urn:drsn-denoise:stereo"
#define DRSN_URI_MODEL "urn:drsn-denoise:model"

/* Maximum model path length in bytes, including the terminating NUL. */
#define MODEL_PATH_MAX 4096

/* Stages waiting for the worker to free them when its queue was full. */
#define FREE_QUEUE_LENGTH 4

enum {
  PORT_CONTROL = 0,
  PORT_NOTIFY = 1,
  PORT_ENABLE = 2,
  PORT_LIMIT = 3,
  PORT_MIX = 4,
  PORT_RESIDUAL = 5,
  PORT_LATENCY = 6,
  PORT_VOICE = 7,
  PORT_REDUCTION = 8,
  PORT_AUDIO = 9, /* mono: in, out; stereo: in_l, in_r, out_l, out_r */
  PORT_LINK = 13,         /* stereo only */
  PORT_MODEL_MONO = 11,   /* after the mono plugin's audio ports */
  PORT_MODEL_STEREO = 14, /* after the stereo plugin's Link port */
};

/* Built-in models in the order of the Model port's values. Sessions and
 * presets store these values, so a value never changes its model. */
static const char *const port_models[] = {"default", "low-latency"};
#define BUILTIN_COUNT (sizeof port_models / sizeof port_models[0])

/* Messages between run() and the worker. */
enum {
  MSG_LOAD = 1,    /* audio -> worker: a path follows the header */
  MSG_FREE = 2,    /* audio -> worker: free msg.stage */
  MSG_LOADED = 3,  /* worker -> audio: msg.stage is ready */
  MSG_FAILED = 4,  /* worker -> audio: the load failed, keep the model */
  MSG_CLEARED = 5, /* worker -> audio: the path is "", use the port's model */
};

typedef struct {
  uint32_t kind;
  uint32_t path_size; /* MSG_LOAD: bytes of path, NUL included */
  fe_stage *stage;
} worker_msg;

typedef struct {
  LV2_URID atom_Path;
  LV2_URID atom_URID;
  LV2_URID atom_Sequence;
  LV2_URID patch_Get;
  LV2_URID patch_Set;
  LV2_URID patch_property;
  LV2_URID patch_value;
  LV2_URID drsn_model;
} uri_table;

typedef struct {
  uint32_t channels;
  double sample_rate;
  uint32_t chunk;

  LV2_URID_Map *map; /* NULL: no atom messages, no custom model */
  LV2_Worker_Schedule *schedule;
  LV2_Log_Logger logger;
  uri_table uris;
  LV2_Atom_Forge forge;

  const LV2_Atom_Sequence *control_port;
  LV2_Atom_Sequence *notify_port;
  const float *enable_port;
  const float *limit_port;
  const float *mix_port;
  const float *residual_port;
  const float *link_port;
  const float *model_port;
  float *latency_port;
  float *voice_port;
  float *reduction_port;
  const float *audio_in[2];
  float *audio_out[2];

  fe_processor *processor;

  /* Audio-thread state of the model change. restore() changes it too,
   * because hosts never call it while run() runs. */
  fe_stage *builtin[BUILTIN_COUNT]; /* owned by the plugin, see the header */
  fe_stage *custom_stage;   /* newest model-file stage, NULL for path "" */
  uint32_t selected;        /* index into port_models from the Model port */
  bool first_block_pending; /* no audio output since activate() */
  fe_stage *free_queue[FREE_QUEUE_LENGTH];
  bool notify_model;
  union {
    worker_msg head;
    uint8_t bytes[sizeof(worker_msg) + MODEL_PATH_MAX];
  } load_msg;

  /* Model path for save(); "" means the built-in model. */
  pthread_mutex_t path_lock;
  char saved_path[MODEL_PATH_MAX];
} drsn_plugin;

static void map_uris(LV2_URID_Map *map, uri_table *uris)
{
  uris->atom_Path = map->map(map->handle, LV2_ATOM__Path);
  uris->atom_URID = map->map(map->handle, LV2_ATOM__URID);
  uris->atom_Sequence = map->map(map->handle, LV2_ATOM__Sequence);
  uris->patch_Get = map->map(map->handle, LV2_PATCH__Get);
  uris->patch_Set = map->map(map->handle, LV2_PATCH__Set);
  uris->patch_property = map->map(map->handle, LV2_PATCH__property);
  uris->patch_value = map->map(map->handle, LV2_PATCH__value);
  uris->drsn_model = map->map(map->handle, DRSN_URI_MODEL);
}

static const void *find_feature(const LV2_Feature *const *features,
                                const char *uri)
{
  for (size_t i = 0; features && features[i]; ++i) {
    if (!strcmp(features[i]->URI, uri)) {
      return features[i]->data;
    }
  }
  return NULL;
}

/* Picks the chunk size from the host's block length options, so that a
 * typical block is processed in one pass. */
static uint32_t chunk_from_options(const LV2_Options_Option *options,
                                   LV2_URID_Map *map)
{
  uint32_t chunk = FE_DEFAULT_CHUNK;
  if (!options || !map) {
    return chunk;
  }
  const LV2_URID nominal = map->map(map->handle, LV2_BUF_SIZE__nominalBlockLength);
  const LV2_URID maximum = map->map(map->handle, LV2_BUF_SIZE__maxBlockLength);
  const LV2_URID atom_Int = map->map(map->handle, LV2_ATOM__Int);
  int32_t nominal_value = 0;
  int32_t maximum_value = 0;
  for (const LV2_Options_Option *o = options; o->key; ++o) {
    if (o->type != atom_Int || o->size != sizeof(int32_t) || !o->value) {
      continue;
    }
    if (o->key == nominal) {
      nominal_value = *(const int32_t *)o->value;
    } else if (o->key == maximum) {
      maximum_value = *(const int32_t *)o->value;
    }
  }
  int32_t requested = nominal_value > 0 ? nominal_value : maximum_value;
  if (requested >= 64 && requested <= 8192) {
    chunk = (uint32_t)requested;
  }
  return chunk;
}

static LV2_Handle instantiate(const LV2_Descriptor *descriptor, double rate,
                              const char *bundle_path,
                              const LV2_Feature *const *features)
{
  (void)bundle_path;
  drsn_plugin *self = calloc(1, sizeof *self);
  if (!self) {
    return NULL;
  }
  self->channels = strcmp(descriptor->URI, DRSN_URI_STEREO) ? 1 : 2;
  self->sample_rate = rate;

  self->map = (LV2_URID_Map *)find_feature(features, LV2_URID__map);
  self->logger.log = (LV2_Log_Log *)find_feature(features, LV2_LOG__log);
  self->schedule =
      (LV2_Worker_Schedule *)find_feature(features, LV2_WORKER__schedule);
  lv2_log_logger_set_map(&self->logger, self->map);
  const LV2_Options_Option *options =
      (const LV2_Options_Option *)find_feature(features, LV2_OPTIONS__options);
  self->chunk = chunk_from_options(options, self->map);

  if (self->map) {
    map_uris(self->map, &self->uris);
    lv2_atom_forge_init(&self->forge, self->map);
  }

  drsn_error err = {0};
  drsn_status status = DRSN_OK;
  for (size_t i = 0; i < BUILTIN_COUNT && status == DRSN_OK; ++i) {
    status = fe_stage_load_builtin(port_models[i], rate, self->channels,
                                   self->chunk, &self->builtin[i], &err);
  }
  if (status == DRSN_OK) {
    status = fe_processor_create(self->builtin[0], rate, self->channels,
                                 self->chunk, &self->processor, &err);
    if (status != DRSN_OK) {
      self->builtin[0] = NULL; /* the processor freed it */
    }
  }
  if (status != DRSN_OK) {
    lv2_log_error(&self->logger, "drsn-denoise: cannot start at %.0f Hz: %s\n",
                  rate, err.message[0] ? err.message : drsn_strerror(status));
    for (size_t i = 0; i < BUILTIN_COUNT; ++i) {
      fe_stage_destroy(self->builtin[i]);
    }
    free(self);
    return NULL;
  }

  pthread_mutex_init(&self->path_lock, NULL);
  return (LV2_Handle)self;
}

static void connect_port(LV2_Handle instance, uint32_t port, void *data)
{
  drsn_plugin *self = (drsn_plugin *)instance;
  const uint32_t audio_end = PORT_AUDIO + 2 * self->channels;

  if (port >= PORT_AUDIO && port < audio_end) {
    const uint32_t k = port - PORT_AUDIO;
    if (k < self->channels) {
      self->audio_in[k] = (const float *)data;
    } else {
      self->audio_out[k - self->channels] = (float *)data;
    }
    return;
  }

  switch (port) {
  case PORT_CONTROL:
    self->control_port = (const LV2_Atom_Sequence *)data;
    break;
  case PORT_NOTIFY:
    self->notify_port = (LV2_Atom_Sequence *)data;
    break;
  case PORT_ENABLE:
    self->enable_port = (const float *)data;
    break;
  case PORT_LIMIT:
    self->limit_port = (const float *)data;
    break;
  case PORT_MIX:
    self->mix_port = (const float *)data;
    break;
  case PORT_RESIDUAL:
    self->residual_port = (const float *)data;
    break;
  case PORT_LATENCY:
    self->latency_port = (float *)data;
    break;
  case PORT_VOICE:
    self->voice_port = (float *)data;
    break;
  case PORT_REDUCTION:
    self->reduction_port = (float *)data;
    break;
  default:
    break;
  }

  /* The indices after the audio ports depend on the channel count. */
  if (self->channels == 2 && port == PORT_LINK) {
    self->link_port = (const float *)data;
  } else if (port == (self->channels == 2 ? PORT_MODEL_STEREO
                                           : PORT_MODEL_MONO)) {
    self->model_port = (const float *)data;
  }
}

static void activate(LV2_Handle instance)
{
  drsn_plugin *self = (drsn_plugin *)instance;
  fe_processor_reset(self->processor);
  self->first_block_pending = true;
}

static void deactivate(LV2_Handle instance)
{
  (void)instance;
}

static bool is_builtin_stage(const drsn_plugin *self, const fe_stage *stage)
{
  for (size_t i = 0; i < BUILTIN_COUNT; ++i) {
    if (stage == self->builtin[i]) {
      return true;
    }
  }
  return false;
}

/* Whether stage is the processor's active or offered stage. Outside run()
 * the processor has no retired stage, because run() takes it at once. */
static bool processor_uses(const drsn_plugin *self, const fe_stage *stage)
{
  return stage == fe_processor_active(self->processor) ||
         stage == fe_processor_offered(self->processor);
}

/* Hands a model-file stage to the worker for freeing; keeps it queued if
 * the worker's ring is full. A built-in stage stays with the plugin.
 * Audio thread. */
static void release_stage(drsn_plugin *self, fe_stage *stage)
{
  if (!stage || is_builtin_stage(self, stage)) {
    return;
  }
  if (self->schedule) {
    const worker_msg msg = {MSG_FREE, 0, stage};
    if (self->schedule->schedule_work(self->schedule->handle, sizeof msg,
                                      &msg) == LV2_WORKER_SUCCESS) {
      return;
    }
  }
  for (size_t i = 0; i < FREE_QUEUE_LENGTH; ++i) {
    if (!self->free_queue[i]) {
      self->free_queue[i] = stage;
      return;
    }
  }
  /* NOTE: with the queue full as well the stage leaks; that takes more than
   * FREE_QUEUE_LENGTH model changes while the worker is stalled. */
}

static void retry_pending_frees(drsn_plugin *self)
{
  for (size_t i = 0; i < FREE_QUEUE_LENGTH; ++i) {
    fe_stage *stage = self->free_queue[i];
    if (stage) {
      self->free_queue[i] = NULL;
      release_stage(self, stage);
    }
  }
}

/* Makes stage the newest model-file stage, or clears it with NULL. The
 * previous one is released here if the processor never got it, otherwise
 * when the processor displaces or retires it. */
static void set_custom_stage(drsn_plugin *self, fe_stage *stage,
                             void (*release)(drsn_plugin *, fe_stage *))
{
  fe_stage *previous = self->custom_stage;
  self->custom_stage = stage;
  if (previous && previous != stage && !processor_uses(self, previous)) {
    release(self, previous);
  }
}

/* Returns the stage that should end up active: the model file's while a
 * path is set, else the built-in model that the Model port selects. */
static fe_stage *target_stage(const drsn_plugin *self)
{
  if (self->custom_stage) {
    return self->custom_stage;
  }
  return self->builtin[self->selected];
}

/* Installs the target stage at once. Used before the first output after
 * activate(), when there is nothing to crossfade from. */
static void install_target_stage(drsn_plugin *self)
{
  fe_processor *p = self->processor;
  fe_stage *target = target_stage(self);
  if (fe_processor_active(p) == target) {
    release_stage(self, fe_processor_take_offered(p));
    return;
  }
  fe_stage *offered = fe_processor_take_offered(p);
  if (offered != target) {
    release_stage(self, offered);
  }
  release_stage(self, fe_processor_take_retired(p));
  release_stage(self, fe_processor_install(p, target));
}

/* Moves the processor towards the target stage: offers it for warm-up and
 * crossfade, or takes back an offer of another stage. While a crossfade
 * runs nothing changes, and a later call continues. Audio thread. */
static void follow_target_stage(drsn_plugin *self)
{
  if (self->first_block_pending) {
    install_target_stage(self);
    return;
  }
  fe_processor *p = self->processor;
  fe_stage *target = target_stage(self);
  const fe_stage *offered = fe_processor_offered(p);
  if (offered == target ||
      (!offered && fe_processor_active(p) == target)) {
    return;
  }
  if (fe_processor_active(p) == target) {
    /* An offer of another stage is dropped before its crossfade starts. A
     * running crossfade ends first, and then the target stage, retired by
     * it, is offered again. */
    release_stage(self, fe_processor_withdraw(p));
    return;
  }
  fe_stage *displaced = fe_processor_offer(p, target);
  if (displaced != target) {
    release_stage(self, displaced);
  }
}

/* Writes patch:Set <model> to the notify port. */
static void write_model_set(drsn_plugin *self)
{
  const uri_table *uris = &self->uris;
  LV2_Atom_Forge *forge = &self->forge;
  const char *path =
      self->custom_stage ? fe_stage_path(self->custom_stage) : "";
  LV2_Atom_Forge_Frame frame;

  if (!lv2_atom_forge_frame_time(forge, 0)) {
    return;
  }
  if (!lv2_atom_forge_object(forge, &frame, 0, uris->patch_Set)) {
    return;
  }
  lv2_atom_forge_key(forge, uris->patch_property);
  lv2_atom_forge_urid(forge, uris->drsn_model);
  lv2_atom_forge_key(forge, uris->patch_value);
  lv2_atom_forge_path(forge, path, (uint32_t)strlen(path));
  lv2_atom_forge_pop(forge, &frame);
}

/* Sends a model path from a patch:Set to the worker. */
static void request_model(drsn_plugin *self, const LV2_Atom *value)
{
  if (!self->schedule || value->type != self->uris.atom_Path ||
      value->size == 0 || value->size > MODEL_PATH_MAX) {
    self->notify_model = true; /* tell the host the model did not change */
    return;
  }
  const char *path = (const char *)LV2_ATOM_BODY_CONST(value);
  size_t length = strnlen(path, value->size);
  worker_msg *head = &self->load_msg.head;
  head->kind = MSG_LOAD;
  head->path_size = (uint32_t)length + 1;
  head->stage = NULL;
  memcpy(self->load_msg.bytes + sizeof(worker_msg), path, length);
  self->load_msg.bytes[sizeof(worker_msg) + length] = '\0';
  if (self->schedule->schedule_work(self->schedule->handle,
                                    sizeof(worker_msg) + head->path_size,
                                    self->load_msg.bytes) !=
      LV2_WORKER_SUCCESS) {
    self->notify_model = true;
  }
}

static void handle_control_events(drsn_plugin *self)
{
  const uri_table *uris = &self->uris;
  const LV2_Atom_Sequence *seq = self->control_port;
  if (!seq || seq->atom.type != uris->atom_Sequence) {
    return;
  }
  LV2_ATOM_SEQUENCE_FOREACH (seq, ev) {
    if (!lv2_atom_forge_is_object_type(&self->forge, ev->body.type)) {
      continue;
    }
    const LV2_Atom_Object *obj = (const LV2_Atom_Object *)&ev->body;
    const LV2_Atom *property = NULL;
    const LV2_Atom *value = NULL;
    lv2_atom_object_get(obj, uris->patch_property, &property,
                        uris->patch_value, &value, 0);
    const bool about_model =
        property && property->type == uris->atom_URID &&
        ((const LV2_Atom_URID *)property)->body == uris->drsn_model;

    if (obj->body.otype == uris->patch_Set && about_model && value) {
      request_model(self, value);
    } else if (obj->body.otype == uris->patch_Get &&
               (!property || about_model)) {
      self->notify_model = true;
    }
  }
}

static float clamp_control(const float *port, float low, float high,
                           float fallback)
{
  if (!port) {
    return fallback;
  }
  const float value = *port;
  if (!(value >= low)) { /* also catches NaN */
    return low;
  }
  return value > high ? high : value;
}

/* Index into port_models of the Model port's value, rounded to the nearest
 * one; 0 while the port is not connected. */
static uint32_t selected_model(const drsn_plugin *self)
{
  const float value =
      clamp_control(self->model_port, 0.0f, (float)(BUILTIN_COUNT - 1), 0.0f);
  return (uint32_t)(value + 0.5f);
}

static void run(LV2_Handle instance, uint32_t sample_count)
{
  drsn_plugin *self = (drsn_plugin *)instance;

  const fe_controls controls = {
      .enabled = clamp_control(self->enable_port, 0.0f, 1.0f, 1.0f) > 0.5f
                     ? 1.0f
                     : 0.0f,
      .limit_db = clamp_control(self->limit_port, 0.0f, 60.0f, 30.0f),
      .mix = clamp_control(self->mix_port, 0.0f, 100.0f, 100.0f) / 100.0f,
      .residual =
          clamp_control(self->residual_port, 0.0f, 1.0f, 0.0f) > 0.5f ? 1.0f
                                                                       : 0.0f,
      .linked = clamp_control(self->link_port, 0.0f, 1.0f, 1.0f) > 0.5f,
  };

  const bool messaging = self->map != NULL;
  LV2_Atom_Forge_Frame notify_frame;
  bool notify_open = false;
  if (messaging && self->notify_port) {
    const uint32_t capacity = self->notify_port->atom.size;
    lv2_atom_forge_set_buffer(&self->forge, (uint8_t *)self->notify_port,
                              capacity);
    notify_open =
        capacity >= sizeof(LV2_Atom_Sequence) &&
        lv2_atom_forge_sequence_head(&self->forge, &notify_frame, 0) != 0;
  }

  if (messaging) {
    retry_pending_frees(self);
    handle_control_events(self);
  }
  self->selected = selected_model(self);
  follow_target_stage(self);

  fe_processor_process(self->processor, &controls, self->audio_in,
                       self->audio_out, sample_count);
  release_stage(self, fe_processor_take_retired(self->processor));
  if (sample_count > 0) {
    self->first_block_pending = false;
  }

  if (notify_open) {
    if (self->notify_model) {
      write_model_set(self);
      self->notify_model = false;
    }
    lv2_atom_forge_pop(&self->forge, &notify_frame);
  }

  if (self->latency_port) {
    *self->latency_port = (float)fe_processor_latency(self->processor);
  }
  if (self->voice_port) {
    *self->voice_port = fe_processor_voice_probability(self->processor);
  }
  if (self->reduction_port) {
    *self->reduction_port = fe_processor_reduction_db(self->processor);
  }
}

static void cleanup(LV2_Handle instance)
{
  drsn_plugin *self = (drsn_plugin *)instance;
  /* The processor frees the stages it uses, so only the others are freed
   * here, each once. */
  for (size_t i = 0; i < BUILTIN_COUNT; ++i) {
    if (!processor_uses(self, self->builtin[i])) {
      fe_stage_destroy(self->builtin[i]);
    }
  }
  if (self->custom_stage && !processor_uses(self, self->custom_stage)) {
    fe_stage_destroy(self->custom_stage);
  }
  fe_processor_destroy(self->processor);
  for (size_t i = 0; i < FREE_QUEUE_LENGTH; ++i) {
    fe_stage_destroy(self->free_queue[i]);
  }
  pthread_mutex_destroy(&self->path_lock);
  free(self);
}

static void set_saved_path(drsn_plugin *self, const char *path)
{
  pthread_mutex_lock(&self->path_lock);
  strncpy(self->saved_path, path, MODEL_PATH_MAX - 1);
  self->saved_path[MODEL_PATH_MAX - 1] = '\0';
  pthread_mutex_unlock(&self->path_lock);
}

/* Loads a model file in a non-audio thread. Returns NULL and logs on
 * failure. */
static fe_stage *load_stage(drsn_plugin *self, const char *path)
{
  fe_stage *stage = NULL;
  drsn_error err = {0};
  drsn_status status = fe_stage_load(path, self->sample_rate, self->channels,
                                     self->chunk, &stage, &err);
  if (status != DRSN_OK) {
    /* The message names the file: "model '<path>': <reason>". */
    if (err.message[0]) {
      lv2_log_error(&self->logger,
                    "drsn-denoise: %s; keeping the current model\n",
                    err.message);
    } else {
      lv2_log_error(&self->logger,
                    "drsn-denoise: model '%s': %s; keeping the current "
                    "model\n",
                    path, drsn_strerror(status));
    }
    return NULL;
  }
  lv2_log_note(&self->logger, "drsn-denoise: loaded model \"%s\"\n", path);
  return stage;
}

static LV2_Worker_Status work(LV2_Handle instance,
                              LV2_Worker_Respond_Function respond,
                              LV2_Worker_Respond_Handle handle, uint32_t size,
                              const void *data)
{
  drsn_plugin *self = (drsn_plugin *)instance;
  if (size < sizeof(worker_msg)) {
    return LV2_WORKER_ERR_UNKNOWN;
  }
  worker_msg msg;
  memcpy(&msg, data, sizeof msg);

  if (msg.kind == MSG_FREE) {
    fe_stage_destroy(msg.stage);
    return LV2_WORKER_SUCCESS;
  }
  if (msg.kind != MSG_LOAD || msg.path_size == 0 ||
      msg.path_size > size - sizeof(worker_msg)) {
    return LV2_WORKER_ERR_UNKNOWN;
  }

  char path[MODEL_PATH_MAX];
  const char *bytes = (const char *)data + sizeof(worker_msg);
  size_t length = strnlen(bytes, msg.path_size);
  if (length >= sizeof path) {
    length = sizeof path - 1;
  }
  memcpy(path, bytes, length);
  path[length] = '\0';

  worker_msg reply = {MSG_FAILED, 0, NULL};
  fe_stage *stage = NULL;
  if (path[0] == '\0') {
    /* The built-in stages exist already, so there is nothing to load. */
    set_saved_path(self, path);
    reply.kind = MSG_CLEARED;
    lv2_log_note(&self->logger, "drsn-denoise: model file cleared; the Model "
                                "port selects the built-in model\n");
  } else {
    stage = load_stage(self, path);
    if (stage) {
      set_saved_path(self, path);
      reply.kind = MSG_LOADED;
      reply.stage = stage;
    }
  }
  if (respond(handle, sizeof reply, &reply) != LV2_WORKER_SUCCESS) {
    fe_stage_destroy(stage);
    return LV2_WORKER_ERR_NO_SPACE;
  }
  return LV2_WORKER_SUCCESS;
}

static LV2_Worker_Status work_response(LV2_Handle instance, uint32_t size,
                                       const void *body)
{
  drsn_plugin *self = (drsn_plugin *)instance;
  if (size < sizeof(worker_msg)) {
    return LV2_WORKER_ERR_UNKNOWN;
  }
  worker_msg msg;
  memcpy(&msg, body, sizeof msg);

  /* The next run() moves the processor to the new model. */
  if (msg.kind == MSG_LOADED && msg.stage) {
    set_custom_stage(self, msg.stage, release_stage);
  } else if (msg.kind == MSG_CLEARED) {
    set_custom_stage(self, NULL, release_stage);
  }
  self->notify_model = true;
  return LV2_WORKER_SUCCESS;
}

static LV2_State_Status save(LV2_Handle instance, LV2_State_Store_Function store,
                             LV2_State_Handle handle, uint32_t flags,
                             const LV2_Feature *const *features)
{
  (void)flags;
  drsn_plugin *self = (drsn_plugin *)instance;
  if (!self->map) {
    return LV2_STATE_ERR_NO_FEATURE;
  }

  char path[MODEL_PATH_MAX];
  pthread_mutex_lock(&self->path_lock);
  memcpy(path, self->saved_path, sizeof path);
  pthread_mutex_unlock(&self->path_lock);
  if (path[0] == '\0') {
    return LV2_STATE_SUCCESS; /* built-in model: nothing to store */
  }

  const LV2_State_Map_Path *map_path =
      (const LV2_State_Map_Path *)find_feature(features, LV2_STATE__mapPath);
  const LV2_State_Free_Path *free_path =
      (const LV2_State_Free_Path *)find_feature(features, LV2_STATE__freePath);

  char *abstract = NULL;
  uint32_t value_flags = LV2_STATE_IS_POD;
  if (map_path) {
    abstract = map_path->abstract_path(map_path->handle, path);
    value_flags |= LV2_STATE_IS_PORTABLE;
  }
  const char *value = abstract ? abstract : path;
  LV2_State_Status status =
      store(handle, self->uris.drsn_model, value, strlen(value) + 1,
            self->uris.atom_Path, value_flags);

  if (abstract) {
    if (free_path) {
      free_path->free_path(free_path->handle, abstract);
    } else {
      free(abstract);
    }
  }
  return status;
}

/* Frees a model-file stage at once; restore() may, because it never
 * overlaps run(). */
static void destroy_custom_stage(drsn_plugin *self, fe_stage *stage)
{
  (void)self;
  fe_stage_destroy(stage);
}

static LV2_State_Status restore(LV2_Handle instance,
                                LV2_State_Retrieve_Function retrieve,
                                LV2_State_Handle handle, uint32_t flags,
                                const LV2_Feature *const *features)
{
  (void)flags;
  drsn_plugin *self = (drsn_plugin *)instance;
  if (!self->map) {
    return LV2_STATE_ERR_NO_FEATURE;
  }

  const LV2_State_Map_Path *map_path =
      (const LV2_State_Map_Path *)find_feature(features, LV2_STATE__mapPath);
  const LV2_State_Free_Path *free_path =
      (const LV2_State_Free_Path *)find_feature(features, LV2_STATE__freePath);
  size_t size = 0;
  uint32_t type = 0;
  uint32_t value_flags = 0;
  const void *value =
      retrieve(handle, self->uris.drsn_model, &size, &type, &value_flags);

  /* A state without the key, such as a factory preset, leaves the model
   * alone. Only an explicit empty path returns to the built-in model that
   * the Model port selects. */
  if (!value) {
    self->notify_model = true;
    return LV2_STATE_SUCCESS;
  }
  char path[MODEL_PATH_MAX] = "";
  if (type != self->uris.atom_Path) {
    lv2_log_error(&self->logger,
                  "drsn-denoise: saved model value is not an atom:Path\n");
    return LV2_STATE_ERR_BAD_TYPE;
  }
  if (size > 0) {
    const char *stored = (const char *)value;
    char *absolute = NULL;
    if (map_path) {
      absolute = map_path->absolute_path(map_path->handle, stored);
    }
    const char *resolved = absolute ? absolute : stored;
    const bool too_long = strnlen(resolved, MODEL_PATH_MAX) >= MODEL_PATH_MAX;
    if (!too_long) {
      strcpy(path, resolved);
    }
    if (absolute) {
      if (free_path) {
        free_path->free_path(free_path->handle, absolute);
      } else {
        free(absolute);
      }
    }
    if (too_long) {
      lv2_log_error(&self->logger,
                    "drsn-denoise: saved model path is longer than %d bytes; "
                    "keeping the current model\n",
                    MODEL_PATH_MAX - 1);
      return LV2_STATE_ERR_UNKNOWN;
    }
  }

  pthread_mutex_lock(&self->path_lock);
  const bool unchanged = !strcmp(path, self->saved_path);
  pthread_mutex_unlock(&self->path_lock);
  if (unchanged) {
    self->notify_model = true;
    return LV2_STATE_SUCCESS;
  }

  /* The plugin does not declare state:threadSafeRestore, so hosts never call
   * restore() concurrently with run() and the model-file stage can be
   * changed here. The next run() warms it up and crossfades to it, or
   * installs it at once before the first output after activate(). The
   * worker schedule a host may pass to restore() is not used: jalv 1.6.6
   * passes one whose work interface is unset and crashes on it. */
  fe_stage *stage = NULL;
  if (path[0] != '\0') {
    stage = load_stage(self, path);
    if (!stage) {
      return LV2_STATE_ERR_UNKNOWN;
    }
  }
  set_custom_stage(self, stage, destroy_custom_stage);
  set_saved_path(self, path);
  self->notify_model = true;
  return LV2_STATE_SUCCESS;
}

static const void *extension_data(const char *uri)
{
  static const LV2_State_Interface state = {save, restore};
  static const LV2_Worker_Interface worker = {work, work_response, NULL};
  if (!strcmp(uri, LV2_STATE__interface)) {
    return &state;
  }
  if (!strcmp(uri, LV2_WORKER__interface)) {
    return &worker;
  }
  return NULL;
}

static const LV2_Descriptor descriptors[] = {
    {DRSN_URI_MONO, instantiate, connect_port, activate, run, deactivate,
     cleanup, extension_data},
    {DRSN_URI_STEREO, instantiate, connect_port, activate, run, deactivate,
     cleanup, extension_data},
};

LV2_SYMBOL_EXPORT const LV2_Descriptor *lv2_descriptor(uint32_t index)
{
  return index < sizeof descriptors / sizeof descriptors[0] ? &descriptors[index]
                                                            : NULL;
}
