//! The two small encodings the registry protocol needs: standard base64 (HTTP Basic
//! credentials, docker config `auth` fields) and percent-encoding of query values,
//! with the exact leniency castoff wants, over the base64 and percent-encoding crates.

use base64::alphabet::STANDARD;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use base64::Engine;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};

/// Padding written; on reading, padding optional (hand-edited docker configs drop it),
/// and non-zero trailing bits refused (they mean the text is not really base64).
const BASE64: GeneralPurpose = GeneralPurpose::new(
    &STANDARD,
    GeneralPurposeConfig::new().with_encode_padding(true).with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

/// Unreserved characters, `/` and `:` stay as they are, so digests and repository paths
/// read naturally in URLs; everything else is `%XX`.
const QUERY: &AsciiSet =
    &NON_ALPHANUMERIC.remove(b'-').remove(b'.').remove(b'_').remove(b'~').remove(b'/').remove(b':');

/// Standard base64 with padding (RFC 4648 §4).
pub(crate) fn base64_encode(input: &[u8]) -> String {
    BASE64.encode(input)
}

/// Standard base64, padding optional, surrounding whitespace ignored; `None` when the
/// text is not base64.
pub(crate) fn base64_decode(text: &str) -> Option<Vec<u8>> {
    BASE64.decode(text.trim()).ok()
}

/// Percent-encode a query value.
pub(crate) fn query_escape(value: &str) -> String {
    utf8_percent_encode(value, QUERY).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips_rfc4648_vectors() {
        let vectors = [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
            ("user:pa:ss\u{e9}", "dXNlcjpwYTpzc8Op"),
        ];
        for (plain, encoded) in vectors {
            assert_eq!(base64_encode(plain.as_bytes()), encoded);
            assert_eq!(base64_decode(encoded).as_deref(), Some(plain.as_bytes()));
        }
        let all: Vec<u8> = (0..=255).collect();
        assert_eq!(base64_decode(&base64_encode(&all)), Some(all));
    }

    #[test]
    fn base64_decode_is_lenient_about_padding_only() {
        assert_eq!(base64_decode("Zg").as_deref(), Some(&b"f"[..]));
        assert_eq!(base64_decode(" Zm8=\n").as_deref(), Some(&b"fo"[..]));
        for bad in ["Z", "Zh==", "Zm9v!", "Zm 9v", "user:pass", "Zm9v\u{e9}"] {
            assert_eq!(base64_decode(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn query_values() {
        assert_eq!(query_escape("sha256:abc"), "sha256:abc");
        assert_eq!(query_escape("team/app"), "team/app");
        assert_eq!(query_escape("repository:a/b:pull,push"), "repository:a/b:pull%2Cpush");
        assert_eq!(query_escape("a b&c=d?\u{e9}"), "a%20b%26c%3Dd%3F%C3%A9");
    }
}
