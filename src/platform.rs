//! OCI platforms (`os/arch[/variant]`): parsing, normalisation, matching and the tag
//! suffix each per-platform image is pushed under.
//!
//! castoff exists partly because hand-written release scripts get platforms wrong: the
//! classic recipe annotated manifests with `--variant v6l`/`v7l`, which no container
//! client ever selects, so Raspberry Pis pulled nothing. Every platform castoff uses
//! passes through [`Platform::parse`], which normalises the aliases the way containerd's
//! `platforms.Normalize` does (`x86_64` → `amd64`, `aarch64` → `arm64`, `armhf` →
//! `arm/v7`, `arm` → `arm/v7`, `arm64/v8` → `arm64`, `amd64/v1` → `amd64`) and refuses
//! the spellings clients never match, saying what to write instead.
//!
//! Pure code: no I/O, no knowledge of castoff.toml. A caller that knows where the text
//! came from wraps a [`PlatformError`] with
//! `Error::invalid(location, err.problem(), err.hint())`.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Operating systems castoff accepts (Go's `GOOS` values that images are built for).
pub const KNOWN_OS: &[&str] = &[
    "linux", "windows", "darwin", "freebsd", "netbsd", "openbsd", "solaris", "illumos", "aix", "android", "ios",
    "plan9", "js", "wasip1",
];

/// Architectures castoff accepts, in their normalised (Go `GOARCH`) spelling.
pub const KNOWN_ARCH: &[&str] = &[
    "amd64", "arm64", "arm", "386", "ppc64le", "ppc64", "s390x", "riscv64", "mips64le", "mips64", "mipsle", "mips",
    "loong64", "wasm",
];

const SHAPE_HINT: &str = "write os/arch[/variant], e.g. linux/amd64, linux/arm64 or linux/arm/v7";

/// An OCI platform as found in an image index: `os`, `architecture` and an optional
/// `variant`.
///
/// Values returned by [`Platform::parse`] are normalised: lowercase, aliases resolved,
/// `arm` always carries its variant (`v7` by default) and the default variants of
/// `arm64` (`v8`) and `amd64` (`v1`) are dropped, so `Display` gives the form
/// `docker build --platform` and image indexes use.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct Platform {
    /// `GOOS`-style operating system, e.g. `linux`.
    pub os: String,
    /// `GOARCH`-style architecture, e.g. `amd64`, `arm64`, `arm`.
    pub architecture: String,
    /// CPU variant, e.g. `v6`, `v7` for `arm`; `None` when the architecture's default.
    pub variant: Option<String>,
}

/// What is wrong with the text and how to fix it.
pub type PlatformError = crate::error::Problem;

impl Platform {
    /// Parse `os/arch[/variant]`, normalising aliases and rejecting unknown or
    /// unmatchable values (`v6l`, `v7l`, `armv7l`, ...). Case is folded and surrounding
    /// whitespace ignored, as containerd does.
    pub fn parse(text: &str) -> Result<Platform, PlatformError> {
        let shown = text.trim();
        let lower = shown.to_ascii_lowercase();
        if lower.is_empty() {
            return Err(PlatformError::new("the platform is empty", SHAPE_HINT));
        }
        let parts: Vec<&str> = lower.split('/').collect();
        if parts.len() == 1 {
            return Err(no_os(shown, &lower));
        }
        if parts.len() > 3 {
            return Err(PlatformError::new(
                format!("platform `{shown}` has {} parts; a platform is os/arch or os/arch/variant", parts.len()),
                SHAPE_HINT,
            ));
        }
        if parts.iter().any(|part| part.is_empty()) {
            return Err(PlatformError::new(format!("platform `{shown}` has an empty part"), SHAPE_HINT));
        }
        let (os, arch, variant) = (parts[0], parts[1], parts.get(2).copied());

        check_legacy(shown, arch, variant)?;
        check_arch_shorthand(shown, os, arch)?;

        let os = normalise_os(os);
        if !KNOWN_OS.contains(&os.as_str()) {
            return Err(PlatformError::new(
                format!("platform `{shown}` has unknown os `{os}`"),
                format!("use one of: {}", KNOWN_OS.join(", ")),
            ));
        }

        // armhf and armel name their variant; a different explicit one contradicts it.
        let implied = match arch {
            "armhf" => Some("v7"),
            "armel" => Some("v6"),
            _ => None,
        };
        if let (Some(implied), Some(given)) = (implied, variant) {
            if normalise_arm_variant(given) != implied {
                return Err(PlatformError::new(
                    format!("platform `{shown}`: `{arch}` means arm/{implied}, which contradicts variant `{given}`"),
                    format!("use {os}/arm/{implied}, or {os}/arm/<variant> for another ARM version"),
                ));
            }
        }

        let platform =
            Platform { os, architecture: arch.to_string(), variant: variant.map(str::to_string) }.normalized();
        if !KNOWN_ARCH.contains(&platform.architecture.as_str()) {
            return Err(PlatformError::new(
                format!("platform `{shown}` has unknown architecture `{arch}`"),
                format!(
                    "use one of: {} (aliases x86_64, aarch64, armhf, armel, i386 and i686 are also understood)",
                    KNOWN_ARCH.join(", ")
                ),
            ));
        }
        check_variant(shown, &platform)?;
        Ok(platform)
    }

