// The playground's tenants and their limits: the worker builds its Engine
// with them (`new Engine({ tenants: TENANTS })`), the session form offers
// them and every tab and the session line say which tenant a session is.
// Limits are per tenant and carried by each connection's context: its
// `max_connections`, a memory budget shared by all its running statements
// (the statement that crosses it fails with 1041 naming the tenant) and a
// default `max_execution_time` (a session's SET overrides it).

const MIB = 1 << 20;

/** Tenant name → { maxConnections, memoryBudget (bytes), maxExecutionTime (ms) }. */
export const TENANTS = {
  acme: {},
  globex: { maxConnections: 8 },
  initech: { maxConnections: 4, memoryBudget: 32 * MIB, maxExecutionTime: 60_000 },
};

/** "memory budget 32 MiB · max 4 connections · max_execution_time 60 s", or "no limits". */
export function describeLimits(tenant) {
  const t = TENANTS[tenant];
  if (!t) return "not configured: no limits";
  const parts = [];
  if (t.memoryBudget != null) parts.push(`memory budget ${formatBytes(t.memoryBudget)} shared by its statements`);
  if (t.maxConnections != null) parts.push(`max ${t.maxConnections} connections`);
  if (t.maxExecutionTime) parts.push(`max_execution_time ${t.maxExecutionTime / 1000} s`);
  return parts.length ? parts.join(" · ") : "no limits";
}

/** 33554432 → "32 MiB". */
export function formatBytes(n) {
  if (n >= MIB && n % MIB === 0) return `${n / MIB} MiB`;
  if (n >= MIB) return `${(n / MIB).toFixed(1)} MiB`;
  if (n >= 1024) return `${Math.round(n / 1024)} KiB`;
  return `${n} B`;
}

/** A stable hue per tenant name, for its chip on tabs and rows. */
export function tenantHue(tenant) {
  let h = 0;
  for (const ch of tenant) h = (h * 31 + ch.codePointAt(0)) % 360;
  return h;
}
