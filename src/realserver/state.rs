//! What `start` changed, so that `stop` undoes exactly that: the record and its file.
//!
//! The file lives in a directory only root can write (`/run/ldirectord`, mode 0700), is
//! named after the network namespace (addresses and `/proc/sys/net` are per namespace),
//! and is handled only through a descriptor of that directory: opened without following
//! symbolic links, its owner and mode checked, written to a temporary file and renamed
//! into place, under an exclusive lock. Its contents are validated before use: an
//! interface name from the file can only ever name a file under `net/ipv4/conf/`.

use std::fs::File;
use std::io::{Read, Write};
use std::net::IpAddr;
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg, OFlag, openat, renameat};
use nix::sys::stat::{Mode, fstat, mkdirat};
use nix::unistd::{UnlinkatFlags, fsync, unlinkat};
use serde::{Deserialize, Serialize};
use tokio::time::Instant;

use super::error::RealServerError;
use super::sysctl::{ConfKey, Knob, check_iface_name};

/// Where the state files live unless told otherwise.
pub const DEFAULT_DIR: &str = "/run/ldirectord";
const VERSION: u32 = 1;
/// A state file lists a few addresses and sysctls; anything this large is not ours.
const MAX_STATE_LEN: u64 = 256 * 1024;
/// How long to wait for another `ldirectord realserver` holding the lock.
const LOCK_WAIT: Duration = Duration::from_secs(10);

/// An address `start` added.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnedAddress {
    pub dev: String,
    pub addr: IpAddr,
    pub prefix_len: u8,
}

/// A sysctl `start` changed: the value it found first, and the value it wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OwnedSysctl {
    pub iface: String,
    pub knob: Knob,
    pub previous: i64,
    pub set: i64,
}

impl OwnedSysctl {
    pub fn key(&self) -> Result<ConfKey, RealServerError> {
        ConfKey::new(&self.iface, self.knob)
    }
}

/// Everything `start` changed in one network namespace and that no `stop` undid yet.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct State {
    pub version: u32,
    #[serde(default)]
    pub addresses: Vec<OwnedAddress>,
    #[serde(default)]
    pub sysctls: Vec<OwnedSysctl>,
}

impl Default for State {
    fn default() -> State {
        State {
            version: VERSION,
            addresses: Vec::new(),
            sysctls: Vec::new(),
        }
    }
}

impl State {
    pub fn is_empty(&self) -> bool {
        self.addresses.is_empty() && self.sysctls.is_empty()
    }

    pub fn owns_address(&self, dev: &str, addr: IpAddr, prefix_len: u8) -> bool {
        self.addresses
            .iter()
            .any(|a| a.dev == dev && a.addr == addr && a.prefix_len == prefix_len)
    }

    pub fn record_address(&mut self, dev: &str, addr: IpAddr, prefix_len: u8) {
        if !self.owns_address(dev, addr, prefix_len) {
            self.addresses.push(OwnedAddress {
                dev: dev.to_string(),
                addr,
                prefix_len,
            });
        }
    }

    pub fn forget_address(&mut self, owned: &OwnedAddress) {
        self.addresses.retain(|a| a != owned);
    }

    /// Records a write. A key written before keeps the value found the first time: that
    /// is the one `stop` restores.
    pub fn record_sysctl(&mut self, key: &ConfKey, previous: i64, set: i64) {
        match self
            .sysctls
            .iter_mut()
            .find(|s| s.iface == key.iface() && s.knob == key.knob())
        {
            Some(s) => s.set = set,
            None => self.sysctls.push(OwnedSysctl {
                iface: key.iface().to_string(),
                knob: key.knob(),
                previous,
                set,
            }),
        }
    }

    pub fn forget_sysctl(&mut self, key: &ConfKey) {
        self.sysctls
            .retain(|s| !(s.iface == key.iface() && s.knob == key.knob()));
    }

    /// Everything the file says must make sense before anything acts on it.
    fn validate(&self) -> Result<(), String> {
        if self.version != VERSION {
            return Err(format!(
                "version {} (this program writes {VERSION})",
                self.version
            ));
        }
        for a in &self.addresses {
            check_iface_name(&a.dev).map_err(|e| e.to_string())?;
            let host = if a.addr.is_ipv4() { 32 } else { 128 };
            if a.prefix_len != host {
                return Err(format!("{}/{} is not a host address", a.addr, a.prefix_len));
            }
        }
        for s in &self.sysctls {
            s.key().map_err(|e| e.to_string())?;
        }
        Ok(())
    }
}

/// The state file of one network namespace.
#[derive(Debug, Clone)]
pub struct StateStore {
    dir: PathBuf,
    file: String,
}

