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
    c.is_control() || is_bidi_control(c)
}

/// The bidirectional marks and overrides, which reorder what a reader sees (`invoice\u{202e}fdp.exe`).
fn is_bidi_control(c: char) -> bool {
    matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}')
}

/// `s` as one line of plain text, for a mail header or a one-line field of a chat message: line
/// breaks and tabs (and the Unicode line and paragraph separators) become spaces, other control
/// characters (ESC, BEL, NUL, C1) and bidirectional overrides are dropped, and runs of
/// whitespace are one space. A line break in an incident title must not start a forged line.
pub fn one_line(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut space = false;
    for c in s.chars() {
        if c.is_whitespace() {
            space = !out.is_empty();
        } else if c.is_control() || is_bidi_control(c) {
            continue;
        } else {
            if space {
                out.push(' ');
                space = false;
            }
            out.push(c);
        }
    }
    out
}

/// `s` cut to at most `max` characters (not bytes: never inside a character), the last being
/// an ellipsis when anything was cut.
pub fn clip(s: &str, max: usize) -> Cow<'_, str> {
    if s.chars().count() <= max {
        return Cow::Borrowed(s);
    }
    let kept: String = s.chars().take(max.saturating_sub(1)).collect();
    Cow::Owned(format!("{}…", kept.trim_end()))
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

    #[test]
    fn one_line_drops_controls_and_joins_lines() {
        assert_eq!(one_line("  a\r\n- b\tc\u{2028}d  "), "a - b c d");
        assert_eq!(one_line("\u{1b}[31mred\u{7}\u{9b} x"), "[31mred x");
        assert_eq!(one_line("invoice\u{202e}fdp.exe"), "invoicefdp.exe");
        assert_eq!(one_line("Zürich – ok"), "Zürich – ok");
    }

    #[test]
    fn clip_cuts_on_a_character_boundary_with_an_ellipsis() {
        assert!(matches!(clip("short", 10), Cow::Borrowed("short")));
        assert_eq!(clip("ääääää", 4), "äää…");
        assert_eq!(clip("ab cd", 4), "ab…");
        assert_eq!(clip(&"🦀".repeat(300), 200).chars().count(), 200);
    }
}
