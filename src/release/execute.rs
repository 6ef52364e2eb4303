//! The executor: preflight, then each planned step in order, journalled.

use super::{EventSink, Plan, ReleaseOptions, ReleaseOutcome};
use crate::error::Result;
use crate::project::Project;

pub(super) fn execute(
    project: &Project,
    options: &ReleaseOptions,
    plan: Plan,
    sink: &dyn EventSink,
) -> Result<ReleaseOutcome> {
    let _ = (project, options, plan, sink);
    todo!("execute")
}
