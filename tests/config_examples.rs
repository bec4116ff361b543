//! Every example in `config-examples/` reads without errors or warnings; its model (with the
//! Perl defaults filled in) is pinned by a snapshot, and its rendering reads back to the same
//! model. Names resolve through `FakeHost`, so no DNS is involved.

use std::path::{Path, PathBuf};

use ldirectord::config::{self, FakeHost};

fn examples() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir("config-examples")
        .expect("config-examples/")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "cf"))
        .collect();
    files.sort();
    files
}

#[test]
fn there_are_examples_for_every_documented_case() {
    let names: Vec<String> = examples()
        .iter()
        .map(|p| p.file_stem().unwrap().to_string_lossy().into_owned())
        .collect();
    for wanted in [
        "web-site",
        "weighted-wrr",
        "https-virtualhost",
        "fwmark",
        "ipv6",
        "quiescent",
        "udp-dns",
        "external-check",
        "shared-defaults",
        "email-alert",
    ] {
        assert!(
            names.iter().any(|n| n == wanted),
            "missing example {wanted}"
        );
    }
}

#[test]
fn every_example_reads_cleanly_and_matches_its_snapshot() {
    let host = FakeHost::default();
    for path in examples() {
        let loaded = match config::load_with(&path, &host) {
            Ok(l) => l,
            Err(e) => panic!("{}:\n{e}", path.display()),
        };
        assert!(
            loaded.warnings.is_empty(),
            "{}: unexpected warnings:\n{}",
            path.display(),
            loaded
                .warnings
                .iter()
                .map(ToString::to_string)
                .collect::<String>()
        );
        let name = path.file_stem().unwrap().to_string_lossy().into_owned();
        let json = serde_json::to_string_pretty(&loaded.config).unwrap();
        insta::assert_snapshot!(format!("example-{name}"), json);
    }
}

#[test]
fn every_example_renders_to_a_file_that_reads_back_the_same() {
    let host = FakeHost::default();
    for path in examples() {
        let first = config::load_with(&path, &host).unwrap().config;
        let text = config::render(&first);
        let again = match config::parse_str(&text, Path::new(&path), &host) {
            Ok(l) => l.config,
            Err(e) => panic!(
                "{}: rendering does not read back:\n{e}\n{text}",
                path.display()
            ),
        };
        assert_eq!(first, again, "{}:\n{text}", path.display());
    }
}

#[test]
fn the_classic_web_site_means_what_it_says() {
    let c = config::load_with("config-examples/web-site.cf", &FakeHost::default())
        .unwrap()
        .config;
    let v = &c.virtuals[0];
    assert_eq!(v.endpoint.to_string(), "tcp:10.0.0.100:80");
    assert_eq!(v.scheduler, "rr");
    assert_eq!(v.reals.len(), 2);
    assert!(
        v.reals
            .iter()
            .all(|r| r.forwarding == config::Forwarding::Gate)
    );
    assert_eq!(v.check.checktype, config::CheckType::Negotiate);
    assert_eq!(v.check.service, config::Service::Http);
    assert_eq!(v.check.request, "/check.html");
    let fb = v.fallback.as_ref().unwrap();
    assert_eq!((fb.addr.to_string(), fb.port), ("127.0.0.1".into(), 80));
    assert_eq!(v.location.line, 9);
    assert_eq!(v.reals[1].location.line, 11);
}
