//! A deterministic simulation of the cross-node context protocol
//! (docs/across-nodes.md, `cascade-grpc`'s client and server layers) on
//! in-process nodes: seeded, thousands of runs, with injected latency,
//! failed Cancel RPCs and network partitions (shorter ones delay traffic as
//! TCP would; ones past the keepalive kill the connection and every call on
//! it). Each node has its own `ManualHost`, started at a different offset
//! (clock skew), all driven by one simulated clock.
//!
//! A run: node 0 runs a statement with a deadline that fans out fragments
//! to nodes 1..=3; a fragment may call a sub-fragment on another node (two
//! hops), may fail, and otherwise works for a number of batches. The
//! statement may be killed, and then cancelled again with another cause.
//!
//! After each run:
//! * no node holds a live context or call (leaks);
//! * no fragment ends after its statement by more than the cancel's
//!   network path (fault-free runs), or after the statement's deadline plus
//!   the time its calls spent in transit, which a budget does not count
//!   (any run);
//! * first cause wins across nodes: no fragment ever sees the statement's
//!   second cause, and every fragment cancelled by the statement's kill
//!   sees exactly its first cause, named by node 0.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use cascade::remote::{remote_reason, PeerGrant, RemoteChild, WireCause, WireContext};
use cascade::{CancelKind, Cause, Context, Identity, Level, ManualHost, Reason};

const NODES: usize = 4;
/// One batch of a fragment's work, and the tick of the simulation (ms).
const STEP: u64 = 5;
const MIN_LAT: u64 = 1;
const MAX_LAT: u64 = 20;
/// A connection silent this long is declared dead by both sides.
const KEEPALIVE: u64 = 100;
/// The client layer's wait for a Cancel's answer before the reset.
const GRACE: u64 = 100;

struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        // splitmix64
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn range(&mut self, lo: u64, hi: u64) -> u64 {
        lo + self.next() % (hi - lo + 1)
    }
    fn chance(&mut self, percent: u64) -> bool {
        self.next() % 100 < percent
    }
}

type CallId = u64;

#[derive(Clone, Debug)]
enum Msg {
    /// `transit`: time the caller's own call spent in the network.
    Call {
        call: CallId,
        wire: Box<WireContext>,
        sent_at: u64,
        transit: u64,
    },
    Cancel {
        call: CallId,
        cause: WireCause,
    },
    CancelAck {
        call: CallId,
    },
    Reset {
        call: CallId,
    },
    Reply {
        call: CallId,
        ok: bool,
    },
}

#[derive(Debug)]
enum Ev {
    Deliver {
        from: usize,
        to: usize,
        epoch: u64,
        msg: Msg,
    },
    Tick,
    Kill,
    LateCancel,
    Grace {
        node: usize,
        call: CallId,
    },
    ConnectionDies {
        a: usize,
        b: usize,
    },
}

/// A fragment running on a node: the server side of a call.
struct Frag {
    child: RemoteChild,
    caller: usize,
    work_left: u32,
    fail_at: Option<u32>,
    sub_to: Option<usize>,
    sub_call: Option<CallId>,
    sub_done: bool,
    hops: u64,
    /// Time this call and its callers' calls spent in the network: the
    /// budget does not count it (it restarts on arrival).
    transit: u64,
}

/// The client side of a call.
struct OutCall {
    to: usize,
    /// The caller's context: the statement, or the calling fragment's.
    caller: Context,
    /// The fragment that made it (None: node 0's statement).
    from_frag: Option<CallId>,
    cancelling: bool,
    reset_sent: bool,
}

struct Node {
    host: Arc<ManualHost>,
    root: Context,
    now: u64,
    frags: HashMap<CallId, Frag>,
    tombstones: HashMap<CallId, WireCause>,
    out: HashMap<CallId, OutCall>,
}

/// What the checks need about each fragment.
struct FragEnd {
    at: u64,
    hops: u64,
    transit: u64,
    cause: Option<Arc<Cause>>,
}

