//! The key service over HTTP: `/v1/keys/...`. Binary values travel as standard base64 in JSON;
//! ciphertexts and signatures as `maos:v<n>:<base64>`. Every call is authorized against
//! `maos:keys/<name>` with one action per operation and audited (names, versions and results
//! only, never plaintext or key material).

use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use maos_audit::{ActionName, Actor, Outcome, RecordDraft, Timestamp};
use maos_crypto::{
    Ciphertext, CreateKeyOptions, CryptoError, DecryptItem, EncryptItem, KeyMetadata, KeyType,
    KeyUsage, Signature, VerifyItem,
};
use serde::Deserialize;
use serde_json::{Value, json};

use crate::auth::Caller;
use crate::error::ApiError;
use crate::extract::{ApiJson, ApiPath};
use crate::keys::{KeyService, crypto_error};
use crate::routes::decisions::{CallerHeaders, credentials};
use crate::state::AppState;

type ApiResult<T> = Result<T, ApiError>;

/// A JSON body that may be absent: an empty body gives `T::default()`.
#[derive(Debug)]
pub struct OptionalJson<T>(pub T);

impl<S, T> axum::extract::FromRequest<S> for OptionalJson<T>
where
    S: Send + Sync,
    T: serde::de::DeserializeOwned + Default,
{
    type Rejection = ApiError;

    async fn from_request(
        request: axum::extract::Request,
        state: &S,
    ) -> Result<Self, Self::Rejection> {
        let body = axum::body::Bytes::from_request(request, state).await?;
        if body.iter().all(u8::is_ascii_whitespace) {
            return Ok(OptionalJson(T::default()));
        }
        crate::extract::parse_json(&body).map(OptionalJson)
    }
}

/// The key service, or 503 before it is attached.
pub fn service(state: &AppState) -> ApiResult<Arc<KeyService>> {
    state.keys.get().cloned().ok_or_else(|| {
        ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "keys_unavailable",
            "the key service is not running",
        )
    })
}

/// Checks the name's shape before it goes into a policy resource id.
fn check_name(name: &str) -> ApiResult<()> {
    let ok = (1..=128).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(crypto_error(CryptoError::InvalidKeyName(
            name.chars().take(200).collect(),
        )))
    }
}

/// Authorizes `action` on `maos:keys/<name>` and returns the service and the caller.
fn begin(
    state: &AppState,
    headers: &CallerHeaders,
    name: &str,
    action: &str,
) -> ApiResult<(Arc<KeyService>, Arc<Caller>)> {
    check_name(name)?;
    let caller = state.authorize_caller(&credentials(headers), &format!("keys/{name}"), action)?;
    let keys = service(state)?;
    keys.check_usable(name)?;
    Ok((keys, caller))
}

/// The audit actor of a caller.
pub fn actor(caller: &Caller) -> Actor {
    Actor::principal(&caller.subject.kind, &caller.subject.id).unwrap_or(Actor::System)
}

/// Audits an operation with its result before the client hears of it; a failed audit turns
/// even a success into 503.
pub async fn audited<T>(
    state: &AppState,
    caller: &Caller,
    action: &str,
    resource: &str,
    result: ApiResult<T>,
    details: impl FnOnce(&T) -> Value,
) -> ApiResult<T> {
    let (outcome, detail) = match &result {
        Ok(value) => (Outcome::Success, details(value)),
        Err(error) => (Outcome::failure(error.code), Value::Null),
    };
    let action = ActionName::parse(action).map_err(|e| ApiError::internal("audit action", e))?;
    let mut draft = RecordDraft::new(Timestamp::now(), actor(caller), action, resource, outcome);
    if let Value::Object(map) = detail {
        draft.details = map;
    }
    state.audit(draft).await?;
    result
}

fn decode(field: &'static str, text: &str) -> ApiResult<Vec<u8>> {
    STANDARD.decode(text).map_err(|_| {
        ApiError::bad_request(
            "invalid_base64",
            format!("`{field}` is not standard base64"),
        )
    })
}

fn decode_opt(field: &'static str, text: &Option<String>) -> ApiResult<Vec<u8>> {
    text.as_deref().map_or(Ok(Vec::new()), |t| decode(field, t))
}

fn batch_limit(state: &AppState, len: usize) -> ApiResult<()> {
    if len > state.config.server.max_batch {
        return Err(ApiError::bad_request(
            "batch_too_large",
            format!(
                "{len} items; at most {} (server.max_batch)",
                state.config.server.max_batch
            ),
        ));
    }
    Ok(())
}

fn item_error(error: ApiError) -> Value {
    json!({"error": {"code": error.code, "message": error.message}})
}

fn metadata_json(metadata: &KeyMetadata) -> Value {
    serde_json::to_value(metadata).unwrap_or(Value::Null)
}

fn resource(name: &str) -> String {
    format!("maos:keys/{name}")
}

