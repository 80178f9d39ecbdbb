//! The key service: the key ring of `maos-crypto` kept in step with the store, the root key
//! (KEK) provider, the authentication of stored records, the secrets store's encryption and the
//! background jobs (automatic rotation, destruction after the deletion window, re-encryption of
//! secrets).
//!
//! Every lifecycle change runs under one lock: change the ring, store the key's record as the
//! next revision with its MAC, and on any storage failure reload the ring from the store, so
//! memory never holds a change the database does not.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context;
use arc_swap::ArcSwap;
use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use maos_core::SystemClock;
use maos_crypto::{
    Ciphertext, CreateKeyOptions, CryptoError, FileKek, KekProvider, KeyMetadata, KeyRecord,
    KeyRing, KeyType, KeyUsage, Pkcs11Config, Pkcs11Kek, RecordAuthenticator, SecretBytes,
};
use maos_store::{
    RewrapJob, RewrapJobState, RewrapOutcome, SecretVersion, Store, StoreError, StoredKeyRecord,
};
use tokio::sync::Notify;

use crate::audit::AuditSink;
use crate::config::{Config, KekProviderKind};
use crate::error::ApiError;

/// The setting holding the KEK-wrapped record authentication key.
const RECORD_MAC_SETTING: &str = "record_mac_key";
/// The purpose prefix of a secret's associated data.
const SECRET_AAD_PURPOSE: &[u8] = b"maos/secret/v1";

/// The key service of one server.
pub struct KeyService {
    kek: Arc<dyn KekProvider>,
    store: Store,
    records: RecordAuthenticator,
    ring: ArcSwap<KeyRing>,
    /// The stored revision of each loaded key.
    revisions: Mutex<HashMap<String, i64>>,
    /// Keys whose stored record failed authentication or did not load, with the reason.
    refused: Mutex<HashMap<String, String>>,
    /// Serialises lifecycle changes and their storage.
    changes: tokio::sync::Mutex<()>,
    /// Wakes the re-encryption worker.
    rewrap_wake: Notify,
    pub secrets_key: String,
    rewrap_chunk: i64,
    /// Where the background jobs' own changes (automatic rotation, destruction, re-encryption)
    /// are audited, with the actor `system`.
    audit: Arc<dyn AuditSink>,
}

impl std::fmt::Debug for KeyService {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyService")
            .field("kek", &self.kek.describe())
            .field("secrets_key", &self.secrets_key)
            .finish_non_exhaustive()
    }
}

/// The KEK provider the configuration names.
pub fn open_kek(config: &Config) -> anyhow::Result<Arc<dyn KekProvider>> {
    let keys = &config.keys;
    Ok(match keys.kek_provider {
        KekProviderKind::File => {
            let path = config.kek_file();
            Arc::new(
                FileKek::open_or_create(&path, keys.kek_mechanism)
                    .with_context(|| format!("cannot open the kek file {}", path.display()))?,
            )
        }
        KekProviderKind::Pkcs11 => Arc::new(
            Pkcs11Kek::connect(&Pkcs11Config {
                module: keys.pkcs11_module.clone(),
                token_label: keys.pkcs11_token_label.clone(),
                user_pin: SecretBytes::copy_from(keys.pkcs11_pin.as_bytes()),
                kek_label: keys.pkcs11_kek_label.clone(),
                mechanism: keys.kek_mechanism,
            })
            .context("cannot use the pkcs#11 kek")?,
        ),
    })
}

impl KeyService {
    /// Opens the KEK, loads (or on first start creates) the record authentication key, loads
    /// every stored key, and creates the secrets key when missing.
    pub async fn open(
        config: &Config,
        store: Store,
        audit: Arc<dyn AuditSink>,
        kek: Arc<dyn KekProvider>,
    ) -> anyhow::Result<Arc<KeyService>> {
        let records = match store.key_records().setting(RECORD_MAC_SETTING).await? {
            Some(stored) => Self::unwrap_record_key(kek.as_ref(), &stored)?,
            None => {
                let (candidate, wrapped) = RecordAuthenticator::generate(kek.as_ref())?;
                let in_force = store
                    .key_records()
                    .setting_or_insert(RECORD_MAC_SETTING, &STANDARD.encode(wrapped))
                    .await?;
                // Another node may have stored its key first; use whichever is stored.
                drop(candidate);
                Self::unwrap_record_key(kek.as_ref(), &in_force)?
            }
        };

        let service = Arc::new(KeyService {
            ring: ArcSwap::from_pointee(KeyRing::new(kek.clone(), Arc::new(SystemClock))),
            kek,
            store,
            records,
            revisions: Mutex::new(HashMap::new()),
            refused: Mutex::new(HashMap::new()),
            changes: tokio::sync::Mutex::new(()),
            rewrap_wake: Notify::new(),
            secrets_key: config.secrets.key.clone(),
            rewrap_chunk: i64::from(config.secrets.rewrap_chunk),
            audit,
        });
        service.reload_all().await?;
        service.ensure_secrets_key().await?;
        Ok(service)
    }

