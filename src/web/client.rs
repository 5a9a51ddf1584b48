//! The address of whoever sent a request, for the limits and the audit log: the
//! connection's peer, or, when the peer is a trusted proxy (`server.trusted_proxies`),
//! the rightmost address of `Forwarded` (RFC 7239) or else `X-Forwarded-For` that no
//! trusted proxy holds. A header from anyone else is ignored: a client can write
//! anything in it, only the proxy's own hop can be believed.

use std::net::{IpAddr, SocketAddr};

use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::HeaderMap;
use axum::http::request::Parts;

use super::AppState;
use crate::config::Network;

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
        Ok(Client(client_address(
            peer,
            &parts.headers,
            &state.settings.server.trusted_proxies,
        )))
    }
}

/// Walks the hops from the nearest: while the hop is a trusted proxy, the address it
/// forwarded for is the next. A hop that cannot be read (`unknown`, an obfuscated
/// name, garbage) stops the walk at the proxy that reported it.
pub fn client_address(peer: IpAddr, headers: &HeaderMap, trusted: &[Network]) -> IpAddr {
    let is_trusted = |address: IpAddr| trusted.iter().any(|net| net.contains(canonical(address)));
    if !is_trusted(peer) {
        return canonical(peer);
    }
    let mut current = canonical(peer);
    for hop in forwarded_hops(headers).into_iter().rev() {
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

/// The forwarded-for chain, nearest last; `None` for a hop that is not an address.
/// `Forwarded` wins when present: it is the standard and cannot be confused with
/// a list a client started.
fn forwarded_hops(headers: &HeaderMap) -> Vec<Option<IpAddr>> {
    let values = |name: &str| -> Vec<String> {
        headers
            .get_all(name)
            .iter()
            .map(|v| v.to_str().map(str::to_owned).unwrap_or_default())
            .collect()
    };
    let forwarded = values("forwarded");
    if !forwarded.is_empty() {
        return forwarded
            .iter()
            .flat_map(|value| value.split(','))
            .map(forwarded_for)
            .collect();
    }
    values("x-forwarded-for")
        .iter()
        .flat_map(|value| value.split(','))
        .map(|hop| parse_node(hop.trim()))
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

    fn headers(pairs: &[(&str, &str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                value.parse().unwrap(),
            );
        }
        map
    }

    fn nets(list: &[&str]) -> Vec<Network> {
        list.iter().map(|n| n.parse().unwrap()).collect()
    }

    #[test]
    fn a_header_from_an_untrusted_peer_is_ignored() {
        let spoofed = headers(&[
            ("x-forwarded-for", "198.51.100.1"),
            ("forwarded", "for=198.51.100.2"),
        ]);
        assert_eq!(
            client_address(ip("203.0.113.9"), &spoofed, &nets(&["10.0.0.0/8"])),
            ip("203.0.113.9")
        );
        assert_eq!(
            client_address(ip("10.0.0.5"), &spoofed, &[]),
            ip("10.0.0.5")
        );
    }

    #[test]
    fn the_rightmost_untrusted_hop_is_the_client() {
        let trusted = nets(&["10.0.0.0/8", "192.0.2.1"]);
        // The client wrote a fake first hop; the proxies appended what they saw.
        let chain = headers(&[("x-forwarded-for", "6.6.6.6, 198.51.100.7, 192.0.2.1")]);
        assert_eq!(
            client_address(ip("10.1.2.3"), &chain, &trusted),
            ip("198.51.100.7")
        );
        let split = headers(&[
            ("x-forwarded-for", "6.6.6.6"),
            ("x-forwarded-for", "198.51.100.7"),
        ]);
        assert_eq!(
            client_address(ip("10.1.2.3"), &split, &trusted),
            ip("198.51.100.7")
        );
    }

    #[test]
    fn forwarded_is_read_with_ports_brackets_and_quotes_and_wins() {
        let trusted = nets(&["10.0.0.0/8"]);
        let both = headers(&[
            (
                "forwarded",
                r#"for=6.6.6.6, for="[2001:db8:cafe::17]:4711";proto=https"#,
            ),
            ("x-forwarded-for", "198.51.100.7"),
        ]);
        assert_eq!(
            client_address(ip("10.0.0.1"), &both, &trusted),
            ip("2001:db8:cafe::17")
        );
        let port = headers(&[("forwarded", "for=198.51.100.8:1234;by=10.0.0.1")]);
        assert_eq!(
            client_address(ip("10.0.0.1"), &port, &trusted),
            ip("198.51.100.8")
        );
    }

    #[test]
    fn an_unreadable_or_missing_hop_leaves_the_proxy() {
        let trusted = nets(&["10.0.0.0/8"]);
        for value in [
            "for=unknown",
            "for=_hidden",
            "for=\"not an address\"",
            "proto=https",
        ] {
            let h = headers(&[("forwarded", value)]);
            assert_eq!(
                client_address(ip("10.0.0.1"), &h, &trusted),
                ip("10.0.0.1"),
                "{value}"
            );
        }
        assert_eq!(
            client_address(ip("10.0.0.1"), &HeaderMap::new(), &trusted),
            ip("10.0.0.1")
        );
        // Every hop trusted: the farthest one is the client.
        let inside = headers(&[("x-forwarded-for", "10.9.9.9, 10.0.0.2")]);
        assert_eq!(
            client_address(ip("10.0.0.1"), &inside, &trusted),
            ip("10.9.9.9")
        );
    }

    #[test]
    fn a_mapped_peer_is_matched_as_ipv4() {
        let h = headers(&[("x-forwarded-for", "198.51.100.7")]);
        assert_eq!(
            client_address(ip("::ffff:10.0.0.1"), &h, &nets(&["10.0.0.1"])),
            ip("198.51.100.7")
        );
    }
}
