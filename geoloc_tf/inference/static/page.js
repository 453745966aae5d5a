// The page of `geoloc serve`: a photo in, its answer on a world map out.
// Talks only to the server that sent it: GET /healthz, GET /basemap.geojson, POST /predict
// (the same endpoint and limits as any client), GET /cells?ids=... for the cells' polygons.
"use strict";

const CELL_CHUNK = 500; // ids per GET /cells (the server takes at most 1000)
const MAX_CELLS_DRAWN = 5000; // a 90 % region wider than this is drawn in part, and says so
const NEIGHBOURS = 6; // nearest indexed photos asked for (Figure 4 of the paper shows 6)
const COLOURS = {
  ocean: "#cfe0ec",
  land: "#f1ede4",
  coast: "#7d8b95",
  border: "#b7ab98",
  set90: "rgba(253, 141, 60, 0.35)",
  set90Edge: "rgba(217, 95, 14, 0.55)",
  set50: "rgba(215, 48, 31, 0.6)",
  top: "#400",
  label: "#b00",
  neighbour: "#1f5fbf",
};

const WORLD = { lon0: -180, lon1: 180, lat0: -90, lat1: 90 };
const MIN_SPAN_DEG = 24; // the narrowest view, in longitude
const state = {
  basemap: null,
  credit: "",
  server: null,
  answer: null,
  cells: new Map(),
  file: null,
  view: WORLD,
};
const $ = (id) => document.getElementById(id);

// ------------------------------------------------------------------ map
// Equirectangular: x from longitude, y from latitude, over the current view (the world, or the
// answer's region when "zoom" is on).
function project(canvas, lon, lat) {
  const v = state.view;
  return [
    ((lon - v.lon0) / (v.lon1 - v.lon0)) * canvas.width,
    ((v.lat1 - lat) / (v.lat1 - v.lat0)) * canvas.height,
  ];
}

// The view that holds the answer's cells and label points with a margin, at the canvas's 2:1
// aspect; the world when they span more than half of it (or straddle the 180th meridian).
function viewOf(answer) {
  if (!answer || !$("zoom").checked) return WORLD;
  const [set50, set90] = massCells(answer);
  const lons = [];
  const lats = [];
  for (const id of [...answer.top_k.map((t) => t.cell), ...set50, ...set90]) {
    const feature = state.cells.get(id);
    if (!feature) continue;
    for (const polygon of polygonsOf(feature.geometry)) {
      for (const ring of polygon) {
        for (const [lon, lat] of ring) {
          lons.push(lon);
          lats.push(lat);
        }
      }
    }
  }
  if (!lons.length) return WORLD;
  const west = Math.min(...lons);
  const east = Math.max(...lons);
  const south = Math.min(...lats);
  const north = Math.max(...lats);
  const lonSpan = Math.max((east - west) * 1.3, 2 * (north - south) * 1.3, MIN_SPAN_DEG);
  if (lonSpan > 180) return WORLD;
  const latSpan = lonSpan / 2;
  const lonMid = (west + east) / 2;
  const latMid = Math.min(Math.max((south + north) / 2, -90 + latSpan / 2), 90 - latSpan / 2);
  return {
    lon0: lonMid - lonSpan / 2,
    lon1: lonMid + lonSpan / 2,
    lat0: latMid - latSpan / 2,
    lat1: latMid + latSpan / 2,
  };
}

function tracePolygon(ctx, canvas, rings) {
  for (const ring of rings) {
    ring.forEach(([lon, lat], i) => {
      const [x, y] = project(canvas, lon, lat);
      if (i === 0) ctx.moveTo(x, y);
      else ctx.lineTo(x, y);
    });
    ctx.closePath();
  }
}

function polygonsOf(geometry) {
  if (geometry.type === "Polygon") return [geometry.coordinates];
  if (geometry.type === "MultiPolygon") return geometry.coordinates;
  return [];
}

