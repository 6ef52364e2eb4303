//! The VERSION file's format survives a bump: BOM, line ending (CRLF, LF or none), and
//! tolerated surrounding whitespace.

use crate::support::TempRepo;

/// A repository with only `VERSION` holding `bytes` (castoff runs on its defaults).
fn repo_with_version(bytes: &str) -> TempRepo {
    let repo = TempRepo::new();
    repo.write("VERSION", bytes);
    repo
}

/// `bump patch` rewrites only the version: BOM and line ending come back byte for byte.
#[test]
fn bump_keeps_bom_and_line_ending() {
    let cases = [
        ("\u{feff}1.2.3\r\n", "\u{feff}1.2.4\r\n"),
        ("\u{feff}1.2.3", "\u{feff}1.2.4"),
        ("1.2.3\r\n", "1.2.4\r\n"),
        ("1.2.3\n", "1.2.4\n"),
        ("1.2.3", "1.2.4"),
    ];
    for (before, after) in cases {
        let repo = repo_with_version(before);
        repo.ok(&["bump", "patch"]);
        assert_eq!(repo.read_string("VERSION"), after, "bumping {before:?} gave the wrong bytes");
    }
}

/// Whitespace around the version is tolerated: `version` prints it bare, `bump` keeps BOM and ending.
#[test]
fn surrounding_whitespace_is_tolerated() {
    for before in ["  1.2.3  \n", "\t1.2.3\n\n", "1.2.3 ", "\u{feff} 1.2.3\t\r\n"] {
        let repo = repo_with_version(before);
        repo.castoff(["version"]).assert().success().stdout("1.2.3\n").stderr("");
        repo.ok(&["bump", "patch"]);
        let after = repo.read_string("VERSION");
        let bom = after.starts_with('\u{feff}');
        assert_eq!(after.trim_start_matches('\u{feff}').trim(), "1.2.4", "{before:?} → {after:?}");
        assert_eq!(bom, before.starts_with('\u{feff}'), "BOM of {before:?} → {after:?}");
        assert_eq!(after.ends_with("\r\n"), before.contains("\r\n"), "{before:?} → {after:?}");
        assert_eq!(after.ends_with('\n'), before.contains('\n'), "{before:?} → {after:?}");
    }
}
