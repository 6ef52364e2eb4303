//! Timing helpers: run a command several times, keep the median, print ratio tables.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};

/// Median wall time of `runs` timed calls, after an optional untimed warm-up.
#[derive(Clone, Copy)]
pub struct Timing {
    pub median: Duration,
}

pub fn time(runs: usize, warmup: bool, mut call: impl FnMut() -> Result<()>) -> Result<Timing> {
    if runs == 0 {
        bail!("--runs must be at least 1");
    }
    if warmup {
        call()?;
    }
    let mut samples = Vec::with_capacity(runs);
    for _ in 0..runs {
        let start = Instant::now();
        call()?;
        samples.push(start.elapsed());
    }
    samples.sort();
    Ok(Timing { median: samples[samples.len() / 2] })
}

/// The median of samples timed by hand (at least one).
pub fn median(mut samples: Vec<Duration>) -> Timing {
    samples.sort();
    Timing { median: samples.get(samples.len() / 2).copied().unwrap_or_default() }
}

pub fn ms(d: Duration) -> String {
    format!("{:.1} ms", d.as_secs_f64() * 1000.0)
}

/// One row of a comparison table.
pub struct Row {
    pub what: String,
    pub castoff: String,
    pub other: String,
    pub ratio: String,
    pub goal: String,
    pub met: bool,
}

impl Row {
    /// A row comparing two times, met when castoff takes at most `goal` times as long.
    pub fn time(what: &str, ours: Timing, other: &str, theirs: Timing, goal: f64) -> Row {
        let ratio = ours.median.as_secs_f64() / theirs.median.as_secs_f64();
        Row {
            what: what.into(),
            castoff: ms(ours.median),
            other: format!("{other}: {}", ms(theirs.median)),
            ratio: format!("{ratio:.2}x time"),
            goal: format!("<= {goal}x"),
            met: ratio <= goal,
        }
    }
}

pub fn print_table(title: &str, rows: &[Row]) {
    println!("\n{title}\n");
    println!("| measurement | castoff | compared with | ratio | goal | met |");
    println!("|---|---|---|---|---|---|");
    for row in rows {
        println!(
            "| {} | {} | {} | {} | {} | {} |",
            row.what,
            row.castoff,
            row.other,
            row.ratio,
            row.goal,
            if row.met { "yes" } else { "NO" }
        );
    }
}
