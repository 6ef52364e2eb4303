//! Rendering a release for people and machines (TTY progress, plain logs, JSON).
//!
//! The mode is decided once, in [`Renderer::new`]:
//! - JSON (`--json`): the plan, one object per finished step and a final result object,
//!   one line each, on stdout. Warnings go to stderr.
//! - TTY (stderr is a terminal and `CI` is not set): indicatif progress bars on stderr,
//!   a line per finished step above them, then the summary table on stdout.
//! - Plain (CI, or stderr piped): one line per event on stderr, the summary table on
//!   stdout.
//!
//! The renderer only prints what the events carry; it never adds anything of its own
//! from the environment.

use std::collections::HashMap;
use std::io::{self, IsTerminal, Write};
use std::sync::{Mutex, MutexGuard};
use std::time::Duration;

use console::{measure_text_width, Style};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};
use serde::Serialize;

use super::{Event, EventSink, Plan, ReleaseOutcome, StepKind, StepStatus};

/// How the caller wants output.
#[derive(Debug, Clone, Copy, Default)]
pub struct OutputStyle {
    /// One JSON object per step event and a final result object on stdout.
    pub json: bool,
    /// Only results, warnings and errors.
    pub quiet: bool,
    pub verbose: u8,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    Json,
    Tty,
    Plain,
}

type Writer = Box<dyn Write + Send>;

/// Renders events as they come and the outcome at the end.
pub struct Renderer {
    style: OutputStyle,
    mode: Mode,
    /// Colours on stderr (progress lines) and on stdout (the summary table).
    color_err: bool,
    color_out: bool,
    inner: Mutex<Inner>,
}

struct Inner {
    out: Writer,
    err: Writer,
    /// Plain mode: the last quarter (0..=4) printed per upload task.
    quarters: HashMap<(StepKind, String), u64>,
    /// Tty mode only.
    tty: Option<TtyState>,
}

struct TtyState {
    multi: MultiProgress,
    steps: HashMap<StepKind, ProgressBar>,
    /// Per step, the platforms (log scopes) in the order they appeared.
    platforms: Vec<(StepKind, String, ProgressBar)>,
    /// Per step, the upload tasks in the order they appeared, with bytes sent and total.
    uploads: Vec<(StepKind, String, ProgressBar, u64, u64)>,
}

impl Renderer {
    /// Picks, from `style` and the environment: JSON; progress bars when stderr is a
    /// terminal and `CI` is not set; plain lines otherwise. `NO_COLOR` turns colour off.
    pub fn new(style: OutputStyle) -> Renderer {
        let ci = std::env::var("CI").map(|v| !v.is_empty() && v != "false").unwrap_or(false);
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let mode = if style.json {
            Mode::Json
        } else if io::stderr().is_terminal() && !ci {
            Mode::Tty
        } else {
            Mode::Plain
        };
        let color_err = mode == Mode::Tty && !no_color;
        let color_out = color_err && io::stdout().is_terminal();
        if !color_out {
            console::set_colors_enabled(false);
        }
        if !color_err {
            console::set_colors_enabled_stderr(false);
        }
        Renderer::with_parts(
            style,
            mode,
            color_err,
            color_out,
            Box::new(io::stdout()),
            Box::new(io::stderr()),
            ProgressDrawTarget::stderr(),
        )
    }

