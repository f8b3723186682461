// The map style: a blank base from the twin itself (districts, grid cells, roads, water),
// then every layer the caller may read, styled by kind. No external tiles, fonts or sprites.

const NETWORK_COLOURS = ["match", ["get", "network"],
  "water", "#1e88e5", "gas", "#f9a825", "drainage", "#6d4c41", "heat", "#e53935", "power", "#8e24aa", "#546e7a"];
const ROAD_WIDTH = ["match", ["get", "road_class"],
  ["motorway", "trunk", "expressway", "快速路"], 5, ["primary", "主干路"], 4,
  ["secondary", "次干路"], 3, ["tertiary", "支路"], 2, 1.5];
const ROAD_COLOUR = ["match", ["get", "road_class"],
  ["motorway", "trunk", "expressway", "快速路"], "#f4a261", ["primary", "主干路"], "#f6bd60",
  ["secondary", "次干路"], "#ffffff", "#ffffff"];

const SENSOR_STATE = ["coalesce", ["feature-state", "state"], "unknown"];
// Sensor states (normal / alarm / offline / no data) and their colours, in legend order.
export const SENSOR_STATE_COLOUR = { normal: "#2e7d32", alarm: "#d50000", offline: "#757575", no_data: "#ffffff" };
export const HEAT_RAMP = [[0, "rgba(255,224,130,0)"], [0.2, "#ffe082"], [0.5, "#fb8c00"], [0.8, "#e53935"], [1, "#7f0000"]];

export const KIND_COLOUR = {
  building: "#9fb3c8", road: "#f6bd60", pipe: "#1e88e5", valve: "#2e7d32", sensor: "#00897b",
  district: "#5c6b7a", grid: "#90a4ae", parcel: "#c5e1a5", water: "#90caf9", poi: "#6a1b9a", source: "#0d47a1",
};

// Drawing order: base first, assets on top.
const ORDER = ["district", "parcel", "water", "grid", "road", "pipe", "building", "source", "valve", "sensor", "poi"];

// The one vector source of the twin's layers: one composite tile per z/x/y holds them all.
export const TWIN_SOURCE = "twin";

function layersFor(set) {
  const id = set.layer, base = { source: TWIN_SOURCE, "source-layer": id, metadata: { twinLayer: id },
    ...(set.minzoom ? { minzoom: set.minzoom } : {}) };
  switch (set.kind) {
    case "district":
      return [{ ...base, id: `${id}-fill`, type: "fill", paint: { "fill-color": "#e8edf2", "fill-opacity": 0.6 } },
        { ...base, id: `${id}-line`, type: "line", paint: { "line-color": "#5c6b7a", "line-width": 2 } }];
    case "grid":
      return [{ ...base, id: `${id}-line`, type: "line", paint: { "line-color": "#90a4ae", "line-width": 1, "line-dasharray": [3, 2] } }];
    case "parcel":
      return [{ ...base, id: `${id}-fill`, type: "fill", paint: { "fill-color": "#dcedc8", "fill-opacity": 0.5, "fill-outline-color": "#9ccc65" } }];
    case "water":
      return [{ ...base, id: `${id}-fill`, type: "fill", paint: { "fill-color": "#90caf9" } }];
    case "road":
      return [{ ...base, id: `${id}-casing`, type: "line", paint: { "line-color": "#b0b8c0", "line-width": ["+", ROAD_WIDTH, 1.5] } },
        { ...base, id: `${id}-line`, type: "line", paint: { "line-color": ROAD_COLOUR, "line-width": ROAD_WIDTH } }];
    case "pipe":
      return [{ ...base, id: `${id}-line`, type: "line", paint: { "line-color": NETWORK_COLOURS,
        "line-width": ["interpolate", ["linear"], ["coalesce", ["get", "diameter_mm"], 100], 50, 1, 300, 2.5, 1200, 5] } }];
    case "building":
      return [{ ...base, id: `${id}-3d`, type: "fill-extrusion", paint: {
        "fill-extrusion-height": ["coalesce", ["get", "height"], 3],
        "fill-extrusion-color": ["interpolate", ["linear"], ["coalesce", ["get", "height"], 3], 0, "#cfd8dc", 30, "#90a4ae", 100, "#546e7a"],
        "fill-extrusion-opacity": 0.85 } }];
    case "valve":
      return [{ ...base, id: `${id}-circle`, type: "circle", paint: { "circle-radius": 4, "circle-stroke-width": 1, "circle-stroke-color": "#fff",
        "circle-color": ["match", ["get", "status"], "open", "#2e7d32", "closed", "#c62828", "inoperable", "#212121", "#757575"] } }];
    case "sensor":
      // Coloured by the live state the page sets as feature state (see SENSOR_STATE_COLOUR);
      // by sensor type until the state is known.
      return [{ ...base, id: `${id}-circle`, type: "circle", paint: {
        "circle-radius": ["match", SENSOR_STATE, "alarm", 7, 4.5],
        "circle-stroke-width": ["match", SENSOR_STATE, "alarm", 2, 1],
        "circle-stroke-color": ["match", SENSOR_STATE, "alarm", "#000000", "no_data", "#757575", "#ffffff"],
        "circle-color": ["match", SENSOR_STATE,
          ...Object.entries(SENSOR_STATE_COLOUR).flat(),
          ["match", ["get", "sensor_type"], "water_pressure", "#1e88e5", "gas_leak", "#f9a825", "smoke", "#6d4c41", "camera", "#8e24aa", "#00897b"]] } }];
    default:
      return [{ ...base, id: `${id}-circle`, type: "circle", paint: { "circle-radius": 4, "circle-color": KIND_COLOUR[set.kind] || "#6a1b9a" } }];
  }
}

