//! The browser (and Node) host: `performance.now()` for the clock,
//! `Date.now()` for the wall clock, `setTimeout` for timers, and a yield
//! that reaches the **macrotask** queue.
//!
//! Why the yield matters: futures spawned with `wasm-bindgen-futures` run as
//! microtasks. A future that wakes itself and returns `Pending` is polled
//! again in the same microtask checkpoint, so no click, no worker message and
//! no timer gets through while a CPU-bound query runs. [`WebHost::yield_now`]
//! instead resolves a promise from a macrotask:
//!
//! | where | how |
//! | --- | --- |
//! | Node | `setImmediate` (runs after I/O and timers of this loop turn) |
//! | browser page or worker | a `MessageChannel` (not clamped to 4 ms like nested `setTimeout`) |
//! | anything else | `setTimeout(0)` |
//!
//! Invariants: JS values never leave the thread that made them (there is
//! only one in `wasm32-unknown-unknown` without threads), so the futures are
//! wrapped in [`SendWrapper`] to meet [`HostFuture`]'s `Send` bound; a timer
//! whose future is dropped is cleared, so a finished query leaves no pending
//! `setTimeout` that would keep Node alive.

use std::cell::RefCell;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use cascade::{Host, HostFuture, Instant};
use js_sys::{Array, Function, Promise, Reflect};
use send_wrapper::SendWrapper;
use wasm_bindgen::prelude::*;
use wasm_bindgen::JsCast;
use wasm_bindgen_futures::JsFuture;

#[wasm_bindgen]
extern "C" {
    #[wasm_bindgen(js_namespace = performance, js_name = now)]
    fn performance_now() -> f64;
    #[wasm_bindgen(js_name = setTimeout)]
    fn set_timeout(callback: &Function, ms: f64) -> JsValue;
    #[wasm_bindgen(js_name = clearTimeout)]
    fn clear_timeout(handle: &JsValue);
}

/// The longest delay `setTimeout` takes (2^31 - 1 ms); longer sleeps re-arm.
const MAX_TIMEOUT_MS: f64 = 2_147_483_647.0;

/// The host for `wasm32-unknown-unknown` in a browser page, a Web Worker or
/// Node.
///
/// Its epoch is the moment it was made: [`Instant`]s count nanoseconds from
/// there, at the resolution `performance.now()` gives (coarsened by
/// browsers to 5–100 µs).
#[derive(Debug, Clone)]
pub struct WebHost {
    epoch_ms: f64,
}

impl WebHost {
    /// A host whose epoch is now.
    pub fn new() -> Self {
        WebHost {
            epoch_ms: performance_now(),
        }
    }

    fn now_ms(&self) -> f64 {
        (performance_now() - self.epoch_ms).max(0.0)
    }
}

impl Default for WebHost {
    fn default() -> Self {
        Self::new()
    }
}

impl Host for WebHost {
    fn now(&self) -> Instant {
        // f64 → u64 saturates; the clock is non-negative by construction.
        Instant((self.now_ms() * 1e6) as u64)
    }

    fn unix_micros(&self) -> i64 {
        // `Date.now()`: milliseconds since the Unix epoch (f64 → i64
        // saturates; the value is integral).
        (js_sys::Date::now() * 1e3) as i64
    }

    fn sleep_until(&self, deadline: Instant) -> HostFuture {
        Box::pin(SendWrapper::new(Sleep {
            host: self.clone(),
            deadline,
            timer: None,
        }))
    }

    fn yield_now(&self) -> HostFuture {
        let tick = macrotask();
        Box::pin(SendWrapper::new(async move {
            // The promise only ever resolves.
            let _ = tick.await;
        }))
    }
}

/// How a macrotask is scheduled here, found once per thread.
enum Macrotask {
    /// Node's `setImmediate(cb)`.
    Immediate {
        global: JsValue,
        set_immediate: Function,
    },
    /// A `MessageChannel`: each waiter is queued and one message posted;
    /// `onmessage` resolves the oldest waiter.
    Channel {
        port: JsValue,
        post: Function,
        waiters: Array,
        _on_message: Closure<dyn FnMut()>,
    },
    /// `setTimeout(cb, 0)`.
    Timeout,
}

