//! Configuration → [`CheckSpec`]: the Perl `ld_setup` rules that decide what a check of one
//! real server in one virtual service sends. A pure function, so every rule is unit-tested.
//!
//! * Port: `checkport`, else the real's port, else the service's well-known port
//!   (`ld_checkport`).
//! * HTTP URL: the scheme is the service (`http_proxy` → http). A per-real request/receive
//!   pair wins: a request containing `<scheme>://` is used verbatim, anything else becomes
//!   `scheme://real:port/request`. Without a pair the virtual's request is appended to
//!   `scheme://real:port/`, even when it is itself an absolute URL (Perl does that, and so
//!   does this). For http_proxy the virtual's request is the URL fetched through the proxy.
//! * Host: the virtualhost, else the real's address (never the port), as LWP is told.
//! * Timeouts, checkcount, login defaults (ftp, sip): already effective in the model.
//! * Transport: the virtual's protocol; a fwmark checks over TCP, except dns, which Perl
//!   only switches to TCP for `protocol=tcp`.

use std::net::IpAddr;
use std::path::PathBuf;

use crate::check::spec::{
    self as spec, CheckKind, CheckSpec, Credentials, DnsSpec, ExternalSpec, FtpSpec, HttpSpec,
    LdapSpec, Pattern, PatternError, RadiusSpec, SimpleTcpSpec, SipSpec, SqlSpec, Target, Timeouts,
    TlsOptions,
};
use crate::config::{self, CheckType, Endpoint, Real, Service, Virtual};

