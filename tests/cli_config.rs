//! The command line around the configuration: `-t`, `dump-config`, help, version, usage.
//! Runs the real binary with the system resolver; the files use only address literals.

use assert_cmd::Command;
use predicates::prelude::*;

fn ldirectord() -> Command {
    Command::cargo_bin("ldirectord").expect("binary")
}

#[test]
fn config_test_accepts_every_example() {
    for entry in std::fs::read_dir("config-examples").unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "cf") {
            continue;
        }
        ldirectord()
            .arg("-t")
            .arg(&path)
            .assert()
            .success()
            .stdout(predicate::str::contains("syntax is ok"));
    }
}

#[test]
fn config_test_rejects_with_located_errors() {
    ldirectord()
        .args([
            "--config-test",
            "tests/fixtures/invalid/66-several-errors-one-run.cf",
        ])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "tests/fixtures/invalid/66-several-errors-one-run.cf:2:1",
        ))
        .stderr(predicate::str::contains("did you mean `checktimeout`?"))
        .stderr(predicate::str::contains("5 errors"))
        .stderr(predicate::str::contains("test failed"));
}

#[test]
fn config_test_of_a_missing_file_says_so() {
    ldirectord()
        .args(["-t", "no-such-file.cf"])
        .assert()
        .code(1)
        .stderr(predicate::str::contains(
            "Config file no-such-file.cf not found",
        ));
}

#[test]
fn warnings_go_to_stderr_and_the_file_passes() {
    ldirectord()
        .args(["-t", "tests/fixtures/warnings/03-ops-on-tcp.cf"])
        .assert()
        .success()
        .stderr(predicate::str::contains("warning: ops is ignored"))
        .stdout(predicate::str::contains("1 warning)"));
}

#[test]
fn usage_errors_exit_255_with_the_synopsis_on_stdout() {
    for args in [&[][..], &["bogus"], &["-x", "start"], &["--debu", "start"]] {
        ldirectord()
            .args(args)
            .assert()
            .code(255)
            .stdout(predicate::str::contains("Usage:"));
    }
}

#[test]
fn help_and_version() {
    for flag in ["-h", "-?", "--help"] {
        ldirectord()
            .arg(flag)
            .assert()
            .success()
            .stdout(predicate::str::contains("ldirectord.cf(5)"))
            .stdout(predicate::str::contains("ldirectord list [-n]"))
            .stdout(predicate::str::contains(
                "ldirectord realserver start|stop|status",
            ));
    }
    for flag in ["-v", "--version"] {
        ldirectord()
            .arg(flag)
            .assert()
            .success()
            .stdout(predicate::str::contains("Linux Director v1.186-ha"));
    }
}

#[test]
fn dump_config_output_is_a_valid_equivalent_file() {
    let out = ldirectord()
        .args(["dump-config", "config-examples/shared-defaults.cf"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let text = String::from_utf8(out).unwrap();
    assert!(text.contains("virtual = 10.0.1.10:443"));
    assert!(text.contains("fallback = 127.0.0.1:443 gate"), "{text}");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dumped.cf");
    std::fs::write(&path, &text).unwrap();
    ldirectord().arg("-t").arg(&path).assert().success();
}

#[test]
fn dump_config_json() {
    let out = ldirectord()
        .args(["dump-config", "--json", "config-examples/web-site.cf"])
        .assert()
        .success()
        .get_output()
        .stdout
        .clone();
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(v["virtuals"][0]["endpoint"]["addr"], "10.0.0.100:80");
    assert_eq!(v["virtuals"][0]["check"]["checktimeout"], 10);
}

#[test]
fn dump_config_of_an_invalid_file_fails() {
    ldirectord()
        .args([
            "dump-config",
            "tests/fixtures/invalid/01-unknown-directive-typo.cf",
        ])
        .assert()
        .code(1)
        .stdout(predicate::str::is_empty());
}
