// Bundles the page and the worker with esbuild into www/dist, next to the
// wasm module built by www/build.sh.
import * as esbuild from "esbuild";
import { copyFile, mkdir } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const dist = join(here, "dist");
await mkdir(dist, { recursive: true });
await esbuild.build({
  entryPoints: { main: join(here, "src/main.js"), worker: join(here, "src/worker.js") },
  outdir: dist,
  bundle: true,
  format: "esm",
  minify: true,
  sourcemap: "linked",
  target: ["chrome110", "firefox115", "safari16"],
  logLevel: "warning",
});
for (const f of ["index.html", "style.css"]) await copyFile(join(here, f), join(dist, f));
await copyFile(join(here, "pkg/cascade_web_bg.wasm"), join(dist, "cascade_web_bg.wasm"));
console.log(`built ${dist}`);
