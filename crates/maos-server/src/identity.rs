//! The identity provider wired into the server: stored principals and credentials, cached in
//! memory and kept fresh by change notifications, and the authenticators for MAOS access tokens
//! and API keys.
//!
//! The decisions are the identity core's (`maos_identity`); this module persists its state,
//! wraps secrets with the data directory's key-encryption key, and answers authentication from
//! memory.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use arc_swap::ArcSwap;
use maos_audit::{ActionName, Actor, Outcome, RecordDraft};
use maos_core::event::{SecurityEvent, SecurityEventType, Severity, Timestamp};
use maos_core::{Clock, Subject};
use maos_crypto::KekProvider;
use maos_identity::apikey::{ApiKeyRecord, ParsedApiKey};
use maos_identity::jose::{b64_decode, b64_encode};
use maos_identity::lockout::{LockoutPolicy, LockoutTracker};
use maos_identity::password::{PasswordHasher, PasswordParams};
use maos_identity::token::{
    AccessGrant, AccessTokenClaims, AccessTokenValidator, IssuedAccessToken, RefreshFamilies,
    RefreshPolicy, RefreshSnapshot, RevocationSet, SignerConfig, SigningAlgorithm, SigningKeyState,
    TokenSigner,
};
use maos_identity::{Principal, PrincipalId, SecretBytes, TokenError};
use maos_store::{PrincipalRow, SigningKeyRow, Store, StoreError};
use serde_json::{Map, Value, json};
use tokio::sync::{broadcast, mpsc};

use crate::auth::{AuthOutcome, Authenticator, Caller, Credentials, bearer};

/// Lifetime of MAOS access tokens.
pub const ACCESS_TOKEN_TTL: Duration = Duration::from_secs(600);
/// Clock skew tolerated when validating MAOS access tokens.
pub const TOKEN_LEEWAY: Duration = Duration::from_secs(30);
/// The `aud` of MAOS access tokens.
pub const TOKEN_AUDIENCE: &str = "maos";
/// How long a replaced signing key keeps validating: the tokens it signed have all expired by
/// then (lifetime plus leeway).
pub const SIGNING_KEY_OVERLAP: Duration = Duration::from_secs(600 + 30 + 60);

/// Why an identity operation failed.
#[derive(Debug, thiserror::Error)]
pub enum IdentityError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("key wrapping failed: {0}")]
    Kek(#[from] maos_crypto::KekError),
    #[error("stored identity state is invalid: {0}")]
    Corrupt(String),
    #[error("token signing failed: {0}")]
    Signer(#[from] maos_identity::token::SignerError),
}

/// Stored principals by id.
type PrincipalMap = HashMap<String, Arc<Principal>>;
/// API key records by their lookup id.
type ApiKeyMap = HashMap<String, Arc<ApiKeyRecord>>;

/// The identity provider's state in memory, and the operations on it.
#[derive(Debug)]
pub struct IdentityService {
    store: Store,
    clock: Arc<dyn Clock>,
    kek: Arc<dyn KekProvider>,
    pub issuer: String,
    pub hasher: PasswordHasher,
    pub lockout: Mutex<LockoutTracker>,
    signer: RwLock<TokenSigner>,
    validator: ArcSwap<AccessTokenValidator>,
    revocations: RwLock<RevocationSet>,
    /// Per principal, the times before which its access tokens are refused (see
    /// [`IdentityService::cut_off`]).
    cutoffs: RwLock<HashMap<String, Cutoffs>>,
    principals: ArcSwap<PrincipalMap>,
    api_keys: ArcSwap<ApiKeyMap>,
    pub refresh_policy: RefreshPolicy,
    events: broadcast::Sender<Arc<SecurityEvent>>,
    /// Audit records of refused credentials: authentication answers from memory and cannot
    /// wait for the audit log, so [`run_maintenance`] appends them.
    rejections: mpsc::Sender<RecordDraft>,
    rejections_rx: Mutex<Option<mpsc::Receiver<RecordDraft>>>,
}

/// Which of a principal's access tokens a cut-off refuses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CutoffScope {
    /// Every access token (the principal was disabled or deleted).
    All,
    /// Tokens from the client-credentials grant (an API key was revoked): the tokens do not
    /// name the key they came from, so all of them go and clients fetch new ones.
    ClientCredentials,
}