struct Sim {
    rng: Rng,
    t: u64,
    seq: u64,
    queue: BinaryHeap<Reverse<(u64, u64, usize)>>,
    events: Vec<Option<Ev>>,
    nodes: Vec<Node>,
    next_call: CallId,
    /// Partitions: (a, b, start, end).
    partitions: Vec<(usize, usize, u64, u64)>,
    /// Connection epochs: a message sent on an older epoch is lost.
    epochs: HashMap<(usize, usize), u64>,
    cancel_drop_percent: u64,
    faults: bool,
    ends: Vec<FragEnd>,
    statement_end: Option<u64>,
    first_cause: Option<Arc<Cause>>,
    tombstones_used: u64,
}

fn link(a: usize, b: usize) -> (usize, usize) {
    (a.min(b), a.max(b))
}

impl Sim {
    fn schedule(&mut self, at: u64, ev: Ev) {
        self.seq += 1;
        self.events.push(Some(ev));
        self.queue
            .push(Reverse((at, self.seq, self.events.len() - 1)));
    }

    /// When a message sent now on `from`–`to` arrives, if it does.
    fn send(&mut self, from: usize, to: usize, msg: Msg) {
        if let Msg::Cancel { .. } = msg {
            if self.rng.chance(self.cancel_drop_percent) {
                return; // the Cancel RPC failed
            }
        }
        let mut at = self.t + self.rng.range(MIN_LAT, MAX_LAT);
        let l = link(from, to);
        for &(a, b, s, e) in &self.partitions {
            if link(a, b) == l && s <= self.t && self.t < e {
                if e - s >= KEEPALIVE {
                    return; // the connection dies: lost
                }
                at = at.max(e + self.rng.range(MIN_LAT, MAX_LAT)); // TCP retransmits
            }
        }
        let epoch = *self.epochs.get(&l).unwrap_or(&0);
        self.schedule(
            at,
            Ev::Deliver {
                from,
                to,
                epoch,
                msg,
            },
        );
    }

    fn advance_clocks(&mut self) {
        for n in &mut self.nodes {
            if self.t > n.now {
                n.host.advance(Duration::from_millis(self.t - n.now));
                n.now = self.t;
            }
        }
    }

    fn end_frag(&mut self, node: usize, call: CallId, reply: Option<bool>) {
        if let Some(f) = self.nodes[node].frags.remove(&call) {
            // The cause as the fragment saw it when it stopped (a drop of
            // the RemoteChild afterwards only marks the end).
            let cause = f.child.context().cause();
            self.ends.push(FragEnd {
                at: self.t,
                hops: f.hops,
                transit: f.transit,
                cause,
            });
            if let Some(ok) = reply {
                self.send(node, f.caller, Msg::Reply { call, ok });
            }
        }
    }

    fn start_call(
        &mut self,
        from: usize,
        to: usize,
        caller: &Context,
        from_frag: Option<CallId>,
    ) -> CallId {
        let call = self.next_call;
        self.next_call += 1;
        let wire = Box::new(WireContext::export(caller).expect("exportable"));
        self.nodes[from].out.insert(
            call,
            OutCall {
                to,
                caller: caller.clone(),
                from_frag,
                cancelling: false,
                reset_sent: false,
            },
        );
        let transit = from_frag
            .and_then(|f| self.nodes[from].frags.get(&f))
            .map_or(0, |f| f.transit);
        let sent_at = self.t;
        self.send(
            from,
            to,
            Msg::Call {
                call,
                wire,
                sent_at,
                transit,
            },
        );
        call
    }

    /// An out call failed or ended for the caller: its fragment (or the
    /// statement) learns it.
    fn out_failed(&mut self, node: usize, call: CallId, what: &str) {
        let Some(oc) = self.nodes[node].out.remove(&call) else {
            return;
        };
        match oc.from_frag {
            None => {
                oc.caller.cancel(Reason::Other {
                    message: what.into(),
                });
            }
            Some(f) => {
                // The calling fragment fails with the error.
                self.end_frag(node, f, Some(false));
            }
        }
    }

