//! The only place castoff starts external programs (docker, buildah, credential
//! helpers, git). Keeping it in one module makes two invariants checkable: secrets go to
//! a child on stdin or in its environment, never in its argv; and every command castoff
//! would run can be shown by a dry run exactly as it would run.

use std::collections::VecDeque;
use std::fmt;
use std::io::{BufRead, BufReader};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

/// Lines of a streamed command's output kept for its error message.
pub const STREAM_TAIL: usize = 40;

/// How long a cancelled command's process group gets between SIGTERM and SIGKILL.
const TERMINATE_GRACE: Duration = Duration::from_secs(5);

/// Set by Ctrl-C while streamed commands run: they are stopped like a cancelled build.
static INTERRUPTED: AtomicBool = AtomicBool::new(false);
/// Streamed commands running now, each in its own process group.
static STREAMING: AtomicUsize = AtomicUsize::new(0);

/// Record a Ctrl-C. Returns whether a streamed command is running and will be stopped
/// (its process group does not get the terminal's SIGINT); when none is, the caller
/// should simply exit.
pub fn interrupt() -> bool {
    INTERRUPTED.store(true, Ordering::SeqCst);
    STREAMING.load(Ordering::SeqCst) > 0
}

/// Whether Ctrl-C was pressed while streamed commands ran.
pub fn interrupted() -> bool {
    INTERRUPTED.load(Ordering::SeqCst)
}

/// A program to run: argv, extra environment, optional stdin and working directory.
#[derive(Clone)]
pub struct Command {
    program: String,
    args: Vec<String>,
    /// (name, value, secret): secret values are never shown.
    env: Vec<(String, String, bool)>,
    stdin: Option<Vec<u8>>,
    dir: Option<PathBuf>,
}

/// What a finished program left behind.
#[derive(Debug, Clone)]
pub struct Output {
    /// The exit code; `None` when a signal ended it.
    pub code: Option<i32>,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
}

impl Output {
    pub fn success(&self) -> bool {
        self.code == Some(0)
    }

    /// `Ok(self)` on success; otherwise the error for `command`, with the tail of stderr.
    pub fn checked(self, command: &Command) -> Result<Output, ExecError> {
        if self.success() {
            return Ok(self);
        }
        let status = match self.code {
            Some(code) => format!("exit {code}"),
            None => "killed by a signal".into(),
        };
        Err(ExecError::Failed { command: command.to_string(), status, stderr: self.stderr_tail(10) })
    }