impl StateStore {
    /// `DIR/realserver-net<inode>.json`, after the inode of this process's network
    /// namespace, so that real servers in different namespaces of one host (containers,
    /// test beds) keep separate records.
    pub fn for_this_namespace(dir: impl Into<PathBuf>) -> Result<StateStore, RealServerError> {
        let ns = Path::new("/proc/self/ns/net");
        let inode = std::fs::metadata(ns)
            .map_err(|source| RealServerError::StateIo {
                path: ns.to_path_buf(),
                source,
            })?
            .ino();
        Ok(StateStore {
            dir: dir.into(),
            file: format!("realserver-net{inode}.json"),
        })
    }

    /// An explicit file (`--state-file`).
    pub fn at(path: &Path) -> Result<StateStore, RealServerError> {
        let unsafe_path = |why: &str| RealServerError::StateUnsafe {
            path: path.to_path_buf(),
            why: why.to_string(),
        };
        let file = path
            .file_name()
            .and_then(|f| f.to_str())
            .filter(|f| !f.starts_with('.'))
            .ok_or_else(|| unsafe_path("not a plain file name"))?;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
            _ => PathBuf::from("."),
        };
        Ok(StateStore {
            dir,
            file: file.to_string(),
        })
    }

    pub fn path(&self) -> PathBuf {
        self.dir.join(&self.file)
    }

    fn unsafe_err(&self, path: PathBuf, why: impl Into<String>) -> RealServerError {
        let _ = self;
        RealServerError::StateUnsafe {
            path,
            why: why.into(),
        }
    }

    fn io_err(path: PathBuf) -> impl FnOnce(Errno) -> RealServerError {
        move |e| RealServerError::StateIo {
            path,
            source: std::io::Error::from(e),
        }
    }

    /// The directory, checked: `None` when it does not exist and `create` is false.
    fn open_dir(&self, create: bool) -> Result<Option<OwnedFd>, RealServerError> {
        let parent_path = match self.dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
            _ => PathBuf::from("."),
        };
        let name = self
            .dir
            .file_name()
            .ok_or_else(|| self.unsafe_err(self.dir.clone(), "no directory name"))?;
        let parent = nix::fcntl::open(
            &parent_path,
            OFlag::O_DIRECTORY | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(Self::io_err(parent_path.clone()))?;
        // Whoever can write the parent can swap the directory for one of their own.
        self.check_owner(&parent, &parent_path, true)?;
        if create {
            match mkdirat(&parent, name, Mode::S_IRWXU) {
                Ok(()) | Err(Errno::EEXIST) => {}
                Err(e) => return Err(Self::io_err(self.dir.clone())(e)),
            }
        }
        let dir = match openat(
            &parent,
            name,
            OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_RDONLY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) if !create => return Ok(None),
            Err(Errno::ELOOP | Errno::ENOTDIR) => {
                return Err(self.unsafe_err(self.dir.clone(), "not a directory (a symbolic link?)"));
            }
            Err(e) => return Err(Self::io_err(self.dir.clone())(e)),
        };
        self.check_owner(&dir, &self.dir, false)?;
        Ok(Some(dir))
    }

    /// Owned by us (or, for the parent, by root) and writable by nobody else.
    fn check_owner(
        &self,
        fd: &impl AsFd,
        path: &Path,
        root_may_own: bool,
    ) -> Result<(), RealServerError> {
        let st = fstat(fd).map_err(Self::io_err(path.to_path_buf()))?;
        let me = nix::unistd::geteuid().as_raw();
        if st.st_uid != me && !(root_may_own && st.st_uid == 0) {
            return Err(self.unsafe_err(path.to_path_buf(), format!("owned by uid {}", st.st_uid)));
        }
        if st.st_mode & 0o022 != 0 {
            return Err(self.unsafe_err(
                path.to_path_buf(),
                format!(
                    "writable by group or others (mode {:o})",
                    st.st_mode & 0o7777
                ),
            ));
        }
        Ok(())
    }

    /// The record, read without a lock (for `status`); `None` if there is none.
    pub fn peek(&self) -> Result<Option<State>, RealServerError> {
        match self.open_dir(false)? {
            Some(dir) => self.read(&dir),
            None => Ok(None),
        }
    }

    /// Takes the namespace's lock (creating the directory if needed), waiting a while
    /// for another `ldirectord realserver` to finish.
    pub async fn lock(&self) -> Result<LockedState, RealServerError> {
        let dir = self
            .open_dir(true)?
            .ok_or_else(|| self.unsafe_err(self.dir.clone(), "directory vanished"))?;
        let lock_name = format!("{}.lock", self.file);
        let lock_path = self.dir.join(&lock_name);
        let fd = openat(
            &dir,
            lock_name.as_str(),
            OFlag::O_RDWR | OFlag::O_CREAT | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::S_IRUSR | Mode::S_IWUSR,
        )
        .map_err(Self::io_err(lock_path.clone()))?;
        self.check_owner(&fd, &lock_path, false)?;
        let deadline = Instant::now() + LOCK_WAIT;
        let mut file = File::from(fd);
        let lock = loop {
            match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
                Ok(lock) => break lock,
                Err((f, Errno::EWOULDBLOCK)) if Instant::now() < deadline => {
                    file = f;
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
                Err((_, Errno::EWOULDBLOCK)) => {
                    return Err(RealServerError::StateLocked(lock_path));
                }
                Err((_, e)) => return Err(Self::io_err(lock_path)(e)),
            }
        };
        Ok(LockedState {
            store: self.clone(),
            dir,
            _lock: lock,
        })
    }

    fn read(&self, dir: &OwnedFd) -> Result<Option<State>, RealServerError> {
        let path = self.path();
        let fd = match openat(
            dir,
            self.file.as_str(),
            OFlag::O_RDONLY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) {
            Ok(fd) => fd,
            Err(Errno::ENOENT) => return Ok(None),
            Err(Errno::ELOOP) => return Err(self.unsafe_err(path, "a symbolic link")),
            Err(e) => return Err(Self::io_err(path)(e)),
        };
        self.check_owner(&fd, &path, false)?;
        let file = File::from(fd);
        if !file
            .metadata()
            .map_err(|source| RealServerError::StateIo {
                path: path.clone(),
                source,
            })?
            .is_file()
        {
            return Err(self.unsafe_err(path, "not a regular file"));
        }
        let mut bytes = Vec::new();
        file.take(MAX_STATE_LEN + 1)
            .read_to_end(&mut bytes)
            .map_err(|source| RealServerError::StateIo {
                path: path.clone(),
                source,
            })?;
        let corrupt = |why: String| RealServerError::StateCorrupt {
            path: path.clone(),
            why,
        };
        if bytes.len() as u64 > MAX_STATE_LEN {
            return Err(corrupt(format!("larger than {MAX_STATE_LEN} bytes")));
        }
        let state: State = serde_json::from_slice(&bytes).map_err(|e| corrupt(e.to_string()))?;
        state.validate().map_err(corrupt)?;
        Ok(Some(state))
    }
}