function drawCells(ctx, canvas, ids, fill, stroke, width) {
  let drawn = 0;
  for (const id of ids) {
    const feature = state.cells.get(id);
    if (!feature) continue;
    ctx.beginPath();
    for (const polygon of polygonsOf(feature.geometry)) tracePolygon(ctx, canvas, polygon);
    if (fill) {
      ctx.fillStyle = fill;
      ctx.fill("evenodd");
    }
    if (stroke) {
      ctx.strokeStyle = stroke;
      ctx.lineWidth = width;
      ctx.stroke();
    }
    drawn += 1;
  }
  return drawn;
}

function dot(ctx, x, y, radius, fill, stroke, width) {
  ctx.beginPath();
  ctx.arc(x, y, radius, 0, 2 * Math.PI);
  ctx.fillStyle = fill;
  ctx.fill();
  if (stroke) {
    ctx.strokeStyle = stroke;
    ctx.lineWidth = width;
    ctx.stroke();
  }
}

function drawMap() {
  const canvas = $("map");
  const ctx = canvas.getContext("2d");
  state.view = viewOf(state.answer);
  ctx.fillStyle = COLOURS.ocean;
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (state.basemap) {
    const land = state.basemap.features.find((f) => f.id === "land");
    const borders = state.basemap.features.find((f) => f.id === "borders");
    ctx.beginPath();
    for (const polygon of land.geometry.coordinates) tracePolygon(ctx, canvas, polygon);
    ctx.fillStyle = COLOURS.land;
    ctx.fill("evenodd");
    ctx.strokeStyle = COLOURS.coast;
    ctx.lineWidth = 0.7;
    ctx.stroke();
    ctx.beginPath();
    for (const line of borders.geometry.coordinates) {
      line.forEach(([lon, lat], i) => {
        const [x, y] = project(canvas, lon, lat);
        if (i === 0) ctx.moveTo(x, y);
        else ctx.lineTo(x, y);
      });
    }
    ctx.strokeStyle = COLOURS.border;
    ctx.lineWidth = 0.5;
    ctx.stroke();
  }
  let drawnCells = 0;
  const answer = state.answer;
  if (answer) {
    const [set50, set90] = massCells(answer);
    drawnCells += drawCells(ctx, canvas, set90, COLOURS.set90, COLOURS.set90Edge, 0.5);
    drawnCells += drawCells(ctx, canvas, set50, COLOURS.set50, null, 0);
    drawnCells += drawCells(ctx, canvas, answer.top_k.map((t) => t.cell), null, COLOURS.top, 1.5);
    ctx.font = "bold 13px sans-serif";
    ctx.textAlign = "left";
    ctx.textBaseline = "bottom";
    answer.top_k.forEach((t) => {
      const [x, y] = project(canvas, t.lon, t.lat);
      dot(ctx, x, y, 2.5, COLOURS.top, null, 0);
      ctx.fillStyle = COLOURS.top;
      ctx.fillText(String(t.rank), x + 4, y - 2);
    });
    for (const n of answer.neighbours || []) {
      const [x, y] = project(canvas, n.lon, n.lat);
      dot(ctx, x, y, 4, COLOURS.neighbour, "#fff", 1);
    }
    const [x, y] = project(canvas, answer.lon, answer.lat);
    dot(ctx, x, y, 7, "#fff", COLOURS.label, 3.5);
    dot(ctx, x, y, 2, COLOURS.label, null, 0);
  }
  ctx.font = "11px sans-serif";
  ctx.fillStyle = "#555";
  ctx.textAlign = "left";
  ctx.textBaseline = "bottom";
  ctx.fillText(state.credit, 6, canvas.height - 4);
  const v = state.view;
  canvas.dataset.view = [v.lon0, v.lon1, v.lat0, v.lat1].map((d) => d.toFixed(2)).join(",");
  canvas.dataset.cellsDrawn = String(drawnCells);
  canvas.dataset.state = answer ? "answer" : state.basemap ? "basemap" : "blank";
}

