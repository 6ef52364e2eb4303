//! Secrets (registry passwords, tokens, feed API keys) in a type that never prints.
//!
//! `Debug` and `Display` show `****`, there is no `Serialize`, and the only way to the
//! text is [`Secret::expose`], which is greppable: every call site is a place a secret
//! leaves castoff (an HTTP header, a helper's stdin), and nowhere else.

use std::fmt;

#[derive(Clone, PartialEq, Eq)]
pub struct Secret(String);

impl Secret {
    pub fn new(value: impl Into<String>) -> Secret {
        Secret(value.into())
    }

    /// The secret's text, for the one place it must be sent.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Secret(****)")
    }
}

impl fmt::Display for Secret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("****")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn never_prints() {
        let secret = Secret::new("hunter2");
        assert_eq!(format!("{secret} {secret:?} {:?}", Some(&secret)), "**** Secret(****) Some(Secret(****))");
        assert_eq!(secret.expose(), "hunter2");
    }
}
