//! The server's shared state: the store, and in memory the compiled policy, resource attributes
//! and tokens, each swapped whole when the store announces a change.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use arc_swap::ArcSwap;
use maos_audit::RecordDraft;
use maos_core::event::SecurityEvent;
use maos_core::{Request, Resource, Subject};
use maos_policy::{Bundle, DecisionOptions, DecisionPoint, LoadErrors, Response, TestOutcome};
use maos_store::{
    Change, NewPolicyVersion, PolicyVersion, PolicyVersionSummary, Store, StoreError,
};
use serde_json::{Map, Value, json};
use tokio::sync::{Mutex, broadcast};

use crate::audit::AuditSink;
use crate::auth::{AuthChain, AuthOutcome, Authenticator, Caller, Credentials, TokenCache};
use crate::config::Config;
use crate::error::ApiError;
use crate::identity::{IdentityAuthenticator, IdentityService, StoredPrincipalAuthenticator};
use crate::routes::forward_auth::RouteTable;

/// The compiled policy in force and the stored version it came from.
#[derive(Debug)]
pub struct Engine {
    pub point: DecisionPoint,
    pub version: Option<PolicyVersionSummary>,
}

/// Resource attributes by type, then id (two lookups, no key allocation per request).
type ResourceMap = HashMap<String, HashMap<String, Arc<Map<String, Value>>>>;

/// Everything a request handler needs.
#[derive(Debug)]
pub struct AppState {
    pub config: Arc<Config>,
    pub store: Store,
    pub engine: ArcSwap<Engine>,
    resources: ArcSwap<ResourceMap>,
    pub tokens: Arc<TokenCache>,
    pub authenticator: Arc<dyn Authenticator>,
    pub routes: RouteTable,
    /// Where audit records go (see [`crate::audit`]).
    pub audit_sink: Arc<dyn AuditSink>,
    /// Security events for the detection pipeline; sending never blocks.
    pub events: broadcast::Sender<Arc<SecurityEvent>>,
    /// Stored principals and credentials, signing keys, revocations (see [`crate::identity`]).
    pub identity: Arc<IdentityService>,
    /// The key service and secrets store, attached once at start (see [`crate::keys`]).
    pub keys: std::sync::OnceLock<Arc<crate::keys::KeyService>>,
    /// Trusted external issuers (their JWKS refresh runs in the server's background tasks).
    pub federation: Arc<crate::federation::Federation>,
    /// The gateway's dynamic blocklist, refreshed from the store on change.
    pub blocklist: ArcSwap<maos_gateway::firewall::Blocklist>,
    /// The SIEM's ingestion queue and alerts (see [`crate::siem`]).
    pub siem: crate::siem::SiemHub,
    /// Automated response: playbooks, actions, quarantined and watched targets (see
    /// [`crate::response`]).
    pub responder: crate::response::Responder,
    /// The default bundle's roles (`maos-admin`, `maos-pep`), added to every bundle that does
    /// not define them, so that any bundle can be uploaded without locking the admin out.
    system_roles: Vec<maos_policy::Role>,
    /// Serialises reloads so that a slower, older reload never overwrites a newer one.
    reload: Mutex<()>,
    pub ready: AtomicBool,
    /// The HTTP listener's address once bound.
    pub http_addr: std::sync::OnceLock<std::net::SocketAddr>,
}

/// How many security events may wait for a slow subscriber before it misses some.
const EVENT_BUFFER: usize = 4096;

/// The bundle installed on first start: it protects the admin API.
pub const DEFAULT_BUNDLE: &str = include_str!("default-bundle.yaml");