    /// The client layer: a caller whose context is cancelled sends the
    /// Cancel, returns at once, and resets the stream after the answer or
    /// the grace period.
    fn client_pass(&mut self) {
        for node in 0..NODES {
            let ids: Vec<CallId> = self.nodes[node].out.keys().copied().collect();
            for call in ids {
                let (cancelled, to) = {
                    let oc = &self.nodes[node].out[&call];
                    if oc.cancelling {
                        continue;
                    }
                    (oc.caller.check().err(), oc.to)
                };
                if let Some(c) = cancelled {
                    if let Some(oc) = self.nodes[node].out.get_mut(&call) {
                        oc.cancelling = true;
                    }
                    let cause = WireCause::of(c.cause(), node as u64);
                    self.send(node, to, Msg::Cancel { call, cause });
                    let at = self.t + GRACE;
                    self.schedule(at, Ev::Grace { node, call });
                }
            }
        }
    }

    fn reset(&mut self, node: usize, call: CallId) {
        if let Some(oc) = self.nodes[node].out.get_mut(&call) {
            if oc.reset_sent {
                return;
            }
            oc.reset_sent = true;
            let to = oc.to;
            self.nodes[node].out.remove(&call);
            self.send(node, to, Msg::Reset { call });
        }
    }

    fn deliver(&mut self, from: usize, to: usize, epoch: u64, msg: Msg) {
        if *self.epochs.get(&link(from, to)).unwrap_or(&0) != epoch {
            return; // the connection it was sent on died
        }
        match msg {
            Msg::Call {
                call,
                wire,
                sent_at,
                transit,
            } => {
                let grant = PeerGrant::any_tenant(from as u64);
                let child = RemoteChild::build(&self.nodes[to].root, &grant, &wire)
                    .expect("a valid call builds");
                if let Some(early) = self.nodes[to].tombstones.remove(&call) {
                    child.cancel_from_remote(&early);
                    self.tombstones_used += 1;
                }
                let hops = if wire.level == Some(Level::Query) {
                    1
                } else {
                    2
                };
                let work_left = self.rng.range(1, 60) as u32;
                let fail_at = self
                    .rng
                    .chance(if self.faults { 15 } else { 5 })
                    .then(|| self.rng.range(0, u64::from(work_left)) as u32);
                let sub_to = (hops == 1 && self.rng.chance(40)).then(|| {
                    let mut n = self.rng.range(1, NODES as u64 - 1) as usize;
                    if n == to {
                        n = n % (NODES - 1) + 1;
                    }
                    n
                });
                self.nodes[to].frags.insert(
                    call,
                    Frag {
                        child,
                        caller: from,
                        work_left,
                        fail_at,
                        sub_to,
                        sub_call: None,
                        sub_done: sub_to.is_none(),
                        hops,
                        transit: transit + (self.t - sent_at),
                    },
                );
            }
            Msg::Cancel { call, cause } => {
                match self.nodes[to].frags.get(&call) {
                    Some(f) => {
                        f.child.cancel_from_remote(&cause);
                    }
                    None => {
                        self.nodes[to].tombstones.insert(call, cause);
                    }
                }
                self.send(to, from, Msg::CancelAck { call });
            }
            Msg::CancelAck { call } => self.reset(to, call),
            Msg::Reset { call } => {
                if let Some(f) = self.nodes[to].frags.get(&call) {
                    f.child.cancel_lost("the call was dropped by the caller");
                    self.end_frag(to, call, None);
                }
            }
            Msg::Reply { call, ok } => {
                let cancelling = match self.nodes[to].out.get(&call) {
                    None => return,
                    Some(oc) => oc.cancelling,
                };
                if cancelling {
                    return; // the caller has already returned
                }
                if ok {
                    let oc = self.nodes[to].out.remove(&call);
                    if let Some(OutCall {
                        from_frag: Some(f), ..
                    }) = oc
                    {
                        if let Some(fr) = self.nodes[to].frags.get_mut(&f) {
                            fr.sub_done = true;
                        }
                    }
                } else {
                    self.out_failed(to, call, &format!("a fragment on node {from} failed"));
                }
            }
        }
    }