    fn unwrap_record_key(
        kek: &dyn KekProvider,
        stored: &str,
    ) -> anyhow::Result<RecordAuthenticator> {
        let wrapped = STANDARD
            .decode(stored)
            .context("the stored record authentication key is not base64")?;
        RecordAuthenticator::unwrap(kek, &wrapped).context(
            "the stored record authentication key does not unwrap with this kek: a wrong kek \
             (every node on one database needs the same kek file or hsm key), or the \
             key_service_settings table was altered",
        )
    }

    async fn ensure_secrets_key(&self) -> anyhow::Result<()> {
        if self.ring().metadata(&self.secrets_key).is_ok() || self.is_refused(&self.secrets_key) {
            return Ok(());
        }
        let options = CreateKeyOptions::of_type(KeyType::Aes256Gcm).with_usages(&[
            KeyUsage::Encrypt,
            KeyUsage::Decrypt,
            KeyUsage::Wrap,
        ]);
        match self.create(&self.secrets_key, options).await {
            Ok(_) => {
                tracing::info!(key.name = %self.secrets_key, "keys.secrets_key_created");
                Ok(())
            }
            // Another node created it first.
            Err(error) if error.status == StatusCode::CONFLICT => Ok(self.reload_all().await?),
            Err(error) => Err(anyhow::anyhow!(
                "cannot create the secrets key `{}`: {}",
                self.secrets_key,
                error.message
            )),
        }
    }

    /// Audits a change the server made by itself. The change is already made, so a failed
    /// audit can only be logged.
    async fn audit_system(
        &self,
        action: &str,
        resource: &str,
        outcome: maos_audit::Outcome,
        details: serde_json::Value,
    ) {
        let Ok(action) = maos_audit::ActionName::parse(action) else {
            tracing::error!(action, "audit.invalid_action");
            return;
        };
        let mut draft = maos_audit::RecordDraft::new(
            maos_audit::Timestamp::now(),
            maos_audit::Actor::System,
            action,
            resource,
            outcome,
        );
        if let serde_json::Value::Object(map) = details {
            draft.details = map;
        }
        if let Err(error) = self.audit.append(draft).await {
            tracing::error!(%error, "audit.append_failed");
        }
    }

    /// The key ring in force.
    pub fn ring(&self) -> Arc<KeyRing> {
        self.ring.load_full()
    }

    fn is_refused(&self, name: &str) -> bool {
        self.refused
            .lock()
            .map(|refused| refused.contains_key(name))
            .unwrap_or(true)
    }

    /// Refuses every operation on a key whose stored record did not authenticate.
    pub fn check_usable(&self, name: &str) -> Result<(), ApiError> {
        let refused = self
            .refused
            .lock()
            .map_err(|_| ApiError::internal("keys", "refused-key lock poisoned"))?;
        match refused.get(name) {
            Some(reason) => Err(ApiError::new(
                StatusCode::CONFLICT,
                "key_record_invalid",
                format!("the stored record of key `{name}` is refused: {reason}"),
            )),
            None => Ok(()),
        }
    }

    /// Verifies and parses one stored record.
    fn verify(&self, stored: &StoredKeyRecord) -> Result<KeyRecord, String> {
        if !self.records.verify(
            &stored.name,
            stored.revision,
            stored.record.as_bytes(),
            &stored.mac,
        ) {
            return Err("its authentication tag does not match (the row was altered)".into());
        }
        let record: KeyRecord =
            serde_json::from_str(&stored.record).map_err(|e| format!("it does not parse: {e}"))?;
        if record.name != stored.name {
            return Err(format!("it names key `{}`", record.name));
        }
        Ok(record)
    }

