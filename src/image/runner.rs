//! Running the jobs: up to `--jobs` platforms at once, each builder's output prefixed
//! with its platform, and the first failure cancelling the rest (running builders are
//! killed, queued ones never start) so a broken release stops quickly and cleanly.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Mutex;

use super::{BuildContext, BuildOptions, Builder, Built, Job, RunInputs};
use crate::error::{Error, Result};

/// Build every job with `builder`; results in job order.
pub fn execute(
    builder: &dyn Builder,
    jobs: &[Job],
    options: &BuildOptions,
    inputs: &RunInputs<'_>,
) -> Result<Vec<Built>> {
    let cancel = AtomicBool::new(false);
    let sink = options.log.clone();
    if options.single_build {
        let log = |line: &str| {
            if let Some(sink) = &sink {
                sink("all", line);
            }
        };
        return builder.build_together(jobs, &context(inputs, &cancel, &log));
    }

    let workers = options
        .jobs
        .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        .clamp(1, jobs.len().max(1));
    let next = AtomicUsize::new(0);
    let results: Vec<Mutex<Option<Built>>> = jobs.iter().map(|_| Mutex::new(None)).collect();
    let first_error: Mutex<Option<Error>> = Mutex::new(None);
    std::thread::scope(|scope| {
        for _ in 0..workers {
            scope.spawn(|| loop {
                if cancel.load(Ordering::Relaxed) {
                    break;
                }
                if crate::exec::interrupted() {
                    break;
                }
                let index = next.fetch_add(1, Ordering::Relaxed);
                let Some(job) = jobs.get(index) else { break };
                let platform = job.platform.to_string();
                let log = |line: &str| {
                    if let Some(sink) = &sink {
                        sink(&platform, line);
                    }
                };
                match builder.build(job, &context(inputs, &cancel, &log)) {
                    Ok(built) => {
                        if let Ok(mut slot) = results[index].lock() {
                            *slot = Some(built);
                        }
                    }
                    Err(error) => {
                        // Only the first failure is the cause; later ones are its casualties.
                        if !cancel.swap(true, Ordering::SeqCst) {
                            if let Ok(mut first) = first_error.lock() {
                                *first = Some(error);
                            }
                        }
                        break;
                    }
                }
            });
        }
    });
    if crate::exec::interrupted() {
        return Err(Error::Failed {
            problem: "interrupted: the running builds were stopped".into(),
            hint: "re-run castoff build; images already pushed are found up to date".into(),
        });
    }
    if let Some(error) = first_error.into_inner().ok().flatten() {
        return Err(error);
    }
    results
        .into_iter()
        .zip(jobs)
        .map(|(slot, job)| {
            slot.into_inner()
                .ok()
                .flatten()
                .ok_or_else(|| Error::Internal(format!("the build of {} finished without a result", job.platform)))
        })
        .collect()
}

fn context<'a>(inputs: &'a RunInputs<'a>, cancel: &'a AtomicBool, log: &'a (dyn Fn(&str) + Sync)) -> BuildContext<'a> {
    BuildContext {
        root: inputs.root,
        shown_config: inputs.shown_config,
        network: inputs.network,
        image: inputs.image,
        version: inputs.version,
        target: inputs.target,
        push: inputs.push,
        cancel,
        log,
    }
}
