// The one-map page (城市一张图). Everything it loads comes from the `twin serve` that served it.
import maplibregl from "maplibre-gl";
import { formatPosition, parseProj4 } from "./coords.js";
import { language, setLanguage, t } from "./i18n.js";
import { buildStyle, HEAT_RAMP, KIND_COLOUR, SENSOR_STATE_COLOUR, TWIN_SOURCE } from "./style.js";

const KEY_STORE = "citytwin.apiKey"; // sessionStorage: gone when the tab closes
const LANG_STORE = "citytwin.lang";
const $ = (id) => document.getElementById(id);

const state = {
  key: sessionStorage.getItem(KEY_STORE) || "",
  tilesets: [],
  crs: null,
  crsMode: "cgcs2000",
  impact: null,
  drawing: null,
  districtMarkers: [],
  eventMarkers: new Map(),
  vitals: null,
  eventSeq: 0,
  sensorStates: [],
};

// Exposed for the browser tests, for an operator's console, and as the events hook.
const citytwin = (window.citytwin = { state, ready: false, map: null, events: null, marks: {} });

function headers(extra = {}) {
  return state.key ? { ...extra, "X-API-Key": state.key } : extra;
}

async function api(path, options = {}) {
  const response = await fetch(path, { ...options, headers: headers(options.headers || {}) });
  const body = response.status === 204 ? null : await response.json();
  if (!response.ok) {
    const error = new Error(body && body.description ? body.description : `${response.status}`);
    error.status = response.status;
    throw error;
  }
  return body;
}

function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "onclick") node.addEventListener("click", v);
    else if (k === "dataset") Object.assign(node.dataset, v);
    else node.setAttribute(k, v);
  }
  for (const child of children) node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  return node;
}

// ------------------------------------------------------------------ layers and the map

async function loadTilesets() {
  let listing;
  try {
    listing = await api("/tiles");
  } catch (error) {
    if (error.status === 401 && state.key) {
      $("key-status").textContent = t("keyRejected");
      setKey("");
      listing = await api("/tiles");
    } else throw error;
  }
  state.tilesets = listing.tilesets;
  state.crs = { id: listing.crs.id, tm: parseProj4(listing.crs.proj4) };
  return listing.tilesets;
}

function renderLayerList() {
  const list = $("layer-list");
  list.replaceChildren();
  const groups = new Map();
  for (const set of state.tilesets) {
    if (!groups.has(set.category)) groups.set(set.category, []);
    groups.get(set.category).push(set);
  }
  for (const [category, sets] of groups) {
    const box = el("div", { class: "category", dataset: { category } }, el("h3", {}, t(`categories.${category}`)));
    for (const set of sets) {
      const input = el("input", { type: "checkbox", dataset: { layer: set.layer } });
      input.checked = true;
      input.addEventListener("change", () => setLayerVisible(set.layer, input.checked));
      box.append(el("label", {}, input,
        el("span", { class: "swatch", style: `background:${KIND_COLOUR[set.kind] || "#888"}` }),
        `${set.layer} · ${t(`kinds.${set.kind}`)} (${set.count})`));
    }
    list.append(box);
  }
}

function setLayerVisible(name, visible) {
  for (const layer of citytwin.map.getStyle().layers) {
    if (layer.metadata && layer.metadata.twinLayer === name) {
      citytwin.map.setLayoutProperty(layer.id, "visibility", visible ? "visible" : "none");
    }
  }
}

function unionBounds() {
  const sets = state.tilesets.filter((s) => s.bounds);
  const pick = sets.filter((s) => s.kind === "district");
  const use = pick.length ? pick : sets;
  if (!use.length) return null;
  return use.reduce((b, s) => [Math.min(b[0], s.bounds[0]), Math.min(b[1], s.bounds[1]),
    Math.max(b[2], s.bounds[2]), Math.max(b[3], s.bounds[3])], [180, 90, -180, -90]);
}