    /// Builds a new ring from every stored record and swaps it in. Records that fail
    /// authentication or do not load are refused and logged; the others load.
    pub async fn reload_all(&self) -> Result<(), StoreError> {
        let _guard = self.changes.lock().await;
        self.reload_all_locked().await
    }

    /// [`KeyService::reload_all`] for a caller that holds the change lock.
    async fn reload_all_locked(&self) -> Result<(), StoreError> {
        let stored = self.store.key_records().list().await?;
        let ring = KeyRing::new(self.kek.clone(), Arc::new(SystemClock));
        let mut revisions = HashMap::new();
        let mut refused = HashMap::new();
        for stored in stored {
            match self.verify(&stored).and_then(|record| {
                ring.load_record(record)
                    .map_err(|e| format!("it does not load: {e}"))
            }) {
                Ok(()) => {
                    revisions.insert(stored.name.clone(), stored.revision);
                }
                Err(reason) => {
                    tracing::error!(key.name = %stored.name, reason = %reason, "keys.record_refused");
                    refused.insert(stored.name.clone(), reason);
                }
            }
        }
        self.ring.store(Arc::new(ring));
        if let Ok(mut in_force) = self.revisions.lock() {
            *in_force = revisions;
        }
        if let Ok(mut in_force) = self.refused.lock() {
            *in_force = refused;
        }
        Ok(())
    }

    /// Applies another node's change of one key.
    pub async fn reload_key(&self, name: &str) -> Result<(), StoreError> {
        let _guard = self.changes.lock().await;
        let Some(stored) = self.store.key_records().get(name).await? else {
            return Ok(());
        };
        let known = self
            .revisions
            .lock()
            .ok()
            .and_then(|revisions| revisions.get(name).copied());
        if known.is_some_and(|known| known >= stored.revision) {
            return Ok(());
        }
        let loaded = self.verify(&stored).and_then(|record| {
            self.ring()
                .load_record(record)
                .map_err(|e| format!("it does not load: {e}"))
        });
        match loaded {
            Ok(()) => {
                if let Ok(mut revisions) = self.revisions.lock() {
                    revisions.insert(stored.name.clone(), stored.revision);
                }
                if let Ok(mut refused) = self.refused.lock() {
                    refused.remove(name);
                }
            }
            Err(reason) => {
                tracing::error!(key.name = %name, reason = %reason, "keys.record_refused");
                if let Ok(mut refused) = self.refused.lock() {
                    refused.insert(name.to_owned(), reason);
                }
            }
        }
        Ok(())
    }

    /// Stores the ring's record of `name` as its next revision.
    async fn persist(&self, name: &str) -> Result<(), ApiError> {
        let record = self.ring().record(name).map_err(crypto_error)?;
        let text = serde_json::to_string(&record)
            .map_err(|e| ApiError::internal("key record serialisation", e))?;
        let revision = self
            .revisions
            .lock()
            .map_err(|_| ApiError::internal("keys", "revision lock poisoned"))?
            .get(name)
            .copied()
            .unwrap_or(0)
            + 1;
        let mac = self.records.tag(name, revision, text.as_bytes());
        self.store
            .key_records()
            .save(name, revision, &text, &mac)
            .await?;
        self.revisions
            .lock()
            .map_err(|_| ApiError::internal("keys", "revision lock poisoned"))?
            .insert(name.to_owned(), revision);
        Ok(())
    }

    /// Runs one lifecycle change of `name` on the ring and stores the result; when storing
    /// fails the ring is reloaded from the store, so the change is undone in memory too.
    pub async fn change(
        &self,
        name: &str,
        change: impl FnOnce(&KeyRing) -> Result<KeyMetadata, CryptoError>,
    ) -> Result<KeyMetadata, ApiError> {
        self.check_usable(name)?;
        let _guard = self.changes.lock().await;
        let ring = self.ring();

        // A change of several steps (configure) may fail after its first step: put the
        // record back as it was, so memory never differs from the store.
        let before = ring.record(name).ok();
        let metadata = match change(&ring) {
            Ok(metadata) => metadata,
            Err(error) => {
                if let Some(before) = before
                    && let Err(restore) = ring.load_record(before)
                {
                    tracing::error!(key.name = %name, error = %restore, "keys.restore_failed");
                }
                return Err(crypto_error(error));
            }
        };

        if let Err(error) = self.persist(name).await {
            if let Err(reload) = self.reload_all_locked().await {
                tracing::error!(error = %reload, "keys.reload_after_failed_store_failed");
            }
            return Err(error);
        }
        Ok(metadata)
    }

