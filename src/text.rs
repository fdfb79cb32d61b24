//! Text from outside (incident titles, file names, error messages of remote services) made safe
//! to print on a terminal or in a log line: control characters — ESC (terminal escapes, OSC 8
//! links, OSC 52 clipboard writes), CR/LF (forged lines), NUL, and the bidirectional overrides
//! (U+202E and friends, which reorder what a reader sees) — are written as visible escapes.

use std::borrow::Cow;

/// `s` with every control and bidirectional-formatting character escaped (`\u{1b}`), as one
/// line. Plain text is returned as it is, without a copy.
pub fn printable(s: &str) -> Cow<'_, str> {
    if !s.chars().any(needs_escape) {
        return Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        if needs_escape(c) {
            out.extend(c.escape_unicode());
        } else {
            out.push(c);
        }
    }
    Cow::Owned(out)
}

fn needs_escape(c: char) -> bool {
    c.is_control() || matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_what_a_terminal_or_a_log_would_act_on() {
        assert!(matches!(printable("Suspicious sign-in from 203.0.113.7"), Cow::Borrowed(_)));
        assert_eq!(printable("a\nb"), "a\\u{a}b");
        assert_eq!(printable("\u{1b}]52;c;aGk=\u{7}"), "\\u{1b}]52;c;aGk=\\u{7}");
        assert_eq!(printable("invoice\u{202e}fdp.exe"), "invoice\\u{202e}fdp.exe");
        assert_eq!(printable("nul\0"), "nul\\u{0}");
        assert_eq!(printable("Zürich – ok"), "Zürich – ok");
    }
}