// The 50 % and 90 % sets' cells (empty when unknown), capped at MAX_CELLS_DRAWN together.
function massCells(answer) {
  const sets = answer.mass_sets.map((s) => s.cells || []);
  const set50 = sets[0] || [];
  const set90 = (sets[1] || []).slice(0, MAX_CELLS_DRAWN);
  return [set50.slice(0, MAX_CELLS_DRAWN), set90];
}

// ------------------------------------------------------------------ requests
async function errorText(response) {
  try {
    const body = await response.json();
    if (body && body.error) return `${response.status}: ${body.error}`;
  } catch (ignored) {
    // not JSON: say the status
  }
  return `${response.status} ${response.statusText || "error"} from the server`;
}

async function getJson(path) {
  const response = await fetch(path, { headers: { Accept: "application/json" } });
  if (!response.ok) throw new Error(await errorText(response));
  return response.json();
}

async function loadCells(ids) {
  const missing = [...new Set(ids)].filter((id) => !state.cells.has(id));
  for (let i = 0; i < missing.length; i += CELL_CHUNK) {
    const chunk = missing.slice(i, i + CELL_CHUNK);
    const collection = await getJson(`/cells?ids=${chunk.join(",")}`);
    collection.features.forEach((feature, j) => state.cells.set(chunk[j], feature));
  }
}

function showError(message) {
  const box = $("error");
  box.textContent = message;
  box.hidden = !message;
}

async function locate(event) {
  if (event) event.preventDefault();
  if (!state.file) return;
  const form = new FormData();
  form.append("image", state.file, state.file.name || "photo");
  const postedAt = $("posted-at").value;
  if (postedAt) form.append("posted_at", postedAt.length === 16 ? `${postedAt}:00Z` : `${postedAt}Z`);
  const outdoor = $("outdoor").value.trim();
  if (outdoor) form.append("outdoor", outdoor);
  const k = $("top-k").value.trim();
  if (k) form.append("top_k", k);
  if (state.server && state.server.index) form.append("neighbours", String(NEIGHBOURS));
  showError("");
  $("busy").hidden = false;
  $("locate").disabled = true;
  try {
    let response;
    try {
      response = await fetch("/predict", { method: "POST", body: form });
    } catch (failure) {
      throw new Error(`the server did not answer (${failure.message})`);
    }
    if (!response.ok) throw new Error(await errorText(response));
    const answer = await response.json();
    const [set50, set90] = massCells(answer);
    await loadCells([...answer.top_k.map((t) => t.cell), ...set50, ...set90]);
    state.answer = answer;
    showAnswer(answer);
  } catch (failure) {
    state.answer = null;
    $("answer").hidden = true;
    showError(`Error ${failure.message}`);
    showNeighbours(null);
  } finally {
    $("busy").hidden = true;
    $("locate").disabled = false;
    drawMap();
  }
}

// ------------------------------------------------------------------ the answer in words
function cell(text) {
  const td = document.createElement("td");
  td.textContent = text;
  return td;
}