    /// Every fragment does one batch: checks its context, then works.
    fn step_frags(&mut self) {
        for node in 1..NODES {
            let ids: Vec<CallId> = self.nodes[node].frags.keys().copied().collect();
            for call in ids {
                let Some(f) = self.nodes[node].frags.get_mut(&call) else {
                    continue;
                };
                if f.child.context().check().is_err() {
                    self.end_frag(node, call, Some(false));
                    continue;
                }
                if let (Some(to), None) = (f.sub_to, f.sub_call) {
                    let ctx = f.child.context().clone();
                    let sub = self.start_call(node, to, &ctx, Some(call));
                    if let Some(f) = self.nodes[node].frags.get_mut(&call) {
                        f.sub_call = Some(sub);
                    }
                    continue;
                }
                let f = self.nodes[node].frags.get_mut(&call).expect("present");
                if f.fail_at == Some(f.work_left) {
                    self.end_frag(node, call, Some(false));
                    continue;
                }
                if f.work_left > 0 {
                    f.work_left -= 1;
                } else if f.sub_done {
                    self.end_frag(node, call, Some(true));
                }
            }
        }
    }

    fn connection_dies(&mut self, a: usize, b: usize) {
        *self.epochs.entry(link(a, b)).or_insert(0) += 1;
        for (srv, peer) in [(a, b), (b, a)] {
            // Server side: every call from the peer is lost.
            let lost: Vec<CallId> = self.nodes[srv]
                .frags
                .iter()
                .filter(|(_, f)| f.caller == peer)
                .map(|(c, _)| *c)
                .collect();
            for call in lost {
                if let Some(f) = self.nodes[srv].frags.get(&call) {
                    f.child
                        .cancel_lost(&format!("the connection to node {peer} was lost"));
                }
                self.end_frag(srv, call, None);
            }
            // Client side: every call to the peer fails.
            let failed: Vec<CallId> = self.nodes[srv]
                .out
                .iter()
                .filter(|(_, o)| o.to == peer)
                .map(|(c, _)| *c)
                .collect();
            for call in failed {
                let cancelling = self.nodes[srv].out[&call].cancelling;
                if cancelling {
                    self.nodes[srv].out.remove(&call);
                } else {
                    self.out_failed(srv, call, &format!("lost node {peer}"));
                }
            }
        }
    }
}

/// What the runs went through, for the coverage checks.
#[derive(Default)]
struct Seen {
    killed_first: u64,
    faulty: u64,
    remote_kills: u64,
    remote_deadlines: u64,
    lost_or_dropped: u64,
    tombstones: u64,
}

