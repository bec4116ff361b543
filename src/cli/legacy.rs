//! The Perl synopsis: `ldirectord [-d|--debug] [--] [configfile] start|stop|…`, plus `-t`.
//!
//! Parsed by hand because the Perl grammar (Getopt::Long with bundling, no abbreviations and
//! `require_order`, then one or two positional words) does not fit clap:
//! * options stop at the first non-option word or at `--`; later words are positionals even
//!   when they start with `-`;
//! * with two or more positionals the first is the config and the second the command (more are
//!   ignored, as in Perl, with a warning); with one, it is the command and the config is
//!   `ldirectord.cf`;
//! * the config name is looked up as `/etc/ha.d/NAME`, `/etc/ha.d/conf/NAME`, then `NAME`.
//!
//! Usage errors print the synopsis on stdout and exit 255, like Perl's pod2usage.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::config::{self, ConfigError};

use super::exit;

/// The lifecycle commands the Perl ldirectord accepts.
pub const COMMANDS: &[&str] = &[
    "start",
    "stop",
    "restart",
    "try-restart",
    "reload",
    "force-reload",
    "status",
];

/// The config name used when only a command is given.
pub const DEFAULT_CONFIG: &str = "ldirectord.cf";

/// The version line of `-v` (the Perl one names its own version here).
pub const COMPAT_VERSION: &str = "Linux Director v1.186-ha";

/// What the command line asks for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Action {
    Help,
    Version,
    /// `-t [configfile]`.
    ConfigTest {
        config: String,
    },
    Lifecycle(Invocation),
}

/// A lifecycle command, with the names the Perl code derives from the arguments.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invocation {
    pub debug: bool,
    /// One of [`COMMANDS`].
    pub command: String,
    /// The config as given (before the `/etc/ha.d` lookup).
    pub config: String,
    /// Names the pid file `/var/run/ldirectord.<cfgname>.pid`: the basename of the config
    /// as given, extension kept; `ldirectord` when no config was given.
    pub cfgname: String,
    /// Extra positionals, ignored like Perl does.
    pub ignored: Vec<String>,
}

/// A usage error: the message for stderr.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Usage(pub String);

/// Parses the arguments after the program name.
pub fn parse(args: &[String]) -> Result<Action, Usage> {
    let mut debug = false;
    let mut help = false;
    let mut version = false;
    let mut test = false;
    let mut i = 0;
    while let Some(arg) = args.get(i) {
        if arg == "--" {
            i += 1;
            break;
        }
        if let Some(long) = arg.strip_prefix("--") {
            match long {
                "debug" => debug = true,
                "help" => help = true,
                "version" => version = true,
                "config-test" => test = true,
                _ => return Err(Usage(format!("Unknown option: {long}"))),
            }
        } else if let Some(bundle) = arg.strip_prefix('-').filter(|b| !b.is_empty()) {
            for c in bundle.chars() {
                match c {
                    'd' => debug = true,
                    'h' | '?' => help = true,
                    'v' => version = true,
                    't' => test = true,
                    _ => return Err(Usage(format!("Unknown option: {c}"))),
                }
            }
        } else {
            break;
        }
        i += 1;
    }
    let positionals = &args[i..];
    if help {
        return Ok(Action::Help);
    }
    if version {
        return Ok(Action::Version);
    }
    if test {
        return match positionals {
            [] => Ok(Action::ConfigTest {
                config: DEFAULT_CONFIG.into(),
            }),
            [config] => Ok(Action::ConfigTest {
                config: config.clone(),
            }),
            // `-t CONFIG COMMAND`: test the config the command would use.
            [config, command, ..] if COMMANDS.contains(&command.as_str()) => {
                Ok(Action::ConfigTest {
                    config: config.clone(),
                })
            }
            _ => Err(Usage("-t takes at most one config file".into())),
        };
    }
    let (config, cfgname, command, ignored) = match positionals {
        [] => return Err(Usage("no command given".into())),
        [command] => (
            DEFAULT_CONFIG.to_owned(),
            "ldirectord".to_owned(),
            command,
            Vec::new(),
        ),
        [config, command, rest @ ..] => {
            let cfgname = config.rsplit('/').next().unwrap_or(config).to_owned();
            (config.clone(), cfgname, command, rest.to_vec())
        }
    };
    if !COMMANDS.contains(&command.as_str()) {
        return Err(Usage(format!("unknown command: {command}")));
    }
    Ok(Action::Lifecycle(Invocation {
        debug,
        command: command.clone(),
        config,
        cfgname,
        ignored,
    }))
}

