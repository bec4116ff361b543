//! Reading the host into [`Facts`]: `/sys/module`, `/lib/modules/<release>`, `/proc/sys`,
//! the addresses and routes (rtnetlink), the capabilities, and the IPVS sync daemons.
//! Nothing here changes the host; in particular no module is loaded (the IPVS table is
//! only asked for when `ip_vs` is already there).

use std::collections::{BTreeMap, BTreeSet};
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use super::facts::{Facts, LocalAddress, Module, Route, Sync};
use crate::config::Config;
use crate::ipvs::{Backend, IpvsClient};
use crate::rtnl::{RtnlClient, if_name};

/// `modules.dep` of a distribution kernel is about 1 MiB.
const MAX_INDEX_LEN: u64 = 16 << 20;

/// Where the host's files are (tests point these at a stand-in tree).
#[derive(Debug, Clone)]
pub struct Paths {
    pub sys_module: PathBuf,
    pub lib_modules: PathBuf,
    pub proc_sys: PathBuf,
}

impl Default for Paths {
    fn default() -> Paths {
        Paths {
            sys_module: "/sys/module".into(),
            lib_modules: "/lib/modules".into(),
            proc_sys: "/proc/sys".into(),
        }
    }
}

fn read_bounded(path: &Path, max: u64) -> std::io::Result<String> {
    let mut text = String::new();
    std::fs::File::open(path)?
        .take(max)
        .read_to_string(&mut text)?;
    Ok(text)
}

/// The module names a kernel index lists: `kernel/net/netfilter/ipvs/ip_vs_rr.ko.xz: …`
/// gives `ip_vs_rr`.
fn index_names(text: &str) -> BTreeSet<String> {
    text.lines()
        .filter_map(|line| {
            let path = line.split(':').next()?.trim();
            let file = path.rsplit('/').next()?;
            let name = file.split(".ko").next()?;
            (!name.is_empty() && file.contains(".ko")).then(|| name.replace('-', "_"))
        })
        .collect()
}

/// The modules `ip_vs` needs for `config`: itself, each scheduler, `ip_vs_ftp`.
fn wanted_modules(config: &Config) -> BTreeSet<String> {
    let mut names: BTreeSet<String> = ["ip_vs".to_string(), "ip_vs_ftp".to_string()].into();
    for v in &config.virtuals {
        names.insert(format!("ip_vs_{}", v.scheduler));
    }
    names
}

fn modules(
    config: &Config,
    paths: &Paths,
    release: &str,
    notes: &mut Vec<String>,
) -> BTreeMap<String, Module> {
    let dir = paths.lib_modules.join(release);
    let builtin = read_bounded(&dir.join("modules.builtin"), MAX_INDEX_LEN)
        .map(|t| index_names(&t))
        .unwrap_or_default();
    let available = match read_bounded(&dir.join("modules.dep"), MAX_INDEX_LEN) {
        Ok(t) => index_names(&t),
        Err(e) => {
            notes.push(format!(
                "{}: {e} (modules that are not loaded count as missing)",
                dir.join("modules.dep").display()
            ));
            BTreeSet::new()
        }
    };
    wanted_modules(config)
        .into_iter()
        .map(|name| {
            // a module with parameters shows in /sys/module even when built in; one
            // without shows only in modules.builtin
            let state = if paths.sys_module.join(&name).exists() || builtin.contains(&name) {
                Module::Loaded
            } else if available.contains(&name) {
                Module::Available
            } else {
                Module::Missing
            };
            (name, state)
        })
        .collect()
}

fn sysctl_value(paths: &Path, name: &str) -> Option<i64> {
    let path = paths.join(name.replace('.', "/"));
    read_bounded(&path, 64).ok()?.trim().parse().ok()
}

/// Every address with its interface's name; also the ARP and reverse-path settings of
/// those interfaces and of the routes' interfaces.
pub async fn collect(config: &Config, paths: &Paths) -> Facts {
    let mut facts = Facts::empty();
    let mut notes = Vec::new();
    facts.kernel_release = read_bounded(&paths.proc_sys.join("kernel/osrelease"), 256)
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    facts.modules = modules(config, paths, &facts.kernel_release.clone(), &mut notes);

    let mut ifaces: BTreeSet<String> = ["all".to_string()].into();
    match RtnlClient::open(Duration::from_secs(5)) {
        Ok(mut rtnl) => {
            match rtnl.addresses().await {
                Ok(entries) => {
                    let list: Vec<LocalAddress> = entries
                        .into_iter()
                        .map(|e| LocalAddress {
                            dev: if_name(e.index),
                            addr: e.addr,
                            prefix_len: e.prefix_len,
                        })
                        .collect();
                    ifaces.extend(list.iter().map(|a| a.dev.clone()));
                    facts.addresses = Some(list);
                }
                Err(e) => {
                    notes.push(format!("addresses: {e}"));
                    facts.addresses = None;
                }
            }
            let reals: BTreeSet<IpAddr> = config
                .virtuals
                .iter()
                .flat_map(|v| {
                    v.reals
                        .iter()
                        .map(|r| r.addr)
                        .chain(v.fallback.iter().map(|f| f.addr))
                })
                .collect();
            for addr in reals {
                let route = rtnl.route_to(addr, None).await.map(|r| Route {
                    kind: r.kind,
                    dev: r.oif.map(if_name),
                    gateway: r.gateway,
                });
                if let Ok(Route { dev: Some(dev), .. }) = &route {
                    ifaces.insert(dev.clone());
                }
                facts.routes.insert(addr, route.map_err(|e| e.to_string()));
            }
        }
        Err(e) => {
            notes.push(format!("rtnetlink: {e}"));
            facts.addresses = None;
        }
    }

    for key in ["net.ipv4.ip_forward", "net.ipv6.conf.all.forwarding"] {
        if let Some(v) = sysctl_value(&paths.proc_sys, key) {
            facts.sysctl.insert(key.to_string(), v);
        }
    }
    for iface in &ifaces {
        for knob in ["arp_ignore", "arp_announce", "rp_filter", "accept_local"] {
            // an interface name may hold dots; sysctl_value maps dots to slashes, so
            // read its file directly
            let path = paths.proc_sys.join("net/ipv4/conf").join(iface).join(knob);
            if let Some(v) = read_bounded(&path, 64)
                .ok()
                .and_then(|t| t.trim().parse().ok())
            {
                facts
                    .sysctl
                    .insert(format!("net.ipv4.conf.{iface}.{knob}"), v);
            }
        }
    }

    facts.cap_net_admin = has_cap(caps::Capability::CAP_NET_ADMIN);
    facts.cap_net_raw = has_cap(caps::Capability::CAP_NET_RAW);
    facts.ping_sockets_allowed =
        read_bounded(&paths.proc_sys.join("net/ipv4/ping_group_range"), 64)
            .ok()
            .is_some_and(|t| ping_allowed(&t));

    facts.sync = if facts.module("ip_vs") == Module::Loaded {
        match IpvsClient::connect().await {
            Ok(mut client) => match client.daemons().await {
                Ok(d) => Sync::Daemons(d),
                Err(e) => Sync::NotRead(with_hint(&e)),
            },
            Err(e) => Sync::NotRead(with_hint(&e)),
        }
    } else {
        Sync::NotRead("ip_vs is not loaded".into())
    };
    facts.notes = notes;
    facts
}