    pub async fn create(
        &self,
        name: &str,
        options: CreateKeyOptions,
    ) -> Result<KeyMetadata, ApiError> {
        self.change(name, |ring| ring.create(name, options)).await
    }

    /// Rotates `name`; rotating the secrets key starts re-encrypting the secrets.
    pub async fn rotate(&self, name: &str) -> Result<KeyMetadata, ApiError> {
        let metadata = self.change(name, |ring| ring.rotate(name)).await?;
        if name == self.secrets_key {
            self.start_rewrap_if_idle().await;
        }
        Ok(metadata)
    }

    async fn start_rewrap_if_idle(&self) {
        match self.start_rewrap().await {
            Ok(job) => {
                tracing::info!(job.id = job.id, "secrets.rewrap_started");
                let details = serde_json::json!({
                    "job": job.id,
                    "key": job.key_name,
                    "target_version": job.target_version,
                    "total": job.total,
                });
                let outcome = maos_audit::Outcome::Success;
                self.audit_system("secret.rewrap_start", "maos:secrets", outcome, details)
                    .await;
            }
            Err(error) if error.status == StatusCode::CONFLICT => self.rewrap_wake.notify_one(),
            Err(error) => tracing::error!(error = %error.message, "secrets.rewrap_start_failed"),
        }
    }

    /// One pass of the periodic job: rotate keys that are due, destroy keys past their
    /// deletion window. Each change is stored like any other.
    pub async fn run_lifecycle_jobs(&self) {
        let due = match self.ring().keys_due_for_rotation() {
            Ok(due) => due,
            Err(error) => {
                tracing::error!(%error, "keys.rotation_check_failed");
                return;
            }
        };
        for name in due {
            let resource = format!("maos:keys/{name}");
            match self.rotate(&name).await {
                Ok(metadata) => {
                    tracing::info!(
                        key.name = %name,
                        key.version = metadata.latest_version,
                        "keys.rotated_automatically"
                    );
                    let details = serde_json::json!({
                        "version": metadata.latest_version,
                        "automatic": true,
                    });
                    self.audit_system(
                        "key.rotate",
                        &resource,
                        maos_audit::Outcome::Success,
                        details,
                    )
                    .await;
                }
                Err(error) => {
                    tracing::error!(key.name = %name, error = %error.message, "keys.rotation_failed");
                    let outcome = maos_audit::Outcome::failure(error.code);
                    let details = serde_json::json!({"automatic": true});
                    self.audit_system("key.rotate", &resource, outcome, details)
                        .await;
                }
            }
        }

        let destroyed = {
            let _guard = self.changes.lock().await;
            match self.ring().destroy_due() {
                Ok(destroyed) => {
                    let mut stored = Vec::new();
                    for name in destroyed {
                        match self.persist(&name).await {
                            Ok(()) => stored.push(name),
                            Err(error) => {
                                tracing::error!(key.name = %name, error = %error.message, "keys.destroy_store_failed");
                            }
                        }
                    }
                    stored
                }
                Err(error) => {
                    tracing::error!(%error, "keys.destroy_check_failed");
                    Vec::new()
                }
            }
        };
        for name in destroyed {
            tracing::info!(key.name = %name, "keys.destroyed");
            let resource = format!("maos:keys/{name}");
            let outcome = maos_audit::Outcome::Success;
            self.audit_system("key.destroy", &resource, outcome, serde_json::json!({}))
                .await;
        }
    }

    // -- secrets ------------------------------------------------------------------------------

    /// Stores `value` as the next version of secret `path`.
    pub async fn put_secret(&self, path: &str, value: &[u8]) -> Result<SecretVersion, ApiError> {
        self.check_usable(&self.secrets_key)?;
        for _ in 0..5 {
            let version = self.store.secrets().next_version(path).await?;
            let ciphertext = self
                .ring()
                .encrypt(&self.secrets_key, value, &secret_aad(path, version))
                .map_err(crypto_error)?;
            let secret = SecretVersion {
                path: path.to_owned(),
                version,
                key_name: self.secrets_key.clone(),
                key_version: i64::from(ciphertext.version()),
                ciphertext: ciphertext.encode(),
                created_at: now_millis(),
            };
            match self.store.secrets().insert(&secret).await {
                Ok(()) => return Ok(secret),
                // Another writer took this version: encrypt again for the next one.
                Err(StoreError::Conflict(_)) => continue,
                Err(error) => return Err(error.into()),
            }
        }
        Err(ApiError::conflict(
            "the secret changed concurrently too often; retry",
        ))
    }