/// Runs one seeded scenario, checks its invariants, and counts what it
/// went through into `seen`.
fn run(seed: u64, seen: &mut Seen) {
    let mut rng = Rng(seed);
    let faults = rng.chance(60);
    let nodes = (0..NODES)
        .map(|i| {
            let host = Arc::new(ManualHost::new());
            // Clock skew: each node's clock starts elsewhere.
            host.advance(Duration::from_millis(rng.range(0, 1_000_000)));
            let root = Context::root(host.clone())
                .node_id(i as u64)
                .build()
                .expect("root");
            Node {
                host,
                root,
                now: 0,
                frags: HashMap::new(),
                tombstones: HashMap::new(),
                out: HashMap::new(),
            }
        })
        .collect();
    let mut sim = Sim {
        rng,
        t: 0,
        seq: 0,
        queue: BinaryHeap::new(),
        events: Vec::new(),
        nodes,
        next_call: 1,
        partitions: Vec::new(),
        epochs: HashMap::new(),
        cancel_drop_percent: if faults { 30 } else { 0 },
        faults,
        ends: Vec::new(),
        statement_end: None,
        first_cause: None,
        tombstones_used: 0,
    };
    let deadline_ms = sim.rng.range(50, 500);
    let conn = sim.nodes[0]
        .root
        .child(Level::Routine)
        .identity(Identity::new("acme", "alice", "member"))
        .connection_id(5)
        .session_id(5)
        .build()
        .expect("routine");
    let req = conn.child(Level::Request).build().expect("request");
    let stmt = req
        .child(Level::Query)
        .statement_id(17)
        .timeout(
            Duration::from_millis(deadline_ms),
            Reason::StatementTimeout {
                limit_ms: deadline_ms,
            },
        )
        .build()
        .expect("statement");
    let fanout = sim.rng.range(1, 3) as usize;
    for to in 1..=fanout {
        sim.start_call(0, to, &stmt, None);
    }
    let killed = sim.rng.chance(50);
    if killed {
        let at = sim.rng.range(0, deadline_ms + 50);
        sim.schedule(at, Ev::Kill);
        let late = at + sim.rng.range(0, 40);
        sim.schedule(late, Ev::LateCancel);
    }
    if faults {
        for _ in 0..sim.rng.range(0, 2) {
            let a = sim.rng.range(0, NODES as u64 - 1) as usize;
            let mut b = sim.rng.range(0, NODES as u64 - 1) as usize;
            if a == b {
                b = (b + 1) % NODES;
            }
            let s = sim.rng.range(0, deadline_ms);
            let e = s + sim.rng.range(10, 250);
            sim.partitions.push((a, b, s, e));
            if e - s >= KEEPALIVE {
                sim.schedule(s + KEEPALIVE, Ev::ConnectionDies { a, b });
            }
        }
    }
    sim.schedule(0, Ev::Tick);
    let limit = deadline_ms + 2 * KEEPALIVE + 2 * GRACE + 10 * MAX_LAT;
    while let Some(Reverse((at, _, idx))) = sim.queue.pop() {
        sim.t = at;
        sim.advance_clocks();
        let Some(ev) = sim.events[idx].take() else {
            continue;
        };
        match ev {
            Ev::Deliver {
                from,
                to,
                epoch,
                msg,
            } => sim.deliver(from, to, epoch, msg),
            Ev::Tick => {
                sim.step_frags();
                let busy = sim
                    .nodes
                    .iter()
                    .any(|n| !n.frags.is_empty() || !n.out.is_empty());
                if busy && sim.t < limit {
                    let next = sim.t + STEP;
                    sim.schedule(next, Ev::Tick);
                }
            }
            Ev::Kill => {
                stmt.cancel(Reason::KillQuery {
                    by_connection: 9,
                    by_user: "root".into(),
                });
            }
            Ev::LateCancel => {
                stmt.cancel(Reason::Shutdown);
            }
            Ev::Grace { node, call } => sim.reset(node, call),
            Ev::ConnectionDies { a, b } => sim.connection_dies(a, b),
        }
        let _ = stmt.check();
        sim.client_pass();
        if sim.statement_end.is_none() {
            let done = stmt.is_cancelled() || sim.nodes[0].out.is_empty();
            if done {
                sim.statement_end = Some(sim.t);
                sim.first_cause = stmt.cause();
            }
        }
    }

    // No leaks: every call ended on every node, and no context is left.
    for (i, n) in sim.nodes.iter().enumerate() {
        assert!(
            n.frags.is_empty(),
            "seed {seed}: node {i} leaked {} fragments",
            n.frags.len()
        );
        assert!(n.out.is_empty(), "seed {seed}: node {i} leaked calls");
    }
    let q_end = sim.statement_end.expect("the statement ended");
    let first = sim.first_cause.clone();
    let killed_first = matches!(
        first.as_deref().map(|c| &c.reason),
        Some(Reason::KillQuery { .. })
    );
    // Budgets restart on arrival: a fragment's deadline is the statement's
    // plus one latency per hop, and it notices within one batch.
    for e in &sim.ends {
        let deadline_bound = deadline_ms + e.transit + STEP;
        assert!(
            e.at <= deadline_bound,
            "seed {seed}: a fragment ended at {} ms, after the statement's deadline bound {deadline_bound} ms",
            e.at
        );
        if !faults {
            let bound = q_end + e.hops * MAX_LAT + 2 * STEP;
            assert!(
                e.at <= bound,
                "seed {seed}: a fragment outlived its statement (ended {} ms, statement {q_end} ms)",
                e.at
            );
        }
        if let Some(c) = &e.cause {
            let Reason::Remote { reason, .. } = &c.reason else {
                continue;
            };
            assert_ne!(
                **reason,
                Reason::Shutdown,
                "seed {seed}: a fragment saw the statement's second cause"
            );
            if let Reason::Other { message } = &**reason {
                if message.contains("lost") || message.contains("dropped") {
                    seen.lost_or_dropped += 1;
                }
            }
            if matches!(**reason, Reason::KillQuery { .. }) {
                seen.remote_kills += 1;
                let first = first
                    .as_ref()
                    .expect("a kill reached a fragment: the statement was killed");
                assert!(
                    killed_first,
                    "seed {seed}: a kill reached a fragment but was not first"
                );
                assert_eq!(
                    c.reason,
                    remote_reason(0, first.reason.clone()),
                    "seed {seed}"
                );
                assert_eq!(
                    (c.kind, c.level),
                    (CancelKind::Canceled, Level::Query),
                    "seed {seed}"
                );
            }
            if c.kind == CancelKind::DeadlineExceeded {
                seen.remote_deadlines += 1;
                assert_eq!(
                    **reason,
                    Reason::StatementTimeout {
                        limit_ms: deadline_ms
                    },
                    "seed {seed}: a remote deadline fires with the statement's cause"
                );
            }
        }
    }
    seen.killed_first += u64::from(killed_first);
    seen.faulty += u64::from(faults);
    seen.tombstones += sim.tombstones_used;
    drop(stmt);
    drop(req);
    drop(conn);
    let roots: Vec<Context> = sim.nodes.iter().map(|n| n.root.clone()).collect();
    drop(sim);
    for (i, r) in roots.iter().enumerate() {
        assert_eq!(r.subtree_len(), 1, "seed {seed}: node {i} holds a context");
    }
}