// -- keys and lifecycle -----------------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CreateKeyBody {
    pub name: String,
    #[serde(rename = "type", default)]
    pub key_type: KeyType,
    pub usages: Option<Vec<KeyUsage>>,
    #[serde(default)]
    pub exportable: bool,
    pub rotation_period_secs: Option<u64>,
}

/// Create a key (version 1).
#[utoipa::path(post, path = "/v1/keys", tag = "keys",
    request_body(content = String, description = "`{name, type?, usages?, exportable?, rotation_period_secs?}`", content_type = "application/json"),
    responses((status = 201, description = "the key's metadata"),
        (status = 409, description = "the key exists", body = crate::openapi::ErrorDoc)),
    security(("bearer" = [])))]
pub async fn create_key(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiJson(body): ApiJson<CreateKeyBody>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let name = body.name.clone();
    check_name(&name)?;
    let caller =
        state.authorize_caller(&credentials(&headers), &format!("keys/{name}"), "create")?;
    let keys = service(&state)?;
    let options = CreateKeyOptions {
        key_type: body.key_type,
        usages: body.usages,
        exportable: body.exportable,
        rotation_period: body.rotation_period_secs.map(Duration::from_secs),
    };
    let result = keys.create(&name, options).await;
    let metadata = audited(
        &state,
        &caller,
        "key.create",
        &resource(&name),
        result,
        |m| json!({"type": m.key_type, "version": m.latest_version, "exportable": m.exportable}),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(metadata_json(&metadata))))
}

/// Every key's metadata.
#[utoipa::path(get, path = "/v1/keys", tag = "keys",
    responses((status = 200, description = "`{keys: [...]}`")), security(("bearer" = [])))]
pub async fn list_keys(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
) -> ApiResult<Json<Value>> {
    let caller = state.authorize_caller(&credentials(&headers), "keys", "read")?;
    let keys = service(&state)?;
    let result = keys.ring().list().map_err(crypto_error);
    let list = audited(
        &state,
        &caller,
        "key.list",
        "maos:keys",
        result,
        |l| json!({"count": l.len()}),
    )
    .await?;
    Ok(Json(json!({ "keys": list })))
}

/// One key's metadata (never its material).
#[utoipa::path(get, path = "/v1/keys/{name}", tag = "keys",
    params(("name" = String, Path, description = "key name")),
    responses((status = 200, description = "the key's metadata"),
        (status = 404, description = "no such key", body = crate::openapi::ErrorDoc)),
    security(("bearer" = [])))]
pub async fn get_key(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let (keys, caller) = begin(&state, &headers, &name, "read")?;
    let result = keys.ring().metadata(&name).map_err(crypto_error);
    let metadata = audited(
        &state,
        &caller,
        "key.read",
        &resource(&name),
        result,
        |m| json!({"version": m.latest_version}),
    )
    .await?;
    Ok(Json(metadata_json(&metadata)))
}

/// Runs one audited lifecycle change.
async fn lifecycle(
    state: &AppState,
    headers: &CallerHeaders,
    name: &str,
    audit_action: &str,
    change: impl FnOnce(&maos_crypto::KeyRing) -> Result<KeyMetadata, CryptoError>,
) -> ApiResult<Json<Value>> {
    let (keys, caller) = begin(state, headers, name, "admin")?;
    let result = keys.change(name, change).await;
    let metadata = audited(
        state,
        &caller,
        audit_action,
        &resource(name),
        result,
        |m| json!({"version": m.latest_version, "status": m.status}),
    )
    .await?;
    Ok(Json(metadata_json(&metadata)))
}

/// Add a version; it encrypts and signs from now on, older ones still decrypt and verify.
#[utoipa::path(post, path = "/v1/keys/{name}/rotate", tag = "keys",
    params(("name" = String, Path, description = "key name")),
    responses((status = 200, description = "the key's metadata")), security(("bearer" = [])))]
pub async fn rotate(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(name): ApiPath<String>,
) -> ApiResult<Json<Value>> {
    let (keys, caller) = begin(&state, &headers, &name, "admin")?;
    let result = keys.rotate(&name).await;
    let metadata = audited(
        &state,
        &caller,
        "key.rotate",
        &resource(&name),
        result,
        |m| json!({"version": m.latest_version}),
    )
    .await?;
    Ok(Json(metadata_json(&metadata)))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ConfigureBody {
    /// Seconds (at least 3600), or `0` to turn automatic rotation off.
    pub rotation_period_secs: Option<u64>,
    pub min_decryption_version: Option<u32>,
    /// Only `true`: exportability cannot be turned off.
    pub exportable: Option<bool>,
}

/// Change the rotation period, the minimum decryption version, or make a key exportable.
#[utoipa::path(post, path = "/v1/keys/{name}/config", tag = "keys",
    params(("name" = String, Path, description = "key name")),
    request_body(content = String, description = "`{rotation_period_secs?, min_decryption_version?, exportable?: true}`", content_type = "application/json"),
    responses((status = 200, description = "the key's metadata"),
        (status = 400, description = "`exportable: false`, or a value out of range", body = crate::openapi::ErrorDoc)),
    security(("bearer" = [])))]
