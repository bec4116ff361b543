//! Every directive of the language: where it may appear and what its value looks like.
//!
//! Adding a directive: a row here, a field in the model, an arm in `read.rs` (global and/or
//! virtual), a line in `render.rs`, and its entry in `man/ldirectord.cf.5` (a test checks that
//! every row is documented there).

/// Where a directive may be written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Scope {
    /// Only in column 0, outside `virtual=` blocks.
    Global,
    /// Only inside a `virtual=` block (indented).
    Virtual,
    /// Both; the block's value wins for that virtual.
    Both,
}

impl Scope {
    pub fn allows_global(self) -> bool {
        matches!(self, Scope::Global | Scope::Both)
    }
    pub fn allows_virtual(self) -> bool {
        matches!(self, Scope::Virtual | Scope::Both)
    }
}

#[derive(Debug, Clone, Copy)]
pub struct DirectiveInfo {
    pub name: &'static str,
    pub scope: Scope,
    /// The value's shape, as written in messages (`yes|no`, `"path"`, …).
    pub syntax: &'static str,
    /// Accepted for compatibility but rejected with this reason (deprecated directives).
    pub rejected: Option<&'static str>,
}

const fn d(name: &'static str, scope: Scope, syntax: &'static str) -> DirectiveInfo {
    DirectiveInfo {
        name,
        scope,
        syntax,
        rejected: None,
    }
}

use Scope::{Both, Global, Virtual};

/// All directives, in the order of the man page.
pub const DIRECTIVES: &[DirectiveInfo] = &[
    d("virtual", Global, "ADDRESS:PORT | HOSTNAME:PORT | FWMARK"),
    d("virtual6", Global, "[IPV6]:PORT | HOSTNAME:PORT | FWMARK"),
    d("checktimeout", Both, "SECONDS"),
    d("negotiatetimeout", Both, "SECONDS"),
    d("checkinterval", Both, "SECONDS"),
    d("checkcount", Both, "N"),
    d("failurecount", Both, "N"),
    d("autoreload", Global, "yes|no"),
    d("callback", Global, "\"/path/to/program\""),
    d("fallback", Both, "ADDRESS[:PORT] [gate|masq|ipip]"),
    d("fallback6", Both, "[IPV6][:PORT] [gate|masq|ipip]"),
    d("fallbackcommand", Both, "\"/path/to/program\""),
    d(
        "logfile",
        Global,
        "\"/path/to/logfile\" | \"syslog-facility\"",
    ),
    d("emailalert", Both, "ADDRESS[, ADDRESS]..."),
    d("emailalertfrom", Global, "ADDRESS"),
    d("emailalertfreq", Both, "SECONDS"),
    d(
        "emailalertstatus",
        Both,
        "all|none|starting|running|stopping|reloading[, ...]",
    ),
    d("smtp", Both, "HOSTNAME"),
    d("execute", Global, "CONFIGURATION"),
    d("supervised", Global, "yes|no"),
    d("fork", Global, "yes|no"),
    d("quiescent", Both, "yes|no"),
    d("readdquiescent", Global, "yes|no"),
    d("cleanstop", Both, "yes|no"),
    d("maintenancedir", Global, "/path/to/directory"),
    d("metrics", Global, "no | PORT | ADDRESS:PORT | [IPV6]:PORT"),
    d("syncdaemon", Global, "master|backup|both|no"),
    d("syncinterface", Global, "INTERFACE"),
    d("syncid", Global, "0..255"),
    d(
        "real",
        Virtual,
        "ADDRESS[->ADDRESS][:PORT] gate|masq|ipip [WEIGHT] [\"REQUEST\", \"RECEIVE\"] [l:N] [u:N]",
    ),
    d(
        "real6",
        Virtual,
        "[IPV6][:PORT] gate|masq|ipip [WEIGHT] [\"REQUEST\", \"RECEIVE\"] [l:N] [u:N]",
    ),
    d(
        "checktype",
        Virtual,
        "connect|external|external-perl|negotiate|off|on|ping|N",
    ),
    d(
        "service",
        Virtual,
        "dns|ftp|http|https|http_proxy|imap|imaps|ldap|ldaps|mysql|nntp|none|oracle|pgsql|pop|pops|radius|simpletcp|sip|smtp|submission",
    ),
    d("checkcommand", Virtual, "\"/path/to/program\""),
    d("checkport", Virtual, "PORT"),
    d("request", Virtual, "\"REQUEST\""),
    d("receive", Virtual, "\"REGEX\""),
    d("httpmethod", Virtual, "GET|HEAD"),
    d("virtualhost", Virtual, "\"HOSTNAME\""),
    d("tlsverify", Virtual, "chain|full|none"),
    d("tlscafile", Virtual, "\"/path/to/ca.pem\""),
    d("checkdatapath", Virtual, "yes|no"),
    d("login", Virtual, "\"USERNAME\""),
    d("passwd", Virtual, "\"PASSWORD\""),
    d("database", Virtual, "\"DATABASE\""),
    d("secret", Virtual, "\"SECRET\""),
    d("scheduler", Virtual, "NAME"),
    d("persistent", Virtual, "SECONDS"),
    d("netmask", Virtual, "A.B.C.D | PREFIXLEN"),
    d("schedflags", Virtual, "FLAG[,FLAG...]"),
    d("protocol", Virtual, "tcp|udp|fwm"),
    d("ops", Virtual, "yes|no"),
    d("monitorfile", Virtual, "\"/path/to/file\""),
    d("servicename", Virtual, "TEXT"),
    d("comment", Virtual, "TEXT"),
    d("load", Virtual, "\"TEXT\""),
    DirectiveInfo {
        name: "connecttimeout",
        scope: Both,
        syntax: "SECONDS",
        rejected: Some("connecttimeout is deprecated in favour of negotiatetimeout"),
    },
    DirectiveInfo {
        name: "timeout",
        scope: Global,
        syntax: "SECONDS",
        rejected: Some("timeout is deprecated in favour of checktimeout and negotiatetimeout"),
    },
];

