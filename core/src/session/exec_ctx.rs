//! A statement's execution context, split by concern as the seed plan's
//! `ExecCtx` refactor asks: [`StmtContexts`] (the context handles, for
//! cancellation, deadlines, values and spans), [`ExecState`] (what the
//! statement has done so far: its phase, rows, warnings) and
//! [`Resources`] (the memory budget, released on every path when the
//! statement's reservations drop). Each function takes the part it uses.

use std::sync::Arc;

use crate::context::Context;
use crate::expr::EvalCx;
use crate::phase::{Phase, PhaseCell};
use crate::pipeline::Resources;

/// The contexts of one statement.
#[derive(Clone, Debug)]
pub struct StmtContexts {
    /// The request.
    pub request: Context,
    /// The transaction, explicit or implicit; `None` for a statement that
    /// runs outside one (`SET`, `SHOW`, DDL, `KILL`).
    pub txn: Option<Context>,
    /// The statement.
    pub query: Context,
}

/// The mutable execution state of one statement.
#[derive(Debug)]
pub struct ExecState {
    /// Where the phase is published (the process list reads it).
    phase: Arc<PhaseCell>,
    /// Rows affected.
    pub rows_affected: u64,
    /// Expression settings and warnings.
    pub eval: EvalCx,
}

impl ExecState {
    /// A state in phase [`Phase::Planning`], published in `phase`.
    pub fn new(phase: Arc<PhaseCell>) -> Self {
        phase.set(Phase::Planning);
        ExecState {
            phase,
            rows_affected: 0,
            eval: EvalCx::default(),
        }
    }

    /// The statement's phase.
    pub fn phase(&self) -> Phase {
        self.phase.get()
    }

    /// Moves the statement to `phase` (the process list shows it at once).
    pub fn set_phase(&self, phase: Phase) {
        self.phase.set(phase);
    }
}

/// A statement's execution context: the three parts side by side.
#[derive(Debug)]
pub struct ExecCtx {
    /// Context handles.
    pub contexts: StmtContexts,
    /// Execution state.
    pub state: ExecState,
    /// Resources (memory budget).
    pub resources: Arc<Resources>,
}
