//! Where webhooks may go and how they are signed: a campaign's endpoint ([`WebhookUrl`]),
//! the signing secret ([`WebhookSecret`]) and the destination policy ([`Destinations`]).
//!
//! The policy is checked twice: at launch, on the URL's host and the addresses it resolves
//! to, and by the worker on every connection, on the address it is about to connect to, so
//! that DNS cannot turn a public name into `127.0.0.1` between the two.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

use base64::{Engine, engine::general_purpose::STANDARD as BASE64};
use ipnet::IpNet;
use serde::{Deserialize, Serialize};

use crate::{InvalidInput, types::invalid};

/// A webhook campaign's endpoint: an absolute `http` or `https` URL with a host and no
/// credentials, at most 2,048 characters, as the `url` crate (WHATWG) parses it. It is part
/// of the campaign's spec (and so of its workflow history): put no credentials in it;
/// requests are signed with `HERALD_WEBHOOK_SECRET` instead.
#[derive(Clone, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct WebhookUrl {
    /// As the operator wrote it: what the report shows.
    given: String,
    /// Parsed once: a worker sends to it for every recipient.
    url: url::Url,
}

impl WebhookUrl {
    pub const MAX_LEN: usize = 2_048;

    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        let s = s.trim();
        if s.len() > Self::MAX_LEN {
            return Err(invalid(format!(
                "the webhook URL is {} characters; the limit is {}",
                s.len(),
                Self::MAX_LEN
            )));
        }
        if s.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(invalid(format!(
                "the webhook URL {s:?} must not contain whitespace"
            )));
        }
        let url = url::Url::parse(s)
            .map_err(|e| invalid(format!("the webhook URL {s:?} is not a URL: {e}")))?;
        let after_scheme = s
            .get(url.scheme().len()..)
            .and_then(|rest| rest.strip_prefix("://"));
        if !matches!(url.scheme(), "http" | "https") || after_scheme.is_none() {
            return Err(invalid(format!(
                "the webhook URL {s:?} must start with http:// or https://"
            )));
        }
        // WHATWG reads `http:///x` as `http://x/`: a host must follow the two slashes.
        if after_scheme.is_some_and(|rest| rest.starts_with(['/', '\\'])) {
            return Err(invalid(format!("the webhook URL {s:?} has no host")));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(invalid(
                "the webhook URL must not hold credentials (it is stored in the campaign); \
                 requests are signed with HERALD_WEBHOOK_SECRET",
            ));
        }
        if url.host().is_none() {
            return Err(invalid(format!("the webhook URL {s:?} has no host")));
        }
        Ok(Self {
            given: s.to_owned(),
            url,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.given
    }

    pub fn url(&self) -> &url::Url {
        &self.url
    }

    /// The host as given (a name, or an address without its brackets), and the port,
    /// explicit or the scheme's.
    pub fn host_port(&self) -> (Host, u16) {
        let port = self.url.port_or_known_default().unwrap_or(80);
        let host = match self.url.host().expect("a WebhookUrl has a host") {
            url::Host::Domain(d) => Host::Name(d.trim_end_matches('.').to_ascii_lowercase()),
            url::Host::Ipv4(a) => Host::Ip(IpAddr::V4(a)),
            url::Host::Ipv6(a) => Host::Ip(IpAddr::V6(a)),
        };
        (host, port)
    }
}

/// A URL's host: a name to resolve, or an address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Host {
    Name(String),
    Ip(IpAddr),
}

impl TryFrom<String> for WebhookUrl {
    type Error = InvalidInput;
    fn try_from(s: String) -> Result<Self, InvalidInput> {
        Self::parse(&s)
    }
}

impl From<WebhookUrl> for String {
    fn from(u: WebhookUrl) -> String {
        u.given
    }
}

impl std::fmt::Display for WebhookUrl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.given)
    }
}