function createMap() {
  const bounds = unionBounds();
  const map = new maplibregl.Map({
    container: "map",
    style: buildStyle(state.tilesets),
    bounds: bounds || undefined,
    fitBoundsOptions: { padding: 20 },
    pitch: 0,
    maxPitch: 70,
    attributionControl: false,
    transformRequest: (url) => (url.startsWith(location.origin) && state.key
      ? { url, headers: { "X-API-Key": state.key } } : { url }),
  });
  map.addControl(new maplibregl.NavigationControl({ visualizePitch: true }), "top-right");
  map.addControl(new maplibregl.ScaleControl({ unit: "metric" }), "bottom-left");
  map.on("mousemove", (e) => showPosition(e.lngLat.lng, e.lngLat.lat));
  map.on("click", onMapClick);
  map.once("idle", () => {
    // First full render done (flat, the fastest); then tilt to show the buildings in 2.5D,
    // and only now the live layers (sensor states, events, vital signs): they would compete
    // with the first tiles for the main thread and re-render the sensors as states arrive.
    citytwin.ready = true;
    citytwin.firstIdleMs = performance.now();
    citytwin.marks.firstIdle = Math.round(citytwin.firstIdleMs);
    loadVitals();
    loadSensorStates();
    connectEvents();
    document.body.dataset.ready = "true";
    map.easeTo({ pitch: 45, duration: 500 });
    const settle = () => { citytwin.settled = true; };
    map.once("moveend", () => (map.loaded() ? settle() : map.once("idle", settle)));
  });
  citytwin.map = map;
  return map;
}

async function restyle() {
  await loadTilesets();
  renderLayerList();
  citytwin.map.setStyle(buildStyle(state.tilesets));
  citytwin.map.once("styledata", () => {
    if (state.impact) drawImpact(state.impact);
    loadSensorStates();
  });
  loadVitals();
  for (const marker of state.eventMarkers.values()) marker.remove();
  state.eventMarkers.clear();
  citytwin.events.items.clear();
  citytwin.events.render();
  state.eventSeq = 0;
  connectEvents();
}

function showPosition(lon, lat) {
  state.lastPosition = [lon, lat];
  $("coords-readout").textContent = formatPosition(state.crsMode, lon, lat, state.crs);
}

// ------------------------------------------------------------------ identify and profile

const PREFERRED = ["building", "valve", "pipe", "sensor", "road", "poi", "parcel", "grid", "district"];

async function onMapClick(e) {
  const { lng, lat } = e.lngLat;
  showPosition(lng, lat);
  if (state.drawing) {
    state.drawing.push([lng, lat]);
    drawDrawing();
    return;
  }
  const metresPerPixel = 40075016.686 * Math.cos((lat * Math.PI) / 180) / (512 * 2 ** citytwin.map.getZoom());
  const tolerance = Math.min(50, Math.max(1, 6 * metresPerPixel));
  const found = await api(`/identify?lon=${lng}&lat=${lat}&tolerance_m=${tolerance.toFixed(1)}`);
  showIdentify(found);
}

function showIdentify(found) {
  const body = $("identify-body");
  body.replaceChildren();
  $("identify-panel").hidden = false;
  const groups = [...found.layers].sort((a, b) => PREFERRED.indexOf(a.kind) - PREFERRED.indexOf(b.kind));
  if (!groups.length) body.append(el("p", {}, t("noHits")));
  for (const group of groups) {
    for (const feature of group.features.slice(0, 5)) {
      const p = feature.properties || {};
      const row = el("div", { class: "hit", dataset: { layer: group.layer, uid: feature.id } },
        el("div", {}, `${t(`kinds.${group.kind}`)} · `, el("span", { class: "uid" }, feature.id)),
        p.name ? el("div", {}, p.name) : "");
      const actions = el("div");
      actions.append(el("button", { type: "button", onclick: () => showProfile(group.layer, feature.id) }, t("showProfile")));
      if (group.kind === "pipe") {
        actions.append(el("button", { type: "button", class: "burst", onclick: () => burstPipe(group.layer, feature) }, t("burst")));
      }
      if (group.kind === "road") {
        actions.append(el("button", { type: "button", class: "close-road", onclick: () => closeRoads([feature.id], t("roadClosure")) }, t("closeRoad")));
      }
      row.append(actions);
      body.append(row);
    }
  }
  const first = groups.find((g) => g.features.length);
  if (first) {
    select(first.features[0]);
    showProfile(first.layer, first.features[0].id);
  }
}

function select(feature) {
  citytwin.map.getSource("selection").setData({ type: "FeatureCollection", features: feature && feature.geometry ? [feature] : [] });
}