pub async fn configure(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<ConfigureBody>,
) -> ApiResult<Json<Value>> {
    if body.exportable == Some(false) {
        return Err(ApiError::bad_request(
            "exportable_is_permanent",
            "a key's exportable flag can be turned on, never off",
        ));
    }
    let (keys, caller) = begin(&state, &headers, &name, "admin")?;
    let result = keys
        .change(&name, |ring| {
            let mut metadata = ring.metadata(&name)?;
            if let Some(seconds) = body.rotation_period_secs {
                let period = (seconds > 0).then(|| Duration::from_secs(seconds));
                metadata = ring.set_rotation_period(&name, period)?;
            }
            if let Some(version) = body.min_decryption_version {
                metadata = ring.set_min_decryption_version(&name, version)?;
            }
            if body.exportable == Some(true) {
                metadata = ring.make_exportable(&name)?;
            }
            Ok(metadata)
        })
        .await;
    let metadata = audited(
        &state,
        &caller,
        "key.configure",
        &resource(&name),
        result,
        |m| {
            json!({
                "rotation_period_secs": m.rotation_period_secs,
                "min_decryption_version": m.min_decryption_version,
                "exportable": m.exportable,
            })
        },
    )
    .await?;
    Ok(Json(metadata_json(&metadata)))
}

macro_rules! lifecycle_route {
    ($fn:ident, $path:literal, $audit:literal, $doc:literal, |$ring:ident, $name:ident| $body:expr) => {
        #[doc = $doc]
        #[utoipa::path(post, path = $path, tag = "keys",
                                    params(("name" = String, Path, description = "key name")),
                                    responses((status = 200, description = "the key's metadata")),
                                    security(("bearer" = [])))]
        pub async fn $fn(
            State(state): State<Arc<AppState>>,
            headers: CallerHeaders,
            ApiPath($name): ApiPath<String>,
        ) -> ApiResult<Json<Value>> {
            lifecycle(&state, &headers, &$name, $audit, |$ring| $body).await
        }
    };
}

lifecycle_route!(
    enable,
    "/v1/keys/{name}/enable",
    "key.enable",
    "Enable a disabled key.",
    |ring, name| ring.enable(&name)
);
lifecycle_route!(
    disable,
    "/v1/keys/{name}/disable",
    "key.disable",
    "Disable a key: every cryptographic operation is refused until it is enabled.",
    |ring, name| ring.disable(&name)
);
lifecycle_route!(
    cancel_deletion,
    "/v1/keys/{name}/cancel-deletion",
    "key.cancel_deletion",
    "Cancel a scheduled deletion.",
    |ring, name| ring.cancel_deletion(&name)
);
lifecycle_route!(
    revoke,
    "/v1/keys/{name}/revoke",
    "key.revoke",
    "Revoke a key for good: its material is destroyed.",
    |ring, name| ring.revoke(&name)
);

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ScheduleDeletionBody {
    /// 7 to 30; default 30.
    pub days: Option<u32>,
}

/// Schedule the key's deletion after 7 to 30 days (default 30); every operation is refused
/// meanwhile.
#[utoipa::path(post, path = "/v1/keys/{name}/schedule-deletion", tag = "keys",
    params(("name" = String, Path, description = "key name")),
    request_body(content = String, description = "`{days?}`", content_type = "application/json"),
    responses((status = 200, description = "the key's metadata")), security(("bearer" = [])))]
pub async fn schedule_deletion(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(name): ApiPath<String>,
    OptionalJson(body): OptionalJson<ScheduleDeletionBody>,
) -> ApiResult<Json<Value>> {
    let days = body.days;
    lifecycle(&state, &headers, &name, "key.schedule_deletion", |ring| {
        ring.schedule_deletion(&name, days)
    })
    .await
}

/// Revoke one version (not the latest): its material is destroyed.
#[utoipa::path(post, path = "/v1/keys/{name}/versions/{version}/revoke", tag = "keys",
    params(("name" = String, Path, description = "key name"),
        ("version" = u32, Path, description = "key version")),
    responses((status = 200, description = "the key's metadata")), security(("bearer" = [])))]
pub async fn revoke_version(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath((name, version)): ApiPath<(String, u32)>,
) -> ApiResult<Json<Value>> {
    lifecycle(&state, &headers, &name, "key.revoke_version", |ring| {
        ring.revoke_version(&name, version)
    })
    .await
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExportBody {
    /// Default: the latest version.
    pub version: Option<u32>,
}

/// The material of an exportable key's version: raw bytes for symmetric keys, PKCS#8 DER for
/// asymmetric ones (base64). Refused with 409 `not_exportable` for every other key.
#[utoipa::path(post, path = "/v1/keys/{name}/export", tag = "keys",
    params(("name" = String, Path, description = "key name")),
    request_body(content = String, description = "`{version?}`", content_type = "application/json"),
    responses((status = 200, description = "`{name, version, type, material}`"),
        (status = 409, description = "the key is not exportable", body = crate::openapi::ErrorDoc)),
    security(("bearer" = [])))]
