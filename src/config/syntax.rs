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

/// Splits `src` into items with the grammar's `file` rule. The `file` rule accepts any text, so
/// this cannot fail; an unexpected grammar failure is reported at the position pest gives.
///
/// [`parse`] does the same by hand, about ten times faster; tests and the fuzzer check that
/// the two agree, so the grammar stays the definition of the structure.
pub(crate) fn parse_with_grammar(src: &str) -> Result<Vec<Item<'_>>, usize> {
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

/// Splits `src` into items: the `file` rule of the grammar, by hand (see
/// [`parse_with_grammar`]).
pub(crate) fn parse(src: &str) -> Result<Vec<Item<'_>>, usize> {
    let mut items = Vec::new();
    let mut last_block_end_blank: Option<usize> = None;
    let mut previous_was_block = false;
    let mut block: Option<(Entry<'_>, Vec<Entry<'_>>)> = None;
    for (start, line) in lines(src) {
        let lead = line.len() - line.trim_start_matches([' ', '\t']).len();
        let rest = &line[lead..];
        let is_blank = rest.is_empty();
        let is_comment = rest.starts_with('#');
        if let Some((_, body)) = block.as_mut() {
            if is_comment {
                continue;
            }
            if !is_blank && block_indent(&line[..lead]) {
                body.push(line_entry(start + lead, rest));
                continue;
            }
            if let Some((header, body)) = block.take() {
                items.push(Item::Virtual { header, body });
            }
            previous_was_block = true;
            last_block_end_blank = None;
        }
        if is_blank {
            // A final line of nothing but the end of the text is no line at all.
            if !line.is_empty() || start + line.len() < src.len() {
                if previous_was_block {
                    last_block_end_blank = Some(start);
                }
                previous_was_block = false;
            }
        } else if is_comment {
        } else if lead > 0 {
            let e = line_entry(start + lead, rest);
            items.push(Item::Stray {
                entry: e,
                indent_span: Span::new(start, start + lead),
                blank_before: last_block_end_blank,
            });
            previous_was_block = false;
        } else if is_virtual_header(rest) {
            block = Some((line_entry(start, rest), Vec::new()));
        } else {
            items.push(Item::Global(line_entry(start, rest)));
            previous_was_block = false;
            last_block_end_blank = None;
        }
    }
    if let Some((header, body)) = block.take() {
        items.push(Item::Virtual { header, body });
    }
    Ok(items)
}

/// Whether the hand splitter and the grammar's `file` rule read `src` the same way (for the
/// fuzzer; tests check it too).
pub fn structure_matches_grammar(src: &str) -> bool {
    format!("{:?}", parse(src)) == format!("{:?}", parse_with_grammar(src))
}

/// Lines with their start offsets; a line break is `\n`, `\r\n` or `\r` (pest's NEWLINE).
fn lines(src: &str) -> impl Iterator<Item = (usize, &str)> {
    let bytes = src.as_bytes();
    let mut pos = 0;
    std::iter::from_fn(move || {
        if pos >= bytes.len() {
            return None;
        }
        let start = pos;
        let end = bytes[start..]
            .iter()
            .position(|&b| b == b'\n' || b == b'\r')
            .map_or(bytes.len(), |i| start + i);
        pos = match bytes.get(end) {
            Some(b'\r') if bytes.get(end + 1) == Some(&b'\n') => end + 2,
            Some(_) => end + 1,
            None => end,
        };
        Some((start, &src[start..end]))
    })
}

/// `block_indent`: at least 4 columns, a tab counting as 4.
fn block_indent(lead: &str) -> bool {
    lead.starts_with("    ")
        || lead.trim_start_matches(' ').starts_with('\t') && lead.find('\t').is_some_and(|i| i <= 3)
}

/// `&("virtual" ~ "6"? ~ WS* ~ "=")`.
fn is_virtual_header(line: &str) -> bool {
    line.strip_prefix("virtual").is_some_and(|r| {
        r.strip_prefix('6')
            .unwrap_or(r)
            .trim_start_matches([' ', '\t'])
            .starts_with('=')
    })
}

/// `entry`: `text` starts at byte `offset` of the source, with a non-blank; it ends at the
/// line end.
fn line_entry(offset: usize, text: &str) -> Entry<'_> {
    // A comment starts at a `#` that no `"` follows.
    let after_quote = text.rfind('"').map_or(0, |i| i + 1);
    let content = match text[after_quote..].find('#') {
        Some(i) => &text[..after_quote + i],
        None => text,
    };
    let key_len = if content.starts_with(|c: char| c.is_ascii_alphabetic()) {
        content
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_' || c == '-'))
            .unwrap_or(content.len())
    } else {
        0
    };
    let after_key = content[key_len..].trim_start_matches([' ', '\t']);
    if key_len > 0 && (after_key.is_empty() || after_key.starts_with('=')) {
        let key = &content[..key_len];
        let key_span = Span::new(offset, offset + key_len);
        let value = after_key.strip_prefix('=').map(|v| {
            let v = v.trim_start_matches([' ', '\t']);
            let vstart = offset + content.len() - v.len();
            let trimmed = v.trim_end_matches([' ', '\t']);
            (trimmed, Span::new(vstart, vstart + trimmed.len()))
        });
        let end = value.map_or(key_span.end, |(_, s)| s.end);
        return Entry::Directive {
            key,
            key_span,
            value,
            span: Span::new(offset, end),
        };
    }
    let text = content.trim_end_matches([' ', '\t']);
    Entry::Bad {
        text,
        span: Span::new(offset, offset + text.len()),
    }
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

    fn both(src: &str) {
        let hand = format!("{:?}", parse(src).unwrap());
        let grammar = format!("{:?}", parse_with_grammar(src).unwrap());
        assert_eq!(hand, grammar, "{src:?}");
    }

    #[test]
    fn the_hand_splitter_agrees_with_the_grammar_on_the_corpora() {
        for dir in [
            "config-examples",
            "tests/fixtures/invalid",
            "tests/fixtures/warnings",
            "tests/compat/cases",
        ] {
            for e in std::fs::read_dir(dir).unwrap() {
                let bytes = std::fs::read(e.unwrap().path()).unwrap();
                both(&String::from_utf8_lossy(&bytes));
            }
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig { cases: 4000, ..Default::default() })]
        #[test]
        fn the_hand_splitter_agrees_with_the_grammar(
            parts in proptest::collection::vec(proptest::sample::select(vec![
                "virtual", "virtual6", "=", " ", "  ", "   ", "    ", "\t", "#", "\"", "\n", "\r", "\r\n",
                "a", "x = 1", "real=1.2.3.4 gate", "6", "-", "_", "é", ",", "supervised",
            ]), 0..24)
        ) {
            both(&parts.concat());
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
