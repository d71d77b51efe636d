//! What the bench targets share: where results go, and reading them back
//! for the combined table.
#![allow(dead_code)]

use std::path::PathBuf;

/// The workspace's target directory (`CARGO_TARGET_DIR` when set).
pub fn target_dir() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target"))
}

/// Criterion's output directory (`CRITERION_HOME` when set).
pub fn criterion_dir() -> PathBuf {
    std::env::var_os("CRITERION_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("criterion"))
}

/// Where the wake-latency bench leaves its numbers for the table.
pub fn wake_results() -> PathBuf {
    criterion_dir().join("wake_latency.json")
}

/// Whether the binary runs as a benchmark (`cargo bench` passes `--bench`);
/// otherwise it is a quick smoke run from `cargo test --benches`.
pub fn bench_mode() -> bool {
    std::env::args().any(|a| a == "--bench")
}
