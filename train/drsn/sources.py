"""Speech and noise sources: Debian packages, how to find their audio, and the splits.

Every source is in Debian main. The split is by whole speaker (speech) and by whole recording
(noise): the evaluation and validation speakers and recordings are never used for training.
"""

import fnmatch
import os
import re

SPEECH_PACKAGES = {
    # package: licence of its audio, from the package's copyright file
    "tuxpaint-stamps-default": "GPL-2",
    "klettres-data": "GPL-2+",
    "ktuberling-data": "GPL-2+ / CC-BY / CC0 (per file, see the package's copyright file)",
    "kajongg": "GPL-2+",
    "fillets-ng-data-cs": "GPL-2+",
    "asterisk-core-sounds-en-g722": "CC-BY-SA-3.0",
    "asterisk-core-sounds-es-g722": "CC-BY-SA-3.0",
    "asterisk-core-sounds-fr-g722": "CC-BY-SA-3.0",
    "asterisk-core-sounds-it-g722": "CC-BY-3.0",
    "asterisk-core-sounds-ru-g722": "CC-BY-3.0",
}

# Narrowband speech that prepare_data.py adds only with --narrowband-speech. Flight of the
# Amazon Queen's voice acting is 11 kHz MP3 at 16 kbit/s with a bandwidth of about 4.4 kHz:
# many English voices, but a narrowband target with codec artefacts. The shipped models did not
# train on it (docs/model.md, Data).
NARROWBAND_SPEECH_PACKAGES = {
    "flight-of-the-amazon-queen": "Flight of the Amazon Queen licence (free redistribution; "
                                  "modified versions allowed with a notice)",
}

# Sources whose clips get a fixed share of the speech picks instead of one in proportion to
# their size, so that narrowband speech adds speakers without taking over the wideband material.
SPEECH_SHARE = {"flight-of-the-amazon-queen": 0.2}

NOISE_PACKAGES = {
    "ufoai-sound": "GPL-2+ / CC-BY(-SA)-3.0 / public domain (per file)",
    "scorched3d-data": "GPL-2+ / CC-BY-SA-3.0",
    "flare-game": "CC-BY-SA-3.0+ / GPL-3+",
    "endless-sky-data": "CC-BY-SA-4.0 / public domain",
    "lincity-ng-data": "GPL-2+",
    "searchandrescue-data": "GPL-2",
    "sonic-pi-samples": "CC0 (mostly)",
    "bucklespring-data": "GPL-2+",
    "megaglest-data": "CC-BY-SA-3.0",
    "supertuxkart-data": "CC0 / CC-BY-SA-3.0 / GPL-2+ (per file)",
    "redeclipse-data": "CC-BY-SA-3.0 / CC-BY-3.0 (per file)",
    "0ad-data": "CC-BY-SA-3.0",
    "widelands-data": "GPL-2+",
}

# The larger game packages hold voices, music and weapon effects beside their ambience, so from
# them only these folders or files are taken (paths relative to the data root). Packages not
# named here contribute every file that NOISE_EXCLUDE lets through. The shipped models were
# trained on exactly this selection, so a change here means new training runs.
# NOTE: megaglest's autumn tileset names its beds sunny_day and nightime, which this misses.
# Red Eclipse's ambience folder also contains a few effects (doors, switches, teleport), and
# Widelands' farm folder contains animal calls. Both are in the current training split.
NOISE_SELECT = {
    "megaglest-data": r"/tilesets/[^/]+/sounds/(wind|rain|day|night|desertday|hell)\.",
    "supertuxkart-data": r"(/sfx/(airplane_jetEngine|engine_large|engine_small|exotic-birds(_2)?|"
                         r"lenautile_restaurant|machine_sound|rain|river_loop|spaceship)|"
                         r"/steamLocomotive)\.ogg$",
    "redeclipse-data": r"/sounds/ambience/",
    "0ad-data-extracted": r"/audio/ambient/",
    "widelands-data": r"/sound/(farm|woodcutting|smiths|atlanteans/saw|atlanteans/cutting|metal|"
                      r"hammering|mill|stonecutting|sawmill|fisher)/",
}

AUDIO_EXTENSIONS = (".ogg", ".wav", ".flac", ".mp3", ".g722", ".opus")

