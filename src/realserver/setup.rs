//! `start`, `stop` and `status` on a host: read the facts, plan (pure, [`super::plan`]),
//! record the intent, act, record what was done.
//!
//! Order matters for a real server that is in service: `start` makes the ARP settings
//! before it adds an IPv4 VIP, and `stop` removes the VIPs before it puts the settings
//! back, so at no moment does the host hold a VIP and answer ARP for it. `start` writes
//! what it is about to change into the state file before changing it, so a crash half-way
//! leaves a record `stop` can still undo from.

use std::fmt;

use super::addresses::{AddressTable, Change};
use super::error::RealServerError;
use super::plan::{self, Facts, Left, Status};
use super::state::{State, StateStore};
use super::sysctl::{ConfKey, Sysctls};
use super::vip::Vip;

/// One thing `start` or `stop` did (or found already done).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Event {
    Set {
        key: ConfKey,
        from: i64,
        to: i64,
    },
    Added {
        vip: Vip,
        dev: String,
    },
    AlreadyThere {
        vip: Vip,
        dev: String,
        owned: bool,
    },
    Removed {
        addr: String,
        dev: String,
    },
    /// Added by `start`, but someone removed it since.
    AlreadyGone {
        addr: String,
        dev: String,
    },
    /// Asked to remove, but `start` did not add it.
    NotOurs {
        addr: String,
    },
    Left(Left),
    KeptArp {
        vips: usize,
    },
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Set { key, from, to } => write!(f, "set {key}={to} (was {from})"),
            Event::Added { vip, dev } => write!(f, "added {vip} to {dev}"),
            Event::AlreadyThere {
                vip,
                dev,
                owned: true,
            } => {
                write!(f, "{vip} already on {dev} (added by an earlier start)")
            }
            Event::AlreadyThere {
                vip,
                dev,
                owned: false,
            } => {
                write!(
                    f,
                    "{vip} already on {dev} (not added by ldirectord: stop will leave it)"
                )
            }
            Event::Removed { addr, dev } => write!(f, "removed {addr} from {dev}"),
            Event::AlreadyGone { addr, dev } => {
                write!(f, "{addr} was already gone from {dev}")
            }
            Event::NotOurs { addr } => write!(
                f,
                "{addr}: not added by ldirectord realserver start, left alone"
            ),
            Event::Left(Left::ChangedSince { key, set, now }) => write!(
                f,
                "left {key}={now} as it is (start set {set}, someone changed it since)"
            ),
            Event::Left(Left::InterfaceGone { key }) => {
                write!(f, "{key}: the interface is gone, nothing to restore")
            }
            Event::KeptArp { vips } => {
                write!(f, "ARP settings kept: {vips} VIP(s) added by start remain")
            }
        }
    }
}

/// What `start` or `stop` did, what failed, and (for `start`) how the host looks after.
#[derive(Debug)]
pub struct Outcome {
    pub events: Vec<Event>,
    pub errors: Vec<RealServerError>,
    pub after: Option<Status>,
}

impl Outcome {
    pub fn ok(&self) -> bool {
        self.errors.is_empty() && self.after.as_ref().is_none_or(Status::ok)
    }
}

/// A real server's setup: the address table, `/proc/sys` and the state file.
#[derive(Debug)]
pub struct RealServer<A> {
    pub table: A,
    pub sysctls: Sysctls,
    pub store: StateStore,
}

impl<A: AddressTable> RealServer<A> {
    pub async fn facts(&mut self) -> Result<Facts, RealServerError> {
        Ok(Facts {
            addresses: self.table.list().await?,
            arp: self.sysctls.arp_values()?,
        })
    }

