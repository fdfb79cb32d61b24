//! Small network rules shared by the Graph source, the Entra ID sign-in client and the
//! destinations, so that each is decided once: how long a server's `Retry-After` makes us wait,
//! which hosts count as loopback, and which addresses a webhook may be sent to.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
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

/// Host names of cloud instance-metadata services (GCE's, AWS's), refused whatever they
/// resolve to. Azure's IMDS has no name: its address, 169.254.169.254, is link-local.
pub const METADATA_HOSTS: &[&str] =
    &["metadata.google.internal", "metadata.goog", "metadata", "instance-data", "instance-data.ec2.internal"];

/// Where a webhook may be sent: what a destination opts into beyond public addresses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AddressPolicy {
    /// 10/8, 172.16/12, 192.168/16, 100.64/10 (carrier-grade NAT), fc00::/7 (`allow_private`).
    pub allow_private: bool,
    /// 127/8 and ::1 reached through a host name: set when the URL names `localhost` or the
    /// destination has `insecure_loopback = true`, so that a receiver's DNS cannot point the
    /// daemon at services on its own machine. A loopback address written in the URL is always
    /// allowed; plain HTTP has its own rule ([`https_or_loopback`]).
    pub allow_loopback: bool,
}

/// A webhook destination refused by its address: never sent to, whatever the receiver says.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

/// What kind of address `ip` is, for [`AddressPolicy`]: `None` for a public address, else a
/// few words on why it is special.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Special {
    Loopback,
    Private,
    /// Never a webhook: link-local (169.254/16 holds the clouds' metadata services), the
    /// unspecified address (which reaches this machine), multicast and broadcast.
    Forbidden(&'static str),
}

pub fn special(ip: IpAddr) -> Option<Special> {
    match ip {
        IpAddr::V4(a) => special_v4(a),
        IpAddr::V6(a) => {
            // An IPv4 address written as IPv6 (::ffff:169.254.169.254, or NAT64's 64:ff9b::/96)
            // reaches that IPv4 address.
            if let Some(v4) = a.to_ipv4_mapped() {
                return special_v4(v4);
            }
            let s = a.segments();
            if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
                return special_v4(Ipv4Addr::from(((s[6] as u32) << 16) | s[7] as u32));
            }
            if a.is_loopback() {
                Some(Special::Loopback)
            } else if a.is_unspecified() {
                Some(Special::Forbidden("the unspecified address"))
            } else if s[0] & 0xffc0 == 0xfe80 {
                Some(Special::Forbidden("a link-local address"))
            } else if a.is_multicast() {
                Some(Special::Forbidden("a multicast address"))
            } else if a == Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254) {
                Some(Special::Forbidden("a cloud metadata address"))
            } else if s[0] & 0xfe00 == 0xfc00 {
                Some(Special::Private)
            } else {
                None
            }
        }
    }
}

fn special_v4(a: Ipv4Addr) -> Option<Special> {
    let o = a.octets();
    if a.is_loopback() {
        Some(Special::Loopback)
    } else if o[0] == 0 {
        Some(Special::Forbidden("the unspecified address"))
    } else if a.is_link_local() {
        Some(Special::Forbidden("a link-local address (where clouds serve instance metadata)"))
    } else if a.is_multicast() || a.is_broadcast() {
        Some(Special::Forbidden("a multicast or broadcast address"))
    } else if o == [100, 100, 100, 200] {
        Some(Special::Forbidden("a cloud metadata address"))
    } else if a.is_private() || (o[0] == 100 && o[1] & 0xc0 == 64) {
        Some(Special::Private)
    } else {
        None
    }
}