impl CutoffScope {
    fn tag(self) -> &'static str {
        match self {
            CutoffScope::All => "all",
            CutoffScope::ClientCredentials => "cc",
        }
    }
}

/// Unix seconds: access tokens issued at or before these are refused.
#[derive(Debug, Clone, Copy, Default)]
struct Cutoffs {
    all: i64,
    client_credentials: i64,
}

impl Cutoffs {
    /// Moves the cut-off of `scope` to `at`, never back.
    fn raise(&mut self, scope: CutoffScope, at: i64) {
        let slot = match scope {
            CutoffScope::All => &mut self.all,
            CutoffScope::ClientCredentials => &mut self.client_credentials,
        };
        *slot = (*slot).max(at);
    }
}

/// Cut-offs live in the revocation table beside revoked token ids, as
/// `cutoff:<scope>:<unix>:<principal>`, so they reach every node the same way.
const CUTOFF_PREFIX: &str = "cutoff:";

fn parse_cutoff(row: &str) -> Option<(CutoffScope, i64, &str)> {
    let rest = row.strip_prefix(CUTOFF_PREFIX)?;
    let (scope, rest) = rest.split_once(':')?;
    let (at, principal) = rest.split_once(':')?;
    let scope = match scope {
        "all" => CutoffScope::All,
        "cc" => CutoffScope::ClientCredentials,
        _ => return None,
    };
    Some((scope, at.parse().ok()?, principal))
}

/// How many refused-credential audit records may wait for the audit log; beyond that they are
/// counted (`maos_identity_rejections_unaudited_total`) and dropped, never blocking a request.
const REJECTION_QUEUE: usize = 4096;
/// How often replaced signing keys past their overlap and expired revocations are dropped.
const MAINTENANCE_INTERVAL: Duration = Duration::from_secs(60);

impl IdentityService {
    pub fn new(
        store: Store,
        kek: Arc<dyn KekProvider>,
        issuer: String,
        clock: Arc<dyn Clock>,
        events: broadcast::Sender<Arc<SecurityEvent>>,
    ) -> Result<IdentityService, anyhow::Error> {
        let hasher = PasswordHasher::new(PasswordParams::default())
            .map_err(|e| anyhow::anyhow!("password hasher: {e}"))?;
        let signer = TokenSigner::new(
            SignerConfig {
                issuer: issuer.clone(),
                audience: TOKEN_AUDIENCE.to_owned(),
                access_token_ttl: ACCESS_TOKEN_TTL,
            },
            clock.clone(),
        );
        let validator = signer.validator(TOKEN_LEEWAY);
        let (rejections, rejections_rx) = mpsc::channel(REJECTION_QUEUE);
        Ok(IdentityService {
            rejections,
            rejections_rx: Mutex::new(Some(rejections_rx)),
            store,
            kek,
            issuer,
            hasher,
            lockout: Mutex::new(LockoutTracker::new(LockoutPolicy::default(), clock.clone())),
            signer: RwLock::new(signer),
            validator: ArcSwap::from_pointee(validator),
            revocations: RwLock::new(RevocationSet::new(TOKEN_LEEWAY, clock.clone())),
            cutoffs: RwLock::new(HashMap::new()),
            principals: ArcSwap::from_pointee(HashMap::new()),
            api_keys: ArcSwap::from_pointee(HashMap::new()),
            refresh_policy: RefreshPolicy::default(),
            events,
            clock,
        })
    }

    pub fn store(&self) -> &Store {
        &self.store
    }

    pub fn now(&self) -> SystemTime {
        self.clock.now()
    }