pub async fn export(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(name): ApiPath<String>,
    OptionalJson(body): OptionalJson<ExportBody>,
) -> ApiResult<Json<Value>> {
    let version = body.version;
    let (keys, caller) = begin(&state, &headers, &name, "export")?;
    let result = keys.ring().export(&name, version).map_err(crypto_error);
    let exported = audited(
        &state,
        &caller,
        "key.export",
        &resource(&name),
        result,
        |e| json!({"version": e.version}),
    )
    .await?;
    Ok(Json(json!({
        "name": exported.name,
        "version": exported.version,
        "type": exported.key_type,
        "material": STANDARD.encode(exported.material.expose()),
    })))
}

// -- cryptographic operations -----------------------------------------------------------------

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct EncryptBody {
    pub plaintext: String,
    pub aad: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DecryptBody {
    pub ciphertext: String,
    pub aad: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Batch<T> {
    pub items: Vec<T>,
}

/// Encrypt base64 `plaintext` with the latest version, binding base64 `aad`.
#[utoipa::path(post, path = "/v1/keys/{name}/encrypt", tag = "keys",
    params(("name" = String, Path, description = "key name")),
    request_body(content = String, description = "`{plaintext, aad?}` (base64)", content_type = "application/json"),
    responses((status = 200, description = "`{ciphertext, version}`")), security(("bearer" = [])))]
pub async fn encrypt(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<EncryptBody>,
) -> ApiResult<Json<Value>> {
    let (keys, caller) = begin(&state, &headers, &name, "encrypt")?;
    let result = (|| {
        let plaintext = decode("plaintext", &body.plaintext)?;
        let aad = decode_opt("aad", &body.aad)?;
        keys.ring()
            .encrypt(&name, &plaintext, &aad)
            .map_err(crypto_error)
    })();
    let ciphertext = audited(
        &state,
        &caller,
        "key.encrypt",
        &resource(&name),
        result,
        |c| json!({"version": c.version()}),
    )
    .await?;
    Ok(Json(
        json!({"ciphertext": ciphertext.encode(), "version": ciphertext.version()}),
    ))
}

/// Decrypt a ciphertext of any readable version.
#[utoipa::path(post, path = "/v1/keys/{name}/decrypt", tag = "keys",
    params(("name" = String, Path, description = "key name")),
    request_body(content = String, description = "`{ciphertext, aad?}`", content_type = "application/json"),
    responses((status = 200, description = "`{plaintext}` (base64)"),
        (status = 400, description = "malformed, or does not decrypt with this key, version and aad", body = crate::openapi::ErrorDoc)),
    security(("bearer" = [])))]
pub async fn decrypt(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<DecryptBody>,
) -> ApiResult<Json<Value>> {
    let (keys, caller) = begin(&state, &headers, &name, "decrypt")?;
    let mut version = 0;
    let result = (|| {
        let ciphertext = Ciphertext::parse(&body.ciphertext).map_err(crypto_error)?;
        version = ciphertext.version();
        let aad = decode_opt("aad", &body.aad)?;
        keys.ring()
            .decrypt(&name, &ciphertext, &aad)
            .map_err(crypto_error)
    })();
    let plaintext = audited(
        &state,
        &caller,
        "key.decrypt",
        &resource(&name),
        result,
        |_| json!({"version": version}),
    )
    .await?;
    Ok(Json(
        json!({"plaintext": STANDARD.encode(plaintext.expose())}),
    ))
}

/// Re-encrypt a ciphertext under the latest version without returning the plaintext.
#[utoipa::path(post, path = "/v1/keys/{name}/rewrap", tag = "keys",
    params(("name" = String, Path, description = "key name")),
    request_body(content = String, description = "`{ciphertext, aad?}`", content_type = "application/json"),
    responses((status = 200, description = "`{ciphertext, version}`")), security(("bearer" = [])))]