impl AddressPolicy {
    /// Whether a webhook may go to `ip`, reached as `host`; the reason if not.
    pub fn check(&self, host: &str, ip: IpAddr) -> Result<(), Refused> {
        let via = if host == ip.to_string() { String::new() } else { format!("{host} resolves to ") };
        match special(ip) {
            None => Ok(()),
            Some(Special::Loopback) if self.allow_loopback => Ok(()),
            Some(Special::Loopback) => {
                Err(Refused(format!("{via}{ip}, a loopback address: allowed only with insecure_loopback = true")))
            }
            Some(Special::Private) if self.allow_private => Ok(()),
            Some(Special::Private) => Err(Refused(format!(
                "{via}{ip}, a private address: set allow_private = true if the receiver is on your network"
            ))),
            Some(Special::Forbidden(what)) => Err(Refused(format!("{via}{ip}, {what}: webhooks never go there"))),
        }
    }

    /// Whether a webhook may go to the host of its URL as written: an address is checked as
    /// such (a loopback address is allowed: the URL says so), a name only against
    /// [`METADATA_HOSTS`]; names are resolved when used ([`Guard`]).
    pub fn check_url_host(&self, host: &url::Host<&str>) -> Result<(), Refused> {
        let literal = AddressPolicy { allow_loopback: true, ..*self };
        match host {
            url::Host::Ipv4(a) => literal.check(&a.to_string(), IpAddr::V4(*a)),
            url::Host::Ipv6(a) => literal.check(&a.to_string(), IpAddr::V6(*a)),
            url::Host::Domain(d) => {
                let name = d.trim_end_matches('.').to_ascii_lowercase();
                if METADATA_HOSTS.contains(&name.as_str()) {
                    Err(Refused(format!("{d} is a cloud metadata service: webhooks never go there")))
                } else {
                    Ok(())
                }
            }
        }
    }

    /// Every address `host` resolved to, if all of them are allowed; a name that resolves to
    /// one forbidden address is refused as a whole (no picking the harmless one: the name
    /// points somewhere it should not). `localhost` is taken at what it resolves to, which must
    /// be loopback only, not at its name.
    pub fn check_resolved(&self, host: &str, addrs: &[SocketAddr]) -> Result<(), Refused> {
        if addrs.is_empty() {
            return Err(Refused(format!("{host} resolves to no address")));
        }
        for a in addrs {
            if host.eq_ignore_ascii_case("localhost") && special(a.ip()) != Some(Special::Loopback) {
                return Err(Refused(format!("localhost resolves to {}, not a loopback address", a.ip())));
            }
            self.check(host, a.ip())?;
        }
        Ok(())
    }
}

/// The resolver of a webhook's HTTP client: the system's (`getaddrinfo`, through tokio), then
/// [`AddressPolicy::check_resolved`]. The connection goes only to the addresses checked, so a
/// name cannot resolve to one address for the check and another for the request. Addresses
/// written in the URL do not come here; they are checked with the configuration.
#[derive(Debug, Clone, Copy)]
pub struct Guard(pub AddressPolicy);

impl reqwest::dns::Resolve for Guard {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let policy = self.0;
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            policy.check_resolved(&host, &addrs)?;
            Ok(Box::new(addrs.into_iter()) as reqwest::dns::Addrs)
        })
    }
}

