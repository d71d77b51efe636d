// The same JS API from plain Node: the module the page uses (www/pkg,
// wasm-bindgen --target web), initialised with the wasm bytes.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFile } from "node:fs/promises";

const pkg = new URL("../../www/pkg/", import.meta.url);
const { default: init, Engine, __debugTrap } = await import(new URL("cascade_web.js", pkg));
const { isTrap, deadEngineError } = await import(new URL("../../www/src/protocol.js", import.meta.url));
await init({ module_or_path: await readFile(new URL("cascade_web_bg.wasm", pkg)) });

const HEAVY = "SELECT count(*) FROM generate_series(1, 100000000000) AS g(n)";
const identity = (user, tenant = "acme", role = "member") => ({ tenant, user, role });

test("query resolves to columns, rows and timing", async () => {
  const engine = new Engine({ nodeId: 1 });
  const conn = engine.connect(identity("alice"));
  assert.equal(typeof conn.id, "number");
  const r = await conn.query("SELECT 1 + 1 AS two, 'x' AS s");
  assert.deepEqual(r.columns, [
    { name: "two", type: "BIGINT" },
    { name: "s", type: "VARCHAR" },
  ]);
  assert.deepEqual(r.rows, [[2, "x"]]);
  assert.equal(typeof r.queryId, "number");
  assert.ok(r.elapsedMs >= 0);
  await conn.close();
});

test("errors are Errors with code, sqlstate, kind, cause and queryId", async () => {
  const engine = new Engine({ nodeId: 1 });
  const conn = engine.connect(identity("alice"));
  await assert.rejects(conn.query("SELECT * FROM missing"), (e) => {
    assert.ok(e instanceof Error);
    assert.equal(e.code, 1146);
    assert.equal(e.sqlstate, "42S02");
    assert.equal(e.kind, "error");
    assert.equal(e.cause, null);
    return true;
  });
});

test("a kill from a second connection stops a running query", async () => {
  const engine = new Engine({ nodeId: 1 });
  const a = engine.connect(identity("alice"));
  const b = engine.connect(identity("alice"));
  const running = a.query(HEAVY, { timeoutMs: 20000 }); // bounded: fails, never hangs
  running.catch(() => {});
  await new Promise((r) => setTimeout(r, 100));
  await b.query(`KILL QUERY ${a.id}`);
  await assert.rejects(running, (e) => {
    assert.equal(e.code, 1317);
    assert.equal(e.kind, "canceled");
    assert.equal(e.cause.what, "kill_query");
    assert.equal(e.cause.who, b.id);
    assert.equal(typeof e.queryId, "number");
    return true;
  });
  const r = await a.query("SELECT 1");
  const trace = engine.trace(r.queryId);
  assert.ok(trace.spans.some((s) => s.level === "Query"));
  const chrome = JSON.parse(engine.chromeTrace(r.queryId));
  assert.ok(chrome.traceEvents.every((ev) => ev.ph === "X"));
});

test("timeoutMs gives error 3024 with a statement_timeout cause", async () => {
  const engine = new Engine();
  const conn = engine.connect(identity("alice"));
  await assert.rejects(conn.query(HEAVY, { timeoutMs: 50 }), (e) => {
    assert.equal(e.code, 3024);
    assert.equal(e.kind, "deadline_exceeded");
    assert.equal(e.cause.what, "statement_timeout");
    assert.equal(e.cause.limitMs, 50);
    return true;
  });
});

// Last: the trap poisons this module instance for good.
// Before the trap test: a trap leaves this module instance unusable.
test("the playground's examples with a check answer as they say", async () => {
  const { EXAMPLES, DEMO_SETUP } = await import(new URL("../../www/src/examples.js", import.meta.url));
  const checked = EXAMPLES.filter((ex) => ex.check);
  assert.ok(checked.length > 0);
  for (const ex of checked) {
    const engine = new Engine({ nodeId: 1 });
    const conn = engine.connect(identity("alice"));
    await conn.query(DEMO_SETUP);
    const run = conn.query(ex.sql, { timeoutMs: 20_000 });
    if (ex.check.code !== undefined) {
      await assert.rejects(run, (e) => {
        assert.equal(e.code, ex.check.code, `${ex.title}: ${e.message}`);
        return true;
      });
    } else {
      const r = await run;
      const what = `${ex.title}: ${JSON.stringify(r.rows)}`;
      if (ex.check.rows !== undefined) assert.equal(r.rows.length, ex.check.rows, what);
      if (ex.check.minRows !== undefined) assert.ok(r.rows.length >= ex.check.minRows, what);
    }
    await conn.close();
    engine.shutdown();
  }
});

test("a trap is told apart from the engine's errors, and ends in a dead-engine error", async () => {
  const engine = new Engine();
  const conn = engine.connect(identity("alice"));
  const queryError = await conn.query("SELECT * FROM missing").then(() => null, (e) => e);
  assert.equal(queryError?.code, 1146);
  assert.equal(isTrap(queryError), false);
  assert.throws(() => engine.connect(42), (e) => e instanceof TypeError && !isTrap(e));
  assert.throws(() => __debugTrap("nope"), (e) => e instanceof TypeError && !isTrap(e));
  let trap = null;
  try {
    __debugTrap("stack");
  } catch (e) {
    trap = e;
  }
  assert.ok(trap, "__debugTrap('stack') threw");
  assert.ok(trap instanceof WebAssembly.RuntimeError || trap instanceof RangeError, `${trap?.name}: ${trap?.message}`);
  assert.equal(isTrap(trap), true);
  const lost = deadEngineError({ name: trap.name, message: trap.message }, true);
  assert.equal(lost.name, "EngineDeadError");
  assert.equal(lost.code, 2013);
  assert.match(lost.message, /^Lost connection to the engine during query: the engine stopped \((RangeError|RuntimeError): /);
  assert.equal(deadEngineError("gone", false).code, 2006);
});

test("W3C trace ids: a traceparent option or a sqlcommenter comment joins the caller's trace", async () => {
  const TP = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  const engine = new Engine({ nodeId: 1 });
  const conn = engine.connect(identity("alice"));
  const plain = await conn.query("SELECT 1");
  const t0 = engine.trace(plain.queryId);
  assert.match(t0.focusTraceId, /^[0-9a-f]{32}$/);
  assert.ok(t0.spans.every((s) => /^[0-9a-f]{16}$/.test(s.spanId)));
  const commented = await conn.query(`SELECT 2 /*traceparent='${TP}'*/`);
  const t1 = engine.trace(commented.queryId);
  assert.equal(t1.focusTraceId, "4bf92f3577b34da6a3ce929d0e0e4736");
  const query = t1.spans.find((s) => s.id === t1.focusId);
  assert.equal(query.remoteParentId, "00f067aa0ba902b7");
  const explicit = await conn.query("SELECT 3", { traceparent: TP.replace("00f067aa0ba902b7", "b7ad6b7169203331") });
  assert.equal(engine.trace(explicit.queryId).spans.find((s) => s.level === "Query").remoteParentId, "b7ad6b7169203331");
  // A malformed comment is ignored; a malformed option is a TypeError.
  const bad = await conn.query("SELECT 4 /*traceparent='00-nope'*/");
  assert.equal(engine.trace(bad.queryId).focusTraceId, t0.focusTraceId);
  await assert.rejects(conn.query("SELECT 5", { traceparent: "00-nope" }), (e) => e instanceof TypeError);
  await conn.close();
});