#[test]
fn the_protocol_keeps_its_invariants_under_latency_drops_and_partitions() {
    let runs: u64 = std::env::var("REMOTE_SIM_RUNS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(3000);
    let base: u64 = std::env::var("REMOTE_SIM_SEED")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(0x5EED);
    let mut seen = Seen::default();
    for i in 0..runs {
        run(base.wrapping_add(i), &mut seen);
    }
    // The runs cover every path: kills and deadlines that cross, calls
    // lost with their connection or dropped by a reset, Cancels that
    // overtook their calls, and runs with and without faults.
    let Seen {
        killed_first,
        faulty,
        remote_kills,
        remote_deadlines,
        lost_or_dropped,
        tombstones,
    } = seen;
    eprintln!(
        "{runs} runs: {killed_first} killed first, {faulty} with faults; fragments: \
         {remote_kills} saw the kill, {remote_deadlines} a deadline, {lost_or_dropped} were \
         lost or dropped; {tombstones} Cancels overtook their call"
    );
    assert!(
        killed_first > runs / 10,
        "{killed_first} of {runs} runs killed first"
    );
    assert!(
        faulty > runs / 3 && faulty < runs,
        "{faulty} of {runs} runs had faults"
    );
    assert!(remote_kills > 0 && remote_deadlines > 0 && lost_or_dropped > 0 && tombstones > 0);
}

#[test]
fn a_cancel_that_overtakes_its_call_is_not_lost() {
    // The tombstone path on its own: the Cancel arrives, then the call.
    let h = Arc::new(ManualHost::new());
    let n0 = Context::root(h.clone()).node_id(0).build().unwrap();
    let n1 = Context::root(h.clone()).node_id(1).build().unwrap();
    let conn = n0
        .child(Level::Routine)
        .identity(Identity::new("acme", "alice", "member"))
        .connection_id(5)
        .session_id(5)
        .build()
        .unwrap();
    let req = conn.child(Level::Request).build().unwrap();
    let q = req.child(Level::Query).statement_id(1).build().unwrap();
    let wire = WireContext::export(&q).unwrap();
    q.cancel(Reason::KillQuery {
        by_connection: 9,
        by_user: "root".into(),
    });
    let early = WireCause::of(&q.cause().unwrap(), 0);
    let child = RemoteChild::build(&n1, &PeerGrant::any_tenant(0), &wire).unwrap();
    assert!(child.cancel_from_remote(&early));
    assert_eq!(
        child.context().cause().unwrap().to_string(),
        "cancelled by node 0: killed by KILL QUERY from connection 9 (user root) at Query level"
    );
}
