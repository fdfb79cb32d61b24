//! Small network rules shared by the Graph source, the Entra ID sign-in client and the
//! destinations, so that each is decided once: how long a server's `Retry-After` makes us wait,
//! and which hosts count as loopback.

use std::net::IpAddr;
use std::time::Duration;

use chrono::{DateTime, NaiveDateTime, Utc};

/// The longest wait a `Retry-After` can ask for. Real answers are seconds (Graph sends a few,
/// fractional: `2.128`) to minutes (Power Automate and Logic Apps throttling). An hour is well
/// above those, and it bounds what a garbled or hostile value (`1e9`, a date years ahead, a
/// proxy's clock far off) can do: it must not park a source for a day, nor push a
/// notification past its delivery budget (24 h) and so dead-letter it on the spot. After the
/// hour the server is simply asked again and can say so again. Callers clamp further with their
/// own settings (the Graph source's `retry_max`).
pub const RETRY_AFTER_CAP: Duration = Duration::from_secs(3600);

/// How long a `Retry-After` value asks us to wait, at most [`RETRY_AFTER_CAP`]: delay-seconds
/// (fractions accepted, as Graph sends them) or an HTTP-date (RFC 9110 §10.2.3, any of its three
/// formats), measured from `now`; a date already past means "now". `None` for anything else, so
/// that the caller falls back on its own back-off.
pub fn retry_after(value: &str, now: DateTime<Utc>) -> Option<Duration> {
    let value = value.trim();
    if let Ok(secs) = value.parse::<f64>() {
        return (secs.is_finite() && secs >= 0.0)
            .then(|| Duration::from_secs_f64(secs.min(RETRY_AFTER_CAP.as_secs_f64())));
    }
    let at = http_date(value)?;
    Some((at - now).to_std().unwrap_or(Duration::ZERO).min(RETRY_AFTER_CAP))
}

/// The `Retry-After` header of a response, if it holds a usable value (see [`retry_after`]).
pub fn retry_after_header(headers: &reqwest::header::HeaderMap, now: DateTime<Utc>) -> Option<Duration> {
    headers.get(reqwest::header::RETRY_AFTER).and_then(|v| v.to_str().ok()).and_then(|v| retry_after(v, now))
}

/// IMF-fixdate (`Sun, 06 Nov 1994 08:49:37 GMT`), and the obsolete RFC 850
/// (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime (`Sun Nov  6 08:49:37 1994`) forms that a
/// recipient must still accept.
fn http_date(v: &str) -> Option<DateTime<Utc>> {
    if let Ok(d) = DateTime::parse_from_rfc2822(v) {
        return Some(d.with_timezone(&Utc));
    }
    let asctime = v.split_whitespace().collect::<Vec<_>>().join(" ");
    NaiveDateTime::parse_from_str(v, "%A, %d-%b-%y %H:%M:%S GMT")
        .or_else(|_| NaiveDateTime::parse_from_str(&asctime, "%a %b %e %H:%M:%S %Y"))
        .ok()
        .map(|d| d.and_utc())
}

/// Whether `host` names this machine: `localhost` by name, any address of 127.0.0.0/8, and `::1`
/// (bracketed as in a URL or not; also written IPv4-mapped). Used to allow plain text only where
/// it never leaves the machine (an SMTP relay on the host, a local webhook receiver in tests).
/// `localhost` is taken at its name, as `/etc/hosts` has it, without a lookup.
pub fn is_loopback(host: &str) -> bool {
    if host.eq_ignore_ascii_case("localhost") {
        return true;
    }
    let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
    match bare.parse::<IpAddr>() {
        Ok(IpAddr::V4(a)) => a.is_loopback(),
        Ok(IpAddr::V6(a)) => a.is_loopback() || a.to_ipv4_mapped().is_some_and(|a| a.is_loopback()),
        Err(_) => false,
    }
}

/// Whether `url` may carry a credential or a review: `https://`, or plain `http://` to a
/// loopback address when the table opts in with `insecure_loopback = true` (local receivers,
/// tests). The message says what to change and never repeats the URL, which may be a secret.
pub fn https_or_loopback(url: &url::Url, insecure_loopback: bool) -> Result<(), &'static str> {
    let loopback = url.host_str().is_some_and(is_loopback);
    match url.scheme() {
        "https" => Ok(()),
        "http" if loopback && insecure_loopback => Ok(()),
        "http" if loopback => Err("plain http needs insecure_loopback = true"),
        _ => Err("must be https://"),
    }
}

