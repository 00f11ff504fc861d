-- Ardour 7 headless session with both drsn-denoise plugins, run by
-- test_ardour.py through ardour7-lua. Prints "RESULT key value" lines for
-- the Python side to check, and "FAIL message" on any error.
--
-- The "mono" and "stereo" tracks load a custom model file from a preset.
-- The "fast" track has a mono plugin without a file, which switches to the
-- low-latency model through its Model port while the engine runs.
--
-- Environment: DRSN_SESSION_DIR (created by Ardour), DRSN_MONO_PRESET and
-- DRSN_STEREO_PRESET (preset URIs that set a custom model file).
--
-- Ardour 7.3's Lua API has no setter for plugin properties (patch:writable
-- parameters), so the custom model comes from an LV2 preset whose state
-- contains the model path; loading it calls the plugin's state restore.

local session_dir = os.getenv("DRSN_SESSION_DIR")
local presets = {
  mono = os.getenv("DRSN_MONO_PRESET"),
  stereo = os.getenv("DRSN_STEREO_PRESET"),
}

-- Ardour numbers the control ports, inputs and outputs, in port order.
local PARAM_LIMIT = 1
local PARAM_MIX = 2
local PARAM_RESIDUAL = 3
local PARAM_LATENCY = 4
local PARAM_LINK = 7 -- stereo only
local PARAM_MODEL = { mono = 7, stereo = 8, fast = 7 }

local function fail(message)
  print("FAIL " .. message)
  os.exit(1)
end

local function result(key, value)
  print("RESULT " .. key .. " " .. tostring(value))
end

local function param(proc, index)
  local value = ARDOUR.LuaAPI.get_processor_param(proc, index, true)
  return value
end

local function add_plugin(track, uri)
  local proc = ARDOUR.LuaAPI.new_plugin(Session, uri, ARDOUR.PluginType.LV2, "")
  if proc:isnil() then
    fail("Ardour cannot create plugin " .. uri)
  end
  if track:add_processor_by_index(proc, 0, nil, true) ~= 0 then
    fail("cannot insert plugin " .. uri)
  end
  return proc
end

-- Create a session with a mono and a stereo track, one plugin on each.
AudioEngine:set_backend("None (Dummy)", "", "")
if AudioEngine:start(false) ~= 0 then
  fail("the dummy audio engine did not start")
end
if not create_session(session_dir, "drsn", 48000) then
  fail("cannot create a session in " .. session_dir)
end

local layouts = { mono = { 1, "urn:drsn-denoise:mono" },
                  stereo = { 2, "urn:drsn-denoise:stereo" },
                  fast = { 1, "urn:drsn-denoise:mono" } }
local procs = {}
for name, layout in pairs(layouts) do
  local tracks = Session:new_audio_track(layout[1], 2, nil, 1, name,
    ARDOUR.PresentationInfo.max_order, ARDOUR.TrackMode.Normal, true)
  procs[name] = add_plugin(tracks:front(), layout[2])
end

ARDOUR.LuaAPI.usleep(3000000) -- let the engine run the plugins

result("fast.latency_before", procs.fast:signal_latency())
for _, name in ipairs({ "mono", "stereo" }) do
  local proc = procs[name]
  result(name .. ".latency", proc:signal_latency())
  result(name .. ".latency_port", param(proc, PARAM_LATENCY))

  local plugin = proc:to_insert():plugin(0)
  local preset = plugin:preset_by_uri(presets[name])
  if not preset then
    fail("preset " .. presets[name] .. " not found")
  end
  if not plugin:load_preset(preset) then
    fail("cannot load preset " .. presets[name])
  end
end
ARDOUR.LuaAPI.usleep(500000)

-- Controls set after the preset win over the preset's values. The mono
-- plugin's Model port selects the low-latency model, but its model file
-- takes precedence.
ARDOUR.LuaAPI.set_processor_param(procs.mono, PARAM_MODEL.mono, 1)
ARDOUR.LuaAPI.set_processor_param(procs.fast, PARAM_MODEL.fast, 1)
ARDOUR.LuaAPI.set_processor_param(procs.mono, PARAM_LIMIT, 18)
ARDOUR.LuaAPI.set_processor_param(procs.mono, PARAM_MIX, 75)
ARDOUR.LuaAPI.set_processor_param(procs.mono, PARAM_RESIDUAL, 1)
ARDOUR.LuaAPI.set_processor_param(procs.stereo, PARAM_LIMIT, 42)
ARDOUR.LuaAPI.set_processor_param(procs.stereo, PARAM_LINK, 0)
ARDOUR.LuaAPI.usleep(500000)
result("mono.latency_after_model_port", procs.mono:signal_latency())
result("fast.latency", procs.fast:signal_latency())
result("fast.latency_port", param(procs.fast, PARAM_LATENCY))

if Session:save_state("", false, false, false, false, false) ~= 0 then
  fail("cannot save the session")
end
close_session()
procs = nil

-- Reload and read everything back.
if not load_session(session_dir, "drsn") then
  fail("cannot reload the session from " .. session_dir)
end
ARDOUR.LuaAPI.usleep(2000000)

for route in Session:get_routes():iter() do
  local proc = route:nth_plugin(0)
  local name = route:name()
  if not proc:isnil() and PARAM_MODEL[name] then
    result(name .. ".reloaded", proc:display_name())
    result(name .. ".reloaded_latency", proc:signal_latency())
    result(name .. ".model", param(proc, PARAM_MODEL[name]))
    result(name .. ".limit", param(proc, PARAM_LIMIT))
    result(name .. ".mix", param(proc, PARAM_MIX))
    result(name .. ".residual", param(proc, PARAM_RESIDUAL))
    if name == "stereo" then
      result(name .. ".link", param(proc, PARAM_LINK))
    end
  end
end

-- Saving again writes what the reloaded plugins report as their state.
if Session:save_state("", false, false, false, false, false) ~= 0 then
  fail("cannot save the reloaded session")
end
close_session()
print("DONE")