/// The [`Refused`] behind a failed request, if that is why it failed.
pub fn refused<'a>(e: &'a (dyn std::error::Error + 'static)) -> Option<&'a Refused> {
    let mut cur = Some(e);
    while let Some(err) = cur {
        if let Some(r) = err.downcast_ref::<Refused>() {
            return Some(r);
        }
        cur = err.source();
    }
    None
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
    fn special_addresses() {
        let kind = |s: &str| special(s.parse().unwrap());
        for a in [
            "169.254.169.254",
            "169.254.0.1",
            "fe80::1",
            "febf::1",
            "::ffff:169.254.169.254",
            "64:ff9b::a9fe:a9fe",
            "0.0.0.0",
            "::",
            "100.100.100.200",
            "fd00:ec2::254",
            "224.0.0.1",
            "255.255.255.255",
            "ff02::1",
        ] {
            assert!(matches!(kind(a), Some(Special::Forbidden(_))), "{a}");
        }
        for a in [
            "10.0.0.1",
            "172.16.0.1",
            "172.31.255.255",
            "192.168.1.1",
            "100.64.0.1",
            "fc00::1",
            "fd12:3456::1",
            "::ffff:10.1.2.3",
        ] {
            assert_eq!(kind(a), Some(Special::Private), "{a}");
        }
        for a in ["127.0.0.1", "127.9.9.9", "::1", "::ffff:127.0.0.1"] {
            assert_eq!(kind(a), Some(Special::Loopback), "{a}");
        }
        for a in ["203.0.113.10", "172.32.0.1", "100.128.0.1", "8.8.8.8", "2001:db8::1", "fec0::1"] {
            assert_eq!(kind(a), None, "{a}");
        }
    }

    #[test]
    fn resolved_addresses_are_checked_by_the_policy() {
        let strict = AddressPolicy { allow_private: false, allow_loopback: false };
        let at = |s: &str| vec![SocketAddr::new(s.parse().unwrap(), 443)];
        let e = strict.check_resolved("hooks.example.com", &at("169.254.169.254")).unwrap_err();
        assert!(e.0.starts_with("hooks.example.com resolves to 169.254.169.254, a link-local"), "{e}");
        let e = strict.check_resolved("hooks.example.com", &at("10.1.2.3")).unwrap_err();
        assert!(e.0.contains("allow_private = true"), "{e}");
        AddressPolicy { allow_private: true, ..strict }.check_resolved("hooks.example.com", &at("10.1.2.3")).unwrap();
        assert!(strict.check_resolved("hooks.example.com", &at("127.0.0.1")).is_err(), "DNS pointing at this machine");
        // One bad address among good ones refuses the name.
        let mixed = [at("203.0.113.10"), at("169.254.169.254")].concat();
        assert!(strict.check_resolved("hooks.example.com", &mixed).is_err());
        strict.check_resolved("hooks.example.com", &at("203.0.113.10")).unwrap();
        // localhost is taken at what it resolves to, not at its name.
        let local = AddressPolicy { allow_loopback: true, allow_private: true };
        local.check_resolved("localhost", &at("127.0.0.1")).unwrap();
        let e = local.check_resolved("LocalHost", &at("10.0.0.1")).unwrap_err();
        assert!(e.0.contains("not a loopback address"), "{e}");
        assert!(strict.check_resolved("hooks.example.com", &[]).is_err());
    }

    #[tokio::test]
    async fn the_guard_resolves_then_decides_and_a_refused_request_is_never_sent() {
        use reqwest::dns::Resolve;
        let name = |s: &str| s.parse::<reqwest::dns::Name>().unwrap();
        let allowed = Guard(AddressPolicy { allow_private: false, allow_loopback: true });
        let addrs: Vec<SocketAddr> = allowed.resolve(name("localhost")).await.unwrap().collect();
        assert!(!addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()), "{addrs:?}");
        // localhost resolves (here) to loopback, which this destination does not allow: the
        // request is refused after the lookup, before any connection.
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let strict = Guard(AddressPolicy { allow_private: false, allow_loopback: false });
        crate::install_crypto_provider();
        crate::install_crypto_provider();
        let client = reqwest::Client::builder().dns_resolver(strict).build().unwrap();
        let e = client.get(format!("http://localhost:{port}/")).send().await.unwrap_err();
        let why = refused(&e).unwrap_or_else(|| panic!("not a refusal: {e:?}"));
        assert!(why.0.starts_with("localhost resolves to 127.0.0.1, a loopback address"), "{why}");
        assert!(listener.accept().is_err(), "no connection was made");
    }

    #[test]
    fn url_hosts_as_written() {
        let p = AddressPolicy { allow_private: false, allow_loopback: false };
        let check = |u: &str| p.check_url_host(&url::Url::parse(u).unwrap().host().unwrap());
        for bad in [
            "https://169.254.169.254/",
            "https://[fe80::1]/",
            "https://metadata.google.internal./",
            "https://0.0.0.0/",
            "https://10.0.0.1/",
        ] {
            assert!(check(bad).is_err(), "{bad}");
        }
        for good in ["https://127.0.0.1/", "https://[::1]/", "https://hooks.example.com/", "https://localhost/"] {
            assert!(check(good).is_ok(), "{good}");
        }
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