impl AppState {
    pub fn new(
        config: Arc<Config>,
        store: Store,
        audit_sink: Arc<dyn AuditSink>,
        kek: Arc<dyn maos_crypto::KekProvider>,
    ) -> Result<AppState, anyhow::Error> {
        let point = DecisionPoint::load(DEFAULT_BUNDLE, "default-bundle.yaml")
            .map_err(|e| anyhow::anyhow!("the built-in default bundle is invalid: {e}"))?;
        let tokens = Arc::new(TokenCache::default());
        let routes = RouteTable::new(&config.forward_auth.routes);
        let system_roles = point.bundle().roles.clone();
        let events = broadcast::channel(EVENT_BUFFER).0;
        let identity = Arc::new(open_identity(&config, &store, &events, kek)?);
        let federation = Arc::new(
            crate::federation::Federation::new(&config.identity.issuers)
                .map_err(|e| anyhow::anyhow!("{e}"))?,
        );
        let mapper = maos_identity::certificate::CertificateMapper::new(
            config.identity.certificate_rules.clone(),
        )
        .map_err(|e| anyhow::anyhow!("identity.certificate_rules: {e}"))?;
        // Federation first: it claims only tokens whose issuer is a configured external one,
        // while the identity provider refuses every other JWT as its own.
        let mut chain = AuthChain::new(vec![Arc::new(StoredPrincipalAuthenticator {
            inner: tokens.clone(),
            identity: identity.clone(),
        })]);
        if !federation.is_empty() {
            chain.push(Arc::new(crate::federation::FederationAuthenticator::new(
                federation.clone(),
                events.clone(),
                identity.clone(),
            )));
        }
        chain.push(Arc::new(IdentityAuthenticator {
            identity: identity.clone(),
        }));
        // A certificate names a principal; its stored roles, attributes and status apply as
        // for any other credential.
        chain.push(Arc::new(StoredPrincipalAuthenticator {
            inner: Arc::new(crate::mtls::CertificateAuthenticator::new(
                mapper,
                events.clone(),
                identity.clone(),
            )),
            identity: identity.clone(),
        }));
        // Last: a bearer value that no authenticator recognised is refused and audited, so
        // that guessing at tokens leaves a trace.
        chain.push(Arc::new(crate::identity::UnrecognizedBearer {
            identity: identity.clone(),
        }));
        let authenticator: Arc<dyn Authenticator> = Arc::new(chain);
        let siem = crate::siem::SiemHub::new(config.siem.queue);
        let responder = crate::response::Responder::new(&config.response);
        Ok(AppState {
            system_roles,
            config,
            store,
            engine: ArcSwap::from_pointee(Engine {
                point,
                version: None,
            }),
            resources: ArcSwap::from_pointee(HashMap::new()),
            authenticator,
            identity,
            tokens,
            routes,
            audit_sink,
            events,
            keys: std::sync::OnceLock::new(),
            federation,
            blocklist: ArcSwap::from_pointee(maos_gateway::firewall::Blocklist::default()),
            siem,
            responder,
            reload: Mutex::new(()),
            ready: AtomicBool::new(false),
            http_addr: std::sync::OnceLock::new(),
        })
    }

    /// Reads everything cached from the store.
    pub async fn reload_all(&self) -> Result<(), StoreError> {
        self.reload_policy().await?;
        self.reload_resources().await?;
        self.reload_tokens().await?;
        self.identity
            .reload_all()
            .await
            .map_err(identity_store_error)?;
        self.reload_blocklist().await?;
        self.responder.reload(&self.store).await?;
        Ok(())
    }

    /// Compiles the active version and swaps it in. A stored version that no longer compiles
    /// (it was valid when stored) is logged and the engine in force is kept.
    pub async fn reload_policy(&self) -> Result<(), StoreError> {
        let _guard = self.reload.lock().await;
        let Some(active) = self.store.policy_versions().active().await? else {
            return Ok(());
        };
        if self
            .engine
            .load()
            .version
            .as_ref()
            .is_some_and(|v| *v == active.summary)
        {
            return Ok(());
        }
        match compile_version(&active) {
            Ok(point) => {
                tracing::info!(policy.version = active.summary.id, "policy.engine.swapped");
                self.engine.store(Arc::new(Engine {
                    point,
                    version: Some(active.summary),
                }));
            }
            Err(errors) => {
                tracing::error!(policy.version = active.summary.id, %errors, "policy.engine.stored_version_invalid");
            }
        }
        Ok(())
    }