    pub fn clock(&self) -> Arc<dyn Clock> {
        self.clock.clone()
    }

    // Caches.

    pub async fn reload_all(&self) -> Result<(), IdentityError> {
        self.reload_principals().await?;
        self.reload_api_keys().await?;
        self.reload_revocations().await?;
        self.reload_signing_keys().await?;
        Ok(())
    }

    pub async fn reload_principals(&self) -> Result<(), IdentityError> {
        let rows = self.store.identities().principals().await?;
        let mut map = HashMap::with_capacity(rows.len());
        for row in rows {
            match principal_from_row(&row) {
                Ok(principal) => {
                    map.insert(row.id, Arc::new(principal));
                }
                // One bad row must not lock everybody out; it authenticates nobody.
                Err(error) => tracing::error!(principal.id = %row.id, %error, "principal.corrupt"),
            }
        }
        self.principals.store(Arc::new(map));
        Ok(())
    }

    pub async fn reload_api_keys(&self) -> Result<(), IdentityError> {
        let rows = self.store.identities().api_keys(None).await?;
        let mut map = HashMap::with_capacity(rows.len());
        for row in rows {
            match serde_json::from_str::<ApiKeyRecord>(&row.record) {
                Ok(record) => {
                    map.insert(row.id, Arc::new(record));
                }
                Err(error) => tracing::error!(apikey.id = %row.id, %error, "apikey.corrupt"),
            }
        }
        self.api_keys.store(Arc::new(map));
        Ok(())
    }

    pub async fn reload_revocations(&self) -> Result<(), IdentityError> {
        let now = unix_seconds(self.clock.now());
        let rows = self.store.identities().revocations(now).await?;
        let mut set = RevocationSet::new(TOKEN_LEEWAY, self.clock.clone());
        let mut cutoffs: HashMap<String, Cutoffs> = HashMap::new();
        for (jti, expires_at) in rows {
            if let Some((scope, at, principal)) = parse_cutoff(&jti) {
                cutoffs
                    .entry(principal.to_owned())
                    .or_default()
                    .raise(scope, at);
            }
            set.revoke(jti, expires_at);
        }
        *self.revocations.write().map_err(poisoned)? = set;
        *self.cutoffs.write().map_err(poisoned)? = cutoffs;
        Ok(())
    }

    /// Refuses, on every node, the principal's access tokens (of `scope`) issued until now.
    /// Tokens issued in the same second are refused too: the cut-off errs on the side of
    /// refusing.
    pub async fn cut_off(&self, principal: &str, scope: CutoffScope) -> Result<(), IdentityError> {
        let now = unix_seconds(self.clock.now());
        let ttl = i64::try_from(ACCESS_TOKEN_TTL.as_secs()).unwrap_or(i64::MAX);
        let leeway = i64::try_from(TOKEN_LEEWAY.as_secs()).unwrap_or(0);
        let row = format!("{CUTOFF_PREFIX}{}:{now}:{principal}", scope.tag());
        let forget_at = now.saturating_add(ttl).saturating_add(leeway);
        self.store
            .identities()
            .revoke_token(&row, forget_at)
            .await?;
        self.cutoffs
            .write()
            .map_err(poisoned)?
            .entry(principal.to_owned())
            .or_default()
            .raise(scope, now);
        Ok(())
    }

    /// Whether a cut-off refuses these claims; a token without `iat` is refused by any.
    fn is_cut_off(&self, claims: &AccessTokenClaims) -> bool {
        let Ok(cutoffs) = self.cutoffs.read() else {
            return true;
        };
        let Some(cut) = cutoffs.get(&claims.subject.to_string()) else {
            return false;
        };
        let limit = if claims.client_id.is_some() {
            cut.all.max(cut.client_credentials)
        } else {
            cut.all
        };
        claims.issued_at.is_none_or(|iat| iat <= limit)
    }

