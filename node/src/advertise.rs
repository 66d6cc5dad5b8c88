//! The node's advertised HTTP address (`advertise_http`): where the other nodes
//! reach it — the address in its heartbeats, hence where peers forward queries
//! and fetch partition snapshots. The listen address (`http`) may be a wildcard
//! (`0.0.0.0:8080` in a container); the advertised one never is.
//!
//! Rules: an explicit `advertise_http` must be `host:port` with a real host and
//! port. Without it the node advertises its bound address; a wildcard bind is
//! refused when the node runs clustered (`brokers` given: peers may live on other
//! hosts), and advertises loopback on the embedded broker (whose clients, a
//! librdkafka mock cluster on 127.0.0.1, are all on this host).

use crate::config::{ConfigError, NodeConfig};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};

const KEY: &str = "advertise_http";

/// Checks `advertise_http` against `http` and `brokers`; errors name `advertise_http`.
pub fn validate(c: &NodeConfig) -> Result<(), ConfigError> {
    match &c.advertise_http {
        Some(a) => check_address(a).map_err(|message| ConfigError::Invalid { key: KEY, message }),
        None if c.brokers.is_some() && c.http.ip().is_unspecified() => Err(ConfigError::Invalid {
            key: KEY,
            message: format!(
                "must be set when `http` listens on the unspecified address {} and the node runs clustered (`brokers` given): \
                 the other nodes forward queries and fetch snapshots at the advertised address, so give one they can reach, \
                 e.g. the service or pod name with the port (`advertise_http = \"node-1:8080\"`, TOUCHLINE_ADVERTISE_HTTP, --advertise-http)",
                c.http
            ),
        }),
        None => Ok(()),
    }
}

/// `host:port` with a non-zero port and a host that is neither empty nor a wildcard.
fn check_address(a: &str) -> Result<(), String> {
    if let Ok(sa) = a.parse::<SocketAddr>() {
        if sa.ip().is_unspecified() {
            return Err(format!("{a:?} is an unspecified address: other nodes cannot reach it; give this node's IP or host name"));
        }
        if sa.port() == 0 {
            return Err(format!("{a:?}: the port must not be 0"));
        }
        return Ok(());
    }
    let (host, port) = a.rsplit_once(':').ok_or_else(|| format!("{a:?} is not HOST:PORT"))?;
    match port.parse::<u16>() {
        Ok(p) if p > 0 => {}
        _ => return Err(format!("{a:?}: the port {port:?} is not in 1..=65535")),
    }
    let host_ok = !host.is_empty() && host.len() <= 253 && host.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.' || b == b'_');
    if !host_ok {
        return Err(format!("{a:?}: {host:?} is not a host name or IP address"));
    }
    Ok(())
}

/// The address this node advertises, given the address its listener bound.
pub fn advertised(c: &NodeConfig, bound: SocketAddr) -> String {
    if let Some(a) = &c.advertise_http {
        return a.clone();
    }
    match bound.ip() {
        // Only reachable here on the embedded broker (validate refuses it clustered).
        IpAddr::V4(ip) if ip.is_unspecified() => SocketAddr::new(Ipv4Addr::LOCALHOST.into(), bound.port()).to_string(),
        IpAddr::V6(ip) if ip.is_unspecified() => SocketAddr::new(Ipv6Addr::LOCALHOST.into(), bound.port()).to_string(),
        _ => bound.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(http: &str, brokers: Option<&str>, advertise: Option<&str>) -> NodeConfig {
        NodeConfig { http: http.parse().unwrap(), brokers: brokers.map(String::from), advertise_http: advertise.map(String::from), ..NodeConfig::default() }
    }

    #[test]
    fn a_wildcard_bind_needs_an_advertised_address_when_clustered() {
        let e = cfg("0.0.0.0:8080", Some("k:9092"), None).validate().unwrap_err().to_string();
        assert!(e.contains("`advertise_http`") && e.contains("0.0.0.0:8080"), "{e}");
        let e = cfg("[::]:8080", Some("k:9092"), None).validate().unwrap_err().to_string();
        assert!(e.contains("`advertise_http`"), "{e}");
        cfg("0.0.0.0:8080", Some("k:9092"), Some("node-1:8080")).validate().unwrap();
        cfg("127.0.0.1:8080", Some("k:9092"), None).validate().unwrap();
        // The embedded broker (no brokers) keeps working on a wildcard bind.
        cfg("0.0.0.0:8080", None, None).validate().unwrap();
    }

    #[test]
    fn an_advertised_address_is_host_and_port() {
        for good in ["node-1:8080", "10.1.2.3:8080", "[fd00::1]:8080", "touchline-0.touchline-headless.ns.svc.cluster.local:8080"] {
            cfg("0.0.0.0:8080", Some("k:9092"), Some(good)).validate().unwrap_or_else(|e| panic!("{good}: {e}"));
        }
        for bad in ["0.0.0.0:8080", "[::]:8080", "node-1", "node-1:0", "node-1:http", ":8080", "a b:80", "10.0.0.1:0"] {
            let e = cfg("0.0.0.0:8080", Some("k:9092"), Some(bad)).validate().unwrap_err().to_string();
            assert!(e.contains("`advertise_http`"), "{bad}: {e}");
        }
    }

    #[test]
    fn the_default_is_the_bound_address_and_loopback_for_a_wildcard() {
        let c = cfg("127.0.0.1:0", None, None);
        assert_eq!(advertised(&c, "127.0.0.1:4242".parse().unwrap()), "127.0.0.1:4242");
        assert_eq!(advertised(&c, "0.0.0.0:4242".parse().unwrap()), "127.0.0.1:4242");
        assert_eq!(advertised(&c, "[::]:4242".parse().unwrap()), "[::1]:4242");
        let c = cfg("0.0.0.0:8080", Some("k:9092"), Some("node-2:8080"));
        assert_eq!(advertised(&c, "0.0.0.0:8080".parse().unwrap()), "node-2:8080");
    }
}