async function showProfile(layer, uid) {
  const card = await api(`/profile/${encodeURIComponent(layer)}/${encodeURIComponent(uid)}?geometry=false`);
  const body = $("profile-body");
  $("profile-panel").hidden = false;
  body.replaceChildren(el("div", { class: "uid", id: "profile-uid" }, card.feature.id));
  const props = el("table", { class: "summary" });
  for (const [k, v] of Object.entries(card.feature.properties || {})) {
    if (v !== null && typeof v !== "object") props.append(el("tr", {}, el("td", {}, k), el("td", {}, String(v))));
  }
  body.append(props, el("h3", {}, t("related")));
  for (const group of card.related || []) {
    for (const f of group.features) {
      body.append(el("div", {}, `${group.role}: `, el("span", { class: "uid" }, f.id), f.properties && f.properties.name ? ` ${f.properties.name}` : ""));
    }
  }
  for (const c of card.service_connections || []) {
    body.append(el("div", {}, `${t("serviceConnections")} (${c.network}): `, el("span", { class: "uid" }, c.pipe || "—"),
      c.distance_m == null ? "" : ` ${c.distance_m.toFixed(1)} m`));
  }
  for (const a of card.road_access || []) {
    body.append(el("div", {}, `${t("roadAccess")}: `, el("span", { class: "uid" }, a.road || "—"), a.name ? ` ${a.name}` : ""));
  }
}

// ------------------------------------------------------------------ search

async function onSearch(event) {
  event.preventDefault();
  const q = $("search").value.trim();
  if (!q) return;
  const found = await api(`/search?q=${encodeURIComponent(q)}&fuzzy=true&limit=10`);
  const list = $("search-list");
  list.replaceChildren();
  $("search-results").hidden = false;
  if (!found.hits.length) list.append(el("li", {}, t("noResults")));
  for (const hit of found.hits) {
    list.append(el("li", { dataset: { uid: hit.uid } },
      el("a", { href: "#", onclick: (e) => { e.preventDefault(); flyTo(hit); } }, hit.value || hit.uid),
      " ", el("span", { class: "uid" }, hit.uid)));
  }
  if (found.hits.length) flyTo(found.hits[0]);
}

function geometryBounds(geometry) {
  const b = [180, 90, -180, -90];
  const walk = (c) => {
    if (typeof c[0] === "number") {
      b[0] = Math.min(b[0], c[0]); b[1] = Math.min(b[1], c[1]); b[2] = Math.max(b[2], c[0]); b[3] = Math.max(b[3], c[1]);
    } else c.forEach(walk);
  };
  walk(geometry.coordinates);
  return b;
}

function flyTo(hit) {
  if (!hit.feature || !hit.feature.geometry) return;
  const b = geometryBounds(hit.feature.geometry);
  citytwin.map.fitBounds([[b[0], b[1]], [b[2], b[3]]], { maxZoom: 17, padding: 80, duration: 800 });
  select(hit.feature);
  showProfile(hit.layer, hit.uid);
}

// ------------------------------------------------------------------ impact

const RESULT_LABELS = {
  valve_to_close: "valvesToClose", isolated_pipe: "isolatedPipes", cut_off_pipe: "cutOffPipes",
  building: "buildingsOut", closed_road: "closedRoads", building_lost: "buildingsLost", building_delayed: "buildingsDelayed",
};

async function runImpact(title, path, request, extra) {
  $("impact-panel").hidden = false;
  $("impact-body").replaceChildren(el("p", {}, t("working")));
  try {
    const answer = await api(path, { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(request) });
    if (extra) {
      try {
        const more = await extra(answer);
        answer.features.push(...more);
      } catch (error) {
        answer.summary.warnings = [...(answer.summary.warnings || []), String(error.message)];
      }
    }
    state.impact = { title, answer };
    drawImpact(state.impact);
  } catch (error) {
    $("impact-body").replaceChildren(el("p", { class: "error" }, `${t("failed")}: ${error.message}`));
  }
}

function centroid(geometry) {
  // The mean of the outer ring's vertices: a point inside a building footprint.
  const ring = geometry.type === "MultiPolygon" ? geometry.coordinates[0][0]
    : geometry.type === "Polygon" ? geometry.coordinates[0] : [geometry.coordinates];
  const n = Math.max(ring.length - (ring.length > 1 ? 1 : 0), 1);
  let x = 0, y = 0;
  for (let i = 0; i < n; i += 1) { x += ring[i][0]; y += ring[i][1]; }
  return [x / n, y / n];
}

