//! Which addresses an image URL may reach. By default only public ones: a payload must not make the
//! runner fetch from its own machine, its private network or a cloud metadata service (SSRF).
//!
//! Literal IP hosts are checked before each request and each redirect hop; host names are checked
//! inside the HTTP client's DNS resolver, on the very addresses it will connect to, so a name that
//! resolves differently between a check and the connection (DNS rebinding) cannot slip through.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use url::{Host, Url};

use super::ImageInputError;

/// Why an address is refused by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Restricted {
    /// 0.0.0.0 and ::, which reach the local host.
    Unspecified,
    /// 127/8 and ::1: the runner's own host.
    Loopback,
    /// RFC 1918: 10/8, 172.16/12, 192.168/16.
    Private,
    /// RFC 6598 shared address space (carrier-grade NAT): 100.64/10.
    SharedAddressSpace,
    /// 169.254/16 and fe80::/10; cloud metadata services (169.254.169.254) live here.
    LinkLocal,
    /// fc00::/7, IPv6's private range.
    UniqueLocal,
    /// 224/4 and ff00::/8, never a single image host.
    Multicast,
    /// 255.255.255.255 and the reserved 240/4.
    Broadcast,
}

impl fmt::Display for Restricted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Restricted::Unspecified => "an unspecified address",
            Restricted::Loopback => "a loopback address",
            Restricted::Private => "a private (RFC 1918) address",
            Restricted::SharedAddressSpace => "a carrier-grade NAT (RFC 6598) address",
            Restricted::LinkLocal => "a link-local address",
            Restricted::UniqueLocal => "a unique-local address",
            Restricted::Multicast => "a multicast address",
            Restricted::Broadcast => "a broadcast or reserved address",
        })
    }
}

/// Why `ip` is refused, or `None` when it is a public address.
pub fn restriction(ip: IpAddr) -> Option<Restricted> {
    match ip {
        IpAddr::V4(v4) => restriction_v4(v4),
        IpAddr::V6(v6) => restriction_v6(v6),
    }
}

fn restriction_v4(ip: Ipv4Addr) -> Option<Restricted> {
    let [a, b, _, _] = ip.octets();
    if a == 0 {
        Some(Restricted::Unspecified)
    } else if ip.is_loopback() {
        Some(Restricted::Loopback)
    } else if ip.is_private() {
        Some(Restricted::Private)
    } else if a == 100 && (64..128).contains(&b) {
        Some(Restricted::SharedAddressSpace)
    } else if ip.is_link_local() {
        Some(Restricted::LinkLocal)
    } else if ip.is_multicast() {
        Some(Restricted::Multicast)
    } else if a >= 240 {
        Some(Restricted::Broadcast)
    } else {
        None
    }
}

fn restriction_v6(ip: Ipv6Addr) -> Option<Restricted> {
    let segments = ip.segments();
    // Addresses that carry an IPv4 address reach that address: ::ffff:a.b.c.d (mapped),
    // 64:ff9b::a.b.c.d (NAT64) and the deprecated ::a.b.c.d (compatible).
    let embeds_v4 = segments[..5] == [0; 5] && segments[5] == 0xffff
        || segments[..6] == [0x64, 0xff9b, 0, 0, 0, 0]
        || segments[..6] == [0; 6] && !ip.is_unspecified() && !ip.is_loopback();
    if embeds_v4 {
        let [.., high, low] = segments;
        let v4 = Ipv4Addr::from((u32::from(high) << 16) | u32::from(low));
        return restriction_v4(v4);
    }
    if ip.is_unspecified() {
        Some(Restricted::Unspecified)
    } else if ip.is_loopback() {
        Some(Restricted::Loopback)
    } else if segments[0] & 0xffc0 == 0xfe80 {
        Some(Restricted::LinkLocal)
    } else if segments[0] & 0xfe00 == 0xfc00 {
        Some(Restricted::UniqueLocal)
    } else if ip.is_multicast() {
        Some(Restricted::Multicast)
    } else {
        None
    }
}

/// Refuses `url` when its host is a literal restricted IP address. Host names are left to
/// [`PublicOnlyResolver`]: the client never asks a resolver about a literal address.
pub(super) fn check_literal_host(url: &Url) -> Result<(), ImageInputError> {
    let ip = match url.host() {
        Some(Host::Ipv4(v4)) => IpAddr::V4(v4),
        Some(Host::Ipv6(v6)) => IpAddr::V6(v6),
        _ => return Ok(()),
    };
    match restriction(ip) {
        Some(why) => Err(ImageInputError::RefusedAddress {
            host: ip.to_string(),
            reason: format!("{ip} is {why}"),
        }),
        None => Ok(()),
    }
}

