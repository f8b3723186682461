// Builds the one-map page into the API's package data (api/static/): one bundled
// script (MapLibre GL JS included), its stylesheet, the page and its styles.
// Run by scripts/setup.sh; nothing here is fetched at run time.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "api", "static");
mkdirSync(out, { recursive: true });

await build({
  entryPoints: [join(here, "src", "main.js")],
  bundle: true,
  minify: true,
  format: "iife",
  target: ["es2020"],
  outfile: join(out, "app.js"),
  logLevel: "warning",
});
copyFileSync(join(here, "node_modules", "maplibre-gl", "dist", "maplibre-gl.css"), join(out, "maplibre-gl.css"));
copyFileSync(join(here, "src", "style.css"), join(out, "style.css"));
copyFileSync(join(here, "src", "index.html"), join(out, "index.html"));
const pkg = JSON.parse(readFileSync(join(here, "node_modules", "maplibre-gl", "package.json"), "utf8"));
writeFileSync(join(out, "BUILD.json"), JSON.stringify({ "maplibre-gl": pkg.version }) + "\n");
console.log(`built the one-map page into ${out} (maplibre-gl ${pkg.version})`);
