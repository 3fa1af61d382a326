//! The private-address guard. A source URL comes from a user, so without a guard the node
//! would fetch whatever that user points it at: its own admin ports on loopback, a cloud
//! metadata service on a link-local address, a database on the private network. The guard
//! refuses every address that is not public, however the host is spelled.
//!
//! The check happens on the addresses actually connected to, never on a name: IP-literal
//! hosts are checked before a request is made, and names go through [`GuardedResolver`],
//! which resolves once and hands the HTTP client only the addresses that passed. There is
//! no second resolution an attacker's DNS server could answer differently.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::sync::Arc;

/// Why an address is not public.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AddrClass {
    /// 127.0.0.0/8, ::1.
    Loopback,
    /// 10/8, 172.16/12, 192.168/16, and the deprecated IPv6 site-local fec0::/10.
    Private,
    /// 100.64/10, carrier-grade NAT.
    Shared,
    /// 169.254/16, fe80::/10.
    LinkLocal,
    /// fc00::/7.
    UniqueLocal,
    /// 0.0.0.0, ::.
    Unspecified,
    /// 0.0.0.0/8 other than 0.0.0.0 itself.
    ThisNetwork,
    /// 224/4, ff00::/8.
    Multicast,
    /// 255.255.255.255.
    Broadcast,
    /// Special-purpose and documentation ranges that no public server uses (240/4,
    /// 192.0.0/24, 198.18/15, the documentation ranges, 2001:db8::/32, 100::/64).
    Reserved,
}

impl AddrClass {
    /// The class as the noun phrase an error message uses.
    pub fn describe(self) -> &'static str {
        match self {
            AddrClass::Loopback => "a loopback address",
            AddrClass::Private => "a private address",
            AddrClass::Shared => "a shared (carrier-grade NAT) address",
            AddrClass::LinkLocal => "a link-local address",
            AddrClass::UniqueLocal => "a unique-local address",
            AddrClass::Unspecified => "the unspecified address",
            AddrClass::ThisNetwork => "a \"this network\" address (0.0.0.0/8)",
            AddrClass::Multicast => "a multicast address",
            AddrClass::Broadcast => "the broadcast address",
            AddrClass::Reserved => "a reserved address",
        }
    }
}

