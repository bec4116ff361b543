//! Second level of reading: each directive's value is parsed with its grammar rule, checked,
//! resolved, and the Perl defaults (`set_defaults`, `read_config`, `ld_setup`) are applied.
//!
//! Every problem becomes a located [`Diagnostic`]; reading goes on after an error so that one
//! run reports all of them.

use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use pest::Parser;
use pest::iterators::{Pair, Pairs};

use super::directives;
use super::error::{Diagnostic, MAX_ERRORS, Report, Severity};
use super::fast;
use super::model::*;
use super::resolve::Host;
use super::syntax::{self, CfParser, Entry, Item, LineIndex, Rule, Span};

/// Largest `real=A->B` range (a /16).
pub const MAX_RANGE: u32 = 65_536;
/// Most real servers one file may expand to.
pub const MAX_REALS: usize = 1 << 18;

/// Schedulers of current kernels; others only draw a warning (the kernel decides).
const KNOWN_SCHEDULERS: &[&str] = &[
    "rr", "wrr", "lc", "wlc", "lblc", "lblcr", "dh", "sh", "sed", "nq", "fo", "ovf", "mh", "twos",
];
/// ipvsadm `-b` flag names.
const KNOWN_SCHEDFLAGS: &[&str] = &[
    "flag-1",
    "flag-2",
    "flag-3",
    "sh-fallback",
    "sh-port",
    "mh-fallback",
    "mh-port",
];
const SYSLOG_FACILITIES: &[&str] = &[
    "auth", "authpriv", "cron", "daemon", "ftp", "kern", "lpr", "mail", "news", "syslog", "user",
    "uucp", "local0", "local1", "local2", "local3", "local4", "local5", "local6", "local7",
];
/// ipvsadm's bound for `-p`.
const MAX_PERSISTENT: u32 = 86_400 * 31;

/// Reads `src` (the contents of `file`) into a model.
pub(crate) fn read(src: &str, file: Arc<Path>, host: &dyn Host) -> Result<Read, Box<Report>> {
    let mut r = Reader {
        src,
        file: file.clone(),
        index: LineIndex::new(src),
        host,
        errors: Vec::new(),
        errors_not_shown: 0,
        warnings: Vec::new(),
        total_reals: 0,
    };
    let config = r.run();
    if r.errors.is_empty()
        && r.errors_not_shown == 0
        && let Some(config) = config
    {
        return Ok(Read {
            config,
            warnings: r.warnings,
        });
    }
    Err(Box::new(Report {
        file,
        errors: r.errors,
        warnings: r.warnings,
        errors_not_shown: r.errors_not_shown,
    }))
}

pub(crate) struct Read {
    pub config: Config,
    pub warnings: Vec<Diagnostic>,
}

/// A value as written, with where it was written.
#[derive(Debug, Clone)]
struct Set<T> {
    value: T,
    span: Span,
}

/// A host as written: an address literal or a name to resolve.
#[derive(Debug, Clone)]
enum HostSpec {
    V4(Ipv4Addr),
    V6(Ipv6Addr),
    Name(String),
}

#[derive(Debug, Clone)]
enum PortSpec {
    Number(u16),
    Name(String),
}

#[derive(Debug, Clone)]
struct FallbackSpec {
    host: HostSpec,
    port: Option<PortSpec>,
    forwarding: Forwarding,
}

/// Directives allowed both globally and in a block.
#[derive(Debug, Default)]
struct Shared {
    checktimeout: Option<Set<u32>>,
    negotiatetimeout: Option<Set<u32>>,
    checkinterval: Option<Set<u32>>,
    checkcount: Option<Set<u32>>,
    failurecount: Option<Set<u32>>,
    fallback: Option<Set<FallbackSpec>>,
    fallback6: Option<Set<FallbackSpec>>,
    fallbackcommand: Option<Set<String>>,
    quiescent: Option<Set<bool>>,
    emailalert: Option<Set<Vec<String>>>,
    emailalertfreq: Option<Set<u32>>,
    emailalertstatus: Option<Set<AlertStatuses>>,
    cleanstop: Option<Set<bool>>,
    smtp: Option<Set<String>>,
}

#[derive(Debug, Default)]
struct GlobalSpec {
    shared: Shared,
    autoreload: Option<Set<bool>>,
    callback: Option<Set<String>>,
    logfile: Option<Set<LogTarget>>,
    execute: Vec<String>,
    fork: Option<Set<bool>>,
    supervised: Option<Set<bool>>,
    readdquiescent: Option<Set<bool>>,
    maintenancedir: Option<Set<PathBuf>>,
    emailalertfrom: Option<Set<String>>,
    metrics: Option<Set<Option<SocketAddr>>>,
    syncdaemon: Option<Set<Option<SyncRole>>>,
    syncinterface: Option<Set<String>>,
    syncid: Option<Set<u32>>,
    /// Resolved global fallbacks (resolution needs no block context).
    fallback: Option<GlobalFallback>,
    fallback6: Option<GlobalFallback>,
}

#[derive(Debug)]
enum EndpointSpec {
    Addr { host: HostSpec, port: PortSpec },
    Fwmark(u32),
}

#[derive(Debug)]
struct VirtualSpec {
    line_span: Span,
    value_span: Span,
    family: Family,
    endpoint: EndpointSpec,
    shared: Shared,
    reals: Vec<(Real, Span)>,
    checktype: Option<Set<CheckType>>,
    service: Option<Set<Service>>,
    request: Option<Set<String>>,
    receive: Option<Set<String>>,
    httpmethod: Option<Set<HttpMethod>>,
    virtualhost: Option<Set<String>>,
    checkport: Option<Set<u16>>,
    login: Option<Set<String>>,
    passwd: Option<Set<String>>,
    database: Option<Set<String>>,
    secret: Option<Set<String>>,
    checkcommand: Option<Set<String>>,
    tlsverify: Option<Set<TlsVerify>>,
    tlscafile: Option<Set<String>>,
    checkdatapath: Option<Set<bool>>,
    scheduler: Option<Set<String>>,
    persistent: Option<Set<u32>>,
    netmask: Option<Set<Netmask>>,
    schedflags: Option<Set<Vec<String>>>,
    protocol: Option<Set<Option<Protocol>>>,
    ops: Option<Set<bool>>,
    monitorfile: Option<Set<PathBuf>>,
    servicename: Option<Set<String>>,
    comment: Option<Set<String>>,
}

/// The parts of a `real=` value, before resolution.
struct RealParts {
    first: (HostSpec, Span),
    last: Option<(HostSpec, Span)>,
    port: Option<(PortSpec, Span)>,
    forwarding: Forwarding,
    weight: u32,
    check_override: Option<CheckOverride>,
    lower: Option<u32>,
    upper: Option<u32>,
}

/// One `key = value` being read.
#[derive(Debug, Clone, Copy)]
struct Val<'s> {
    key: &'s str,
    text: &'s str,
    span: Span,
}

struct Reader<'s> {
    src: &'s str,
    file: Arc<Path>,
    index: LineIndex<'s>,
    host: &'s dyn Host,
    errors: Vec<Diagnostic>,
    errors_not_shown: usize,
    warnings: Vec<Diagnostic>,
    total_reals: usize,
}

impl<'s> Reader<'s> {
    // -----------------------------------------------------------------------------------------
    // Diagnostics

    fn diag(&self, severity: Severity, span: Span, message: impl Into<String>) -> Diagnostic {
        let (line, column) = self.index.line_col(span.start);
        Diagnostic {
            severity,
            message: message.into(),
            file: self.file.clone(),
            line,
            column,
            width: self.index.width(span),
            source_line: self.index.line_text(span.start).to_owned(),
            label: None,
            notes: Vec::new(),
        }
    }

    fn error(&self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.diag(Severity::Error, span, message)
    }

    fn warning(&self, span: Span, message: impl Into<String>) -> Diagnostic {
        self.diag(Severity::Warning, span, message)
    }

    fn push(&mut self, d: Diagnostic) {
        match d.severity {
            Severity::Warning => self.warnings.push(d),
            Severity::Error if self.errors.len() < MAX_ERRORS => self.errors.push(d),
            Severity::Error => self.errors_not_shown += 1,
        }
    }

    fn fail<T>(&mut self, d: Diagnostic) -> Option<T> {
        self.push(d);
        None
    }

    fn line_of(&self, span: Span) -> u32 {
        self.index.line_col(span.start).0
    }

    fn location(&self, span: Span) -> Location {
        Location::new(self.file.clone(), self.line_of(span))
    }

    // -----------------------------------------------------------------------------------------
    // Structure

    fn run(&mut self) -> Option<Config> {
        let items = match syntax::parse(self.src) {
            Ok(items) => items,
            Err(pos) => {
                let d = self.error(Span::new(pos, pos + 1), "unreadable line");
                self.push(d);
                return None;
            }
        };
        let mut global = GlobalSpec::default();
        let mut virtuals = Vec::new();
        for item in items {
            match item {
                Item::Global(entry) => self.global_entry(&mut global, &entry),
                Item::Stray {
                    entry,
                    indent_span,
                    blank_before,
                } => self.stray(&entry, indent_span, blank_before),
                Item::Virtual { header, body } => {
                    if let Some(v) = self.virtual_block(&header, &body) {
                        virtuals.push(v);
                    }
                }
            }
        }
        let global = self.finish_global(global);
        let mut out = Vec::with_capacity(virtuals.len());
        let mut seen: HashMap<Endpoint, u32> = HashMap::new();
        for spec in virtuals {
            let vspan = spec.value_span;
            if let Some(v) = self.finish_virtual(spec, &global) {
                if let Some(first) = seen.get(&v.endpoint) {
                    let mut d =
                        self.error(vspan, format!("duplicate virtual server {}", v.endpoint));
                    d.label = Some(format!("already defined on line {first}"));
                    self.push(d);
                    continue;
                }
                seen.insert(v.endpoint, v.location.line);
                out.push(v);
            }
        }
        Some(Config {
            file: self.file.clone(),
            global: global.0,
            virtuals: out,
        })
    }

    fn stray(&mut self, entry: &Entry<'_>, indent: Span, blank_before: Option<usize>) {
        let span = entry.span();
        let mut d = self.error(span, "indented line outside a virtual= block");
        d.label = Some("global lines start in column 1; block lines follow a virtual= line".into());
        if let Some(blank) = blank_before {
            let line = self.line_of(Span::new(blank, blank));
            d = d.help(format!(
                "the blank line {line} ended the virtual= block above; remove it or make it a `#` comment"
            ));
        } else if let Entry::Directive { key, .. } = entry {
            let width: usize = self.src[indent.start..indent.end]
                .chars()
                .map(|c| if c == '\t' { 4 } else { 1 })
                .sum();
            match directives::find(key) {
                Some(info) if info.scope.allows_global() && !info.scope.allows_virtual() => {
                    d = d.help(format!(
                        "`{key}` is a global directive: remove the indentation"
                    ));
                }
                Some(_) if width < 4 => {
                    d = d.help(
                        "lines of a virtual= block are indented by at least 4 spaces or a tab",
                    );
                }
                _ => {}
            }
        }
        self.push(d);
    }

