//! Entry points: read a file (or a string) into a [`Config`].

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::error::{ConfigError, Diagnostic, Severity};
use super::model::Config;
use super::read;
use super::resolve::{Host, SystemHost};
use super::syntax::LineIndex;

/// Larger files are refused (the 1,000-virtual benchmark file is about 0.5 MiB).
pub const MAX_FILE_SIZE: u64 = 16 << 20;

/// A valid configuration and the warnings found while reading it.
#[derive(Debug, Clone)]
pub struct Loaded {
    pub config: Config,
    pub warnings: Vec<Diagnostic>,
}

/// Reads and validates `path`, resolving names through the system.
pub fn load(path: impl AsRef<Path>) -> Result<Loaded, ConfigError> {
    load_with(path, &SystemHost::new())
}

/// As [`load`], with `host` answering name lookups.
pub fn load_with(path: impl AsRef<Path>, host: &dyn Host) -> Result<Loaded, ConfigError> {
    let path = path.as_ref();
    let read_err = |source| ConfigError::Read {
        path: path.to_owned(),
        source,
    };
    let file = std::fs::File::open(path).map_err(read_err)?;
    let mut bytes = Vec::new();
    file.take(MAX_FILE_SIZE + 1)
        .read_to_end(&mut bytes)
        .map_err(read_err)?;
    if bytes.len() as u64 > MAX_FILE_SIZE {
        return Err(read_err(std::io::Error::other(format!(
            "larger than {} MiB",
            MAX_FILE_SIZE >> 20
        ))));
    }
    parse_bytes(&bytes, path, host)
}

/// Reads configuration text as if it came from `file`.
pub fn parse_str(text: &str, file: &Path, host: &dyn Host) -> Result<Loaded, ConfigError> {
    let file: Arc<Path> = Arc::from(file);
    read::read(text, file, host)
        .map(|r| Loaded {
            config: r.config,
            warnings: r.warnings,
        })
        .map_err(ConfigError::Invalid)
}

/// Reads raw bytes: text that is not UTF-8 is read with the bad bytes replaced, and a warning.
pub fn parse_bytes(bytes: &[u8], file: &Path, host: &dyn Host) -> Result<Loaded, ConfigError> {
    match std::str::from_utf8(bytes) {
        Ok(text) => parse_str(text, file, host),
        Err(e) => {
            let text = String::from_utf8_lossy(bytes);
            let index = LineIndex::new(&text);
            let (line, column) = index.line_col(e.valid_up_to());
            let warning = Diagnostic {
                severity: Severity::Warning,
                message: "the file is not valid UTF-8; invalid bytes are read as U+FFFD".into(),
                file: Arc::from(file),
                line,
                column,
                width: 1,
                source_line: index.line_text(e.valid_up_to()).to_owned(),
                label: Some("first invalid byte".into()),
                notes: Vec::new(),
            };
            match parse_str(&text, file, host) {
                Ok(mut loaded) => {
                    loaded.warnings.insert(0, warning);
                    Ok(loaded)
                }
                Err(ConfigError::Invalid(mut report)) => {
                    report.warnings.insert(0, warning);
                    Err(ConfigError::Invalid(report))
                }
                Err(other) => Err(other),
            }
        }
    }
}

/// The Perl lookup of a configuration name: `/etc/ha.d/NAME`, then `/etc/ha.d/conf/NAME`, then
/// `NAME` as given; the first that is a file. `None` when none is.
pub fn find_config_file(name: &str) -> Option<PathBuf> {
    find_config_file_in(name, Path::new("/etc/ha.d"))
}