    pub async fn reload_resources(&self) -> Result<(), StoreError> {
        let _guard = self.reload.lock().await;
        let mut map: ResourceMap = HashMap::new();
        for record in self.store.resources().all().await? {
            map.entry(record.kind)
                .or_default()
                .insert(record.id, Arc::new(record.attributes));
        }
        self.resources.store(Arc::new(map));
        Ok(())
    }

    pub async fn reload_resource(&self, kind: &str, id: &str) -> Result<(), StoreError> {
        let _guard = self.reload.lock().await;
        let record = self.store.resources().get(kind, id).await?;
        let mut map = ResourceMap::clone(&self.resources.load());
        match record {
            Some(record) => {
                map.entry(record.kind)
                    .or_default()
                    .insert(record.id, Arc::new(record.attributes));
            }
            None => {
                if let Some(by_id) = map.get_mut(kind) {
                    by_id.remove(id);
                    if by_id.is_empty() {
                        map.remove(kind);
                    }
                }
            }
        }
        self.resources.store(Arc::new(map));
        Ok(())
    }

    pub async fn reload_tokens(&self) -> Result<(), StoreError> {
        let _guard = self.reload.lock().await;
        let tokens = self.store.api_tokens().list().await?;
        self.tokens.replace(tokens);
        Ok(())
    }

    /// Applies one announced change.
    pub async fn apply_change(&self, change: &Change) -> Result<(), StoreError> {
        match change {
            Change::Policy => self.reload_policy().await,
            Change::Resource { kind, id } => self.reload_resource(kind, id).await,
            Change::Tokens => self.reload_tokens().await,
            Change::Principals => {
                self.identity
                    .reload_principals()
                    .await
                    .map_err(identity_store_error)?;
                self.identity
                    .reload_api_keys()
                    .await
                    .map_err(identity_store_error)
            }
            Change::ApiKeys => self
                .identity
                .reload_api_keys()
                .await
                .map_err(identity_store_error),
            Change::SigningKeys => self
                .identity
                .reload_signing_keys()
                .await
                .map_err(identity_store_error),
            Change::Revocations => self
                .identity
                .reload_revocations()
                .await
                .map_err(identity_store_error),
            Change::Key { name } => match self.keys.get() {
                Some(keys) => keys.reload_key(name).await,
                None => Ok(()),
            },
            Change::Resync => {
                if let Some(keys) = self.keys.get() {
                    keys.reload_all().await?;
                }
                self.reload_all().await
            }
            Change::Blocklist => self.reload_blocklist().await,
            Change::Responses => self.responder.reload(&self.store).await,
            // Announcements for state this server does not cache.
            _ => Ok(()),
        }
    }

    /// Stored attributes of the request's resource, merged over the ones it supplies (stored
    /// ones win).
    pub fn enrich(&self, resource: &mut Resource) {
        let cache = self.resources.load();
        if let Some(stored) = cache
            .get(&resource.kind)
            .and_then(|by_id| by_id.get(&resource.id))
        {
            for (key, value) in stored.iter() {
                resource.properties.insert(key.clone(), value.clone());
            }
        }
    }

    /// The stored principal behind a request's subject: its attributes merged over the supplied
    /// ones (stored win) and its role bindings returned. Requests never bring their own roles.
    /// `Err` names a disabled principal, which every decision denies.
    pub fn enrich_subject(&self, subject: &mut Subject) -> Result<Vec<String>, String> {
        let Some(principal) = self.identity.principal(&subject.qualified()) else {
            return Ok(Vec::new());
        };
        if !principal.is_active() {
            return Err(format!("principal `{}` is disabled", principal.id));
        }
        crate::identity::merge_attributes(subject, &principal);
        Ok(principal.roles.iter().cloned().collect())
    }