    /// The last `lines` lines of stderr, for error messages.
    pub fn stderr_tail(&self, lines: usize) -> String {
        let text = String::from_utf8_lossy(&self.stderr);
        let all: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
        all[all.len().saturating_sub(lines)..].join("\n")
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExecError {
    #[error("`{program}` was not found on PATH")]
    NotFound { program: String },
    #[error("could not run `{command}`: {source}")]
    Spawn {
        command: String,
        #[source]
        source: std::io::Error,
    },
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed { command: String, status: String, stderr: String },
}

impl Command {
    pub fn new(program: impl Into<String>) -> Command {
        Command { program: program.into(), args: Vec::new(), env: Vec::new(), stdin: None, dir: None }
    }

    pub fn arg(mut self, arg: impl Into<String>) -> Command {
        self.args.push(arg.into());
        self
    }

    pub fn args<I, S>(mut self, args: I) -> Command
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// An environment variable for the child, shown with the command (`DOCKER_BUILDKIT=1`).
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Command {
        self.env.push((key.into(), value.into(), false));
        self
    }

    /// An environment variable whose value is a secret: shown as `NAME=****`.
    pub fn secret_env(mut self, key: impl Into<String>, value: impl Into<String>) -> Command {
        self.env.push((key.into(), value.into(), true));
        self
    }

    /// Bytes for the child's stdin (how secrets reach credential helpers).
    pub fn stdin(mut self, bytes: impl Into<Vec<u8>>) -> Command {
        self.stdin = Some(bytes.into());
        self
    }

    pub fn dir(mut self, dir: impl AsRef<Path>) -> Command {
        self.dir = Some(dir.as_ref().to_path_buf());
        self
    }

    pub fn program(&self) -> &str {
        &self.program
    }

    pub fn argv(&self) -> impl Iterator<Item = &str> {
        std::iter::once(self.program.as_str()).chain(self.args.iter().map(String::as_str))
    }

    /// Run to completion, capturing stdout and stderr. A non-zero exit is not an error
    /// here; see [`Command::run_checked`].
    #[allow(clippy::disallowed_methods)] // the one place allowed to start processes
    pub fn run(&self) -> Result<Output, ExecError> {
        let expression = self.with_setup(duct::cmd(&self.program, &self.args).stdout_capture().stderr_capture());
        match expression.run() {
            Ok(output) => Ok(Output { code: output.status.code(), stdout: output.stdout, stderr: output.stderr }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                Err(ExecError::NotFound { program: self.program.clone() })
            }
            Err(source) => Err(ExecError::Spawn { command: self.to_string(), source }),
        }
    }

    /// `expression` with this command's environment, directory and stdin (none: the
    /// null device, so a child never waits on castoff's terminal); exit codes are
    /// judged by the caller.
    fn with_setup(&self, mut expression: duct::Expression) -> duct::Expression {
        for (key, value, _) in &self.env {
            expression = expression.env(key, value);
        }
        if let Some(dir) = &self.dir {
            expression = expression.dir(dir);
        }
        let expression = match &self.stdin {
            Some(bytes) => expression.stdin_bytes(bytes.clone()),
            None => expression.stdin_null(),
        };
        expression.unchecked()
    }

    /// Run, and turn a non-zero exit into an error carrying the tail of stderr.
    pub fn run_checked(&self) -> Result<Output, ExecError> {
        self.run()?.checked(self)
    }

    /// Run with stdout and stderr merged, handing each line to `on_line` as it comes
    /// (builders print progress for minutes; the user should see it live). The last
    /// [`STREAM_TAIL`] lines are kept in `Output::stderr` for error messages.
    ///
    /// When `cancel` becomes true (another platform failed) or Ctrl-C is pressed, the
    /// command's whole process group gets SIGTERM, then SIGKILL after a grace period:
    /// builders run helpers (the buildx plugin, BuildKit steps) that killing the direct
    /// child alone would leave building and pushing. Each command runs in its own process
    /// group for that, which is also why Ctrl-C is relayed through [`interrupt`].
    #[allow(clippy::disallowed_methods)] // the one place allowed to start processes
    pub fn run_streaming(&self, cancel: &AtomicBool, on_line: &(dyn Fn(&str) + Sync)) -> Result<Output, ExecError> {
        let expression =
            self.with_setup(duct::cmd(&self.program, &self.args).stderr_to_stdout().before_spawn(|child| {
                child.process_group(0);
                Ok(())
            }));
        STREAMING.fetch_add(1, Ordering::SeqCst);
        let _running = Running;
        let handle = match expression.reader() {
            Ok(handle) => handle,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(ExecError::NotFound { program: self.program.clone() })
            }
            Err(source) => return Err(ExecError::Spawn { command: self.to_string(), source }),
        };
        let tail = std::thread::scope(|scope| {
            let reader = scope.spawn(|| {
                let mut tail: VecDeque<String> = VecDeque::new();
                for line in BufReader::new(&handle).split(b'\n') {
                    let Ok(line) = line else { break };
                    let text = String::from_utf8_lossy(&line);
                    let text = text.trim_end_matches('\r');
                    on_line(text);
                    if tail.len() == STREAM_TAIL {
                        tail.pop_front();
                    }
                    tail.push_back(text.to_string());
                }
                tail
            });
            let mut terminated: Option<std::time::Instant> = None;
            while !reader.is_finished() {
                let stop = cancel.load(Ordering::Relaxed) || interrupted();
                match terminated {
                    None if stop => {
                        signal_group(&handle, rustix::process::Signal::TERM);
                        terminated = Some(std::time::Instant::now());
                    }
                    Some(at) if at.elapsed() > TERMINATE_GRACE => {
                        signal_group(&handle, rustix::process::Signal::KILL);
                        let _ = handle.kill();
                    }
                    _ => {}
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            reader.join().unwrap_or_default()
        });
        let status = handle.try_wait().map_err(|source| ExecError::Spawn { command: self.to_string(), source })?;
        let code = match status {
            Some(output) => output.status.code(),
            None => None,
        };
        let merged: Vec<String> = tail.into();
        Ok(Output { code, stdout: Vec::new(), stderr: merged.join("\n").into_bytes() })
    }
}

/// Decrements the count of running streamed commands when one ends, however it ends.
struct Running;

impl Drop for Running {
    fn drop(&mut self) {
        STREAMING.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Send `signal` to the process group led by the command's child (best effort: it may
/// have exited already).
fn signal_group(handle: &duct::ReaderHandle, signal: rustix::process::Signal) {
    for pid in handle.pids() {
        if let Some(pid) = rustix::process::Pid::from_raw(pid as i32) {
            let _ = rustix::process::kill_process_group(pid, signal);
        }
    }
}

/// The command line as a shell would read it. Secret environment values are not shown.
impl fmt::Display for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (key, value, secret) in &self.env {
            match secret {
                true => write!(f, "{key}=**** ")?,
                false => write!(f, "{key}={} ", shell_quote(value))?,
            }
        }
        let quoted: Vec<String> = self.argv().map(shell_quote).collect();
        f.write_str(&quoted.join(" "))
    }
}

impl fmt::Debug for Command {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Command({self})")
    }
}

fn shell_quote(arg: &str) -> String {
    let plain = !arg.is_empty() && arg.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_./:=@+,%".contains(&b));
    if plain {
        arg.to_string()
    } else {
        format!("'{}'", arg.replace('\'', r"'\''"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shows_argv_quoted_and_hides_env() {
        let command =
            Command::new("docker").args(["manifest", "push", "a b"]).env("MODE", "x y").secret_env("TOKEN", "hunter2");
        assert_eq!(command.to_string(), "MODE='x y' TOKEN=**** docker manifest push 'a b'");
    }

    #[test]
    fn runs_and_reports() {
        let output = Command::new("sh").args(["-c", "cat; echo oops >&2; exit 3"]).stdin("in").run().unwrap();
        assert_eq!(output.code, Some(3));
        assert_eq!(output.stdout, b"in");
        assert_eq!(output.stderr_tail(1), "oops");
        assert!(matches!(Command::new("castoff-no-such-program").run(), Err(ExecError::NotFound { .. })));
    }

    #[test]
    fn streams_lines_and_can_be_cancelled() {
        let seen = std::sync::Mutex::new(Vec::new());
        let record = |line: &str| seen.lock().unwrap().push(line.to_string());
        let never = AtomicBool::new(false);
        let output = Command::new("sh").args(["-c", "echo one; echo two >&2; exit 4"]).run_streaming(&never, &record);
        let output = output.unwrap();
        assert_eq!(output.code, Some(4));
        assert_eq!(*seen.lock().unwrap(), ["one", "two"]);
        assert_eq!(output.stderr_tail(1), "two");

        let cancelled = AtomicBool::new(true);
        let started = std::time::Instant::now();
        let output = Command::new("sleep").arg("30").run_streaming(&cancelled, &|_| {}).unwrap();
        assert!(!output.success());
        assert!(started.elapsed() < Duration::from_secs(20), "the child was not killed");
    }
}