    /// Puts `vips` on `dev` and makes the ARP settings; records what it changed.
    pub async fn start(&mut self, vips: &[Vip], dev: &str) -> Result<Outcome, RealServerError> {
        let index = self.table.index_of(dev)?;
        let locked = self.store.lock().await?;
        let before = locked.load()?;
        let facts = self.facts().await?;
        let plan = plan::plan_start(vips, dev, &facts, &before);

        let mut intent = before.clone();
        for c in &plan.arp {
            intent.record_sysctl(&c.key, c.from, c.to);
        }
        for v in &plan.add {
            intent.record_address(dev, v.addr(), v.prefix_len());
        }
        if intent != before {
            locked.save(&intent)?;
        }

        let mut done = before;
        let mut events = Vec::new();
        let mut errors = Vec::new();
        for c in &plan.arp {
            match self.sysctls.write(&c.key, c.to) {
                Ok(()) => {
                    done.record_sysctl(&c.key, c.from, c.to);
                    events.push(Event::Set {
                        key: c.key.clone(),
                        from: c.from,
                        to: c.to,
                    });
                }
                Err(e) => errors.push(e),
            }
        }
        let arp_failed = !errors.is_empty();
        for v in &plan.before.vips {
            if v.on_dev == plan::OnDev::Present {
                events.push(Event::AlreadyThere {
                    vip: v.vip,
                    dev: dev.to_string(),
                    owned: v.owned,
                });
            }
        }
        for vip in &plan.add {
            // Without the ARP settings an IPv4 VIP would make this host answer for it.
            if vip.is_ipv4() && arp_failed {
                continue;
            }
            match self.table.add(index, *vip).await {
                Ok(Change::Made) => {
                    done.record_address(dev, vip.addr(), vip.prefix_len());
                    events.push(Event::Added {
                        vip: *vip,
                        dev: dev.to_string(),
                    });
                }
                // Someone else added it between our read and our write: theirs.
                Ok(Change::AlreadySo) => events.push(Event::AlreadyThere {
                    vip: *vip,
                    dev: dev.to_string(),
                    owned: false,
                }),
                Err(e) => errors.push(e),
            }
        }
        locked.save(&done)?;
        drop(locked);

        let facts = self.facts().await?;
        let after = plan::status(vips, dev, &facts, Some(&done));
        Ok(Outcome {
            events,
            errors,
            after: Some(after),
        })
    }

    /// Removes the VIPs `start` added (`None`: all of them) and, once none remains,
    /// restores the settings it changed.
    pub async fn stop(&mut self, vips: Option<&[Vip]>) -> Result<Outcome, RealServerError> {
        let locked = self.store.lock().await?;
        let mut state = locked.load()?;
        let facts = self.facts().await?;
        let plan = plan::plan_stop(vips, &facts, &state);
        let mut events = Vec::new();
        let mut errors = Vec::new();

        for owned in &plan.remove {
            let addr = format!("{}/{}", owned.addr, owned.prefix_len);
            let index = facts
                .addresses
                .iter()
                .find(|a| a.dev == owned.dev && a.addr == owned.addr)
                .map(|a| a.index);
            let result = match index {
                Some(index) => self.table.remove(index, owned.addr, owned.prefix_len).await,
                None => Ok(Change::AlreadySo),
            };
            match result {
                Ok(change) => {
                    state.forget_address(owned);
                    events.push(match change {
                        Change::Made => Event::Removed {
                            addr,
                            dev: owned.dev.clone(),
                        },
                        Change::AlreadySo => Event::AlreadyGone {
                            addr,
                            dev: owned.dev.clone(),
                        },
                    });
                }
                Err(e) => errors.push(e),
            }
        }
        for owned in &plan.gone {
            state.forget_address(owned);
            events.push(Event::AlreadyGone {
                addr: format!("{}/{}", owned.addr, owned.prefix_len),
                dev: owned.dev.clone(),
            });
        }
        for addr in &plan.not_ours {
            events.push(Event::NotOurs {
                addr: addr.to_string(),
            });
        }
        // Only when every VIP is gone: ARP must stay right while one is still held.
        if errors.is_empty() && state.addresses.is_empty() {
            for r in &plan.restore {
                match self.sysctls.write(&r.key, r.to) {
                    Ok(()) => {
                        state.forget_sysctl(&r.key);
                        events.push(Event::Set {
                            key: r.key.clone(),
                            from: r.from,
                            to: r.to,
                        });
                    }
                    Err(e) => errors.push(e),
                }
            }
            for left in &plan.left {
                let key = match left {
                    Left::ChangedSince { key, .. } | Left::InterfaceGone { key } => key,
                };
                state.forget_sysctl(key);
                events.push(Event::Left(left.clone()));
            }
        } else if !state.sysctls.is_empty() {
            events.push(Event::KeptArp {
                vips: state.addresses.len(),
            });
        }
        locked.save(&state)?;
        Ok(Outcome {
            events,
            errors,
            after: None,
        })
    }

    /// Reads the host and says what is missing. The record (who added what) is only an
    /// annotation: without it (not root, no record) the answer is the same.
    pub async fn status(
        &mut self,
        vips: &[Vip],
        dev: &str,
    ) -> Result<(Status, Option<RealServerError>), RealServerError> {
        let facts = self.facts().await?;
        let (state, note) = match self.store.peek() {
            Ok(state) => (state, None),
            Err(e) => (None, Some(e)),
        };
        Ok((plan::status(vips, dev, &facts, state.as_ref()), note))
    }

    /// The record as it is (for tests and diagnostics).
    pub fn recorded(&self) -> Result<Option<State>, RealServerError> {
        self.store.peek()
    }
}

#[cfg(test)]
mod tests {
    use super::super::addresses::MemoryTable;
    use super::super::sysctl::tests::fake_proc;
    use super::super::vip::parse_vips;
    use super::*;

