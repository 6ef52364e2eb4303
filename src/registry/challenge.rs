//! `WWW-Authenticate` parsing (RFC 7235 §4.1, RFC 9110 §11.6.1): what a registry's 401
//! asks for (`Bearer realm="…",service="…",scope="…"` or `Basic realm="…"`).
//!
//! Written by hand because the grammar is small but awkward: commas separate both the
//! parameters of one challenge and the challenges themselves, so `Bearer a=1, Basic
//! realm=x` is two challenges while `Bearer a=1, b=2` is one. A name followed by `=` is a
//! parameter; a name followed by anything else starts the next challenge. Values are
//! tokens or quoted strings with `\` escapes; commas inside quotes belong to the value.
//!
//! The header comes from the network, so this never panics on any input (it is a fuzz
//! target): malformed text is a [`ChallengeError`] giving the byte offset. It is lenient
//! where registries are known to be sloppy: unquoted values may hold `/` and `:` (bare
//! URLs), and empty list elements (`,,`) are skipped.

use std::fmt;

/// One challenge: an auth scheme and its parameters (or its token68 form).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Challenge {
    /// The scheme as sent (`Bearer`, `basic`, …); compare with [`Challenge::is`].
    pub scheme: String,
    /// Parameters in order, names lowercased (they are case-insensitive), values unescaped.
    pub params: Vec<(String, String)>,
    /// The `token68` form (`Negotiate abc==`), which has no parameters.
    pub token68: Option<String>,
}

impl Challenge {
    /// Whether this challenge uses `scheme`, ignoring case.
    pub fn is(&self, scheme: &str) -> bool {
        self.scheme.eq_ignore_ascii_case(scheme)
    }

    /// The first value of parameter `name` (case-insensitive).
    pub fn param(&self, name: &str) -> Option<&str> {
        self.params.iter().find(|(key, _)| key.eq_ignore_ascii_case(name)).map(|(_, value)| value.as_str())
    }
}

/// Why a header could not be parsed, and where (a byte offset into it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ChallengeError {
    pub offset: usize,
    pub problem: &'static str,
}

impl fmt::Display for ChallengeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed WWW-Authenticate header at byte {}: {}", self.offset, self.problem)
    }
}

/// Parse one `WWW-Authenticate` header value into its challenges, in order.
pub(crate) fn parse_challenges(header: &str) -> Result<Vec<Challenge>, ChallengeError> {
    let mut cursor = Cursor { text: header, pos: 0 };
    let mut challenges = Vec::new();
    loop {
        cursor.skip_list_separators();
        if cursor.at_end() {
            return Ok(challenges);
        }
        challenges.push(parse_one(&mut cursor)?);
    }
}

/// One challenge, starting at its scheme; leaves the cursor at the `,` (or end) after it.
fn parse_one(cursor: &mut Cursor<'_>) -> Result<Challenge, ChallengeError> {
    let scheme = cursor.token();
    if scheme.is_empty() {
        return Err(cursor.error("expected an auth scheme (a token such as Bearer or Basic)"));
    }
    let mut challenge = Challenge { scheme: scheme.to_string(), params: Vec::new(), token68: None };
    let had_space = cursor.skip_spaces();
    if cursor.at_end() || cursor.peek() == Some(b',') {
        return Ok(challenge);
    }
    if !had_space {
        return Err(cursor.error("expected a space after the auth scheme"));
    }
    if let Some(token68) = try_token68(cursor) {
        challenge.token68 = Some(token68.to_string());
        return Ok(challenge);
    }
    parse_params(cursor, &mut challenge)?;
    Ok(challenge)
}

