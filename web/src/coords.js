// Coordinate read-outs: CGCS2000 lon/lat, the twin's projected CRS (transverse Mercator
// from its PROJ string) and GCJ-02, the offset convention of Chinese web maps.

export function parseProj4(text) {
  if (!text) return null;
  const p = {};
  for (const part of text.split(/\s+/)) {
    const m = part.match(/^\+(\w+)(?:=(.*))?$/);
    if (m) p[m[1]] = m[2] === undefined ? true : m[2];
  }
  let lon0, k0, x0, y0;
  if (p.proj === "tmerc") {
    lon0 = +(p.lon_0 || 0); k0 = +(p.k ?? p.k_0 ?? 1); x0 = +(p.x_0 || 0); y0 = +(p.y_0 || 0);
  } else if (p.proj === "utm") {
    lon0 = -183 + 6 * +p.zone; k0 = 0.9996; x0 = 500000; y0 = p.south ? 10000000 : 0;
  } else return null;
  let a = 6378137, f = 1 / 298.257222101; // GRS80 (CGCS2000)
  if (p.ellps === "WGS84" || p.datum === "WGS84") f = 1 / 298.257223563;
  if (p.a) a = +p.a;
  if (p.rf) f = 1 / +p.rf;
  return { lon0, k0, x0, y0, a, f, lat0: +(p.lat_0 || 0) };
}

function meridian(phi, a, e2) {
  const e4 = e2 * e2, e6 = e4 * e2;
  return a * ((1 - e2 / 4 - 3 * e4 / 64 - 5 * e6 / 256) * phi
    - (3 * e2 / 8 + 3 * e4 / 32 + 45 * e6 / 1024) * Math.sin(2 * phi)
    + (15 * e4 / 256 + 45 * e6 / 1024) * Math.sin(4 * phi)
    - (35 * e6 / 3072) * Math.sin(6 * phi));
}

// Transverse Mercator forward (Snyder 8-9 and 8-10): millimetres within a 3-degree zone.
export function transverseMercator(tm, lon, lat) {
  const rad = Math.PI / 180, e2 = tm.f * (2 - tm.f), ep2 = e2 / (1 - e2);
  const phi = lat * rad, sin = Math.sin(phi), cos = Math.cos(phi), tan = Math.tan(phi);
  const N = tm.a / Math.sqrt(1 - e2 * sin * sin), T = tan * tan, C = ep2 * cos * cos;
  const A = (lon - tm.lon0) * rad * cos;
  const M = meridian(phi, tm.a, e2), M0 = meridian(tm.lat0 * rad, tm.a, e2);
  const x = tm.k0 * N * (A + (1 - T + C) * A ** 3 / 6 + (5 - 18 * T + T * T + 72 * C - 58 * ep2) * A ** 5 / 120) + tm.x0;
  const y = tm.k0 * (M - M0 + N * tan * (A * A / 2 + (5 - T + 9 * C + 4 * C * C) * A ** 4 / 24
    + (61 - 58 * T + T * T + 600 * C - 330 * ep2) * A ** 6 / 720)) + tm.y0;
  return [x, y];
}

// GCJ-02 from WGS 84 / CGCS2000 (the published offset formula; none outside China).
export function toGcj02(lon, lat) {
  if (lon < 72.004 || lon > 137.8347 || lat < 0.8293 || lat > 55.8271) return [lon, lat];
  const a = 6378245.0, ee = 0.00669342162296594323, pi = Math.PI;
  const x = lon - 105, y = lat - 35;
  let dLat = -100 + 2 * x + 3 * y + 0.2 * y * y + 0.1 * x * y + 0.2 * Math.sqrt(Math.abs(x));
  dLat += (20 * Math.sin(6 * x * pi) + 20 * Math.sin(2 * x * pi)) * 2 / 3;
  dLat += (20 * Math.sin(y * pi) + 40 * Math.sin(y / 3 * pi)) * 2 / 3;
  dLat += (160 * Math.sin(y / 12 * pi) + 320 * Math.sin(y * pi / 30)) * 2 / 3;
  let dLon = 300 + x + 2 * y + 0.1 * x * x + 0.1 * x * y + 0.1 * Math.sqrt(Math.abs(x));
  dLon += (20 * Math.sin(6 * x * pi) + 20 * Math.sin(2 * x * pi)) * 2 / 3;
  dLon += (20 * Math.sin(x * pi) + 40 * Math.sin(x / 3 * pi)) * 2 / 3;
  dLon += (150 * Math.sin(x / 12 * pi) + 300 * Math.sin(x / 30 * pi)) * 2 / 3;
  const radLat = lat / 180 * pi;
  let magic = Math.sin(radLat);
  magic = 1 - ee * magic * magic;
  const sqrtMagic = Math.sqrt(magic);
  dLat = (dLat * 180) / ((a * (1 - ee)) / (magic * sqrtMagic) * pi);
  dLon = (dLon * 180) / (a / sqrtMagic * Math.cos(radLat) * pi);
  return [lon + dLon, lat + dLat];
}

export function formatPosition(mode, lon, lat, crs) {
  if (mode === "projected") {
    if (!crs || !crs.tm) return `${crs ? crs.id : ""} —`;
    const [x, y] = transverseMercator(crs.tm, lon, lat);
    return `${crs.id}  X ${x.toFixed(2)}  Y ${y.toFixed(2)}`;
  }
  if (mode === "gcj02") {
    const [glon, glat] = toGcj02(lon, lat);
    return `GCJ-02  ${glon.toFixed(6)}, ${glat.toFixed(6)}`;
  }
  return `CGCS2000  ${lon.toFixed(6)}, ${lat.toFixed(6)}`;
}