# Held-out speakers. Keys are the speaker ids produced by speech_speaker().
EVAL_SPEAKERS = {
    "tuxpaint:el", "klettres:cs", "klettres:he", "ktuberling:sl", "ktuberling:el",
    "kajongg:female2", "asterisk:ru",
}
VAL_SPEAKERS = {"tuxpaint:lt", "tuxpaint:nl", "klettres:hu", "ktuberling:sv", "kajongg:de/male2"}

# Held-out noise recordings (substring of the path relative to the data root).
EVAL_NOISE = (
    "construction_tomlija", "rain_kenney", "waves_luftrum", "farm_titi2",
    "lincity-ng/sounds/TraficHigh", "hh65/engine_inside", "cheeringloop", "minepump",
    "sonic-pi/samples/vinyl_hiss",
)
VAL_NOISE = ("leaves_juskiddink", "fireplace_ezwa", "citysounds", "cave_wind_loop")

# Noise files that contain speech or music, and categories that are not noise beds.
NOISE_EXCLUDE = re.compile(
    r"(music|voice|speech|radio|news|/tv|talk|civilians|soldiers|aliens|jingle|theme|"
    r"mehackit|loop_amen|loop_|drum_|bass_|perc_|elec_|guit_|synth|/ui/|buffers/|"
    r"/buckle/)",
    re.IGNORECASE,
)


def speech_speaker(relpath):
    """Return a speaker id for a speech file path, or None when the file is not speech."""
    p = relpath.replace(os.sep, "/")
    name = os.path.basename(p)
    if p.startswith("tuxpaint-stamps-default/"):
        m = re.search(r"_desc_([a-z]{2})\.ogg$", name)
        return f"tuxpaint:{m.group(1)}" if m else None
    if p.startswith("klettres-data/"):
        m = re.search(r"/klettres/([A-Za-z_]+)/", p)
        return f"klettres:{m.group(1)}" if m else None
    if p.startswith("ktuberling-data/"):
        m = re.search(r"/sounds/([A-Za-z_@]+)/", p)
        return f"ktuberling:{m.group(1)}" if m else None
    if p.startswith("kajongg/"):
        m = re.search(r"/voices/(.+)/[^/]+$", p)
        return f"kajongg:{m.group(1)}" if m else None
    if p.startswith("fillets-ng-data-cs/"):
        # Lines are named <room>-<character>-<line>; the character is the speaker.
        parts = name.split("-")
        return f"fillets:{parts[1]}" if len(parts) > 2 else "fillets:other"
    m = re.match(r"asterisk-core-sounds-([a-z]{2})-g722/", p)
    if m:
        return f"asterisk:{m.group(1)}"
    if p.startswith("flight-of-the-amazon-queen-extracted/"):
        # Dialogue lines are named <6 hex digits><J or P><digit>.SB, and other lines JOE... or
        # C<scene>_.... NOTE: that J and JOE mark Joe, the hero, is a guess from the names,
        # because the package documents no naming scheme. Every clip is in the training split.
        m = re.match(r"[0-9A-F]{6}J[0-9]\.", name)
        return "fotaq:joe" if m or name.startswith("JOE") else "fotaq:others"
    return None


def speech_source(relpath):
    """Return the package a speech clip comes from."""
    package = relpath.replace(os.sep, "/").split("/", 1)[0]
    return package[: -len("-extracted")] if package.endswith("-extracted") else package


def speech_split(speaker):
    if speaker in EVAL_SPEAKERS:
        return "eval"
    if speaker in VAL_SPEAKERS:
        return "val"
    return "train"


def noise_split(relpath):
    if any(k in relpath for k in EVAL_NOISE):
        return "eval"
    if any(k in relpath for k in VAL_NOISE):
        return "val"
    return "train"


def is_noise_file(relpath):
    package = relpath.replace(os.sep, "/").split("/", 1)[0]
    select = NOISE_SELECT.get(package)
    if select and not re.search(select, relpath):
        return False
    return not NOISE_EXCLUDE.search(relpath)


def find_audio(root, patterns=("*",)):
    for dirpath, _dirs, files in os.walk(root):
        for f in sorted(files):
            if f.lower().endswith(AUDIO_EXTENSIONS) and any(fnmatch.fnmatch(f, p) for p in patterns):
                yield os.path.join(dirpath, f)