pub async fn rewrap(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<DecryptBody>,
) -> ApiResult<Json<Value>> {
    let (keys, caller) = begin(&state, &headers, &name, "rewrap")?;
    let result = (|| {
        let ciphertext = Ciphertext::parse(&body.ciphertext).map_err(crypto_error)?;
        let aad = decode_opt("aad", &body.aad)?;
        keys.ring()
            .rewrap(&name, &ciphertext, &aad)
            .map_err(crypto_error)
    })();
    let ciphertext = audited(
        &state,
        &caller,
        "key.rewrap",
        &resource(&name),
        result,
        |c| json!({"version": c.version()}),
    )
    .await?;
    Ok(Json(
        json!({"ciphertext": ciphertext.encode(), "version": ciphertext.version()}),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataKeyBody {
    /// 16 to 64; default 32.
    pub bytes: Option<usize>,
    pub aad: Option<String>,
    /// Also return the plaintext key (default true).
    pub plaintext: Option<bool>,
}

/// A fresh data key encrypted under the latest version, with or without its plaintext.
#[utoipa::path(post, path = "/v1/keys/{name}/datakey", tag = "keys",
    params(("name" = String, Path, description = "key name")),
    request_body(content = String, description = "`{bytes?, aad?, plaintext?}`", content_type = "application/json"),
    responses((status = 200, description = "`{ciphertext, version, plaintext?}`")), security(("bearer" = [])))]
pub async fn datakey(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<DataKeyBody>,
) -> ApiResult<Json<Value>> {
    let (keys, caller) = begin(&state, &headers, &name, "datakey")?;
    let with_plaintext = body.plaintext.unwrap_or(true);
    let result = (|| {
        let aad = decode_opt("aad", &body.aad)?;
        keys.ring()
            .generate_data_key(&name, body.bytes.unwrap_or(32), &aad, with_plaintext)
            .map_err(crypto_error)
    })();
    let key = audited(
        &state,
        &caller,
        "key.datakey",
        &resource(&name),
        result,
        |k| json!({"version": k.version, "with_plaintext": with_plaintext}),
    )
    .await?;
    let mut answer = json!({"ciphertext": key.ciphertext.encode(), "version": key.version});
    if let (Some(plaintext), Some(object)) = (&key.plaintext, answer.as_object_mut()) {
        object.insert(
            "plaintext".into(),
            Value::String(STANDARD.encode(plaintext.expose())),
        );
    }
    Ok(Json(answer))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeriveBody {
    /// The caller's context (base64).
    pub context: String,
    /// 16 to 64; default 32.
    pub bytes: Option<usize>,
    pub version: Option<u32>,
}

/// Derive a key with HKDF-SHA256 over a caller context.
#[utoipa::path(post, path = "/v1/keys/{name}/derive", tag = "keys",
    params(("name" = String, Path, description = "key name")),
    request_body(content = String, description = "`{context, bytes?, version?}`", content_type = "application/json"),
    responses((status = 200, description = "`{key, version}`")), security(("bearer" = [])))]
pub async fn derive(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<DeriveBody>,
) -> ApiResult<Json<Value>> {
    let (keys, caller) = begin(&state, &headers, &name, "derive")?;
    let result = (|| {
        let context = decode("context", &body.context)?;
        keys.ring()
            .derive(&name, body.version, &context, body.bytes.unwrap_or(32))
            .map_err(crypto_error)
    })();
    let derived = audited(
        &state,
        &caller,
        "key.derive",
        &resource(&name),
        result,
        |d| json!({"version": d.version}),
    )
    .await?;
    Ok(Json(
        json!({"key": STANDARD.encode(derived.key.expose()), "version": derived.version}),
    ))
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MessageBody {
    pub message: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyBody {
    pub message: String,
    pub signature: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct VerifyHmacBody {
    pub message: String,
    pub hmac: String,
}

/// Sign a base64 message with the latest version.
#[utoipa::path(post, path = "/v1/keys/{name}/sign", tag = "keys",
    params(("name" = String, Path, description = "key name")),
    request_body(content = String, description = "`{message}` (base64)", content_type = "application/json"),
    responses((status = 200, description = "`{signature, version}`")), security(("bearer" = [])))]
pub async fn sign(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<MessageBody>,
) -> ApiResult<Json<Value>> {
    let (keys, caller) = begin(&state, &headers, &name, "sign")?;
    let result = (|| {
        let message = decode("message", &body.message)?;
        keys.ring().sign(&name, &message).map_err(crypto_error)
    })();
    let signature = audited(
        &state,
        &caller,
        "key.sign",
        &resource(&name),
        result,
        |s| json!({"version": s.version()}),
    )
    .await?;
    Ok(Json(
        json!({"signature": signature.encode(), "version": signature.version()}),
    ))
}

/// Whether a signature is valid for the message.
#[utoipa::path(post, path = "/v1/keys/{name}/verify", tag = "keys",
    params(("name" = String, Path, description = "key name")),
    request_body(content = String, description = "`{message, signature}`", content_type = "application/json"),
    responses((status = 200, description = "`{valid}`")), security(("bearer" = [])))]
pub async fn verify(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<VerifyBody>,
) -> ApiResult<Json<Value>> {
    let (keys, caller) = begin(&state, &headers, &name, "verify")?;
    let result = (|| {
        let message = decode("message", &body.message)?;
        let signature = Signature::parse(&body.signature).map_err(crypto_error)?;
        keys.ring()
            .verify(&name, &message, &signature)
            .map_err(crypto_error)
    })();
    let valid = audited(
        &state,
        &caller,
        "key.verify",
        &resource(&name),
        result,
        |v| json!({"valid": v}),
    )
    .await?;
    Ok(Json(json!({ "valid": valid })))
}