/// The `token68` form: token68 characters, optional trailing `=`, then `,` or the end.
/// Leaves the cursor untouched when the text is not in that form.
fn try_token68<'a>(cursor: &mut Cursor<'a>) -> Option<&'a str> {
    let start = cursor.pos;
    cursor.take_while(is_token68_char);
    if cursor.pos == start {
        return None;
    }
    cursor.take_while(|b| b == b'=');
    let end = cursor.pos;
    cursor.skip_spaces();
    if cursor.at_end() || cursor.peek() == Some(b',') {
        return Some(&cursor.text[start..end]);
    }
    cursor.pos = start;
    None
}

/// `name=value` pairs separated by commas, until the end or a name that is not followed
/// by `=` (which is the next challenge's scheme; the cursor is left before it).
fn parse_params(cursor: &mut Cursor<'_>, challenge: &mut Challenge) -> Result<(), ChallengeError> {
    loop {
        cursor.skip_list_separators();
        let start = cursor.pos;
        let name = cursor.token();
        if name.is_empty() {
            if cursor.at_end() {
                return Ok(());
            }
            return Err(cursor.error("expected a parameter name"));
        }
        cursor.skip_spaces();
        if cursor.peek() != Some(b'=') {
            if challenge.params.is_empty() {
                return Err(cursor.error("expected `=` after the parameter name"));
            }
            cursor.pos = start;
            return Ok(());
        }
        cursor.pos += 1;
        cursor.skip_spaces();
        let value = parse_value(cursor)?;
        challenge.params.push((name.to_ascii_lowercase(), value));
        cursor.skip_spaces();
        match cursor.peek() {
            None => return Ok(()),
            Some(b',') => {}
            Some(_) => return Err(cursor.error("expected `,` between parameters")),
        }
    }
}

/// A quoted string (unescaped) or an unquoted run up to `,` or whitespace.
fn parse_value(cursor: &mut Cursor<'_>) -> Result<String, ChallengeError> {
    if cursor.peek() == Some(b'"') {
        return cursor.quoted_string();
    }
    let start = cursor.pos;
    cursor.take_while(|b| b != b',' && !is_space(b) && b != b'"');
    if cursor.pos == start {
        return Err(cursor.error("expected a parameter value"));
    }
    Ok(cursor.text[start..cursor.pos].to_string())
}

/// RFC 9110 `tchar`.
fn is_tchar(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// RFC 9110 `token68` characters (without the trailing `=`).
fn is_token68_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"-._~+/".contains(&b)
}

fn is_space(b: u8) -> bool {
    b == b' ' || b == b'\t'
}