    /// Loads the signing keys, creating the first one on a new store.
    pub async fn reload_signing_keys(&self) -> Result<(), IdentityError> {
        let mut rows = self.store.identities().signing_keys().await?;
        if rows.is_empty() {
            self.rotate_signing_key().await?;
            rows = self.store.identities().signing_keys().await?;
        }
        let now = self.clock.now();
        let mut signer = TokenSigner::new(
            self.signer.read().map_err(poisoned)?.config().clone(),
            self.clock.clone(),
        );
        // Replaced keys first, so that adding the active key last leaves it active.
        rows.sort_by_key(|row| row.replaced_at.is_none());
        for row in rows {
            let state = match row.replaced_at {
                None => SigningKeyState::Active,
                Some(at) => {
                    let since = from_millis(at);
                    if since + SIGNING_KEY_OVERLAP <= now {
                        continue;
                    }
                    SigningKeyState::Validating { since }
                }
            };
            // A key this node cannot open (another KEK file: every node must share the data
            // directory's `kek`) is left out, and the nodes disagree until that is fixed.
            let loaded = parse_algorithm(&row.algorithm).and_then(|algorithm| {
                let pkcs8 = self.unseal(&row.sealed_private, &signing_key_context(&row.kid))?;
                Ok(signer.add_key(algorithm, &pkcs8, state)?)
            });
            if let Err(error) = loaded {
                tracing::error!(key.id = %row.kid, %error, "signing_key.unusable");
            }
        }
        self.validator
            .store(Arc::new(signer.validator(TOKEN_LEEWAY)));
        *self.signer.write().map_err(poisoned)? = signer;
        Ok(())
    }

    /// Makes a new active signing key and stores it wrapped; the previous one keeps validating
    /// for [`SIGNING_KEY_OVERLAP`]. Returns the new key id.
    pub async fn rotate_signing_key(&self) -> Result<String, IdentityError> {
        // A scratch signer makes the key; the stored row is the truth every node loads.
        let mut scratch = TokenSigner::new(
            self.signer.read().map_err(poisoned)?.config().clone(),
            self.clock.clone(),
        );
        let (kid, pkcs8) = scratch.rotate(SigningAlgorithm::EdDsa)?;
        let sealed = self
            .kek
            .wrap(pkcs8.expose(), signing_key_context(&kid).as_bytes())?;
        self.store
            .identities()
            .add_signing_key(&SigningKeyRow {
                kid: kid.clone(),
                algorithm: "EdDSA".into(),
                sealed_private: b64_encode(&sealed),
                created_at: millis(self.clock.now()),
                replaced_at: None,
            })
            .await?;
        // Keys replaced long enough ago sign nothing that is still valid.
        let before = millis(self.clock.now() - SIGNING_KEY_OVERLAP);
        self.store.identities().retire_signing_keys(before).await?;
        Ok(kid)
    }

    pub fn signing_key_states(&self) -> Vec<Value> {
        let Ok(signer) = self.signer.read() else {
            return Vec::new();
        };
        signer
            .key_states()
            .into_iter()
            .map(|(kid, algorithm, state)| match state {
                SigningKeyState::Active => {
                    json!({"kid": kid, "alg": algorithm.jose().as_str(), "state": "active"})
                }
                SigningKeyState::Validating { since } => json!({
                    "kid": kid, "alg": algorithm.jose().as_str(), "state": "validating",
                    "replaced_at": unix_seconds(since),
                }),
            })
            .collect()
    }

    pub fn jwks(&self) -> Value {
        self.signer
            .read()
            .map(|s| s.jwks())
            .unwrap_or_else(|_| json!({"keys": []}))
    }

    // Lookups.

    pub fn principal(&self, id: &str) -> Option<Arc<Principal>> {
        self.principals.load().get(id).cloned()
    }

    pub fn principals(&self) -> Vec<Arc<Principal>> {
        let map = self.principals.load();
        let mut list: Vec<_> = map.values().cloned().collect();
        list.sort_by(|a, b| a.id.cmp(&b.id));
        list
    }