/// A check that cannot be built from the configuration.
#[derive(Debug, thiserror::Error)]
pub enum CheckSpecError {
    #[error(transparent)]
    Pattern(#[from] PatternError),
    #[error("{0}")]
    Unsupported(String),
}

/// An address as the Perl code writes it in URLs, Host headers and external arguments.
fn bracketed(addr: IpAddr) -> String {
    match addr {
        IpAddr::V4(a) => a.to_string(),
        IpAddr::V6(a) => format!("[{a}]"),
    }
}

fn pattern(receive: Option<&str>) -> Result<Option<Pattern>, PatternError> {
    match receive {
        Some(r) if !r.is_empty() => Pattern::new(r).map(Some),
        _ => Ok(None),
    }
}

fn strip_slash(request: &str) -> &str {
    request.strip_prefix('/').unwrap_or(request)
}

fn http_url(v: &Virtual, r: &Real, port: u16) -> String {
    let svc = v.check.service;
    let scheme = if svc == Service::Https {
        "https"
    } else {
        "http"
    };
    let server = bracketed(r.addr);
    match &r.check_override {
        Some(o) => {
            let uri = strip_slash(&o.request);
            if o.request.contains(&format!("{scheme}://")) {
                uri.to_owned()
            } else {
                format!("{scheme}://{server}:{port}/{uri}")
            }
        }
        None => {
            let uri = strip_slash(&v.check.request);
            if svc == Service::HttpProxy {
                uri.to_owned()
            } else {
                format!("{scheme}://{server}:{port}/{uri}")
            }
        }
    }
}

fn credentials(c: &config::Check) -> Credentials {
    Credentials {
        login: c.login.clone(),
        passwd: c.passwd.clone(),
    }
}

fn login_if_set(c: &config::Check) -> Option<Credentials> {
    (!c.login.is_empty()).then(|| credentials(c))
}

fn service(v: &Virtual, r: &Real, port: u16) -> Result<spec::Service, CheckSpecError> {
    let c = &v.check;
    let request = v.request_for(r);
    let receive = pattern(v.receive_for(r))?;
    Ok(match c.service {
        Service::None => spec::Service::None,
        Service::Http | Service::Https | Service::HttpProxy => spec::Service::Http(HttpSpec {
            url: http_url(v, r, port),
            method: match c.httpmethod {
                config::HttpMethod::Get => spec::HttpMethod::Get,
                config::HttpMethod::Head => spec::HttpMethod::Head,
            },
            host_header: (c.service != Service::HttpProxy)
                .then(|| c.virtualhost.clone().unwrap_or_else(|| bracketed(r.addr))),
            proxy: c.service == Service::HttpProxy,
            receive,
        }),
        Service::Smtp | Service::Submission => spec::Service::Smtp,
        Service::Pop | Service::Pops => spec::Service::Pop {
            tls: c.service == Service::Pops,
            credentials: login_if_set(c),
        },
        Service::Imap | Service::Imaps => spec::Service::Imap {
            tls: c.service == Service::Imaps,
            credentials: login_if_set(c),
        },
        Service::Nntp => spec::Service::Nntp,
        Service::Ftp => spec::Service::Ftp(FtpSpec {
            credentials: credentials(c),
            path: request.to_owned(),
            receive,
        }),
        Service::Ldap | Service::Ldaps => spec::Service::Ldap(LdapSpec {
            tls: c.service == Service::Ldaps,
            credentials: credentials(c),
            // `substr($$r{request}, 1)`: the first character, whatever it is.
            base: request.chars().skip(1).collect(),
            receive,
        }),
        Service::Dns => spec::Service::Dns(DnsSpec {
            query: strip_slash(request).to_owned(),
            receive,
        }),
        Service::Radius => spec::Service::Radius(RadiusSpec {
            credentials: credentials(c),
            secret: c.secret.clone(),
        }),
        Service::Sip => spec::Service::Sip(SipSpec {
            login: c.login.clone(),
        }),
        Service::Mysql | Service::Pgsql => {
            let sql = SqlSpec {
                credentials: credentials(c),
                database: c.database.clone(),
                query: strip_slash(request).to_owned(),
            };
            if c.service == Service::Mysql {
                spec::Service::Mysql(sql)
            } else {
                spec::Service::Pgsql(sql)
            }
        }
        Service::Simpletcp => spec::Service::SimpleTcp(SimpleTcpSpec {
            send: request
                .chars()
                .skip(1)
                .collect::<String>()
                .replace("\\n", "\n")
                .into_bytes(),
            receive,
        }),
        Service::Oracle => {
            return Err(CheckSpecError::Unsupported(
                "service=oracle is not supported (no pure-Rust Oracle client)".into(),
            ));
        }
    })
}

fn external(v: &Virtual, r: &Real) -> ExternalSpec {
    let (vserver, vport) = match v.endpoint {
        Endpoint::Addr { addr, .. } => (bracketed(addr.ip()), addr.port()),
        Endpoint::Fwmark { mark, .. } => (mark.to_string(), 0),
    };
    ExternalSpec {
        program: PathBuf::from(&v.check.checkcommand),
        args: [
            vserver,
            vport.to_string(),
            bracketed(r.addr),
            r.port.to_string(),
        ],
    }
}

fn protocol(v: &Virtual) -> spec::Protocol {
    match v.endpoint {
        Endpoint::Addr {
            protocol: config::Protocol::Udp,
            ..
        } => spec::Protocol::Udp,
        Endpoint::Addr { .. } => spec::Protocol::Tcp,
        Endpoint::Fwmark { .. } if v.check.service == Service::Dns => spec::Protocol::Udp,
        Endpoint::Fwmark { .. } => spec::Protocol::Tcp,
    }
}

/// The check of real `r` in virtual `v`.
pub fn check_spec(v: &Virtual, r: &Real) -> Result<CheckSpec, CheckSpecError> {
    let c = &v.check;
    let port = v.check_port(r).unwrap_or(0);
    let kind = match c.checktype {
        CheckType::Connect => CheckKind::Connect,
        CheckType::Ping => CheckKind::Ping,
        CheckType::On => CheckKind::On,
        CheckType::Off => CheckKind::Off,
        CheckType::External => CheckKind::External(external(v, r)),
        CheckType::ExternalPerl => CheckKind::ExternalPerl(external(v, r)),
        CheckType::Negotiate => CheckKind::Negotiate(service(v, r, port)?),
        CheckType::Combined(n) => CheckKind::Combined {
            connects: n,
            service: service(v, r, port)?,
        },
    };
    let server_name = c
        .virtualhost
        .clone()
        .filter(|h| h.parse::<IpAddr>().is_err() && !h.is_empty());
    Ok(CheckSpec {
        kind,
        target: Target {
            addr: r.addr,
            port,
            protocol: protocol(v),
            datapath: None,
        },
        timeouts: Timeouts {
            check: c.checktimeout,
            negotiate: c.negotiatetimeout,
        },
        check_count: c.checkcount,
        tls: TlsOptions {
            verify: match c.tlsverify {
                config::TlsVerify::Chain => spec::TlsVerify::Chain,
                config::TlsVerify::Full => spec::TlsVerify::Full,
                config::TlsVerify::None => spec::TlsVerify::None,
            },
            ca_file: c.tlscafile.clone(),
            server_name,
        },
    })
}

/// Every (virtual index, real index, check) of a configuration, in file order.
pub fn check_specs(
    config: &config::Config,
) -> Vec<(usize, usize, Result<CheckSpec, CheckSpecError>)> {
    config
        .virtuals
        .iter()
        .enumerate()
        .flat_map(|(vi, v)| {
            v.reals
                .iter()
                .enumerate()
                .map(move |(ri, r)| (vi, ri, check_spec(v, r)))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::check::spec::{HttpMethod, Protocol as P, Service as S};
    use crate::config::{FakeHost, parse_str};
    use std::path::Path;
    use std::time::Duration;

    fn load(text: &str) -> config::Config {
        parse_str(text, Path::new("/etc/ha.d/t.cf"), &FakeHost::default())
            .unwrap()
            .config
    }

    fn first(text: &str) -> CheckSpec {
        let c = load(text);
        check_spec(&c.virtuals[0], &c.virtuals[0].reals[0]).unwrap()
    }

    fn http_of(s: &CheckSpec) -> &HttpSpec {
        match &s.kind {
            CheckKind::Negotiate(S::Http(h))
            | CheckKind::Combined {
                service: S::Http(h),
                ..
            } => h,
            k => panic!("not http: {k:?}"),
        }
    }

    #[test]
    fn http_url_host_and_port() {
        let s = first(
            "virtual=192.0.2.1:80\n    real=192.0.2.10:8080 masq\n    request=\"index.html\"\n    receive=\"Test Page\"\n    virtualhost=www.example.com\n",
        );
        let h = http_of(&s);
        assert_eq!(h.url, "http://192.0.2.10:8080/index.html");
        assert_eq!(h.host_header.as_deref(), Some("www.example.com"));
        assert_eq!(h.receive.as_ref().unwrap().as_str(), "Test Page");
        assert_eq!(h.method, HttpMethod::Get);
        assert_eq!(s.target.port, 8080);
        assert_eq!(s.target.protocol, P::Tcp);
        assert_eq!(s.tls.server_name.as_deref(), Some("www.example.com"));
        // No virtualhost: Host is the real's address; a real without port uses the
        // service's; checkport wins over both.
        let s = first("virtual=192.0.2.1:443\n    real=192.0.2.10 gate\n");
        assert_eq!(http_of(&s).url, "https://192.0.2.10:443/");
        assert_eq!(http_of(&s).host_header.as_deref(), Some("192.0.2.10"));
        let s = first("virtual=192.0.2.1:80\n    real=192.0.2.10:80 gate\n    checkport=8081\n");
        assert_eq!(http_of(&s).url, "http://192.0.2.10:8081/");
        assert_eq!(s.target.port, 8081);
    }

    #[test]
    fn per_real_request_and_absolute_urls() {
        let c = load(
            "virtual=192.0.2.1:80\n    real=192.0.2.10:80 masq 1 \"/health\", \"OK\"\n    real=192.0.2.11:80 masq 1 \"http://other.example/x\", \"Y\"\n    real=192.0.2.12:80 masq\n    request=\"http://vhost.example/p\"\n    receive=\"V\"\n",
        );
        let v = &c.virtuals[0];
        let specs: Vec<_> = v.reals.iter().map(|r| check_spec(v, r).unwrap()).collect();
        assert_eq!(http_of(&specs[0]).url, "http://192.0.2.10:80/health");
        assert_eq!(http_of(&specs[0]).receive.as_ref().unwrap().as_str(), "OK");
        assert_eq!(http_of(&specs[1]).url, "http://other.example/x");
        // A virtual-level absolute URL is appended to the path, as Perl does.
        assert_eq!(
            http_of(&specs[2]).url,
            "http://192.0.2.12:80/http://vhost.example/p"
        );
        assert_eq!(http_of(&specs[2]).receive.as_ref().unwrap().as_str(), "V");
    }

    #[test]
    fn http_proxy_and_ipv6() {
        let s = first(
            "virtual=192.0.2.1:3128\n    real=192.0.2.10:3128 gate\n    service=http_proxy\n    request=\"http://www.example.com/\"\n",
        );
        let h = http_of(&s);
        assert!(h.proxy);
        assert_eq!(h.url, "http://www.example.com/");
        assert_eq!(h.host_header, None);
        let s = first("virtual6=[2001:db8::1]:80\n    real6=[2001:db8::10]:80 gate\n");
        assert_eq!(http_of(&s).url, "http://[2001:db8::10]:80/");
        assert_eq!(http_of(&s).host_header.as_deref(), Some("[2001:db8::10]"));
    }

    #[test]
    fn timeouts_checkcount_and_checktypes() {
        let s = first(
            "checktimeout=3\nvirtual=192.0.2.1:80\n    real=192.0.2.10:80 gate\n    checktype=ping\n    checkcount=4\n",
        );
        assert_eq!(s.kind, CheckKind::Ping);
        assert_eq!(s.check_count, 4);
        assert_eq!(s.timeouts.check, Duration::from_secs(3));
        // negotiatetimeout defaults to checktimeout when only that is set (ld_setup).
        assert_eq!(s.timeouts.negotiate, Duration::from_secs(3));
        let s = first("virtual=192.0.2.1:80\n    real=192.0.2.10:80 gate\n    checktype=3\n");
        assert!(matches!(s.kind, CheckKind::Combined { connects: 3, .. }));
        let s = first("virtual=192.0.2.1:9999\n    real=192.0.2.10:9999 gate\n");
        assert_eq!(s.kind, CheckKind::Negotiate(S::None));
        let s = first("virtual=192.0.2.1:80\n    real=192.0.2.10:80 gate\n    checktype=off\n");
        assert_eq!(s.kind, CheckKind::Off);
    }

    #[test]
    fn external_arguments() {
        let s = first(
            "virtual=192.0.2.1:80\n    real=192.0.2.10 gate\n    checktype=external\n    checkcommand=\"/usr/local/bin/check\"\n",
        );
        let CheckKind::External(e) = &s.kind else {
            panic!()
        };
        assert_eq!(e.program, PathBuf::from("/usr/local/bin/check"));
        assert_eq!(
            e.args,
            ["192.0.2.1", "80", "192.0.2.10", "0"].map(String::from)
        );
        let s = first(
            "virtual=7\n    real=192.0.2.10:80 gate\n    checktype=external-perl\n    checkcommand=/etc/check.pl\n",
        );
        let CheckKind::ExternalPerl(e) = &s.kind else {
            panic!()
        };
        assert_eq!(e.args, ["7", "0", "192.0.2.10", "80"].map(String::from));
        let s = first(
            "virtual6=[2001:db8::1]:80\n    real6=[2001:db8::10]:80 gate\n    checktype=external\n",
        );
        let CheckKind::External(e) = &s.kind else {
            panic!()
        };
        assert_eq!(e.args[0], "[2001:db8::1]");
        assert_eq!(e.args[2], "[2001:db8::10]");
    }

    #[test]
    fn services_and_their_fields() {
        let s = first(
            "virtual=192.0.2.1:21\n    real=192.0.2.10:21 gate\n    request=\"welcome.msg\"\n    receive=\"hi\"\n",
        );
        let CheckKind::Negotiate(S::Ftp(f)) = &s.kind else {
            panic!("{s:?}")
        };
        assert_eq!(f.path, "/welcome.msg");
        assert_eq!(f.credentials.login, "anonymous");
        assert!(f.credentials.passwd.starts_with("ldirectord@"));

        let s = first(
            "virtual=192.0.2.1:53\n    real=192.0.2.10:53 gate\n    request=\"www.example.com\"\n    receive=\"192.0.2.5\"\n",
        );
        assert_eq!(s.target.protocol, P::Udp);
        let CheckKind::Negotiate(S::Dns(d)) = &s.kind else {
            panic!("{s:?}")
        };
        assert_eq!(d.query, "www.example.com");

        let s = first(
            "virtual=192.0.2.1:389\n    real=192.0.2.10:389 gate\n    request=\"dc=example,dc=com\"\n    login=\"cn=admin\"\n    passwd=\"pw\"\n",
        );
        let CheckKind::Negotiate(S::Ldap(l)) = &s.kind else {
            panic!("{s:?}")
        };
        assert_eq!(l.base, "dc=example,dc=com");
        assert!(!l.tls);

        let s = first(
            "virtual=192.0.2.1:7000\n    real=192.0.2.10:7000 gate\n    service=simpletcp\n    request=\"STATUS\\n\"\n    receive=\"OK\"\n",
        );
        let CheckKind::Negotiate(S::SimpleTcp(t)) = &s.kind else {
            panic!("{s:?}")
        };
        assert_eq!(t.send, b"STATUS\n");

        let s = first(
            "virtual=192.0.2.1:3306\n    real=192.0.2.10:3306 gate\n    login=\"u\"\n    passwd=\"p\"\n    database=\"d\"\n    request=\"SELECT 1\"\n",
        );
        let CheckKind::Negotiate(S::Mysql(q)) = &s.kind else {
            panic!("{s:?}")
        };
        assert_eq!((q.query.as_str(), q.database.as_str()), ("SELECT 1", "d"));

        let s = first("virtual=192.0.2.1:5060\n    real=192.0.2.10:5060 gate\n    protocol=udp\n");
        assert_eq!(s.target.protocol, P::Udp);
        let CheckKind::Negotiate(S::Sip(sip)) = &s.kind else {
            panic!("{s:?}")
        };
        assert!(sip.login.starts_with("ldirectord@"));

        let s = first("virtual=192.0.2.1:995\n    real=192.0.2.10:995 gate\n    tlsverify=none\n");
        assert!(matches!(
            s.kind,
            CheckKind::Negotiate(S::Pop {
                tls: true,
                credentials: None
            })
        ));
        assert_eq!(s.tls.verify, spec::TlsVerify::None);
    }

    #[test]
    fn identical_reals_in_two_virtuals_share_one_spec() {
        let c = load(
            "virtual=192.0.2.1:80\n    real=192.0.2.10:80 gate 1\nvirtual=192.0.2.2:80\n    real=192.0.2.10:80 masq 5\n",
        );
        let specs = check_specs(&c);
        let a = specs[0].2.as_ref().unwrap();
        let b = specs[1].2.as_ref().unwrap();
        assert_eq!(a, b, "weight and forwarding do not change the check");
    }

    #[test]
    fn unsupported_receive_patterns_are_reported() {
        let c =
            load("virtual=192.0.2.1:80\n    real=192.0.2.10:80 gate\n    receive=\"(?<=x)y\"\n");
        let err = check_spec(&c.virtuals[0], &c.virtuals[0].reals[0]).unwrap_err();
        assert!(
            err.to_string()
                .contains("not a supported regular expression"),
            "{err}"
        );
    }
}
