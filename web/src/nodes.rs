//! Several nodes in one thread: `new Engine({ nodes: 2 })` starts engines
//! with consecutive node ids joined by core's in-memory transport
//! ([`cascade::cluster::LocalNodes`]), so a distributed statement on the
//! first (the coordinator, the one connections reach) runs fragments on the
//! others without a network. In wasm there are no threads: a remote
//! fragment is a future the coordinator's operator polls.

use cascade::cluster::LocalNodes;
use cascade::EngineConfig;

/// Starts `count` engines with `config`'s settings and node ids
/// `config.node_id`, `config.node_id + 1`, …, the first being the
/// coordinator. With more than one, they are joined by a [`LocalNodes`]
/// (which holds them weakly: the returned engines keep them alive).
pub(crate) fn start(config: EngineConfig, count: u64) -> Vec<cascade::Engine> {
    let first = config.node_id;
    let hub = (count > 1).then(LocalNodes::new);
    (0..count)
        .map(|i| {
            let mut c = config.clone();
            c.node_id = first + i;
            if let Some(hub) = &hub {
                c.nodes = Some(hub.node(c.node_id));
            }
            let engine = cascade::Engine::new(c);
            if let Some(hub) = &hub {
                hub.add(&engine);
            }
            engine
        })
        .collect()
}