    pub fn api_key(&self, id: &str) -> Option<Arc<ApiKeyRecord>> {
        self.api_keys.load().get(id).cloned()
    }

    pub fn api_keys_of(&self, principal: &PrincipalId) -> Vec<Arc<ApiKeyRecord>> {
        let map = self.api_keys.load();
        let mut list: Vec<_> = map
            .values()
            .filter(|k| &k.principal == principal)
            .cloned()
            .collect();
        list.sort_by(|a, b| a.created_at.cmp(&b.created_at).then(a.id.cmp(&b.id)));
        list
    }

    // Tokens.

    pub fn issue(&self, grant: &AccessGrant) -> Result<IssuedAccessToken, IdentityError> {
        Ok(self.signer.read().map_err(poisoned)?.issue(grant)?)
    }

    pub fn validate(&self, token: &str) -> Result<AccessTokenClaims, TokenError> {
        let revocations = self.revocations.read().map_err(|_| TokenError::Revoked)?;
        let claims = self.validator.load().validate(token, &revocations)?;
        if self.is_cut_off(&claims) {
            return Err(TokenError::Revoked);
        }
        Ok(claims)
    }

    /// [`IdentityService::validate`] without the cut-offs, which the caller checks after the
    /// principal's status (so a disabled principal's token is refused for that reason).
    fn validate_uncut(&self, token: &str) -> Result<AccessTokenClaims, TokenError> {
        let revocations = self.revocations.read().map_err(|_| TokenError::Revoked)?;
        self.validator.load().validate(token, &revocations)
    }

    /// Revokes an access token everywhere (stored, then announced to every node).
    pub async fn revoke_access_token(
        &self,
        claims: &AccessTokenClaims,
    ) -> Result<(), IdentityError> {
        self.store
            .identities()
            .revoke_token(&claims.jti, claims.expires_at)
            .await?;
        if let Ok(mut set) = self.revocations.write() {
            set.revoke(claims.jti.clone(), claims.expires_at);
        }
        Ok(())
    }

    /// Runs `step` on the stored refresh-token families, atomically across nodes.
    pub async fn with_refresh_families<T>(
        &self,
        step: impl FnOnce(&mut RefreshFamilies) -> T,
    ) -> Result<T, IdentityError> {
        let policy = self.refresh_policy;
        let clock = self.clock.clone();
        let answer = self
            .store
            .identities()
            .update_refresh_families(move |stored| {
                let snapshot = stored
                    .and_then(|text| serde_json::from_str::<RefreshSnapshot>(&text).ok())
                    .unwrap_or_default();
                let mut families = RefreshFamilies::restore(policy, snapshot, clock);
                families.purge();
                let answer = step(&mut families);
                let text = serde_json::to_string(&families.snapshot()).unwrap_or_default();
                (text, answer)
            })
            .await?;
        Ok(answer)
    }

    // Secrets at rest.

    pub fn seal(&self, material: &[u8], context: &str) -> Result<String, IdentityError> {
        Ok(b64_encode(&self.kek.wrap(material, context.as_bytes())?))
    }

    pub fn unseal(&self, sealed: &str, context: &str) -> Result<SecretBytes, IdentityError> {
        let opened = self.kek.unwrap(&decode(sealed)?, context.as_bytes())?;
        Ok(SecretBytes::new(opened.expose().to_vec()))
    }

    // Authentication.

    /// The caller a stored principal authenticates as, with `roles` (already narrowed to what
    /// the credential grants).
    fn caller(principal: &Principal, roles: Vec<String>, credential: String) -> Arc<Caller> {
        Arc::new(Caller {
            subject: subject_of(principal),
            roles,
            credential,
        })
    }