// The detour heat surface: one point per delayed building, weighted by its detour in minutes
// over the longest detour of the closure (the legend runs from 0 to that many minutes).
function detourHeat(features) {
  const delayed = features.filter((f) => f.properties.result === "building_delayed" && f.geometry);
  const longest = Math.max(0, ...delayed.map((f) => (f.properties.detour_s || 0) / 60));
  state.longestDetourMin = longest;
  return delayed.map((f) => {
    const minutes = (f.properties.detour_s || 0) / 60;
    return { type: "Feature", properties: { uid: f.id, detour_min: minutes, weight: longest ? minutes / longest : 0 },
      geometry: { type: "Point", coordinates: centroid(f.geometry) } };
  });
}

function drawImpact(impact) {
  const { title, answer } = impact;
  citytwin.map.getSource("impact").setData({ type: "FeatureCollection", features: answer.features });
  const heat = detourHeat(answer.features);
  citytwin.map.getSource("detour-heat").setData({ type: "FeatureCollection", features: heat });
  citytwin.heatPoints = heat.length;
  renderHeatLegend();
  $("legend-heat").hidden = heat.length === 0;
  legendVisibility();
  const counts = {};
  for (const f of answer.features) {
    const r = f.properties.result;
    if (f.properties.extra) continue;
    counts[r] = (counts[r] || 0) + 1;
  }
  const table = el("table", { class: "summary", id: "impact-summary" });
  for (const [result, n] of Object.entries(counts)) {
    table.append(el("tr", { dataset: { result } }, el("td", {}, t(RESULT_LABELS[result] || result)), el("td", { class: "count" }, n)));
  }
  const s = answer.summary || {};
  if (s.max_detour_s != null) table.append(el("tr", {}, el("td", {}, t("maxDetour")), el("td", {}, s.max_detour_s.toFixed(0))));
  const body = $("impact-body");
  body.replaceChildren(el("h3", {}, title), table);
  for (const w of s.warnings || []) body.append(el("p", { class: "error" }, `${t("warnings")}: ${w}`));
  citytwin.impactCounts = counts;
}

function burstPipe(layer, feature) {
  const network = (feature.properties && feature.properties.network) || "water";
  const request = { pipe: feature.id, network, pipes: layer };
  // The break's own answer, then the roads its works close (cascade) drawn on top.
  runImpact(t("pipeBurst"), "/impact/pipe-break", request, async () => {
    const cascade = await api("/impact/cascade", { method: "POST", headers: { "Content-Type": "application/json" },
      body: JSON.stringify({ pipe: feature.id, network, pipes: layer }) });
    return cascade.features.filter((f) => f.properties.result === "closed_road");
  });
}

function closeRoads(uids, title) {
  runImpact(title, "/impact/road-closure", { roads_closed: uids });
}

function drawDrawing() {
  const pts = state.drawing || [];
  const features = pts.map((c) => ({ type: "Feature", properties: {}, geometry: { type: "Point", coordinates: c } }));
  if (pts.length >= 3) features.push({ type: "Feature", properties: {}, geometry: { type: "Polygon", coordinates: [[...pts, pts[0]]] } });
  citytwin.map.getSource("drawing").setData({ type: "FeatureCollection", features });
}

function startDrawing() {
  state.drawing = [];
  $("finish-area").hidden = false;
  $("draw-hint").hidden = false;
  drawDrawing();
}

function finishDrawing() {
  const pts = state.drawing || [];
  state.drawing = null;
  $("finish-area").hidden = true;
  $("draw-hint").hidden = true;
  if (pts.length >= 3) {
    runImpact(t("areaClosure"), "/impact/road-closure", { area: { type: "Polygon", coordinates: [[...pts, pts[0]]] } });
  }
  citytwin.map.getSource("drawing").setData({ type: "FeatureCollection", features: [] });
}

function save(blob, name) {
  const a = el("a", { href: URL.createObjectURL(blob), download: name });
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
}

function downloadImpact() {
  if (!state.impact) return;
  save(new Blob([JSON.stringify(state.impact.answer)], { type: "application/geo+json" }), "impact.geojson");
}

