//! First level of reading: the pest grammar splits the file into global lines and
//! `virtual=` blocks (see `grammar/ldirectord.pest`), keeping byte spans for messages.

use pest::Parser;
use pest::iterators::Pair;
use pest_derive::Parser;

#[derive(Parser)]
#[grammar = "grammar/ldirectord.pest"]
pub(crate) struct CfParser;

/// A byte range of the source text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Span {
    pub start: usize,
    pub end: usize,
}

impl Span {
    pub fn new(start: usize, end: usize) -> Self {
        Span { start, end }
    }
    fn of(pair: &Pair<'_, Rule>) -> Self {
        let s = pair.as_span();
        Span::new(s.start(), s.end())
    }
}

/// One non-blank, non-comment line.
#[derive(Debug, Clone)]
pub(crate) enum Entry<'a> {
    /// `key`, `key = value` (value trimmed; `None` when there is no `=`).
    Directive {
        key: &'a str,
        key_span: Span,
        value: Option<(&'a str, Span)>,
        /// From the start of the key to the end of the value (or key).
        span: Span,
    },
    /// A line that is not `key = value`.
    Bad { text: &'a str, span: Span },
}

impl Entry<'_> {
    pub fn span(&self) -> Span {
        match self {
            Entry::Directive { span, .. } | Entry::Bad { span, .. } => *span,
        }
    }
}

/// The structure of a file.
#[derive(Debug, Clone)]
pub(crate) enum Item<'a> {
    Global(Entry<'a>),
    /// An indented line outside any block; `blank_before` is the offset of a blank line that
    /// ended the block just above, if that is what happened.
    Stray {
        entry: Entry<'a>,
        indent_span: Span,
        blank_before: Option<usize>,
    },
    Virtual {
        header: Entry<'a>,
        body: Vec<Entry<'a>>,
    },
}

/// Splits `src` into items. The `file` rule accepts any text, so this cannot fail; an
/// unexpected grammar failure is reported as an error at the position pest gives.
pub(crate) fn parse(src: &str) -> Result<Vec<Item<'_>>, usize> {
    let mut pairs = CfParser::parse(Rule::file, src).map_err(|e| match e.location {
        pest::error::InputLocation::Pos(p) => p,
        pest::error::InputLocation::Span((s, _)) => s,
    })?;
    let file = pairs.next().ok_or(0usize)?;
    let mut items = Vec::new();
    // Tracks "a blank line ended the block above", for the stray-line hint.
    let mut last_block_end_blank: Option<usize> = None;
    let mut previous_was_block = false;
    for pair in file.into_inner() {
        match pair.as_rule() {
            Rule::virtual_block => {
                let mut inner = pair.into_inner();
                let Some(header) = inner.next().and_then(|p| p.into_inner().next()) else {
                    continue;
                };
                let header = entry(header);
                let body = inner
                    .filter(|p| p.as_rule() == Rule::block_line)
                    .filter_map(|p| p.into_inner().next())
                    .map(entry)
                    .collect();
                items.push(Item::Virtual { header, body });
                previous_was_block = true;
                last_block_end_blank = None;
            }
            Rule::blank_line => {
                if previous_was_block {
                    last_block_end_blank = Some(pair.as_span().start());
                }
                previous_was_block = false;
            }
            Rule::comment_line => {}
            Rule::stray_line => {
                let start = pair.as_span().start();
                if let Some(e) = pair.into_inner().next() {
                    let e = entry(e);
                    let indent_span = Span::new(start, e.span().start);
                    items.push(Item::Stray {
                        entry: e,
                        indent_span,
                        blank_before: last_block_end_blank,
                    });
                }
                previous_was_block = false;
            }
            Rule::global_line => {
                if let Some(e) = pair.into_inner().next() {
                    items.push(Item::Global(entry(e)));
                }
                previous_was_block = false;
                last_block_end_blank = None;
            }
            _ => {}
        }
    }
    Ok(items)
}

fn entry(pair: Pair<'_, Rule>) -> Entry<'_> {
    let Some(inner) = pair.into_inner().next() else {
        return Entry::Bad {
            text: "",
            span: Span::new(0, 0),
        };
    };
    match inner.as_rule() {
        Rule::directive => {
            let mut key = None;
            let mut value = None;
            for p in inner.into_inner() {
                match p.as_rule() {
                    Rule::key => key = Some((p.as_str(), Span::of(&p))),
                    Rule::value => {
                        let raw = p.as_str();
                        let trimmed = raw.trim_end_matches([' ', '\t']);
                        let start = p.as_span().start();
                        value = Some((trimmed, Span::new(start, start + trimmed.len())));
                    }
                    _ => {}
                }
            }
            let (key, key_span) = key.unwrap_or(("", Span::new(0, 0)));
            let end = value.map_or(key_span.end, |(_, s): (&str, Span)| s.end);
            Entry::Directive {
                key,
                key_span,
                value,
                span: Span::new(key_span.start, end),
            }
        }
        _ => {
            let span = Span::of(&inner);
            let text = inner.as_str();
            // Without its comment and trailing blanks.
            let text = inner
                .into_inner()
                .find(|p| p.as_rule() == Rule::comment)
                .map_or(text, |c| &text[..c.as_span().start() - span.start])
                .trim_end_matches([' ', '\t']);
            Entry::Bad {
                text,
                span: Span::new(span.start, span.start + text.len()),
            }
        }
    }
}

/// Maps byte offsets to 1-based lines and character columns.
pub(crate) struct LineIndex<'a> {
    src: &'a str,
    starts: Vec<usize>,
}