    fn authenticate_api_key(&self, parsed: &ParsedApiKey) -> AuthOutcome {
        let Some(record) = self.api_key(&parsed.id) else {
            self.reject("apikey", None, "unknown_api_key");
            return AuthOutcome::Invalid;
        };
        if let Err(error) = record.verify(parsed, self.clock.now()) {
            self.reject(
                "apikey",
                Some(&record.principal.to_string()),
                api_key_code(&error),
            );
            return AuthOutcome::Invalid;
        }
        let Some(principal) = self.principal(&record.principal.to_string()) else {
            self.reject(
                "apikey",
                Some(&record.principal.to_string()),
                "unknown_principal",
            );
            return AuthOutcome::Invalid;
        };
        match record.effective_scopes(&principal) {
            Ok(scopes) => AuthOutcome::Authenticated(Self::caller(
                &principal,
                scopes.into_iter().collect(),
                format!("apikey:{}", record.id),
            )),
            Err(error) => {
                self.reject(
                    "apikey",
                    Some(&record.principal.to_string()),
                    api_key_code(&error),
                );
                AuthOutcome::Invalid
            }
        }
    }

    fn authenticate_access_token(&self, token: &str) -> AuthOutcome {
        let claims = match self.validate_uncut(token) {
            Ok(claims) => claims,
            Err(error) => {
                self.reject("access_token", None, error.code());
                return AuthOutcome::Invalid;
            }
        };
        let subject = claims.subject.to_string();
        let Some(principal) = self.principal(&subject) else {
            self.reject("access_token", Some(&subject), "unknown_principal");
            return AuthOutcome::Invalid;
        };
        if !principal.is_active() {
            self.reject("access_token", Some(&subject), "principal_disabled");
            return AuthOutcome::Invalid;
        }
        if self.is_cut_off(&claims) {
            self.reject("access_token", Some(&subject), TokenError::Revoked.code());
            return AuthOutcome::Invalid;
        }
        AuthOutcome::Authenticated(Self::caller(
            &principal,
            token_roles(&principal, &claims),
            format!("jwt:{}", claims.jti),
        ))
    }

    /// A refused credential is a security event and an audit record (queued: authentication
    /// answers from memory and cannot wait for the audit log).
    fn reject(&self, method: &str, principal: Option<&str>, code: &str) {
        tracing::info!(
            auth.method = method,
            principal.id = principal.unwrap_or(""),
            reason = code,
            "auth.rejected"
        );
        let mut event = security_event(SecurityEventType::AuthenticationFailure, Severity::Low);
        event.principal = principal.map(str::to_owned);
        event
            .details
            .insert("auth.method".into(), Value::from(method));
        event.details.insert("reason".into(), Value::from(code));
        event.tags.push("token_rejected".into());
        let _ = self.events.send(Arc::new(event));
        self.audit_rejection(method, principal, code);
    }

    /// Queues the `identity.token.reject` audit record of a refused credential (`method`:
    /// `apikey`, `access_token`, `bearer`, `federation`, `certificate`...).
    pub(crate) fn audit_rejection(&self, method: &str, principal: Option<&str>, code: &str) {
        let actor = principal
            .and_then(|p| Actor::parse(p).ok())
            .unwrap_or(Actor::System);
        let Ok(action) = ActionName::parse("identity.token.reject") else {
            return;
        };
        let mut draft = RecordDraft::new(
            maos_audit::Timestamp::now(),
            actor,
            action,
            principal.unwrap_or(""),
            Outcome::Failure {
                reason: code.to_owned(),
            },
        );
        draft
            .details
            .insert("auth.method".into(), Value::from(method));
        if self.rejections.try_send(draft).is_err() {
            metrics::counter!("maos_identity_rejections_unaudited_total").increment(1);
        }
    }

    /// The queue of refused-credential audit records; `None` once taken.
    fn take_rejections(&self) -> Option<mpsc::Receiver<RecordDraft>> {
        self.rejections_rx.lock().ok()?.take()
    }
}