/// The state file under its lock; dropped = unlocked.
#[derive(Debug)]
pub struct LockedState {
    store: StateStore,
    dir: OwnedFd,
    _lock: Flock<File>,
}

impl LockedState {
    pub fn load(&self) -> Result<State, RealServerError> {
        Ok(self.store.read(&self.dir)?.unwrap_or_default())
    }

    /// Saves `state`, or removes the file when there is nothing left to undo.
    pub fn save(&self, state: &State) -> Result<(), RealServerError> {
        let store = &self.store;
        let path = store.path();
        if state.is_empty() {
            return match unlinkat(&self.dir, store.file.as_str(), UnlinkatFlags::NoRemoveDir) {
                Ok(()) | Err(Errno::ENOENT) => fsync(&self.dir).map_err(StateStore::io_err(path)),
                Err(e) => Err(StateStore::io_err(path)(e)),
            };
        }
        let mut json =
            serde_json::to_vec_pretty(state).map_err(|e| RealServerError::StateCorrupt {
                path: path.clone(),
                why: e.to_string(),
            })?;
        json.push(b'\n');
        let tmp = format!(".{}.tmp", store.file);
        let tmp_path = store.dir.join(&tmp);
        // A leftover from a crash; unlinking never follows a link.
        match unlinkat(&self.dir, tmp.as_str(), UnlinkatFlags::NoRemoveDir) {
            Ok(()) | Err(Errno::ENOENT) => {}
            Err(e) => return Err(StateStore::io_err(tmp_path)(e)),
        }
        let fd = openat(
            &self.dir,
            tmp.as_str(),
            OFlag::O_WRONLY | OFlag::O_CREAT | OFlag::O_EXCL | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::S_IRUSR | Mode::S_IWUSR,
        )
        .map_err(StateStore::io_err(tmp_path.clone()))?;
        let mut file = File::from(fd);
        file.write_all(&json)
            .and_then(|()| file.sync_all())
            .map_err(|source| RealServerError::StateIo {
                path: tmp_path.clone(),
                source,
            })?;
        renameat(&self.dir, tmp.as_str(), &self.dir, store.file.as_str())
            .map_err(StateStore::io_err(path.clone()))?;
        fsync(&self.dir).map_err(StateStore::io_err(path))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    fn sample() -> State {
        let mut s = State::default();
        s.record_address("lo", "10.0.0.100".parse().unwrap(), 32);
        let key = ConfKey::new("all", Knob::ArpIgnore).unwrap();
        s.record_sysctl(&key, 0, 1);
        s.record_sysctl(&key, 1, 1);
        s
    }

    #[test]
    fn the_first_previous_value_is_kept() {
        let s = sample();
        assert_eq!(s.sysctls.len(), 1);
        assert_eq!((s.sysctls[0].previous, s.sysctls[0].set), (0, 1));
    }

    #[tokio::test]
    async fn saves_loads_and_removes() {
        let tmp = tempfile::tempdir().unwrap();
        let store = StateStore::at(&tmp.path().join("ldirectord/rs.json")).unwrap();
        assert_eq!(store.peek().unwrap(), None);
        {
            let locked = store.lock().await.unwrap();
            assert_eq!(locked.load().unwrap(), State::default());
            locked.save(&sample()).unwrap();
            assert_eq!(locked.load().unwrap(), sample());
        }
        let dir_mode = std::fs::metadata(tmp.path().join("ldirectord"))
            .unwrap()
            .mode();
        assert_eq!(dir_mode & 0o777, 0o700);
        let file_mode = std::fs::metadata(store.path()).unwrap().mode();
        assert_eq!(file_mode & 0o077, 0);
        assert_eq!(store.peek().unwrap(), Some(sample()));
        let locked = store.lock().await.unwrap();
        locked.save(&State::default()).unwrap();
        assert!(!store.path().exists());
        assert_eq!(store.peek().unwrap(), None);
    }

    #[tokio::test(start_paused = true)]
    async fn a_second_writer_waits_then_gives_up() {
        let tmp = tempfile::tempdir().unwrap();
        let store = StateStore::at(&tmp.path().join("d/rs.json")).unwrap();
        let held = store.lock().await.unwrap();
        let err = store.lock().await.unwrap_err();
        assert!(matches!(err, RealServerError::StateLocked(_)), "{err}");
        drop(held);
        store.lock().await.unwrap();
    }

    #[tokio::test]
    async fn links_and_loose_permissions_are_refused() {
        let tmp = tempfile::tempdir().unwrap();
        // the state directory is a symbolic link
        std::fs::create_dir(tmp.path().join("elsewhere")).unwrap();
        std::os::unix::fs::symlink(tmp.path().join("elsewhere"), tmp.path().join("d")).unwrap();
        let store = StateStore::at(&tmp.path().join("d/rs.json")).unwrap();
        assert!(matches!(
            store.lock().await,
            Err(RealServerError::StateUnsafe { .. })
        ));
        assert!(matches!(
            store.peek(),
            Err(RealServerError::StateUnsafe { .. })
        ));

        // the file is a symbolic link (to a file an attacker wants overwritten or read)
        let store = StateStore::at(&tmp.path().join("e/rs.json")).unwrap();
        drop(store.lock().await.unwrap());
        std::fs::write(tmp.path().join("victim"), "{}").unwrap();
        std::os::unix::fs::symlink(tmp.path().join("victim"), store.path()).unwrap();
        assert!(matches!(
            store.peek(),
            Err(RealServerError::StateUnsafe { .. })
        ));
        let locked = store.lock().await.unwrap();
        assert!(locked.load().is_err());
        drop(locked);

        // a directory others may write to
        let open = tmp.path().join("open");
        std::fs::create_dir(&open).unwrap();
        std::fs::set_permissions(&open, std::fs::Permissions::from_mode(0o777)).unwrap();
        let store = StateStore::at(&open.join("rs.json")).unwrap();
        assert!(matches!(
            store.lock().await,
            Err(RealServerError::StateUnsafe { .. })
        ));
        // … or whose parent others may write to
        let store = StateStore::at(&open.join("sub/rs.json")).unwrap();
        assert!(matches!(
            store.lock().await,
            Err(RealServerError::StateUnsafe { .. })
        ));
        assert!(
            !open.join("sub").exists(),
            "nothing created under an unsafe parent"
        );
    }

    #[tokio::test]
    async fn a_hostile_record_is_refused() {
        let tmp = tempfile::tempdir().unwrap();
        let store = StateStore::at(&tmp.path().join("d/rs.json")).unwrap();
        drop(store.lock().await.unwrap());
        for (json, why) in [
            (
                r#"{"version":1,"sysctls":[{"iface":"../../../../etc","knob":"arp_ignore","previous":0,"set":1}]}"#,
                "bad interface",
            ),
            (
                r#"{"version":1,"addresses":[{"dev":"lo","addr":"10.0.0.0","prefix_len":8}]}"#,
                "wide prefix",
            ),
            (r#"{"version":2}"#, "future version"),
            (r#"{"version":1,"extra":true}"#, "unknown field"),
            ("not json", "garbage"),
        ] {
            std::fs::write(store.path(), json).unwrap();
            assert!(
                matches!(store.peek(), Err(RealServerError::StateCorrupt { .. })),
                "{why}"
            );
        }
        std::fs::write(store.path(), vec![b' '; 300 * 1024]).unwrap();
        assert!(matches!(
            store.peek(),
            Err(RealServerError::StateCorrupt { .. })
        ));
    }
}