impl std::str::FromStr for WebhookUrl {
    type Err = InvalidInput;
    fn from_str(s: &str) -> Result<Self, InvalidInput> {
        Self::parse(s)
    }
}

/// The key that signs webhook requests, as the Standard Webhooks libraries read it: `whsec_`
/// followed by the base64 of 24 to 64 random bytes. Its `Debug` shows no key.
#[derive(Clone, PartialEq, Eq)]
pub struct WebhookSecret(Vec<u8>);

impl WebhookSecret {
    /// How to make one, for error messages and the docs.
    pub const MAKE: &str = "echo \"whsec_$(openssl rand -base64 32)\"";

    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        let refuse = |why: &str| {
            invalid(format!(
                "HERALD_WEBHOOK_SECRET {why}: it must be whsec_ and the base64 of 24 to 64 \
                 random bytes, as the Standard Webhooks libraries read it; make one with `{}`",
                Self::MAKE
            ))
        };
        let b64 = s
            .trim()
            .strip_prefix("whsec_")
            .ok_or_else(|| refuse("does not start with whsec_"))?;
        let key = BASE64
            .decode(b64)
            .map_err(|_| refuse("is not base64 after whsec_"))?;
        if !(24..=64).contains(&key.len()) {
            return Err(refuse(&format!("holds {} bytes", key.len())));
        }
        Ok(Self(key))
    }

    /// The HMAC-SHA256 key.
    pub fn key(&self) -> &[u8] {
        &self.0
    }
}

impl std::fmt::Debug for WebhookSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "WebhookSecret({} bytes)", self.0.len())
    }
}

impl std::str::FromStr for WebhookSecret {
    type Err = InvalidInput;
    fn from_str(s: &str) -> Result<Self, InvalidInput> {
        Self::parse(s)
    }
}

/// Which addresses webhooks may reach (`HERALD_WEBHOOK_ALLOW`): a comma-separated list of
/// host names (`hooks.example.com`, `*.example.com`), addresses and CIDR ranges
/// (`10.1.0.0/16`), and the words `public` (the default), `private`, `loopback` and `*`
/// (anything). A destination is allowed when its host name is listed, or when every address
/// it resolves to is. Link-local addresses (`169.254.169.254`, a cloud's metadata service),
/// unspecified, multicast and reserved ones are in no word but `*`: list their range to
/// allow them. The `host:port` Herald's own database and Temporal are reached at are refused
/// whatever the list says ([`Destinations::refuse_service`]).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Destinations {
    any: bool,
    public: bool,
    private: bool,
    loopback: bool,
    names: Vec<String>,
    /// Suffixes of `*.example.com` entries, with their dot: `.example.com`.
    suffixes: Vec<String>,
    ranges: Vec<IpNet>,
    /// Host and port of the services Herald itself uses.
    services: Vec<(Host, u16)>,
}

impl Default for Destinations {
    fn default() -> Self {
        Self::parse("public").expect("the default parses")
    }
}

/// Why a destination is refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct Refused(pub String);