pub fn run(args: &[String]) -> ExitCode {
    // `status --json` (this project's addition) may stand anywhere; Perl has no such word.
    let json = args.iter().any(|a| a == "--json");
    let args: Vec<String> = args.iter().filter(|a| *a != "--json").cloned().collect();
    let args = args.as_slice();
    match parse(args) {
        Err(Usage(msg)) => {
            eprintln!("{msg}");
            print!("{}", usage_text());
            ExitCode::from(exit::USAGE)
        }
        Ok(Action::Help) => {
            print!("{}", help_text());
            ExitCode::from(exit::OK)
        }
        Ok(Action::Version) => {
            print!("{}", version_text());
            ExitCode::from(exit::OK)
        }
        Ok(Action::ConfigTest { config }) => config_test(&config),
        Ok(Action::Lifecycle(inv)) => {
            if !inv.ignored.is_empty() {
                eprintln!(
                    "ldirectord: extra arguments ignored: {}",
                    inv.ignored.join(" ")
                );
            }
            lifecycle(&inv, json)
        }
    }
}

/// start|stop|restart|try-restart|reload|force-reload|status: owned by the director issue.
fn lifecycle(inv: &Invocation, json: bool) -> ExitCode {
    if json && inv.command != "status" {
        eprintln!("--json is only for status");
        print!("{}", usage_text());
        return ExitCode::from(exit::USAGE);
    }
    super::lifecycle::run(&super::lifecycle::Lifecycle {
        debug: inv.debug,
        command: inv.command.clone(),
        config: inv.config.clone(),
        cfgname: inv.cfgname.clone(),
        json,
    })
}

/// The Perl lookup of a config name; the message and exit code of a missing file.
pub fn locate(config: &str) -> Result<PathBuf, ExitCode> {
    config::find_config_file(config).ok_or_else(|| {
        eprintln!("Config file {config} not found");
        ExitCode::from(exit::FAILURE)
    })
}

/// Prints a load failure (all its diagnostics) on stderr.
pub fn print_load_error(path: &Path, err: &ConfigError) {
    match err {
        ConfigError::Read { .. } => eprintln!("ldirectord: {err}"),
        ConfigError::Invalid(report) => {
            eprintln!("{report}");
            eprintln!(
                "ldirectord: configuration file {} test failed",
                path.display()
            );
        }
    }
}