/// HMAC-SHA256 of a base64 message with the latest version.
#[utoipa::path(post, path = "/v1/keys/{name}/hmac", tag = "keys",
    params(("name" = String, Path, description = "key name")),
    request_body(content = String, description = "`{message}` (base64)", content_type = "application/json"),
    responses((status = 200, description = "`{hmac, version}`")), security(("bearer" = [])))]
pub async fn hmac(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<MessageBody>,
) -> ApiResult<Json<Value>> {
    let (keys, caller) = begin(&state, &headers, &name, "hmac")?;
    let result = (|| {
        let message = decode("message", &body.message)?;
        keys.ring().hmac(&name, &message).map_err(crypto_error)
    })();
    let tag = audited(
        &state,
        &caller,
        "key.hmac",
        &resource(&name),
        result,
        |t| json!({"version": t.version()}),
    )
    .await?;
    Ok(Json(
        json!({"hmac": tag.encode(), "version": tag.version()}),
    ))
}

/// Whether an HMAC tag is valid for the message (constant time).
#[utoipa::path(post, path = "/v1/keys/{name}/verify-hmac", tag = "keys",
    params(("name" = String, Path, description = "key name")),
    request_body(content = String, description = "`{message, hmac}`", content_type = "application/json"),
    responses((status = 200, description = "`{valid}`")), security(("bearer" = [])))]
pub async fn verify_hmac(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<VerifyHmacBody>,
) -> ApiResult<Json<Value>> {
    let (keys, caller) = begin(&state, &headers, &name, "verify")?;
    let result = (|| {
        let message = decode("message", &body.message)?;
        let tag = Signature::parse(&body.hmac).map_err(crypto_error)?;
        keys.ring()
            .verify_hmac(&name, &message, &tag)
            .map_err(crypto_error)
    })();
    let valid = audited(
        &state,
        &caller,
        "key.verify_hmac",
        &resource(&name),
        result,
        |v| json!({"valid": v}),
    )
    .await?;
    Ok(Json(json!({ "valid": valid })))
}

// -- batches: the whole batch is refused, or one result or error per item ---------------------

/// The per-item answers and how many failed.
fn per_item<T>(results: Vec<ApiResult<T>>, ok: impl Fn(T) -> Value) -> (Vec<Value>, usize) {
    let failed = results.iter().filter(|r| r.is_err()).count();
    let items = results
        .into_iter()
        .map(|result| match result {
            Ok(value) => ok(value),
            Err(error) => item_error(error),
        })
        .collect();
    (items, failed)
}

async fn batch_answer(
    state: &AppState,
    caller: &Caller,
    action: &str,
    name: &str,
    result: ApiResult<(Vec<Value>, usize)>,
) -> ApiResult<Json<Value>> {
    let (results, _) = audited(
        state,
        caller,
        action,
        &resource(name),
        result,
        |(r, f)| json!({"items": r.len(), "failed": f}),
    )
    .await?;
    Ok(Json(json!({ "results": results })))
}

/// Encrypt many items: `{results: [{ciphertext, version} | {error}]}`.
#[utoipa::path(post, path = "/v1/keys/{name}/encrypt/batch", tag = "keys",
    params(("name" = String, Path, description = "key name")),
    request_body(content = String, description = "`{items: [{plaintext, aad?}]}`", content_type = "application/json"),
    responses((status = 200, description = "one result or error per item")), security(("bearer" = [])))]
pub async fn encrypt_batch(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<Batch<EncryptBody>>,
) -> ApiResult<Json<Value>> {
    let (keys, caller) = begin(&state, &headers, &name, "encrypt")?;
    batch_limit(&state, body.items.len())?;
    let result = (|| {
        let decoded: Vec<ApiResult<(Vec<u8>, Vec<u8>)>> = body
            .items
            .iter()
            .map(|item| {
                Ok((
                    decode("plaintext", &item.plaintext)?,
                    decode_opt("aad", &item.aad)?,
                ))
            })
            .collect();
        let inputs: Vec<EncryptItem<'_>> = decoded
            .iter()
            .filter_map(|d| d.as_ref().ok())
            .map(|(plaintext, aad)| EncryptItem { plaintext, aad })
            .collect();
        let mut encrypted = keys
            .ring()
            .encrypt_batch(&name, &inputs)
            .map_err(crypto_error)?
            .into_iter();
        let results = decoded
            .into_iter()
            .map(|d| match d {
                Ok(_) => encrypted
                    .next()
                    .unwrap_or(Err(CryptoError::OperationFailed))
                    .map_err(crypto_error),
                Err(error) => Err(error),
            })
            .collect();
        Ok(per_item(
            results,
            |c: Ciphertext| json!({"ciphertext": c.encode(), "version": c.version()}),
        ))
    })();
    batch_answer(&state, &caller, "key.encrypt_batch", &name, result).await
}

