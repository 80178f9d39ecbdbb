//! A KEK inside a PKCS#11 token (an HSM, or SoftHSM2 in tests). The KEK is an AES-256 secret
//! key object that is sensitive and not extractable, found by its label and generated inside the
//! token on first use. Wrapping and unwrapping run inside the token: `C_Encrypt`/`C_Decrypt`
//! with `CKM_AES_GCM`, or `C_WrapKey`/`C_UnwrapKey` with `CKM_AES_KEY_WRAP_PAD` through a
//! short-lived session object.

use std::fmt;
use std::path::PathBuf;
use std::sync::Mutex;

use cryptoki::context::{CInitializeArgs, CInitializeFlags, Pkcs11};
use cryptoki::error::{Error as Pkcs11Error, RvError};
use cryptoki::mechanism::Mechanism;
use cryptoki::mechanism::aead::GcmParams;
use cryptoki::object::{Attribute, AttributeType, KeyType, ObjectClass, ObjectHandle};
use cryptoki::session::{Session, UserType};
use cryptoki::slot::Slot;
use cryptoki::types::{AuthPin, Ulong};

use crate::error::KekError;
use crate::kek::{KekMechanism, KekProvider, kwp_plaintext, kwp_strip, split_blob};
use crate::primitives::{self, AEAD_NONCE_LEN};
use crate::secret::SecretBytes;
use zeroize::Zeroize;

/// Where to find the token and the KEK.
#[derive(Clone)]
pub struct Pkcs11Config {
    /// The PKCS#11 module, e.g. `/usr/lib/softhsm/libsofthsm2.so`.
    pub module: PathBuf,
    /// The label of an initialised token.
    pub token_label: String,
    /// The token's user PIN.
    pub user_pin: SecretBytes,
    /// The label of the KEK object; generated if the token has none.
    pub kek_label: String,
    /// The mechanism for new wraps.
    pub mechanism: KekMechanism,
}

impl fmt::Debug for Pkcs11Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Config")
            .field("module", &self.module)
            .field("token_label", &self.token_label)
            .field("user_pin", &"[redacted]")
            .field("kek_label", &self.kek_label)
            .field("mechanism", &self.mechanism)
            .finish()
    }
}

/// The PKCS#11 KEK provider. One logged-in session, used under a mutex (a PKCS#11 session
/// must not be used by two threads at once).
pub struct Pkcs11Kek {
    // Field order matters: the session closes before the library is finalised.
    session: Mutex<Session>,
    kek: ObjectHandle,
    token_label: String,
    kek_label: String,
    mechanism: KekMechanism,
    _context: Pkcs11,
}

impl fmt::Debug for Pkcs11Kek {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Pkcs11Kek")
            .field("token_label", &self.token_label)
            .field("kek_label", &self.kek_label)
            .field("mechanism", &self.mechanism)
            .finish_non_exhaustive()
    }
}

fn pin_from(bytes: &SecretBytes) -> Result<AuthPin, KekError> {
    let text = std::str::from_utf8(bytes.expose())
        .map_err(|_| KekError::Pkcs11("the user pin is not utf-8".to_owned()))?;
    Ok(AuthPin::from(text.to_owned()))
}

/// Loads the module and initialises it; an earlier initialisation in this process is fine.
pub(crate) fn load_module(module: &std::path::Path) -> Result<Pkcs11, KekError> {
    if !module.exists() {
        return Err(KekError::ModuleMissing {
            path: module.display().to_string(),
        });
    }
    let context = Pkcs11::new(module)?;
    match context.initialize(CInitializeArgs::new(CInitializeFlags::OS_LOCKING_OK)) {
        Ok(()) | Err(Pkcs11Error::Pkcs11(RvError::CryptokiAlreadyInitialized, _)) => Ok(context),
        Err(error) => Err(error.into()),
    }
}

/// The slot whose initialised token carries `label`.
pub(crate) fn find_token(context: &Pkcs11, label: &str) -> Result<Slot, KekError> {
    for slot in context.get_slots_with_initialized_token()? {
        if context.get_token_info(slot)?.label().trim_end() == label {
            return Ok(slot);
        }
    }
    Err(KekError::TokenNotFound(label.to_owned()))
}

fn pkcs11_len(len: usize) -> Result<Ulong, KekError> {
    Ulong::try_from(len).map_err(|error| KekError::Pkcs11(error.to_string()))
}