impl Destinations {
    pub fn parse(s: &str) -> Result<Self, InvalidInput> {
        let mut d = Self {
            any: false,
            public: false,
            private: false,
            loopback: false,
            names: Vec::new(),
            suffixes: Vec::new(),
            ranges: Vec::new(),
            services: Vec::new(),
        };
        for entry in s.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let lower = entry.to_ascii_lowercase();
            match lower.as_str() {
                "*" => d.any = true,
                "public" => d.public = true,
                "private" => d.private = true,
                "loopback" => d.loopback = true,
                _ => {
                    if let Ok(net) = lower.parse::<IpNet>() {
                        d.ranges.push(net.trunc());
                    } else if let Ok(ip) = lower.parse::<IpAddr>() {
                        d.ranges.push(IpNet::from(ip));
                    } else if let Some(suffix) = lower.strip_prefix("*.")
                        && is_host_name(suffix)
                    {
                        d.suffixes.push(format!(".{suffix}"));
                    } else if is_host_name(&lower) {
                        d.names.push(lower.trim_end_matches('.').to_owned());
                    } else {
                        return Err(invalid(format!(
                            "HERALD_WEBHOOK_ALLOW: {entry:?} is not a host name, an address, a \
                             CIDR range, or one of public, private, loopback and *"
                        )));
                    }
                }
            }
        }
        if !(d.any || d.public || d.private || d.loopback)
            && d.names.is_empty()
            && d.suffixes.is_empty()
            && d.ranges.is_empty()
        {
            return Err(invalid(
                "HERALD_WEBHOOK_ALLOW is empty: webhooks could go nowhere; \
                 leave it unset for public addresses",
            ));
        }
        Ok(d)
    }

    /// The same policy, refusing also `host:port` of a service Herald uses.
    pub fn with_service(mut self, host: Host, port: u16) -> Self {
        self.services.push((host, port));
        self
    }

    /// Whether a host name is allowed by name (whatever it resolves to).
    pub fn allows_name(&self, name: &str) -> bool {
        let name = name.trim_end_matches('.').to_ascii_lowercase();
        self.any
            || self.names.iter().any(|n| *n == name)
            || self.suffixes.iter().any(|s| name.ends_with(s.as_str()))
    }

    /// Whether a connection to `ip` is allowed.
    pub fn allows_ip(&self, ip: IpAddr) -> bool {
        if self.any || self.ranges.iter().any(|r| r.contains(&ip)) {
            return true;
        }
        match class(ip) {
            Class::Public => self.public,
            Class::Private => self.private,
            Class::Loopback => self.loopback,
            Class::Special => false,
        }
    }

    /// Refuse `host:port` when it is one of Herald's own services.
    pub fn refuse_service(&self, host: &Host, port: u16) -> Result<(), Refused> {
        let same = |h: &Host| match (h, host) {
            (Host::Ip(a), Host::Ip(b)) => same_ip(*a, *b),
            (a, b) => a == b,
        };
        match self.services.iter().find(|(h, p)| *p == port && same(h)) {
            Some(_) => Err(Refused(format!(
                "{}:{port} is one of Herald's own services (its database or Temporal)",
                host_text(host)
            ))),
            None => Ok(()),
        }
    }

    /// Check a destination: its host, and the addresses it resolved to (empty for an
    /// address, or a name that did not resolve).
    pub fn check(&self, host: &Host, port: u16, resolved: &[IpAddr]) -> Result<(), Refused> {
        self.refuse_service(host, port)?;
        for ip in resolved {
            self.refuse_service(&Host::Ip(*ip), port)?;
        }
        match host {
            Host::Ip(ip) => self.check_ip(*ip),
            Host::Name(name) if self.allows_name(name) => Ok(()),
            Host::Name(name) => {
                if name == "localhost" || name.ends_with(".localhost") {
                    return self.check_ip(IpAddr::V4(Ipv4Addr::LOCALHOST));
                }
                resolved.iter().try_for_each(|ip| {
                    self.check_ip(*ip)
                        .map_err(|Refused(why)| Refused(format!("{name} resolves to {why}")))
                })
            }
        }
    }

    fn check_ip(&self, ip: IpAddr) -> Result<(), Refused> {
        if self.allows_ip(ip) {
            return Ok(());
        }
        let class = match class(ip) {
            Class::Public => "a public address",
            Class::Private => "a private address",
            Class::Loopback => "a loopback address",
            Class::Special => "a link-local, multicast or reserved address",
        };
        Err(Refused(format!(
            "{ip}, {class}, which HERALD_WEBHOOK_ALLOW does not allow"
        )))
    }
}

impl std::str::FromStr for Destinations {
    type Err = InvalidInput;
    fn from_str(s: &str) -> Result<Self, InvalidInput> {
        Self::parse(s)
    }
}

