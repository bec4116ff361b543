//! heartbeat v1 resource script: `/etc/ha.d/resource.d/ldirectord`, a symlink to the
//! binary as in the Perl package, so that a `haresources` line such as
//! `director1 IPaddr::10.0.0.100/24/eth0 ldirectord::ldirectord.cf` runs
//! `/etc/ha.d/resource.d/ldirectord ldirectord.cf start|stop|status`.
//!
//! Every command behaves as `ldirectord CONFIG COMMAND`, except what `status` prints.
//! heartbeat's `ResourceManager` reads only the standard output of `status`, and decides
//! "ours" when it matches `*[Rr]unning*` or `*OK*` but not `*[Nn][Oo][Tt] *[Rr]unning*`.
//! The Perl ldirectord prints its "is running" line on stderr, so heartbeat never sees it:
//! it issues `start` every time (harmless, a running ldirectord exits 0), and its
//! start-up check (`verifyallidle`) cannot notice an ldirectord it did not start.
//! Invoked from `resource.d`, this one says the truth on stdout, one line, with the
//! configuration's name kept off the decisive words:
//!
//! | state | stdout | exit |
//! |---|---|---|
//! | running | `ldirectord is running with pid: N (CONFIG)` | 0 |
//! | stale pid file | `ldirectord is not running (stale pid file …)` | 1 |
//! | stopped | `ldirectord is not running (CONFIG)` | 3 |
//!
//! So heartbeat skips the `start` of an ldirectord already running for that file, and
//! warns at its own start when one runs outside its control (two managers for one
//! daemon: disable the init script or unit).

use std::path::Path;
use std::process::ExitCode;

use crate::cli::{exit, legacy};
use crate::daemon::{Paths, PidFile, Probe};

/// Whether the binary was run as heartbeat's resource script (its name's directory is
/// `resource.d`).
pub fn invoked_as_resource_script(argv0: &str) -> bool {
    Path::new(argv0)
        .parent()
        .and_then(Path::file_name)
        .is_some_and(|d| d == "resource.d")
}

/// `args` are the arguments after the program name.
pub fn run(args: &[String]) -> ExitCode {
    match legacy::parse(args) {
        Ok(legacy::Action::Lifecycle(inv)) if inv.command == "status" => {
            ExitCode::from(status(&inv.config, &inv.cfgname))
        }
        _ => legacy::run(args),
    }
}

fn status(config: &str, cfgname: &str) -> u8 {
    let shown = crate::config::find_config_file(config)
        .map(|p| p.display().to_string())
        .unwrap_or_else(|| config.to_owned());
    let pid_file = PidFile::new(&Paths::for_cfgname(cfgname).pid_file);
    match pid_file.probe() {
        Ok(Probe::Running { pid }) => {
            println!("ldirectord is running with pid: {pid} ({shown})");
            exit::OK
        }
        Ok(Probe::Stale { .. }) => {
            println!(
                "ldirectord is not running (stale pid file {} for {shown})",
                pid_file.path().display()
            );
            exit::FAILURE
        }
        Ok(Probe::NotRunning) => {
            println!("ldirectord is not running ({shown})");
            exit::NOT_RUNNING
        }
        Err(e) => {
            // Unknown: say "not running" so that heartbeat tries `start`, which reports.
            println!("ldirectord is not running (cannot read its pid file: {e})");
            4
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn recognises_the_resource_script_path() {
        assert!(invoked_as_resource_script(
            "/etc/ha.d/resource.d/ldirectord"
        ));
        assert!(invoked_as_resource_script("resource.d/ldirectord"));
        assert!(!invoked_as_resource_script("/usr/sbin/ldirectord"));
        assert!(!invoked_as_resource_script("ldirectord"));
        assert!(!invoked_as_resource_script(""));
    }
}
