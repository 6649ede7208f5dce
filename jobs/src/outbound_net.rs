//! The network side of outbound webhooks: which addresses a sender may reach, checked
//! where the connection is made, and the HTTP client that enforces it.
//!
//! A receiver's URL names a host; checking the name's addresses when the endpoint is
//! saved is not enough, since a name can resolve elsewhere later (DNS rebinding). So the
//! client resolves names through [`GuardedResolver`], which drops every refused address
//! and fails when none is left, and URLs that carry an address literal (which reqwest
//! connects to without resolving) are checked by [`check_url`] before each request.
//! Redirects are never followed.

use std::{
    net::{IpAddr, SocketAddr},
    sync::Arc,
    time::Duration,
};

use ipnet::IpNet;
use reqwest::dns::{Addrs, Name, Resolve, Resolving};

/// What the guard allows: https only unless `allow_http`, and no internal address unless
/// inside one of `allowed` (self-hosted receivers on a LAN, tests on loopback).
#[derive(Debug, Clone, Default)]
pub struct AddressPolicy {
    pub allow_http: bool,
    pub allowed: Vec<IpNet>,
}

impl AddressPolicy {
    /// `OUTBOUND_ALLOWED_CIDRS`: comma-separated networks (`10.0.0.0/8, ::1/128`).
    pub fn parse_cidrs(text: &str) -> Result<Vec<IpNet>, String> {
        text.split(',')
            .map(str::trim)
            .filter(|part| !part.is_empty())
            .map(|part| {
                part.parse::<IpNet>()
                    .or_else(|_| part.parse::<IpAddr>().map(IpNet::from))
                    .map_err(|_| format!("{part:?} is not a network (like 10.0.0.0/8)"))
            })
            .collect()
    }

    /// Why `ip` may not be reached, or `None` when it may.
    pub fn refusal(&self, ip: IpAddr) -> Option<&'static str> {
        if self.allowed.iter().any(|net| net.contains(&ip)) {
            return None;
        }
        internal(ip)
    }
}

/// The kind of internal address `ip` is, if it is one.
fn internal(ip: IpAddr) -> Option<&'static str> {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            if v4.is_loopback() {
                Some("a loopback address")
            } else if v4.is_private() {
                Some("a private address")
            } else if v4.is_link_local() {
                Some("a link-local address (cloud metadata lives there)")
            } else if a == 100 && (64..128).contains(&b) {
                Some("a carrier-grade NAT address")
            } else if v4.is_multicast() || v4.is_broadcast() {
                Some("a multicast or broadcast address")
            } else if v4.is_unspecified() || a == 0 {
                Some("an unspecified address")
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return internal(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            if v6.is_loopback() {
                Some("a loopback address")
            } else if v6.is_unspecified() {
                Some("an unspecified address")
            } else if first & 0xfe00 == 0xfc00 {
                Some("a private address")
            } else if first & 0xffc0 == 0xfe80 {
                Some("a link-local address (cloud metadata lives there)")
            } else if v6.is_multicast() {
                Some("a multicast or broadcast address")
            } else {
                None
            }
        }
    }
}

/// A URL a sender may post to: http(s), no credentials, and an address literal host
/// must pass the policy (names are checked when they resolve).
pub fn check_url(url: &str, policy: &AddressPolicy) -> Result<reqwest::Url, String> {
    let parsed = reqwest::Url::parse(url).map_err(|_| "is not a URL".to_owned())?;
    match parsed.scheme() {
        "https" => {}
        "http" if policy.allow_http => {}
        "http" => return Err("must use https (OUTBOUND_ALLOW_HTTP allows http)".into()),
        _ => return Err("must be an http(s) URL".into()),
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Err("must not carry credentials".into());
    }
    let host = parsed.host_str().ok_or("has no host")?;
    let literal = host
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
        .ok();
    if let Some(reason) = literal.and_then(|ip| policy.refusal(ip)) {
        return Err(format!("points at {reason}"));
    }
    Ok(parsed)
}

/// Resolves with the system resolver, keeping only the addresses the policy allows.
#[derive(Debug, Clone)]
pub struct GuardedResolver {
    policy: Arc<AddressPolicy>,
}

