//! Who is asking: the client's address, as the connection gives it or, behind a proxy of
//! `TRUSTED_PROXIES`, as that proxy reports it in `X-Forwarded-For` (see
//! `docs/operations.md`). A header from any other peer is ignored: a client cannot pick
//! the address it is counted under.

use std::net::{IpAddr, SocketAddr};

use axum::http::HeaderMap;

/// The client address of a request, given to GraphQL resolvers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientAddress(pub String);

/// Addresses and networks (`10.0.0.0/8`, `::1`) whose `X-Forwarded-For` is believed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TrustedProxies(Vec<(IpAddr, u8)>);

impl TrustedProxies {
    /// A comma-separated list of addresses and networks; an entry that is neither is an
    /// error naming it.
    pub fn parse(list: &str) -> Result<Self, String> {
        let mut networks = Vec::new();
        for entry in list.split(',').map(str::trim).filter(|e| !e.is_empty()) {
            let (address, bits) = match entry.split_once('/') {
                Some((address, bits)) => (address, Some(bits)),
                None => (entry, None),
            };
            let address: IpAddr = address
                .parse()
                .map_err(|_| format!("TRUSTED_PROXIES: {entry:?} is not an address or network"))?;
            let max = if address.is_ipv4() { 32 } else { 128 };
            let bits = match bits {
                None => max,
                Some(bits) => bits
                    .parse::<u8>()
                    .ok()
                    .filter(|b| *b <= max)
                    .ok_or_else(|| format!("TRUSTED_PROXIES: bad prefix length in {entry:?}"))?,
            };
            networks.push((address, bits));
        }
        Ok(TrustedProxies(networks))
    }

    /// Whether `address` is one of the proxies.
    pub fn contains(&self, address: IpAddr) -> bool {
        let address = canonical(address);
        self.0
            .iter()
            .any(|(network, bits)| match (canonical(*network), address) {
                (IpAddr::V4(n), IpAddr::V4(a)) => {
                    prefix(u32::from(n).into(), u32::from(a).into(), *bits, 32)
                }
                (IpAddr::V6(n), IpAddr::V6(a)) => prefix(u128::from(n), u128::from(a), *bits, 128),
                _ => false,
            })
    }
}

fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        v4 => v4,
    }
}

fn prefix(network: u128, address: u128, bits: u8, width: u32) -> bool {
    if bits == 0 {
        return true;
    }
    let shift = width - u32::from(bits);
    (network >> shift) == (address >> shift)
}

/// The client's address: the peer's, or — when the peer is a trusted proxy — the last
/// address in `X-Forwarded-For` that is not itself a trusted proxy.
pub fn address(peer: Option<SocketAddr>, headers: &HeaderMap, trusted: &TrustedProxies) -> String {
    let Some(peer) = peer.map(|p| canonical(p.ip())) else {
        return "unknown".into();
    };
    if !trusted.contains(peer) {
        return peer.to_string();
    }
    let forwarded = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .collect::<Vec<_>>();
    let mut client = peer;
    for hop in forwarded.iter().rev() {
        match hop.parse::<IpAddr>() {
            Ok(hop) => {
                client = canonical(hop);
                if !trusted.contains(client) {
                    break;
                }
            }
            // Not an address: what the client wrote; the hop before it is the client.
            Err(_) => break,
        }
    }
    client.to_string()
}

/// Open connections per client address, bounded: the connection layer's share for each
/// address (a trusted proxy, which carries many clients, is not bounded).
#[derive(Clone)]
pub struct ConnectionCounts {
    limit: usize,
    trusted: TrustedProxies,
    open: std::sync::Arc<std::sync::Mutex<std::collections::HashMap<IpAddr, usize>>>,
}

/// One open connection of an address; released when dropped.
pub struct Counted {
    counts: Option<(ConnectionCounts, IpAddr)>,
}

impl ConnectionCounts {
    pub fn new(limit: usize, trusted: TrustedProxies) -> Self {
        ConnectionCounts {
            limit: limit.max(1),
            trusted,
            open: Default::default(),
        }
    }

    /// Counts a new connection from `peer`; `None` when its address has `limit` open.
    pub fn enter(&self, peer: Option<SocketAddr>) -> Option<Counted> {
        let Some(address) = peer.map(|p| canonical(p.ip())) else {
            return Some(Counted { counts: None });
        };
        if self.trusted.contains(address) {
            return Some(Counted { counts: None });
        }
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(address).or_default();
        if *count >= self.limit {
            return None;
        }
        *count += 1;
        Some(Counted {
            counts: Some((self.clone(), address)),
        })
    }
}

impl Drop for Counted {
    fn drop(&mut self) {
        let Some((counts, address)) = self.counts.take() else {
            return;
        };
        let mut open = counts.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&address) {
            *count -= 1;
            if *count == 0 {
                open.remove(&address);
            }
        }
    }
}

/// A connection whose writes must make progress: a write that stays pending for longer
/// than the deadline fails, and the connection is closed — so an answer nobody reads
/// does not stay in memory.
pub struct WriteDeadline<S> {
    inner: S,
    deadline: std::time::Duration,
    stalled: Option<std::pin::Pin<Box<tokio::time::Sleep>>>,
}

impl<S> WriteDeadline<S> {
    pub fn new(inner: S, deadline: std::time::Duration) -> Self {
        WriteDeadline {
            inner,
            deadline,
            stalled: None,
        }
    }

    /// Ready with an error once the pending write has waited past the deadline.
    fn check(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Error> {
        let deadline = self.deadline;
        let sleep = self
            .stalled
            .get_or_insert_with(|| Box::pin(tokio::time::sleep(deadline)));
        sleep
            .as_mut()
            .poll(cx)
            .map(|()| std::io::Error::new(std::io::ErrorKind::TimedOut, "the client reads nothing"))
    }

    fn progress<T>(
        &mut self,
        cx: &mut std::task::Context<'_>,
        polled: std::task::Poll<std::io::Result<T>>,
    ) -> std::task::Poll<std::io::Result<T>> {
        use std::task::Poll;
        match polled {
            Poll::Ready(result) => {
                self.stalled = None;
                Poll::Ready(result)
            }
            Poll::Pending => match self.check(cx) {
                Poll::Ready(error) => Poll::Ready(Err(error)),
                Poll::Pending => Poll::Pending,
            },
        }
    }
}

use std::future::Future as _;
use tokio::io::{AsyncRead, AsyncWrite};

impl<S: AsyncRead + Unpin> AsyncRead for WriteDeadline<S> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<S: AsyncWrite + Unpin> AsyncWrite for WriteDeadline<S> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_write(cx, buf);
        self.progress(cx, polled)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_flush(cx);
        self.progress(cx, polled)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn poll_write_vectored(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        bufs: &[std::io::IoSlice<'_>],
    ) -> std::task::Poll<std::io::Result<usize>> {
        let polled = std::pin::Pin::new(&mut self.inner).poll_write_vectored(cx, bufs);
        self.progress(cx, polled)
    }

    fn is_write_vectored(&self) -> bool {
        self.inner.is_write_vectored()
    }
}