export function buildStyle(tilesets) {
  const sources = {}, layers = [{ id: "background", type: "background", paint: { "background-color": "#eef1f4" } }];
  const rank = (s) => { const i = ORDER.indexOf(s.kind); return i < 0 ? ORDER.length : i; };
  const ordered = [...tilesets].sort((a, b) => rank(a) - rank(b));
  if (ordered.length) {
    // "/tiles/a,b,c/{z}/{x}/{y}.pbf": every layer the caller may read in one request per tile
    // (the first view needs 4 requests instead of 4 per layer). Each layer keeps its minzoom.
    const names = ordered.map((set) => encodeURIComponent(set.layer)).join(",");
    const template = ordered[0].tiles.replace(`/tiles/${encodeURIComponent(ordered[0].layer)}/`, `/tiles/${names}/`);
    sources[TWIN_SOURCE] = { type: "vector", tiles: [template], minzoom: 0, maxzoom: 16, promoteId: "uid" };
  }
  for (const set of ordered) layers.push(...layersFor(set));
  sources.impact = { type: "geojson", data: { type: "FeatureCollection", features: [] } };
  sources["detour-heat"] = { type: "geojson", data: { type: "FeatureCollection", features: [] } };
  sources.selection = { type: "geojson", data: { type: "FeatureCollection", features: [] } };
  sources.drawing = { type: "geojson", data: { type: "FeatureCollection", features: [] } };
  layers.push(
    // The detour heat map: a surface from the delayed buildings, weighted by minutes of detour.
    { id: "detour-heat", type: "heatmap", source: "detour-heat", maxzoom: 19, paint: {
      // weight: the building's detour over the closure's longest (legend: 0 … max minutes)
      "heatmap-weight": ["get", "weight"],
      "heatmap-intensity": ["interpolate", ["linear"], ["zoom"], 12, 1, 17, 2.5],
      "heatmap-radius": ["interpolate", ["exponential", 2], ["zoom"], 12, 8, 15, 30, 18, 160],
      "heatmap-color": ["interpolate", ["linear"], ["heatmap-density"], ...HEAT_RAMP.flat()],
      "heatmap-opacity": 0.8 } },
    { id: "impact-buildings", type: "fill", source: "impact", filter: ["in", ["geometry-type"], ["literal", ["Polygon", "MultiPolygon"]]],
      paint: { "fill-color": ["match", ["get", "result"],
        // detour heat: yellow for a short detour to deep red for ten minutes or more
        "building_delayed", ["interpolate", ["linear"], ["coalesce", ["get", "detour_s"], 0], 0, "#ffe082", 120, "#fb8c00", 600, "#b71c1c"],
        "building_lost", "#4a148c", "#d32f2f"], "fill-opacity": 0.8 } },
    { id: "impact-lines", type: "line", source: "impact", filter: ["in", ["geometry-type"], ["literal", ["LineString", "MultiLineString"]]],
      paint: { "line-width": 5, "line-color": ["match", ["get", "result"], "isolated_pipe", "#d32f2f", "cut_off_pipe", "#ff7043", "closed_road", "#000000", "#d32f2f"] } },
    { id: "impact-points", type: "circle", source: "impact", filter: ["in", ["geometry-type"], ["literal", ["Point", "MultiPoint"]]],
      paint: { "circle-radius": 7, "circle-color": ["match", ["get", "result"], "valve_to_close", "#ffeb3b", "#ff9800"], "circle-stroke-color": "#000", "circle-stroke-width": 2 } },
    { id: "selection-fill", type: "fill", source: "selection", filter: ["in", ["geometry-type"], ["literal", ["Polygon", "MultiPolygon"]]], paint: { "fill-color": "#0b6bcb", "fill-opacity": 0.35 } },
    { id: "selection-line", type: "line", source: "selection", paint: { "line-color": "#0b6bcb", "line-width": 3 } },
    { id: "drawing-fill", type: "fill", source: "drawing", filter: ["in", ["geometry-type"], ["literal", ["Polygon", "MultiPolygon"]]], paint: { "fill-color": "#6a1b9a", "fill-opacity": 0.2 } },
    { id: "drawing-points", type: "circle", source: "drawing", filter: ["in", ["geometry-type"], ["literal", ["Point", "MultiPoint"]]], paint: { "circle-radius": 4, "circle-color": "#6a1b9a" } },
  );
  return { version: 8, sources, layers };
}
