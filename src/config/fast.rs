//! Fast paths for the common, well-formed values, so that a 10,000-line file does not start
//! 20,000 pest parsers. Each returns `None` whenever the value is anything but the plain case;
//! the caller then parses it with the grammar, which is the definition of the language and
//! produces the errors and warnings. The tests below check, on random input, that a fast path
//! never accepts what the grammar rejects and always agrees with it on the result.

use std::net::Ipv4Addr;

use super::model::Forwarding;

/// A non-empty run of ASCII digits and nothing else (`number_value` without junk).
pub(crate) fn digits(s: &str) -> Option<&str> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())).then_some(s)
}

/// `"text"` with nothing after the closing quote: the text (`quoted_value` without junk).
pub(crate) fn quoted(s: &str) -> Option<&str> {
    (s.len() >= 2 && s.starts_with('"') && s.ends_with('"')).then(|| &s[1..s.len() - 1])
}

/// `opt_quoted_value` without junk: the text between the quotes, or the whole unquoted value.
pub(crate) fn opt_quoted(s: &str) -> Option<&str> {
    if s.starts_with('"') {
        quoted(s)
    } else {
        (!s.is_empty()).then_some(s)
    }
}

/// `scheduler_value` without junk.
pub(crate) fn scheduler(s: &str) -> Option<&str> {
    (!s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase())).then_some(s)
}

/// `smtp_value` without junk.
pub(crate) fn smtp_host(s: &str) -> Option<&str> {
    (!s.is_empty()
        && s.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'+' | b'-')))
    .then_some(s)
}

/// `A.B.C.D:PORT` with a numeric port (`virtual_value` without junk).
pub(crate) fn ipv4_port(s: &str) -> Option<(Ipv4Addr, u16)> {
    let (a, p) = s.split_once(':')?;
    Some((a.parse().ok()?, digits(p)?.parse().ok()?))
}

/// The usual `real=` line: `A.B.C.D[:PORT] gate|masq|ipip [WEIGHT]`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Real {
    pub addr: Ipv4Addr,
    /// Bytes of the address in the value.
    pub addr_len: usize,
    /// The port and where it starts in the value.
    pub port: Option<(u16, usize, usize)>,
    pub forwarding: Forwarding,
    pub weight: Option<u32>,
}

pub(crate) fn real(s: &str) -> Option<Real> {
    let (target, rest) = s.split_once([' ', '\t'])?;
    let (addr_text, port) = match target.split_once(':') {
        Some((a, p)) => (a, Some(p)),
        None => (target, None),
    };
    let addr: Ipv4Addr = addr_text.parse().ok()?;
    let port = match port {
        Some(p) => {
            let start = addr_text.len() + 1;
            Some((digits(p)?.parse::<u16>().ok()?, start, start + p.len()))
        }
        None => None,
    };
    let rest = rest.trim_start_matches([' ', '\t']);
    let (fwd, rest) = rest.split_once([' ', '\t']).unwrap_or((rest, ""));
    let forwarding = Forwarding::from_name(fwd)?;
    let rest = rest.trim_start_matches([' ', '\t']);
    let weight = if rest.is_empty() {
        None
    } else {
        Some(digits(rest)?.parse::<u32>().ok().filter(|w| *w <= 65_535)?)
    };
    Some(Real {
        addr,
        addr_len: addr_text.len(),
        port,
        forwarding,
        weight,
    })
}

#[cfg(test)]
mod tests {
    use pest::Parser;
    use proptest::prelude::*;

    use super::*;
    use crate::config::syntax::{CfParser, Rule};