    /// Splits an entry into key and value, reporting lines that are not `key = value`.
    fn directive<'e>(
        &mut self,
        entry: &Entry<'e>,
        in_virtual: bool,
    ) -> Option<(&'e str, Option<Val<'e>>, Span)> {
        match *entry {
            Entry::Directive {
                key,
                key_span,
                value,
                ..
            } => {
                let val = value.map(|(text, vspan)| Val {
                    key,
                    text,
                    span: vspan,
                });
                Some((key, val, key_span))
            }
            Entry::Bad { text, span } => {
                let word: String = text
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_' || *c == '-')
                    .collect();
                let mut d = self.error(span, "not a directive");
                d.label = Some("expected `name = value`".into());
                if let Some(info) = directives::find(&word) {
                    d.label = Some(format!("expected `=` after `{word}`"));
                    d = d.help(format!("write `{} = {}`", info.name, info.syntax));
                } else if let Some(s) = (!word.is_empty())
                    .then(|| directives::suggest(&word, in_virtual))
                    .flatten()
                {
                    d = d.help(format!("did you mean `{s}`?"));
                }
                self.fail(d)
            }
        }
    }

    fn deprecated(&mut self, key: &str, key_span: Span, reason: &str) {
        let mut d = self.error(key_span, reason.to_owned());
        d.label = Some("no longer supported".into());
        let d = if key == "timeout" {
            d.help("write `checktimeout = SECONDS` and/or `negotiatetimeout = SECONDS`")
        } else {
            d.help("write `negotiatetimeout = SECONDS`")
        };
        self.push(d);
    }

    /// The error for a directive that is not known (or not allowed here).
    fn unknown(&mut self, key: &str, key_span: Span, in_virtual: bool) {
        let info = directives::find(key);
        if let Some(reason) = info.and_then(|d| d.rejected)
            && (info.is_some_and(|d| d.scope.allows_virtual()) || !in_virtual)
        {
            self.deprecated(key, key_span, reason);
            return;
        }
        let d = match info {
            Some(info) if in_virtual && !info.scope.allows_virtual() => {
                let mut d = self.error(
                    key_span,
                    format!("`{key}` is not allowed inside a virtual= block"),
                );
                d.label = Some("a global directive".into());
                d.help(format!(
                    "move `{key}` out of the block, to a line that starts in column 1 (a blank line before it ends the block)"
                ))
            }
            Some(info) if !in_virtual && !info.scope.allows_global() => {
                let mut d = self.error(
                    key_span,
                    format!("`{key}` is only allowed inside a virtual= block"),
                );
                d.label = Some("a per-virtual directive".into());
                d.help("indent it by at least 4 spaces or a tab, directly under a virtual= line (no blank line in between)")
            }
            _ => {
                let mut d = self.error(key_span, format!("unknown directive `{key}`"));
                d.label = Some("not a directive of ldirectord.cf".into());
                match directives::suggest(key, in_virtual) {
                    Some(s) => d.help(format!("did you mean `{s}`?")),
                    None => d,
                }
            }
        };
        self.push(d);
    }

    /// Value required: reports `key` without `=` or with an empty value.
    fn need<'e>(&mut self, key: &str, key_span: Span, val: Option<Val<'e>>) -> Option<Val<'e>> {
        let syntax = || directives::find(key).map_or("a value", |d| d.syntax);
        match val {
            Some(v) if !v.text.is_empty() => Some(v),
            Some(v) => {
                let mut d = self.error(
                    Span::new(v.span.start, v.span.start),
                    format!("missing value for `{key}`"),
                );
                d.label = Some(format!("expected {}", syntax()));
                self.fail(d)
            }
            None => {
                let mut d = self.error(key_span, format!("missing `=` and value after `{key}`"));
                d.label = Some(format!("expected `{key} = {}`", syntax()));
                self.fail(d)
            }
        }
    }

    /// Warns when a single-valued directive is set again (the last one wins, as in Perl).
    fn replace<T>(&mut self, slot: &mut Option<Set<T>>, value: T, span: Span, key: &str) {
        if let Some(old) = slot {
            let line = self.line_of(old.span);
            let d = self
                .warning(
                    span,
                    format!("`{key}` is set again; the value from line {line} is ignored"),
                )
                .note("the last value wins, as in the Perl ldirectord");
            self.push(d);
        }
        *slot = Some(Set { value, span });
    }

    // -----------------------------------------------------------------------------------------
    // Value grammar

    /// Parses `v` with `rule`; on failure reports where, expecting `expected`.
    fn parse_value(&mut self, rule: Rule, v: Val<'s>, expected: &str) -> Option<Pairs<'s, Rule>> {
        let first_err = match CfParser::parse(rule, v.text) {
            Ok(pairs) => return Some(pairs),
            Err(e) => e,
        };
        // Detailed attempts (the furthest position reached, and the rules tried there) cost
        // time on every parse, so they are switched on at the first error, and stay on.
        pest::set_error_detail(true);
        let e = CfParser::parse(rule, v.text).err().unwrap_or(first_err);
        let loc = match e.location {
            pest::error::InputLocation::Pos(p) => p,
            pest::error::InputLocation::Span((s, _)) => s,
        };
        let mut rules: Vec<Rule> = match &e.variant {
            pest::error::ErrorVariant::ParsingError { positives, .. } => positives.clone(),
            pest::error::ErrorVariant::CustomError { .. } => Vec::new(),
        };
        let mut pos = loc.min(v.text.len());
        if let Some(a) = e.parse_attempts() {
            let max = a.max_position.min(v.text.len());
            // Point at the start of the word where parsing got furthest (the end of the
            // value when it ran out); pest's own position is often the start of the value.
            let word_start = if max == v.text.len() {
                max
            } else {
                v.text[..max].rfind([' ', '\t']).map_or(0, |i| i + 1)
            };
            if word_start > pos {
                pos = word_start;
                rules.clear();
            }
            if max == pos || word_start == pos {
                for stack in a.call_stacks() {
                    if let Some(r) = stack.deepest.get_rule() {
                        rules.push(*r);
                    }
                }
            }
        }
        let start = v.span.start + pos;
        let rest = &v.text[pos..];
        // Underline the word that failed.
        let len = rest
            .find(|c: char| c.is_whitespace() || c == ',' || c == '"')
            .unwrap_or(rest.len())
            .max(rest.chars().next().map_or(0, char::len_utf8));

        let what = if v.text.is_empty() {
            format!("missing value for `{}`", v.key)
        } else {
            format!("invalid value for `{}`", v.key)
        };
        let mut d = self.error(Span::new(start, start + len), what);
        let at_end = rest.trim().is_empty();
        let described =
            if at_end && matches!(rule, Rule::real_value) && !v.text.contains([' ', '\t']) {
                Some("a forwarding method (gate, masq or ipip) after the address".to_owned())
            } else {
                describe(&rules)
            };
        d.label = Some(match &described {
            Some(text) => format!("expected {text}"),
            None => format!("expected {expected}"),
        });
        if matches!(rule, Rule::real_value) && rest.starts_with('[') {
            d = d
                .help("a range of real servers is written FIRST->LAST, e.g. `192.168.1.1->192.168.1.3`")
                .note("the Perl ldirectord silently reads this line as a real server 0.0.0.80");
        } else if described.is_some() {
            let syntax = directives::find(v.key).map_or("", |d| d.syntax);
            d = d.note(format!("syntax: {} = {syntax}", v.key));
        }
        self.fail(d)
    }

    /// Warns about text after a valid value that the Perl code ignores too.
    fn junk(&mut self, pairs: &Pairs<'s, Rule>, v: Val<'s>) {
        for p in pairs.clone().flatten() {
            if p.as_rule() == Rule::junk && !p.as_str().trim().is_empty() {
                let off = p.as_span().start();
                let lead = p.as_str().len() - p.as_str().trim_start().len();
                let span = Span::new(v.span.start + off + lead, v.span.start + p.as_span().end());
                let mut d = self.warning(
                    span,
                    format!("text after the value of `{}` is ignored", v.key),
                );
                d.label = Some("ignored".into());
                self.push(d);
            }
        }
    }

    fn first(pairs: &Pairs<'s, Rule>, rule: Rule) -> Option<Pair<'s, Rule>> {
        pairs.clone().flatten().find(|p| p.as_rule() == rule)
    }

    fn sub(v: Val<'s>, p: &Pair<'s, Rule>) -> Span {
        Span::new(
            v.span.start + p.as_span().start(),
            v.span.start + p.as_span().end(),
        )
    }

    fn number(&mut self, v: Val<'s>) -> Option<u32> {
        if let Some(n) = fast::digits(v.text).and_then(|d| d.parse::<u32>().ok()) {
            return Some(n);
        }
        let pairs = self.parse_value(Rule::number_value, v, "a number")?;
        let n = Self::first(&pairs, Rule::number)?;
        let span = Self::sub(v, &n);
        let value = match n.as_str().parse::<u32>() {
            Ok(x) => x,
            Err(_) => {
                let mut d = self.error(span, format!("number too large for `{}`", v.key));
                d.label = Some(format!("at most {}", u32::MAX));
                return self.fail(d);
            }
        };
        self.junk(&pairs, v);
        Some(value)
    }

    /// A number greater than zero (the Perl `$1 =~ /(\d+)/ && $1`).
    fn positive(&mut self, v: Val<'s>) -> Option<u32> {
        let n = self.number(v)?;
        if n == 0 {
            let mut d = self.error(v.span, format!("`{}` must be greater than 0", v.key));
            d.label = Some("expected a positive number".into());
            return self.fail(d);
        }
        Some(n)
    }

    fn yes_no(&mut self, v: Val<'s>) -> Option<bool> {
        match v.text {
            "yes" => return Some(true),
            "no" => return Some(false),
            _ => {}
        }
        let pairs = self.parse_value(Rule::yes_no_value, v, "`yes` or `no`")?;
        Some(pairs.as_str() == "yes")
    }

    fn quoted(&mut self, v: Val<'s>) -> Option<String> {
        if let Some(text) = fast::quoted(v.text) {
            return Some(text.to_owned());
        }
        let pairs = match CfParser::parse(Rule::quoted_value, v.text) {
            Ok(p) => p,
            Err(_) => {
                let syntax = directives::find(v.key).map_or("\"…\"", |d| d.syntax);
                let mut d = if v.text.starts_with('"') {
                    let mut d =
                        self.error(v.span, format!("unterminated quoted value for `{}`", v.key));
                    d.label = Some("expected a closing `\"`".into());
                    d
                } else {
                    let mut d = self.error(
                        v.span,
                        format!("the value of `{}` must be in double quotes", v.key),
                    );
                    d.label = Some(format!("expected {syntax}"));
                    d
                };
                d = d.help(format!(
                    "write `{} = \"{}\"`",
                    v.key,
                    v.text.replace('"', "")
                ));
                return self.fail(d);
            }
        };
        let text = Self::first(&pairs, Rule::quoted_text).map_or("", |p| p.as_str());
        self.junk(&pairs, v);
        Some(text.to_owned())
    }

    /// A quoted string that must not be empty (the Perl `$1 =~ /(.+)/ or config_error`).
    fn quoted_nonempty(&mut self, v: Val<'s>) -> Option<String> {
        let s = self.quoted(v)?;
        if s.is_empty() {
            let mut d = self.error(v.span, format!("empty value for `{}`", v.key));
            d.label = Some("expected a non-empty string between the quotes".into());
            return self.fail(d);
        }
        Some(s)
    }

    /// Optional quotes, stripped (checkcommand, fallbackcommand, monitorfile, …).
    fn opt_quoted(&mut self, v: Val<'s>) -> Option<String> {
        if let Some(text) = fast::opt_quoted(v.text).filter(|t| !t.is_empty()) {
            return Some(text.to_owned());
        }
        let pairs = self.parse_value(Rule::opt_quoted_value, v, "a value")?;
        let text = Self::first(&pairs, Rule::quoted_text)
            .or_else(|| Self::first(&pairs, Rule::raw_text))
            .map_or("", |p| p.as_str());
        self.junk(&pairs, v);
        if text.is_empty() {
            let mut d = self.error(v.span, format!("empty value for `{}`", v.key));
            d.label = Some("expected a non-empty value".into());
            return self.fail(d);
        }
        Some(text.to_owned())
    }

    fn host_spec(&mut self, p: Pair<'s, Rule>, v: Val<'s>) -> Option<HostSpec> {
        let span = Self::sub(v, &p);
        match p.as_rule() {
            Rule::v6_addr => {
                let inner = p.into_inner().next().map_or("", |i| i.as_str());
                match inner.parse::<Ipv6Addr>() {
                    Ok(a) => Some(HostSpec::V6(a)),
                    Err(_) => {
                        let mut d = self.error(span, format!("invalid IPv6 address `{inner}`"));
                        d.label = Some("expected an IPv6 address in brackets".into());
                        self.fail(d)
                    }
                }
            }
            Rule::ipv4 => match p.as_str().parse::<Ipv4Addr>() {
                Ok(a) => Some(HostSpec::V4(a)),
                Err(_) => {
                    let mut d = self.error(span, format!("invalid IPv4 address `{}`", p.as_str()));
                    d.label = Some(
                        "each of the four numbers must be 0..255, without leading zeros".into(),
                    );
                    self.fail(d)
                }
            },
            _ => {
                let name = p.as_str();
                if name.chars().all(|c| c.is_ascii_digit() || c == '.') {
                    // getaddrinfo would read `10.1` as 10.0.0.1 and `80` as 0.0.0.80.
                    let mut d =
                        self.error(span, format!("`{name}` is not a complete IPv4 address"));
                    d.label =
                        Some("expected four numbers separated by dots, or a host name".into());
                    return self.fail(d);
                }
                Some(HostSpec::Name(name.to_owned()))
            }
        }
    }

    fn port_spec(&mut self, p: &Pair<'s, Rule>, v: Val<'s>) -> Option<PortSpec> {
        let s = p.as_str();
        if s.chars().all(|c| c.is_ascii_digit()) {
            match s.parse::<u16>() {
                Ok(n) => Some(PortSpec::Number(n)),
                Err(_) => {
                    let mut d = self.error(Self::sub(v, p), format!("port `{s}` out of range"));
                    d.label = Some("expected 0..65535".into());
                    self.fail(d)
                }
            }
        } else {
            Some(PortSpec::Name(s.to_owned()))
        }
    }

    fn resolve_host(
        &mut self,
        host: &HostSpec,
        family: Family,
        span: Span,
        what: &str,
    ) -> Option<IpAddr> {
        let fam = |f: Family| if f == Family::Inet { "IPv4" } else { "IPv6" };
        match (host, family) {
            (HostSpec::V4(a), Family::Inet) => Some(IpAddr::V4(*a)),
            (HostSpec::V6(a), Family::Inet6) => Some(IpAddr::V6(*a)),
            (HostSpec::V4(_), Family::Inet6) | (HostSpec::V6(_), Family::Inet) => {
                let (got, want) = if family == Family::Inet {
                    ("IPv6", "IPv4")
                } else {
                    ("IPv4", "IPv6")
                };
                let mut d = self.error(
                    span,
                    format!("{got} address for the {what} of an {want} virtual service"),
                );
                d.label = Some(format!("expected an {want} address"));
                let d = if family == Family::Inet {
                    d.help("IPv6 services are written `virtual6=[ADDR]:PORT` with `real6=` and `fallback6=`")
                } else {
                    d.help("IPv4 services are written `virtual=ADDR:PORT` with `real=` and `fallback=`")
                };
                self.fail(d)
            }
            (HostSpec::Name(name), _) => match self.host.lookup_host(name, family) {
                Some(ip) => Some(ip),
                None => {
                    let mut d = self.error(
                        span,
                        format!("could not resolve host `{name}` for the {what}"),
                    );
                    d.label = Some(format!("no {} address found", fam(family)));
                    self.fail(d)
                }
            },
        }
    }

    fn resolve_port(
        &mut self,
        port: &PortSpec,
        protocol: Option<Protocol>,
        span: Span,
        what: &str,
    ) -> Option<u16> {
        match port {
            PortSpec::Number(n) => Some(*n),
            PortSpec::Name(name) => match self.host.lookup_service(name, protocol) {
                Some(p) => Some(p),
                None => {
                    let proto = protocol.map_or(String::new(), |p| format!("/{}", p.as_str()));
                    let mut d = self.error(
                        span,
                        format!("unknown service name `{name}` for the {what} port"),
                    );
                    d.label = Some(format!(
                        "not in /etc/services{}",
                        if proto.is_empty() {
                            String::new()
                        } else {
                            format!(" as {name}{proto}")
                        }
                    ));
                    self.fail(d.help("write the port number"))
                }
            },
        }
    }

    fn fallback_spec(&mut self, v: Val<'s>) -> Option<FallbackSpec> {
        let pairs = self.parse_value(Rule::fallback_value, v, "ADDRESS[:PORT] [gate|masq|ipip]")?;
        let top = pairs.clone().next()?;
        let mut host = None;
        let mut port = None;
        let mut forwarding = Forwarding::Gate;
        for p in top.into_inner() {
            match p.as_rule() {
                Rule::v6_addr | Rule::ipv4 | Rule::hostname => host = Some(self.host_spec(p, v)?),
                Rule::port => port = Some(self.port_spec(&p, v)?),
                Rule::forward => forwarding = Forwarding::from_name(p.as_str())?,
                _ => {}
            }
        }
        Some(FallbackSpec {
            host: host?,
            port,
            forwarding,
        })
    }

    fn email_list(&mut self, v: Val<'s>) -> Option<Vec<String>> {
        let text = self.opt_quoted(v)?;
        let list: Vec<String> = text
            .split(',')
            .map(|s| s.trim().to_owned())
            .filter(|s| !s.is_empty())
            .collect();
        if list.is_empty() {
            let mut d = self.error(v.span, "no e-mail address given");
            d.label = Some("expected ADDRESS[, ADDRESS]...".into());
            return self.fail(d);
        }
        Some(list)
    }

    fn alert_statuses(&mut self, v: Val<'s>) -> Option<AlertStatuses> {
        if v.text.is_empty() {
            return Some(AlertStatuses::NONE);
        }
        let pairs = self.parse_value(
            Rule::alertstatus_value,
            v,
            "a comma-separated list of all, none, starting, running, stopping, reloading",
        )?;
        let words: Vec<Pair<'s, Rule>> = pairs
            .flatten()
            .filter(|p| p.as_rule() == Rule::status_word)
            .collect();
        let mut st = AlertStatuses::NONE;
        let none = words.iter().find(|w| w.as_str() == "none");
        let mut ok = true;
        for w in &words {
            match w.as_str() {
                "none" => {}
                "all" => st = AlertStatuses::ALL,
                "starting" => st.starting = true,
                "running" => st.running = true,
                "stopping" => st.stopping = true,
                "reloading" => st.reloading = true,
                other => {
                    let mut d = self.error(
                        Self::sub(v, w),
                        format!("invalid e-mail alert status `{other}`"),
                    );
                    d.label =
                        Some("expected all, none, starting, running, stopping or reloading".into());
                    if let Some(s) = directives::nearest(
                        other,
                        [
                            "all",
                            "none",
                            "starting",
                            "running",
                            "stopping",
                            "reloading",
                        ],
                    ) {
                        d = d.help(format!("did you mean `{s}`?"));
                    }
                    self.push(d);
                    ok = false;
                }
            }
        }
        if let (Some(n), true) = (none, words.len() > 1) {
            let mut d = self.error(
                Self::sub(v, n),
                "`none` cannot be combined with other e-mail alert statuses",
            );
            d.label = Some("`none` alone, or a list without it".into());
            self.push(d);
            ok = false;
        }
        ok.then_some(st)
    }

    // -----------------------------------------------------------------------------------------
    // Directives allowed at both levels

    /// Handles a directive of [`Shared`]; false when `key` is not one of them.
    fn shared(
        &mut self,
        s: &mut Shared,
        key: &'s str,
        key_span: Span,
        val: Option<Val<'s>>,
        block_family: Option<Family>,
    ) -> bool {
        macro_rules! set {
            ($field:ident, $parse:ident) => {{
                if let Some(v) = self.need(key, key_span, val) {
                    if let Some(x) = self.$parse(v) {
                        self.replace(&mut s.$field, x, v.span, key);
                    }
                }
            }};
        }
        match key {
            "checktimeout" => set!(checktimeout, positive),
            "negotiatetimeout" => set!(negotiatetimeout, positive),
            "checkinterval" => set!(checkinterval, positive),
            "failurecount" => set!(failurecount, positive),
            "checkcount" => {
                if let Some(v) = self.need(key, key_span, val)
                    && let Some(x) = self.positive(v)
                {
                    let d = self
                        .warning(key_span, "checkcount is deprecated and slated for removal")
                        .help("use failurecount");
                    self.push(d);
                    self.replace(&mut s.checkcount, x, v.span, key);
                }
            }
            "fallback" | "fallback6" => {
                let six = key == "fallback6";
                if let Some(fam) = block_family
                    && six != (fam == Family::Inet6)
                {
                    let want = if six { "fallback" } else { "fallback6" };
                    let mut d = self.error(
                        key_span,
                        format!(
                            "cannot use `{key}` in a {} block",
                            if six { "virtual=" } else { "virtual6=" }
                        ),
                    );
                    d.label = Some(format!("expected `{want}`"));
                    self.push(d);
                    return true;
                }
                if let Some(v) = self.need(key, key_span, val)
                    && let Some(x) = self.fallback_spec(v)
                {
                    let slot = if six {
                        &mut s.fallback6
                    } else {
                        &mut s.fallback
                    };
                    self.replace(slot, x, v.span, key);
                }
            }
            "fallbackcommand" => set!(fallbackcommand, opt_quoted),
            "quiescent" => set!(quiescent, yes_no),
            "cleanstop" => set!(cleanstop, yes_no),
            "emailalert" => set!(emailalert, email_list),
            "emailalertfreq" => set!(emailalertfreq, number),
            "emailalertstatus" => {
                let v = match val {
                    Some(v) => v,
                    None => {
                        self.need(key, key_span, None);
                        return true;
                    }
                };
                if let Some(x) = self.alert_statuses(v) {
                    self.replace(&mut s.emailalertstatus, x, v.span, key);
                }
            }
            "smtp" => {
                if let Some(v) = val
                    && let Some(host) = fast::smtp_host(v.text)
                {
                    self.replace(&mut s.smtp, host.to_owned(), v.span, key);
                } else if let Some(v) = self.need(key, key_span, val)
                    && let Some(pairs) =
                        self.parse_value(Rule::smtp_value, v, "a host name or address")
                {
                    let host = Self::first(&pairs, Rule::smtp_host)
                        .map_or("", |p| p.as_str())
                        .to_owned();
                    self.junk(&pairs, v);
                    self.replace(&mut s.smtp, host, v.span, key);
                }
            }
            _ => return false,
        }
        true
    }

    // -----------------------------------------------------------------------------------------
    // Global section

    fn global_entry(&mut self, g: &mut GlobalSpec, entry: &Entry<'s>) {
        let Some((key, val, key_span)) = self.directive(entry, false) else {
            return;
        };
        if self.shared(&mut g.shared, key, key_span, val, None) {
            if matches!(key, "fallback" | "fallback6") {
                self.resolve_global_fallback(g, key == "fallback6");
            }
            return;
        }
        macro_rules! set {
            ($field:ident, $parse:ident) => {{
                if let Some(v) = self.need(key, key_span, val) {
                    if let Some(x) = self.$parse(v) {
                        self.replace(&mut g.$field, x, v.span, key);
                    }
                }
            }};
        }
        match key {
            "autoreload" => set!(autoreload, yes_no),
            "fork" => set!(fork, yes_no),
            "readdquiescent" => set!(readdquiescent, yes_no),
            "supervised" => match val {
                None => {
                    let d = self
                        .warning(key_span, "bare `supervised` directive")
                        .help("write `supervised = yes`");
                    self.push(d);
                    self.replace(&mut g.supervised, true, key_span, key);
                }
                Some(_) => set!(supervised, yes_no),
            },
            "callback" => {
                if let Some(v) = self.need(key, key_span, val)
                    && let Some(x) = self.quoted(v)
                {
                    if x.is_empty() {
                        let d = self.warning(v.span, "empty callback: no program is run");
                        self.push(d);
                    } else {
                        self.replace(&mut g.callback, x, v.span, key);
                    }
                }
            }
            "logfile" => {
                if let Some(v) = self.need(key, key_span, val)
                    && let Some(x) = self.quoted_nonempty(v)
                    && let Some(t) = self.log_target(&x, v)
                {
                    self.replace(&mut g.logfile, t, v.span, key);
                }
            }
            "execute" => {
                if let Some(v) = self.need(key, key_span, val)
                    && let Some(x) = self.opt_quoted(v)
                    && !g.execute.contains(&x)
                {
                    g.execute.push(x);
                }
            }
            "maintenancedir" => {
                if let Some(v) = self.need(key, key_span, val) {
                    let path = PathBuf::from(v.text);
                    if !self.host.is_dir(&path) {
                        let mut d = self.warning(v.span, "maintenance directory does not exist");
                        d.label =
                            Some("no real server is in maintenance until it is created".into());
                        self.push(d);
                    }
                    self.replace(&mut g.maintenancedir, path, v.span, key);
                }
            }
            "emailalertfrom" => {
                if let Some(v) = self.need(key, key_span, val) {
                    self.replace(&mut g.emailalertfrom, v.text.to_owned(), v.span, key);
                }
            }
            "metrics" => {
                if let Some(v) = self.need(key, key_span, val)
                    && let Some(x) = self.metrics_address(v)
                {
                    self.replace(&mut g.metrics, x, v.span, key);
                }
            }
            "syncdaemon" => {
                if let Some(v) = self.need(key, key_span, val)
                    && let Some(x) = self.sync_role(v)
                {
                    self.replace(&mut g.syncdaemon, x, v.span, key);
                }
            }
            "syncinterface" => {
                if let Some(v) = self.need(key, key_span, val)
                    && let Some(x) = self.interface_name(v)
                {
                    self.replace(&mut g.syncinterface, x, v.span, key);
                }
            }
            "syncid" => {
                if let Some(v) = self.need(key, key_span, val)
                    && let Some(x) = self.number(v)
                {
                    if x > 255 {
                        let mut d = self.error(v.span, "`syncid` is out of range");
                        d.label = Some("expected 0 to 255".into());
                        self.push(d);
                    } else {
                        self.replace(&mut g.syncid, x, v.span, key);
                    }
                }
            }
            "virtual" | "virtual6" => {
                // Only reachable when the header itself is unreadable; reported by the block.
            }
            _ => self.unknown(key, key_span, false),
        }
    }

    fn log_target(&mut self, x: &str, v: Val<'s>) -> Option<LogTarget> {
        if x.starts_with('/') {
            let path = PathBuf::from(x);
            if let Some(parent) = path.parent()
                && !self.host.is_dir(parent)
            {
                let mut d = self.warning(
                    v.span,
                    format!(
                        "the directory of the log file does not exist: {}",
                        parent.display()
                    ),
                );
                d.label = Some("log lines will go to stderr".into());
                self.push(d);
            }
            return Some(LogTarget::File(path));
        }
        if SYSLOG_FACILITIES.contains(&x) {
            return Some(LogTarget::Syslog(x.to_owned()));
        }
        let mut d = self.error(
            v.span,
            format!("`{x}` is neither a path nor a syslog facility"),
        );
        d.label = Some(
            "expected \"/path/to/file\" or a facility such as \"daemon\" or \"local0\"".into(),
        );
        if let Some(s) = directives::nearest(x, SYSLOG_FACILITIES.iter().copied()) {
            d = d.help(format!("did you mean \"{s}\"?"));
        }
        self.fail(d)
    }

    /// `metrics = no | PORT | ADDRESS:PORT | [IPV6]:PORT`; a bare port listens on
    /// 127.0.0.1 (the endpoint is unauthenticated: exposing it is an explicit choice).
    fn metrics_address(&mut self, v: Val<'s>) -> Option<Option<SocketAddr>> {
        let text = v.text.trim();
        if text == "no" {
            return Some(None);
        }
        let parsed = if text.bytes().all(|b| b.is_ascii_digit()) {
            text.parse::<u16>()
                .ok()
                .map(|port| SocketAddr::from(([127, 0, 0, 1], port)))
        } else {
            text.parse::<SocketAddr>().ok()
        };
        match parsed {
            Some(addr) if addr.port() != 0 => Some(Some(addr)),
            _ => {
                let mut d = self.error(v.span, "invalid value for `metrics`");
                d.label = Some("expected no, PORT, ADDRESS:PORT or [IPV6]:PORT".into());
                self.fail(
                    d.help("e.g. `metrics = 9469` (127.0.0.1:9469) or `metrics = [::1]:9469`"),
                )
            }
        }
    }

    /// `syncdaemon = master | backup | both | no`.
    fn sync_role(&mut self, v: Val<'s>) -> Option<Option<SyncRole>> {
        match v.text.trim() {
            "no" => Some(None),
            "master" => Some(Some(SyncRole::Master)),
            "backup" => Some(Some(SyncRole::Backup)),
            "both" => Some(Some(SyncRole::Both)),
            other => {
                let mut d = self.error(v.span, "invalid value for `syncdaemon`");
                d.label = Some("expected master, backup, both or no".into());
                if let Some(s) = directives::nearest(other, ["master", "backup", "both"]) {
                    d = d.help(format!("did you mean `{s}`?"));
                }
                self.fail(d)
            }
        }
    }

    /// A network interface name as the kernel accepts it (`dev_valid_name`).
    fn interface_name(&mut self, v: Val<'s>) -> Option<String> {
        let name = v.text.trim();
        let valid = !name.is_empty()
            && name.len() < 16
            && name != "."
            && name != ".."
            && !name.contains(|c: char| c == '/' || c == ':' || c.is_whitespace());
        if valid {
            return Some(name.to_owned());
        }
        let mut d = self.error(v.span, format!("`{name}` is not an interface name"));
        d.label = Some("at most 15 characters, without `/`, `:` or blanks".into());
        self.fail(d)
    }

    /// `syncdaemon` with its interface and id; the three only make sense together.
    fn sync_daemon(&mut self, g: &GlobalSpec) -> Option<SyncDaemon> {
        let role = g.syncdaemon.as_ref().and_then(|s| s.value);
        let Some(role) = role else {
            for (key, span) in [
                ("syncinterface", g.syncinterface.as_ref().map(|s| s.span)),
                ("syncid", g.syncid.as_ref().map(|s| s.span)),
            ] {
                if let Some(span) = span {
                    let mut d = self.warning(span, format!("`{key}` without `syncdaemon`"));
                    d.label = Some("ignored: no sync daemon is started".into());
                    self.push(d);
                }
            }
            return None;
        };
        let Some(interface) = g.syncinterface.as_ref().map(|s| s.value.clone()) else {
            let span = g.syncdaemon.as_ref().map_or(Span::new(0, 0), |s| s.span);
            let mut d = self.error(span, "`syncdaemon` needs `syncinterface`");
            d.label = Some("the multicast interface is not set".into());
            return self
                .fail(d.help("add `syncinterface = eth0` (the link the other director is on)"));
        };
        Some(SyncDaemon {
            role,
            interface,
            syncid: g.syncid.as_ref().map_or(0, |s| s.value as u8),
        })
    }

    fn resolve_global_fallback(&mut self, g: &mut GlobalSpec, six: bool) {
        let (spec, family) = if six {
            (g.shared.fallback6.clone(), Family::Inet6)
        } else {
            (g.shared.fallback.clone(), Family::Inet)
        };
        let Some(Set { value: spec, span }) = spec else {
            return;
        };
        let Some(addr) = self.resolve_host(&spec.host, family, span, "fallback server") else {
            return;
        };
        let (tcp_port, udp_port) = match &spec.port {
            None => (None, None),
            Some(PortSpec::Number(n)) => (Some(*n), Some(*n)),
            Some(PortSpec::Name(name)) => {
                let tcp = self.host.lookup_service(name, Some(Protocol::Tcp));
                let udp = self.host.lookup_service(name, Some(Protocol::Udp));
                if tcp.is_none() && udp.is_none() {
                    let mut d = self.error(
                        span,
                        format!("unknown service name `{name}` for the fallback port"),
                    );
                    d.label = Some("not in /etc/services".into());
                    self.push(d.help("write the port number"));
                    return;
                }
                (tcp, udp)
            }
        };
        let gf = GlobalFallback {
            location: self.location(span),
            addr,
            tcp_port,
            udp_port,
            port_written: spec.port.is_some(),
            port_name: match &spec.port {
                Some(PortSpec::Name(n)) => Some(n.clone()),
                _ => None,
            },
            forwarding: spec.forwarding,
        };
        if six {
            g.fallback6 = Some(gf);
        } else {
            g.fallback = Some(gf);
        }
    }

    /// The global values in effect, plus their spans (kept for later checks).
    fn finish_global(&mut self, g: GlobalSpec) -> (Global, GlobalSpec) {
        let s = &g.shared;
        let secs =
            |x: &Option<Set<u32>>| x.as_ref().map(|s| Duration::from_secs(u64::from(s.value)));
        let global = Global {
            autoreload: g.autoreload.as_ref().is_some_and(|s| s.value),
            callback: g.callback.as_ref().map(|s| s.value.clone()),
            logfile: g.logfile.as_ref().map_or_else(
                || LogTarget::File("/var/log/ldirectord.log".into()),
                |s| s.value.clone(),
            ),
            execute: g.execute.clone(),
            fork: g.fork.as_ref().is_some_and(|s| s.value),
            supervised: g.supervised.as_ref().is_some_and(|s| s.value),
            readdquiescent: g.readdquiescent.as_ref().is_some_and(|s| s.value),
            maintenancedir: g.maintenancedir.as_ref().map(|s| s.value.clone()),
            emailalertfrom: g.emailalertfrom.as_ref().map(|s| s.value.clone()),
            checkinterval: secs(&s.checkinterval).unwrap_or(Duration::from_secs(10)),
            checktimeout: secs(&s.checktimeout),
            negotiatetimeout: secs(&s.negotiatetimeout),
            checkcount: s.checkcount.as_ref().map_or(1, |s| s.value),
            failurecount: s.failurecount.as_ref().map_or(1, |s| s.value),
            quiescent: s.quiescent.as_ref().is_some_and(|s| s.value),
            cleanstop: s.cleanstop.as_ref().is_none_or(|s| s.value),
            fallback: g.fallback.clone(),
            fallback6: g.fallback6.clone(),
            fallbackcommand: s.fallbackcommand.as_ref().map(|s| s.value.clone()),
            emailalert: s
                .emailalert
                .as_ref()
                .map_or_else(Vec::new, |s| s.value.clone()),
            emailalertfreq: Duration::from_secs(
                s.emailalertfreq.as_ref().map_or(0, |s| u64::from(s.value)),
            ),
            emailalertstatus: s
                .emailalertstatus
                .as_ref()
                .map_or(AlertStatuses::ALL, |s| s.value),
            smtp: s.smtp.as_ref().map(|s| s.value.clone()),
            metrics: g.metrics.as_ref().and_then(|s| s.value),
            sync: self.sync_daemon(&g),
        };
        (global, g)
    }

    // -----------------------------------------------------------------------------------------
    // Virtual blocks

    fn virtual_block(&mut self, header: &Entry<'s>, body: &[Entry<'s>]) -> Option<VirtualSpec> {
        let parsed = self.virtual_header(header);
        // Read the body even when the header is bad, to report its errors too.
        let family = parsed.as_ref().map_or(Family::Inet, |p| p.1);
        let mut spec = VirtualSpec {
            line_span: header.span(),
            value_span: header.span(),
            family,
            endpoint: EndpointSpec::Fwmark(0),
            shared: Shared::default(),
            reals: Vec::new(),
            checktype: None,
            service: None,
            request: None,
            receive: None,
            httpmethod: None,
            virtualhost: None,
            checkport: None,
            login: None,
            passwd: None,
            database: None,
            secret: None,
            checkcommand: None,
            tlsverify: None,
            tlscafile: None,
            checkdatapath: None,
            scheduler: None,
            persistent: None,
            netmask: None,
            schedflags: None,
            protocol: None,
            ops: None,
            monitorfile: None,
            servicename: None,
            comment: None,
        };
        for e in body {
            self.virtual_entry(&mut spec, e);
        }
        let (endpoint, family, value_span) = parsed?;
        spec.endpoint = endpoint;
        spec.family = family;
        spec.value_span = value_span;
        Some(spec)
    }

    fn virtual_header(&mut self, header: &Entry<'s>) -> Option<(EndpointSpec, Family, Span)> {
        let (key, val, key_span) = self.directive(header, false)?;
        let family = if key == "virtual6" {
            Family::Inet6
        } else {
            Family::Inet
        };
        let v = self.need(key, key_span, val)?;
        if family == Family::Inet
            && let Some((addr, port)) = fast::ipv4_port(v.text)
        {
            let endpoint = EndpointSpec::Addr {
                host: HostSpec::V4(addr),
                port: PortSpec::Number(port),
            };
            return Some((endpoint, family, v.span));
        }
        if let Some(mark) = fast::digits(v.text).and_then(|d| d.parse::<u32>().ok())
            && mark > 0
        {
            return Some((EndpointSpec::Fwmark(mark), family, v.span));
        }
        let pairs = match CfParser::parse(Rule::virtual_value, v.text) {
            Ok(p) => p,
            Err(_) => {
                let mut d = self.error(
                    v.span,
                    format!("invalid address for virtual server `{}`", v.text),
                );
                d.label = Some(if family == Family::Inet {
                    "expected ADDRESS:PORT, HOSTNAME:PORT or a firewall mark".into()
                } else {
                    "expected [IPV6]:PORT, HOSTNAME:PORT or a firewall mark".into()
                });
                let bare = v.text.split_whitespace().next().unwrap_or("");
                if bare.parse::<IpAddr>().is_ok()
                    || bare.trim_matches(['[', ']']).parse::<Ipv6Addr>().is_ok()
                {
                    let n: String = bare.chars().take_while(char::is_ascii_digit).collect();
                    d = d.help(format!("add the port: `{key} = {bare}:80`"));
                    if !n.is_empty() && family == Family::Inet {
                        d = d.note(format!(
                            "the Perl ldirectord would read this as firewall mark {n}"
                        ));
                    }
                }
                return self.fail(d);
            }
        };
        self.junk(&pairs, v);
        if let Some(m) = Self::first(&pairs, Rule::fwmark) {
            let span = Self::sub(v, &m);
            return match m.as_str().parse::<u32>() {
                Ok(0) | Err(_) => {
                    let mut d = self.error(span, "invalid firewall mark");
                    d.label = Some(format!("expected 1..{}", u32::MAX));
                    self.fail(d)
                }
                Ok(mark) => Some((EndpointSpec::Fwmark(mark), family, v.span)),
            };
        }
        let ep = Self::first(&pairs, Rule::endpoint)?;
        let mut host = None;
        let mut port = None;
        for p in ep.into_inner() {
            match p.as_rule() {
                Rule::port => port = self.port_spec(&p, v),
                _ => {
                    if let (Rule::v6_addr, Family::Inet) = (p.as_rule(), family) {
                        let mut d =
                            self.error(Self::sub(v, &p), "cannot specify an IPv6 address here");
                        d.label = Some("an IPv6 address".into());
                        self.push(d.help(format!("use `virtual6 = {}`", v.text)));
                        return None;
                    }
                    host = self.host_spec(p, v);
                }
            }
        }
        Some((
            EndpointSpec::Addr {
                host: host?,
                port: port?,
            },
            family,
            v.span,
        ))
    }

    fn virtual_entry(&mut self, spec: &mut VirtualSpec, entry: &Entry<'s>) {
        let Some((key, val, key_span)) = self.directive(entry, true) else {
            return;
        };
        if self.shared(&mut spec.shared, key, key_span, val, Some(spec.family)) {
            return;
        }
        macro_rules! set {
            ($field:ident, $parse:ident) => {{
                if let Some(v) = self.need(key, key_span, val) {
                    if let Some(x) = self.$parse(v) {
                        self.replace(&mut spec.$field, x, v.span, key);
                    }
                }
            }};
        }
        match key {
            "real" | "real6" => {
                let six = key == "real6";
                if six != (spec.family == Family::Inet6) {
                    let want = if six { "real" } else { "real6" };
                    let mut d = self.error(
                        key_span,
                        format!(
                            "cannot use `{key}` in a {} block",
                            if six { "virtual=" } else { "virtual6=" }
                        ),
                    );
                    d.label = Some(format!("expected `{want}`"));
                    self.push(d);
                    return;
                }
                if let Some(v) = self.need(key, key_span, val) {
                    self.real(spec, v);
                }
            }
            "request" => {
                if let Some(v) = self.need(key, key_span, val)
                    && let Some(x) = self.quoted_nonempty(v)
                {
                    let x = if x.starts_with('/') {
                        x
                    } else {
                        format!("/{x}")
                    };
                    self.replace(&mut spec.request, x, v.span, key);
                }
            }
            "receive" => set!(receive, quoted_nonempty),
            "login" => set!(login, quoted_nonempty),
            "passwd" => set!(passwd, quoted_nonempty),
            "database" => set!(database, quoted_nonempty),
            "secret" => set!(secret, quoted_nonempty),
            "checkcommand" => set!(checkcommand, opt_quoted),
            "monitorfile" => {
                if let Some(v) = self.need(key, key_span, val)
                    && let Some(x) = self.opt_quoted(v)
                {
                    let path = PathBuf::from(&x);
                    let parent = path
                        .parent()
                        .filter(|p| !p.as_os_str().is_empty())
                        .unwrap_or(Path::new("."));
                    if !self.host.is_dir(parent) {
                        let mut d = self.error(v.span, format!("unable to open monitorfile {x}"));
                        d.label = Some(format!("directory {} does not exist", parent.display()));
                        self.push(d);
                        return;
                    }
                    self.replace(&mut spec.monitorfile, path, v.span, key);
                }
            }
            "virtualhost" => set!(virtualhost, opt_quoted),
            "tlscafile" => set!(tlscafile, opt_quoted),
            "tlsverify" => {
                if let Some(v) = self.need(key, key_span, val)
                    && let Some(pairs) =
                        self.parse_value(Rule::tlsverify_value, v, "chain, full or none")
                {
                    let m = Self::first(&pairs, Rule::tlsverify_kw)
                        .and_then(|p| TlsVerify::from_name(p.as_str()));
                    self.junk(&pairs, v);
                    if let Some(m) = m {
                        self.replace(&mut spec.tlsverify, m, v.span, key);
                    }
                }
            }
            "servicename" | "comment" => {
                if let Some(v) = val.filter(|v| !v.text.is_empty()) {
                    let slot = if key == "servicename" {
                        &mut spec.servicename
                    } else {
                        &mut spec.comment
                    };
                    self.replace(slot, v.text.to_owned(), v.span, key);
                } else {
                    let d = self.warning(key_span, format!("empty `{key}` is ignored"));
                    self.push(d);
                }
            }
            "load" => {
                if let Some(v) = self.need(key, key_span, val)
                    && self.quoted(v).is_some()
                {
                    let d = self.warning(key_span, "`load` is accepted but never used");
                    self.push(d.note("the Perl ldirectord ignores it too"));
                }
            }
            "checktype" => {
                if let Some(v) = self.need(key, key_span, val) {
                    let quick = CheckType::from_keyword(v.text).or_else(|| {
                        fast::digits(v.text)
                            .and_then(|d| d.parse().ok())
                            .map(CheckType::Combined)
                    });
                    if let Some(ct) = quick {
                        self.replace(&mut spec.checktype, ct, v.span, key);
                    } else if let Some(pairs) = self.parse_value(
                        Rule::checktype_value,
                        v,
                        "connect, external, external-perl, negotiate, off, on, ping or a number",
                    ) {
                        let ct = if let Some(n) = Self::first(&pairs, Rule::number) {
                            match n.as_str().parse::<u32>() {
                                Ok(n) => Some(CheckType::Combined(n)),
                                Err(_) => {
                                    let d = self.error(
                                        Self::sub(v, &n),
                                        "number too large for `checktype`",
                                    );
                                    self.fail(d)
                                }
                            }
                        } else {
                            Self::first(&pairs, Rule::checktype_kw)
                                .and_then(|p| CheckType::from_keyword(p.as_str()))
                        };
                        self.junk(&pairs, v);
                        if let Some(ct) = ct {
                            self.replace(&mut spec.checktype, ct, v.span, key);
                        }
                    } else if let Some(s) =
                        directives::nearest(v.text, CheckType::KEYWORDS.iter().map(|c| c.keyword()))
                        && let Some(d) = self.errors.last_mut()
                    {
                        d.notes.push(format!("help: did you mean `{s}`?"));
                    }
                }
            }
            "service" => {
                if let Some(v) = self.need(key, key_span, val) {
                    if let Some(svc) = Service::from_name(v.text).filter(|s| *s != Service::Oracle) {
                        self.replace(&mut spec.service, svc, v.span, key);
                    } else if let Some(pairs) = self.parse_value(Rule::service_value, v, "dns, ftp, http, https, http_proxy, imap, imaps, ldap, ldaps, mysql, nntp, none, oracle, pgsql, pop, pops, radius, simpletcp, sip, smtp or submission") {
                        let svc = Self::first(&pairs, Rule::service_kw).and_then(|p| Service::from_name(p.as_str()));
                        self.junk(&pairs, v);
                        if svc == Some(Service::Oracle) {
                            let mut d = self.error(v.span, "service=oracle is not supported");
                            d.label = Some("there is no pure-Rust Oracle client".into());
                            self.push(d.help(
                                "use checktype=external with a script that runs sqlplus, or checktype=connect",
                            ));
                        } else if let Some(svc) = svc {
                            self.replace(&mut spec.service, svc, v.span, key);
                        }
                    } else if let Some(s) = directives::nearest(v.text, Service::ALL.iter().map(|s| s.as_str()))
                        && let Some(d) = self.errors.last_mut() {
                            d.notes.push(format!("help: did you mean `{s}`?"));
                        }
                }
            }
            "httpmethod" => {
                let quick = val.and_then(|v| {
                    if v.text.eq_ignore_ascii_case("get") {
                        Some(HttpMethod::Get)
                    } else if v.text.eq_ignore_ascii_case("head") {
                        Some(HttpMethod::Head)
                    } else {
                        None
                    }
                });
                if let (Some(m), Some(v)) = (quick, val) {
                    self.replace(&mut spec.httpmethod, m, v.span, key);
                } else if let Some(v) = self.need(key, key_span, val)
                    && let Some(pairs) = self.parse_value(Rule::httpmethod_value, v, "GET or HEAD")
                {
                    let m = Self::first(&pairs, Rule::httpmethod_kw)
                        .map(|p| p.as_str().to_ascii_uppercase());
                    self.junk(&pairs, v);
                    let m = if m.as_deref() == Some("HEAD") {
                        HttpMethod::Head
                    } else {
                        HttpMethod::Get
                    };
                    self.replace(&mut spec.httpmethod, m, v.span, key);
                }
            }
            "checkport" => {
                if let Some(v) = self.need(key, key_span, val)
                    && let Some(n) = self.number(v)
                {
                    match u16::try_from(n) {
                        Ok(p) if p > 0 => self.replace(&mut spec.checkport, p, v.span, key),
                        _ => {
                            let mut d = self.error(v.span, "checkport out of range");
                            d.label = Some("expected 1..65535".into());
                            self.push(d);
                        }
                    }
                }
            }
            "scheduler" => {
                if let Some(v) = self.need(key, key_span, val)
                    && let Some(name) = self.scheduler_name(v)
                {
                    if !KNOWN_SCHEDULERS.contains(&name.as_str()) {
                        let mut d = self.warning(
                            v.span,
                            format!("`{name}` is not a scheduler this program knows"),
                        );
                        d.label = Some(
                            "the kernel rejects the virtual service if it has no such scheduler"
                                .into(),
                        );
                        if let Some(s) =
                            directives::nearest(&name, KNOWN_SCHEDULERS.iter().copied())
                        {
                            d = d.help(format!("did you mean `{s}`?"));
                        }
                        self.push(d);
                    }
                    self.replace(&mut spec.scheduler, name, v.span, key);
                }
            }
            "persistent" => {
                if let Some(v) = self.need(key, key_span, val)
                    && let Some(n) = self.number(v)
                {
                    if n == 0 || n > MAX_PERSISTENT {
                        let mut d = self.error(v.span, "persistent timeout out of range");
                        d.label = Some(format!("expected 1..{MAX_PERSISTENT} seconds"));
                        self.push(d);
                    } else {
                        self.replace(&mut spec.persistent, n, v.span, key);
                    }
                }
            }
            "netmask" => {
                if let Some(v) = self.need(key, key_span, val) {
                    self.netmask(spec, v);
                }
            }
            "schedflags" => {
                if let Some(v) = self.need(key, key_span, val)
                    && let Some(pairs) =
                        self.parse_value(Rule::schedflags_value, v, "FLAG[,FLAG...]")
                {
                    let mut flags = Vec::new();
                    let mut ok = true;
                    for p in pairs
                        .clone()
                        .flatten()
                        .filter(|p| p.as_rule() == Rule::schedflag)
                    {
                        if !KNOWN_SCHEDFLAGS.contains(&p.as_str()) {
                            let mut d = self.error(
                                Self::sub(v, &p),
                                format!("unknown scheduler flag `{}`", p.as_str()),
                            );
                            d.label =
                                Some(format!("expected one of {}", KNOWN_SCHEDFLAGS.join(", ")));
                            if let Some(s) =
                                directives::nearest(p.as_str(), KNOWN_SCHEDFLAGS.iter().copied())
                            {
                                d = d.help(format!("did you mean `{s}`?"));
                            }
                            self.push(d);
                            ok = false;
                        } else if !flags.iter().any(|f: &String| f == p.as_str()) {
                            flags.push(p.as_str().to_owned());
                        }
                    }
                    self.junk(&pairs, v);
                    if ok {
                        self.replace(&mut spec.schedflags, flags, v.span, key);
                    }
                }
            }
            "protocol" => {
                let quick = val.and_then(|v| match v.text {
                    "tcp" => Some(Some(Protocol::Tcp)),
                    "udp" => Some(Some(Protocol::Udp)),
                    "fwm" => Some(None),
                    _ => None,
                });
                if let (Some(p), Some(v)) = (quick, val) {
                    self.replace(&mut spec.protocol, p, v.span, key);
                } else if let Some(v) = self.need(key, key_span, val)
                    && let Some(pairs) =
                        self.parse_value(Rule::protocol_value, v, "tcp, udp or fwm")
                {
                    let p = match Self::first(&pairs, Rule::protocol_kw).map(|p| p.as_str()) {
                        Some("tcp") => Some(Protocol::Tcp),
                        Some("udp") => Some(Protocol::Udp),
                        _ => None,
                    };
                    self.junk(&pairs, v);
                    self.replace(&mut spec.protocol, p, v.span, key);
                }
            }
            "ops" => set!(ops, yes_no),
            "checkdatapath" => set!(checkdatapath, yes_no),
            _ => self.unknown(key, key_span, true),
        }
    }

    fn scheduler_name(&mut self, v: Val<'s>) -> Option<String> {
        if let Some(name) = fast::scheduler(v.text) {
            return Some(name.to_owned());
        }
        let pairs = self.parse_value(
            Rule::scheduler_value,
            v,
            "a scheduler name in lowercase letters (rr, wrr, lc, wlc, …)",
        )?;
        let name = Self::first(&pairs, Rule::scheduler).map_or("", |p| p.as_str());
        self.junk(&pairs, v);
        Some(name.to_owned())
    }

    fn netmask(&mut self, spec: &mut VirtualSpec, v: Val<'s>) {
        let Some(pairs) = self.parse_value(Rule::netmask_value, v, "A.B.C.D or a prefix length")
        else {
            return;
        };
        let six = spec.family == Family::Inet6;
        let mask = match (
            Self::first(&pairs, Rule::ipv4),
            Self::first(&pairs, Rule::number),
        ) {
            (Some(q), _) if !six => match q.as_str().parse::<Ipv4Addr>() {
                Ok(a) => Some(Netmask::V4(a)),
                Err(_) => None,
            },
            (_, Some(n)) if six => n
                .as_str()
                .parse::<u8>()
                .ok()
                .filter(|p| (1..=128).contains(p))
                .map(Netmask::Prefix),
            _ => None,
        };
        match mask {
            Some(m) => self.replace(&mut spec.netmask, m, v.span, "netmask"),
            None => {
                let mut d = self.error(v.span, "invalid netmask");
                d.label = Some(if six {
                    "a prefix length between 1 and 128 is required".into()
                } else {
                    "dotted quad notation is required (e.g. 255.255.255.0)".into()
                });
                self.push(d);
            }
        }
    }

    /// `real=` through the grammar (anything the fast path does not take).
    fn real_parts(&mut self, v: Val<'s>) -> Option<RealParts> {
        let pairs = self.parse_value(
            Rule::real_value,
            v,
            "ADDRESS[->ADDRESS][:PORT] gate|masq|ipip [WEIGHT] [\"REQUEST\", \"RECEIVE\"] [l:N] [u:N]",
        )?;
        let top = pairs.clone().next()?;
        let mut first: Option<(HostSpec, Span)> = None;
        let mut last: Option<(HostSpec, Span)> = None;
        let mut port: Option<(PortSpec, Span)> = None;
        let mut forwarding = Forwarding::Gate;
        let mut weight = 1u32;
        let mut check_override = None;
        let mut lower: Option<u32> = None;
        let mut upper: Option<u32> = None;
        let mut ok = true;
        for p in top.into_inner() {
            let span = Self::sub(v, &p);
            match p.as_rule() {
                Rule::v6_addr | Rule::ipv4 | Rule::hostname => match self.host_spec(p, v) {
                    Some(h) => first = Some((h, span)),
                    None => ok = false,
                },
                Rule::range_end => match p.into_inner().next().and_then(|h| self.host_spec(h, v)) {
                    Some(h) => last = Some((h, span)),
                    None => ok = false,
                },
                Rule::port => match self.port_spec(&p, v) {
                    Some(s) => port = Some((s, span)),
                    None => ok = false,
                },
                Rule::forward => {
                    forwarding = Forwarding::from_name(p.as_str()).unwrap_or(Forwarding::Gate)
                }
                Rule::weight => match p.as_str().parse::<u32>() {
                    Ok(w) if w <= 65_535 => weight = w,
                    _ => {
                        let mut d = self.error(span, "weight out of range");
                        d.label = Some("expected 0..65535".into());
                        self.push(d);
                        ok = false;
                    }
                },
                Rule::check_pair => {
                    let mut request = String::new();
                    let mut receive = String::new();
                    for q in p.into_inner() {
                        match q.as_rule() {
                            Rule::real_request => request = q.as_str().to_owned(),
                            Rule::real_receive => receive = q.as_str().to_owned(),
                            _ => {}
                        }
                    }
                    if !request.starts_with('/') {
                        request.insert(0, '/');
                    }
                    check_override = Some(CheckOverride { request, receive });
                }
                Rule::lower | Rule::upper => {
                    let slot = if p.as_rule() == Rule::lower {
                        &mut lower
                    } else {
                        &mut upper
                    };
                    let name = if p.as_rule() == Rule::lower {
                        "l:"
                    } else {
                        "u:"
                    };
                    match p.as_str().parse::<u32>() {
                        Ok(n) if i32::try_from(n).is_ok() => {
                            if slot.is_some() {
                                let mut d =
                                    self.error(span, format!("`{name}` threshold given twice"));
                                d.label = Some("remove one".into());
                                self.push(d);
                                ok = false;
                            }
                            *slot = Some(n);
                        }
                        _ => {
                            let mut d = self.error(span, "connection threshold out of range");
                            d.label = Some(format!("expected 0..{}", i32::MAX));
                            self.push(d);
                            ok = false;
                        }
                    }
                }
                _ => {}
            }
        }
        let (Some(first), true) = (first, ok) else {
            return None;
        };
        Some(RealParts {
            first,
            last,
            port,
            forwarding,
            weight,
            check_override,
            lower,
            upper,
        })
    }

    /// `real=`: parsed, resolved and expanded at once (its port needs no protocol).
    fn real(&mut self, spec: &mut VirtualSpec, v: Val<'s>) {
        let parts = match fast::real(v.text) {
            Some(f) => RealParts {
                first: (
                    HostSpec::V4(f.addr),
                    Span::new(v.span.start, v.span.start + f.addr_len),
                ),
                last: None,
                port: f.port.map(|(p, a, b)| {
                    (
                        PortSpec::Number(p),
                        Span::new(v.span.start + a, v.span.start + b),
                    )
                }),
                forwarding: f.forwarding,
                weight: f.weight.unwrap_or(1),
                check_override: None,
                lower: None,
                upper: None,
            },
            None => match self.real_parts(v) {
                Some(p) => p,
                None => return,
            },
        };
        let RealParts {
            first: (first, first_span),
            last,
            port,
            forwarding,
            weight,
            check_override,
            lower,
            upper,
        } = parts;
        let family = spec.family;
        let what = "real server";
        let (lower, upper) = (lower.unwrap_or(0), upper.unwrap_or(0));
        if upper > 0 && lower > upper {
            let d = self.warning(
                v.span,
                format!("lower threshold l:{lower} is above upper threshold u:{upper}"),
            );
            self.push(d);
        }
        let port = match &port {
            None => 0,
            Some((p, span)) => match self.resolve_port(p, None, *span, what) {
                Some(p) => p,
                None => return,
            },
        };
        let Some(start) = self.resolve_host(&first, family, first_span, what) else {
            return;
        };
        let addrs: Vec<IpAddr> = match last {
            None => vec![start],
            Some((last, last_span)) => {
                let Some(end) = self.resolve_host(&last, family, last_span, what) else {
                    return;
                };
                match (start, end) {
                    (IpAddr::V4(a), IpAddr::V4(b)) => {
                        let (a, b) = (u32::from(a), u32::from(b));
                        if a > b {
                            let mut d = self
                                .error(v.span, format!("invalid range: {start} is after {end}"));
                            d.label =
                                Some("the first address must not be greater than the last".into());
                            self.push(d);
                            return;
                        }
                        if b - a >= MAX_RANGE {
                            let mut d = self.error(
                                v.span,
                                format!("range of {} addresses is too large", u64::from(b - a) + 1),
                            );
                            d.label = Some(format!("at most {MAX_RANGE} addresses per real= line"));
                            self.push(d);
                            return;
                        }
                        (a..=b).map(|i| IpAddr::V4(Ipv4Addr::from(i))).collect()
                    }
                    _ => {
                        let mut d = self.error(v.span, "address ranges are not supported for IPv6");
                        d.label = Some("write one real6= line per server".into());
                        self.push(d);
                        return;
                    }
                }
            }
        };
        self.total_reals += addrs.len();
        if self.total_reals > MAX_REALS {
            let mut d = self.error(v.span, "too many real servers");
            d.label = Some(format!("at most {MAX_REALS} in one file"));
            self.push(d);
            return;
        }
        let location = self.location(v.span);
        for addr in addrs {
            spec.reals.push((
                Real {
                    location: location.clone(),
                    addr,
                    port,
                    forwarding,
                    weight,
                    lower_threshold: lower,
                    upper_threshold: upper,
                    check_override: check_override.clone(),
                },
                v.span,
            ));
        }
    }

    /// Resolves what needed the whole block, fills in the defaults and checks the block.
    fn finish_virtual(
        &mut self,
        spec: VirtualSpec,
        global: &(Global, GlobalSpec),
    ) -> Option<Virtual> {
        let (g, gs) = global;
        let vspan = spec.value_span;
        let explicit_protocol = spec.protocol.as_ref().map(|s| (s.value, s.span));
        let endpoint = match &spec.endpoint {
            EndpointSpec::Fwmark(mark) => {
                if let Some((Some(p), span)) = explicit_protocol {
                    let mut d = self.error(
                        span,
                        "protocol must be fwm if the virtual service is a firewall mark",
                    );
                    d.label = Some(format!("`{}` is not allowed here", p.as_str()));
                    return self.fail(d);
                }
                Endpoint::Fwmark {
                    mark: *mark,
                    family: spec.family,
                }
            }
            EndpointSpec::Addr { host, port } => {
                let protocol = match explicit_protocol {
                    Some((Some(p), _)) => p,
                    Some((None, span)) => {
                        let mut d = self.error(span, "protocol must be tcp or udp if the virtual service is an address and port");
                        d.label = Some("`fwm` is only for firewall marks".into());
                        return self.fail(d);
                    }
                    // The Perl rule: udp when the port is written `53` or `domain`.
                    None => match port {
                        PortSpec::Number(53) => Protocol::Udp,
                        PortSpec::Name(n) if n == "domain" => Protocol::Udp,
                        _ => Protocol::Tcp,
                    },
                };
                let addr = self.resolve_host(host, spec.family, vspan, "virtual server");
                let port = self.resolve_port(port, Some(protocol), vspan, "virtual server");
                let (addr, port) = (addr?, port?);
                if port == 0 && spec.persistent.is_none() {
                    let mut d = self.error(
                        vspan,
                        "port 0 is only allowed for a persistent virtual service",
                    );
                    d.label = Some("expected a port in 1..65535".into());
                    return self
                        .fail(d.help("set `persistent = SECONDS` in the block, or give the port"));
                }
                Endpoint::Addr {
                    addr: SocketAddr::new(addr, port),
                    protocol,
                }
            }
        };
        let vport = endpoint.port();
        let protocol = match endpoint {
            Endpoint::Addr { protocol, .. } => Some(protocol),
            Endpoint::Fwmark { .. } => None,
        };
        let location = self.location(spec.line_span);
        let line = location.line;

        // Check settings, with ld_setup's mutual timeout defaults.
        let service = spec.service.as_ref().map_or_else(
            || match endpoint {
                Endpoint::Fwmark { .. } => Service::None,
                Endpoint::Addr { .. } => Service::from_port(vport),
            },
            |s| s.value,
        );
        let checktype = spec
            .checktype
            .as_ref()
            .map_or(CheckType::Negotiate, |s| s.value);
        let vs = &spec.shared;
        let val = |x: &Option<Set<u32>>| x.as_ref().map(|s| s.value);
        let checktimeout = val(&vs.checktimeout)
            .or(val(&vs.negotiatetimeout))
            .or(val(&gs.shared.checktimeout))
            .or(val(&gs.shared.negotiatetimeout))
            .unwrap_or(5);
        let negotiatetimeout = val(&vs.negotiatetimeout)
            .or(val(&vs.checktimeout))
            .or(val(&gs.shared.negotiatetimeout))
            .or(val(&gs.shared.checktimeout))
            .unwrap_or(30);
        let checkinterval = match (&vs.checkinterval, g.fork) {
            (Some(s), true) => Duration::from_secs(u64::from(s.value)),
            (Some(s), false) => {
                let mut d = self.warning(
                    s.span,
                    format!("checkinterval in virtual service {endpoint} is ignored when fork=no"),
                );
                d.label = Some(format!(
                    "the global checkinterval ({}s) is used",
                    g.checkinterval.as_secs()
                ));
                self.push(d.help(
                    "set `fork = yes` globally, or move checkinterval to the global section",
                ));
                g.checkinterval
            }
            (None, _) => g.checkinterval,
        };
        let hostname = || self.host.hostname();
        let login = spec
            .login
            .as_ref()
            .map(|s| s.value.clone())
            .unwrap_or_else(|| match service {
                Service::Ftp => "anonymous".to_owned(),
                Service::Sip => format!("ldirectord@{}", hostname()),
                _ => String::new(),
            });
        let passwd = spec
            .passwd
            .as_ref()
            .map(|s| s.value.clone())
            .unwrap_or_else(|| match service {
                Service::Ftp => format!("ldirectord@{}", hostname()),
                _ => String::new(),
            });
        let check = Check {
            checktype,
            service,
            request: spec
                .request
                .as_ref()
                .map_or_else(|| "/".to_owned(), |s| s.value.clone()),
            receive: spec.receive.as_ref().map(|s| s.value.clone()),
            httpmethod: spec
                .httpmethod
                .as_ref()
                .map_or(HttpMethod::Get, |s| s.value),
            virtualhost: spec.virtualhost.as_ref().map(|s| s.value.clone()),
            checkport: spec.checkport.as_ref().map(|s| s.value),
            login,
            passwd,
            database: spec
                .database
                .as_ref()
                .map(|s| s.value.clone())
                .unwrap_or_default(),
            secret: spec
                .secret
                .as_ref()
                .map(|s| s.value.clone())
                .unwrap_or_default(),
            checkcommand: spec
                .checkcommand
                .as_ref()
                .map_or_else(|| "/bin/true".to_owned(), |s| s.value.clone()),
            tlsverify: spec
                .tlsverify
                .as_ref()
                .map_or(TlsVerify::Chain, |s| s.value),
            tlscafile: spec.tlscafile.as_ref().map(|s| PathBuf::from(&s.value)),
            datapath: spec.checkdatapath.as_ref().is_some_and(|s| s.value),
            checktimeout: Duration::from_secs(u64::from(checktimeout)),
            negotiatetimeout: Duration::from_secs(u64::from(negotiatetimeout)),
            checkinterval,
            checkcount: val(&vs.checkcount).unwrap_or(g.checkcount),
            failurecount: val(&vs.failurecount).unwrap_or(g.failurecount),
        };
        self.check_warnings(&spec, &check);
        self.check_datapath(&spec, &check, &endpoint);

        // Fallback: the block's, else the global one of the block's family.
        let fallback = match (&vs.fallback, &vs.fallback6) {
            (Some(s), _) | (None, Some(s)) => {
                let addr = self.resolve_host(&s.value.host, spec.family, s.span, "fallback server");
                let port = match &s.value.port {
                    None => Some(vport),
                    Some(p) => self.resolve_port(p, protocol, s.span, "fallback server"),
                };
                Some(Fallback {
                    location: self.location(s.span),
                    addr: addr?,
                    port: port?,
                    forwarding: s.value.forwarding,
                })
            }
            (None, None) => {
                let gf = if spec.family == Family::Inet6 {
                    &g.fallback6
                } else {
                    &g.fallback
                };
                match gf {
                    None => None,
                    Some(gf) => {
                        let port = match protocol {
                            Some(Protocol::Tcp) => gf.tcp_port,
                            Some(Protocol::Udp) => gf.udp_port,
                            None => gf.tcp_port.or(gf.udp_port),
                        };
                        let port = match (port, gf.port_written) {
                            (Some(p), _) => p,
                            (None, false) => vport,
                            (None, true) => {
                                let d = self
                                    .error(
                                        vspan,
                                        format!(
                                            "the global fallback's service name has no {} port",
                                            protocol.map_or("fwm", Protocol::as_str)
                                        ),
                                    )
                                    .note(format!(
                                        "the global fallback is defined on line {}",
                                        gf.location.line
                                    ));
                                return self.fail(d);
                            }
                        };
                        Some(Fallback {
                            location: gf.location.clone(),
                            addr: gf.addr,
                            port,
                            forwarding: gf.forwarding,
                        })
                    }
                }
            }
        };

        // Reals: duplicates, and ports the kernel will not honour.
        let mut reals = Vec::with_capacity(spec.reals.len());
        let mut seen: HashMap<(IpAddr, u16), u32> = HashMap::new();
        for (real, span) in spec.reals {
            if let Some(first) = seen.get(&(real.addr, real.port)) {
                let shown = if real.addr.is_ipv6() {
                    format!("[{}]:{}", real.addr, real.port)
                } else {
                    format!("{}:{}", real.addr, real.port)
                };
                let mut d = self.error(span, format!("duplicate real server {shown}"));
                d.label = Some(format!("already defined on line {first}"));
                self.push(d);
                continue;
            }
            seen.insert((real.addr, real.port), real.location.line);
            if protocol.is_some()
                && real.forwarding != Forwarding::Masq
                && real.port != 0
                && real.port != vport
            {
                let mut d = self.warning(span, format!(
                    "port {} of this {} real server is ignored: the kernel uses the virtual port {vport}",
                    real.port,
                    real.forwarding.as_str()
                ));
                d.label = Some("only masq can map ports".into());
                self.push(d);
            }
            reals.push(real);
        }

        if let (Some(ops), false) = (&spec.ops, protocol == Some(Protocol::Udp))
            && ops.value
        {
            let mut d = self.warning(
                ops.span,
                "ops is ignored: one-packet scheduling is for UDP services only",
            );
            d.label = Some(format!("this service is {}", endpoint.protocol_name()));
            self.push(d);
        }
        if let (Some(nm), None) = (&spec.netmask, &spec.persistent) {
            let mut d = self.warning(nm.span, "netmask is ignored without persistent");
            d.label = Some("it only sets the granularity of persistence".into());
            self.push(d);
        }

        let s = &spec.shared;
        let alert_to = s
            .emailalert
            .as_ref()
            .map_or_else(|| g.emailalert.clone(), |x| x.value.clone());
        let v = Virtual {
            location: Location::new(self.file.clone(), line),
            endpoint,
            scheduler: spec
                .scheduler
                .as_ref()
                .map_or_else(|| "wrr".to_owned(), |s| s.value.clone()),
            persistent: spec.persistent.as_ref().map(|s| s.value),
            netmask: spec.netmask.as_ref().map(|s| s.value),
            schedflags: spec
                .schedflags
                .as_ref()
                .map_or_else(Vec::new, |s| s.value.clone()),
            ops: spec.ops.as_ref().is_some_and(|s| s.value) && protocol == Some(Protocol::Udp),
            reals,
            check,
            quiescent: s.quiescent.as_ref().map_or(g.quiescent, |x| x.value),
            cleanstop: s.cleanstop.as_ref().map_or(g.cleanstop, |x| x.value),
            fallback,
            fallbackcommand: s
                .fallbackcommand
                .as_ref()
                .map(|x| x.value.clone())
                .or_else(|| g.fallbackcommand.clone()),
            emailalert: EmailAlert {
                to: alert_to,
                from: g.emailalertfrom.clone(),
                freq: s.emailalertfreq.as_ref().map_or(g.emailalertfreq, |x| {
                    Duration::from_secs(u64::from(x.value))
                }),
                status: s
                    .emailalertstatus
                    .as_ref()
                    .map_or(g.emailalertstatus, |x| x.value),
                smtp: s
                    .smtp
                    .as_ref()
                    .map(|x| x.value.clone())
                    .or_else(|| g.smtp.clone()),
            },
            monitorfile: spec.monitorfile.as_ref().map(|s| s.value.clone()),
            servicename: spec.servicename.as_ref().map(|s| s.value.clone()),
            comment: spec.comment.as_ref().map(|s| s.value.clone()),
        };
        Some(v)
    }

    /// Settings the Perl code accepts but then ignores, or that make a check always fail.
    /// `checkdatapath=yes` steers the check's own connection with a firewall mark; checks
    /// that open no such connection, and services without one address, cannot use it.
    fn check_datapath(&mut self, spec: &VirtualSpec, check: &Check, endpoint: &Endpoint) {
        let Some(set) = spec.checkdatapath.as_ref().filter(|s| s.value) else {
            return;
        };
        let why = match (endpoint, check.checktype) {
            (Endpoint::Fwmark { .. }, _) => Some((
                "checkdatapath needs a virtual=ADDRESS:PORT service",
                "a firewall-mark service has no one address to send the check to",
            )),
            (_, CheckType::Ping) => Some((
                "checkdatapath cannot be used with checktype=ping",
                "IPVS does not schedule ICMP echo requests",
            )),
            (
                Endpoint::Addr {
                    protocol: Protocol::Udp,
                    ..
                },
                CheckType::Connect,
            ) => Some((
                "checkdatapath cannot be used with checktype=connect on UDP",
                "a UDP connect check is a ping, which IPVS does not schedule",
            )),
            (_, CheckType::External | CheckType::ExternalPerl) => Some((
                "checkdatapath cannot be used with external checks",
                "the connections of an external program cannot be marked",
            )),
            _ => None,
        };
        if let Some((message, label)) = why {
            let mut d = self.error(set.span, message);
            d.label = Some(label.into());
            self.push(d);
        }
    }

    fn check_warnings(&mut self, spec: &VirtualSpec, check: &Check) {
        let negotiating = matches!(
            check.checktype,
            CheckType::Negotiate | CheckType::Combined(_)
        );
        let ct = check.checktype;
        if let (Some(s), false) = (&spec.service, negotiating) {
            let mut d = self.warning(s.span, format!("service is ignored with checktype={ct}"));
            d.label = Some("only negotiate and combined checks speak a service protocol".into());
            self.push(d);
        }
        let external = matches!(ct, CheckType::External | CheckType::ExternalPerl);
        match (&spec.checkcommand, external) {
            (Some(s), false) => {
                let mut d = self.warning(
                    s.span,
                    format!("checkcommand is ignored with checktype={ct}"),
                );
                d.label = Some("only external and external-perl checks run it".into());
                self.push(d);
            }
            (None, true) => {
                let span = spec.checktype.as_ref().map_or(spec.line_span, |s| s.span);
                let d = self.warning(span, format!("checktype={ct} without checkcommand runs /bin/true: every real server is always up"));
                self.push(d);
            }
            (Some(s), true)
                if ct == CheckType::External && s.value.chars().any(char::is_whitespace) =>
            {
                let mut d = self.warning(
                    s.span,
                    "checkcommand is run without a shell: the whole value is the program path",
                );
                d.label = Some("arguments are not supported".into());
                self.push(d.note(
                    "the program gets: virtual address, virtual port, real address, real port",
                ));
            }
            _ => {}
        }
        if !negotiating {
            return;
        }
        let svc = check.service;
        if svc == Service::None && spec.service.is_none() && !spec.reals.is_empty() {
            let mut d = self.warning(spec.value_span, "no health check: the service of this port is `none`, so every real server counts as up");
            d.label = Some("no service= and no well-known port".into());
            self.push(d.help("set `service = …` (e.g. http, smtp, simpletcp) or `checktype = connect`; `checktype = on` says it on purpose"));
        }
        let http = matches!(svc, Service::Http | Service::Https | Service::HttpProxy);
        if let (Some(m), Some(_)) = (&spec.httpmethod, &check.receive)
            && m.value == HttpMethod::Head
            && http
        {
            let mut d = self.warning(
                m.span,
                "httpmethod=HEAD with receive: a HEAD response has no body to match",
            );
            d.label = Some("every check of this service fails".into());
            self.push(d);
        }
        if let (Some(s), false) = (&spec.virtualhost, http) {
            let mut d = self.warning(s.span, format!("virtualhost is ignored with service={svc}"));
            d.label = Some("only http and https checks send a Host header".into());
            self.push(d);
        }
        if let (Some(s), false) = (&spec.httpmethod, http) {
            let mut d = self.warning(s.span, format!("httpmethod is ignored with service={svc}"));
            d.label = Some("only http checks use it".into());
            self.push(d);
        }
        if svc == Service::Dns
            && check.receive.is_none()
            && spec.reals.iter().all(|r| r.0.check_override.is_none())
        {
            let span = spec.service.as_ref().map_or(spec.line_span, |s| s.span);
            let mut d = self.warning(
                span,
                "dns check without receive: every real server is always down",
            );
            d.label = Some("set receive to an address the answer must contain".into());
            self.push(d);
        }
        if matches!(svc, Service::Mysql | Service::Pgsql | Service::Oracle)
            && (check.login.is_empty() || check.request == "/")
        {
            let span = spec.service.as_ref().map_or(spec.line_span, |s| s.span);
            let mut d = self.warning(
                span,
                format!("{svc} check without login and request: every real server is always down"),
            );
            d.label = Some("set login, passwd, database and an SQL request".into());
            self.push(d);
        }
        if svc == Service::HttpProxy && !check.request.contains("://") {
            let span = spec.request.as_ref().map_or(spec.line_span, |s| s.span);
            let mut d = self.warning(span, "http_proxy check with a relative request");
            d.label = Some("the request must be an absolute URL fetched through the proxy".into());
            self.push(d);
        }
    }
}

/// Human words for the grammar rules pest says it expected.
fn describe(rules: &[Rule]) -> Option<String> {
    let mut words: Vec<&str> = Vec::new();
    for r in rules {
        let w = match r {
            Rule::v6_addr | Rule::ipv4 | Rule::hostname | Rule::range_end | Rule::endpoint => {
                "an address or host name"
            }
            Rule::port => "a port number or service name",
            Rule::forward => "a forwarding method (gate, masq or ipip)",
            Rule::weight => "a weight",
            Rule::check_pair => "\"REQUEST\", \"RECEIVE\"",
            Rule::lower | Rule::upper => "l:N or u:N",
            Rule::EOI => "the end of the line",
            Rule::number => "a number",
            Rule::fwmark => "a firewall mark",
            Rule::yes_no => "`yes` or `no`",
            _ => continue,
        };
        if !words.contains(&w) {
            words.push(w);
        }
    }
    match words.len() {
        0 => None,
        1 => Some(words[0].to_owned()),
        n => Some(format!("{} or {}", words[..n - 1].join(", "), words[n - 1])),
    }
}
