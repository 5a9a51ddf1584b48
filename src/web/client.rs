//! The address of whoever sent a request, for the limits and the audit log: the
//! connection's peer, or, when the peer is a trusted proxy (`server.trusted_proxies`),
//! the rightmost address of the header those proxies write
//! (`server.forwarded_header`: `X-Forwarded-For`, or `Forwarded` of RFC 7239) that no
//! trusted proxy holds. Only that header is read: a proxy passes the other one on
//! from the client untouched. From anyone else, both are ignored: a client can write
//! anything in them, only the proxy's own hop can be believed.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use super::AppState;
use crate::config::{ForwardedHeader, Network};

/// The client's address, as an extractor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Client(pub IpAddr);

impl FromRequestParts<AppState> for Client {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(
        parts: &mut Parts,
        state: &AppState,
    ) -> Result<Self, Self::Rejection> {
        // Without connection info (a router driven in-process), the unspecified
        // address: every such request shares one bucket.
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map_or(IpAddr::from([0, 0, 0, 0]), |c| c.0.ip());
        let server = &state.settings.server;
        let hops = forwarded_hops(&parts.headers, server.forwarded_header);
        Ok(Client(client_address(peer, hops, &server.trusted_proxies)))
    }
}

/// Walks the hops from the nearest: while the hop is a trusted proxy, the address it
/// forwarded for is the next. A hop that cannot be read (`unknown`, an obfuscated
/// name, garbage) stops the walk at the proxy that reported it.
fn client_address(peer: IpAddr, hops: Vec<Option<IpAddr>>, trusted: &[Network]) -> IpAddr {
    let is_trusted = |address: IpAddr| trusted.iter().any(|net| net.contains(canonical(address)));
    if !is_trusted(peer) {
        return canonical(peer);
    }
    let mut current = canonical(peer);
    for hop in hops.into_iter().rev() {
        let Some(address) = hop else { break };
        current = canonical(address);
        if !is_trusted(current) {
            break;
        }
    }
    current
}

/// An IPv4-mapped IPv6 address (a dual-stack socket) is the IPv4 one.
fn canonical(address: IpAddr) -> IpAddr {
    match address {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(address, IpAddr::V4),
        IpAddr::V4(_) => address,
    }
}

/// The forwarded-for chain of `header`, nearest last; `None` for a hop that is not
/// an address. Hops are split on the raw bytes, so a byte a client slipped into
/// its own hop spoils that hop only, never the proxy's.
fn forwarded_hops(headers: &HeaderMap, header: ForwardedHeader) -> Vec<Option<IpAddr>> {
    let (name, parse): (_, fn(&str) -> Option<IpAddr>) = match header {
        ForwardedHeader::XForwardedFor => ("x-forwarded-for", |hop| parse_node(hop.trim())),
        ForwardedHeader::Forwarded => ("forwarded", forwarded_for),
    };
    headers
        .get_all(name)
        .iter()
        .flat_map(|value| value.as_bytes().split(|b| *b == b','))
        .map(|hop| std::str::from_utf8(hop).ok().and_then(parse))
        .collect()
}

/// The `for=` of one `Forwarded` element (`for=192.0.2.60;proto=https`).
fn forwarded_for(element: &str) -> Option<IpAddr> {
    element
        .split(';')
        .filter_map(|pair| pair.split_once('='))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("for"))
        .and_then(|(_, value)| parse_node(value.trim().trim_matches('"')))
}

