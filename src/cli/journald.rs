//! Log lines as journald shows them best: a syslog priority prefix (`<3>` error … `<7>` debug,
//! which journald turns into the entry's priority, so `journalctl -p warning` works), no
//! timestamp (journald records its own) and no colours, then the spans and the event's fields.
//!
//! journald starts an entry at every newline and takes a leading `<N>` as its priority: a
//! newline inside a field (a file name, an incident title, a remote error text) would forge an
//! entry, `<0>` an emergency. So everything after the prefix is escaped
//! ([`crate::text::printable`]), whatever the field formatter did: one event, one line.

use std::fmt::{self, Write as _};

use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

pub struct Journald;

fn priority(level: &Level) -> u8 {
    match *level {
        Level::ERROR => 3,
        Level::WARN => 4,
        Level::INFO => 6,
        _ => 7,
    }
}

impl<S, N> FormatEvent<S, N> for Journald
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, ctx: &FmtContext<'_, S, N>, mut writer: Writer<'_>, event: &Event<'_>) -> fmt::Result {
        let meta = event.metadata();
        let mut line = String::new();
        if let Some(scope) = ctx.event_scope() {
            for span in scope.from_root() {
                line.push_str(span.name());
                if let Some(fields) = span.extensions().get::<FormattedFields<N>>()
                    && !fields.is_empty()
                {
                    write!(line, "{{{fields}}}")?;
                }
                line.push_str(": ");
            }
        }
        ctx.field_format().format_fields(Writer::new(&mut line), event)?;
        writeln!(writer, "<{}>{}: {}", priority(meta.level()), meta.target(), crate::text::printable(&line))
    }
}