/// `-t`: validate, print `… syntax is ok` or the errors; exit 0 or 1.
fn config_test(config: &str) -> ExitCode {
    let path = match locate(config) {
        Ok(p) => p,
        Err(code) => return code,
    };
    match config::load(&path) {
        Ok(loaded) => {
            for w in &loaded.warnings {
                eprintln!("{w}");
            }
            let c = &loaded.config;
            let reals: usize = c.virtuals.iter().map(|v| v.reals.len()).sum();
            let w = loaded.warnings.len();
            println!(
                "ldirectord: the configuration file {} syntax is ok ({} virtual service{}, {reals} real server{}, {w} warning{})",
                path.display(),
                c.virtuals.len(),
                plural(c.virtuals.len()),
                plural(reals),
                plural(w),
            );
            ExitCode::from(exit::OK)
        }
        Err(e) => {
            print_load_error(&path, &e);
            ExitCode::from(exit::FAILURE)
        }
    }
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

pub fn usage_text() -> String {
    "\
Usage:
    ldirectord [-d|--debug] [--] [configfile] start | stop | restart | try-restart | reload | force-reload | status [--json]
    ldirectord -t|--config-test [configfile]
    ldirectord dump-config [configfile] [--json]
    ldirectord [-h|-?|--help|-v|--version]

Options:
    -d, --debug         stay in the foreground and log verbosely to stderr
    -t, --config-test   check the configuration file and exit (0 = ok, 1 = errors)
    -h, -?, --help      print the manual summary and exit
    -v, --version       print the version and exit
"
    .to_owned()
}

pub fn help_text() -> String {
    format!(
        "\
ldirectord - Linux Director Daemon

Monitors the real servers of Linux Virtual Server (IPVS) services and keeps the kernel's
table in step with their health: a dead real server is removed (or quiesced to weight 0),
and a fallback server takes the traffic when all of them are down.

{usage}
Configuration file:
    A bare name is looked up as /etc/ha.d/NAME, then /etc/ha.d/conf/NAME, then as given.
    Without one, the name is {DEFAULT_CONFIG} (so /etc/ha.d/{DEFAULT_CONFIG}).
    The language is described in ldirectord.cf(5).

Commands:
    start           start the daemon for the configuration (no-op if it runs); returns
                    once the table is programmed, or fails with the daemon's reason
    stop            stop it (SIGTERM) and wait for it to exit; the kernel table is
                    cleaned per `cleanstop`
    restart         validate the file, stop, wait for it to exit, start
    try-restart     restart if it runs
    reload          re-read the configuration and wait for the outcome; an invalid file
                    changes nothing and exits 2 with the located error
    force-reload    the same as reload
    status          exit 0 if running, 3 if stopped, 1 for a stale pid file; shows
                    every virtual and real server (--json: as JSON)
    dump-config     print the configuration with every setting in effect (--json: as JSON)

Commands the Perl ldirectord does not have (details: ldirectord(8), or COMMAND --help):
    ldirectord list [-n] [...] [--json]      the IPVS table as `ipvsadm -L` prints it
    ldirectord save [-n] [--json]            the IPVS table as `ipvsadm -S` prints it
    ldirectord check [configfile] [--json]   run the configured health checks once
    ldirectord plan [configfile]             what a start would change in the table
    ldirectord doctor [configfile] [--json]  what this director lacks for the configuration
    ldirectord sync [configfile] [--stop]    the IPVS connection-sync daemons
    ldirectord realserver start|stop|status VIP[,VIP...]
                                             prepare an LVS-DR real server
    ldirectord ocf ACTION                    the OCF resource agent (Pacemaker)

Exit codes:
    0 ok; 1 failure or invalid configuration (-t); 2 configuration error at start;
    3 not running (status); 255 usage error.

Files:
    /etc/ha.d/ldirectord.cf, /var/log/ldirectord.log, /var/run/ldirectord.NAME.pid

See also: ldirectord.cf(5), ldirectord-realserver(8), ldirectord-doctor(8), ipvsadm(8)
",
        usage = usage_text()
    )
}

pub fn version_text() -> String {
    format!(
        "ldirectord {} (Rust), compatible with {COMPAT_VERSION}\n\
         \n\
         ldirectord comes with ABSOLUTELY NO WARRANTY.\n\
         This is free software, and you are welcome to redistribute it\n\
         under certain conditions. See the GNU General Public Licence for details.\n",
        env!("CARGO_PKG_VERSION")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(args: &[&str]) -> Result<Action, Usage> {
        parse(&args.iter().map(|s| s.to_string()).collect::<Vec<_>>())
    }

    fn lifecycle(config: &str, cfgname: &str, command: &str) -> Action {
        Action::Lifecycle(Invocation {
            debug: false,
            command: command.into(),
            config: config.into(),
            cfgname: cfgname.into(),
            ignored: vec![],
        })
    }

    #[test]
    fn one_word_is_the_command_with_the_default_config() {
        assert_eq!(
            p(&["start"]),
            Ok(lifecycle("ldirectord.cf", "ldirectord", "start"))
        );
    }

    #[test]
    fn two_words_are_config_and_command() {
        assert_eq!(
            p(&["/etc/ha.d/web.cf", "status"]),
            Ok(lifecycle("/etc/ha.d/web.cf", "web.cf", "status"))
        );
    }

    #[test]
    fn options_bundle_and_stop_at_the_first_word() {
        let Ok(Action::Lifecycle(inv)) = p(&["-d", "--", "-weird.cf", "reload"]) else {
            panic!()
        };
        assert!(inv.debug);
        assert_eq!(inv.config, "-weird.cf");
        assert_eq!(p(&["-dv"]), Ok(Action::Version));
        assert_eq!(p(&["-vh"]), Ok(Action::Help));
        assert_eq!(p(&["-?"]), Ok(Action::Help));
        // require_order: options after the first word are positionals.
        assert!(matches!(p(&["x.cf", "-d"]), Err(Usage(_))));
    }

    #[test]
    fn usage_errors() {
        assert!(p(&[]).is_err());
        assert!(p(&["bogus"]).is_err());
        assert!(p(&["-x", "start"]).is_err());
        assert!(p(&["--debu", "start"]).is_err(), "no abbreviations");
    }

    #[test]
    fn config_test_forms() {
        let t = |c: &str| Ok(Action::ConfigTest { config: c.into() });
        assert_eq!(p(&["-t"]), t("ldirectord.cf"));
        assert_eq!(p(&["--config-test", "x.cf"]), t("x.cf"));
        assert_eq!(p(&["-dt", "x.cf", "start"]), t("x.cf"));
        assert!(p(&["-t", "a", "b"]).is_err());
    }

    #[test]
    fn extra_words_are_ignored_like_perl() {
        let Ok(Action::Lifecycle(inv)) = p(&["x.cf", "stop", "now"]) else {
            panic!()
        };
        assert_eq!(inv.ignored, ["now"]);
    }
}