/// Runs until the server stops: appends queued audit records of refused credentials, and
/// every minute drops signing keys past their overlap and revocations of expired tokens.
pub async fn run_maintenance(state: Arc<crate::state::AppState>) {
    let Some(mut rejections) = state.identity.take_rejections() else {
        return;
    };
    let mut tick = tokio::time::interval(MAINTENANCE_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            draft = rejections.recv() => {
                let Some(draft) = draft else { return };
                // `audit` logs its own failure; the request was refused either way.
                let _ = state.audit(draft).await;
            }
            _ = tick.tick() => {
                if let Err(error) = state.identity.reload_signing_keys().await {
                    tracing::error!(%error, "identity.maintenance.signing_keys_failed");
                }
                if let Err(error) = state.identity.reload_revocations().await {
                    tracing::error!(%error, "identity.maintenance.revocations_failed");
                }
            }
        }
    }
}

/// The roles an access token grants: a client-credentials token the scopes it was issued with
/// that the principal still holds; a login token all of the principal's roles.
pub fn token_roles(principal: &Principal, claims: &AccessTokenClaims) -> Vec<String> {
    if claims.client_id.is_some() {
        claims
            .scope
            .intersection(&principal.roles)
            .cloned()
            .collect()
    } else {
        principal.roles.iter().cloned().collect()
    }
}

/// Authenticates MAOS access tokens and API keys from memory. Bearer values of neither shape
/// are left to other authenticators.
#[derive(Debug)]
pub struct IdentityAuthenticator {
    pub identity: Arc<IdentityService>,
}

impl Authenticator for IdentityAuthenticator {
    fn authenticate(&self, credentials: &Credentials<'_>) -> AuthOutcome {
        let Some(token) = credentials.authorization.and_then(bearer) else {
            return AuthOutcome::Missing;
        };
        if let Ok(parsed) = ParsedApiKey::parse(token) {
            return self.identity.authenticate_api_key(&parsed);
        }
        if token.bytes().filter(|b| *b == b'.').count() == 2 {
            return self.identity.authenticate_access_token(token);
        }
        AuthOutcome::Missing
    }
}

/// The end of the authentication chain: a bearer value that reached it is no credential MAOS
/// knows (a wrong admin or API token, a random string). It is refused and audited.
#[derive(Debug)]
pub struct UnrecognizedBearer {
    pub identity: Arc<IdentityService>,
}

impl Authenticator for UnrecognizedBearer {
    fn authenticate(&self, credentials: &Credentials<'_>) -> AuthOutcome {
        match credentials.authorization {
            None => AuthOutcome::Missing,
            Some(_) => {
                self.identity.reject("bearer", None, "unknown_credential");
                AuthOutcome::Invalid
            }
        }
    }
}

/// Gives callers authenticated by other means (the stored API tokens) their stored principal:
/// a disabled principal is refused, stored attributes are merged over the credential's and
/// stored roles added to the credential's.
#[derive(Debug)]
pub struct StoredPrincipalAuthenticator {
    pub inner: Arc<dyn Authenticator>,
    pub identity: Arc<IdentityService>,
}

impl Authenticator for StoredPrincipalAuthenticator {
    fn authenticate(&self, credentials: &Credentials<'_>) -> AuthOutcome {
        match self.inner.authenticate(credentials) {
            AuthOutcome::Authenticated(caller) => {
                let Some(principal) = self.identity.principal(&caller.subject.qualified()) else {
                    return AuthOutcome::Authenticated(caller);
                };
                if !principal.is_active() {
                    self.identity.reject(
                        "api_token",
                        Some(&principal.id.to_string()),
                        "principal_disabled",
                    );
                    return AuthOutcome::Invalid;
                }
                let mut enriched = Caller::clone(&caller);
                merge_attributes(&mut enriched.subject, &principal);
                for role in &principal.roles {
                    if !enriched.roles.contains(role) {
                        enriched.roles.push(role.clone());
                    }
                }
                AuthOutcome::Authenticated(Arc::new(enriched))
            }
            other => other,
        }
    }
}