impl Pkcs11Kek {
    /// Opens a session on the token, logs in as the user and finds or generates the KEK.
    pub fn connect(config: &Pkcs11Config) -> Result<Self, KekError> {
        let context = load_module(&config.module)?;
        let slot = find_token(&context, &config.token_label)?;
        let session = context.open_rw_session(slot)?;
        match session.login(UserType::User, Some(&pin_from(&config.user_pin)?)) {
            Ok(()) | Err(Pkcs11Error::Pkcs11(RvError::UserAlreadyLoggedIn, _)) => {}
            Err(error) => return Err(error.into()),
        }

        let kek = Self::find_or_generate_kek(&session, &config.kek_label)?;
        tracing::info!(
            kek.token = %config.token_label,
            kek.label = %config.kek_label,
            mechanism = ?config.mechanism,
            "pkcs#11 kek ready"
        );
        Ok(Self {
            session: Mutex::new(session),
            kek,
            token_label: config.token_label.clone(),
            kek_label: config.kek_label.clone(),
            mechanism: config.mechanism,
            _context: context,
        })
    }

    fn find_or_generate_kek(session: &Session, label: &str) -> Result<ObjectHandle, KekError> {
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::AES),
            Attribute::Label(label.as_bytes().to_vec()),
        ];
        let found = session.find_objects(&template)?;
        match found.as_slice() {
            [] => {
                let generate = [
                    Attribute::Class(ObjectClass::SECRET_KEY),
                    Attribute::KeyType(KeyType::AES),
                    Attribute::ValueLen(pkcs11_len(32)?),
                    Attribute::Label(label.as_bytes().to_vec()),
                    Attribute::Token(true),
                    Attribute::Private(true),
                    Attribute::Sensitive(true),
                    Attribute::Extractable(false),
                    Attribute::Encrypt(true),
                    Attribute::Decrypt(true),
                    Attribute::Wrap(true),
                    Attribute::Unwrap(true),
                ];
                let handle = session.generate_key(&Mechanism::AesKeyGen, &generate)?;
                tracing::info!(kek.label = %label, "generated a new kek inside the token");
                Ok(handle)
            }
            [handle] => {
                Self::check_kek(session, *handle, label)?;
                Ok(*handle)
            }
            _ => Err(KekError::AmbiguousKek(label.to_owned())),
        }
    }

    /// Refuses a KEK object whose value could leave the token.
    fn check_kek(session: &Session, handle: ObjectHandle, label: &str) -> Result<(), KekError> {
        let attributes = session.get_attributes(
            handle,
            &[AttributeType::Sensitive, AttributeType::Extractable],
        )?;
        let mut sensitive = false;
        let mut extractable = true;
        for attribute in attributes {
            match attribute {
                Attribute::Sensitive(value) => sensitive = value,
                Attribute::Extractable(value) => extractable = value,
                _ => {}
            }
        }
        if !sensitive || extractable {
            return Err(KekError::WeakKek(label.to_owned()));
        }
        Ok(())
    }

    fn with_session<T>(
        &self,
        operation: impl FnOnce(&Session) -> Result<T, KekError>,
    ) -> Result<T, KekError> {
        let session = self
            .session
            .lock()
            .map_err(|_| KekError::Pkcs11("session lock poisoned".to_owned()))?;
        operation(&session)
    }

    /// Whether the KEK object is sensitive and not extractable (read from the token).
    pub fn kek_is_protected(&self) -> Result<bool, KekError> {
        self.with_session(|session| Ok(Self::check_kek(session, self.kek, &self.kek_label).is_ok()))
    }

    /// Tries to read the KEK's value out of the token; succeeds only if the token is broken.
    pub fn try_read_kek_value(&self) -> Result<Vec<u8>, KekError> {
        self.with_session(|session| {
            let attributes = session.get_attributes(self.kek, &[AttributeType::Value])?;
            attributes
                .into_iter()
                .find_map(|attribute| match attribute {
                    Attribute::Value(value) => Some(value),
                    _ => None,
                })
                .ok_or_else(|| KekError::Pkcs11("the token withholds the kek value".to_owned()))
        })
    }

    fn wrap_gcm(
        &self,
        session: &Session,
        material: &[u8],
        context: &[u8],
    ) -> Result<Vec<u8>, KekError> {
        let mut nonce = [0u8; AEAD_NONCE_LEN];
        primitives::fill_random(&mut nonce).map_err(|_| KekError::WrapFailed)?;
        let mut iv = nonce;
        let params = GcmParams::new(&mut iv, context, pkcs11_len(128)?)?;
        let sealed = session.encrypt(&Mechanism::AesGcm(params), self.kek, material)?;
        let mut blob = Vec::with_capacity(1 + AEAD_NONCE_LEN + sealed.len());
        blob.push(KekMechanism::GCM_TAG);
        blob.extend_from_slice(&nonce);
        blob.extend_from_slice(&sealed);
        Ok(blob)
    }

    fn unwrap_gcm(
        &self,
        session: &Session,
        body: &[u8],
        context: &[u8],
    ) -> Result<SecretBytes, KekError> {
        if body.len() < AEAD_NONCE_LEN + 16 {
            return Err(KekError::Malformed);
        }
        let (nonce, sealed) = body.split_at(AEAD_NONCE_LEN);
        let mut iv = [0u8; AEAD_NONCE_LEN];
        iv.copy_from_slice(nonce);
        let params = GcmParams::new(&mut iv, context, pkcs11_len(128)?)?;
        session
            .decrypt(&Mechanism::AesGcm(params), self.kek, sealed)
            .map(SecretBytes::new)
            .map_err(|_| KekError::UnwrapFailed)
    }

    fn wrap_kwp(
        &self,
        session: &Session,
        material: &[u8],
        context: &[u8],
    ) -> Result<Vec<u8>, KekError> {
        // C_WrapKey wraps key objects, so the material becomes a session object for a moment.
        let plaintext = kwp_plaintext(material, context)?;
        let mut template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::Token(false),
            Attribute::Sensitive(false),
            Attribute::Extractable(true),
            Attribute::Value(plaintext.expose().to_vec()),
        ];
        let created = session.create_object(&template);
        // The template's copy of the material is ours to wipe.
        if let Some(Attribute::Value(value)) = template.last_mut() {
            value.zeroize();
        }
        let temporary = created?;
        let wrapped = session.wrap_key(&Mechanism::AesKeyWrapPad, self.kek, temporary);
        let destroyed = session.destroy_object(temporary);
        let wrapped = wrapped?;
        destroyed?;
        let mut blob = Vec::with_capacity(1 + wrapped.len());
        blob.push(KekMechanism::KWP_TAG);
        blob.extend_from_slice(&wrapped);
        Ok(blob)
    }

    fn unwrap_kwp(
        &self,
        session: &Session,
        body: &[u8],
        context: &[u8],
    ) -> Result<SecretBytes, KekError> {
        let template = [
            Attribute::Class(ObjectClass::SECRET_KEY),
            Attribute::KeyType(KeyType::GENERIC_SECRET),
            Attribute::Token(false),
            Attribute::Sensitive(false),
            Attribute::Extractable(true),
        ];
        let temporary = session
            .unwrap_key(&Mechanism::AesKeyWrapPad, self.kek, body, &template)
            .map_err(|_| KekError::UnwrapFailed)?;
        let attributes = session.get_attributes(temporary, &[AttributeType::Value]);
        let destroyed = session.destroy_object(temporary);
        let value = attributes?
            .into_iter()
            .find_map(|attribute| match attribute {
                Attribute::Value(value) => Some(SecretBytes::new(value)),
                _ => None,
            })
            .ok_or(KekError::UnwrapFailed)?;
        destroyed?;
        kwp_strip(&value, context)
    }
}

impl KekProvider for Pkcs11Kek {
    fn describe(&self) -> String {
        format!("pkcs11:{}/{}", self.token_label, self.kek_label)
    }

    fn wrap(&self, material: &[u8], context: &[u8]) -> Result<Vec<u8>, KekError> {
        self.with_session(|session| match self.mechanism {
            KekMechanism::AesGcm => self.wrap_gcm(session, material, context),
            KekMechanism::AesKeyWrapPad => self.wrap_kwp(session, material, context),
        })
    }

    fn unwrap(&self, wrapped: &[u8], context: &[u8]) -> Result<SecretBytes, KekError> {
        let (mechanism, body) = split_blob(wrapped)?;
        self.with_session(|session| match mechanism {
            KekMechanism::AesGcm => self.unwrap_gcm(session, body, context),
            KekMechanism::AesKeyWrapPad => self.unwrap_kwp(session, body, context),
        })
    }
}
