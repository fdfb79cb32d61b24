//! How event and span fields are written in the text and journald log formats: like
//! tracing-subscriber's default (`message` first, then `name=value`), but with every control
//! and bidi character escaped by [`crate::text::printable`], so that one event is always one
//! line. tracing-subscriber 0.3.23 escapes only ESC, BEL, BS, FF, DEL and C1 and only in the
//! message: a file name logged with `%` kept its newline (a forged log line, under journald a
//! forged `<0>` emergency entry), its NUL and its U+202E.
//!
//! The JSON format needs none of this: serde_json escapes every control character; the bidi
//! overrides it leaves as they are are handled by [`BidiEscaping`].

use std::fmt::{self, Write as _};
use std::io;

use tracing::field::{Field, Visit};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::FormatFields;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::fmt::format::Writer;

use crate::text::printable;

pub struct EscapedFields;

impl<'w> FormatFields<'w> for EscapedFields {
    fn format_fields<R: RecordFields>(&self, mut writer: Writer<'w>, fields: R) -> fmt::Result {
        let mut visitor = Visitor { out: String::new() };
        fields.record(&mut visitor);
        writer.write_str(&visitor.out)
    }

    fn add_fields(
        &self,
        current: &'w mut tracing_subscriber::fmt::FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        if !current.fields.is_empty() {
            current.fields.push(' ');
        }
        self.format_fields(current.as_writer(), fields)
    }
}

struct Visitor {
    out: String,
}

impl Visitor {
    fn push(&mut self, field: &Field, value: fmt::Arguments<'_>) {
        if !self.out.is_empty() {
            self.out.push(' ');
        }
        let name = field.name();
        if name != "message" {
            self.out.push_str(name.strip_prefix("r#").unwrap_or(name));
            self.out.push('=');
        }
        let text = value.to_string();
        self.out.push_str(&printable(&text));
    }
}

impl Visit for Visitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.push(field, format_args!("{value}"));
        } else {
            self.push(field, format_args!("{value:?}"));
        }
    }

    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        // The whole chain, as `{:#}` of an anyhow error gives it: "what: why: deeper why".
        let mut text = value.to_string();
        let mut source = value.source();
        while let Some(s) = source {
            let _ = write!(text, ": {s}");
            source = s.source();
        }
        self.push(field, format_args!("{text}"));
    }

    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.push(field, format_args!("{value:?}"));
    }
}

/// The JSON log's writer: serde_json escapes every control character but writes the
/// bidirectional overrides (U+202E and friends) as they are, and they reorder what a person
/// reading the log in a terminal sees. They can only occur inside JSON strings, where `\uXXXX`
/// means the same character, so they are rewritten so on the way out.
pub struct BidiEscaping<M>(pub M);

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for BidiEscaping<M> {
    type Writer = BidiWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        BidiWriter(self.0.make_writer())
    }
}

pub struct BidiWriter<W>(W);

impl<W: io::Write> io::Write for BidiWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        // The formatter writes each event whole (one `write_all` of its buffer), so a
        // three-byte character is never split between two calls.
        let Some(first) = memchr::memchr(0xe2, buf) else {
            return self.0.write_all(buf).map(|()| buf.len());
        };
        let mut out = Vec::with_capacity(buf.len() + 16);
        out.extend_from_slice(&buf[..first]);
        let mut i = first;
        while i < buf.len() {
            if let [0xe2, b1, b2, ..] = buf[i..] {
                let code = 0x2000 + (u32::from(b1 & 0x3f) << 6) + u32::from(b2 & 0x3f);
                if matches!(code, 0x200e | 0x200f | 0x202a..=0x202e | 0x2066..=0x2069) && b1 & 0xc0 == 0x80 {
                    out.extend_from_slice(format!("\\u{code:04x}").as_bytes());
                    i += 3;
                    continue;
                }
            }
            out.push(buf[i]);
            i += 1;
        }
        self.0.write_all(&out).map(|()| buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.0.flush()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn bidi_overrides_become_json_escapes() {
        let mut w = BidiWriter(Vec::new());
        w.write_all("{\"t\":\"a\u{202e}b – \u{2066}c\"}\n".as_bytes()).unwrap();
        let out = String::from_utf8(w.0).unwrap();
        assert_eq!(out, "{\"t\":\"a\\u202eb – \\u2066c\"}\n");
        let v: serde_json::Value = serde_json::from_str(&out).unwrap();
        assert_eq!(v["t"], "a\u{202e}b – \u{2066}c");
    }
}