/// A failed request in a few words, its causes included ("could not connect: error sending
/// request: ... Connection refused"). The URL is left out: a webhook's carries its signature,
/// and the kind and cause are what a reader needs.
pub fn transport_error(e: reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "transport error"
    };
    let e = e.without_url();
    let mut s = format!("{kind}: {e}");
    let mut cur = std::error::Error::source(&e);
    while let Some(inner) = cur {
        s += &format!(": {inner}");
        cur = inner.source();
    }
    s
}

/// Why a response body was not read.
#[derive(Debug)]
pub enum BodyError {
    TooLarge(u64),
    Read(String),
}

impl std::fmt::Display for BodyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            BodyError::TooLarge(limit) => write!(f, "response larger than {limit} bytes"),
            BodyError::Read(why) => f.write_str(why),
        }
    }
}

/// The body, read in chunks and given up on as soon as it passes `limit`: an oversized answer
/// never sits in memory whole.
pub async fn read_limited(mut resp: reqwest::Response, limit: u64) -> Result<Vec<u8>, BodyError> {
    if resp.content_length().is_some_and(|n| n > limit) {
        return Err(BodyError::TooLarge(limit));
    }
    let mut body = Vec::new();
    loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => {
                if body.len() as u64 + chunk.len() as u64 > limit {
                    return Err(BodyError::TooLarge(limit));
                }
                body.extend_from_slice(&chunk);
            }
            Ok(None) => return Ok(body),
            Err(e) => return Err(BodyError::Read(format!("reading the response failed: {}", e.without_url()))),
        }
    }
}

/// The start of a body that is not the expected JSON, on one line, for an error message.
pub fn snippet(body: &[u8]) -> String {
    let s = String::from_utf8_lossy(&body[..body.len().min(200)]);
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn now() -> DateTime<Utc> {
        "2026-10-21T07:28:00Z".parse().unwrap()
    }

    #[test]
    fn retry_after_in_seconds_fractional_too() {
        assert_eq!(retry_after("2.128", now()), Some(Duration::from_millis(2128)));
        assert_eq!(retry_after(" 7 ", now()), Some(Duration::from_secs(7)));
        assert_eq!(retry_after("0", now()), Some(Duration::ZERO));
        assert_eq!(retry_after("-1", now()), None);
        assert_eq!(retry_after("NaN", now()), None);
        assert_eq!(retry_after("inf", now()), None);
        assert_eq!(retry_after("", now()), None);
        assert_eq!(retry_after("soon", now()), None);
    }

    #[test]
    fn retry_after_as_an_http_date_in_all_three_forms() {
        assert_eq!(retry_after("Wed, 21 Oct 2026 07:28:30 GMT", now()), Some(Duration::from_secs(30)));
        assert_eq!(retry_after("Wednesday, 21-Oct-26 07:29:00 GMT", now()), Some(Duration::from_secs(60)));
        assert_eq!(retry_after("Wed Oct 21 07:30:00 2026", now()), Some(Duration::from_secs(120)));
        assert_eq!(retry_after("Thu Oct  1 07:30:00 2026", now()), Some(Duration::ZERO), "single-digit day");
        // Already past: go now rather than fall back on a back-off.
        assert_eq!(retry_after("Tue, 20 Oct 2026 07:28:00 GMT", now()), Some(Duration::ZERO));
    }

    #[test]
    fn retry_after_is_capped_at_an_hour_in_both_forms() {
        assert_eq!(retry_after("1e9", now()), Some(RETRY_AFTER_CAP));
        assert_eq!(retry_after("86400", now()), Some(RETRY_AFTER_CAP));
        assert_eq!(retry_after("3599.5", now()), Some(Duration::from_millis(3_599_500)));
        assert_eq!(retry_after("Thu, 21 Oct 2027 07:28:00 GMT", now()), Some(RETRY_AFTER_CAP));
    }

    #[test]
    fn retry_after_header_reads_the_response() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(retry_after_header(&h, now()), None);
        h.insert(reqwest::header::RETRY_AFTER, "2.5".parse().unwrap());
        assert_eq!(retry_after_header(&h, now()), Some(Duration::from_millis(2500)));
    }

    #[test]
    fn loopback_hosts() {
        for h in [
            "localhost",
            "LocalHost",
            "127.0.0.1",
            "127.1.2.3",
            "127.255.255.254",
            "::1",
            "[::1]",
            "[::ffff:127.0.0.1]",
        ] {
            assert!(is_loopback(h), "{h}");
        }
        for h in [
            "",
            "example.com",
            "localhost.example.com",
            "mylocalhost",
            "128.0.0.1",
            "10.0.0.1",
            "0.0.0.0",
            "169.254.169.254",
            "::",
            "[::2]",
            "[::1",
            "::ffff:10.0.0.1",
        ] {
            assert!(!is_loopback(h), "{h}");
        }
    }
}