fn with_hint(e: &crate::ipvs::IpvsError) -> String {
    match e.hint() {
        Some(h) => format!("{e} ({h})"),
        None => e.to_string(),
    }
}

fn has_cap(cap: caps::Capability) -> bool {
    caps::has_cap(None, caps::CapSet::Effective, cap).unwrap_or(false)
}

/// `net.ipv4.ping_group_range` ("low high") against this process's groups.
fn ping_allowed(range: &str) -> bool {
    let mut it = range
        .split_whitespace()
        .filter_map(|n| n.parse::<u32>().ok());
    let (Some(low), Some(high)) = (it.next(), it.next()) else {
        return false;
    };
    let mut groups: Vec<u32> = nix::unistd::getgroups()
        .map(|g| g.into_iter().map(|g| g.as_raw()).collect())
        .unwrap_or_default();
    groups.push(nix::unistd::getegid().as_raw());
    groups.iter().any(|g| (low..=high).contains(g))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{FakeHost, parse_str};

    #[test]
    fn module_indexes_are_read_like_modprobe() {
        let names = index_names(
            "kernel/net/netfilter/ipvs/ip_vs_rr.ko.xz: kernel/net/netfilter/ipvs/ip_vs.ko.xz\n\
             kernel/net/netfilter/ipvs/ip_vs.ko.zst: kernel/net/netfilter/nf_conntrack.ko\n\
             kernel/drivers/net/dummy-thing.ko:\n\
             garbage line\n",
        );
        assert_eq!(
            names.into_iter().collect::<Vec<_>>(),
            ["dummy_thing", "ip_vs", "ip_vs_rr"]
        );
    }

    #[test]
    fn loaded_builtin_available_missing() {
        let tree = tempfile::tempdir().unwrap();
        let paths = Paths {
            sys_module: tree.path().join("sys/module"),
            lib_modules: tree.path().join("lib/modules"),
            proc_sys: tree.path().join("proc/sys"),
        };
        std::fs::create_dir_all(paths.sys_module.join("ip_vs")).unwrap();
        let dir = paths.lib_modules.join("6.1.0-test");
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("modules.builtin"),
            "kernel/net/netfilter/ipvs/ip_vs_wrr.ko\n",
        )
        .unwrap();
        std::fs::write(
            dir.join("modules.dep"),
            "kernel/net/netfilter/ipvs/ip_vs_rr.ko.xz: kernel/net/netfilter/ipvs/ip_vs.ko.xz\n",
        )
        .unwrap();
        let text = "virtual=10.0.0.100:80\n\treal=10.0.0.11:80 gate\n\tscheduler=rr\nvirtual=10.0.0.100:81\n\treal=10.0.0.11:80 gate\n\tscheduler=wrr\nvirtual=10.0.0.100:82\n\treal=10.0.0.11:80 gate\n\tscheduler=lc\n";
        let config = parse_str(text, Path::new("/t.cf"), &FakeHost::default())
            .unwrap()
            .config;
        let mut notes = Vec::new();
        let m = modules(&config, &paths, "6.1.0-test", &mut notes);
        assert_eq!(m["ip_vs"], Module::Loaded);
        assert_eq!(m["ip_vs_wrr"], Module::Loaded);
        assert_eq!(m["ip_vs_rr"], Module::Available);
        assert_eq!(m["ip_vs_lc"], Module::Missing);
        assert!(notes.is_empty());
        let m = modules(&config, &paths, "5.10-gone", &mut notes);
        assert_eq!(m["ip_vs_rr"], Module::Missing);
        assert_eq!(notes.len(), 1, "{notes:?}");
    }

    #[test]
    fn ping_group_range() {
        assert!(!ping_allowed("1\t0"), "the kernel's default allows nobody");
        assert!(ping_allowed("0 2147483647"));
        assert!(!ping_allowed("garbage"));
    }
}
