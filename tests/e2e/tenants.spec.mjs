// The playground's tenants (www/src/tenants.js): every tab and the session
// line say which tenant a session is, the session form shows a tenant's
// limits, and the memory-budget example stops its greedy query with 1041
// naming the tenant's budget while another tenant's query goes on.
import { HEAVY, expect, test } from "./fixtures.mjs";

async function openPlayground(page) {
  await page.goto("/");
  await expect(page.locator("body[data-ready=true]")).toHaveCount(1, { timeout: 30_000 });
}

test("each session shows its tenant; the form shows a tenant's limits", async ({ page }) => {
  await openPlayground(page);
  const first = page.getByRole("tab").first();
  await expect(first.locator(".tenant-chip")).toHaveText("acme");
  await expect(page.locator("#session-info .session-tenant")).toHaveAttribute("data-tenant", "acme");
  await expect(page.locator("#session-info")).toContainText("Tenant acme");

  await page.getByRole("button", { name: "New session" }).click();
  await page.getByLabel("Tenant").fill("initech");
  await expect(page.locator("#tenant-limits")).toHaveText(/^initech: memory budget 32 MiB shared by its statements · max 4 connections/);
  await page.getByLabel("User").fill("dave");
  await page.getByRole("button", { name: "Connect", exact: true }).click();
  await expect(page.getByRole("tab")).toHaveCount(2);
  const second = page.getByRole("tab").nth(1);
  await expect(second).toHaveAttribute("aria-selected", "true");
  await expect(second.locator(".tenant-chip")).toHaveText("initech");
  await expect(page.locator("#session-info .session-tenant")).toHaveAttribute("data-tenant", "initech");
  await expect(page.locator("#session-info")).toContainText("memory budget 32 MiB");
  // Its default max_execution_time comes from the tenant.
  await page.getByLabel("SQL editor").click();
  await page.keyboard.press("ControlOrMeta+a");
  await page.keyboard.insertText("SELECT @@max_execution_time, @@cascade_tenant_memory_budget");
  await page.getByRole("button", { name: "Run", exact: true }).click();
  await expect(page.getByRole("table", { name: "Results" }).getByRole("cell")).toHaveText(["60000", "33554432"]);
});

test("a tenant's memory budget stops its greedy query while another tenant's goes on", async ({ page }) => {
  await openPlayground(page);
  // acme's long query runs in the first tab.
  await page.getByLabel("SQL editor").click();
  await page.keyboard.press("ControlOrMeta+a");
  await page.keyboard.insertText(HEAVY);
  await page.getByRole("button", { name: "Run", exact: true }).click();
  await expect(page.getByRole("button", { name: "Cancel", exact: true })).toBeVisible();
  const acmeTab = page.getByRole("tab").first();

  // The example opens a session of its tenant.
  await page.getByLabel("Examples").selectOption({ label: "A tenant's memory budget stops a greedy query (tenant initech)" });
  await expect(page.getByRole("tab")).toHaveCount(2);
  await expect(page.getByRole("tab").nth(1).locator(".tenant-chip")).toHaveText("initech");
  await expect(page.locator("#session-info .session-tenant")).toHaveAttribute("data-tenant", "initech");
  await page.getByRole("button", { name: "Run", exact: true }).click();
  const alert = page.getByRole("alert");
  await expect(alert).toContainText("1041", { timeout: 30_000 });
  await expect(alert).toContainText("memory budget of tenant 'initech' (33554432 bytes");

  // acme's query goes on.
  await expect(acmeTab.locator(".badge")).toHaveText("running");
  await acmeTab.click();
  await expect(page.getByRole("button", { name: "Cancel", exact: true })).toBeVisible();
  const row = page.getByRole("table", { name: "Process list" }).locator(`tr[data-connection-id="${await acmeTab.getAttribute("data-connection-id")}"]`);
  await expect(row).toHaveClass(/running/);
  await page.getByRole("button", { name: "Cancel", exact: true }).click();
  await expect(page.getByRole("alert")).toContainText("1317");
});