    /// A version of a secret (latest when `None`) and its plaintext.
    pub async fn get_secret(
        &self,
        path: &str,
        version: Option<i64>,
    ) -> Result<(SecretVersion, SecretBytes), ApiError> {
        let secret = self
            .store
            .secrets()
            .get(path, version)
            .await?
            .ok_or_else(|| ApiError::not_found(format!("secret `{path}` not found")))?;
        self.check_usable(&secret.key_name)?;
        let ciphertext = Ciphertext::parse(&secret.ciphertext).map_err(|e| {
            ApiError::internal("stored secret", format!("`{path}` is malformed: {e}"))
        })?;
        let plaintext = self
            .ring()
            .decrypt(
                &secret.key_name,
                &ciphertext,
                &secret_aad(path, secret.version),
            )
            .map_err(crypto_error)?;
        Ok((secret, plaintext))
    }

    /// Starts a re-encryption job to the secrets key's latest version and wakes the worker.
    pub async fn start_rewrap(&self) -> Result<RewrapJob, ApiError> {
        self.check_usable(&self.secrets_key)?;
        let target = self
            .ring()
            .metadata(&self.secrets_key)
            .map_err(crypto_error)?
            .latest_version;
        let job = self
            .store
            .secrets()
            .start_rewrap_job(&self.secrets_key, i64::from(target))
            .await?;
        self.rewrap_wake.notify_one();
        Ok(job)
    }

    /// Re-encrypts one chunk of the running job and commits it; `Ok(None)` when no job runs,
    /// otherwise the job as it now stands (finished once nothing is left).
    pub async fn rewrap_step(&self) -> Result<Option<RewrapJob>, ApiError> {
        let Some(job) = self
            .store
            .secrets()
            .latest_job()
            .await?
            .filter(|job| job.state == RewrapJobState::Running)
        else {
            return Ok(None);
        };
        let items = self
            .store
            .secrets()
            .next_rewrap_items(&job, self.rewrap_chunk)
            .await?;
        if items.is_empty() {
            self.store.secrets().finish_rewrap_job(job.id).await?;
            tracing::info!(
                job.id = job.id,
                done = job.done,
                failed = job.failed,
                "secrets.rewrap_finished"
            );
            let details = serde_json::json!({
                "job": job.id,
                "key": job.key_name,
                "target_version": job.target_version,
                "done": job.done,
                "failed": job.failed,
            });
            let outcome = if job.failed == 0 {
                maos_audit::Outcome::Success
            } else {
                maos_audit::Outcome::failure(format!("{} items failed", job.failed))
            };
            self.audit_system("secret.rewrap_finish", "maos:secrets", outcome, details)
                .await;
            return Ok(self.store.secrets().job(job.id).await?);
        }
        let ring = self.ring();
        let results: Vec<(SecretVersion, RewrapOutcome)> = items
            .into_iter()
            .map(|secret| {
                let outcome = rewrap_one(&ring, &secret, job.target_version);
                (secret, outcome)
            })
            .collect();
        Ok(Some(
            self.store
                .secrets()
                .commit_rewrap_chunk(job.id, &results)
                .await?,
        ))
    }

    /// Runs the running job, if any, to its end.
    pub async fn run_rewrap(&self) {
        loop {
            match self.rewrap_step().await {
                Ok(Some(job)) if job.state == RewrapJobState::Running => continue,
                Ok(_) => return,
                Err(error) => {
                    tracing::error!(error = %error.message, "secrets.rewrap_step_failed");
                    return;
                }
            }
        }
    }

    /// The background worker: finishes a job left running by an earlier process, then runs
    /// each job when woken.
    pub async fn rewrap_worker(self: Arc<Self>) {
        loop {
            self.run_rewrap().await;
            // A failed step is retried on the next wake or after a pause.
            tokio::select! {
                () = self.rewrap_wake.notified() => {}
                () = tokio::time::sleep(Duration::from_secs(30)) => {}
            }
        }
    }

    /// The background rotation job.
    pub async fn lifecycle_worker(self: Arc<Self>, every: Duration) {
        let mut tick = tokio::time::interval(every);
        loop {
            tick.tick().await;
            self.run_lifecycle_jobs().await;
        }
    }
}