    struct Host {
        rs: RealServer<MemoryTable>,
        proc: tempfile::TempDir,
        _run: tempfile::TempDir,
    }

    fn host(arp: &[(&str, i64, i64)]) -> Host {
        let proc = fake_proc(arp);
        let run = tempfile::tempdir().unwrap();
        let table = MemoryTable::new(&["lo", "eth0"])
            .with("lo", "127.0.0.1", 8)
            .with("eth0", "10.0.0.11", 24);
        Host {
            rs: RealServer {
                table,
                sysctls: Sysctls::at(proc.path()),
                store: StateStore::at(&run.path().join("ldirectord/rs.json")).unwrap(),
            },
            proc,
            _run: run,
        }
    }

    impl Host {
        fn sysctl(&self, iface: &str, knob: &str) -> String {
            std::fs::read_to_string(
                self.proc
                    .path()
                    .join("net/ipv4/conf")
                    .join(iface)
                    .join(knob),
            )
            .unwrap()
            .trim()
            .to_string()
        }
        fn snapshot(&self) -> (Vec<String>, Vec<String>) {
            let mut addrs: Vec<String> = self
                .rs
                .table
                .addresses
                .iter()
                .map(|a| format!("{} {}/{}", a.dev, a.addr, a.prefix_len))
                .collect();
            addrs.sort();
            let mut sysctls = Vec::new();
            for iface in ["all", "default", "lo", "eth0"] {
                for knob in ["arp_ignore", "arp_announce"] {
                    sysctls.push(format!("{iface}.{knob}={}", self.sysctl(iface, knob)));
                }
            }
            (addrs, sysctls)
        }
    }

    fn v(s: &str) -> Vec<Vip> {
        parse_vips(&[s]).unwrap()
    }

    const PLAIN: &[(&str, i64, i64)] = &[
        ("all", 0, 1),
        ("default", 0, 0),
        ("lo", 0, 0),
        ("eth0", 3, 0),
    ];

    fn lines(o: &Outcome) -> Vec<String> {
        o.events.iter().map(ToString::to_string).collect()
    }

    #[tokio::test]
    async fn start_stop_round_trip_restores_exactly() {
        let mut h = host(PLAIN);
        let pristine = h.snapshot();

        let o = h.rs.start(&v("10.0.0.100,fd00::100"), "lo").await.unwrap();
        assert!(o.ok(), "{:?}", o.errors);
        assert_eq!(
            lines(&o),
            [
                "set net.ipv4.conf.all.arp_ignore=1 (was 0)",
                "set net.ipv4.conf.eth0.arp_ignore=1 (was 3)",
                "set net.ipv4.conf.all.arp_announce=2 (was 1)",
                "added 10.0.0.100/32 to lo",
                "added fd00::100/128 to lo",
            ]
        );
        let started = h.snapshot();
        assert!(started.0.contains(&"lo 10.0.0.100/32".to_string()));

        // idempotent: nothing more to do, and the record still holds the first values
        let o = h.rs.start(&v("10.0.0.100,fd00::100"), "lo").await.unwrap();
        assert!(o.ok());
        assert_eq!(
            lines(&o),
            [
                "10.0.0.100/32 already on lo (added by an earlier start)",
                "fd00::100/128 already on lo (added by an earlier start)",
            ]
        );
        assert_eq!(h.snapshot(), started);

        let (status, note) = h.rs.status(&v("10.0.0.100,fd00::100"), "lo").await.unwrap();
        assert!(status.ok() && note.is_none());

        let o = h.rs.stop(None).await.unwrap();
        assert!(o.ok(), "{:?}", o.errors);
        assert_eq!(
            lines(&o),
            [
                "removed 10.0.0.100/32 from lo",
                "removed fd00::100/128 from lo",
                "set net.ipv4.conf.all.arp_ignore=0 (was 1)",
                "set net.ipv4.conf.eth0.arp_ignore=3 (was 1)",
                "set net.ipv4.conf.all.arp_announce=1 (was 2)",
            ]
        );
        assert_eq!(h.snapshot(), pristine);
        assert_eq!(
            h.rs.recorded().unwrap(),
            None,
            "nothing left to undo: no record"
        );
        let o = h.rs.stop(None).await.unwrap();
        assert!(o.ok() && o.events.is_empty(), "stop twice is harmless");
    }

