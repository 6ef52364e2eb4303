//! Rendering a release for people and machines (TTY progress, plain logs, JSON).
//! TODO(helper): implement.

use super::{Event, EventSink, Plan, ReleaseOutcome};

/// How the caller wants output.
#[derive(Debug, Clone, Copy, Default)]
pub struct OutputStyle {
    /// One JSON object per step event and a final result object on stdout.
    pub json: bool,
    /// Only results, warnings and errors.
    pub quiet: bool,
    pub verbose: u8,
}

/// Renders events as they come and the outcome at the end.
pub struct Renderer {
    style: OutputStyle,
}

impl Renderer {
    /// Picks, from `style` and the environment: JSON; progress bars when stderr is a
    /// terminal and `CI` is not set; plain lines otherwise. `NO_COLOR` turns colour off.
    pub fn new(style: OutputStyle) -> Renderer {
        Renderer { style }
    }

    /// Print the plan (`castoff plan`, `castoff release --dry-run`'s first part).
    pub fn plan(&self, plan: &Plan) -> std::io::Result<()> {
        let _ = (plan, self.style);
        Ok(())
    }

    /// Print the summary table, or the final JSON result object.
    pub fn finish(&self, outcome: &ReleaseOutcome) -> std::io::Result<()> {
        let _ = outcome;
        Ok(())
    }
}

impl EventSink for Renderer {
    fn event(&self, event: &Event) {
        let _ = event;
    }
}
