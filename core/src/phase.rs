//! The phase of a statement (or of a connection between statements), as the
//! process list's `State` column and the page show it.
//!
//! A [`PhaseCell`] is shared between the statement that moves through its
//! phases and the process list that reads them: one atomic byte, written by
//! the statement's task, read by any thread. A reader may see the previous
//! phase for a moment; it never sees a torn or unknown value.

use serde::Serialize;
use std::fmt;
use std::sync::atomic::{AtomicU8, Ordering};

/// What a statement (or a connection between statements) is doing.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// Parsing the request's SQL.
    Parsing,
    /// Planning the statement (registered, not yet running its pipeline).
    Planning,
    /// Running the pipeline or the write.
    Executing,
    /// Committing the transaction (on a cleanup context).
    Committing,
    /// Rolling the transaction back (`ROLLBACK`, a failed or cancelled
    /// statement), on a cleanup context.
    RollingBack,
    /// Cleaning up after a kill, a disconnect, a reset or shutdown: the
    /// rollback and release of what the connection held, on a cleanup
    /// context.
    CleaningUp,
}

impl Phase {
    const ALL: [Phase; 6] = [
        Phase::Parsing,
        Phase::Planning,
        Phase::Executing,
        Phase::Committing,
        Phase::RollingBack,
        Phase::CleaningUp,
    ];

    /// The text of the process list's `State` column: `parsing`,
    /// `planning`, `executing`, `committing`, `rolling back`,
    /// `cleaning up`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Phase::Parsing => "parsing",
            Phase::Planning => "planning",
            Phase::Executing => "executing",
            Phase::Committing => "committing",
            Phase::RollingBack => "rolling back",
            Phase::CleaningUp => "cleaning up",
        }
    }
}

impl fmt::Display for Phase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A phase shared between its writer and the process list.
#[derive(Debug)]
pub struct PhaseCell(AtomicU8);

impl PhaseCell {
    /// A cell holding `phase`.
    pub fn new(phase: Phase) -> Self {
        PhaseCell(AtomicU8::new(phase as u8))
    }

    /// Moves to `phase`.
    pub fn set(&self, phase: Phase) {
        self.0.store(phase as u8, Ordering::Release);
    }

    /// The current phase.
    pub fn get(&self) -> Phase {
        let at = usize::from(self.0.load(Ordering::Acquire));
        // Only `set` writes the byte, always with a `Phase`'s index.
        Phase::ALL.get(at).copied().unwrap_or(Phase::Executing)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_phase_round_trips_through_the_cell() {
        let cell = PhaseCell::new(Phase::Parsing);
        for p in Phase::ALL {
            cell.set(p);
            assert_eq!(cell.get(), p);
            assert_eq!(Phase::ALL[p as usize], p);
        }
        assert_eq!(Phase::RollingBack.to_string(), "rolling back");
    }
}
