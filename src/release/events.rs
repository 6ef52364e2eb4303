//! What a release reports while it runs: one [`Event`] stream that every front end
//! (the TTY progress view, plain CI logs, `--json`, an xtask's own printer) renders in
//! its own way. The executor never prints; it only emits.

use serde::{Deserialize, Serialize};

use super::StepKind;

/// How a step ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum StepStatus {
    /// It ran and did its work.
    Done,
    /// The journal (or the target itself) showed it complete, and a check against the
    /// registry, feed or disk confirmed it: nothing was redone.
    AlreadyDone,
    /// Not part of this release (nothing configured for it, `--only`/`--from`, or
    /// `[release] git = false`); `summary` says why.
    Skipped,
    /// Dry run: what it would do is in `summary`.
    WouldRun,
    /// It failed; the release stops here and the journal holds everything before it.
    Failed,
}

impl StepStatus {
    pub fn label(self) -> &'static str {
        match self {
            StepStatus::Done => "done",
            StepStatus::AlreadyDone => "already done",
            StepStatus::Skipped => "skipped",
            StepStatus::WouldRun => "would run",
            StepStatus::Failed => "failed",
        }
    }
}

/// One thing that happened.
#[derive(Debug, Clone, Serialize)]
#[serde(tag = "event", rename_all = "kebab-case")]
pub enum Event {
    /// A step begins. `summary` says what it is about to do, in one line.
    StepStarted { step: StepKind, summary: String },
    /// A step ended. `result` is what the journal records for it (digests, hashes, the
    /// feeds' answers); `null` for skipped steps.
    StepFinished {
        step: StepKind,
        status: StepStatus,
        seconds: f64,
        /// Lines for humans: what was done, or why not.
        summary: Vec<String>,
        result: serde_json::Value,
    },
    /// A line of a builder's output (`scope` is the platform).
    Log { step: StepKind, scope: String, line: String },
    /// Bytes of one upload sent so far. `task` names the file and where it goes.
    Progress { step: StepKind, task: String, sent: u64, total: u64 },
    /// Something the user should know that does not stop the release.
    Warning { message: String },
}

/// Receives events; implementations must be cheap (builds call it per output line).
pub trait EventSink: Send + Sync {
    fn event(&self, event: &Event);
}

/// Ignores everything: for callers that only want the [`super::ReleaseOutcome`].
pub struct Silent;

impl EventSink for Silent {
    fn event(&self, _event: &Event) {}
}

impl<F: Fn(&Event) + Send + Sync> EventSink for F {
    fn event(&self, event: &Event) {
        self(event)
    }
}
