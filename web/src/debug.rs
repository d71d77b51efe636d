//! Fault injection for the page's dead-engine handling: `__debugTrap(mode)`
//! makes this WebAssembly instance trap for real, the way a bug in the
//! engine would, so the worker's and the page's recovery can be tested end
//! to end (`tests/e2e/engine-death.spec.mjs`).
//!
//! Nothing reaches it by accident: it is not a method of `Engine` or
//! `Connection`, SQL cannot call it, and the page calls it only through its
//! documented debug hook (`cascadePlayground.debug.crashEngine(mode)`, see
//! docs/web.md). After it runs, the instance is poisoned (the shadow stack
//! pointer and any `RefCell` borrowed by the trapped frames are never
//! restored) and must be thrown away, which is exactly the state the page
//! has to detect.

use std::hint::black_box;

use cascade::Host;
use js_sys::Promise;
use wasm_bindgen::prelude::*;
use wasm_bindgen_futures::future_to_promise;

use crate::convert::type_error;
use crate::host::WebHost;

/// `__debugTrap(mode)`: traps this instance.
///
/// * `"unreachable"`: after one macrotask, an `unreachable` trap inside a
///   spawned future (where a statement runs, so where a panic or an
///   out-of-memory abort of a statement lands). The returned promise never
///   settles; the trap surfaces as an uncaught `WebAssembly.RuntimeError`.
/// * `"stack"`: unbounded recursion now; the call throws the trap
///   (`RangeError: Maximum call stack size exceeded`, or a
///   `RuntimeError` once the shadow stack runs out, whichever comes first).
///
/// Any other mode is a `TypeError` and traps nothing.
#[wasm_bindgen(js_name = __debugTrap)]
pub fn debug_trap(mode: &str) -> Result<Promise, JsValue> {
    match mode {
        "unreachable" => Ok(future_to_promise(async {
            WebHost::new().yield_now().await;
            // On wasm32 `abort` is the `unreachable` instruction, which is
            // what a panic (panic = "abort") or an allocation failure ends in.
            std::process::abort()
        })),
        "stack" => {
            let depth = recurse(black_box(u64::MAX), &mut [0; 64]);
            Ok(Promise::resolve(&JsValue::from_f64(depth as f64)))
        }
        other => Err(type_error(&format!(
            "__debugTrap(mode): expected \"unreachable\" or \"stack\", got {other:?}"
        ))),
    }
}

/// Recursion as deep as `depth` (never reached: the stack runs out first),
/// with a frame on the shadow stack that the optimiser cannot remove.
fn recurse(depth: u64, parent: &mut [u8; 64]) -> u64 {
    let mut frame = [0u8; 64];
    frame[0] = parent[0].wrapping_add(1);
    black_box(&mut frame);
    if depth == 0 {
        return u64::from(frame[0]);
    }
    1 + recurse(depth - 1, &mut frame) + u64::from(black_box(frame[1]))
}