    fn grammar(rule: Rule, s: &str) -> Option<pest::iterators::Pairs<'_, Rule>> {
        CfParser::parse(rule, s).ok()
    }

    fn rule_text<'a>(pairs: &pest::iterators::Pairs<'a, Rule>, rule: Rule) -> Option<&'a str> {
        pairs
            .clone()
            .flatten()
            .find(|p| p.as_rule() == rule)
            .map(|p| p.as_str())
    }

    fn junk_free(pairs: &pest::iterators::Pairs<'_, Rule>) -> bool {
        rule_text(pairs, Rule::junk).is_none_or(str::is_empty)
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

        #[test]
        fn digits_agree_with_the_grammar(s in "[0-9a ]{0,6}") {
            if let Some(d) = digits(&s) {
                let p = grammar(Rule::number_value, &s).expect("grammar accepts");
                prop_assert!(junk_free(&p));
                prop_assert_eq!(rule_text(&p, Rule::number), Some(d));
            }
        }

        #[test]
        fn quoted_agrees_with_the_grammar(s in "[\"a# ]{0,6}") {
            if let Some(t) = quoted(&s) {
                let p = grammar(Rule::quoted_value, &s).expect("grammar accepts");
                prop_assert!(junk_free(&p));
                prop_assert_eq!(rule_text(&p, Rule::quoted_text).unwrap_or(""), t);
            }
            if let Some(t) = opt_quoted(&s) {
                let p = grammar(Rule::opt_quoted_value, &s).expect("grammar accepts");
                prop_assert!(junk_free(&p));
                let g = rule_text(&p, Rule::quoted_text).or_else(|| rule_text(&p, Rule::raw_text));
                prop_assert_eq!(g.unwrap_or(""), t);
            }
        }

        #[test]
        fn words_agree_with_the_grammar(s in "[a-zA-Z0-9._+-]{0,6}") {
            if let Some(t) = scheduler(&s) {
                let p = grammar(Rule::scheduler_value, &s).expect("grammar accepts");
                prop_assert!(junk_free(&p));
                prop_assert_eq!(rule_text(&p, Rule::scheduler), Some(t));
            }
            if let Some(t) = smtp_host(&s) {
                let p = grammar(Rule::smtp_value, &s).expect("grammar accepts");
                prop_assert!(junk_free(&p));
                prop_assert_eq!(rule_text(&p, Rule::smtp_host), Some(t));
            }
        }

        #[test]
        fn ipv4_port_agrees_with_the_grammar(s in "(10|256|01)\\.(0|9)\\.(1|00)\\.(2|255)(:(80|0|70000|x|))?( x)?") {
            if let Some((a, p)) = ipv4_port(&s) {
                let g = grammar(Rule::virtual_value, &s).expect("grammar accepts");
                prop_assert!(junk_free(&g));
                prop_assert_eq!(rule_text(&g, Rule::ipv4).map(|x| x.parse().ok()), Some(Some(a)));
                prop_assert_eq!(rule_text(&g, Rule::port).map(|x| x.parse().ok()), Some(Some(p)));
            }
        }

        #[test]
        fn real_agrees_with_the_grammar(
            s in "(10|1|256|01)\\.(0|9)\\.(1|00)\\.(2|255)(:(80|0|70000|x))?[ \t]{1,2}(gate|masq|ipip|gat)([ \t](1|0|65535|65536|a|\"x\", \"y\"))?"
        ) {
            if let Some(r) = real(&s) {
                let p = grammar(Rule::real_value, &s).expect("grammar accepts");
                prop_assert_eq!(rule_text(&p, Rule::ipv4), Some(&s[..r.addr_len]));
                prop_assert_eq!(rule_text(&p, Rule::ipv4).map(|a| a.parse().ok()), Some(Some(r.addr)));
                prop_assert_eq!(rule_text(&p, Rule::port).map(|x| x.parse::<u16>().ok()), r.port.map(|(p, _, _)| Some(p)));
                if let Some((_, a, b)) = r.port {
                    prop_assert_eq!(rule_text(&p, Rule::port), Some(&s[a..b]));
                }
                prop_assert_eq!(rule_text(&p, Rule::forward), Some(r.forwarding.as_str()));
                prop_assert_eq!(rule_text(&p, Rule::weight).map(|w| w.parse::<u32>().ok()), r.weight.map(Some));
                prop_assert!(rule_text(&p, Rule::check_pair).is_none());
            }
        }
    }

    #[test]
    fn the_usual_real_line_takes_the_fast_path() {
        let r = real("10.0.0.11:80 masq 5").unwrap();
        assert_eq!(r.addr, Ipv4Addr::new(10, 0, 0, 11));
        assert_eq!(r.port, Some((80, 10, 12)));
        assert_eq!(r.forwarding, Forwarding::Masq);
        assert_eq!(r.weight, Some(5));
        assert_eq!(real("10.0.0.11 gate").map(|r| r.port), Some(None));
        for slow in [
            "10.0.0.11:80 gate 1 l:5",
            "10.0.0.1->10.0.0.4:80 gate",
            "web1:80 gate",
            "10.0.0.11:80 gate 70000",
            "10.0.0.11:http gate",
        ] {
            assert_eq!(real(slow), None, "{slow}");
        }
    }
}
