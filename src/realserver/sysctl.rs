//! The per-interface IPv4 settings under `/proc/sys/net/ipv4/conf`, read and written as
//! files: no `sysctl` program, no shell. The root is a parameter so tests use a plain
//! directory tree.

use std::collections::BTreeMap;
use std::fmt;
use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Read, Write};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::error::RealServerError;

/// Longest value file we read; these hold one small integer.
const MAX_VALUE_LEN: u64 = 64;

/// The ARP settings that LVS-DR real servers need.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Knob {
    #[serde(rename = "arp_ignore")]
    ArpIgnore,
    #[serde(rename = "arp_announce")]
    ArpAnnounce,
}

impl Knob {
    pub fn file_name(self) -> &'static str {
        match self {
            Knob::ArpIgnore => "arp_ignore",
            Knob::ArpAnnounce => "arp_announce",
        }
    }
}

/// `net.ipv4.conf.<iface>.<knob>`; `iface` is an interface name, `all` or `default`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "RawConfKey")]
pub struct ConfKey {
    iface: String,
    knob: Knob,
}

#[derive(Deserialize)]
struct RawConfKey {
    iface: String,
    knob: Knob,
}

impl TryFrom<RawConfKey> for ConfKey {
    type Error = RealServerError;
    fn try_from(raw: RawConfKey) -> Result<ConfKey, RealServerError> {
        ConfKey::new(&raw.iface, raw.knob)
    }
}

impl ConfKey {
    /// Refuses names that are not a single path component, so that a key (which may come
    /// from the state file) can only ever name a file under `net/ipv4/conf/`.
    pub fn new(iface: &str, knob: Knob) -> Result<ConfKey, RealServerError> {
        check_iface_name(iface)?;
        Ok(ConfKey {
            iface: iface.to_string(),
            knob,
        })
    }

    pub fn iface(&self) -> &str {
        &self.iface
    }

    pub fn knob(&self) -> Knob {
        self.knob
    }

    fn relative_path(&self) -> PathBuf {
        Path::new("net/ipv4/conf")
            .join(&self.iface)
            .join(self.knob.file_name())
    }
}

impl fmt::Display for ConfKey {
    /// sysctl(8) spelling: dots separate levels, so a dot inside an interface name
    /// (a VLAN such as `eth0.100`) is written as a slash.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "net.ipv4.conf.{}.{}",
            self.iface.replace('.', "/"),
            self.knob.file_name()
        )
    }
}

/// Linux interface names: 1 to 15 bytes, no `/`, no whitespace, not `.` or `..`.
pub fn check_iface_name(name: &str) -> Result<(), RealServerError> {
    let ok = !name.is_empty()
        && name.len() <= 15
        && name != "."
        && name != ".."
        && !name
            .bytes()
            .any(|b| b == b'/' || b == b':' || b.is_ascii_whitespace() || b.is_ascii_control());
    if ok {
        Ok(())
    } else {
        Err(RealServerError::BadDeviceName(name.to_string()))
    }
}

/// The ARP knobs of every entry under `net/ipv4/conf`, keyed by interface name (plus
/// `all` and `default`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ArpValues(pub BTreeMap<String, ArpKnobs>);

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ArpKnobs {
    pub ignore: i64,
    pub announce: i64,
}

impl ArpKnobs {
    pub fn get(&self, knob: Knob) -> i64 {
        match knob {
            Knob::ArpIgnore => self.ignore,
            Knob::ArpAnnounce => self.announce,
        }
    }
}

impl ArpValues {
    pub fn get(&self, key: &ConfKey) -> Option<i64> {
        self.0.get(key.iface()).map(|k| k.get(key.knob()))
    }
}

/// `/proc/sys` (or a stand-in tree).
#[derive(Debug, Clone)]
pub struct Sysctls {
    root: PathBuf,
    /// Writes to this interface's settings fail with EACCES (tests of partial failure:
    /// root writes any file of a stand-in tree).
    #[cfg(test)]
    pub(crate) refuse_writes_to: Option<String>,
}

impl Default for Sysctls {
    fn default() -> Sysctls {
        Sysctls::at("/proc/sys")
    }
}

impl Sysctls {
    pub fn at(root: impl Into<PathBuf>) -> Sysctls {
        Sysctls {
            root: root.into(),
            #[cfg(test)]
            refuse_writes_to: None,
        }
    }

    pub fn path(&self, key: &ConfKey) -> PathBuf {
        self.root.join(key.relative_path())
    }

    pub fn read(&self, key: &ConfKey) -> Result<i64, RealServerError> {
        read_int(&self.path(key))
    }

    pub fn write(&self, key: &ConfKey, value: i64) -> Result<(), RealServerError> {
        let path = self.path(key);
        #[cfg(test)]
        if self.refuse_writes_to.as_deref() == Some(key.iface()) {
            return Err(RealServerError::Sysctl {
                path,
                source: std::io::Error::from_raw_os_error(13),
            });
        }
        // No create, no truncate: a /proc/sys file takes the value in one write, and a
        // missing file (the interface went away) must stay an error, not become a file.
        let result = OpenOptions::new()
            .write(true)
            .open(&path)
            .and_then(|mut f| f.write_all(format!("{value}\n").as_bytes()));
        result.map_err(|source| RealServerError::Sysctl { path, source })
    }

