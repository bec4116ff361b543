//! The invalid corpus (`tests/fixtures/invalid/`): every file is rejected, every error is
//! located (`file:line:column`, the line shown with a caret), and the rendered report of each
//! file is pinned by a snapshot. Names resolve through `FakeHost` (no DNS).

use std::path::PathBuf;

use ldirectord::config::{self, ConfigError, FakeHost, MAX_ERRORS};

fn corpus() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir("tests/fixtures/invalid")
        .expect("tests/fixtures/invalid/")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "cf"))
        .collect();
    files.sort();
    files
}

#[test]
fn the_corpus_is_large_enough() {
    assert!(
        corpus().len() >= 40,
        "only {} invalid files",
        corpus().len()
    );
}

#[test]
fn every_invalid_file_is_rejected_with_located_errors() {
    let host = FakeHost::default();
    for path in corpus() {
        let report = match config::load_with(&path, &host) {
            Ok(_) => panic!("{} was accepted", path.display()),
            Err(ConfigError::Read { .. }) => panic!("{} unreadable", path.display()),
            Err(ConfigError::Invalid(r)) => r,
        };
        assert!(!report.errors.is_empty(), "{}", path.display());
        for e in &report.errors {
            assert!(e.line > 1, "{}: error not located: {e}", path.display());
            assert!(e.column >= 1);
            assert!(
                e.label.is_some() || !e.notes.is_empty(),
                "{}: error without expectation or help: {e}",
                path.display()
            );
        }
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        insta::assert_snapshot!(format!("invalid-{name}"), report.to_string());
    }
}

#[test]
fn errors_are_capped_and_counted() {
    let r = config::load_with(
        "tests/fixtures/invalid/65-many-errors.cf",
        &FakeHost::default(),
    )
    .unwrap_err();
    let r = r.report().unwrap();
    assert_eq!(r.errors.len(), MAX_ERRORS);
    assert_eq!(r.error_count(), 30);
}

/// Files the Perl ldirectord accepts but then ignores or misuses part of: accepted here too,
/// with warnings (`tests/fixtures/warnings/`).
#[test]
fn questionable_files_are_accepted_with_warnings() {
    let host = FakeHost::default();
    let mut files: Vec<PathBuf> = std::fs::read_dir("tests/fixtures/warnings")
        .expect("tests/fixtures/warnings/")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "cf"))
        .collect();
    files.sort();
    assert!(files.len() >= 20);
    for path in files {
        let loaded = match config::load_with(&path, &host) {
            Ok(l) => l,
            Err(e) => panic!("{} rejected:\n{e}", path.display()),
        };
        assert!(
            !loaded.warnings.is_empty(),
            "{}: no warning",
            path.display()
        );
        let text: String = loaded.warnings.iter().map(|w| format!("{w}\n")).collect();
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        insta::assert_snapshot!(format!("warning-{name}"), text);
    }
}