/// `192.0.2.60`, `192.0.2.60:4711`, `[2001:db8::17]`, `[2001:db8::17]:4711`, `2001:db8::17`.
fn parse_node(node: &str) -> Option<IpAddr> {
    if let Some(rest) = node.strip_prefix('[') {
        return rest.split_once(']')?.0.parse().ok();
    }
    node.parse::<IpAddr>()
        .ok()
        .or_else(|| node.parse::<SocketAddr>().ok().map(|s| s.ip()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    fn headers(pairs: &[(&str, &[u8])]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                axum::http::HeaderValue::from_bytes(value).unwrap(),
            );
        }
        map
    }

    fn nets(list: &[&str]) -> Vec<Network> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    fn client(peer: &str, h: &HeaderMap, header: ForwardedHeader, trusted: &[&str]) -> IpAddr {
        client_address(ip(peer), forwarded_hops(h, header), &nets(trusted))
    }

    const XFF: ForwardedHeader = ForwardedHeader::XForwardedFor;
    const RFC: ForwardedHeader = ForwardedHeader::Forwarded;

    #[test]
    fn a_header_from_an_untrusted_peer_is_ignored() {
        let spoofed = headers(&[("x-forwarded-for", b"198.51.100.1")]);
        assert_eq!(
            client("203.0.113.9", &spoofed, XFF, &["10.0.0.0/8"]),
            ip("203.0.113.9")
        );
        assert_eq!(client("10.0.0.5", &spoofed, XFF, &[]), ip("10.0.0.5"));
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let trusted = ["10.0.0.0/8", "192.0.2.1"];
        // The client wrote a fake first hop; the proxies appended what they saw.
        let chain = headers(&[("x-forwarded-for", b"6.6.6.6, 198.51.100.7, 192.0.2.1")]);
        assert_eq!(
            client("10.1.2.3", &chain, XFF, &trusted),
            ip("198.51.100.7")
        );
        let split = headers(&[
            ("x-forwarded-for", b"6.6.6.6"),
            ("x-forwarded-for", b"198.51.100.7"),
        ]);
        assert_eq!(
            client("10.1.2.3", &split, XFF, &trusted),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn only_the_header_the_proxies_write_is_read() {
        let trusted = ["10.0.0.0/8"];
        let both = headers(&[
            (
                "forwarded",
                br#"for=6.6.6.6, for="[2001:db8:cafe::17]:4711";proto=https"#,
            ),
            ("x-forwarded-for", b"198.51.100.7"),
        ]);
        assert_eq!(
            client("10.0.0.1", &both, RFC, &trusted),
            ip("2001:db8:cafe::17")
        );
        assert_eq!(
            client("10.0.0.1", &both, XFF, &trusted),
            ip("198.51.100.7"),
            "a Forwarded header the client sent through an X-Forwarded-For proxy is ignored"
        );
        let port = headers(&[("forwarded", b"for=198.51.100.8:1234;by=10.0.0.1")]);
        assert_eq!(client("10.0.0.1", &port, RFC, &trusted), ip("198.51.100.8"));
    }

    #[test]
    fn an_unreadable_or_missing_hop_leaves_the_proxy() {
        let trusted = ["10.0.0.0/8"];
        for value in [
            "for=unknown",
            "for=_hidden",
            "for=\"not an address\"",
            "proto=https",
        ] {
            let h = headers(&[("forwarded", value.as_bytes())]);
            assert_eq!(
                client("10.0.0.1", &h, RFC, &trusted),
                ip("10.0.0.1"),
                "{value}"
            );
        }
        assert_eq!(
            client("10.0.0.1", &HeaderMap::new(), XFF, &trusted),
            ip("10.0.0.1")
        );
        // Every hop trusted: the farthest one is the client.
        let inside = headers(&[("x-forwarded-for", b"10.9.9.9, 10.0.0.2")]);
        assert_eq!(client("10.0.0.1", &inside, XFF, &trusted), ip("10.9.9.9"));
    }

    #[test]
    fn a_byte_slipped_into_the_clients_hop_spoils_only_that_hop() {
        let h = headers(&[("x-forwarded-for", b"\xff\xfe, 198.51.100.7")]);
        assert_eq!(
            client("10.0.0.1", &h, XFF, &["10.0.0.0/8"]),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn a_mapped_peer_is_matched_as_ipv4() {
        let h = headers(&[("x-forwarded-for", b"198.51.100.7")]);
        assert_eq!(
            client("::ffff:10.0.0.1", &h, XFF, &["10.0.0.1"]),
            ip("198.51.100.7")
        );
    }
}