async function downloadGeopackage() {
  if (!state.impact) return;
  const { type, features } = state.impact.answer;
  const response = await fetch("/export/geopackage", { method: "POST",
    headers: headers({ "Content-Type": "application/json" }), body: JSON.stringify({ type, features }) });
  if (response.ok) save(await response.blob(), "impact.gpkg");
}

// ------------------------------------------------------------------ vital signs

async function loadVitals() {
  const [stats, districts] = await Promise.all([
    api("/statistics?by=district&live=true").catch(() => api("/statistics?by=district")),
    state.districtNames ? Promise.resolve(null) : api("/collections/districts/items?limit=1000").catch(() => ({ features: [] })),
  ]);
  state.vitals = stats;
  if (districts) {
    state.districtNames = new Map(districts.features.map((f) => [f.id, f]));
    for (const m of state.districtMarkers) m.remove();
    state.districtMarkers = [];
    for (const f of districts.features) {
      if (!f.geometry || !f.properties || !f.properties.name) continue;
      const b = geometryBounds(f.geometry);
      const label = el("div", { class: "district-label" }, f.properties.name);
      state.districtMarkers.push(new maplibregl.Marker({ element: label }).setLngLat([(b[0] + b[2]) / 2, (b[1] + b[3]) / 2]).addTo(citytwin.map));
    }
  }
  renderVitals();
}

// Per district: buildings, sensors online (of those the caller may read), open events.
function renderVitals() {
  const strip = $("vitals");
  strip.replaceChildren();
  if (!state.vitals) return;
  for (const f of state.vitals.features) {
    const p = f.properties, named = state.districtNames && state.districtNames.get(f.id);
    const name = named && named.properties.name ? named.properties.name : f.id;
    const sensors = p.sensors_sensor_count;
    const online = p.sensors_online;
    strip.append(el("span", { class: "vital", dataset: { zone: f.id, buildings: p.building_count ?? 0,
      online: online ?? "", open: p.open_events ?? "" } }, `${name}: `,
      el("b", {}, p.building_count ?? 0), ` ${t("buildings")}`,
      sensors == null ? "" : ` · ${online ?? "?"}/${sensors} ${t("sensorsOnline")}`,
      p.open_events == null ? "" : el("span", { class: p.open_events ? "open-events hot" : "open-events" },
        ` · ${p.open_events} ${t("openEvents")}`)));
  }
}

// ------------------------------------------------------------------ sensor states

async function loadSensorStates() {
  if (!state.tilesets.some((s) => s.kind === "sensor")) { state.sensorStates = []; return; }
  let answer;
  try {
    answer = await api("/map/sensors");
  } catch (error) {
    return; // no live store here
  }
  state.sensorStates = answer.sensors;
  if (citytwin.map.getSource(TWIN_SOURCE)) {
    for (const s of answer.sensors) {
      citytwin.map.setFeatureState({ source: TWIN_SOURCE, sourceLayer: s.layer, id: s.uid }, { state: s.state });
    }
  }
  citytwin.sensorCounts = answer.counts;
  renderLegend(answer.counts);
}

function renderLegend(counts) {
  const box = $("legend-sensors");
  box.replaceChildren(el("h3", {}, t("sensorStates")));
  for (const [name, colour] of Object.entries(SENSOR_STATE_COLOUR)) {
    box.append(el("div", { class: "legend-row", dataset: { state: name } },
      el("span", { class: "dot", style: `background:${colour}` }),
      `${t(`states.${name}`)}${counts ? ` (${counts[name] ?? 0})` : ""}`));
  }
  box.hidden = !state.tilesets.some((s) => s.kind === "sensor");
  legendVisibility();
}

function legendVisibility() {
  $("legend").hidden = $("legend-sensors").hidden && $("legend-heat").hidden;
}

function renderHeatLegend() {
  const stops = HEAT_RAMP.map(([at, colour]) => `${colour} ${at * 100}%`).join(", ");
  const longest = state.longestDetourMin || 0;
  $("legend-heat").replaceChildren(el("h3", {}, t("detourHeat")),
    el("div", { class: "ramp", style: `background: linear-gradient(to right, ${stops})` }),
    el("div", { class: "ramp-labels" }, el("span", {}, `0 ${t("minutes")}`),
      el("span", {}, (longest / 2).toFixed(1)), el("span", { id: "legend-heat-max" }, `${longest.toFixed(1)} ${t("minutes")}`)));
}

