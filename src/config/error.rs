//! Errors and warnings about a configuration file, located and rendered with the offending line.

use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// At most this many errors are kept per file; the rest are only counted.
pub const MAX_ERRORS: usize = 25;

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    Warning,
    Error,
}

/// One finding, located at `file:line:column` (1-based; the column counts characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    pub severity: Severity,
    pub message: String,
    pub file: Arc<Path>,
    pub line: u32,
    pub column: u32,
    /// Characters to underline (at least 1).
    pub width: u32,
    /// The source line, without its newline.
    pub source_line: String,
    /// Shown next to the caret: what was expected there.
    pub label: Option<String>,
    /// Extra lines (`help: …`, `note: …`).
    pub notes: Vec<String>,
}

impl Diagnostic {
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }

    /// Adds a `help:` line.
    pub fn help(mut self, text: impl Into<String>) -> Self {
        self.notes.push(format!("help: {}", text.into()));
        self
    }

    /// Adds a `note:` line.
    pub fn note(mut self, text: impl Into<String>) -> Self {
        self.notes.push(format!("note: {}", text.into()));
        self
    }

    /// One line, for logs: `file:line:col: error: message (label)`.
    pub fn one_line(&self) -> String {
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        let mut s = format!(
            "{}:{}:{}: {kind}: {}",
            self.file.display(),
            self.line,
            self.column,
            self.message
        );
        if let Some(label) = &self.label {
            s.push_str(&format!(" ({label})"));
        }
        s
    }
}

impl fmt::Display for Diagnostic {
    /// The rustc-like form: severity and message, location, the line with a caret, label,
    /// notes.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let kind = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        write!(f, "{kind}: {}", self.without_severity())
    }
}

impl Diagnostic {
    /// The rustc-like form without its leading `error: `/`warning: `, for sinks that mark
    /// the severity themselves (the daemon's log).
    pub fn without_severity(&self) -> impl fmt::Display + '_ {
        WithoutSeverity(self)
    }
}

struct WithoutSeverity<'a>(&'a Diagnostic);

impl fmt::Display for WithoutSeverity<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let d = self.0;
        writeln!(f, "{}", d.message)?;
        let num = d.line.to_string();
        let pad = " ".repeat(num.len());
        writeln!(f, "{pad}--> {}:{}:{}", d.file.display(), d.line, d.column)?;
        if d.line > 0 {
            let shown: String = d
                .source_line
                .chars()
                .map(|c| if c.is_control() && c != '\t' { '?' } else { c })
                .collect();
            writeln!(f, "{pad} |")?;
            writeln!(f, "{num} | {shown}")?;
            // Tabs are copied so the caret lines up whatever the tab width.
            let lead: String = shown
                .chars()
                .take(d.column.saturating_sub(1) as usize)
                .map(|c| if c == '\t' { '\t' } else { ' ' })
                .collect();
            let carets = "^".repeat(d.width.max(1) as usize);
            match &d.label {
                Some(label) => writeln!(f, "{pad} | {lead}{carets} {label}")?,
                None => writeln!(f, "{pad} | {lead}{carets}")?,
            }
        }
        for note in &d.notes {
            writeln!(f, "{pad} = {note}")?;
        }
        Ok(())
    }
}

/// Everything found wrong in one file: errors (capped at [`MAX_ERRORS`]) and warnings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Report {
    pub file: Arc<Path>,
    pub errors: Vec<Diagnostic>,
    pub warnings: Vec<Diagnostic>,
    /// Errors found beyond the cap.
    pub errors_not_shown: usize,
}

impl Report {
    pub fn error_count(&self) -> usize {
        self.errors.len() + self.errors_not_shown
    }
}

impl fmt::Display for Report {
    /// All diagnostics in line order, then a summary line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut all: Vec<&Diagnostic> = self.errors.iter().chain(&self.warnings).collect();
        all.sort_by_key(|d| (d.line, d.column, std::cmp::Reverse(d.severity)));
        for d in all {
            writeln!(f, "{d}")?;
        }
        if self.errors_not_shown > 0 {
            writeln!(
                f,
                "note: {} more error(s) not shown (only the first {MAX_ERRORS} are listed)\n",
                self.errors_not_shown
            )?;
        }
        let n = self.error_count();
        write!(
            f,
            "{}: {n} error{}",
            self.file.display(),
            if n == 1 { "" } else { "s" }
        )?;
        if !self.warnings.is_empty() {
            let w = self.warnings.len();
            write!(f, ", {w} warning{}", if w == 1 { "" } else { "s" })?;
        }
        Ok(())
    }
}

/// Why a configuration could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("can not open file {}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}", .0)]
    Invalid(Box<Report>),
}

impl ConfigError {
    /// The report of an invalid file, if that is what this is.
    pub fn report(&self) -> Option<&Report> {
        match self {
            ConfigError::Invalid(r) => Some(r),
            ConfigError::Read { .. } => None,
        }
    }
}
