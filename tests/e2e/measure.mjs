// Measures the playground's budgets on the built page (run www/build.sh
// first):
//   - wasm and page JS, gzipped;
//   - time to an editable editor and to a ready engine on localhost;
//   - click on Cancel → alert shown, while a CPU-bound query runs (median of
//     ROUNDS);
//   - query throughput in Chromium (the worker) against native (the
//     `throughput` bench of cascade-web, same queries, same engine-reported
//     timing).
// Usage: node tests/e2e/measure.mjs [--no-native] [--json]
import { chromium } from "@playwright/test";
import { spawn, execFileSync } from "node:child_process";
import { readFile } from "node:fs/promises";
import { gzipSync } from "node:zlib";
import { chromiumArgs } from "./playwright.config.mjs";

const root = new URL("../../", import.meta.url);
const dist = new URL("www/dist/", root);
const args = process.argv.slice(2);
const ROUNDS = Number(process.env.CANCEL_ROUNDS ?? 15);
const HEAVY = "SELECT count(*), sum(n % 7) FROM generate_series(1, 100000000000) AS g(n)";

const gz = async (file) => gzipSync(await readFile(new URL(file, dist)), { level: 9 }).length;
const kb = (n) => `${(n / 1024).toFixed(1)} KB`;
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

async function serve() {
  const child = spawn(process.execPath, ["www/serve.mjs", "--port", "0", "--quiet"], {
    cwd: root,
    stdio: ["ignore", "pipe", "inherit"],
  });
  const port = await new Promise((resolve, reject) => {
    child.stdout.once("data", (d) => resolve(Number(String(d).trim())));
    child.once("exit", (code) => reject(new Error(`server exited ${code}`)));
  });
  return { child, url: `http://127.0.0.1:${port}/` };
}

async function setSql(page, sql) {
  await page.getByLabel("SQL editor").click();
  await page.keyboard.press("ControlOrMeta+a");
  await page.keyboard.insertText(sql);
}

const out = {};
out.size = {
  wasmGzip: await gz("cascade_web_bg.wasm"),
  jsGzip: (await gz("main.js")) + (await gz("worker.js")),
  cssGzip: await gz("style.css"),
};

const server = await serve();
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
  args: chromiumArgs,
});
try {
  const page = await browser.newPage();
  await page.goto(server.url);
  await page.waitForSelector("body[data-ready=true]", { timeout: 60_000 });
  out.load = await page.evaluate(() => ({
    editorMs: Number(document.body.dataset.editorMs),
    engineReadyMs: Number(document.body.dataset.readyMs),
  }));

  // Cancel → alert.
  const cancel = [];
  for (let i = 0; i < ROUNDS; i++) {
    await setSql(page, HEAVY);
    await page.getByRole("button", { name: "Run", exact: true }).click();
    await page.getByRole("button", { name: "Cancel", exact: true }).waitFor();
    await page.waitForTimeout(150 + ((i * 37) % 100));
    cancel.push(
      await page.evaluate(
        () =>
          new Promise((resolve) => {
            const alert = document.getElementById("alert");
            const button = document.getElementById("run");
            let t0 = 0;
            const mo = new MutationObserver(() => {
              if (!alert.hidden && alert.textContent.includes("1317")) {
                mo.disconnect();
                const dom = performance.now() - t0;
                requestAnimationFrame(() => resolve({ dom, frame: performance.now() - t0 }));
              }
            });
            mo.observe(alert, { attributes: true, childList: true, subtree: true, characterData: true });
            t0 = performance.now();
            button.click();
          }),
      ),
    );
    await page.getByRole("button", { name: "Run", exact: true }).waitFor();
  }
  out.cancel = {
    rounds: ROUNDS,
    medianMs: median(cancel.map((c) => c.dom)),
    maxMs: Math.max(...cancel.map((c) => c.dom)),
    medianToFrameMs: median(cancel.map((c) => c.frame)),
  };

  // Throughput in the browser's worker.
  const workload = JSON.parse(await readFile(new URL("web/benches/queries.json", root), "utf8"));
  out.browser = await page.evaluate(async (w) => {
    const client = window.cascadePlayground.client;
    const c = await client.connect({ tenant: "bench", user: "bench", role: "member" });
    for (const s of w.setup) await c.query(s);
    const res = {};
    for (const q of w.queries) {
      const times = [];
      for (let i = 0; i < 9; i++) times.push((await c.query(q.sql, { maxRows: 10 })).elapsedMs);
      times.sort((a, b) => a - b);
      res[q.name] = times[4];
    }
    await c.close();
    return res;
  }, workload);
} finally {
  await browser.close();
  server.child.kill();
}

if (!args.includes("--no-native")) {
  const json = execFileSync("cargo", ["bench", "-q", "-p", "cascade-web", "--bench", "throughput"], {
    cwd: root,
    encoding: "utf8",
    stdio: ["ignore", "pipe", "inherit"],
  });
  out.native = JSON.parse(json.trim().split("\n").at(-1));
}

if (args.includes("--json")) {
  console.log(JSON.stringify(out, null, 2));
} else {
  const s = out.size;
  console.log("| measure | budget | measured |\n| --- | --- | --- |");
  console.log(`| wasm, gzipped | ≤ 1 MB | ${kb(s.wasmGzip)} |`);
  console.log(`| page JS (main + worker), gzipped | ≤ 300 KB | ${kb(s.jsGzip)} (+ ${kb(s.cssGzip)} CSS) |`);
  console.log(`| editor editable after load | — | ${out.load.editorMs.toFixed(0)} ms |`);
  console.log(`| engine ready (wasm + demo tables) | ≤ 1 s | ${out.load.engineReadyMs.toFixed(0)} ms |`);
  console.log(`| Cancel click → alert (median of ${out.cancel.rounds}) | ≤ 50 ms | ${out.cancel.medianMs.toFixed(1)} ms (max ${out.cancel.maxMs.toFixed(1)} ms; next frame ${out.cancel.medianToFrameMs.toFixed(1)} ms) |`);
  console.log("\n| query | native (ms) | Chromium worker (ms) | browser / native throughput |\n| --- | --- | --- | --- |");
  for (const [name, b] of Object.entries(out.browser)) {
    const n = out.native?.[name];
    const ratio = n === undefined ? "—" : `${((n / b) * 100).toFixed(0)} %`;
    console.log(`| ${name} | ${n === undefined ? "—" : n.toFixed(1)} | ${b.toFixed(1)} | ${ratio} |`);
  }
}