let refreshTimer = null;
function refreshLive() {
  clearTimeout(refreshTimer);
  refreshTimer = setTimeout(() => { loadSensorStates(); loadVitals(); }, 300);
}

// ------------------------------------------------------------------ events (fed by the SSE stream)

// citytwin.events.add(event) takes one event: {id, status: "new"|"dispatched"|"overdue"|…, title,
// lon, lat, district?, open?, impact?: FeatureCollection}. connectEvents() feeds it: the open
// events from /map/events, then every change from /events/stream, opened with a short-lived
// token (POST /events/stream-token) because EventSource cannot send the X-API-Key header.
const STATUS_LABEL = { new: "eventNew", acknowledged: "eventAcknowledged", dispatched: "eventDispatched",
  in_progress: "eventInProgress", resolved: "eventResolved", closed: "eventClosed", overdue: "eventOverdue" };

function eventTitle(p) {
  return `${t(`eventTypes.${p.event_type}`)} · ${p.grade}`;
}

function eventFrom(feature) {
  const p = feature.properties, [lon, lat] = feature.geometry ? feature.geometry.coordinates : [NaN, NaN];
  return { id: feature.id, status: p.overdue ? "overdue" : p.status, title: eventTitle(p), lon, lat,
    district: p.district, open: p.is_open, props: p };
}

function makeEvents() {
  const items = new Map();
  const render = () => {
    const list = $("events-list");
    list.replaceChildren();
    for (const ev of [...items.values()].reverse()) {
      const label = STATUS_LABEL[ev.status] || "eventNew";
      const title = ev.props ? eventTitle(ev.props) : ev.title || ev.id;
      list.append(el("li", { dataset: { id: ev.id, status: ev.status } },
        el("a", { href: "#", onclick: (e) => { e.preventDefault(); showEvent(items.get(ev.id)); } }, `[${t(label)}] ${title}`)));
    }
  };
  const showEvent = async (ev) => {
    if (Number.isFinite(ev.lon)) citytwin.map.flyTo({ center: [ev.lon, ev.lat], zoom: Math.max(citytwin.map.getZoom(), 16) });
    if (!ev.impact && typeof ev.id === "number") {
      try {
        const full = await api(`/map/events/${ev.id}`);
        ev.impact = full.properties.impact;
      } catch (error) {
        ev.impact = null;
      }
    }
    if (ev.impact) {
      state.impact = { title: ev.props ? eventTitle(ev.props) : ev.title || String(ev.id), answer: ev.impact };
      $("impact-panel").hidden = false;
      drawImpact(state.impact);
    }
    citytwin.shownEvent = ev.id;
  };
  return {
    items,
    show: (id) => showEvent(items.get(id)),
    add(ev) {
      const before = items.get(ev.id);
      if (before && before.impact && !ev.impact) ev.impact = before.impact;
      items.set(ev.id, ev);
      let marker = state.eventMarkers.get(ev.id);
      if (Number.isFinite(ev.lon) && Number.isFinite(ev.lat)) {
        if (!marker) {
          const dot = el("div", { class: "event-marker", dataset: { id: ev.id }, title: ev.title || ev.id });
          dot.addEventListener("click", (e) => { e.stopPropagation(); showEvent(items.get(ev.id)); });
          marker = new maplibregl.Marker({ element: dot }).setLngLat([ev.lon, ev.lat]).addTo(citytwin.map);
          state.eventMarkers.set(ev.id, marker);
        }
        marker.setLngLat([ev.lon, ev.lat]);
        marker.getElement().dataset.status = ev.status;
      }
      render();
    },
    render,
  };
}

function setStreamStatus(live) {
  state.streamLive = live;
  $("events-status").textContent = t(live ? "eventsLive" : "eventsWaiting");
  $("events-status").dataset.live = String(live);
}