    /// Decides one request about a subject the request names (the decision APIs), after
    /// merging stored resource and principal attributes and adding the principal's stored
    /// roles. A disabled principal is denied.
    pub fn decide(&self, mut request: Request, options: &DecisionOptions) -> Response {
        let stored_roles = match self.enrich_subject(&mut request.subject) {
            Ok(roles) => roles,
            Err(reason) => return self.count(disabled_response(reason)),
        };
        if stored_roles.is_empty() {
            return self.decide_as_caller(request, options);
        }
        let mut extended = options.clone();
        extended.extra_roles.extend(stored_roles);
        self.decide_as_caller(request, &extended)
    }

    /// Decides a request whose subject is the authenticated caller: the authenticator already
    /// looked the principal up, and `options.extra_roles` are the roles its credential grants
    /// (an API key's scopes may be fewer than the stored roles).
    /// A quarantined resource is denied whatever the policies say; a decision about a watched
    /// address, principal or resource carries a `monitor` obligation.
    pub fn decide_as_caller(&self, mut request: Request, options: &DecisionOptions) -> Response {
        self.enrich(&mut request.resource);
        if let Some(reason) = self
            .responder
            .quarantine_reason(&request.resource.kind, &request.resource.id)
        {
            return self.count(disabled_response(reason));
        }
        let mut response = self.engine.load().point.decide_with(&request, options);
        self.report_monitoring(&request, &mut response);
        self.count(response)
    }

    /// Adds the `monitor` obligation when the request's client address (`context.ip`),
    /// subject or resource is watched by an `increase_monitoring` action.
    fn report_monitoring(&self, request: &Request, response: &mut Response) {
        let ip = request
            .context
            .get("ip")
            .and_then(Value::as_str)
            .and_then(|ip| ip.parse().ok());
        let watched = self.responder.watched(
            ip,
            Some(&request.subject.qualified()),
            Some(&request.resource.qualified()),
        );
        if watched.is_empty() {
            return;
        }
        let mut params = Map::new();
        params.insert("level".into(), json!("elevated"));
        params.insert("targets".into(), json!(watched));
        response.obligations.push(maos_policy::Obligation {
            id: "monitor".into(),
            on: if response.decision {
                maos_policy::Effect::Permit
            } else {
                maos_policy::Effect::Deny
            },
            params,
        });
    }

    fn count(&self, response: Response) -> Response {
        metrics::counter!("maos_decisions_total", "result" => decision_label(response.decision))
            .increment(1);
        response
    }

    /// Authenticates the caller and asks the engine whether it may do `action` on the MAOS
    /// resource `maos:<id>`: the server protects its own API with its own policies.
    pub fn authorize_caller(
        &self,
        credentials: &Credentials<'_>,
        resource_id: &str,
        action: &str,
    ) -> Result<Arc<Caller>, ApiError> {
        let caller = match self.authenticator.authenticate(credentials) {
            AuthOutcome::Authenticated(caller) => caller,
            AuthOutcome::Missing => {
                return Err(ApiError::unauthenticated(
                    &self.config.forward_auth.realm,
                    false,
                ));
            }
            AuthOutcome::Invalid => {
                return Err(ApiError::unauthenticated(
                    &self.config.forward_auth.realm,
                    true,
                ));
            }
        };
        let request = Request {
            subject: caller.subject.clone(),
            resource: Resource::new("maos", resource_id),
            action: maos_core::Action::new(action),
            context: Map::new(),
        };
        let options = DecisionOptions {
            extra_roles: caller.roles.clone(),
            explain: false,
        };
        let response = self.engine.load().point.decide_with(&request, &options);
        if response.decision {
            Ok(caller)
        } else {
            tracing::info!(
                principal.id = %caller.subject.qualified(),
                resource = %format!("maos:{resource_id}"),
                action,
                decision = "deny",
                "admin.denied"
            );
            Err(ApiError::forbidden(format!(
                "`{}` may not `{action}` `maos:{resource_id}`",
                caller.subject.qualified()
            )))
        }
    }

    /// The bundle with the system roles it does not define itself.
    pub fn with_system_roles(&self, mut bundle: Bundle) -> Bundle {
        for role in &self.system_roles {
            if !bundle.roles.iter().any(|r| r.name == role.name) {
                bundle.roles.push(role.clone());
            }
        }
        bundle
    }