    /// Reads `arp_ignore` and `arp_announce` of every entry. An interface that vanishes
    /// while being read is left out.
    pub fn arp_values(&self) -> Result<ArpValues, RealServerError> {
        let dir = self.root.join("net/ipv4/conf");
        let entries = std::fs::read_dir(&dir).map_err(|source| RealServerError::Sysctl {
            path: dir.clone(),
            source,
        })?;
        let mut values = BTreeMap::new();
        for entry in entries {
            let entry = entry.map_err(|source| RealServerError::Sysctl {
                path: dir.clone(),
                source,
            })?;
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let (Ok(ignore), Ok(announce)) = (
                ConfKey::new(&name, Knob::ArpIgnore),
                ConfKey::new(&name, Knob::ArpAnnounce),
            ) else {
                continue;
            };
            let knobs = match (self.read(&ignore), self.read(&announce)) {
                (Ok(ignore), Ok(announce)) => ArpKnobs { ignore, announce },
                (Err(e), _) | (_, Err(e)) if is_not_found(&e) => continue,
                (Err(e), _) | (_, Err(e)) => return Err(e),
            };
            values.insert(name, knobs);
        }
        Ok(ArpValues(values))
    }

    pub fn root(&self) -> &Path {
        &self.root
    }
}

fn is_not_found(e: &RealServerError) -> bool {
    matches!(e, RealServerError::Sysctl { source, .. } if source.kind() == ErrorKind::NotFound)
}

/// Reads a file holding one integer (bounded; anything else is an error).
pub fn read_int(path: &Path) -> Result<i64, RealServerError> {
    let mut text = String::new();
    File::open(path)
        .and_then(|f| f.take(MAX_VALUE_LEN).read_to_string(&mut text))
        .map_err(|source| RealServerError::Sysctl {
            path: path.to_path_buf(),
            source,
        })?;
    text.trim()
        .parse()
        .map_err(|_| RealServerError::SysctlValue {
            path: path.to_path_buf(),
            content: text.chars().take(32).collect(),
        })
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A stand-in `/proc/sys` with `net/ipv4/conf/<iface>/{arp_ignore,arp_announce}`.
    pub(crate) fn fake_proc(entries: &[(&str, i64, i64)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (iface, ignore, announce) in entries {
            let d = dir.path().join("net/ipv4/conf").join(iface);
            std::fs::create_dir_all(&d).unwrap();
            std::fs::write(d.join("arp_ignore"), format!("{ignore}\n")).unwrap();
            std::fs::write(d.join("arp_announce"), format!("{announce}\n")).unwrap();
        }
        dir
    }

    #[test]
    fn reads_and_writes_values_as_files() {
        let proc = fake_proc(&[
            ("all", 0, 0),
            ("default", 0, 0),
            ("lo", 0, 0),
            ("eth0", 3, 1),
        ]);
        let s = Sysctls::at(proc.path());
        let values = s.arp_values().unwrap();
        assert_eq!(values.0.len(), 4);
        assert_eq!(
            values.0["eth0"],
            ArpKnobs {
                ignore: 3,
                announce: 1
            }
        );
        let key = ConfKey::new("eth0", Knob::ArpIgnore).unwrap();
        s.write(&key, 1).unwrap();
        assert_eq!(s.read(&key).unwrap(), 1);
        assert_eq!(
            std::fs::read_to_string(proc.path().join("net/ipv4/conf/eth0/arp_ignore")).unwrap(),
            "1\n"
        );
    }

    #[test]
    fn never_creates_a_missing_entry() {
        let proc = fake_proc(&[("all", 0, 0)]);
        let s = Sysctls::at(proc.path());
        let key = ConfKey::new("eth9", Knob::ArpIgnore).unwrap();
        assert!(s.write(&key, 1).is_err());
        assert!(!s.path(&key).exists());
    }

    #[test]
    fn keys_cannot_escape_the_conf_directory() {
        for bad in [
            "",
            ".",
            "..",
            "a/b",
            "../../x",
            "eth0:1",
            "a b",
            "0123456789abcdef",
        ] {
            assert!(ConfKey::new(bad, Knob::ArpIgnore).is_err(), "{bad:?}");
        }
        let vlan = ConfKey::new("eth0.100", Knob::ArpAnnounce).unwrap();
        assert_eq!(vlan.to_string(), "net.ipv4.conf.eth0/100.arp_announce");
        let json = r#"{"iface":"../../../etc","knob":"arp_ignore"}"#;
        assert!(serde_json::from_str::<ConfKey>(json).is_err());
    }

    #[test]
    fn garbage_is_an_error_not_a_zero() {
        let proc = fake_proc(&[("all", 0, 0)]);
        std::fs::write(proc.path().join("net/ipv4/conf/all/arp_ignore"), "x\n").unwrap();
        let s = Sysctls::at(proc.path());
        assert!(matches!(
            s.arp_values(),
            Err(RealServerError::SysctlValue { .. })
        ));
    }
}
