//! Reading (parse + validate + defaults) a generated 1,000-virtual × 10-real ldirectord.cf.
//! Target: ≤ 20 ms. Run with `cargo bench --bench config`.
//!
//! `LDIRECTORD_BENCH_WRITE=FILE cargo bench --bench config` writes the generated file instead,
//! for timing other readers (the Perl one: tests/compat/time-perl-reader.sh) on the same input.

use std::path::Path;

use ldirectord::config::{self, FakeHost};

fn main() {
    if let Some(path) = std::env::var_os("LDIRECTORD_BENCH_WRITE") {
        std::fs::write(&path, generated(1000, 10)).expect("write the generated file");
        return;
    }
    divan::main();
}

/// A realistic file: globals, then `virtuals` blocks with HTTP checks and `reals` servers each.
fn generated(virtuals: usize, reals: usize) -> String {
    let mut s = String::from(
        "# generated: 1,000 virtual services x 10 real servers\n\
         checktimeout=5\nnegotiatetimeout=10\ncheckinterval=10\nfailurecount=2\n\
         quiescent=yes\nemailalert=\"ops@example.com\"\nfallback=127.0.0.1 gate\n\n",
    );
    for v in 0..virtuals {
        let (a, b) = (v / 250, v % 250 + 1);
        s.push_str(&format!("virtual=10.{a}.{b}.1:80\n"));
        for r in 0..reals {
            s.push_str(&format!(
                "\treal=172.{}.{b}.{}:80 masq {}\n",
                16 + a,
                r + 10,
                r % 5 + 1
            ));
        }
        s.push_str(
            "\tservice=http\n\trequest=\"/health\"\n\treceive=\"OK\"\n\
             \tscheduler=wlc\n\tpersistent=300\n\tchecktype=negotiate\n\
             \tprotocol=tcp\n\tvirtualhost=\"www.example.com\"\n\n",
        );
    }
    s
}

#[divan::bench(sample_count = 30)]
fn read_1000_virtuals_x_10_reals(bencher: divan::Bencher<'_, '_>) {
    let text = generated(1000, 10);
    let host = FakeHost::default();
    bencher.bench(|| {
        let loaded = config::parse_str(&text, Path::new("bench.cf"), &host).expect("valid");
        assert_eq!(loaded.config.virtuals.len(), 1000);
        loaded
    });
}

#[divan::bench(sample_count = 30)]
fn render_1000_virtuals_x_10_reals(bencher: divan::Bencher<'_, '_>) {
    let host = FakeHost::default();
    let c = config::parse_str(&generated(1000, 10), Path::new("bench.cf"), &host)
        .expect("valid")
        .config;
    bencher.bench(|| config::render(&c));
}
