//! The two small encodings the registry protocol needs: standard base64 (HTTP Basic
//! credentials, docker config `auth` fields) and percent-encoding of query values.
//!
//! Hand-written because neither `base64` nor `percent-encoding` is a direct dependency
//! and each is a few lines; both are exercised by the tests below.

const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// Standard base64 with padding (RFC 4648 §4).
pub(crate) fn base64_encode(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    for chunk in input.chunks(3) {
        let bytes = [chunk[0], chunk.get(1).copied().unwrap_or(0), chunk.get(2).copied().unwrap_or(0)];
        let group = u32::from(bytes[0]) << 16 | u32::from(bytes[1]) << 8 | u32::from(bytes[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(group >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Standard base64, padding optional, surrounding whitespace ignored; `None` when the
/// text is not base64. Docker writes padded base64, but hand-edited files may not be.
pub(crate) fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim().trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut group: u32 = 0;
    let mut bits = 0;
    for byte in text.bytes() {
        let value = ALPHABET.iter().position(|&a| a == byte)? as u32;
        group = group << 6 | value;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((group >> bits) as u8);
            group &= (1 << bits) - 1;
        }
    }
    // Leftover bits must be zero padding; a single leftover symbol is not base64.
    (bits < 6 && group == 0).then_some(out)
}

/// Percent-encode a query value: unreserved characters, `/` and `:` stay as they are
/// (digests and repository paths read naturally), everything else is `%XX`.
pub(crate) fn query_escape(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || b"-._~/:".contains(&byte) {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
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