/// The subject a principal is to the engine: `user`/`agent`, its name, its stored attributes.
pub fn subject_of(principal: &Principal) -> Subject {
    let mut subject = Subject::new(principal.id.kind().prefix(), principal.id.name());
    merge_attributes(&mut subject, principal);
    subject
}

/// Stored attributes over the ones the subject carries (stored win).
pub fn merge_attributes(subject: &mut Subject, principal: &Principal) {
    if let Ok(Value::Object(stored)) = serde_json::to_value(&principal.attributes) {
        for (key, value) in stored {
            subject.properties.insert(key, value);
        }
    }
}

pub fn principal_from_row(row: &PrincipalRow) -> Result<Principal, String> {
    serde_json::from_value(json!({
        "id": row.id,
        "status": row.status,
        "attributes": row.attributes,
        "roles": row.roles,
    }))
    .map_err(|e| e.to_string())
}

/// The stored form of a principal: status, attributes object, roles.
pub fn principal_columns(principal: &Principal) -> (String, Map<String, Value>, Vec<String>) {
    let status = match principal.status {
        maos_identity::PrincipalStatus::Active => "active",
        maos_identity::PrincipalStatus::Disabled => "disabled",
    };
    let attributes = match serde_json::to_value(&principal.attributes) {
        Ok(Value::Object(map)) => map,
        _ => Map::new(),
    };
    (
        status.to_owned(),
        attributes,
        principal.roles.iter().cloned().collect(),
    )
}

pub fn security_event(event_type: SecurityEventType, severity: Severity) -> SecurityEvent {
    let mut id = [0u8; 16];
    let _ = getrandom::fill(&mut id);
    SecurityEvent::new(
        hex::encode(id),
        Timestamp::now(),
        "identity",
        event_type,
        severity,
    )
}

fn api_key_code(error: &maos_identity::apikey::ApiKeyError) -> &'static str {
    use maos_identity::apikey::ApiKeyError;
    match error {
        ApiKeyError::Malformed => "malformed_api_key",
        ApiKeyError::Mismatch => "api_key_mismatch",
        ApiKeyError::Revoked => "api_key_revoked",
        ApiKeyError::Expired => "api_key_expired",
        ApiKeyError::Superseded => "api_key_superseded",
        ApiKeyError::ScopeNotHeld(_) => "scope_not_held",
        ApiKeyError::PrincipalDisabled => "principal_disabled",
        ApiKeyError::WrongPrincipal => "wrong_principal",
        _ => "api_key_invalid",
    }
}

pub fn signing_key_context(kid: &str) -> String {
    format!("maos-identity:signing-key:{kid}")
}

pub fn totp_context(principal: &str) -> String {
    format!("maos-identity:totp:{principal}")
}

fn parse_algorithm(name: &str) -> Result<SigningAlgorithm, IdentityError> {
    match name {
        "EdDSA" => Ok(SigningAlgorithm::EdDsa),
        "ES256" => Ok(SigningAlgorithm::Es256),
        other => Err(IdentityError::Corrupt(format!(
            "signing algorithm `{other}`"
        ))),
    }
}

fn decode(text: &str) -> Result<Vec<u8>, IdentityError> {
    b64_decode(text).ok_or_else(|| IdentityError::Corrupt("sealed secret is not base64url".into()))
}

fn poisoned<T>(_: std::sync::PoisonError<T>) -> IdentityError {
    IdentityError::Corrupt("an identity lock was poisoned".into())
}

pub fn unix_seconds(time: SystemTime) -> i64 {
    maos_identity::token::unix_seconds(time)
}

fn millis(time: SystemTime) -> i64 {
    let elapsed = time.duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX)
}

fn from_millis(ms: i64) -> SystemTime {
    UNIX_EPOCH + Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// Scopes requested as a space-separated list.
pub fn parse_scope(text: &str) -> BTreeSet<String> {
    text.split(' ')
        .filter(|s| !s.is_empty())
        .map(str::to_owned)
        .collect()
}
