//! Optional TLS for the HTTP surface (rustls, ring provider): loads the PEM
//! files named by the `[tls]` config section into a server config (ALPN
//! http/1.1) for the listener and a client config for forwarding to other
//! nodes, with errors that name the config key whose file is at fault.

use crate::config::{ConfigError, TlsSection};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use rustls::{ClientConfig, RootCertStore, ServerConfig};
use std::path::Path;
use std::sync::Arc;

/// ALPN protocol id of HTTP/1.1, the only protocol served.
pub const ALPN_HTTP1: &[u8] = b"http/1.1";

/// The loaded TLS material of a node.
#[derive(Clone)]
pub struct TlsSetup {
    /// For the listener.
    pub server: Arc<ServerConfig>,
    /// For forwarding to other nodes over https (ALPN left empty: hyper-rustls sets it).
    pub client: ClientConfig,
}

impl std::fmt::Debug for TlsSetup {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TlsSetup")
    }
}

fn invalid(key: &'static str, path: &Path, message: impl std::fmt::Display) -> ConfigError {
    ConfigError::Invalid { key, message: format!("{}: {message}", path.display()) }
}

fn read(key: &'static str, path: &Path) -> Result<Vec<u8>, ConfigError> {
    std::fs::read(path).map_err(|e| invalid(key, path, format!("cannot read: {e}")))
}

/// Every certificate of a PEM file (at least one).
pub fn load_certs(key: &'static str, path: &Path) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let pem = read(key, path)?;
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_slice_iter(&pem).collect::<Result<_, _>>().map_err(|e| invalid(key, path, format!("invalid PEM: {e}")))?;
    if certs.is_empty() {
        return Err(invalid(key, path, "no CERTIFICATE block in the PEM file"));
    }
    Ok(certs)
}

/// The private key of a PEM file (PKCS#8, PKCS#1 or SEC1).
pub fn load_key(key: &'static str, path: &Path) -> Result<PrivateKeyDer<'static>, ConfigError> {
    let pem = read(key, path)?;
    PrivateKeyDer::from_pem_slice(&pem).map_err(|e| invalid(key, path, format!("no usable private key in the PEM file: {e}")))
}

fn provider() -> Arc<rustls::crypto::CryptoProvider> {
    Arc::new(rustls::crypto::ring::default_provider())
}

/// Loads `[tls]`; `Ok(None)` when TLS is not configured.
pub fn load(c: &TlsSection) -> Result<Option<TlsSetup>, ConfigError> {
    let (Some(cert_path), Some(key_path)) = (&c.cert, &c.key) else { return Ok(None) };
    let certs = load_certs("tls.cert", cert_path)?;
    let key = load_key("tls.key", key_path)?;
    let mut server = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| invalid("tls.cert", cert_path, e))?
        .with_no_client_auth()
        .with_single_cert(certs.clone(), key)
        .map_err(|e| invalid("tls.key", key_path, format!("does not match the certificate of `tls.cert`: {e}")))?;
    server.alpn_protocols = vec![ALPN_HTTP1.to_vec()];

    // Other nodes are trusted through `tls.ca`, else through this node's own
    // certificate (a cluster sharing one certificate needs nothing more).
    let (trust_key, trust_path, trusted) = match &c.ca {
        Some(ca) => ("tls.ca", ca.as_path(), load_certs("tls.ca", ca)?),
        None => ("tls.cert", cert_path.as_path(), certs),
    };
    let mut roots = RootCertStore::empty();
    for cert in trusted {
        roots.add(cert).map_err(|e| invalid(trust_key, trust_path, format!("not a usable trust anchor: {e}")))?;
    }
    Ok(Some(TlsSetup { server: Arc::new(server), client: client_config(roots) }))
}

/// A client config (ring provider, no client certificate) trusting exactly `roots`.
pub fn client_config(roots: RootCertStore) -> ClientConfig {
    ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .expect("the ring provider supports the default protocol versions")
        .with_root_certificates(roots)
        .with_no_client_auth()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> std::path::PathBuf {
        let p = dir.join(name);
        std::fs::write(&p, text).unwrap();
        p
    }

    #[test]
    fn loads_a_self_signed_pair_and_names_the_key_at_fault() {
        let dir = tempfile::tempdir().unwrap();
        let ck = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let cert = write(dir.path(), "c.pem", &ck.cert.pem());
        let key = write(dir.path(), "k.pem", &ck.signing_key.serialize_pem());
        let ok = TlsSection { cert: Some(cert.clone()), key: Some(key.clone()), ca: None };
        let setup = load(&ok).unwrap().expect("configured");
        assert_eq!(setup.server.alpn_protocols, vec![ALPN_HTTP1.to_vec()]);
        assert!(load(&TlsSection::default()).unwrap().is_none());

        let garbage = write(dir.path(), "g.pem", "not a pem file");
        let e = load(&TlsSection { cert: Some(garbage.clone()), ..ok.clone() }).unwrap_err().to_string();
        assert!(e.contains("tls.cert") && e.contains("no CERTIFICATE"), "{e}");
        let e = load(&TlsSection { key: Some(garbage), ..ok.clone() }).unwrap_err().to_string();
        assert!(e.contains("tls.key"), "{e}");
        let e = load(&TlsSection { key: Some(dir.path().join("missing.pem")), ..ok.clone() }).unwrap_err().to_string();
        assert!(e.contains("tls.key") && e.contains("cannot read"), "{e}");
        let e = load(&TlsSection { ca: Some(key), ..ok.clone() }).unwrap_err().to_string();
        assert!(e.contains("tls.ca"), "{e}");
        let other = rcgen::generate_simple_self_signed(vec!["x".to_string()]).unwrap();
        let other_key = write(dir.path(), "k2.pem", &other.signing_key.serialize_pem());
        let e = load(&TlsSection { key: Some(other_key), ..ok }).unwrap_err().to_string();
        assert!(e.contains("tls.key") && e.contains("does not match"), "{e}");
    }
}