/// The class of a non-public address, or `None` for a public one. IPv6 addresses that
/// embed an IPv4 address (mapped, compatible, NAT64, 6to4) take the class of that address.
pub fn classify(ip: IpAddr) -> Option<AddrClass> {
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Option<AddrClass> {
    let [a, b, c, _] = ip.octets();
    let class = if ip.is_unspecified() {
        AddrClass::Unspecified
    } else if a == 0 {
        AddrClass::ThisNetwork
    } else if a == 127 {
        AddrClass::Loopback
    } else if a == 10 || (a == 172 && (16..32).contains(&b)) || (a == 192 && b == 168) {
        AddrClass::Private
    } else if a == 100 && (64..128).contains(&b) {
        AddrClass::Shared
    } else if a == 169 && b == 254 {
        AddrClass::LinkLocal
    } else if ip.is_broadcast() {
        AddrClass::Broadcast
    } else if (224..240).contains(&a) {
        AddrClass::Multicast
    } else if a >= 240
        || (a == 192 && b == 0 && (c == 0 || c == 2))
        || (a == 198 && (b == 18 || b == 19))
        || (a == 198 && b == 51 && c == 100)
        || (a == 203 && b == 0 && c == 113)
    {
        AddrClass::Reserved
    } else {
        return None;
    };
    Some(class)
}

fn classify_v6(ip: Ipv6Addr) -> Option<AddrClass> {
    if ip.is_unspecified() {
        return Some(AddrClass::Unspecified);
    }
    if ip.is_loopback() {
        return Some(AddrClass::Loopback);
    }
    if let Some(v4) = embedded_v4(ip) {
        return classify_v4(v4);
    }

    let s = ip.segments();
    let class = if s[0] & 0xfe00 == 0xfc00 {
        AddrClass::UniqueLocal
    } else if s[0] & 0xffc0 == 0xfe80 {
        AddrClass::LinkLocal
    } else if s[0] & 0xffc0 == 0xfec0 {
        AddrClass::Private
    } else if s[0] & 0xff00 == 0xff00 {
        AddrClass::Multicast
    } else if (s[0] == 0x2001 && s[1] == 0x0db8) || (s[0] == 0x0100 && s[1..4] == [0, 0, 0]) {
        AddrClass::Reserved
    } else if s[0] == 0x0064 && s[1] == 0xff9b && s[2] == 1 {
        // 64:ff9b:1::/48, NAT64 for local use only.
        AddrClass::Reserved
    } else {
        return None;
    };
    Some(class)
}

/// The IPv4 address carried inside an IPv4-mapped (::ffff:0:0/96), IPv4-compatible
/// (::/96), NAT64 well-known (64:ff9b::/96) or 6to4 (2002::/16) IPv6 address.
fn embedded_v4(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    if let Some(v4) = ip.to_ipv4_mapped() {
        return Some(v4);
    }
    let s = ip.segments();
    let low = |hi: u16, lo: u16| Ipv4Addr::from((u32::from(hi) << 16) | u32::from(lo));
    if s[..6] == [0, 0, 0, 0, 0, 0] {
        return Some(low(s[6], s[7]));
    }
    if s[..6] == [0x64, 0xff9b, 0, 0, 0, 0] {
        return Some(low(s[6], s[7]));
    }
    if s[0] == 0x2002 {
        return Some(low(s[1], s[2]));
    }
    None
}

/// The policy: refuse non-public addresses unless private sources are allowed, with an
/// optional list of exact addresses that are let through anyway (a known internal media
/// server).
#[derive(Debug, Clone)]
pub struct Guard {
    allow_private: bool,
    exceptions: Arc<[IpAddr]>,
}

impl Guard {
    pub fn new(allow_private: bool, exceptions: &[IpAddr]) -> Guard {
        Guard {
            allow_private,
            exceptions: exceptions.into(),
        }
    }

    /// `Err` with the address's class when the guard refuses it.
    pub fn check(&self, ip: IpAddr) -> Result<(), AddrClass> {
        if self.allow_private || self.exceptions.contains(&ip) {
            return Ok(());
        }
        match classify(ip) {
            Some(class) => Err(class),
            None => Ok(()),
        }
    }

    /// Checks a host that is an IP literal, before any connection.
    pub fn check_literal(&self, host: &str, ip: IpAddr) -> Result<(), Refused> {
        self.check(ip).map_err(|class| Refused {
            host: host.to_owned(),
            ip,
            class,
            resolved: false,
        })
    }
}

/// A host the guard refused, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refused {
    /// The host as written in the URL.
    pub host: String,
    /// The address it is, or the first one it resolved to.
    pub ip: IpAddr,
    pub class: AddrClass,
    /// Whether `host` is a name that resolved to `ip` (rather than `ip` itself).
    pub resolved: bool,
}

impl fmt::Display for Refused {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let class = self.class.describe();
        if self.resolved {
            write!(f, "host {} resolves to {}, {class}", self.host, self.ip)?;
        } else {
            write!(f, "host {} is {class}", self.host)?;
        }
        f.write_str(" (private sources are disabled)")
    }
}

impl std::error::Error for Refused {}

/// The HTTP client's resolver: one system lookup, then only the addresses the guard passes.
/// When a name resolves to nothing but refused addresses, the lookup fails with
/// [`Refused`], which the fetcher finds in the error's source chain.
pub struct GuardedResolver {
    guard: Guard,
}

impl GuardedResolver {
    pub fn new(guard: Guard) -> GuardedResolver {
        GuardedResolver { guard }
    }
}