impl<'a> LineIndex<'a> {
    pub fn new(src: &'a str) -> Self {
        let mut starts = vec![0];
        let bytes = src.as_bytes();
        let mut i = 0;
        while i < bytes.len() {
            match bytes[i] {
                b'\n' => starts.push(i + 1),
                b'\r' if bytes.get(i + 1) != Some(&b'\n') => starts.push(i + 1),
                _ => {}
            }
            i += 1;
        }
        LineIndex { src, starts }
    }

    /// 0-based line index of a byte offset.
    fn line_of(&self, offset: usize) -> usize {
        match self.starts.binary_search(&offset) {
            Ok(i) => i,
            Err(i) => i.saturating_sub(1),
        }
    }

    /// (1-based line, 1-based column in characters).
    pub fn line_col(&self, offset: usize) -> (u32, u32) {
        let offset = offset.min(self.src.len());
        let line = self.line_of(offset);
        let start = self.starts[line];
        let col = self.src.get(start..offset).map_or(0, |s| s.chars().count());
        (
            u32::try_from(line + 1).unwrap_or(u32::MAX),
            u32::try_from(col + 1).unwrap_or(u32::MAX),
        )
    }

    /// The text of the line holding `offset`, without its line break.
    pub fn line_text(&self, offset: usize) -> &'a str {
        let line = self.line_of(offset.min(self.src.len()));
        let start = self.starts[line];
        let end = self.starts.get(line + 1).copied().unwrap_or(self.src.len());
        self.src
            .get(start..end)
            .unwrap_or("")
            .trim_end_matches(['\n', '\r'])
    }

    /// Characters between two offsets (the caret width).
    pub fn width(&self, span: Span) -> u32 {
        let end = span.end.min(self.src.len()).max(span.start);
        let n = self
            .src
            .get(span.start..end)
            .map_or(1, |s| s.chars().count());
        u32::try_from(n.max(1)).unwrap_or(u32::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(items: &[Item<'_>]) -> Vec<String> {
        items
            .iter()
            .map(|i| match i {
                Item::Global(Entry::Directive { key, .. }) => format!("G:{key}"),
                Item::Global(Entry::Bad { text, .. }) => format!("G?{text}"),
                Item::Stray { entry, .. } => format!("S:{:?}", entry.span()),
                Item::Virtual { header, body } => {
                    let Entry::Directive { value, .. } = header else {
                        return "V?".into();
                    };
                    let body: Vec<String> = body
                        .iter()
                        .map(|e| match e {
                            Entry::Directive { key, value, .. } => {
                                format!("{key}={}", value.map_or("", |v| v.0))
                            }
                            Entry::Bad { text, .. } => format!("?{text}"),
                        })
                        .collect();
                    format!("V:{}[{}]", value.map_or("", |v| v.0), body.join(";"))
                }
            })
            .collect()
    }

    #[test]
    fn blocks_follow_the_perl_indentation_rule() {
        let src = "# c\nchecktimeout = 3\nvirtual=1.2.3.4:80\n    real=a gate\n\treal=b gate # x\n  # comment keeps the block\n \tscheduler=rr\nquiescent=no\n";
        let items = parse(src).unwrap();
        assert_eq!(
            keys(&items),
            [
                "G:checktimeout",
                "V:1.2.3.4:80[real=a gate;real=b gate;scheduler=rr]",
                "G:quiescent"
            ]
        );
    }

    #[test]
    fn a_blank_line_ends_the_block() {
        let src = "virtual=1.2.3.4:80\n    real=a gate\n\n    real=b gate";
        let items = parse(src).unwrap();
        assert!(matches!(
            &items[1],
            Item::Stray {
                blank_before: Some(35),
                ..
            }
        ));
    }

    #[test]
    fn comments_start_at_a_hash_not_followed_by_a_quote() {
        let src = "virtual=1.2.3.4:80\n    receive=\"a#b\" # c\n    request=\"x\"#\"y\"";
        let items = parse(src).unwrap();
        assert_eq!(
            keys(&items),
            ["V:1.2.3.4:80[receive=\"a#b\";request=\"x\"#\"y\"]"]
        );
    }

    #[test]
    fn three_spaces_are_not_enough() {
        let src = "virtual=1.2.3.4:80\n   real=a gate\n";
        let items = parse(src).unwrap();
        assert!(matches!(&items[1], Item::Stray { .. }));
    }

    #[test]
    fn anything_parses() {
        for src in [
            "",
            "\n",
            "x",
            "   ",
            "\r\n\r",
            "=",
            "virtual",
            "virtual=\n\t",
            "\"#",
        ] {
            parse(src).unwrap();
        }
    }

    #[test]
    fn line_index_counts_characters() {
        let src = "ab\né=x\r\nz";
        let idx = LineIndex::new(src);
        assert_eq!(idx.line_col(0), (1, 1));
        assert_eq!(idx.line_col(5), (2, 2));
        assert_eq!(idx.line_text(5), "é=x");
        assert_eq!(idx.line_col(src.len()), (3, 2));
    }
}
