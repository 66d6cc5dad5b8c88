//! Bearer-token authorization of `/v1` requests (http-api.md, Auth): with no
//! token configured every request passes; otherwise a tenant token reaches only
//! its tenant (403 elsewhere) and an admin token reaches every tenant and
//! `/v1/cluster`. Tokens are compared in constant time and never logged.

use super::error::{ApiError, ErrorCode};
use crate::config::{AuthSection, Secret};

/// What a request is trying to reach.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Target<'a> {
    Tenant(&'a str),
    /// `/v1/cluster` and anything else that is not tenant-scoped.
    Admin,
}

/// Who a valid token belongs to.
#[derive(Clone, Debug, PartialEq, Eq)]
enum Principal {
    Admin,
    Tenant(String),
}

/// Tokens of one node, built once from the config.
#[derive(Clone, Debug, Default)]
pub struct Authorizer {
    admin: Option<Secret>,
    tenants: Vec<(String, Secret)>,
}

impl Authorizer {
    pub fn new(cfg: &AuthSection) -> Authorizer {
        Authorizer { admin: cfg.admin_token.clone(), tenants: cfg.tenant_tokens.iter().map(|(t, s)| (t.clone(), s.clone())).collect() }
    }

    pub fn enabled(&self) -> bool {
        self.admin.is_some() || !self.tenants.is_empty()
    }

    /// `authorization` is the raw header value, if any.
    pub fn check(&self, authorization: Option<&[u8]>, target: Target<'_>) -> Result<(), ApiError> {
        if !self.enabled() {
            return Ok(());
        }
        let token = authorization
            .and_then(bearer)
            .ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "missing `Authorization: Bearer <token>` header"))?;
        let who = self.identify(token).ok_or_else(|| ApiError::new(ErrorCode::Unauthorized, "unknown token"))?;
        match (who, target) {
            (Principal::Admin, _) => Ok(()),
            (Principal::Tenant(t), Target::Tenant(want)) if t == want => Ok(()),
            (Principal::Tenant(_), Target::Tenant(want)) => Err(ApiError::new(ErrorCode::Forbidden, format!("this token does not grant tenant {want:?}"))),
            (Principal::Tenant(_), Target::Admin) => Err(ApiError::new(ErrorCode::Forbidden, "this endpoint needs the admin token")),
        }
    }

    /// Compares against every configured token without early exit, so timing
    /// does not reveal which token (or how much of one) matched.
    fn identify(&self, token: &[u8]) -> Option<Principal> {
        let mut found = None;
        if let Some(a) = &self.admin {
            if ct_eq(a.expose().as_bytes(), token) {
                found = Some(Principal::Admin);
            }
        }
        for (t, s) in &self.tenants {
            if ct_eq(s.expose().as_bytes(), token) && found.is_none() {
                found = Some(Principal::Tenant(t.clone()));
            }
        }
        found
    }
}

fn bearer(h: &[u8]) -> Option<&[u8]> {
    let h = h.strip_prefix(b"Bearer ").or_else(|| h.strip_prefix(b"bearer "))?;
    let start = h.iter().position(|b| *b != b' ')?;
    let end = h.iter().rposition(|b| *b != b' ')? + 1;
    Some(&h[start..end])
}

/// Constant-time equality for equal lengths (a length mismatch returns early:
/// token lengths are not secret enough to matter, their bytes are).
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::BTreeMap;

    fn auth() -> Authorizer {
        let mut tenants = BTreeMap::new();
        tenants.insert("acme".to_string(), Secret::new("t-acme"));
        tenants.insert("beta".to_string(), Secret::new("t-beta"));
        Authorizer::new(&AuthSection { admin_token: Some(Secret::new("root")), tenant_tokens: tenants })
    }

    fn code(r: Result<(), ApiError>) -> Option<ErrorCode> {
        r.err().map(|e| e.code)
    }

    #[test]
    fn open_when_no_token_is_configured() {
        let a = Authorizer::default();
        assert!(a.check(None, Target::Admin).is_ok());
        assert!(a.check(Some(b"Bearer x"), Target::Tenant("acme")).is_ok());
    }

    #[test]
    fn tenant_tokens_reach_only_their_tenant() {
        let a = auth();
        assert_eq!(code(a.check(Some(b"Bearer t-acme"), Target::Tenant("acme"))), None);
        assert_eq!(code(a.check(Some(b"Bearer t-acme"), Target::Tenant("beta"))), Some(ErrorCode::Forbidden));
        assert_eq!(code(a.check(Some(b"Bearer t-acme"), Target::Admin)), Some(ErrorCode::Forbidden));
        assert_eq!(code(a.check(Some(b"Bearer t-beta"), Target::Tenant("beta"))), None);
    }

    #[test]
    fn admin_reaches_everything() {
        let a = auth();
        assert_eq!(code(a.check(Some(b"Bearer root"), Target::Tenant("acme"))), None);
        assert_eq!(code(a.check(Some(b"Bearer root"), Target::Admin)), None);
    }

    #[test]
    fn missing_malformed_or_unknown_tokens_are_401() {
        let a = auth();
        for h in [None, Some(&b"root"[..]), Some(b"Basic cm9vdA=="), Some(b"Bearer "), Some(b"Bearer roo"), Some(b"Bearer rootx")] {
            assert_eq!(code(a.check(h, Target::Tenant("acme"))), Some(ErrorCode::Unauthorized), "{h:?}");
        }
    }

    #[test]
    fn constant_time_eq_is_eq() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
    }
}