    /// The same platform with containerd's normalisation applied, without validation:
    /// lowercase, `macos` → `darwin`, arch aliases resolved, `arm` given its default `v7`,
    /// `arm64/v8` and `amd64/v1` reduced to no variant, bare `7` written `v7`.
    ///
    /// [`Platform::parse`] already returns normalised values; this is for platforms
    /// built by hand or read from an image index.
    pub fn normalized(&self) -> Platform {
        let os = normalise_os(&self.os.to_ascii_lowercase());
        let arch = self.architecture.to_ascii_lowercase();
        let variant = self.variant.as_deref().map(str::to_ascii_lowercase).filter(|v| !v.is_empty());
        let (architecture, variant) = match arch.as_str() {
            "x86_64" | "x86-64" | "amd64" => ("amd64", variant.filter(|v| v != "v1")),
            "aarch64" | "arm64" => ("arm64", variant.filter(|v| v != "v8" && v != "8")),
            "armhf" => ("arm", Some("v7".to_string())),
            "armel" => ("arm", Some("v6".to_string())),
            "arm" => ("arm", Some(variant.map_or_else(|| "v7".to_string(), |v| normalise_arm_variant(&v)))),
            "i386" | "i686" | "x86" | "386" => ("386", variant),
            other => (other, variant),
        };
        Platform { os, architecture: architecture.to_string(), variant }
    }

    /// Whether two platforms name the same target once normalised: `linux/arm64/v8`
    /// matches `linux/arm64`, `linux/arm` matches `linux/arm/v7`, `linux/x86_64` matches
    /// `linux/amd64`. Unlike containerd's host matchers this is equality, not
    /// compatibility: `linux/arm/v7` does not match `linux/arm/v6`.
    pub fn matches(&self, other: &Platform) -> bool {
        self.normalized() == other.normalized()
    }

    /// The tag suffix the image for this platform is pushed under: `amd64`, `arm64`,
    /// `armv6`, `armv7`, `386`, `ppc64le`; other operating systems are prefixed,
    /// `windows-amd64`. Non-default variants are appended (`amd64v3`, `arm64v9`).
    pub fn suffix(&self) -> String {
        let platform = self.normalized();
        let arch = format!("{}{}", platform.architecture, platform.variant.as_deref().unwrap_or(""));
        if platform.os == "linux" {
            arch
        } else {
            format!("{}-{arch}", platform.os)
        }
    }
}

impl fmt::Display for Platform {
    /// `os/arch` or `os/arch/variant`, the form `--platform` takes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.os, self.architecture)?;
        if let Some(variant) = &self.variant {
            write!(f, "/{variant}")?;
        }
        Ok(())
    }
}

impl FromStr for Platform {
    type Err = PlatformError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Platform::parse(text)
    }
}

fn normalise_os(os: &str) -> String {
    match os {
        "macos" => "darwin".to_string(),
        other => other.to_string(),
    }
}

/// `7` → `v7`, as containerd writes bare arm variant numbers.
fn normalise_arm_variant(variant: &str) -> String {
    match variant {
        "5" | "6" | "7" | "8" => format!("v{variant}"),
        other => other.to_string(),
    }
}

