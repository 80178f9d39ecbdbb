//! Who is calling: credentials in, an authenticated principal out.
//!
//! The server asks an [`Authenticator`]; today that is [`TokenCache`], the API tokens this server
//! stores (bearer token → principal and roles), held in memory and refreshed on change
//! notifications so that authentication costs no database round trip. The identity provider
//! plugs in here later (API keys, signed tokens, client certificates).

use std::collections::HashMap;
use std::sync::Arc;

use arc_swap::ArcSwap;
use maos_core::Subject;
use maos_store::{ApiToken, hash_token};

/// The credentials a request presents.
#[derive(Clone, Copy, Debug, Default)]
pub struct Credentials<'a> {
    /// The `Authorization` header's value, as sent.
    pub authorization: Option<&'a str>,
    /// The DER of the client certificate the TLS handshake verified, when there was one.
    pub client_certificate: Option<&'a [u8]>,
}

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq)]
pub struct Caller {
    pub subject: Subject,
    /// Roles the credential itself carries, handed to the engine as extra roles.
    pub roles: Vec<String>,
    /// Which credential authenticated it (a token id), for logs.
    pub credential: String,
}

/// The result of authentication.
#[derive(Clone, Debug, PartialEq)]
pub enum AuthOutcome {
    Authenticated(Arc<Caller>),
    /// No credentials were presented.
    Missing,
    /// Credentials were presented and are not valid.
    Invalid,
}

/// Turns credentials into a caller. Implementations must answer from memory: this runs on
/// every decision request.
pub trait Authenticator: Send + Sync + std::fmt::Debug {
    fn authenticate(&self, credentials: &Credentials<'_>) -> AuthOutcome;
}

/// Several authenticators asked in order: each answers [`AuthOutcome::Missing`] for
/// credentials that are not its kind, and the first other answer is the chain's. So a bearer
/// value that one authenticator recognises and refuses is refused, never passed on.
#[derive(Debug, Default)]
pub struct AuthChain {
    links: Vec<Arc<dyn Authenticator>>,
}

impl AuthChain {
    pub fn new(links: Vec<Arc<dyn Authenticator>>) -> Self {
        AuthChain { links }
    }

    pub fn push(&mut self, link: Arc<dyn Authenticator>) {
        self.links.push(link);
    }
}

impl Authenticator for AuthChain {
    fn authenticate(&self, credentials: &Credentials<'_>) -> AuthOutcome {
        for link in &self.links {
            match link.authenticate(credentials) {
                AuthOutcome::Missing => {}
                answer => return answer,
            }
        }
        // Credentials that no authenticator recognises are not valid ones.
        if credentials.authorization.is_some() || credentials.client_certificate.is_some() {
            AuthOutcome::Invalid
        } else {
            AuthOutcome::Missing
        }
    }
}

#[derive(Debug)]
struct CachedToken {
    caller: Arc<Caller>,
    expires_at: Option<i64>,
}

/// The stored API tokens by hash, swapped whole on reload.
#[derive(Debug, Default)]
pub struct TokenCache {
    by_hash: ArcSwap<HashMap<String, CachedToken>>,
}

impl TokenCache {
    /// Replaces the cache with these tokens (revoked ones are left out).
    pub fn replace(&self, tokens: Vec<ApiToken>) {
        let mut map = HashMap::with_capacity(tokens.len());
        for token in tokens {
            if token.revoked_at.is_some() {
                continue;
            }
            let subject = match token.principal.split_once(':') {
                Some((kind, id)) if !kind.is_empty() && !id.is_empty() => Subject::new(kind, id),
                _ => {
                    tracing::warn!(token.id = %token.id, "token.principal.malformed");
                    continue;
                }
            };
            let caller = Arc::new(Caller {
                subject,
                roles: token.roles,
                credential: token.id.clone(),
            });
            map.insert(
                token.token_hash,
                CachedToken {
                    caller,
                    expires_at: token.expires_at,
                },
            );
        }
        self.by_hash.store(Arc::new(map));
    }

    /// The roles the live tokens of `principal` (`type:id`) carry.
    pub fn roles_of(&self, principal: &str) -> Vec<String> {
        self.by_hash
            .load()
            .values()
            .filter(|t| t.caller.subject.qualified() == principal)
            .flat_map(|t| t.caller.roles.iter().cloned())
            .collect()
    }