/// [`find_config_file`] with another directory in place of `/etc/ha.d` (for tests).
pub fn find_config_file_in(name: &str, ha_d: &Path) -> Option<PathBuf> {
    [
        ha_d.join(name),
        ha_d.join("conf").join(name),
        PathBuf::from(name),
    ]
    .into_iter()
    .find(|p| p.is_file())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{FakeHost, TlsVerify};

    #[test]
    fn loads_the_web_site_example() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config-examples/web-site.cf");
        let loaded = load_with(&path, &FakeHost::default()).unwrap();
        println!("{}", serde_json::to_string_pretty(&loaded.config).unwrap());
        for w in &loaded.warnings {
            println!("{w}");
        }
        assert_eq!(loaded.config.virtuals.len(), 1);
    }

    #[test]
    fn tls_directives_and_the_oracle_refusal() {
        let host = FakeHost::default();
        let file = Path::new("/etc/ha.d/test.cf");
        let text = "virtual=192.0.2.1:443\n    real=192.0.2.10:443 masq\n    service=https\n    tlsverify=none\n    tlscafile=\"/etc/ssl/private-ca.pem\"\n";
        let loaded = parse_str(text, file, &host).unwrap();
        let check = &loaded.config.virtuals[0].check;
        assert_eq!(check.tlsverify, TlsVerify::None);
        assert_eq!(
            check.tlscafile.as_deref(),
            Some(Path::new("/etc/ssl/private-ca.pem"))
        );
        let default = parse_str(
            "virtual=192.0.2.1:443\n    real=192.0.2.10:443 masq\n",
            file,
            &host,
        )
        .unwrap();
        assert_eq!(default.config.virtuals[0].check.tlsverify, TlsVerify::Chain);
        assert!(
            parse_str(
                "virtual=192.0.2.1:443\n    tlsverify=sometimes\n",
                file,
                &host
            )
            .is_err()
        );

        let err = parse_str(
            "virtual=192.0.2.1:1521\n    real=192.0.2.10 gate\n    service=oracle\n",
            file,
            &host,
        )
        .unwrap_err();
        assert!(
            err.to_string().contains("service=oracle is not supported"),
            "{err}"
        );
    }

    #[test]
    fn checkdatapath_is_off_by_default_and_refused_where_it_cannot_work() {
        let host = FakeHost::default();
        let file = Path::new("/etc/ha.d/test.cf");
        let base = "virtual=192.0.2.1:80\n    real=192.0.2.10:80 gate\n";
        let off = parse_str(base, file, &host).unwrap();
        assert!(!off.config.virtuals[0].check.datapath);
        let on = parse_str(&format!("{base}    checkdatapath=yes\n"), file, &host).unwrap();
        assert!(on.config.virtuals[0].check.datapath);
        assert!(
            crate::config::render(&on.config).contains("checkdatapath = yes"),
            "rendered back"
        );
        for (text, why) in [
            (
                "virtual=7\n    real=192.0.2.10 gate\n    checkdatapath=yes\n",
                "needs a virtual=ADDRESS:PORT",
            ),
            (
                "virtual=192.0.2.1:80\n    real=192.0.2.10:80 gate\n    checktype=ping\n    checkdatapath=yes\n",
                "checktype=ping",
            ),
            (
                "virtual=192.0.2.1:53\n    protocol=udp\n    real=192.0.2.10:53 gate\n    checktype=connect\n    checkdatapath=yes\n",
                "connect on UDP",
            ),
            (
                "virtual=192.0.2.1:80\n    real=192.0.2.10:80 gate\n    checktype=external\n    checkcommand=/bin/true\n    checkdatapath=yes\n",
                "external checks",
            ),
        ] {
            let err = parse_str(text, file, &host).unwrap_err();
            assert!(err.to_string().contains(why), "{why}: {err}");
        }
        assert!(parse_str(&format!("{base}    checkdatapath=maybe\n"), file, &host).is_err());
        // a UDP negotiate check (dns) opens a socket a mark can steer
        let dns = "virtual=192.0.2.1:53\n    protocol=udp\n    real=192.0.2.10:53 gate\n    service=dns\n    checkdatapath=yes\n";
        assert!(parse_str(dns, file, &host).is_ok());
    }
}

#[cfg(test)]
mod lookup_tests {
    use super::*;

    #[test]
    fn bare_names_are_looked_up_under_ha_d_then_conf_then_as_given() {
        let dir = tempfile::tempdir().unwrap();
        let ha = dir.path();
        std::fs::create_dir(ha.join("conf")).unwrap();
        std::fs::write(ha.join("conf/b.cf"), "").unwrap();
        std::fs::write(ha.join("a.cf"), "").unwrap();
        std::fs::write(ha.join("conf/a.cf"), "").unwrap();
        assert_eq!(find_config_file_in("a.cf", ha), Some(ha.join("a.cf")));
        assert_eq!(find_config_file_in("b.cf", ha), Some(ha.join("conf/b.cf")));
        let given = ha.join("conf/b.cf");
        let given = given.to_str().unwrap();
        assert_eq!(
            find_config_file_in(given, Path::new("/nonexistent")),
            Some(given.into())
        );
        assert_eq!(find_config_file_in("missing.cf", ha), None);
    }

    #[test]
    fn unreadable_file_is_a_read_error() {
        let err = load_with("/nonexistent/x.cf", &crate::config::FakeHost::default()).unwrap_err();
        assert!(matches!(err, ConfigError::Read { .. }));
        assert!(
            err.to_string()
                .starts_with("can not open file /nonexistent/x.cf")
        );
    }
}