/// Text with no `/`: say which platform was probably meant.
fn no_os(shown: &str, word: &str) -> PlatformError {
    if let Some(version) = legacy_arm_version(word) {
        return legacy(shown, word, version);
    }
    let problem = format!("platform `{shown}` has no os: a platform is written os/arch[/variant]");
    if let Some(meant) = arch_shorthand(word) {
        return PlatformError::new(problem, format!("write linux/{meant}"));
    }
    if KNOWN_OS.contains(&word) {
        return PlatformError::new(problem, format!("write {word}/amd64, {word}/arm64 or {word}/arm/v7"));
    }
    let guess = Platform { os: "linux".into(), architecture: word.to_string(), variant: None }.normalized();
    if KNOWN_ARCH.contains(&guess.architecture.as_str()) {
        return PlatformError::new(problem, format!("write {guess}"));
    }
    PlatformError::new(problem, "write linux/arm/v7, or another os/arch[/variant] such as linux/amd64")
}

/// `v7l`, `armv7l`, `7l` and friends: the ARM version they were meant to say.
fn legacy_arm_version(word: &str) -> Option<char> {
    match word {
        "v6l" | "armv6l" | "6l" => Some('6'),
        "v7l" | "armv7l" | "7l" => Some('7'),
        _ => None,
    }
}

/// Docker Hub namespace spellings used as an architecture (`armv7`, `arm64v8`): the
/// `arch[/variant]` meant.
fn arch_shorthand(word: &str) -> Option<&'static str> {
    match word {
        "armv5" => Some("arm/v5"),
        "armv6" => Some("arm/v6"),
        "armv7" => Some("arm/v7"),
        "arm64v8" => Some("arm64"),
        _ => None,
    }
}

fn legacy(shown: &str, word: &str, version: char) -> PlatformError {
    PlatformError::new(
        format!(
            "platform `{shown}`: `{word}` is not an OCI platform value; container clients never match it, \
             though old `docker manifest annotate --variant v{version}l` recipes wrote it, so an image \
             published that way is never pulled"
        ),
        format!("use linux/arm/v{version}"),
    )
}

/// Reject the `v6l`/`v7l` family wherever it appears (as arch or variant).
fn check_legacy(shown: &str, arch: &str, variant: Option<&str>) -> Result<(), PlatformError> {
    for word in std::iter::once(arch).chain(variant) {
        if let Some(version) = legacy_arm_version(word) {
            return Err(legacy(shown, word, version));
        }
    }
    Ok(())
}

/// `linux/armv7`, `linux/arm64v8` and similar: Docker-Hub-namespace spellings, not
/// OCI architectures.
fn check_arch_shorthand(shown: &str, os: &str, arch: &str) -> Result<(), PlatformError> {
    let os = normalise_os(os);
    let hint = if let Some(meant) = arch_shorthand(arch) {
        format!("use {os}/{meant}")
    } else {
        match arch {
            "armv8" => format!("use {os}/arm64 for 64-bit code, or {os}/arm/v8 for 32-bit code on ARMv8"),
            _ => return Ok(()),
        }
    };
    Err(PlatformError::new(
        format!("platform `{shown}`: `{arch}` is not an OCI architecture; the variant is a separate part"),
        hint,
    ))
}

/// Validate the variant of an already-normalised platform.
fn check_variant(shown: &str, platform: &Platform) -> Result<(), PlatformError> {
    let Some(variant) = platform.variant.as_deref() else {
        return Ok(());
    };
    let (os, arch) = (&platform.os, &platform.architecture);
    let (ok, accepted) = match arch.as_str() {
        "arm" => (matches!(variant, "v5" | "v6" | "v7" | "v8"), "v5, v6, v7 (the default) or v8"),
        "arm64" => {
            (arm64_variant(variant), "v8 (the default, written as no variant), v8.0 .. v8.9, v9 or v9.0 .. v9.9")
        }
        "amd64" => (matches!(variant, "v2" | "v3" | "v4"), "v1 (the default, written as no variant), v2, v3 or v4"),
        _ => (token(variant), "lowercase letters, digits, `.`, `_` and `-`"),
    };
    if ok {
        return Ok(());
    }
    Err(PlatformError::new(
        format!("platform `{shown}` has unknown variant `{variant}` for {arch}"),
        format!("use {os}/{arch} or {os}/{arch}/<variant> with variant {accepted}"),
    ))
}

/// `v8.N`, `v9`, `v9.N` with N one digit (`v8` itself is the default and was dropped;
/// `v8.0` is kept as written, as containerd does).
fn arm64_variant(variant: &str) -> bool {
    match variant.as_bytes() {
        [b'v', b'9'] => true,
        [b'v', b'8' | b'9', b'.', minor] => minor.is_ascii_digit(),
        _ => false,
    }
}

