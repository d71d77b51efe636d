//! # cascade-web
//!
//! The browser face of [`cascade`]: a thin `wasm-bindgen` layer with
//!
//! * [`WebHost`]: clock from `performance.now()`, timers from `setTimeout`,
//!   and a yield that reaches the macrotask queue, so a click or a worker
//!   message gets through while a CPU-bound query runs;
//! * the JS API: `Engine`, `Connection`, results, errors with MySQL code,
//!   SQLSTATE, kind and cause, traces (JSON and Chrome Trace Event), the
//!   live context tree and the process list;
//! * several nodes in one thread (`new Engine({ nodes: 2 })`), joined by
//!   core's in-memory transport, for statements that span nodes without a
//!   network (docs/web.md, "More than one node");
//! * `__debugTrap(mode)`, fault injection that traps the instance for real,
//!   for the page's dead-engine tests (never called by the API itself);
//! * a switch (`setDevtoolsTimings`) that bridges `tracing` spans to the
//!   DevTools Performance panel through `tracing-wasm`.
//!
//! No engine logic lives here: every rule is core's, this crate converts.
//!
//! # Examples
//!
//! From JS (a page, a worker or Node), after `wasm-bindgen --target web`:
//!
//! ```js
//! import init, { Engine } from "./pkg/cascade_web.js";
//! await init();                       // Node: await init({ module_or_path: bytes })
//! const engine = new Engine({ nodeId: 1 });
//! const alice = engine.connect({ tenant: "acme", user: "alice", role: "member" });
//! const r = await alice.query("select 1 + 1 as two", { timeoutMs: 1000 });
//! console.log(r.columns, r.rows, r.elapsedMs);
//! try {
//!   await alice.query("select nope");
//! } catch (e) {
//!   console.log(e.code, e.sqlstate, e.kind, e.cause, e.queryId, e.message);
//! }
//! console.log(engine.chromeTrace(r.queryId));
//! await alice.close();
//! ```

mod api;
mod convert;
mod debug;
mod devtools;
pub mod host;
mod nodes;

pub use api::{Connection, Engine};
pub use debug::debug_trap;
pub use devtools::{devtools_timings, set_devtools_timings};
pub use host::WebHost;

/// Installs `console_error_panic_hook` (feature `panic-hook`, diagnostics
/// only).
#[cfg(feature = "panic-hook")]
#[wasm_bindgen::prelude::wasm_bindgen(start)]
pub fn start() {
    console_error_panic_hook::set_once();
}