fn rewrap_one(ring: &KeyRing, secret: &SecretVersion, target: i64) -> RewrapOutcome {
    if secret.key_version >= target {
        return RewrapOutcome::Current;
    }
    let rewrapped = Ciphertext::parse(&secret.ciphertext).and_then(|ciphertext| {
        ring.rewrap(
            &secret.key_name,
            &ciphertext,
            &secret_aad(&secret.path, secret.version),
        )
    });
    match rewrapped {
        Ok(ciphertext) => RewrapOutcome::Rewrapped {
            to_version: i64::from(ciphertext.version()),
            ciphertext: ciphertext.encode(),
        },
        Err(error) => RewrapOutcome::Failed {
            reason: error.to_string(),
        },
    }
}

/// The associated data of a secret's version: a ciphertext moved to another path or version
/// does not decrypt.
pub fn secret_aad(path: &str, version: i64) -> Vec<u8> {
    let mut aad = Vec::with_capacity(SECRET_AAD_PURPOSE.len() + path.len() + 16);
    aad.extend_from_slice(SECRET_AAD_PURPOSE);
    aad.extend_from_slice(&u64::try_from(path.len()).unwrap_or(u64::MAX).to_be_bytes());
    aad.extend_from_slice(path.as_bytes());
    aad.extend_from_slice(&version.to_be_bytes());
    aad
}

fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// The HTTP answer for a refusal of the key ring. Messages never carry key material or
/// plaintext; internal failures go to the log only.
pub fn crypto_error(error: CryptoError) -> ApiError {
    use CryptoError as E;
    let message = error.to_string();
    let (status, code) = match &error {
        E::KeyNotFound(_) => (StatusCode::NOT_FOUND, "key_not_found"),
        E::VersionNotFound { .. } => (StatusCode::NOT_FOUND, "version_not_found"),
        E::KeyExists(_) => (StatusCode::CONFLICT, "key_exists"),
        E::InvalidKeyName(_) => (StatusCode::BAD_REQUEST, "invalid_key_name"),
        E::UsageNotAllowed { .. } => (StatusCode::FORBIDDEN, "usage_not_allowed"),
        E::UsageNotSupported { .. } | E::ConflictingUsages | E::NoUsages | E::UnknownUsage(_) => {
            (StatusCode::BAD_REQUEST, "invalid_usages")
        }
        E::UnsupportedKeyType(_) => (StatusCode::BAD_REQUEST, "unsupported_key_type"),
        E::KeyDisabled(_) => (StatusCode::CONFLICT, "key_disabled"),
        E::KeyPendingDeletion { .. } => (StatusCode::CONFLICT, "key_pending_deletion"),
        E::KeyNotPendingDeletion(_) => (StatusCode::CONFLICT, "key_not_pending_deletion"),
        E::KeyDestroyed(_) => (StatusCode::CONFLICT, "key_destroyed"),
        E::KeyRevoked(_) => (StatusCode::CONFLICT, "key_revoked"),
        E::VersionRevoked { .. } => (StatusCode::CONFLICT, "version_revoked"),
        E::VersionBelowMinimum { .. } => (StatusCode::CONFLICT, "version_below_minimum"),
        E::CannotRevokeLatestVersion { .. } => (StatusCode::CONFLICT, "latest_version"),
        E::NotExportable(_) => (StatusCode::CONFLICT, "not_exportable"),
        E::InvalidMinDecryptionVersion { .. } => {
            (StatusCode::BAD_REQUEST, "invalid_min_decryption_version")
        }
        E::InvalidDeletionWindow { .. } => (StatusCode::BAD_REQUEST, "invalid_deletion_window"),
        E::InvalidRotationPeriod { .. } => (StatusCode::BAD_REQUEST, "invalid_rotation_period"),
        E::MalformedCiphertext(_) => (StatusCode::BAD_REQUEST, "malformed_ciphertext"),
        E::DecryptionFailed => (StatusCode::BAD_REQUEST, "decryption_failed"),
        E::InvalidLength { .. } => (StatusCode::BAD_REQUEST, "invalid_length"),
        E::UnsupportedNonceLength(_) | E::UnsupportedTagLength(_) | E::InvalidPublicKey => {
            (StatusCode::BAD_REQUEST, "invalid_input")
        }
        _ => return ApiError::internal("key service", error),
    };
    ApiError::new(status, code, message)
}
