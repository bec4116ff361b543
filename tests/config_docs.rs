//! `man/ldirectord.cf.5` documents every directive the reader knows.

use ldirectord::config::directives::DIRECTIVES;

#[test]
fn the_man_page_documents_every_directive() {
    let man = std::fs::read_to_string("man/ldirectord.cf.5").expect("man/ldirectord.cf.5");
    // Entry lines: `.BI "name = " …`, `.BR "name = " …` or `\fBname = …`.
    let entries: Vec<&str> = man
        .lines()
        .filter(|l| l.starts_with(".B") || l.starts_with("\\fB"))
        .collect();
    for d in DIRECTIVES {
        let quoted = format!("\"{} = ", d.name);
        let escaped = format!("\\fB{} = ", d.name);
        assert!(
            entries
                .iter()
                .any(|l| l.contains(&quoted) || l.contains(&escaped)),
            "man/ldirectord.cf.5 has no entry for `{}`",
            d.name
        );
    }
}