thread_local! {
    static MACROTASK: RefCell<Option<Macrotask>> = const { RefCell::new(None) };
}

fn global_fn(global: &JsValue, name: &str) -> Option<Function> {
    Reflect::get(global, &JsValue::from_str(name))
        .ok()
        .and_then(|f| f.dyn_into::<Function>().ok())
}

impl Macrotask {
    fn detect() -> Macrotask {
        let global: JsValue = js_sys::global().into();
        if let Some(set_immediate) = global_fn(&global, "setImmediate") {
            return Macrotask::Immediate {
                global,
                set_immediate,
            };
        }
        Self::channel(&global).unwrap_or(Macrotask::Timeout)
    }

    fn channel(global: &JsValue) -> Option<Macrotask> {
        let ctor = global_fn(global, "MessageChannel")?;
        let channel = Reflect::construct(&ctor, &Array::new()).ok()?;
        let receiver = Reflect::get(&channel, &"port1".into()).ok()?;
        let port = Reflect::get(&channel, &"port2".into()).ok()?;
        let post = global_fn(&port, "postMessage")?;
        let waiters = Array::new();
        let queue = waiters.clone();
        let on_message = Closure::<dyn FnMut()>::new(move || {
            if let Ok(resolve) = queue.shift().dyn_into::<Function>() {
                // A resolve function does not throw.
                let _ = resolve.call0(&JsValue::UNDEFINED);
            }
        });
        Reflect::set(&receiver, &"onmessage".into(), on_message.as_ref()).ok()?;
        Some(Macrotask::Channel {
            port,
            post,
            waiters,
            _on_message: on_message,
        })
    }

    fn schedule(&self, callback: &Function) {
        let scheduled = match self {
            Macrotask::Immediate {
                global,
                set_immediate,
            } => set_immediate.call1(global, callback).is_ok(),
            Macrotask::Channel {
                port,
                post,
                waiters,
                ..
            } => {
                waiters.push(callback);
                post.call1(port, &JsValue::NULL).is_ok()
            }
            Macrotask::Timeout => false,
        };
        if !scheduled {
            set_timeout(callback, 0.0);
        }
    }
}

/// A future that completes in a later macrotask.
fn macrotask() -> JsFuture {
    let promise = Promise::new(&mut |resolve, _reject| {
        MACROTASK.with(|m| {
            m.borrow_mut()
                .get_or_insert_with(Macrotask::detect)
                .schedule(&resolve);
        });
    });
    JsFuture::from(promise)
}

/// `sleep_until`: a `setTimeout` that is re-armed until the host clock
/// really passed the deadline (timers may fire a little early, and long
/// sleeps exceed `setTimeout`'s range), and cleared when dropped.
struct Sleep {
    host: WebHost,
    deadline: Instant,
    timer: Option<(JsFuture, JsValue)>,
}

impl Future for Sleep {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<()> {
        loop {
            if let Some((fired, _)) = self.timer.as_mut() {
                if Pin::new(fired).poll(cx).is_pending() {
                    return Poll::Pending;
                }
                self.timer = None;
            }
            let now = self.host.now();
            if now >= self.deadline {
                return Poll::Ready(());
            }
            let wait_ms = (self.deadline.0 - now.0) as f64 / 1e6;
            let wait_ms = wait_ms.ceil().clamp(0.0, MAX_TIMEOUT_MS);
            let mut handle = JsValue::UNDEFINED;
            let promise = Promise::new(&mut |resolve, _reject| {
                handle = set_timeout(&resolve, wait_ms);
            });
            self.timer = Some((JsFuture::from(promise), handle));
        }
    }
}

impl Drop for Sleep {
    fn drop(&mut self) {
        if let Some((_, handle)) = self.timer.take() {
            clear_timeout(&handle);
        }
    }
}