/// Decrypts (or rewraps) many items; invalid base64 in an item fails that item only.
fn decrypt_items(
    items: &[DecryptBody],
    run: impl FnOnce(&[DecryptItem<'_>]) -> Result<Vec<Result<Value, CryptoError>>, CryptoError>,
) -> ApiResult<(Vec<Value>, usize)> {
    let aads: Vec<ApiResult<Vec<u8>>> = items.iter().map(|i| decode_opt("aad", &i.aad)).collect();
    let inputs: Vec<DecryptItem<'_>> = items
        .iter()
        .zip(&aads)
        .filter_map(|(item, aad)| {
            aad.as_ref().ok().map(|aad| DecryptItem {
                ciphertext: &item.ciphertext,
                aad,
            })
        })
        .collect();
    let mut done = run(&inputs).map_err(crypto_error)?.into_iter();
    let results = aads
        .into_iter()
        .map(|aad| match aad {
            Ok(_) => done
                .next()
                .unwrap_or(Err(CryptoError::OperationFailed))
                .map_err(crypto_error),
            Err(error) => Err(error),
        })
        .collect();
    Ok(per_item(results, |v| v))
}

/// Decrypt many items: `{results: [{plaintext} | {error}]}`.
#[utoipa::path(post, path = "/v1/keys/{name}/decrypt/batch", tag = "keys",
    params(("name" = String, Path, description = "key name")),
    request_body(content = String, description = "`{items: [{ciphertext, aad?}]}`", content_type = "application/json"),
    responses((status = 200, description = "one result or error per item")), security(("bearer" = [])))]
pub async fn decrypt_batch(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<Batch<DecryptBody>>,
) -> ApiResult<Json<Value>> {
    let (keys, caller) = begin(&state, &headers, &name, "decrypt")?;
    batch_limit(&state, body.items.len())?;
    let ring = keys.ring();
    let result = decrypt_items(&body.items, |inputs| {
        Ok(ring
            .decrypt_batch(&name, inputs)?
            .into_iter()
            .map(|r| r.map(|p| json!({"plaintext": STANDARD.encode(p.expose())})))
            .collect())
    });
    batch_answer(&state, &caller, "key.decrypt_batch", &name, result).await
}

/// Rewrap many items: `{results: [{ciphertext, version} | {error}]}`.
#[utoipa::path(post, path = "/v1/keys/{name}/rewrap/batch", tag = "keys",
    params(("name" = String, Path, description = "key name")),
    request_body(content = String, description = "`{items: [{ciphertext, aad?}]}`", content_type = "application/json"),
    responses((status = 200, description = "one result or error per item")), security(("bearer" = [])))]
pub async fn rewrap_batch(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<Batch<DecryptBody>>,
) -> ApiResult<Json<Value>> {
    let (keys, caller) = begin(&state, &headers, &name, "rewrap")?;
    batch_limit(&state, body.items.len())?;
    let ring = keys.ring();
    let result = decrypt_items(&body.items, |inputs| {
        Ok(ring
            .rewrap_batch(&name, inputs)?
            .into_iter()
            .map(|r| r.map(|c| json!({"ciphertext": c.encode(), "version": c.version()})))
            .collect())
    });
    batch_answer(&state, &caller, "key.rewrap_batch", &name, result).await
}

/// Signs (or MACs) many base64 messages.
fn message_items(
    items: &[MessageBody],
    run: impl FnOnce(&[&[u8]]) -> Result<Vec<Result<Signature, CryptoError>>, CryptoError>,
    field: &'static str,
) -> ApiResult<(Vec<Value>, usize)> {
    let decoded: Vec<ApiResult<Vec<u8>>> = items
        .iter()
        .map(|i| decode("message", &i.message))
        .collect();
    let inputs: Vec<&[u8]> = decoded
        .iter()
        .filter_map(|d| d.as_ref().ok().map(Vec::as_slice))
        .collect();
    let mut done = run(&inputs).map_err(crypto_error)?.into_iter();
    let results = decoded
        .into_iter()
        .map(|d| match d {
            Ok(_) => done
                .next()
                .unwrap_or(Err(CryptoError::OperationFailed))
                .map_err(crypto_error),
            Err(error) => Err(error),
        })
        .collect();
    Ok(per_item(
        results,
        |s: Signature| json!({ field: s.encode(), "version": s.version() }),
    ))
}

