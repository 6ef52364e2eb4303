//! The project lock: one writer at a time for VERSION and the source baseline.
//!
//! An advisory `flock` on `.castoff/lock`. The kernel drops it when the holder exits,
//! even on SIGKILL, so a crashed castoff never leaves a stale lock behind. The file is
//! never deleted (deleting lock files races with new lockers); after taking the lock the
//! holder writes who it is into it, so a waiter that gives up can name the holder.
//! The lock file is opened without following a symlink: a committed `.castoff/lock`
//! link must not make castoff truncate the file it points at.

use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{Read, Seek, SeekFrom, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::error::{Error, IoContext, Location, Result};

/// How long a second castoff waits before failing with the holder's name. Bumps take
/// milliseconds, so this only runs out when the holder is stuck or doing a long release.
pub const DEFAULT_WAIT: Duration = Duration::from_secs(120);

/// Held for as long as this value lives.
#[derive(Debug)]
pub struct ProjectLock {
    file: File,
    path: PathBuf,
}

impl ProjectLock {
    /// Take the lock, waiting up to `wait` for another holder to finish.
    /// `purpose` is recorded for waiters, e.g. "castoff bump patch".
    pub fn acquire(path: &Path, purpose: &str, wait: Duration) -> Result<ProjectLock> {
        if let Some(dir) = path.parent() {
            fs::create_dir_all(dir).with_path("create directory", dir)?;
        }
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
            .open(path)
            .map_err(|e| match e.raw_os_error() {
                Some(code) if code == rustix::io::Errno::LOOP.raw_os_error() => symlinked_lock(path),
                _ => Error::io("open lock file", path, e),
            })?;
        let deadline = Instant::now() + wait;
        let mut pause = Duration::from_millis(2);
        loop {
            match file.try_lock() {
                Ok(()) => break,
                Err(TryLockError::WouldBlock) if Instant::now() < deadline => {
                    std::thread::sleep(pause);
                    pause = (pause * 2).min(Duration::from_millis(50));
                }
                Err(TryLockError::WouldBlock) => {
                    return Err(Error::Locked { path: path.to_path_buf(), holder: read_holder(path) })
                }
                Err(TryLockError::Error(e)) => return Err(Error::io("lock", path, e)),
            }
        }
        let mut lock = ProjectLock { file, path: path.to_path_buf() };
        lock.record_holder(purpose)?;
        Ok(lock)
    }

    fn record_holder(&mut self, purpose: &str) -> Result<()> {
        let started = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(0);
        let line = format!("pid {} · {purpose} · started {started}\n", std::process::id());
        self.file.set_len(0).with_path("write", &self.path)?;
        self.file.seek(SeekFrom::Start(0)).with_path("write", &self.path)?;
        self.file.write_all(line.as_bytes()).with_path("write", &self.path)?;
        Ok(())
    }
}

/// The error for a lock file that is a symlink (`shown` as the user should see it).
pub fn symlinked_lock(shown: &Path) -> Error {
    Error::invalid(
        Location::file(shown),
        "the lock file is a symlink; castoff never writes through one",
        format!("remove it (`rm {}`); castoff creates the lock file itself", shown.display()),
    )
}

/// Who holds the lock, as the holder recorded it; advisory locks do not block reading.
fn read_holder(path: &Path) -> String {
    let mut text = String::new();
    let recorded = File::open(path).and_then(|mut f| f.read_to_string(&mut text)).is_ok();
    let line = text.lines().next().unwrap_or("").trim();
    if !recorded || line.is_empty() {
        return "holder unknown".into();
    }
    match line.rsplit_once(" · started ") {
        Some((who, started)) => match started.parse::<u64>() {
            Ok(secs) => {
                let now = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs()).unwrap_or(secs);
                format!("{who}, running for {}s", now.saturating_sub(secs))
            }
            Err(_) => line.to_string(),
        },
        None => line.to_string(),
    }
}