/// A variant safe to use inside a tag suffix.
fn token(variant: &str) -> bool {
    let mut bytes = variant.bytes();
    bytes.next().is_some_and(|b| b.is_ascii_lowercase() || b.is_ascii_digit())
        && bytes.all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || matches!(b, b'.' | b'_' | b'-'))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str) -> Platform {
        Platform::parse(text).unwrap_or_else(|e| panic!("{text}: {} ({})", e.problem(), e.hint()))
    }

    fn err(text: &str) -> PlatformError {
        match Platform::parse(text) {
            Ok(platform) => panic!("{text} parsed as {platform}"),
            Err(e) => e,
        }
    }

    fn raw(os: &str, arch: &str, variant: Option<&str>) -> Platform {
        Platform { os: os.into(), architecture: arch.into(), variant: variant.map(Into::into) }
    }

    #[test]
    fn parses_and_normalises() {
        let cases = [
            // (input, os, arch, variant, display)
            ("linux/amd64", "linux", "amd64", None, "linux/amd64"),
            ("linux/arm64", "linux", "arm64", None, "linux/arm64"),
            ("linux/arm/v6", "linux", "arm", Some("v6"), "linux/arm/v6"),
            ("linux/arm/v7", "linux", "arm", Some("v7"), "linux/arm/v7"),
            ("linux/386", "linux", "386", None, "linux/386"),
            ("linux/ppc64le", "linux", "ppc64le", None, "linux/ppc64le"),
            ("linux/s390x", "linux", "s390x", None, "linux/s390x"),
            ("linux/riscv64", "linux", "riscv64", None, "linux/riscv64"),
            ("windows/amd64", "windows", "amd64", None, "windows/amd64"),
            ("wasip1/wasm", "wasip1", "wasm", None, "wasip1/wasm"),
            // aliases (containerd normalizeArch)
            ("linux/x86_64", "linux", "amd64", None, "linux/amd64"),
            ("linux/x86-64", "linux", "amd64", None, "linux/amd64"),
            ("linux/aarch64", "linux", "arm64", None, "linux/arm64"),
            ("linux/armhf", "linux", "arm", Some("v7"), "linux/arm/v7"),
            ("linux/armhf/v7", "linux", "arm", Some("v7"), "linux/arm/v7"),
            ("linux/armel", "linux", "arm", Some("v6"), "linux/arm/v6"),
            ("linux/i386", "linux", "386", None, "linux/386"),
            ("linux/i686", "linux", "386", None, "linux/386"),
            ("linux/x86", "linux", "386", None, "linux/386"),
            ("macos/arm64", "darwin", "arm64", None, "darwin/arm64"),
            // default variants
            ("linux/arm", "linux", "arm", Some("v7"), "linux/arm/v7"),
            ("linux/arm/7", "linux", "arm", Some("v7"), "linux/arm/v7"),
            ("linux/arm/6", "linux", "arm", Some("v6"), "linux/arm/v6"),
            ("linux/arm/v5", "linux", "arm", Some("v5"), "linux/arm/v5"),
            ("linux/arm/v8", "linux", "arm", Some("v8"), "linux/arm/v8"),
            ("linux/arm64/v8", "linux", "arm64", None, "linux/arm64"),
            ("linux/arm64/8", "linux", "arm64", None, "linux/arm64"),
            ("linux/aarch64/v8", "linux", "arm64", None, "linux/arm64"),
            ("linux/arm64/v8.2", "linux", "arm64", Some("v8.2"), "linux/arm64/v8.2"),
            ("linux/arm64/v9", "linux", "arm64", Some("v9"), "linux/arm64/v9"),
            ("linux/arm64/v9.1", "linux", "arm64", Some("v9.1"), "linux/arm64/v9.1"),
            ("linux/amd64/v1", "linux", "amd64", None, "linux/amd64"),
            ("linux/amd64/v3", "linux", "amd64", Some("v3"), "linux/amd64/v3"),
            ("linux/x86_64/v2", "linux", "amd64", Some("v2"), "linux/amd64/v2"),
            // case and whitespace folded, as containerd lowercases
            ("Linux/ARM64", "linux", "arm64", None, "linux/arm64"),
            ("  linux/arm/V7 ", "linux", "arm", Some("v7"), "linux/arm/v7"),
        ];
        for (input, os, arch, variant, display) in cases {
            let platform = p(input);
            assert_eq!(platform, raw(os, arch, variant), "{input}");
            assert_eq!(platform.to_string(), display, "{input}");
            assert_eq!(input.parse::<Platform>().as_ref(), Ok(&platform), "{input} via FromStr");
            assert_eq!(p(display), platform, "{display} round-trips");
        }
    }

    #[test]
    fn rejects_v6l_and_v7l_with_the_oci_spelling() {
        let cases = [
            ("linux/arm/v7l", "use linux/arm/v7"),
            ("linux/arm/v6l", "use linux/arm/v6"),
            ("linux/arm/V7L", "use linux/arm/v7"),
            ("linux/armv7l", "use linux/arm/v7"),
            ("linux/armv6l", "use linux/arm/v6"),
            ("linux/arm/armv7l", "use linux/arm/v7"),
            ("armv7l", "use linux/arm/v7"),
            ("armv6l", "use linux/arm/v6"),
            ("linux/arm64/v7l", "use linux/arm/v7"),
        ];
        for (input, hint) in cases {
            let e = err(input);
            assert!(e.hint().contains(hint), "{input}: hint {:?}", e.hint());
            assert!(e.problem().contains("never match"), "{input}: {}", e.problem());
            assert!(e.problem().contains("docker manifest annotate"), "{input}: {}", e.problem());
            assert_eq!(e.to_string(), e.problem());
        }
    }

    #[test]
    fn text_without_an_os_gets_a_hint_naming_the_platform_meant() {
        let cases = [
            ("amd64", "write linux/amd64"),
            ("x86_64", "write linux/amd64"),
            ("aarch64", "write linux/arm64"),
            ("arm64v8", "write linux/arm64"),
            ("armv7", "write linux/arm/v7"),
            ("armv6", "write linux/arm/v6"),
            ("arm", "write linux/arm/v7"),
            ("armhf", "write linux/arm/v7"),
            ("linux", "write linux/amd64"),
            ("potato", "write linux/arm/v7"),
        ];
        for (input, hint) in cases {
            let e = err(input);
            assert!(e.problem().contains("has no os"), "{input}: {}", e.problem());
            assert!(e.hint().contains(hint), "{input}: hint {:?}", e.hint());
        }
    }

    #[test]
    fn rejects_bad_shapes_and_unknown_values() {
        let cases = [
            // (input, text the problem contains, text the hint contains)
            ("", "empty", "os/arch"),
            ("   ", "empty", "os/arch"),
            ("linux/", "empty part", "os/arch"),
            ("/amd64", "empty part", "os/arch"),
            ("linux//v7", "empty part", "os/arch"),
            ("linux/arm/v7/extra", "4 parts", "os/arch"),
            ("lnux/amd64", "unknown os `lnux`", "linux, windows, darwin"),
            ("windows(10.0.17763)/amd64", "unknown os", "wasip1"),
            ("linux/amd46", "unknown architecture `amd46`", "amd64, arm64, arm, 386"),
            ("linux/sparc64", "unknown architecture", "loong64"),
            ("linux/armv7", "not an OCI architecture", "use linux/arm/v7"),
            ("linux/armv6", "not an OCI architecture", "use linux/arm/v6"),
            ("linux/arm64v8", "not an OCI architecture", "use linux/arm64"),
            ("linux/armv8", "not an OCI architecture", "linux/arm64"),
            ("linux/arm/v9", "unknown variant `v9` for arm", "v5, v6, v7"),
            ("linux/arm/v4", "unknown variant `v4` for arm", "v5, v6, v7"),
            ("linux/arm/hf", "unknown variant `hf` for arm", "v5, v6, v7"),
            ("linux/arm64/v7", "unknown variant `v7` for arm64", "v8.0 .. v8.9"),
            ("linux/arm64/v10", "unknown variant `v10` for arm64", "v9"),
            ("linux/arm64/v8.10", "unknown variant `v8.10` for arm64", "v9"),
            ("linux/amd64/v5", "unknown variant `v5` for amd64", "v2, v3 or v4"),
            ("linux/amd64/v7", "unknown variant `v7` for amd64", "v2, v3 or v4"),
            ("linux/riscv64/rva 22", "unknown variant", "lowercase letters"),
            ("linux/armhf/v6", "contradicts variant `v6`", "use linux/arm/v7"),
            ("linux/armel/v7", "contradicts variant `v7`", "use linux/arm/v6"),
        ];
        for (input, problem, hint) in cases {
            let e = err(input);
            assert!(e.problem().contains(problem), "{input:?}: problem {:?}", e.problem());
            assert!(e.hint().contains(hint), "{input:?}: hint {:?}", e.hint());
        }
    }

    #[test]
    fn every_known_os_and_arch_parses() {
        for os in KNOWN_OS {
            for arch in KNOWN_ARCH {
                let platform = p(&format!("{os}/{arch}"));
                assert_eq!(&platform.os, os);
                assert_eq!(&platform.architecture, arch);
            }
        }
    }

    #[test]
    fn other_architectures_keep_their_variant() {
        assert_eq!(p("linux/riscv64/rva22u64"), raw("linux", "riscv64", Some("rva22u64")));
        assert_eq!(p("linux/ppc64le/power9"), raw("linux", "ppc64le", Some("power9")));
    }

    #[test]
    fn suffixes() {
        let cases = [
            ("linux/amd64", "amd64"),
            ("linux/x86_64", "amd64"),
            ("linux/arm64", "arm64"),
            ("linux/arm64/v8", "arm64"),
            ("linux/arm/v6", "armv6"),
            ("linux/arm/v7", "armv7"),
            ("linux/arm", "armv7"),
            ("linux/armel", "armv6"),
            ("linux/386", "386"),
            ("linux/ppc64le", "ppc64le"),
            ("linux/s390x", "s390x"),
            ("linux/amd64/v3", "amd64v3"),
            ("linux/arm64/v9", "arm64v9"),
            ("windows/amd64", "windows-amd64"),
            ("darwin/arm64", "darwin-arm64"),
            ("freebsd/arm/v6", "freebsd-armv6"),
        ];
        for (input, suffix) in cases {
            assert_eq!(p(input).suffix(), suffix, "{input}");
        }
        // Hand-built, unnormalised platforms get the same suffix as their parsed form.
        assert_eq!(raw("linux", "aarch64", Some("v8")).suffix(), "arm64");
        assert_eq!(raw("linux", "arm", None).suffix(), "armv7");
    }

    #[test]
    fn matches_compares_normalised_forms() {
        let same = [
            (raw("linux", "arm64", Some("v8")), raw("linux", "arm64", None)),
            (raw("linux", "aarch64", None), raw("linux", "arm64", Some("v8"))),
            (raw("linux", "arm", None), raw("linux", "arm", Some("v7"))),
            (raw("linux", "arm", Some("7")), raw("linux", "arm", Some("v7"))),
            (raw("linux", "armhf", None), raw("linux", "arm", Some("v7"))),
            (raw("linux", "armel", None), raw("linux", "arm", Some("v6"))),
            (raw("linux", "x86_64", None), raw("linux", "amd64", None)),
            (raw("linux", "amd64", Some("v1")), raw("linux", "amd64", None)),
            (raw("linux", "i386", None), raw("linux", "386", None)),
            (raw("Linux", "AMD64", None), raw("linux", "amd64", None)),
            (raw("linux", "amd64", Some("")), raw("linux", "amd64", None)),
        ];
        for (a, b) in same {
            assert!(a.matches(&b), "{a} should match {b}");
            assert!(b.matches(&a), "{b} should match {a}");
        }
        let different = [
            (raw("linux", "arm", Some("v6")), raw("linux", "arm", Some("v7"))),
            (raw("linux", "arm", None), raw("linux", "arm", Some("v6"))),
            (raw("linux", "arm64", None), raw("linux", "arm", Some("v8"))),
            (raw("linux", "arm64", Some("v9")), raw("linux", "arm64", None)),
            (raw("linux", "amd64", Some("v3")), raw("linux", "amd64", None)),
            (raw("linux", "amd64", None), raw("windows", "amd64", None)),
            (raw("linux", "arm", Some("v7l")), raw("linux", "arm", Some("v7"))),
        ];
        for (a, b) in different {
            assert!(!a.matches(&b), "{a} should not match {b}");
            assert!(!b.matches(&a), "{b} should not match {a}");
        }
    }

    #[test]
    fn normalized_is_idempotent_and_parse_output_is_normal() {
        for input in ["linux/arm", "linux/aarch64/v8", "linux/x86_64/v1", "linux/armel", "macos/amd64"] {
            let platform = p(input);
            assert_eq!(platform.normalized(), platform, "{input}");
            assert_eq!(platform.normalized().normalized(), platform.normalized(), "{input}");
        }
    }

    #[test]
    fn serde_uses_the_struct_fields() {
        let json = serde_json::to_string(&p("linux/arm/v7")).unwrap();
        assert_eq!(json, r#"{"os":"linux","architecture":"arm","variant":"v7"}"#);
        let back: Platform = serde_json::from_str(&json).unwrap();
        assert_eq!(back, p("linux/arm/v7"));
    }
}
