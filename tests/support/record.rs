//! Recording programs: a directory of `sh` wrappers, one per program name, to put first on
//! PATH. Each wrapper writes the argv it was called with (NUL-separated, one file per
//! call, so parallel calls never interleave) and then `exec`s the real program found on
//! the test's own PATH, so the command under test works exactly as before. Used to check
//! what castoff passes to the programs it starts (e.g. that no secret is in an argv).

use std::ffi::OsString;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use tempfile::TempDir;

use super::temp_dir;

/// The wrappers and the calls they recorded. Removed on drop.
pub struct Recorder {
    dir: TempDir,
}

/// One recorded call: the program's name, then its arguments.
pub type Call = Vec<String>;

impl Recorder {
    /// Wrappers for `programs` (names looked up on the current PATH; a missing one panics).
    pub fn new(programs: &[&str]) -> Recorder {
        let recorder = Recorder { dir: temp_dir() };
        fs::create_dir_all(recorder.bin_dir()).unwrap();
        fs::create_dir_all(recorder.calls_dir()).unwrap();
        let mktemp = find_on_path("mktemp");
        for name in programs {
            let real = find_on_path(name);
            let script = format!(
                "#!/bin/sh\n\
                 call=$({mktemp} {calls}/call.XXXXXXXXXX) || exit 97\n\
                 printf '%s\\0' {name} \"$@\" > \"$call\"\n\
                 exec {real} \"$@\"\n",
                mktemp = quote(&mktemp),
                calls = quote(&recorder.calls_dir()),
                name = quote(Path::new(name)),
                real = quote(&real),
            );
            let path = recorder.bin_dir().join(name);
            fs::write(&path, script).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        }
        recorder
    }

    /// The directory holding the wrappers.
    pub fn bin_dir(&self) -> PathBuf {
        self.dir.path().join("bin")
    }

    fn calls_dir(&self) -> PathBuf {
        self.dir.path().join("calls")
    }

    /// PATH with the wrappers first, then the test's own PATH.
    pub fn path_env(&self) -> OsString {
        let current = std::env::var_os("PATH").unwrap_or_default();
        let dirs = std::iter::once(self.bin_dir()).chain(std::env::split_paths(&current));
        std::env::join_paths(dirs).expect("PATH entries")
    }

    /// Every call recorded so far (in no particular order).
    pub fn calls(&self) -> Vec<Call> {
        let mut calls: Vec<Call> = fs::read_dir(self.calls_dir())
            .unwrap()
            .map(|entry| fs::read(entry.unwrap().path()).unwrap())
            .map(|bytes| {
                bytes.split(|b| *b == 0).map(|arg| String::from_utf8_lossy(arg).into_owned()).collect::<Vec<_>>()
            })
            .map(|mut call| {
                // printf ends every argument with NUL, so the split leaves an empty tail.
                if call.last().is_some_and(String::is_empty) {
                    call.pop();
                }
                call
            })
            .collect();
        calls.sort();
        calls
    }
}

/// The first executable `name` on PATH; panics when there is none.
fn find_on_path(name: &str) -> PathBuf {
    let search = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&search)
        .map(|dir| dir.join(name))
        .find(|path| path.metadata().is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0))
        .unwrap_or_else(|| panic!("`{name}` is not on PATH, so it cannot be recorded"))
}

/// `path` in single quotes for `sh`.
fn quote(path: &Path) -> String {
    format!("'{}'", path.display().to_string().replace('\'', r"'\''"))
}
