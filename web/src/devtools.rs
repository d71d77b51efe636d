//! The bridge from `tracing` spans to the DevTools Performance panel, via
//! `tracing-wasm` (`performance.mark` / `performance.measure`).
//!
//! Off by default: `tracing-wasm` never clears its marks, so a page that
//! leaves it on grows without bound. The first `setDevtoolsTimings(true)`
//! installs a global subscriber whose only layer is `tracing-wasm` behind a
//! filter that reads one atomic flag; later calls flip the flag. The page's
//! own trace inspector reads core's recorder, never these marks.

use std::sync::atomic::{AtomicBool, Ordering};

use tracing_subscriber::layer::{Layer, SubscriberExt};
use wasm_bindgen::prelude::*;

static ENABLED: AtomicBool = AtomicBool::new(false);
static INSTALLED: AtomicBool = AtomicBool::new(false);

/// `setDevtoolsTimings(on)`: turns the DevTools bridge on or off. Returns
/// whether it is on.
#[wasm_bindgen(js_name = setDevtoolsTimings)]
pub fn set_devtools_timings(on: bool) -> bool {
    ENABLED.store(on, Ordering::Relaxed);
    if on && !INSTALLED.swap(true, Ordering::AcqRel) {
        let config = tracing_wasm::WASMLayerConfigBuilder::new()
            .set_console_config(tracing_wasm::ConsoleConfig::NoReporting)
            .set_report_logs_in_timings(true)
            .build();
        let layer = tracing_wasm::WASMLayer::new(config).with_filter(
            tracing_subscriber::filter::filter_fn(|_| ENABLED.load(Ordering::Relaxed)),
        );
        let subscriber = tracing_subscriber::registry().with(layer);
        // Fails only if the embedder installed its own subscriber first;
        // theirs then sees the spans, which is what they asked for.
        let _ = tracing::subscriber::set_global_default(subscriber);
    }
    devtools_timings()
}

/// `devtoolsTimings()`: whether the DevTools bridge is on.
#[wasm_bindgen(js_name = devtoolsTimings)]
pub fn devtools_timings() -> bool {
    ENABLED.load(Ordering::Relaxed)
}