/// A position in the header. Every delimiter is ASCII, so byte-wise scanning never
/// splits a UTF-8 character: continuation bytes are never mistaken for delimiters.
struct Cursor<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Cursor<'a> {
    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }

    fn error(&self, problem: &'static str) -> ChallengeError {
        ChallengeError { offset: self.pos, problem }
    }

    fn take_while(&mut self, keep: impl Fn(u8) -> bool) {
        while self.peek().is_some_and(&keep) {
            self.pos += 1;
        }
    }

    /// Skip spaces and tabs; true when there were any.
    fn skip_spaces(&mut self) -> bool {
        let start = self.pos;
        self.take_while(is_space);
        self.pos > start
    }

    fn skip_list_separators(&mut self) {
        self.take_while(|b| b == b',' || is_space(b));
    }

    fn token(&mut self) -> &'a str {
        let start = self.pos;
        self.take_while(is_tchar);
        &self.text[start..self.pos]
    }

    /// A `"…"` string starting at the cursor, with `\x` escapes resolved.
    fn quoted_string(&mut self) -> Result<String, ChallengeError> {
        let open = self.pos;
        self.pos += 1;
        let mut value = String::new();
        let mut rest = self.text[self.pos..].char_indices();
        while let Some((offset, c)) = rest.next() {
            match c {
                '"' => {
                    self.pos += offset + 1;
                    return Ok(value);
                }
                '\\' => match rest.next() {
                    Some((_, escaped)) => value.push(escaped),
                    None => break,
                },
                c => value.push(c),
            }
        }
        Err(ChallengeError { offset: open, problem: "unterminated quoted string" })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<Challenge> {
        parse_challenges(text).unwrap_or_else(|e| panic!("{text:?}: {e}"))
    }

    fn params(challenge: &Challenge) -> Vec<(&str, &str)> {
        challenge.params.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect()
    }

    #[test]
    fn registry_bearer_challenge() {
        let header = r#"Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull""#;
        let challenges = parse(header);
        assert_eq!(challenges.len(), 1);
        let bearer = &challenges[0];
        assert!(bearer.is("bearer"));
        assert_eq!(bearer.param("realm"), Some("https://auth.docker.io/token"));
        assert_eq!(bearer.param("SERVICE"), Some("registry.docker.io"));
        assert_eq!(bearer.param("scope"), Some("repository:library/alpine:pull"));
        assert_eq!(bearer.token68, None);
    }

    #[test]
    fn basic_challenge_from_distribution_htpasswd() {
        let challenges = parse(r#"Basic realm="Registry Realm""#);
        assert_eq!(challenges.len(), 1);
        assert!(challenges[0].is("Basic"));
        assert_eq!(challenges[0].param("realm"), Some("Registry Realm"));
    }

    #[test]
    fn commas_inside_quotes_belong_to_the_value() {
        let challenges = parse(r#"Bearer realm="r",scope="repository:a:pull,push repository:b:pull",error="x""#);
        assert_eq!(challenges.len(), 1);
        assert_eq!(challenges[0].param("scope"), Some("repository:a:pull,push repository:b:pull"));
        assert_eq!(challenges[0].param("error"), Some("x"));
    }

    #[test]
    fn escapes_in_quoted_strings() {
        let challenges = parse(r#"Basic realm="say \"hi\", \\ back\slash""#);
        assert_eq!(challenges[0].param("realm"), Some(r#"say "hi", \ backslash"#));
        let challenges = parse("Basic realm=\"caf\u{e9} \\\u{e9}\"");
        assert_eq!(challenges[0].param("realm"), Some("caf\u{e9} \u{e9}"));
    }

    #[test]
    fn multiple_challenges_in_one_header() {
        let challenges = parse(r#"Bearer realm="https://a/token", service="s", Basic realm="b", Negotiate"#);
        assert_eq!(challenges.len(), 3);
        assert!(challenges[0].is("Bearer"));
        assert_eq!(params(&challenges[0]), vec![("realm", "https://a/token"), ("service", "s")]);
        assert!(challenges[1].is("Basic"));
        assert_eq!(params(&challenges[1]), vec![("realm", "b")]);
        assert!(challenges[2].is("Negotiate"));
        assert!(challenges[2].params.is_empty());
    }

    #[test]
    fn schemes_without_parameters_and_empty_elements() {
        let challenges = parse(" , Negotiate,, NTLM ,Basic realm=x,");
        let schemes: Vec<&str> = challenges.iter().map(|c| c.scheme.as_str()).collect();
        assert_eq!(schemes, ["Negotiate", "NTLM", "Basic"]);
        assert_eq!(challenges[2].param("realm"), Some("x"));
        assert!(parse("").is_empty());
        assert!(parse(" ,, ").is_empty());
    }

    #[test]
    fn token68() {
        let challenges = parse(
            "Negotiate YIIFzQYGKwYBBQUCoIIFwTCCBb2gJDAiBgkqhkiC9xIBAgIGCSqGSIb3EgECAgYKKwYBBAGCNwICCg==, Basic realm=r",
        );
        assert_eq!(challenges.len(), 2);
        assert_eq!(
            challenges[0].token68.as_deref(),
            Some("YIIFzQYGKwYBBQUCoIIFwTCCBb2gJDAiBgkqhkiC9xIBAgIGCSqGSIb3EgECAgYKKwYBBAGCNwICCg==")
        );
        assert_eq!(challenges[1].param("realm"), Some("r"));
        assert_eq!(parse("Custom abc").first().and_then(|c| c.token68.clone()).as_deref(), Some("abc"));
    }

    #[test]
    fn whitespace_around_equals_and_tabs() {
        let challenges = parse("Bearer\trealm = \"r\" ,\tservice= s ,scope =\"x\"");
        assert_eq!(params(&challenges[0]), vec![("realm", "r"), ("service", "s"), ("scope", "x")]);
    }

    #[test]
    fn unquoted_urls_are_accepted() {
        let challenges = parse("Bearer realm=https://auth.example.com:8443/token?a=b,service=registry.example.com");
        assert_eq!(challenges[0].param("realm"), Some("https://auth.example.com:8443/token?a=b"));
        assert_eq!(challenges[0].param("service"), Some("registry.example.com"));
    }

    #[test]
    fn parameter_names_are_case_insensitive_and_first_wins() {
        let challenges = parse(r#"Bearer Realm="one", REALM="two""#);
        assert_eq!(challenges[0].param("realm"), Some("one"));
        assert_eq!(challenges[0].params[0].0, "realm");
    }

    #[test]
    fn empty_quoted_value() {
        let challenges = parse(r#"Bearer realm="",service="s""#);
        assert_eq!(challenges[0].param("realm"), Some(""));
        assert_eq!(challenges[0].param("service"), Some("s"));
    }

    #[test]
    fn malformed_headers_are_errors_with_offsets() {
        let cases: &[(&str, usize)] = &[
            (r#"Bearer realm="unterminated"#, 13),
            (r#"Bearer realm="ends in backslash\"#, 13),
            ("Bearer realm=x service=y", 15),
            ("=x", 0),
            ("\"Bearer\"", 0),
            ("Bearer realm=\"a\"\"b\"", 16),
            ("Bearer realm=x, =y", 16),
            ("Bearer foo bar", 11),
        ];
        for (text, offset) in cases {
            match parse_challenges(text) {
                Err(e) => assert_eq!(e.offset, *offset, "{text:?}: {e}"),
                Ok(parsed) => panic!("{text:?} parsed as {parsed:?}"),
            }
        }
    }

    #[test]
    fn ambiguous_forms_follow_the_grammar() {
        // A comma right after a scheme ends that challenge: two parameterless schemes.
        let schemes: Vec<String> = parse("Bearer,realm").into_iter().map(|c| c.scheme).collect();
        assert_eq!(schemes, ["Bearer", "realm"]);
        // `name=` with no value is the token68 form, not an empty parameter.
        assert_eq!(parse("Bearer realm=")[0].token68.as_deref(), Some("realm="));
    }

    #[test]
    fn scheme_needs_a_space_before_parameters() {
        assert!(parse_challenges("Bearer\"x\"").is_err());
        assert!(parse_challenges("Bearer realm=\"x\" junk").is_err());
    }

    #[test]
    fn never_panics_on_arbitrary_input() {
        // A cheap stand-in for the fuzz target: every prefix of tricky headers, and
        // every byte string of length <= 3 over the interesting alphabet.
        let samples = [
            r#"Bearer realm="https://a/t",service="s",scope="repository:x:pull,push", Basic realm="r\"q""#,
            "Negotiate abc==, Basic realm=x,,\t, NTLM",
            "B\u{e9}arer r\u{e9}alm=\"\u{1F600}\\\u{1F600}\"",
        ];
        for sample in samples {
            for end in (0..=sample.len()).filter(|&i| sample.is_char_boundary(i)) {
                let _ = parse_challenges(&sample[..end]);
            }
        }
        let alphabet = ["a", "=", ",", "\"", "\\", " ", "\t", "\u{e9}", "/"];
        for a in alphabet {
            for b in alphabet {
                for c in alphabet {
                    let _ = parse_challenges(&format!("{a}{b}{c}"));
                    let _ = parse_challenges(&format!("Bearer {a}{b}{c}"));
                }
            }
        }
    }
}