    /// Validates a candidate bundle: it compiles, its tests pass, and it keeps the configured
    /// admin able to change policies (so no upload can lock every administrator out).
    pub fn check_candidate(
        &self,
        bundle: Bundle,
    ) -> Result<(DecisionPoint, Vec<TestOutcome>), ApiError> {
        let point = DecisionPoint::compile(bundle).map_err(invalid_bundle)?;
        let outcomes = point.run_tests();
        if outcomes.iter().any(|o| !o.passed) {
            let failed = outcomes.iter().filter(|o| !o.passed).count();
            return Err(ApiError::unprocessable(
                "bundle_tests_failed",
                format!("{failed} of the bundle's {} tests failed", outcomes.len()),
            )
            .with_details(json!({ "tests": outcomes })));
        }
        self.check_no_lockout(&point)?;
        Ok((point, outcomes))
    }

    fn check_no_lockout(&self, point: &DecisionPoint) -> Result<(), ApiError> {
        let admin = &self.config.admin;
        let subject = match admin.principal.split_once(':') {
            Some((kind, id)) => Subject::new(kind, id),
            None => Subject::new("user", admin.principal.as_str()),
        };
        let request = Request {
            subject,
            resource: Resource::new("maos", "policy"),
            action: maos_core::Action::new("write"),
            context: Map::new(),
        };
        let options = DecisionOptions {
            extra_roles: admin.roles.clone(),
            explain: false,
        };
        if point.decide_with(&request, &options).decision {
            Ok(())
        } else {
            Err(ApiError::unprocessable(
                "admin_lockout",
                format!(
                    "the bundle would deny `{}` (roles {:?}) `write` on `maos:policy`; keep the \
                     maos-admin role and its binding (see the default bundle)",
                    admin.principal, admin.roles
                ),
            ))
        }
    }

    /// Stores `bundle` as a new active version after [`Self::check_candidate`], and swaps it in
    /// before returning. `expected_active` guards read-modify-write edits.
    pub async fn install(
        &self,
        bundle: Bundle,
        author: &str,
        comment: &str,
        expected_active: Option<Option<i64>>,
    ) -> Result<(PolicyVersion, Vec<TestOutcome>), ApiError> {
        let bundle = self.with_system_roles(bundle);
        let source = bundle.to_json();
        let (_, outcomes) = self.check_candidate(bundle)?;
        let version = self
            .store
            .policy_versions()
            .create(NewPolicyVersion {
                author: author.to_owned(),
                comment: comment.to_owned(),
                source,
                activate: true,
                expected_active,
            })
            .await?;
        self.reload_policy().await?;
        Ok((version, outcomes))
    }

    /// Edits the active bundle with `edit` and installs the result as a new version; retried
    /// when another writer changed the active version in between.
    pub async fn edit_bundle<T>(
        &self,
        author: &str,
        comment: &str,
        mut edit: impl FnMut(&mut Bundle) -> Result<T, ApiError>,
    ) -> Result<(PolicyVersionSummary, T), ApiError> {
        for _ in 0..5 {
            let active = self.store.policy_versions().active().await?;
            let (mut bundle, expected) = match &active {
                Some(version) => (parse_stored(version)?, Some(version.summary.id)),
                None => (self.engine.load().point.bundle().clone(), None),
            };
            let value = edit(&mut bundle)?;
            match self.install(bundle, author, comment, Some(expected)).await {
                Ok((version, _)) => return Ok((version.summary, value)),
                Err(error) if error.status == axum::http::StatusCode::CONFLICT => continue,
                Err(error) => return Err(error),
            }
        }
        Err(ApiError::conflict(
            "the policy changed concurrently too often; retry",
        ))
    }

    /// Checks a stored version can be activated (compiles, tests pass, no lockout).
    pub fn check_stored(&self, version: &PolicyVersion) -> Result<(), ApiError> {
        let bundle = parse_stored(version)?;
        self.check_candidate(bundle).map(|_| ())
    }

