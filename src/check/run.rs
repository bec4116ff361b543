//! Runs one check: picks the check function and its deadline (as `_check_real` does) and
//! turns the result into an [`Outcome`].

use std::time::Duration;

use tokio::time::{Instant, timeout_at};

use super::net::Deadline;
use super::outcome::{CheckResult, Failure, FailureKind, Outcome, Verdict};
use super::spec::{CheckKind, CheckSpec, Protocol, Service, Step};
use super::{
    connect, dns, external, ftp, http, imap, ldap, nntp, ping, pop, radius, simpletcp, sip, smtp,
    sql,
};

/// What a check carries from one run to the next: the combined check's connect count.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct CheckState {
    /// Connects since the last successful negotiate; `None` means "negotiate next" (Perl
    /// stores 999999 for that).
    connects_done: Option<u32>,
}

/// A margin for the belt-and-braces outer timeout, so that each check's own (more
/// specific) deadline failure wins.
const OUTER_MARGIN: Duration = Duration::from_millis(20);

async fn bounded(
    step_deadline: Duration,
    f: impl AsyncFnOnce(Deadline) -> CheckResult,
) -> CheckResult {
    let deadline = Deadline::after(step_deadline);
    match timeout_at(deadline.at() + OUTER_MARGIN, f(deadline)).await {
        Ok(r) => r,
        Err(_) => Err(Failure::new(
            FailureKind::Deadline,
            format!("no verdict within {step_deadline:?}"),
        )),
    }
}

/// Each service future is boxed: they differ a lot in size (hyper and rustls state is
/// large), and an inline enum of all of them would make every check as big as the biggest.
async fn negotiate(spec: &CheckSpec, service: &Service, deadline: Deadline) -> CheckResult {
    let target = &spec.target;
    let tls = &spec.tls;
    match service {
        Service::None => Ok(()),
        Service::Http(h) => Box::pin(http::check(h, target, tls, deadline)).await,
        Service::Smtp => Box::pin(smtp::check(target, deadline)).await,
        Service::Pop {
            tls: secure,
            credentials,
        } => {
            let tls = secure.then_some(tls);
            Box::pin(pop::check(target, tls, credentials.as_ref(), deadline)).await
        }
        Service::Imap {
            tls: secure,
            credentials,
        } => {
            let tls = secure.then_some(tls);
            Box::pin(imap::check(target, tls, credentials.as_ref(), deadline)).await
        }
        Service::Nntp => Box::pin(nntp::check(target, deadline)).await,
        Service::Ftp(f) => Box::pin(ftp::check(f, target, deadline)).await,
        Service::Ldap(l) => Box::pin(ldap::check(l, target, l.tls.then_some(tls), deadline)).await,
        Service::Dns(d) => Box::pin(dns::check(d, target, deadline)).await,
        Service::Radius(r) => Box::pin(radius::check(r, target, deadline)).await,
        Service::Sip(s) => Box::pin(sip::check(s, target, deadline)).await,
        Service::Mysql(s) => Box::pin(sql::check_mysql(s, target, deadline)).await,
        Service::Pgsql(s) => Box::pin(sql::check_pgsql(s, target, deadline)).await,
        Service::SimpleTcp(s) => Box::pin(simpletcp::check(s, target, deadline)).await,
    }
}

async fn run_step(spec: &CheckSpec, step: Step) -> CheckResult {
    let limit = spec.deadline(step);
    let target = &spec.target;
    if step == Step::CombinedConnect {
        return bounded(limit, async |d| connect::check(target, d).await).await;
    }
    match &spec.kind {
        CheckKind::On | CheckKind::Off => Ok(()),
        CheckKind::Connect if target.protocol == Protocol::Udp => {
            bounded(limit, async |d| {
                ping::check(target.addr, spec.check_count, spec.timeouts.check, d).await
            })
            .await
        }
        CheckKind::Connect => bounded(limit, async |d| connect::check(target, d).await).await,
        CheckKind::Ping => {
            bounded(limit, async |d| {
                ping::check(target.addr, spec.check_count, spec.timeouts.check, d).await
            })
            .await
        }
        CheckKind::External(e) => bounded(limit, async |d| external::check(e, d).await).await,
        CheckKind::ExternalPerl(e) => {
            bounded(limit, async |d| external::check_perl(e, d).await).await
        }
        CheckKind::Negotiate(s) | CheckKind::Combined { service: s, .. } => {
            bounded(limit, async |d| negotiate(spec, s, d).await).await
        }
    }
}

/// Runs the check once, updating the combined-check state.
pub async fn run_once(spec: &CheckSpec, state: &mut CheckState) -> Outcome {
    let started = Instant::now();
    let verdict = match &spec.kind {
        CheckKind::Off => Verdict::Skipped,
        CheckKind::Combined { connects, .. } => {
            let negotiate_now = match state.connects_done {
                None => true,
                Some(done) => done >= *connects,
            };
            if negotiate_now {
                let r = run_step(spec, Step::Main).await;
                if r.is_ok() {
                    state.connects_done = Some(0);
                }
                into_verdict(r)
            } else {
                let r = run_step(spec, Step::CombinedConnect).await;
                state.connects_done = match r {
                    Ok(()) => state.connects_done.map(|n| n + 1),
                    Err(_) => None,
                };
                into_verdict(r)
            }
        }
        _ => into_verdict(run_step(spec, Step::Main).await),
    };
    Outcome {
        verdict,
        latency: started.elapsed(),
    }
}

/// Runs the check once with fresh state (the operator's one-shot `check` command).
pub async fn run(spec: &CheckSpec) -> Outcome {
    run_once(spec, &mut CheckState::default()).await
}

fn into_verdict(r: CheckResult) -> Verdict {
    match r {
        Ok(()) => Verdict::Up,
        Err(f) => Verdict::Down(f),
    }
}
