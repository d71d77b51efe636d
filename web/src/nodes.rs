//! Several nodes in one thread: `new Engine({ nodes: 2 })` starts engines
//! with consecutive node ids, joined by core's in-memory transport, so a
//! distributed statement on the first (the coordinator) runs fragments on
//! the others without a network. In wasm there are no threads: a remote
//! fragment is a future the coordinator's operator polls.

use cascade::EngineConfig;

/// The node id of `engine`.
pub(crate) fn id(engine: &cascade::Engine) -> u64 {
    engine.root().values().node_id().unwrap_or(0)
}

/// Starts `count` engines with `config`'s settings and node ids
/// `config.node_id`, `config.node_id + 1`, …, the first being the
/// coordinator.
pub(crate) fn start(config: EngineConfig, count: u64) -> Vec<cascade::Engine> {
    let first = config.node_id;
    (0..count)
        .map(|i| {
            let mut c = config.clone();
            c.node_id = first + i;
            cascade::Engine::new(c)
        })
        .collect()
}