async function connectEvents() {
  if (citytwin.stream) { citytwin.stream.close(); citytwin.stream = null; }
  let issued;
  try {
    issued = await api("/events/stream-token", { method: "POST" });
  } catch (error) {
    setStreamStatus(false);
    return;
  }
  if (!state.eventSeq) {
    const open = await api("/map/events?open=true");
    for (const f of [...open.features].reverse()) citytwin.events.add(eventFrom(f));
    state.eventSeq = open.seq;
  }
  const source = new EventSource(`${issued.stream}&after=${state.eventSeq}`);
  citytwin.stream = source;
  source.addEventListener("open", () => setStreamStatus(true));
  source.addEventListener("event", async (m) => {
    const change = JSON.parse(m.data);
    state.eventSeq = Math.max(state.eventSeq, change.seq || 0);
    try {
      citytwin.events.add(eventFrom(await api(`/map/events/${change.id}`)));
    } catch (error) {
      console.warn(`event ${change.id}: ${error.message}`);
    }
    refreshLive();
  });
  source.addEventListener("error", () => {
    // A network blip: EventSource reconnects by itself. A refused token (expired): a new one.
    if (source.readyState === EventSource.CLOSED && citytwin.stream === source) {
      setStreamStatus(false);
      setTimeout(connectEvents, 2000);
    }
  });
}

// ------------------------------------------------------------------ key, language, start

function setKey(key) {
  state.key = key;
  if (key) sessionStorage.setItem(KEY_STORE, key);
  else sessionStorage.removeItem(KEY_STORE);
  $("key-status").textContent = key ? t("keyActive") : t("keyNone");
}

function wireControls() {
  $("search-form").addEventListener("submit", onSearch);
  $("lang-button").addEventListener("click", () => {
    const next = language() === "zh-CN" ? "en" : "zh-CN";
    sessionStorage.setItem(LANG_STORE, next);
    applyLanguage(next);
  });
  $("crs-mode").addEventListener("change", (e) => {
    state.crsMode = e.target.value;
    if (state.lastPosition) showPosition(...state.lastPosition);
  });
  $("key-button").addEventListener("click", () => { $("key-dialog").hidden = !$("key-dialog").hidden; });
  $("key-cancel").addEventListener("click", () => { $("key-dialog").hidden = true; });
  $("key-clear").addEventListener("click", async () => { setKey(""); $("key-dialog").hidden = true; await restyle(); });
  $("key-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    setKey($("key-input").value.trim());
    $("key-input").value = "";
    $("key-dialog").hidden = true;
    await restyle();
  });
  $("draw-area").addEventListener("click", startDrawing);
  $("finish-area").addEventListener("click", finishDrawing);
  $("impact-download").addEventListener("click", downloadImpact);
  $("impact-download-gpkg").addEventListener("click", downloadGeopackage);
  $("impact-clear").addEventListener("click", () => {
    state.impact = null;
    citytwin.map.getSource("impact").setData({ type: "FeatureCollection", features: [] });
    citytwin.map.getSource("detour-heat").setData({ type: "FeatureCollection", features: [] });
    $("legend-heat").hidden = true;
    legendVisibility();
    $("impact-panel").hidden = true;
  });
}

function applyLanguage(lang) {
  setLanguage(lang);
  $("lang-button").textContent = lang === "zh-CN" ? "English" : "中文";
  $("key-status").textContent = state.key ? t("keyActive") : t("keyNone");
  setStreamStatus(Boolean(state.streamLive));
  if (state.tilesets.length) renderLayerList();
  for (const set of state.tilesets) {
    const box = document.querySelector(`input[data-layer="${set.layer}"]`);
    const visible = citytwin.map && citytwin.map.getStyle().layers.some((l) => l.metadata && l.metadata.twinLayer === set.layer
      && citytwin.map.getLayoutProperty(l.id, "visibility") !== "none");
    if (box && citytwin.map) box.checked = visible;
  }
  renderVitals();
  renderHeatLegend();
  renderLegend(citytwin.sensorCounts || null);
  if (citytwin.events) citytwin.events.render();
  if (state.impact) drawImpact(state.impact);
}

async function start() {
  wireControls();
  applyLanguage(sessionStorage.getItem(LANG_STORE) || "zh-CN");
  // Only the layer listing stands between the page and the map; the twin's title comes when it comes.
  api("/?f=json").then((landing) => { $("twin-name").textContent = landing.title.replace(/^citytwin: /, ""); })
    .catch((error) => console.warn(`landing: ${error.message}`));
  await loadTilesets();
  citytwin.marks.tilesets = Math.round(performance.now());
  renderLayerList();
  citytwin.events = makeEvents();
  const map = createMap();
  renderHeatLegend();
  renderLegend(null);
  map.on("load", () => { citytwin.marks.styleLoaded = Math.round(performance.now()); });
}

start().catch((error) => {
  console.error(error);
  document.body.dataset.error = String(error.message || error);
});
