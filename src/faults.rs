//! Crash injection: a test hook, not a feature. The crash tests kill a release at an
//! exact place and check that a re-run finishes it, with nothing done twice.
//!
//! `CASTOFF_CRASH_AT=<point>` makes castoff SIGKILL itself when it reaches `<point>`
//! (a name given to [`crash_point`] at that place in the code).
//!
//! `CASTOFF_CRASH_AT=<point>:<bytes>` makes it SIGKILL itself once at least `<bytes>`
//! bytes of an upload body have been read at `<point>` ([`crash_after_bytes`]). The
//! upload points are `upload:nuget` (the multipart body of a NuGet push) and
//! `upload:blob` (a registry blob upload). A point may itself contain `:`; a last
//! `:`-separated part made of digits only is the byte count.
//!
//! SIGKILL, not a panic or an exit: nothing runs after it (no destructors, no buffered
//! writes flushed, no temp files removed), as when a CI runner is killed. Unset, the
//! hook costs one environment read per process.

use std::sync::OnceLock;

/// The variable that names the crash point.
pub const CRASH_AT_ENV: &str = "CASTOFF_CRASH_AT";

/// What `CASTOFF_CRASH_AT` asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CrashAt {
    point: String,
    /// For upload points: crash once this many body bytes have been read.
    bytes: Option<u64>,
}

fn configured() -> Option<&'static CrashAt> {
    static CRASH_AT: OnceLock<Option<CrashAt>> = OnceLock::new();
    CRASH_AT.get_or_init(|| std::env::var(CRASH_AT_ENV).ok().as_deref().and_then(parse)).as_ref()
}

fn parse(text: &str) -> Option<CrashAt> {
    let text = text.trim();
    if text.is_empty() {
        return None;
    }
    let counted = text.rsplit_once(':').and_then(|(point, bytes)| {
        let digits = !point.is_empty() && !bytes.is_empty() && bytes.bytes().all(|b| b.is_ascii_digit());
        digits.then(|| bytes.parse().ok().map(|bytes| CrashAt { point: point.to_string(), bytes: Some(bytes) }))?
    });
    Some(counted.unwrap_or_else(|| CrashAt { point: text.to_string(), bytes: None }))
}

/// `CASTOFF_CRASH_AT=<point>` makes castoff SIGKILL itself when it reaches `<point>`:
/// how the crash tests kill a release at an exact place. Unset, it costs one env read
/// per process (cached).
pub fn crash_point(point: &str) {
    if let Some(at) = configured() {
        if at.bytes.is_none() && at.point == point {
            die(point);
        }
    }
}

/// `CASTOFF_CRASH_AT=<point>:<bytes>`: SIGKILL once at least `<bytes>` of an upload body
/// at `<point>` have been read (`sent` is the count so far).
pub fn crash_after_bytes(point: &str, sent: u64) {
    if let Some(CrashAt { point: at, bytes: Some(bytes) }) = configured() {
        if sent >= *bytes && at == point {
            die(point);
        }
    }
}

/// SIGKILL this process; abort if the signal cannot be sent.
fn die(point: &str) -> ! {
    eprintln!("castoff: {CRASH_AT_ENV}={point}: killing this process (test hook)");
    let _ = rustix::process::kill_process(rustix::process::getpid(), rustix::process::Signal::KILL);
    std::process::abort()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn points_and_byte_counts() {
        let at = |point: &str, bytes: Option<u64>| Some(CrashAt { point: point.into(), bytes });
        assert_eq!(parse("after:build"), at("after:build", None));
        assert_eq!(parse("upload:nuget:65536"), at("upload:nuget", Some(65536)));
        assert_eq!(parse("upload:blob:0"), at("upload:blob", Some(0)));
        assert_eq!(parse("bump"), at("bump", None));
        assert_eq!(parse(" step:publish "), at("step:publish", None));
        assert_eq!(parse(":12"), at(":12", None));
        assert_eq!(parse("x:"), at("x:", None));
        assert_eq!(parse("a:99999999999999999999999"), at("a:99999999999999999999999", None));
        assert_eq!(parse(""), None);
        if std::env::var_os(CRASH_AT_ENV).is_none() {
            // Unset: both hooks return.
            crash_point("bump");
            crash_after_bytes("upload:nuget", u64::MAX);
        }
    }
}