pub fn find(name: &str) -> Option<&'static DirectiveInfo> {
    DIRECTIVES.iter().find(|d| d.name == name)
}

/// The directive closest to a misspelt `name`, preferring those valid where it was written.
pub fn suggest(name: &str, in_virtual: bool) -> Option<&'static str> {
    let lower = name.to_ascii_lowercase();
    if let Some(d) = find(&lower) {
        return Some(d.name);
    }
    let usable = |d: &&DirectiveInfo| {
        d.rejected.is_none()
            && if in_virtual {
                d.scope.allows_virtual()
            } else {
                d.scope.allows_global()
            }
    };
    let best = |pool: &mut dyn Iterator<Item = &'static DirectiveInfo>| {
        nearest(&lower, pool.map(|d| d.name))
    };
    best(&mut DIRECTIVES.iter().filter(usable))
        .or_else(|| best(&mut DIRECTIVES.iter().filter(|d| d.rejected.is_none())))
}

/// Optimal-string-alignment distance (Levenshtein plus adjacent transpositions).
pub fn distance(a: &str, b: &str) -> usize {
    let a: Vec<char> = a.chars().collect();
    let b: Vec<char> = b.chars().collect();
    let width = b.len() + 1;
    let mut m = vec![0usize; (a.len() + 1) * width];
    for i in 0..=a.len() {
        m[i * width] = i;
    }
    for (j, cell) in m.iter_mut().enumerate().take(width) {
        *cell = j;
    }
    for i in 1..=a.len() {
        for j in 1..=b.len() {
            let cost = usize::from(a[i - 1] != b[j - 1]);
            let mut v = (m[(i - 1) * width + j] + 1)
                .min(m[i * width + j - 1] + 1)
                .min(m[(i - 1) * width + j - 1] + cost);
            if i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1] {
                v = v.min(m[(i - 2) * width + j - 2] + 1);
            }
            m[i * width + j] = v;
        }
    }
    m[a.len() * width + b.len()]
}

/// The nearest of `words` to `w`, if it is close enough to be a typo.
pub fn nearest<'a>(w: &str, words: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    words
        .into_iter()
        .map(|c| (distance(w, c), !is_subsequence(w, c), c))
        .filter(|(dist, _, c)| *dist <= (c.len().max(w.len()) / 3).max(1))
        .min_by_key(|(dist, not_sub, _)| (*dist, *not_sub))
        .map(|(_, _, c)| c)
}

/// Whether `short` can be read in `long` by skipping letters (`htp` in `http`): the better
/// guess when two candidates are equally close.
fn is_subsequence(short: &str, long: &str) -> bool {
    let mut it = long.chars();
    short.chars().all(|c| it.any(|l| l == c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn suggests_the_nearest_directive() {
        assert_eq!(suggest("chektimeout", false), Some("checktimeout"));
        assert_eq!(suggest("Checktimeout", false), Some("checktimeout"));
        assert_eq!(suggest("quiesent", true), Some("quiescent"));
        assert_eq!(suggest("schduler", true), Some("scheduler"));
        assert_eq!(suggest("reciev", true), Some("receive"));
        assert_eq!(suggest("xyzzy", true), None);
    }

    #[test]
    fn names_are_unique() {
        for (i, a) in DIRECTIVES.iter().enumerate() {
            assert!(
                DIRECTIVES[i + 1..].iter().all(|b| b.name != a.name),
                "{}",
                a.name
            );
        }
    }
}
