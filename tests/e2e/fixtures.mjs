// What the playground specs share: a `test` that fails on any console error
// or uncaught exception in the page, and a statement that runs for minutes
// unless stopped.
import { test as base, expect } from "@playwright/test";

export { expect };

/** CPU-bound for minutes unless stopped. */
export const HEAVY = "SELECT count(*), sum(n % 7) FROM generate_series(1, 100000000000) AS g(n)";

// Every test fails on a console error or an uncaught exception in the page.
export const test = base.extend({
  page: async ({ page }, use) => {
    const errors = [];
    page.on("console", (m) => {
      if (m.type() === "error") errors.push(m.text());
    });
    page.on("pageerror", (e) => errors.push(String(e)));
    await use(page);
    expect(errors, "console errors").toEqual([]);
  },
});