    #[tokio::test]
    async fn what_was_there_before_stays() {
        let mut h = host(&[
            ("all", 1, 2),
            ("default", 0, 0),
            ("lo", 0, 0),
            ("eth0", 0, 0),
        ]);
        h.rs.table = h.rs.table.clone().with("lo", "10.0.0.100", 32);
        let pristine = h.snapshot();
        let o = h.rs.start(&v("10.0.0.100,10.0.0.101"), "lo").await.unwrap();
        assert_eq!(
            lines(&o),
            [
                "10.0.0.100/32 already on lo (not added by ldirectord: stop will leave it)",
                "added 10.0.0.101/32 to lo",
            ]
        );
        let o = h.rs.stop(Some(&v("10.0.0.100,10.0.0.101"))).await.unwrap();
        assert_eq!(
            lines(&o),
            [
                "removed 10.0.0.101/32 from lo",
                "10.0.0.100: not added by ldirectord realserver start, left alone",
            ]
        );
        assert_eq!(h.snapshot(), pristine);
    }

    #[tokio::test]
    async fn arp_stays_while_a_vip_added_by_start_remains() {
        let mut h = host(PLAIN);
        let pristine = h.snapshot();
        h.rs.start(&v("10.0.0.100"), "lo").await.unwrap();
        h.rs.start(&v("10.0.0.101"), "lo").await.unwrap();
        let o = h.rs.stop(Some(&v("10.0.0.100"))).await.unwrap();
        assert_eq!(
            lines(&o),
            [
                "removed 10.0.0.100/32 from lo",
                "ARP settings kept: 1 VIP(s) added by start remain"
            ]
        );
        assert_eq!(h.sysctl("all", "arp_ignore"), "1");
        h.rs.stop(Some(&v("10.0.0.101"))).await.unwrap();
        assert_eq!(h.snapshot(), pristine);
    }

    #[tokio::test]
    async fn no_ipv4_vip_without_the_arp_settings() {
        let mut h = host(PLAIN);
        h.rs.sysctls.refuse_writes_to = Some("eth0".into());
        let o = h.rs.start(&v("10.0.0.100,fd00::100"), "lo").await.unwrap();
        assert_eq!(o.errors.len(), 1, "{:?}", o.errors);
        assert_eq!(
            lines(&o),
            [
                "set net.ipv4.conf.all.arp_ignore=1 (was 0)",
                "set net.ipv4.conf.all.arp_announce=2 (was 1)",
                "added fd00::100/128 to lo",
            ],
            "IPv6 needs no ARP settings; the IPv4 VIP waits for them"
        );
        assert!(!o.after.as_ref().unwrap().ok());
        let recorded = h.rs.recorded().unwrap().unwrap();
        assert_eq!(
            recorded.sysctls.len(),
            2,
            "the refused write is not recorded"
        );
        assert_eq!(recorded.addresses.len(), 1);
    }

    #[tokio::test]
    async fn a_refused_address_is_not_recorded_and_stop_still_undoes_the_rest() {
        let mut h = host(PLAIN);
        let pristine = h.snapshot();
        h.rs.table.fail_next = Some(1);
        let o = h.rs.start(&v("10.0.0.100"), "lo").await.unwrap();
        assert_eq!(o.errors.len(), 1);
        assert!(o.errors[0].hint().unwrap().contains("root"));
        assert!(!o.ok());
        let recorded = h.rs.recorded().unwrap().unwrap();
        assert!(
            recorded.addresses.is_empty(),
            "the failed add is not recorded as ours"
        );
        assert_eq!(recorded.sysctls.len(), 3);
        h.rs.stop(None).await.unwrap();
        assert_eq!(h.snapshot(), pristine);
    }

    #[tokio::test]
    async fn a_crash_after_the_intent_is_recorded_is_undone_by_stop() {
        let mut h = host(PLAIN);
        let pristine = h.snapshot();
        // what start records before acting, with nothing acted on yet
        let mut intent = State::default();
        intent.record_address("lo", "10.0.0.100".parse().unwrap(), 32);
        intent.record_sysctl(
            &ConfKey::new("all", super::super::sysctl::Knob::ArpIgnore).unwrap(),
            0,
            1,
        );
        h.rs.store.lock().await.unwrap().save(&intent).unwrap();
        // the sysctl got written, the address did not
        std::fs::write(h.proc.path().join("net/ipv4/conf/all/arp_ignore"), "1\n").unwrap();
        let o = h.rs.stop(None).await.unwrap();
        assert!(o.ok(), "{:?}", o.errors);
        assert_eq!(h.snapshot(), pristine);
    }

    #[tokio::test]
    async fn unknown_device_is_an_error_before_anything_changes() {
        let mut h = host(PLAIN);
        let pristine = h.snapshot();
        let err = h.rs.start(&v("10.0.0.100"), "dummy9").await.unwrap_err();
        assert!(matches!(err, RealServerError::NoSuchDevice(_)));
        assert_eq!(h.snapshot(), pristine);
    }
}