    /// Everything injectable: the mode, colours, both writers and the progress bars'
    /// draw target (only used in Tty mode).
    fn with_parts(
        style: OutputStyle,
        mode: Mode,
        color_err: bool,
        color_out: bool,
        out: Writer,
        err: Writer,
        target: ProgressDrawTarget,
    ) -> Renderer {
        let tty = (mode == Mode::Tty).then(|| TtyState {
            multi: MultiProgress::with_draw_target(target),
            steps: HashMap::new(),
            platforms: Vec::new(),
            uploads: Vec::new(),
        });
        Renderer {
            style,
            mode,
            color_err,
            color_out,
            inner: Mutex::new(Inner { out, err, quarters: HashMap::new(), tty }),
        }
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Print the plan (`castoff plan`, `castoff release --dry-run`'s first part).
    pub fn plan(&self, plan: &Plan) -> io::Result<()> {
        let mut inner = self.lock();
        if self.mode == Mode::Json {
            let line = json_line("plan", plan)?;
            write_flush(&mut inner.out, &line)?;
            for warning in &plan.warnings {
                write_flush(&mut inner.err, &format!("warning: {warning}"))?;
            }
            return Ok(());
        }
        if self.style.quiet {
            return Ok(());
        }
        let mut text = String::new();
        for line in plan.human() {
            text.push_str(&line);
            text.push('\n');
        }
        inner.out.write_all(text.as_bytes())?;
        inner.out.flush()?;
        for warning in &plan.warnings {
            let line = format!("{} {warning}", paint(self.color_err, yellow(), "warning:"));
            inner.err_line(&line)?;
        }
        Ok(())
    }

    /// Print the summary table, or the final JSON result object.
    pub fn finish(&self, outcome: &ReleaseOutcome) -> io::Result<()> {
        let mut inner = self.lock();
        if let Some(tty) = inner.tty.as_mut() {
            tty.clear_all();
        }
        if self.mode == Mode::Json {
            let line = json_line("result", outcome)?;
            return write_flush(&mut inner.out, &line);
        }
        let mut text = String::new();
        if !self.style.quiet {
            text.push_str(&summary_table(outcome, self.color_out));
        }
        text.push_str(&final_line(outcome));
        text.push('\n');
        inner.out.write_all(text.as_bytes())?;
        inner.out.flush()
    }

    fn json_event(&self, inner: &mut Inner, event: &Event) {
        match event {
            Event::StepFinished { .. } => {
                if let Ok(line) = serde_json::to_string(event) {
                    let _ = write_flush(&mut inner.out, &line);
                }
            }
            Event::Warning { message } => {
                let _ = write_flush(&mut inner.err, &format!("warning: {message}"));
            }
            Event::StepStarted { .. } | Event::Log { .. } | Event::Progress { .. } => {}
        }
    }

    fn plain_event(&self, inner: &mut Inner, event: &Event) {
        let quiet = self.style.quiet;
        let line = match event {
            Event::StepStarted { step, summary } if !quiet => format!("[{step}] started: {}", one_line(summary)),
            Event::StepFinished { step, status, seconds, summary, .. } if !quiet || *status == StepStatus::Failed => {
                let mut line = match status {
                    StepStatus::Skipped | StepStatus::WouldRun => format!("[{step}] {}", status.label()),
                    _ => format!("[{step}] {} in {}", status.label(), secs1(*seconds)),
                };
                let summary: Vec<String> = summary.iter().map(|s| one_line(s)).collect();
                if !summary.is_empty() {
                    line.push_str(": ");
                    line.push_str(&summary.join("; "));
                }
                line
            }
            Event::Log { step, scope, line } if !quiet => format!("[{step}] {scope}: {}", one_line(line)),
            Event::Progress { step, task, sent, total } if !quiet => {
                let quarter = match *total {
                    0 => 4,
                    total => (sent.min(&total) * 4 / total).min(4),
                };
                let key = (*step, task.clone());
                match inner.quarters.get(&key) {
                    Some(&last) if quarter <= last => return,
                    _ => {}
                }
                inner.quarters.insert(key, quarter);
                format!("[{step}] {task}: {} / {}", bytes(*sent), bytes(*total))
            }
            Event::Warning { message } => format!("warning: {message}"),
            _ => return,
        };
        let _ = write_flush(&mut inner.err, &line);
    }

    fn tty_event(&self, inner: &mut Inner, event: &Event) {
        let color = self.color_err;
        let verbose = self.style.verbose > 0;
        let Some(tty) = inner.tty.as_mut() else { return };
        match event {
            Event::StepStarted { step, summary } => {
                let bar = tty.multi.add(ProgressBar::new_spinner());
                bar.set_style(spinner_style(color, ""));
                bar.set_prefix(step.name());
                bar.set_message(one_line(summary));
                bar.enable_steady_tick(Duration::from_millis(100));
                if let Some(old) = tty.steps.insert(*step, bar) {
                    old.finish_and_clear();
                }
            }
            Event::Log { step, scope, line } => {
                let line = one_line(line);
                if verbose {
                    let _ = tty.multi.println(paint(color, dim(), &format!("  {scope}: {line}")));
                }
                let existing = tty.platforms.iter().find(|(s, p, _)| s == step && p == scope);
                let bar = match existing {
                    Some((_, _, bar)) => bar.clone(),
                    None => {
                        let bar = tty.multi.add(ProgressBar::new_spinner());
                        bar.set_style(spinner_style(color, "  "));
                        bar.set_prefix(scope.clone());
                        bar.enable_steady_tick(Duration::from_millis(100));
                        tty.platforms.push((*step, scope.clone(), bar.clone()));
                        bar
                    }
                };
                // The bar's `{wide_msg}` cuts it to the terminal width; this only bounds
                // what is kept.
                bar.set_message(console::truncate_str(&line, 512, "…").into_owned());
            }
            Event::Progress { step, task, sent, total } => {
                let index = match tty.uploads.iter().position(|(s, t, ..)| s == step && t == task) {
                    Some(index) => index,
                    None => {
                        let bar = tty.multi.add(ProgressBar::new(*total));
                        bar.set_style(bytes_style(color));
                        bar.set_prefix(task.clone());
                        tty.uploads.push((*step, task.clone(), bar, 0, *total));
                        tty.uploads.len() - 1
                    }
                };
                let upload = &mut tty.uploads[index];
                upload.3 = *sent;
                upload.4 = *total;
                upload.2.set_length(*total);
                upload.2.set_position(*sent);
            }
            Event::StepFinished { step, status, seconds, summary, .. } => {
                if let Some(bar) = tty.steps.remove(step) {
                    bar.finish_and_clear();
                }
                let mut lines = Vec::new();
                let first = summary.first().map(|s| one_line(s)).unwrap_or_default();
                lines.push(format!(
                    "{} {} {}  {first}",
                    status_mark(color, *status),
                    paint(color, bold(), step.name()),
                    paint(color, dim(), &secs1(*seconds)),
                ));
                if verbose {
                    lines.extend(summary.iter().skip(1).map(|s| format!("    {}", one_line(s))));
                }
                // Platforms: on failure the ones the summary names failed; if it names
                // none, all did.
                let failed = *status == StepStatus::Failed;
                let platforms: Vec<_> = extract(&mut tty.platforms, *step);
                let named = |scope: &str| summary.iter().any(|s| s.contains(scope));
                let any_named = platforms.iter().any(|(scope, _)| named(scope));
                for (scope, bar) in platforms {
                    bar.finish_and_clear();
                    let ok = !failed || (any_named && !named(&scope));
                    lines.push(format!("  {} {scope}", ok_mark(color, ok)));
                }
                let uploads: Vec<_> = {
                    let (mine, rest) = std::mem::take(&mut tty.uploads).into_iter().partition(|u| u.0 == *step);
                    tty.uploads = rest;
                    mine
                };
                for (_, task, bar, sent, total) in uploads {
                    bar.finish_and_clear();
                    let ok = sent >= total || !failed;
                    lines.push(format!("  {} {task} {}", ok_mark(color, ok), paint(color, dim(), &bytes(total))));
                }
                let _ = tty.multi.println(lines.join("\n"));
            }
            Event::Warning { message } => {
                let _ = tty.multi.println(format!("{} {message}", paint(color, yellow(), "warning:")));
            }
        }
    }

    /// Quiet, human modes: warnings and failed steps only.
    fn quiet_event(&self, inner: &mut Inner, event: &Event) {
        let color = self.color_err;
        let line = match event {
            Event::Warning { message } => format!("{} {message}", paint(color, yellow(), "warning:")),
            Event::StepFinished { step, status: StepStatus::Failed, seconds, summary, .. } => {
                let mut line =
                    format!("{} {} failed in {}", status_mark(color, StepStatus::Failed), step.name(), secs1(*seconds));
                let summary: Vec<String> = summary.iter().map(|s| one_line(s)).collect();
                if !summary.is_empty() {
                    line.push_str(": ");
                    line.push_str(&summary.join("; "));
                }
                line
            }
            _ => return,
        };
        let _ = inner.err_line(&line);
    }
}

impl EventSink for Renderer {
    fn event(&self, event: &Event) {
        let mut inner = self.lock();
        match self.mode {
            Mode::Json => self.json_event(&mut inner, event),
            Mode::Plain => self.plain_event(&mut inner, event),
            Mode::Tty if self.style.quiet => self.quiet_event(&mut inner, event),
            Mode::Tty => self.tty_event(&mut inner, event),
        }
    }
}

impl Inner {
    /// A line for humans on stderr: above the progress bars in Tty mode.
    fn err_line(&mut self, line: &str) -> io::Result<()> {
        match &self.tty {
            Some(tty) => tty.multi.println(line),
            None => write_flush(&mut self.err, line),
        }
    }
}

impl TtyState {
    fn clear_all(&mut self) {
        for bar in self.steps.drain().map(|(_, bar)| bar) {
            bar.finish_and_clear();
        }
        for (_, _, bar) in self.platforms.drain(..) {
            bar.finish_and_clear();
        }
        for (_, _, bar, _, _) in self.uploads.drain(..) {
            bar.finish_and_clear();
        }
        let _ = self.multi.clear();
    }
}

fn extract(platforms: &mut Vec<(StepKind, String, ProgressBar)>, step: StepKind) -> Vec<(String, ProgressBar)> {
    let (mine, rest): (Vec<_>, Vec<_>) = std::mem::take(platforms).into_iter().partition(|p| p.0 == step);
    *platforms = rest;
    mine.into_iter().map(|(_, scope, bar)| (scope, bar)).collect()
}

/// `{"event": <event>, ...value's fields}` on one line.
fn json_line<T: Serialize>(event: &'static str, value: &T) -> io::Result<String> {
    #[derive(Serialize)]
    struct Tagged<'a, T> {
        event: &'static str,
        #[serde(flatten)]
        value: &'a T,
    }
    serde_json::to_string(&Tagged { event, value }).map_err(io::Error::other)
}

fn write_flush(writer: &mut Writer, line: &str) -> io::Result<()> {
    let mut buf = String::with_capacity(line.len() + 1);
    buf.push_str(line);
    buf.push('\n');
    writer.write_all(buf.as_bytes())?;
    writer.flush()
}

/// One printable line of builder output: the last `\r`-separated segment, control
/// characters (escape sequences included) dropped.
fn one_line(text: &str) -> String {
    let text = text.trim_end_matches(['\n', '\r']);
    let text = text.rsplit('\r').find(|s| !s.trim().is_empty()).unwrap_or("");
    let text = console::strip_ansi_codes(text);
    text.chars().map(|c| if c == '\n' || c == '\t' { ' ' } else { c }).filter(|c| !c.is_control()).collect()
}

fn secs1(seconds: f64) -> String {
    format!("{seconds:.1}s")
}

/// `12.0 MiB`.
fn bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["KiB", "MiB", "GiB", "TiB", "PiB"];
    if n < 1024 {
        return format!("{n} B");
    }
    let mut value = n as f64 / 1024.0;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

fn green() -> Style {
    Style::new().green()
}
fn red() -> Style {
    Style::new().red()
}
fn yellow() -> Style {
    Style::new().yellow()
}
fn dim() -> Style {
    Style::new().dim()
}
fn bold() -> Style {
    Style::new().bold()
}

fn paint(color: bool, style: Style, text: &str) -> String {
    style.force_styling(color).apply_to(text).to_string()
}

fn status_mark(color: bool, status: StepStatus) -> String {
    match status {
        StepStatus::Done => paint(color, green(), "✓"),
        StepStatus::Failed => paint(color, red(), "✗"),
        StepStatus::Skipped => paint(color, dim(), "–"),
        StepStatus::AlreadyDone => paint(color, dim(), "="),
        StepStatus::WouldRun => paint(color, dim(), "→"),
    }
}

fn ok_mark(color: bool, ok: bool) -> String {
    match ok {
        true => paint(color, green(), "✓"),
        false => paint(color, red(), "✗"),
    }
}

fn spinner_style(color: bool, indent: &str) -> ProgressStyle {
    let template = match color {
        true => format!("{indent}{{spinner:.green}} {{prefix:.bold}} {{wide_msg:.dim}}"),
        false => format!("{indent}{{spinner}} {{prefix}} {{wide_msg}}"),
    };
    ProgressStyle::with_template(&template).unwrap_or_else(|_| ProgressStyle::default_spinner())
}

fn bytes_style(color: bool) -> ProgressStyle {
    let template = match color {
        true => "  {prefix} [{bar:30.green}] {bytes}/{total_bytes} {bytes_per_sec}",
        false => "  {prefix} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}",
    };
    ProgressStyle::with_template(template).unwrap_or_else(|_| ProgressStyle::default_bar()).progress_chars("=> ")
}

fn status_style(status: StepStatus) -> Style {
    match status {
        StepStatus::Done => green(),
        StepStatus::Failed => red(),
        StepStatus::Skipped | StepStatus::AlreadyDone | StepStatus::WouldRun => dim(),
    }
}

fn outcome_style(outcome: &str) -> Style {
    let lower = outcome.to_ascii_lowercase();
    if lower.contains("fail") || lower.contains("error") || lower.contains("reject") {
        red()
    } else if lower.contains("skip") || lower.contains("already") || lower.contains("exist") {
        dim()
    } else {
        green()
    }
}

/// Rows of cells, each column padded to its widest cell (measured without colour),
/// then coloured by `paint_cell(row, column, padded text)`.
fn table(rows: &[Vec<String>], paint_cell: impl Fn(usize, usize, &str) -> String) -> String {
    let columns = rows.iter().map(Vec::len).max().unwrap_or(0);
    let widths: Vec<usize> = (0..columns)
        .map(|c| rows.iter().filter_map(|r| r.get(c)).map(|s| measure_text_width(s)).max().unwrap_or(0))
        .collect();
    let mut text = String::new();
    for (r, row) in rows.iter().enumerate() {
        let mut line = String::from("  ");
        for (c, cell) in row.iter().enumerate() {
            let last = c + 1 == row.len();
            let painted = paint_cell(r, c, cell);
            line.push_str(&painted);
            if !last {
                line.push_str(&" ".repeat(widths[c].saturating_sub(measure_text_width(cell)) + 2));
            }
        }
        text.push_str(line.trim_end());
        text.push('\n');
    }
    text
}

fn summary_table(outcome: &ReleaseOutcome, color: bool) -> String {
    let heading = |name: &str| format!("{}\n", paint(color, bold(), name));
    let mut text = String::new();
    if !outcome.tags.is_empty() {
        text.push_str(&heading("tags"));
        let rows: Vec<Vec<String>> = outcome.tags.iter().map(|t| vec![t.reference.clone(), t.digest.clone()]).collect();
        text.push_str(&table(&rows, |_, c, cell| match c {
            1 => paint(color, dim(), cell),
            _ => cell.to_string(),
        }));
    }
    if !outcome.packages.is_empty() {
        text.push_str(&heading("packages"));
        let rows: Vec<Vec<String>> =
            outcome.packages.iter().map(|p| vec![p.file.clone(), p.feed.clone(), p.outcome.clone()]).collect();
        text.push_str(&table(&rows, |_, c, cell| match c {
            2 => paint(color, outcome_style(cell), cell),
            _ => cell.to_string(),
        }));
    }
    if !outcome.steps.is_empty() {
        text.push_str(&heading("steps"));
        let rows: Vec<Vec<String>> = outcome
            .steps
            .iter()
            .map(|s| vec![s.step.name().to_string(), s.status.label().to_string(), format!("{:.2}s", s.seconds)])
            .collect();
        // Right-align the times.
        let time_width = rows.iter().map(|r| r[2].len()).max().unwrap_or(0);
        let rows: Vec<Vec<String>> = rows
            .into_iter()
            .map(|mut r| {
                r[2] = format!("{:>time_width$}", r[2]);
                r
            })
            .collect();
        text.push_str(&table(&rows, |r, c, cell| match c {
            1 => paint(color, status_style(outcome.steps[r].status), cell),
            _ => cell.to_string(),
        }));
    }
    text
}

fn final_line(outcome: &ReleaseOutcome) -> String {
    if outcome.dry_run {
        return "dry run: nothing changed".to_string();
    }
    let mut notes = Vec::new();
    if outcome.resumed {
        notes.push("resumed".to_string());
    }
    if let Some(journal) = &outcome.journal {
        notes.push(format!("journal {journal}"));
    }
    let notes = match notes.is_empty() {
        true => String::new(),
        false => format!(" ({})", notes.join(", ")),
    };
    match outcome.steps.iter().find(|s| s.status == StepStatus::Failed) {
        Some(failed) => {
            format!("release {} failed at {} after {}{notes}", outcome.version, failed.step, secs1(outcome.seconds))
        }
        None => format!("released {} in {}{notes}", outcome.version, secs1(outcome.seconds)),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::release::plan::{PlannedStep, StepAction};
    use crate::release::{PackageReport, StepReport, TagReport};

    /// A writer whose bytes the test reads back.
    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, data: &[u8]) -> io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(data);
            Ok(data.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    impl Buf {
        fn text(&self) -> String {
            String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
        }
    }

    /// A terminal for indicatif that records what is written (cursor moves dropped).
    #[derive(Debug, Clone, Default)]
    struct FakeTerm(Arc<Mutex<String>>);

    impl indicatif::TermLike for FakeTerm {
        fn width(&self) -> u16 {
            80
        }
        fn move_cursor_up(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn move_cursor_down(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn move_cursor_right(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn move_cursor_left(&self, _: usize) -> io::Result<()> {
            Ok(())
        }
        fn write_line(&self, s: &str) -> io::Result<()> {
            let mut text = self.0.lock().unwrap();
            text.push_str(s);
            text.push('\n');
            Ok(())
        }
        fn write_str(&self, s: &str) -> io::Result<()> {
            self.0.lock().unwrap().push_str(s);
            Ok(())
        }
        fn clear_line(&self) -> io::Result<()> {
            Ok(())
        }
        fn flush(&self) -> io::Result<()> {
            Ok(())
        }
    }

    struct Harness {
        renderer: Renderer,
        out: Buf,
        err: Buf,
        term: FakeTerm,
    }

    fn harness(mode: Mode, style: OutputStyle, color: bool) -> Harness {
        let (out, err, term) = (Buf::default(), Buf::default(), FakeTerm::default());
        let target = ProgressDrawTarget::term_like(Box::new(term.clone()));
        let renderer =
            Renderer::with_parts(style, mode, color, color, Box::new(out.clone()), Box::new(err.clone()), target);
        Harness { renderer, out, err, term }
    }

    fn events() -> Vec<Event> {
        vec![
            Event::StepStarted { step: StepKind::Bump, summary: "bump VERSION".into() },
            Event::StepFinished {
                step: StepKind::Bump,
                status: StepStatus::Done,
                seconds: 0.01,
                summary: vec!["1.2.3 → 1.2.4".into()],
                result: serde_json::json!({"version": "1.2.4"}),
            },
            Event::StepStarted { step: StepKind::Build, summary: "build 2 platforms".into() },
            Event::Log { step: StepKind::Build, scope: "linux/amd64".into(), line: "#1 compiling\n".into() },
            Event::Log { step: StepKind::Build, scope: "linux/arm64".into(), line: "\x1b[32m#1 load\x1b[0m".into() },
            Event::Warning { message: "cache miss for linux/arm64".into() },
            Event::StepFinished {
                step: StepKind::Build,
                status: StepStatus::Done,
                seconds: 1.23,
                summary: vec!["2 images".into(), "linux/amd64, linux/arm64".into()],
                result: serde_json::Value::Null,
            },
            Event::StepStarted { step: StepKind::Publish, summary: "push 1 package".into() },
            Event::Progress { step: StepKind::Publish, task: "app.nupkg → nuget".into(), sent: 0, total: 40 << 20 },
            Event::Progress {
                step: StepKind::Publish,
                task: "app.nupkg → nuget".into(),
                sent: 1 << 20,
                total: 40 << 20,
            },
            Event::Progress {
                step: StepKind::Publish,
                task: "app.nupkg → nuget".into(),
                sent: 12 << 20,
                total: 40 << 20,
            },
            Event::Progress {
                step: StepKind::Publish,
                task: "app.nupkg → nuget".into(),
                sent: 40 << 20,
                total: 40 << 20,
            },
            Event::StepFinished {
                step: StepKind::Publish,
                status: StepStatus::Done,
                seconds: 2.0,
                summary: vec!["pushed app.nupkg".into()],
                result: serde_json::Value::Null,
            },
            Event::StepFinished {
                step: StepKind::Git,
                status: StepStatus::Skipped,
                seconds: 0.0,
                summary: vec!["[release] git = false".into()],
                result: serde_json::Value::Null,
            },
        ]
    }

    fn outcome(dry_run: bool) -> ReleaseOutcome {
        let step = |step, status, seconds| StepReport { step, status, seconds, summary: vec![] };
        ReleaseOutcome {
            version: "1.2.4".into(),
            previous: "1.2.3".into(),
            dry_run,
            journal: (!dry_run).then(|| ".castoff/journal/1.2.4.json".into()),
            resumed: false,
            steps: vec![
                step(StepKind::Bump, StepStatus::Done, 0.013),
                step(StepKind::Build, StepStatus::Done, 1.234),
                step(StepKind::Publish, StepStatus::AlreadyDone, 12.5),
                step(StepKind::Git, StepStatus::Skipped, 0.0),
            ],
            tags: vec![
                TagReport { reference: "ghcr.io/acme/app:1.2.4".into(), digest: "sha256:aaa111".into() },
                TagReport { reference: "ghcr.io/acme/app:latest".into(), digest: "sha256:bbb222".into() },
            ],
            packages: vec![
                PackageReport {
                    file: "Acme.App.1.2.4.nupkg".into(),
                    feed: "nuget.org".into(),
                    outcome: "pushed".into(),
                },
                PackageReport {
                    file: "Acme.App.1.2.4.nupkg".into(),
                    feed: "github".into(),
                    outcome: "already there".into(),
                },
            ],
            seconds: 3.4,
        }
    }

    fn plan() -> Plan {
        Plan {
            previous: "1.2.3".into(),
            version: "1.2.4".into(),
            bump_reason: "sources changed".into(),
            journal: ".castoff/journal/1.2.4.json".into(),
            resume: None,
            steps: vec![
                PlannedStep {
                    step: StepKind::Bump,
                    action: StepAction::Run,
                    summary: "VERSION 1.2.3 → 1.2.4".into(),
                    details: vec!["write VERSION".into()],
                },
                PlannedStep {
                    step: StepKind::Git,
                    action: StepAction::Skip { reason: "git = false".into() },
                    summary: "commit and tag".into(),
                    details: vec![],
                },
            ],
            warnings: vec!["no feeds configured".into()],
        }
    }

    fn run(h: &Harness) {
        for event in events() {
            h.renderer.event(&event);
        }
    }

    #[test]
    fn json_prints_one_line_per_finished_step_and_a_result() {
        let h = harness(Mode::Json, OutputStyle { json: true, ..Default::default() }, false);
        run(&h);
        h.renderer.finish(&outcome(false)).unwrap();
        let out = h.out.text();
        let lines: Vec<serde_json::Value> = out.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 5, "{out}");
        for line in &lines[..4] {
            assert_eq!(line["event"], "step-finished");
        }
        assert_eq!(lines[1]["step"], "build");
        assert_eq!(lines[3]["status"], "skipped");
        let result = &lines[4];
        assert_eq!(result["event"], "result");
        assert_eq!(result["version"], "1.2.4");
        assert_eq!(result["tags"][0]["digest"], "sha256:aaa111");
        assert_eq!(h.err.text(), "warning: cache miss for linux/arm64\n");
    }

    #[test]
    fn json_plan_is_one_object() {
        let h = harness(Mode::Json, OutputStyle { json: true, ..Default::default() }, false);
        h.renderer.plan(&plan()).unwrap();
        let out = h.out.text();
        assert_eq!(out.lines().count(), 1);
        let value: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(value["event"], "plan");
        assert_eq!(value["version"], "1.2.4");
        assert_eq!(value["steps"][1]["action"], "skip");
        assert!(out.starts_with(r#"{"event":"plan","#), "{out}");
    }

    #[test]
    fn plain_prints_one_line_per_event() {
        let h = harness(Mode::Plain, OutputStyle::default(), false);
        run(&h);
        let err = h.err.text();
        let lines: Vec<&str> = err.lines().collect();
        // Progress: 0 %, 25 % (12 of 40 MiB) and 100 %; the 1 MiB event stays in the 0 % quarter.
        let expected = [
            "[bump] started: bump VERSION",
            "[bump] done in 0.0s: 1.2.3 → 1.2.4",
            "[build] started: build 2 platforms",
            "[build] linux/amd64: #1 compiling",
            "[build] linux/arm64: #1 load",
            "warning: cache miss for linux/arm64",
            "[build] done in 1.2s: 2 images; linux/amd64, linux/arm64",
            "[publish] started: push 1 package",
            "[publish] app.nupkg → nuget: 0 B / 40.0 MiB",
            "[publish] app.nupkg → nuget: 12.0 MiB / 40.0 MiB",
            "[publish] app.nupkg → nuget: 40.0 MiB / 40.0 MiB",
            "[publish] done in 2.0s: pushed app.nupkg",
            "[git] skipped: [release] git = false",
        ];
        assert_eq!(lines, expected);
        assert!(h.out.text().is_empty());
        assert!(!err.contains('\x1b'));
    }

    #[test]
    fn plain_quiet_prints_warnings_and_failures_only() {
        let h = harness(Mode::Plain, OutputStyle { quiet: true, ..Default::default() }, false);
        run(&h);
        h.renderer.event(&Event::StepFinished {
            step: StepKind::Pack,
            status: StepStatus::Failed,
            seconds: 0.5,
            summary: vec!["dotnet pack exited with 1".into()],
            result: serde_json::Value::Null,
        });
        h.renderer.plan(&plan()).unwrap();
        h.renderer.finish(&outcome(false)).unwrap();
        assert_eq!(
            h.err.text(),
            "warning: cache miss for linux/arm64\n[pack] failed in 0.5s: dotnet pack exited with 1\n"
        );
        assert_eq!(h.out.text(), "released 1.2.4 in 3.4s (journal .castoff/journal/1.2.4.json)\n");
    }

    #[test]
    fn summary_table_lists_tags_packages_and_steps() {
        let h = harness(Mode::Plain, OutputStyle::default(), false);
        h.renderer.finish(&outcome(false)).unwrap();
        let out = h.out.text();
        for needle in [
            "tags",
            "packages",
            "steps",
            "sha256:aaa111",
            "sha256:bbb222",
            "ghcr.io/acme/app:latest",
            "nuget.org",
            "github",
            "pushed",
            "already there",
            "0.01s",
            "1.23s",
            "12.50s",
            "0.00s",
            "already done",
        ] {
            assert!(out.contains(needle), "missing {needle:?} in\n{out}");
        }
        // Columns line up: both digests start at the same column.
        let column = |needle: &str| out.lines().find_map(|l| l.find(needle)).unwrap();
        assert_eq!(column("sha256:aaa111"), column("sha256:bbb222"));
        assert_eq!(column("pushed"), column("already there"));
        assert!(out.ends_with("released 1.2.4 in 3.4s (journal .castoff/journal/1.2.4.json)\n"), "{out}");
        assert!(!out.contains('\x1b'));

        let h = harness(Mode::Plain, OutputStyle::default(), false);
        h.renderer.finish(&outcome(true)).unwrap();
        assert!(h.out.text().ends_with("dry run: nothing changed\n"));
    }

    #[test]
    fn human_plan_goes_to_stdout_and_warnings_to_stderr() {
        let h = harness(Mode::Plain, OutputStyle::default(), false);
        h.renderer.plan(&plan()).unwrap();
        assert_eq!(h.out.text(), plan().human().join("\n") + "\n");
        assert_eq!(h.err.text(), "warning: no feeds configured\n");
    }

    #[test]
    fn tty_without_colour_has_no_escapes() {
        let h = harness(Mode::Tty, OutputStyle::default(), false);
        h.renderer.plan(&plan()).unwrap();
        run(&h);
        h.renderer.finish(&outcome(false)).unwrap();
        let term = h.term.0.lock().unwrap().clone();
        assert!(term.contains("✓ build 1.2s  2 images"), "{term}");
        assert!(term.contains("  ✓ linux/amd64"), "{term}");
        assert!(term.contains("– git 0.0s  [release] git = false"), "{term}");
        assert!(term.contains("warning: cache miss"), "{term}");
        assert!(!term.contains('\x1b'), "{term:?}");
        let out = h.out.text();
        assert!(out.contains("sha256:aaa111"));
        assert!(!out.contains('\x1b'), "{out:?}");

        // With colour the same output carries escapes (so the check above means something).
        let h = harness(Mode::Tty, OutputStyle::default(), true);
        run(&h);
        h.renderer.finish(&outcome(false)).unwrap();
        assert!(h.term.0.lock().unwrap().contains('\x1b'));
        assert!(h.out.text().contains('\x1b'));
    }

    #[test]
    fn tty_failed_build_marks_the_named_platform() {
        let h = harness(Mode::Tty, OutputStyle::default(), false);
        for scope in ["linux/amd64", "linux/arm64"] {
            h.renderer.event(&Event::Log { step: StepKind::Build, scope: scope.into(), line: "step".into() });
        }
        h.renderer.event(&Event::StepFinished {
            step: StepKind::Build,
            status: StepStatus::Failed,
            seconds: 3.0,
            summary: vec!["linux/arm64: exit status 1".into()],
            result: serde_json::Value::Null,
        });
        let term = h.term.0.lock().unwrap().clone();
        assert!(term.contains("✗ build 3.0s  linux/arm64: exit status 1"), "{term}");
        assert!(term.contains("  ✓ linux/amd64"), "{term}");
        assert!(term.contains("  ✗ linux/arm64"), "{term}");
    }

    #[test]
    fn renderer_is_send_and_sync_and_takes_events_from_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Renderer>();
        let h = harness(Mode::Plain, OutputStyle::default(), false);
        std::thread::scope(|scope| {
            for platform in ["linux/amd64", "linux/arm64", "windows/amd64"] {
                let renderer = &h.renderer;
                scope.spawn(move || {
                    for n in 0..50 {
                        renderer.event(&Event::Log {
                            step: StepKind::Build,
                            scope: platform.into(),
                            line: format!("line {n}"),
                        });
                    }
                });
            }
        });
        let err = h.err.text();
        assert_eq!(err.lines().count(), 150);
        assert!(err.lines().all(|l| l.starts_with("[build] ") && l.contains(": line ")));
    }

    #[test]
    fn helpers() {
        assert_eq!(bytes(0), "0 B");
        assert_eq!(bytes(12 << 20), "12.0 MiB");
        assert_eq!(bytes(1536), "1.5 KiB");
        assert_eq!(one_line("a\rprogress 50%\rprogress 100%\n"), "progress 100%");
        assert_eq!(one_line("\x1b[1mbold\x1b[0m\tx"), "bold x");
    }
}