impl reqwest::dns::Resolve for GuardedResolver {
    fn resolve(&self, name: reqwest::dns::Name) -> reqwest::dns::Resolving {
        let guard = self.guard.clone();
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let (passed, refused): (Vec<_>, Vec<_>) = found
                .into_iter()
                .partition(|addr| guard.check(addr.ip()).is_ok());

            if passed.is_empty()
                && let Some(first) = refused.first()
            {
                let class = classify(first.ip()).unwrap_or(AddrClass::Reserved);
                let refusal = Refused {
                    host,
                    ip: first.ip(),
                    class,
                    resolved: true,
                };
                return Err(Box::new(refusal) as Box<dyn std::error::Error + Send + Sync>);
            }
            if !refused.is_empty() {
                tracing::debug!(%host, ?refused, "dropped non-public addresses of a source host");
            }
            let addrs: reqwest::dns::Addrs = Box::new(passed.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn class_of(text: &str) -> Option<AddrClass> {
        let ip: IpAddr = text.parse().unwrap_or_else(|e| panic!("{text}: {e}"));
        classify(ip)
    }

    #[test]
    fn classifies_every_range() {
        use AddrClass::*;
        let table: &[(&str, Option<AddrClass>)] = &[
            ("127.0.0.1", Some(Loopback)),
            ("127.255.255.254", Some(Loopback)),
            ("10.0.0.1", Some(Private)),
            ("10.255.255.255", Some(Private)),
            ("172.16.0.1", Some(Private)),
            ("172.31.255.255", Some(Private)),
            ("172.15.255.255", None),
            ("172.32.0.0", None),
            ("192.168.1.1", Some(Private)),
            ("192.169.0.1", None),
            ("100.64.0.1", Some(Shared)),
            ("100.127.255.255", Some(Shared)),
            ("100.63.255.255", None),
            ("100.128.0.0", None),
            ("169.254.169.254", Some(LinkLocal)),
            ("0.0.0.0", Some(Unspecified)),
            ("0.1.2.3", Some(ThisNetwork)),
            ("224.0.0.1", Some(Multicast)),
            ("239.255.255.250", Some(Multicast)),
            ("255.255.255.255", Some(Broadcast)),
            ("240.0.0.1", Some(Reserved)),
            ("192.0.0.8", Some(Reserved)),
            ("192.0.2.10", Some(Reserved)),
            ("198.18.0.1", Some(Reserved)),
            ("198.51.100.7", Some(Reserved)),
            ("203.0.113.9", Some(Reserved)),
            ("8.8.8.8", None),
            ("93.184.216.34", None),
            ("1.1.1.1", None),
            ("::", Some(Unspecified)),
            ("::1", Some(Loopback)),
            ("::ffff:127.0.0.1", Some(Loopback)),
            ("::ffff:7f00:1", Some(Loopback)),
            ("::ffff:10.1.2.3", Some(Private)),
            ("::ffff:169.254.169.254", Some(LinkLocal)),
            ("::ffff:0.0.0.0", Some(Unspecified)),
            ("::ffff:8.8.8.8", None),
            ("::127.0.0.1", Some(Loopback)),
            ("::192.168.0.1", Some(Private)),
            ("64:ff9b::127.0.0.1", Some(Loopback)),
            ("64:ff9b::8.8.8.8", None),
            ("64:ff9b:1::1", Some(Reserved)),
            ("2002:7f00:1::", Some(Loopback)),
            ("2002:c0a8:101::1", Some(Private)),
            ("2002:808:808::1", None),
            ("fc00::1", Some(UniqueLocal)),
            ("fd12:3456::1", Some(UniqueLocal)),
            ("fe80::1", Some(LinkLocal)),
            ("febf::1", Some(LinkLocal)),
            ("fec0::1", Some(Private)),
            ("ff02::1", Some(Multicast)),
            ("2001:db8::1", Some(Reserved)),
            ("100::1", Some(Reserved)),
            ("2606:4700:4700::1111", None),
            ("2001:4860:4860::8888", None),
        ];
        for &(text, want) in table {
            assert_eq!(class_of(text), want, "{text}");
        }
    }

    #[test]
    fn allow_private_and_exceptions_let_addresses_through() {
        let loopback: IpAddr = Ipv4Addr::LOCALHOST.into();
        let other: IpAddr = Ipv4Addr::new(127, 0, 0, 2).into();

        assert_eq!(
            Guard::new(false, &[]).check(loopback),
            Err(AddrClass::Loopback)
        );
        assert_eq!(Guard::new(true, &[]).check(loopback), Ok(()));

        let excepted = Guard::new(false, &[other]);
        assert_eq!(excepted.check(other), Ok(()));
        assert_eq!(excepted.check(loopback), Err(AddrClass::Loopback));
    }

    #[test]
    fn refusal_names_host_address_and_class() {
        let ip: IpAddr = Ipv4Addr::LOCALHOST.into();
        let literal = Guard::new(false, &[]).check_literal("127.0.0.1", ip);
        let text = literal.map_err(|r| r.to_string());
        assert_eq!(
            text,
            Err("host 127.0.0.1 is a loopback address (private sources are disabled)".into())
        );

        let named = Refused {
            host: "localhost".into(),
            ip,
            class: AddrClass::Loopback,
            resolved: true,
        };
        assert_eq!(
            named.to_string(),
            "host localhost resolves to 127.0.0.1, a loopback address \
             (private sources are disabled)"
        );
    }

    #[tokio::test]
    async fn resolver_refuses_a_name_that_resolves_to_loopback_only() {
        use reqwest::dns::Resolve;
        let resolver = GuardedResolver::new(Guard::new(false, &[]));
        let name: reqwest::dns::Name = "localhost".parse().expect("a valid name");
        let Err(error) = resolver.resolve(name).await else {
            panic!("localhost passed the guard");
        };
        let refused = error.downcast_ref::<Refused>().expect("a guard refusal");
        assert_eq!(refused.class, AddrClass::Loopback);
        assert!(refused.resolved);
    }
}
