//! When to try a registry request again, and how long to wait first.
//!
//! Exponential backoff with "equal jitter" (half the delay fixed, half random) so that
//! parallel pushes that failed together do not retry in lockstep, and `Retry-After`
//! (delta-seconds or an HTTP-date) honoured when the registry sends it. Every wait is
//! capped by [`RetryPolicy::max_delay`], and no wait is started that would end past
//! [`RetryPolicy::total`]. The jitter needs no `rand` crate: std's `RandomState` is
//! randomly keyed per instance, which is plenty for spreading retries.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hash, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use super::client::RetryPolicy;

/// HTTP statuses that mean "try again later": rate limiting and gateway trouble.
pub(crate) const RETRY_STATUSES: [u16; 5] = [429, 500, 502, 503, 504];

/// The retry budget of one logical request (its redirect hops, token fetch and
/// retries share it): how many attempts failed, and since when it runs. Counting
/// failures rather than requests means a token fetch or a redirect that succeeded does
/// not use up a retry.
#[derive(Debug)]
pub(crate) struct Budget {
    started: Instant,
    failures: u32,
}

impl Budget {
    pub fn start() -> Budget {
        Budget { started: Instant::now(), failures: 0 }
    }

    /// Count one attempt that failed in a way worth retrying.
    pub fn record_failure(&mut self) {
        self.failures = self.failures.saturating_add(1);
    }

    /// Attempts that failed so far.
    pub fn failures(&self) -> u32 {
        self.failures
    }

    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// How long to wait before the next attempt, or `None` to give up: no attempts or
    /// time left. `retry_after` is what the registry asked for, if anything.
    pub fn next_wait(&self, policy: &RetryPolicy, retry_after: Option<Duration>) -> Option<Duration> {
        next_wait(policy, self.failures, self.elapsed(), retry_after, jitter())
    }
}

/// The wait before attempt `made + 1`, given `made` attempts so far and `elapsed` time;
/// `None` when the policy is exhausted. `jitter` is in `[0, 1)`.
pub(crate) fn next_wait(
    policy: &RetryPolicy,
    made: u32,
    elapsed: Duration,
    retry_after: Option<Duration>,
    jitter: f64,
) -> Option<Duration> {
    if made >= policy.attempts {
        return None;
    }
    let wait = match retry_after {
        Some(asked) => asked.min(policy.max_delay),
        None => backoff(policy, made, jitter),
    };
    if elapsed.saturating_add(wait) >= policy.total {
        return None;
    }
    Some(wait)
}

/// The backoff after `made` failed attempts (1 → `base_delay`, then doubling), capped at
/// `max_delay`, with its upper half randomised by `jitter`.
pub(crate) fn backoff(policy: &RetryPolicy, made: u32, jitter: f64) -> Duration {
    let doublings = made.saturating_sub(1).min(31);
    let full = policy.base_delay.saturating_mul(1u32 << doublings).min(policy.max_delay);
    let half = full / 2;
    half + half.mul_f64(jitter.clamp(0.0, 1.0))
}

/// A number in `[0, 1)` that differs between calls and between processes.
pub(crate) fn jitter() -> f64 {
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let mut hasher = RandomState::new().build_hasher();
    COUNTER.fetch_add(1, Ordering::Relaxed).hash(&mut hasher);
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_nanos()).unwrap_or(0).hash(&mut hasher);
    (hasher.finish() >> 11) as f64 / (1u64 << 53) as f64
}

/// A `Retry-After` value: delta-seconds, or an HTTP-date (a date in the past means now).
/// `None` when it is neither.
pub(crate) fn parse_retry_after(value: &str, now: SystemTime) -> Option<Duration> {
    let value = value.trim();
    if !value.is_empty() && value.bytes().all(|b| b.is_ascii_digit()) {
        return Some(value.parse::<u64>().map_or(Duration::MAX, Duration::from_secs));
    }
    let when = parse_http_date(value)?;
    Some(when.duration_since(now).unwrap_or(Duration::ZERO))
}

const MONTHS: [&str; 12] = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/// An HTTP-date in any of the three forms RFC 9110 §5.6.7 requires recipients to accept:
/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), RFC 850 (`Sunday, 06-Nov-94 08:49:37
/// GMT`) and asctime (`Sun Nov  6 08:49:37 1994`). The weekday is not checked.
pub(crate) fn parse_http_date(text: &str) -> Option<SystemTime> {
    let parts: Vec<&str> = text.split_whitespace().collect();
    let (day, month, year, time) = match parts.as_slice() {
        [_, day, month, year, time, "GMT"] => (day.parse().ok()?, *month, year.parse().ok()?, *time),
        [_, date, time, "GMT"] => {
            let mut fields = date.split('-');
            let (day, month, year) = (fields.next()?, fields.next()?, fields.next()?);
            let year: i64 = year.parse().ok()?;
            // RFC 9110: a two-digit year more than 50 years ahead is in the past century.
            let year = if year < 100 {
                if year < 70 {
                    2000 + year
                } else {
                    1900 + year
                }
            } else {
                year
            };
            (day.parse().ok()?, month, year, *time)
        }
        [_, month, day, time, year] => (day.parse().ok()?, *month, year.parse().ok()?, *time),
        _ => return None,
    };
    let month = MONTHS.iter().position(|m| *m == month)? as u32 + 1;
    let mut clock = time.split(':').map(|field| field.parse::<u32>().ok());
    let (hour, minute, second) = (clock.next()??, clock.next()??, clock.next()??);
    if clock.next().is_some() || !(1..=31).contains(&day) || hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let days = days_from_civil(year, month, day);
    let seconds = days * 86_400 + i64::from(hour * 3600 + minute * 60 + second);
    let seconds = u64::try_from(seconds).ok()?;
    UNIX_EPOCH.checked_add(Duration::from_secs(seconds))
}

/// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year = (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy() -> RetryPolicy {
        RetryPolicy {
            attempts: 5,
            base_delay: Duration::from_millis(200),
            max_delay: Duration::from_secs(2),
            total: Duration::from_secs(30),
        }
    }

    #[test]
    fn backoff_doubles_and_caps_with_jitter_in_the_upper_half() {
        let p = policy();
        assert_eq!(backoff(&p, 1, 0.0), Duration::from_millis(100));
        assert_eq!(backoff(&p, 1, 0.999_999), Duration::from_micros(199_999) + Duration::from_nanos(900));
        assert_eq!(backoff(&p, 2, 0.0), Duration::from_millis(200));
        assert_eq!(backoff(&p, 3, 0.5), Duration::from_millis(600));
        assert_eq!(backoff(&p, 5, 0.0), Duration::from_secs(1), "capped at max_delay 2s, half fixed");
        assert_eq!(backoff(&p, 40, 0.0), Duration::from_secs(1), "no overflow on many attempts");
    }

    #[test]
    fn gives_up_when_attempts_or_time_run_out() {
        let p = policy();
        assert!(next_wait(&p, 1, Duration::ZERO, None, 0.0).is_some());
        assert!(next_wait(&p, 4, Duration::ZERO, None, 0.0).is_some());
        assert_eq!(next_wait(&p, 5, Duration::ZERO, None, 0.0), None, "5 attempts made: no sixth");
        assert_eq!(next_wait(&p, 1, Duration::from_secs(30), None, 0.0), None);
        assert_eq!(next_wait(&p, 1, Duration::from_millis(29_950), None, 0.0), None, "the wait would pass total");
        assert!(next_wait(&p, 1, Duration::from_millis(29_850), None, 0.0).is_some());
    }

    #[test]
    fn retry_after_is_honoured_but_capped() {
        let p = policy();
        assert_eq!(next_wait(&p, 1, Duration::ZERO, Some(Duration::from_secs(1)), 0.9), Some(Duration::from_secs(1)));
        assert_eq!(next_wait(&p, 1, Duration::ZERO, Some(Duration::from_secs(600)), 0.0), Some(p.max_delay));
        assert_eq!(next_wait(&p, 1, Duration::ZERO, Some(Duration::ZERO), 0.0), Some(Duration::ZERO));
        assert_eq!(next_wait(&p, 1, Duration::from_secs(29), Some(Duration::from_secs(2)), 0.0), None);
    }

    #[test]
    fn retry_after_seconds_and_dates() {
        let now = UNIX_EPOCH + Duration::from_secs(784_111_777); // Sun, 06 Nov 1994 08:49:37 GMT
        assert_eq!(parse_retry_after("120", now), Some(Duration::from_secs(120)));
        assert_eq!(parse_retry_after(" 0 ", now), Some(Duration::ZERO));
        assert_eq!(parse_retry_after("99999999999999999999999", now), Some(Duration::MAX));
        assert_eq!(parse_retry_after("Sun, 06 Nov 1994 08:50:07 GMT", now), Some(Duration::from_secs(30)));
        assert_eq!(parse_retry_after("Sunday, 06-Nov-94 08:49:47 GMT", now), Some(Duration::from_secs(10)));
        assert_eq!(parse_retry_after("Sun Nov  6 08:49:38 1994", now), Some(Duration::from_secs(1)));
        assert_eq!(parse_retry_after("Sat, 05 Nov 1994 08:49:37 GMT", now), Some(Duration::ZERO), "past: now");
        for bad in ["", "-1", "1.5", "soon", "Sun, 06 Nov 1994 25:00:00 GMT", "Sun, 06 Foo 1994 08:49:37 GMT"] {
            assert_eq!(parse_retry_after(bad, now), None, "{bad:?}");
        }
    }

    #[test]
    fn http_dates() {
        let at = |s| parse_http_date(s).and_then(|t| t.duration_since(UNIX_EPOCH).ok()).map(|d| d.as_secs());
        assert_eq!(at("Thu, 01 Jan 1970 00:00:00 GMT"), Some(0));
        assert_eq!(at("Sun, 06 Nov 1994 08:49:37 GMT"), Some(784_111_777));
        assert_eq!(at("Tue, 29 Feb 2000 12:00:00 GMT"), Some(951_825_600));
        assert_eq!(at("Wed, 21 Oct 2015 07:28:00 GMT"), Some(1_445_412_480));
        assert_eq!(at("Wednesday, 21-Oct-15 07:28:00 GMT"), Some(1_445_412_480));
        assert_eq!(at("Wed Oct 21 07:28:00 2015"), Some(1_445_412_480));
        assert_eq!(at("Wed, 21 Oct 2015 07:28:00 UTC"), None);
        assert_eq!(at("Wed, 21 Oct 2015 07:28 GMT"), None);
        assert_eq!(at("Wed, 21 Oct 2015 07:28:00:00 GMT"), None);
        assert_eq!(at("Wed, 32 Oct 2015 07:28:00 GMT"), None);
    }

    #[test]
    fn jitter_is_in_range_and_varies() {
        let samples: Vec<f64> = (0..64).map(|_| jitter()).collect();
        assert!(samples.iter().all(|j| (0.0..1.0).contains(j)));
        assert!(samples.windows(2).any(|w| w[0] != w[1]));
    }

    #[test]
    fn budget_counts_failures() {
        let mut budget = Budget::start();
        let p = RetryPolicy { attempts: 2, ..policy() };
        budget.record_failure();
        assert!(budget.next_wait(&p, None).is_some());
        budget.record_failure();
        assert_eq!(budget.next_wait(&p, None), None);
        assert_eq!(budget.failures(), 2);
    }
}