fn host_text(host: &Host) -> String {
    match host {
        Host::Name(n) => n.clone(),
        Host::Ip(IpAddr::V6(a)) => format!("[{a}]"),
        Host::Ip(a) => a.to_string(),
    }
}

fn is_host_name(s: &str) -> bool {
    let s = s.trim_end_matches('.');
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        })
}

fn same_ip(a: IpAddr, b: IpAddr) -> bool {
    canonical(a) == canonical(b)
}

/// An IPv6 address that carries an IPv4 one (mapped, NAT64, 6to4) as that address.
fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => match embedded_v4(v6) {
            Some(v4) => IpAddr::V4(v4),
            None => ip,
        },
        v4 => v4,
    }
}

fn embedded_v4(v6: Ipv6Addr) -> Option<Ipv4Addr> {
    let s = v6.segments();
    let octets = v6.octets();
    let tail = Ipv4Addr::new(octets[12], octets[13], octets[14], octets[15]);
    if let Some(v4) = v6.to_ipv4_mapped() {
        Some(v4)
    } else if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        Some(tail)
    } else if s[0] == 0x2002 {
        Some(Ipv4Addr::new(octets[2], octets[3], octets[4], octets[5]))
    } else {
        None
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Class {
    Public,
    Private,
    Loopback,
    /// Link-local, unspecified, multicast, broadcast, documentation, reserved.
    Special,
}

fn class(ip: IpAddr) -> Class {
    match canonical(ip) {
        IpAddr::V4(a) => {
            let [o0, o1, o2, _] = a.octets();
            if a.is_loopback() {
                Class::Loopback
            } else if a.is_private() || (o0 == 100 && (64..128).contains(&o1)) {
                Class::Private
            } else if a.is_link_local()
                || a.is_unspecified()
                || a.is_multicast()
                || a.is_broadcast()
                || a.is_documentation()
                || o0 == 0
                || o0 >= 240
                || (o0 == 192 && o1 == 0 && o2 == 0)
                || (o0 == 198 && (18..20).contains(&o1))
            {
                Class::Special
            } else {
                Class::Public
            }
        }
        IpAddr::V6(a) => {
            let s = a.segments();
            if a.is_loopback() {
                Class::Loopback
            } else if (s[0] & 0xfe00) == 0xfc00 {
                Class::Private
            } else if (s[0] & 0xe000) == 0x2000 && !(s[0] == 0x2001 && s[1] == 0xdb8) {
                // Global unicast (2000::/3), documentation aside.
                Class::Public
            } else {
                Class::Special
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    #[test]
    fn urls_parse_as_browsers_do() {
        for good in [
            "http://example.com/hook",
            "https://example.com:8443/a?b=c",
            "http://[::1]:8080/",
            "http://127.0.0.1:9/",
        ] {
            assert!(WebhookUrl::parse(good).is_ok(), "{good}");
        }
        for bad in [
            "http://example.com:abc/",
            "http://[::1",
            "http://example.com:99999/",
            "ftp://example.com/",
            "http://user:pw@example.com/",
            "http:///path",
            "http://exa mple.com/",
            "example.com/hook",
        ] {
            assert!(WebhookUrl::parse(bad).is_err(), "{bad}");
        }
        let url = WebhookUrl::parse("https://Hooks.Example.COM./x").unwrap();
        assert_eq!(
            url.host_port(),
            (Host::Name("hooks.example.com".into()), 443)
        );
        let url = WebhookUrl::parse("http://[::1]:8080/").unwrap();
        assert_eq!(url.host_port(), (Host::Ip(ip("::1")), 8080));
    }

    #[test]
    fn secrets_are_as_the_standard_reads_them() {
        let s = WebhookSecret::parse("whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw").unwrap();
        assert_eq!(s.key().len(), 24);
        assert_eq!(format!("{s:?}"), "WebhookSecret(24 bytes)");
        let long = format!("whsec_{}", BASE64.encode([7u8; 64]));
        assert!(WebhookSecret::parse(&long).is_ok());
        for bad in [
            "",
            "whsec_",
            "whsec_AAAA",
            "whsec_!!!",
            "0123456789abcdef0123456789abcdef0123456789abcdef",
            &format!("whsec_{}", BASE64.encode([7u8; 23])),
            &format!("whsec_{}", BASE64.encode([7u8; 65])),
        ] {
            let e = WebhookSecret::parse(bad).unwrap_err().0;
            assert!(e.contains("openssl rand -base64 32"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_default_allows_public_addresses_only() {
        let d = Destinations::default();
        for public in ["93.184.216.34", "2606:2800:220:1::1", "1.1.1.1"] {
            assert!(d.allows_ip(ip(public)), "{public}");
        }
        for internal in [
            "127.0.0.1",
            "127.1.2.3",
            "::1",
            "10.0.0.1",
            "172.16.5.4",
            "192.168.1.1",
            "100.64.0.1",
            "169.254.169.254",
            "fe80::1",
            "fd00::1",
            "0.0.0.0",
            "::",
            "224.0.0.1",
            "255.255.255.255",
            "::ffff:127.0.0.1",
            "::ffff:169.254.169.254",
            "64:ff9b::7f00:1",
            "2002:7f00:1::",
            "192.0.2.1",
        ] {
            assert!(!d.allows_ip(ip(internal)), "{internal}");
        }
    }

    #[test]
    fn words_ranges_and_names_widen_it() {
        let d = Destinations::parse("loopback").unwrap();
        assert!(d.allows_ip(ip("127.0.0.1")) && d.allows_ip(ip("::1")));
        assert!(!d.allows_ip(ip("1.1.1.1")) && !d.allows_ip(ip("10.0.0.1")));
        let d =
            Destinations::parse("private, 169.254.0.0/16, hooks.internal, *.corp.example").unwrap();
        assert!(d.allows_ip(ip("10.2.3.4")) && d.allows_ip(ip("169.254.169.254")));
        assert!(!d.allows_ip(ip("127.0.0.1")));
        assert!(d.allows_name("Hooks.Internal.") && d.allows_name("a.b.corp.example"));
        assert!(!d.allows_name("corp.example") && !d.allows_name("other"));
        assert!(
            Destinations::parse("*")
                .unwrap()
                .allows_ip(ip("169.254.169.254"))
        );
        for bad in [
            "",
            " , ",
            "a b",
            "10.0.0.0/33",
            "http://x",
            "*.",
            "é.example",
        ] {
            assert!(Destinations::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn a_check_covers_the_host_and_what_it_resolves_to() {
        let d = Destinations::default()
            .with_service(Host::Name("db.internal".into()), 5432)
            .with_service(Host::Ip(ip("10.0.0.7")), 7233);
        let name = Host::Name("hooks.example.com".into());
        assert!(d.check(&name, 443, &[ip("93.184.216.34")]).is_ok());
        let e = d.check(&name, 443, &[ip("127.0.0.1")]).unwrap_err().0;
        assert!(
            e.contains("resolves to 127.0.0.1, a loopback address"),
            "{e}"
        );
        let localhost = Host::Name("localhost".into());
        assert!(d.check(&localhost, 80, &[]).is_err());
        let e = d
            .check(&Host::Name("db.internal".into()), 5432, &[])
            .unwrap_err()
            .0;
        assert!(e.contains("Herald's own services"), "{e}");
        let everything = Destinations::parse("*")
            .unwrap()
            .with_service(Host::Ip(ip("10.0.0.7")), 7233);
        assert!(everything.check(&Host::Ip(ip("10.0.0.7")), 80, &[]).is_ok());
        assert!(
            everything
                .check(&Host::Ip(ip("::ffff:10.0.0.7")), 7233, &[])
                .is_err()
        );
        assert!(everything.check(&name, 7233, &[ip("10.0.0.7")]).is_err());
    }
}