function showAnswer(answer) {
  const model = answer.model.toUpperCase();
  $("model").textContent =
    model === "M2"
      ? `Answered by M2 (the photo and its posting time ${answer.posted_at})`
      : "Answered by M1 (the photo's pixels)";
  $("model").dataset.model = model;
  const top = answer.top_k[0];
  $("top-cell").textContent =
    `Top cell ${top.cell} (${(100 * top.probability).toFixed(1)} %): label point ` +
    `${top.lat.toFixed(4)}, ${top.lon.toFixed(4)}`;
  $("top-cell").dataset.cell = String(top.cell);
  $("top-cell").dataset.lat = String(top.lat);
  $("top-cell").dataset.lon = String(top.lon);
  $("mass").textContent = answer.mass_sets
    .map((s) => {
      const level = `${Math.round(100 * s.level)} %`;
      if (s.num_cells === null) return `${level}: ${s.note}`;
      const area = Math.round(s.area_km2).toLocaleString("en");
      const part = s.num_cells > MAX_CELLS_DRAWN ? ` (${MAX_CELLS_DRAWN} drawn)` : "";
      return `${level} of the probability: ${s.num_cells} cells${part}, ${area} km\u00b2`;
    })
    .join("; ");
  const body = $("probabilities").querySelector("tbody");
  body.replaceChildren(
    ...answer.top_k.map((t) => {
      const row = document.createElement("tr");
      row.dataset.cell = String(t.cell);
      row.dataset.probability = String(t.probability);
      row.append(
        cell(String(t.rank)),
        cell(String(t.cell)),
        cell(`${(100 * t.probability).toFixed(2)} %`),
        cell(t.lat.toFixed(4)),
        cell(t.lon.toFixed(4))
      );
      return row;
    })
  );
  $("answer").hidden = false;
  showNeighbours(answer.neighbours || null);
}

function showNeighbours(neighbours) {
  const table = $("neighbours");
  const body = table.querySelector("tbody");
  body.replaceChildren();
  if (!state.server || !state.server.index) {
    table.hidden = true;
    return;
  }
  if (!neighbours) {
    table.hidden = true;
    return;
  }
  body.replaceChildren(
    ...neighbours.map((n) => {
      const row = document.createElement("tr");
      row.dataset.distance = String(n.distance);
      row.append(
        cell(String(n.rank)),
        cell(n.distance.toFixed(3)),
        cell(n.lat.toFixed(4)),
        cell(n.lon.toFixed(4)),
        cell(Math.round(n.km_from_answer).toLocaleString("en"))
      );
      return row;
    })
  );
  table.hidden = false;
}

// ------------------------------------------------------------------ choosing a photo
function choose(file) {
  if (!file) return;
  state.file = file;
  const preview = $("preview");
  if (preview.src) URL.revokeObjectURL(preview.src);
  preview.src = URL.createObjectURL(file);
  preview.hidden = false;
  $("drop-text").textContent = file.name || "photo";
  locate(null);
}

function setUp() {
  const drop = $("drop");
  $("photo").addEventListener("change", () => choose($("photo").files[0]));
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    choose(event.dataTransfer.files[0]);
  });
  $("form").addEventListener("submit", locate);
  $("zoom").addEventListener("change", drawMap);
  drawMap();
  getJson("/healthz")
    .then((health) => {
      state.server = health;
      $("top-k").value = String(health.top_k);
      const m2 = health.m2 ? "M2 answers when a posting time is given" : "no M2 in this run: M1 answers";
      const index = health.index
        ? `${health.index.photos.toLocaleString("en")} indexed photos`
        : "no feature index";
      $("server-status").textContent = `model ${health.model}, ${health.num_cells} cells; ${m2}; ${index}`;
      const noIndex = $("no-index");
      noIndex.hidden = Boolean(health.index);
      noIndex.textContent = health.index
        ? ""
        : "This server has no feature index, so no nearest photos are shown " +
          "(build one with geoloc index, then start geoloc serve with --index=DIR).";
      $("locate").disabled = false;
    })
    .catch((failure) => showError(`Error ${failure.message}`));
  getJson("/basemap.geojson")
    .then((basemap) => {
      state.basemap = basemap;
      state.credit = (basemap.properties && basemap.properties.credit) || "";
      $("credit").textContent = state.credit;
      drawMap();
    })
    .catch((failure) => showError(`Error loading the basemap: ${failure.message}`));
}

// For a reader of the canvas (the browser tests): where a point is drawn.
window.geolocMap = { project: (lon, lat) => project($("map"), lon, lat) };
document.addEventListener("DOMContentLoaded", setUp);
