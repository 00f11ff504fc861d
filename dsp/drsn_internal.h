/*
 * drsn_internal.h: engine internals shared by the dsp/ files, the tests and
 * the bench. Not part of the public API: names and layouts may change.
 */
#ifndef DRSN_INTERNAL_H
#define DRSN_INTERNAL_H

#include "drsn.h"

#include <fftw3.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ------------------------------------------------------------------------ */
/* Errors (drsn_error.c)                                                    */

/** Fills err (if not NULL) with status and a printf-style message. */
drsn_status drsn_error_set(drsn_error *err, drsn_status status,
                           const char *format, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* ------------------------------------------------------------------------ */
/* Models (drsn_model.c)                                                    */

/** Largest header values the loader accepts (design.md, model format). */
#define DRSN_MODEL_MAX_BANDS 256u
#define DRSN_MODEL_MAX_CHANNELS 256u
#define DRSN_MODEL_MAX_BLOCKS 64u
#define DRSN_MODEL_MAX_KERNEL_TIME 16u
#define DRSN_MODEL_MAX_KERNEL_FREQ 15u
#define DRSN_MODEL_MAX_HIDDEN 1024u
#define DRSN_MODEL_MAX_DILATION 1024u
#define DRSN_MODEL_MAX_RUNNING_MEAN_MS 60000u
#define DRSN_MODEL_MAX_RECURRENT 1024u
#define DRSN_MODEL_MAX_OVERLAP 16u     /* window_samples / hop_samples */
#define DRSN_MODEL_MAX_WINDOW_MS 100u  /* window_samples / rate_hz */
#define DRSN_MODEL_MAX_FILE_BYTES (64u << 20)
#define DRSN_MODEL_MAX_FRAMES_PER_SECOND 1000u /* a hop of at least 1 ms */
/* Network state per audio channel, and compute: 10 times the default
 * model's 30 M multiply-accumulates per second. */
#define DRSN_MODEL_MAX_STATE_BYTES (4u << 20)
#define DRSN_MODEL_MAX_MACS_PER_SECOND 400e6

/** Weights of one residual shrinkage block; pointers into model storage. */
typedef struct {
  uint32_t dilation;
  const float *conv1_weight; /**< [C][C][KT][KF] */
  const float *conv1_bias;   /**< [C] */
  const float *conv2_weight; /**< [C][C][1][KF] */
  const float *conv2_bias;   /**< [C] */
  const float *fc1_weight;   /**< [H][C] */
  const float *fc1_bias;     /**< [H] */
  const float *fc2_weight;   /**< [C][H] */
  const float *fc2_bias;     /**< [C] */
} drsn_block_weights;

struct drsn_model {
  uint32_t rate_hz;
  uint32_t window_samples;
  uint32_t hop_samples;
  uint32_t band_count;       /**< B */
  uint32_t channels;         /**< C */
  uint32_t block_count;
  uint32_t kernel_time;      /**< KT */
  uint32_t kernel_freq;      /**< KF, odd */
  uint32_t attention_hidden; /**< H */
  uint32_t running_mean_ms;  /**< 0: no running-mean input channel */
  uint32_t input_channels;   /**< I: 1, plus 1 each for running mean, pitch */
  float running_mean_decay;  /**< per-frame decay of the running mean */
  uint32_t recurrent_hidden; /**< R: width of the GRU; 0 in version 1 */
  uint32_t pitch;            /**< 1: pitch-correlation input; 0 before version 3 */

  float *band_centres_hz; /**< [B], strictly increasing */
  const float *feature_mean;  /**< [B] */
  const float *feature_scale; /**< [B] */
  const float *stem_weight;   /**< [C][I][KT][KF] */
  const float *stem_bias;     /**< [C] */
  drsn_block_weights *blocks; /**< [block_count] */
  const float *gain_weight;   /**< [1][C][1][1] */
  const float *gain_bias;     /**< [1] */
  const float *vad_weight;    /**< [1][C] */
  const float *vad_bias;      /**< [1] */
  /* Recurrent layer, present when R > 0 (GRU gate order: reset, update,
   * new, as in PyTorch). */
  const float *rnn_in_weight;  /**< [R][C * B], reads h as [c][b] */
  const float *rnn_in_bias;    /**< [R] */
  const float *rnn_weight_ih;  /**< [3R][R] */
  const float *rnn_weight_hh;  /**< [3R][R] */
  const float *rnn_bias_ih;    /**< [3R] */
  const float *rnn_bias_hh;    /**< [3R] */
  const float *rnn_out_weight; /**< [B][R] */
  const float *rnn_out_bias;   /**< [B] */

  float *storage; /**< every tensor's values, in the expected order */
  size_t storage_floats;
};

/** Network multiply-accumulates per frame (formula in design.md). */
double drsn_model_macs_per_frame(const drsn_model *model);

/** CRC-32 with the zlib polynomial, as used at the end of model files. */
uint32_t drsn_crc32(const void *data, size_t size);

/* ------------------------------------------------------------------------ */
/* STFT framing (drsn_stft.c)                                               */

/** Framing of one engine at its host rate, plus the FFTW plans. */
typedef struct {
  uint32_t hop;          /**< samples per hop at the host rate */
  uint32_t window;       /**< samples per analysis window at the host rate */
  uint32_t bins;         /**< window / 2 + 1 */
  float *analysis;       /**< [window] sqrt-Hann */
  float *synthesis;      /**< [window] sqrt-Hann / overlap / window */
  float *frame;          /**< [window] FFT real scratch (fftwf_malloc) */
  fftwf_complex *spectrum; /**< [bins] planning buffer (fftwf_malloc) */
  fftwf_plan forward;    /**< r2c, window points */
  fftwf_plan inverse;    /**< c2r, window points */
} drsn_stft;

/** Hop at a host rate: round(hop_samples * fs / rate_hz), at least 1. */
uint32_t drsn_stft_hop_for_rate(const drsn_model *model, double sample_rate_hz);

/** Makes windows, buffers and plans (plans under the process-wide lock). */
drsn_status drsn_stft_init(drsn_stft *stft, const drsn_model *model,
                           double sample_rate_hz, drsn_error *err);

/** Frees what drsn_stft_init made; safe on a zeroed or half-made struct. */
void drsn_stft_free(drsn_stft *stft);

/** Windows input[window] and transforms it into spectrum[bins]. RT-safe. */
void drsn_stft_analyse(const drsn_stft *stft, const float *input,
                       fftwf_complex *spectrum);

/**
 * Inverse-transforms spectrum (destroyed) and adds the synthesis-windowed
 * frame into ola[window]. RT-safe.
 */
void drsn_stft_synthesise(const drsn_stft *stft, fftwf_complex *spectrum,
                          float *ola);

/** Serialise FFTW planning: its planner is not thread-safe. */
void drsn_fftw_lock(void);
void drsn_fftw_unlock(void);

/* ------------------------------------------------------------------------ */
/* Bands and features (drsn_bands.c)                                        */

/**
 * Triangular band weights in sparse form: bin k has weight lo_weight[k] in
 * band lo_band[k] and hi_weight[k] in band lo_band[k] + 1 (hi_weight is 0
 * when that band does not exist).
 */
typedef struct {
  uint32_t band_count;
  uint32_t bins;
  uint32_t *lo_band;  /**< [bins] */
  float *lo_weight;   /**< [bins] */
  float *hi_weight;   /**< [bins] */
  float energy_scale; /**< (window_samples / window)^2 */
  const float *feature_mean;
  const float *feature_scale;
  int running_mean;         /**< whether channel 1 is the running-mean one */
  float running_mean_decay; /**< per-frame decay of the running mean */
  /* Host rates whose Nyquist frequency lies below the top band centre:
   * the bands above it get the energy of a roll-off (see design.md). */
  float *rolloff;           /**< [B] weight of the reference power; NULL */
  uint32_t reference_bin;   /**< first bin of the reference power */
} drsn_bands;

drsn_status drsn_bands_init(drsn_bands *bands, const drsn_model *model,
                            double sample_rate_hz, uint32_t window,
                            drsn_error *err);
void drsn_bands_free(drsn_bands *bands);

/** Dense weight of bin k in band b (for tests). */
float drsn_bands_weight(const drsn_bands *bands, uint32_t band, uint32_t bin);

/**
 * energy[b] = scale * sum_k weight[b][k] |X[k]|^2, where spectrum contains
 * bins interleaved (re, im) pairs. RT-safe.
 */
void drsn_bands_energy(const drsn_bands *bands, const float *spectrum,
                       float *energy);

/** Sets running_mean[B] to its start value, the feature mean. RT-safe. */
void drsn_bands_reset_running_mean(const drsn_bands *bands,
                                   float *running_mean);

/**
 * Computes features[I][B] of one frame (design.md, Features). Channel 0 is
 * (ln(energy + 1e-9) - mean) * scale. Channel 1, when present, is the log
 * energy minus running_mean[B], which this call updates first. RT-safe.
 */
void drsn_bands_features(const drsn_bands *bands, const float *energy,
                         float *running_mean, float *features);

/** Multiplies spectrum[k] by sum_b weight[b][k] gains[b]. RT-safe. */
void drsn_bands_apply_gains(const drsn_bands *bands, const float *gains,
                            fftwf_complex *spectrum);

/* ------------------------------------------------------------------------ */
/* Pitch correlation (drsn_pitch.c)                                         */

/** Pitch search of one engine at its host rate; all zero without pitch. */
typedef struct {
  uint32_t window;  /**< analysis window at the host rate */
  uint32_t min_lag; /**< shortest period in samples (2.5 ms) */
  uint32_t max_lag; /**< longest period in samples (16 ms); the channel
                         keeps this many samples before its window */
  /* Above 72 kHz the search runs on the segment decimated by factor to
   * about 48 kHz, and the period is refined at the host rate. */
  uint32_t factor;        /**< decimation, 1 up to 72 kHz */
  uint32_t search_window; /**< window / factor */
  uint32_t search_min;    /**< ceil(min_lag / factor) */
  uint32_t search_max;    /**< max_lag / factor */
  float *decimated;       /**< [search_max + search_window] */
  uint32_t size;    /**< FFT size of the search, a power of two */
  float *buffer;    /**< [size] transform input (fftwf_malloc) */
  float *corr;      /**< [size] correlation by offset (fftwf_malloc) */
  fftwf_complex *segment_spectrum; /**< [size / 2 + 1] */
  fftwf_complex *frame_spectrum;   /**< [size / 2 + 1] */
  float *delayed;                  /**< [window] frame one period earlier */
  fftwf_complex *delayed_spectrum; /**< [bins] */
  float *sums;    /**< [2][3][B]: one channel's band sums, then the totals */
  float *scratch; /**< [2][B] for the pitch filter */
  fftwf_plan forward; /**< r2c, size points */
  fftwf_plan inverse; /**< c2r, size points */
} drsn_pitch;

/** Sets up the search when the model has the pitch input; else zeroes p. */
drsn_status drsn_pitch_init(drsn_pitch *p, const drsn_model *model,
                            double sample_rate_hz, const drsn_stft *stft,
                            drsn_error *err);
void drsn_pitch_free(drsn_pitch *p);

/** Returns the pitch period in samples of segment[max_lag + window], whose
 * last window samples are the frame (design.md, Pitch correlation). Above
 * 72 kHz the search is decimated, then refined to the sample. RT-safe. */
uint32_t drsn_pitch_period(drsn_pitch *p, const float *segment);

/** Writes to out[B] each band's correlation of the frame's spectrum (bins
 * interleaved re, im) with the spectrum of the windowed frame one period
 * earlier. RT-safe. */
void drsn_pitch_correlation(drsn_pitch *p, const drsn_stft *stft,
                            const drsn_bands *bands, const float *segment,
                            const float *spectrum, float *out);

/* The same over several channels, each with its own period: clear, then
 * accumulate each channel's band sums, then finish with the channel count
 * (design.md, Pitch correlation). RT-safe. */
void drsn_pitch_clear(drsn_pitch *p, uint32_t band_count);
void drsn_pitch_accumulate(drsn_pitch *p, const drsn_stft *stft,
                           const drsn_bands *bands, const float *segment,
                           const float *spectrum,
                           fftwf_complex *delayed_spectrum, float *sums);
void drsn_pitch_finish(const drsn_pitch *p, uint32_t band_count,
                       uint32_t channels, float *out);

/** Mixes delayed_spectrum, the spectrum one period earlier (bins
 * interleaved re, im), into spectrum in place, band by band, then gives
 * each band about its energy back (design.md, Pitch filter). The strength
 * comes from the channel's band sums [3][B], as accumulate wrote them, and
 * the limited gains [B]. RT-safe. */
void drsn_pitch_filter(const drsn_pitch *p, const drsn_bands *bands,
                       const float *sums, const float *gains,
                       const float *delayed_spectrum,
                       fftwf_complex *spectrum);

/* ------------------------------------------------------------------------ */
/* Network (drsn_net.c)                                                     */

/** State of one causal network instance (one per independent channel). */
typedef struct drsn_net drsn_net;

drsn_status drsn_net_create(const drsn_model *model, drsn_net **out,
                            drsn_error *err);
void drsn_net_destroy(drsn_net *net);

/** Clears the frame history, as at the start of a stream. RT-safe. */
void drsn_net_reset(drsn_net *net);

/**
 * Runs the network on one frame of features[I][B]: writes gains[B] (raw
 * sigmoid outputs) and returns the voice probability. RT-safe.
 */
float drsn_net_forward(drsn_net *net, const float *features, float *gains);

/** Copies the stem output of the last frame as [C][B]. */
void drsn_net_copy_stem(const drsn_net *net, float *out);

/** Copies the output of block i (h after the residual add) as [C][B]. */
void drsn_net_copy_block(const drsn_net *net, uint32_t block, float *out);

/** Width R of the recurrent layer; 0 when the model has none. */
uint32_t drsn_net_recurrent_width(const drsn_net *net);

/** Copies the recurrent state after the last frame as [R]. */
void drsn_net_copy_recurrent(const drsn_net *net, float *out);

/** Bytes of state one net keeps (history rings and scratch). */
size_t drsn_net_state_bytes(const drsn_net *net);

/**
 * Floats of the history rings and scratch rows a net for model m allocates,
 * from the header fields alone, so the loader can bound it before reading
 * the tensors.
 */
double drsn_net_state_floats(const drsn_model *m);

/* ------------------------------------------------------------------------ */
/* Engine internals (drsn_engine.c)                                         */

/** Number of network instances in use: 1 if linked, else channels. */
uint32_t drsn_engine_net_count(const drsn_engine *engine);

/** Network instance i, for reading activations after a hop. */
const drsn_net *drsn_engine_net(const drsn_engine *engine, uint32_t index);

/** Features[I][B] of net i's last frame. */
const float *drsn_engine_features(const drsn_engine *engine, uint32_t index);

/** Raw network gains[B] of net i's last frame (before the limit). */
const float *drsn_engine_gains(const drsn_engine *engine, uint32_t index);

/** Voice probability of net i's last frame. */
float drsn_engine_net_voice(const drsn_engine *engine, uint32_t index);

/** Number of frames analysed since create or reset. */
uint64_t drsn_engine_frames(const drsn_engine *engine);

/** Band weights of the engine (for tests). */
const drsn_bands *drsn_engine_bands(const drsn_engine *engine);

#ifdef __cplusplus
}
#endif

#endif /* DRSN_INTERNAL_H */