impl GuardedResolver {
    pub fn new(policy: Arc<AddressPolicy>) -> Self {
        GuardedResolver { policy }
    }
}

impl Resolve for GuardedResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            let found: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let mut refused = None;
            let allowed: Vec<SocketAddr> = found
                .into_iter()
                .filter(|addr| match policy.refusal(addr.ip()) {
                    Some(reason) => {
                        refused = Some(reason);
                        false
                    }
                    None => true,
                })
                .collect();
            if allowed.is_empty() {
                let why = refused.unwrap_or("no address");
                return Err(format!("{host} resolves to {why}: refused").into());
            }
            let addrs: Addrs = Box::new(allowed.into_iter());
            Ok(addrs)
        })
    }
}

/// The client outbound messages are sent with: the guarded resolver, no redirects, the
/// deadline of an attempt.
pub fn client(policy: Arc<AddressPolicy>, timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder()
        .dns_resolver(Arc::new(GuardedResolver::new(policy)))
        .redirect(reqwest::redirect::Policy::none())
        .timeout(timeout)
        .connect_timeout(timeout)
        .build()
        .expect("the outbound client's settings are valid")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strict() -> AddressPolicy {
        AddressPolicy {
            allow_http: true,
            allowed: Vec::new(),
        }
    }

    #[test]
    fn internal_addresses_are_refused_unless_allowed() {
        let policy = strict();
        for ip in [
            "127.0.0.1",
            "10.1.2.3",
            "172.16.0.1",
            "192.168.1.1",
            "169.254.169.254",
            "100.64.0.1",
            "0.0.0.0",
            "224.0.0.1",
            "::1",
            "fd00:ec2::254",
            "fe80::1",
            "::ffff:127.0.0.1",
        ] {
            assert!(policy.refusal(ip.parse().unwrap()).is_some(), "{ip}");
        }
        for ip in ["8.8.8.8", "100.128.0.1", "2001:4860:4860::8888"] {
            assert_eq!(policy.refusal(ip.parse().unwrap()), None, "{ip}");
        }
        let lan = AddressPolicy {
            allow_http: true,
            allowed: AddressPolicy::parse_cidrs("192.168.0.0/16, ::1").unwrap(),
        };
        assert_eq!(lan.refusal("192.168.1.1".parse().unwrap()), None);
        assert_eq!(lan.refusal("::1".parse().unwrap()), None);
        assert!(lan.refusal("10.0.0.1".parse().unwrap()).is_some());
        assert!(AddressPolicy::parse_cidrs("10.0.0.0/99").is_err());
    }

    #[test]
    fn urls_are_checked_before_any_request() {
        let https_only = AddressPolicy::default();
        assert!(check_url("https://hooks.example.com/x", &https_only).is_ok());
        for bad in [
            "http://hooks.example.com/x",
            "ftp://hooks.example.com/x",
            "https://user:pass@hooks.example.com/x",
            "https://127.0.0.1/x",
            "https://[::1]/x",
            "https://169.254.169.254/latest/meta-data",
            "not a url",
        ] {
            assert!(check_url(bad, &https_only).is_err(), "{bad}");
        }
    }

    /// A receiver on loopback gets nothing through a name that resolves there, and gets
    /// the request once loopback is allowed.
    #[tokio::test]
    async fn a_name_that_resolves_to_loopback_is_refused_at_connect_time() {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let app = axum::Router::new().route("/", axum::routing::post(|| async { "ok" }));
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        let url = format!("http://localhost:{port}/");
        let refused = client(Arc::new(strict()), Duration::from_secs(5));
        let err = refused.post(&url).send().await.unwrap_err();
        assert!(format!("{err:?}").contains("refused"), "{err:?}");
        let allowed = AddressPolicy {
            allow_http: true,
            allowed: AddressPolicy::parse_cidrs("127.0.0.0/8, ::1").unwrap(),
        };
        let ok = client(Arc::new(allowed), Duration::from_secs(5));
        let answer = ok.post(&url).send().await.unwrap();
        assert_eq!(answer.status().as_u16(), 200);
    }
}
