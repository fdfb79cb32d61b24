//! Shell completions and the man page, generated from the command line's own definition.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

#[test]
fn completions_and_the_man_page_come_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let bash = common::ok(dir.path(), &["completions", "bash"]);
    assert!(bash.contains("_hindsight()") && bash.contains("digest") && bash.contains("--once"), "{bash}");
    let man = common::ok(dir.path(), &["completions", "man"]);
    assert!(man.starts_with(".ie") || man.contains(".TH hindsight"), "{man}");
    let err = common::fails(dir.path(), &["completions", "tcsh"]);
    assert!(err.contains("not a shell"), "{err}");
}