/// The system resolver, minus restricted addresses. A name with no public address at all fails
/// with [`ImageInputError::RefusedAddress`], which the fetch finds again in the error's sources.
pub(super) struct PublicOnlyResolver;

impl Resolve for PublicOnlyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let host = name.as_str().to_owned();
        Box::pin(async move {
            let resolved: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let (public, refused): (Vec<SocketAddr>, Vec<SocketAddr>) = resolved
                .into_iter()
                .partition(|addr| restriction(addr.ip()).is_none());
            if public.is_empty() && !refused.is_empty() {
                let reasons: Vec<String> = refused
                    .iter()
                    .filter_map(|addr| {
                        restriction(addr.ip()).map(|why| format!("{} is {why}", addr.ip()))
                    })
                    .collect();
                return Err(Box::new(ImageInputError::RefusedAddress {
                    host,
                    reason: reasons.join(", "),
                })
                    as Box<dyn std::error::Error + Send + Sync>);
            }
            let addrs: Addrs = Box::new(public.into_iter());
            Ok(addrs)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn why(ip: &str) -> Option<Restricted> {
        restriction(ip.parse().unwrap())
    }

    #[test]
    fn refuses_every_non_public_range() {
        use Restricted::*;
        let cases = [
            ("0.0.0.0", Unspecified),
            ("0.1.2.3", Unspecified),
            ("127.0.0.1", Loopback),
            ("127.255.0.9", Loopback),
            ("10.1.2.3", Private),
            ("172.16.0.1", Private),
            ("172.31.255.255", Private),
            ("192.168.1.1", Private),
            ("100.64.0.1", SharedAddressSpace),
            ("100.127.255.255", SharedAddressSpace),
            ("169.254.169.254", LinkLocal),
            ("224.0.0.1", Multicast),
            ("255.255.255.255", Broadcast),
            ("240.0.0.1", Broadcast),
            ("::", Unspecified),
            ("::1", Loopback),
            ("fe80::1", LinkLocal),
            ("fc00::1", UniqueLocal),
            ("fd12:3456::1", UniqueLocal),
            ("ff02::1", Multicast),
            ("::ffff:127.0.0.1", Loopback),
            ("::ffff:169.254.169.254", LinkLocal),
            ("::ffff:10.0.0.1", Private),
            ("64:ff9b::a00:1", Private),
            ("::192.168.0.1", Private),
        ];
        for (ip, expected) in cases {
            assert_eq!(why(ip), Some(expected), "{ip}");
        }
    }

    #[test]
    fn lets_public_addresses_through() {
        for ip in [
            "8.8.8.8",
            "1.1.1.1",
            "172.15.255.255",
            "172.32.0.1",
            "100.63.255.255",
            "100.128.0.1",
            "2606:4700::1111",
            "::ffff:8.8.8.8",
            "64:ff9b::808:808",
        ] {
            assert_eq!(why(ip), None, "{ip}");
        }
    }

    #[test]
    fn checks_literal_hosts_only() {
        let refused = |url: &str| check_literal_host(&Url::parse(url).unwrap());
        let error = refused("http://169.254.169.254/latest/meta-data").unwrap_err();
        assert_eq!(error.status(), 400);
        assert!(
            error
                .to_string()
                .contains("169.254.169.254 is a link-local address"),
            "{error}"
        );
        assert!(refused("http://[::1]:8080/").is_err());
        // The URL standard reads a bare number as an IPv4 address.
        assert!(refused("http://2130706433/").is_err());
        assert!(refused("http://example.com/").is_ok());
        assert!(refused("http://93.184.215.14/").is_ok());
    }

    #[tokio::test]
    async fn resolving_to_loopback_only_is_refused() {
        let name: Name = "localhost".parse().unwrap();
        let error = PublicOnlyResolver
            .resolve(name)
            .await
            .err()
            .expect("refused");
        let error = error.downcast_ref::<ImageInputError>().expect("typed");
        assert!(
            error.to_string().contains("is a loopback address"),
            "{error}"
        );
    }
}
