//! The director's pure steps at scale: 1,000 virtual services × 10 real servers = 10,000
//! real servers. `desired` builds the wanted table from health; `plan` diffs it against
//! the kernel's. Run with `cargo bench --bench director`.

use std::path::Path;

use divan::Bencher;
use ldirectord::config::{Config, FakeHost, parse_str};
use ldirectord::director::state::{Health, RealState};
use ldirectord::director::{Layout, desired};
use ldirectord::ipvs::{Desired, Table, plan};
use tokio::time::Instant;

fn main() {
    divan::main();
}

const VIRTUALS: usize = 1_000;
const REALS: usize = 10;

fn config() -> Config {
    let mut text = String::from("checkinterval=5\nquiescent=no\n");
    for v in 0..VIRTUALS {
        let (a, b) = (v / 250, v % 250);
        text.push_str(&format!("virtual=10.{a}.{b}.1:80\n"));
        for r in 0..REALS {
            text.push_str(&format!("\treal=10.{a}.{b}.{}:80 gate {}\n", r + 10, r + 1));
        }
        text.push_str("\tchecktype=connect\n\tfallback=127.0.0.1:80\n");
    }
    parse_str(&text, Path::new("/bench.cf"), &FakeHost::default())
        .expect("the generated configuration reads")
        .config
}

struct Fixture {
    config: Config,
    layout: Layout,
    up: Vec<Vec<RealState>>,
    /// Every 100th real server down.
    some_down: Vec<Vec<RealState>>,
    /// The kernel table with every real server up.
    table: Table,
}

fn fixture() -> Fixture {
    let config = config();
    let layout = Layout::new(&config);
    let now = Instant::now();
    let up: Vec<Vec<RealState>> = layout
        .virtuals
        .iter()
        .map(|v| {
            v.reals
                .iter()
                .map(|_| RealState::new(Health::Up, now))
                .collect()
        })
        .collect();
    let mut some_down = up.clone();
    for (i, state) in some_down.iter_mut().flatten().enumerate() {
        if i % 100 == 0 {
            state.health = Health::Down;
        }
    }
    let table = as_table(&desired(&config, &layout, &up, &[]));
    Fixture {
        config,
        layout,
        up,
        some_down,
        table,
    }
}

fn as_table(d: &Desired) -> Table {
    Table {
        services: d
            .services
            .iter()
            .map(|s| (s.service.clone(), s.dests.clone()))
            .collect(),
    }
}

#[divan::bench]
fn layout_10k(bencher: Bencher<'_, '_>) {
    let config = config();
    bencher.bench(|| Layout::new(divan::black_box(&config)));
}

#[divan::bench]
fn desired_10k(bencher: Bencher<'_, '_>) {
    let f = fixture();
    bencher.bench(|| desired(&f.config, &f.layout, divan::black_box(&f.up), &[]));
}

/// Start on an empty kernel: 1,000 services and 10,000 destinations to add.
#[divan::bench]
fn plan_10k_from_empty(bencher: Bencher<'_, '_>) {
    let f = fixture();
    let want = desired(&f.config, &f.layout, &f.up, &[]);
    let empty = Table::default();
    bencher.bench(|| plan(divan::black_box(&want), &empty));
}

/// The steady state (every drift pass): nothing to do.
#[divan::bench]
fn plan_10k_in_sync(bencher: Bencher<'_, '_>) {
    let f = fixture();
    let want = desired(&f.config, &f.layout, &f.up, &[]);
    bencher.bench(|| plan(divan::black_box(&want), &f.table));
}

/// One reconcile after health changes: `desired` then `plan`, 100 real servers down.
#[divan::bench]
fn desired_and_plan_10k_with_100_down(bencher: Bencher<'_, '_>) {
    let f = fixture();
    let ops = plan(&desired(&f.config, &f.layout, &f.some_down, &[]), &f.table);
    assert_eq!(ops.len(), 100);
    bencher.bench(|| {
        let want = desired(&f.config, &f.layout, divan::black_box(&f.some_down), &[]);
        plan(&want, &f.table)
    });
}