    /// Stores one audit record before the operation it describes answers. An audit that cannot
    /// be written refuses the operation: 503 `audit_unavailable`.
    pub async fn audit(&self, draft: RecordDraft) -> Result<(), ApiError> {
        self.audit_sink.append(draft).await.map_err(|error| {
            tracing::error!(%error, "audit.append_failed");
            ApiError::new(
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "audit_unavailable",
                "the audit log cannot be written; the operation was refused",
            )
        })
    }

    /// Publishes a security event to whoever listens (the SIEM); dropped when nobody does.
    pub fn emit(&self, event: SecurityEvent) {
        let _ = self.events.send(Arc::new(event));
    }

    /// The base URL for metadata documents (see [`Config::public_base_url`]).
    pub fn public_base_url(&self) -> String {
        let bound = self
            .http_addr
            .get()
            .copied()
            .unwrap_or(self.config.server.listen);
        self.config.public_base_url(bound)
    }

    /// Marks the server ready or not for `/readyz`.
    pub fn set_ready(&self, ready: bool) {
        self.ready.store(ready, Ordering::Release);
    }

    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::Acquire)
    }
}

/// Opens the identity provider over the store, with the key service's key-encryption key.
fn open_identity(
    config: &Config,
    store: &Store,
    events: &broadcast::Sender<Arc<SecurityEvent>>,
    kek: Arc<dyn maos_crypto::KekProvider>,
) -> Result<IdentityService, anyhow::Error> {
    use anyhow::Context;
    let dir = &config.server.data_dir;
    std::fs::create_dir_all(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))?;
    let issuer = if config.server.public_url.is_empty() {
        format!("http://{}", config.server.listen)
    } else {
        config.server.public_url.trim_end_matches('/').to_owned()
    };
    IdentityService::new(
        store.clone(),
        kek,
        issuer,
        Arc::new(maos_core::SystemClock),
        events.clone(),
    )
}

fn identity_store_error(error: crate::identity::IdentityError) -> StoreError {
    match error {
        crate::identity::IdentityError::Store(error) => error,
        other => StoreError::Corrupt {
            what: "identity state",
            detail: other.to_string(),
        },
    }
}

/// The deny answered for a disabled principal or a quarantined resource, whatever the
/// policies say.
fn disabled_response(reason: String) -> Response {
    Response {
        decision: false,
        determining: Vec::new(),
        obligations: Vec::new(),
        reasons: vec![reason],
        trace: None,
    }
}

fn compile_version(version: &PolicyVersion) -> Result<DecisionPoint, LoadErrors> {
    DecisionPoint::load(
        &version.source,
        &format!("policy version {}", version.summary.id),
    )
}

/// The bundle of a stored version.
pub fn parse_stored(version: &PolicyVersion) -> Result<Bundle, ApiError> {
    Bundle::parse(
        &version.source,
        &format!("policy version {}", version.summary.id),
    )
    .map_err(|e| ApiError::internal("stored policy version", e))
}

/// The 422 for a bundle that does not load.
pub fn invalid_bundle(errors: LoadErrors) -> ApiError {
    ApiError::unprocessable("invalid_bundle", errors.to_string())
        .with_details(json!({ "errors": errors.errors }))
}

pub fn decision_label(decision: bool) -> &'static str {
    if decision { "allow" } else { "deny" }
}

/// Keeps the caches in step with the store until the channel closes.
pub async fn follow_changes(state: Arc<AppState>, mut changes: broadcast::Receiver<Change>) {
    loop {
        let change = match changes.recv().await {
            Ok(change) => change,
            Err(broadcast::error::RecvError::Lagged(missed)) => {
                tracing::warn!(missed, "store.changes.lagged");
                Change::Resync
            }
            Err(broadcast::error::RecvError::Closed) => return,
        };
        if let Err(error) = state.apply_change(&change).await {
            tracing::error!(%error, ?change, "store.change.reload_failed");
        }
    }
}