    pub fn len(&self) -> usize {
        self.by_hash.load().len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// The bearer token of an `Authorization` header, if it is one.
pub fn bearer(authorization: &str) -> Option<&str> {
    let (scheme, token) = authorization.trim().split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

impl Authenticator for TokenCache {
    fn authenticate(&self, credentials: &Credentials<'_>) -> AuthOutcome {
        let Some(header) = credentials.authorization else {
            return AuthOutcome::Missing;
        };
        // A value this cache does not hold may be another authenticator's (a signed token,
        // an API key); the chain refuses what nobody recognises.
        let Some(token) = bearer(header) else {
            return AuthOutcome::Missing;
        };
        let hash = hash_token(token);
        let cache = self.by_hash.load();
        match cache.get(&hash) {
            Some(cached) if cached.expires_at.is_none_or(|at| maos_store_now() < at) => {
                AuthOutcome::Authenticated(cached.caller.clone())
            }
            Some(_) => AuthOutcome::Invalid,
            None => AuthOutcome::Missing,
        }
    }
}

fn maos_store_now() -> i64 {
    let elapsed = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
}

/// A new random token (256 bits) and its id.
pub fn generate_token() -> Result<(String, String), getrandom::Error> {
    let mut secret = [0u8; 32];
    getrandom::fill(&mut secret)?;
    let mut id = [0u8; 6];
    getrandom::fill(&mut id)?;
    Ok((
        format!("tok_{}", hex::encode(id)),
        format!("maos_{}", hex::encode(secret)),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn token(id: &str, secret: &str, revoked: bool, expires_at: Option<i64>) -> ApiToken {
        ApiToken {
            id: id.into(),
            principal: "agent:a1".into(),
            roles: vec!["maos-pep".into()],
            description: String::new(),
            token_hash: hash_token(secret),
            created_at: 0,
            expires_at,
            revoked_at: revoked.then_some(1),
        }
    }

    #[test]
    fn bearer_tokens_authenticate_from_the_cache() {
        let cache = TokenCache::default();
        cache.replace(vec![
            token("t1", "good", false, None),
            token("t2", "revoked", true, None),
            token("t3", "expired", false, Some(1)),
        ]);
        let chain = AuthChain::new(vec![Arc::new(cache)]);
        let auth = |header: Option<&str>| {
            chain.authenticate(&Credentials {
                authorization: header,
                ..Credentials::default()
            })
        };
        match auth(Some("Bearer good")) {
            AuthOutcome::Authenticated(caller) => {
                assert_eq!(caller.subject.qualified(), "agent:a1");
                assert_eq!(caller.roles, ["maos-pep"]);
            }
            other => panic!("{other:?}"),
        }
        assert!(matches!(
            auth(Some("bearer   good ")),
            AuthOutcome::Authenticated(_)
        ));
        assert_eq!(auth(None), AuthOutcome::Missing);
        assert_eq!(auth(Some("Bearer revoked")), AuthOutcome::Invalid);
        assert_eq!(auth(Some("Bearer expired")), AuthOutcome::Invalid);
        assert_eq!(auth(Some("Basic Z29vZA==")), AuthOutcome::Invalid);
        assert_eq!(auth(Some("Bearer")), AuthOutcome::Invalid);
    }

    /// Claims bearer values starting with its prefix: valid when the rest is `ok`.
    #[derive(Debug)]
    struct Prefixed(&'static str);

    impl Authenticator for Prefixed {
        fn authenticate(&self, credentials: &Credentials<'_>) -> AuthOutcome {
            let Some(rest) = credentials
                .authorization
                .and_then(bearer)
                .and_then(|t| t.strip_prefix(self.0))
            else {
                return AuthOutcome::Missing;
            };
            if rest == "ok" {
                AuthOutcome::Authenticated(Arc::new(Caller {
                    subject: Subject::new("agent", self.0),
                    roles: Vec::new(),
                    credential: self.0.into(),
                }))
            } else {
                AuthOutcome::Invalid
            }
        }
    }

    #[test]
    fn chain_takes_the_first_answer_and_refuses_what_nobody_claims() {
        let chain = AuthChain::new(vec![Arc::new(Prefixed("a.")), Arc::new(Prefixed("a.b."))]);
        let auth = |header: Option<&str>, certificate: Option<&[u8]>| {
            chain.authenticate(&Credentials {
                authorization: header,
                client_certificate: certificate,
            })
        };
        match auth(Some("Bearer a.ok"), None) {
            AuthOutcome::Authenticated(caller) => assert_eq!(caller.credential, "a."),
            other => panic!("{other:?}"),
        }
        // The first link claims `a.b.ok` and refuses it; the second never sees it.
        assert_eq!(auth(Some("Bearer a.b.ok"), None), AuthOutcome::Invalid);
        assert_eq!(auth(Some("Bearer z.ok"), None), AuthOutcome::Invalid);
        assert_eq!(auth(None, Some(b"not mapped")), AuthOutcome::Invalid);
        assert_eq!(auth(None, None), AuthOutcome::Missing);
    }

    #[test]
    fn generated_tokens_are_long_and_distinct() {
        let (id1, t1) = generate_token().unwrap();
        let (_, t2) = generate_token().unwrap();
        assert_ne!(t1, t2);
        assert_eq!(t1.len(), 5 + 64);
        assert!(id1.starts_with("tok_"));
    }
}
