// Playwright against the built playground (www/dist) served on 127.0.0.1,
// in Debian's Chromium (/usr/bin/chromium; no browser download).
import { defineConfig } from "@playwright/test";

const port = Number(process.env.E2E_PORT ?? 4391);

export const chromiumArgs = [
  "--no-sandbox",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
  "--no-first-run",
  "--disable-gpu",
  "--disable-quic",
];

export default defineConfig({
  testDir: ".",
  testMatch: /.*\.spec\.mjs$/,
  // One browser at a time: the machine has two cores, and the specs run
  // CPU-bound queries on purpose.
  workers: 1,
  timeout: 60_000,
  expect: { timeout: 10_000 },
  reporter: [["list"]],
  outputDir: "../../test-results",
  use: {
    baseURL: `http://127.0.0.1:${port}/`,
    browserName: "chromium",
    headless: true,
    acceptDownloads: true,
    launchOptions: { executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium", args: chromiumArgs },
  },
  webServer: {
    command: `node www/serve.mjs --port ${port}`,
    cwd: "../..",
    url: `http://127.0.0.1:${port}/`,
    reuseExistingServer: false,
    stdout: "ignore",
  },
});