/// Verifies many signatures or tags.
fn verify_items(
    items: &[VerifyBody],
    run: impl FnOnce(&[VerifyItem<'_>]) -> Result<Vec<Result<bool, CryptoError>>, CryptoError>,
) -> ApiResult<(Vec<Value>, usize)> {
    let decoded: Vec<ApiResult<Vec<u8>>> = items
        .iter()
        .map(|i| decode("message", &i.message))
        .collect();
    let inputs: Vec<VerifyItem<'_>> = items
        .iter()
        .zip(&decoded)
        .filter_map(|(item, message)| {
            message.as_ref().ok().map(|message| VerifyItem {
                message,
                signature: &item.signature,
            })
        })
        .collect();
    let mut done = run(&inputs).map_err(crypto_error)?.into_iter();
    let results = decoded
        .into_iter()
        .map(|d| match d {
            Ok(_) => done
                .next()
                .unwrap_or(Err(CryptoError::OperationFailed))
                .map_err(crypto_error),
            Err(error) => Err(error),
        })
        .collect();
    Ok(per_item(results, |valid| json!({ "valid": valid })))
}

/// Sign many messages: `{results: [{signature, version} | {error}]}`.
#[utoipa::path(post, path = "/v1/keys/{name}/sign/batch", tag = "keys",
    params(("name" = String, Path, description = "key name")),
    request_body(content = String, description = "`{items: [{message}]}`", content_type = "application/json"),
    responses((status = 200, description = "one result or error per item")), security(("bearer" = [])))]
pub async fn sign_batch(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<Batch<MessageBody>>,
) -> ApiResult<Json<Value>> {
    let (keys, caller) = begin(&state, &headers, &name, "sign")?;
    batch_limit(&state, body.items.len())?;
    let ring = keys.ring();
    let result = message_items(&body.items, |m| ring.sign_batch(&name, m), "signature");
    batch_answer(&state, &caller, "key.sign_batch", &name, result).await
}

/// Verify many signatures: `{results: [{valid} | {error}]}`.
#[utoipa::path(post, path = "/v1/keys/{name}/verify/batch", tag = "keys",
    params(("name" = String, Path, description = "key name")),
    request_body(content = String, description = "`{items: [{message, signature}]}`", content_type = "application/json"),
    responses((status = 200, description = "one result or error per item")), security(("bearer" = [])))]
pub async fn verify_batch(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<Batch<VerifyBody>>,
) -> ApiResult<Json<Value>> {
    let (keys, caller) = begin(&state, &headers, &name, "verify")?;
    batch_limit(&state, body.items.len())?;
    let ring = keys.ring();
    let result = verify_items(&body.items, |items| ring.verify_batch(&name, items));
    batch_answer(&state, &caller, "key.verify_batch", &name, result).await
}

/// HMAC many messages: `{results: [{hmac, version} | {error}]}`.
#[utoipa::path(post, path = "/v1/keys/{name}/hmac/batch", tag = "keys",
    params(("name" = String, Path, description = "key name")),
    request_body(content = String, description = "`{items: [{message}]}`", content_type = "application/json"),
    responses((status = 200, description = "one result or error per item")), security(("bearer" = [])))]
pub async fn hmac_batch(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<Batch<MessageBody>>,
) -> ApiResult<Json<Value>> {
    let (keys, caller) = begin(&state, &headers, &name, "hmac")?;
    batch_limit(&state, body.items.len())?;
    let ring = keys.ring();
    let result = message_items(&body.items, |m| ring.hmac_batch(&name, m), "hmac");
    batch_answer(&state, &caller, "key.hmac_batch", &name, result).await
}

/// Verify many HMAC tags: `{results: [{valid} | {error}]}` (items are `{message, signature}`).
#[utoipa::path(post, path = "/v1/keys/{name}/verify-hmac/batch", tag = "keys",
    params(("name" = String, Path, description = "key name")),
    request_body(content = String, description = "`{items: [{message, signature}]}`", content_type = "application/json"),
    responses((status = 200, description = "one result or error per item")), security(("bearer" = [])))]
pub async fn verify_hmac_batch(
    State(state): State<Arc<AppState>>,
    headers: CallerHeaders,
    ApiPath(name): ApiPath<String>,
    ApiJson(body): ApiJson<Batch<VerifyBody>>,
) -> ApiResult<Json<Value>> {
    let (keys, caller) = begin(&state, &headers, &name, "verify")?;
    batch_limit(&state, body.items.len())?;
    let ring = keys.ring();
    let result = verify_items(&body.items, |items| ring.verify_hmac_batch(&name, items));
    batch_answer(&state, &caller, "key.verify_hmac_batch", &name, result).await
}

/// The OpenAPI paths of the key service and the secrets store, merged into
/// [`crate::openapi::document`].
#[derive(Debug, utoipa::OpenApi)]
#[openapi(paths(
    create_key,
    list_keys,
    get_key,
    rotate,
    configure,
    enable,
    disable,
    schedule_deletion,
    cancel_deletion,
    revoke,
    revoke_version,
    export,
    encrypt,
    decrypt,
    rewrap,
    datakey,
    derive,
    sign,
    verify,
    hmac,
    verify_hmac,
    encrypt_batch,
    decrypt_batch,
    rewrap_batch,
    sign_batch,
    verify_batch,
    hmac_batch,
    verify_hmac_batch,
    crate::routes::secrets::put_secret,
    crate::routes::secrets::get_secret,
    crate::routes::secrets::delete_secret,
    crate::routes::secrets::start_rewrap,
    crate::routes::secrets::rewrap_progress,
))]
pub struct KeysApiDoc;
