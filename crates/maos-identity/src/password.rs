//! Password hashing with Argon2id, and user-name normalisation.
//!
//! Hashes are PHC strings (`$argon2id$v=19$m=...,t=...,p=...$salt$hash`), so the parameters
//! travel with each hash and [`PasswordHasher::needs_rehash`] can tell when they are outdated.
//! Unknown users are verified against a dummy hash so that they take as long as a wrong
//! password.

use argon2::password_hash::phc::PasswordHash;
use argon2::{
    Algorithm as Argon2Variant, Argon2, Params, PasswordHasher as _, PasswordVerifier as _, Version,
};
use unicode_normalization::UnicodeNormalization;

use crate::secret::{RandomError, SecretString, random_bytes};

/// OWASP's minimum for Argon2id: 19 MiB of memory, two passes, one lane.
pub const OWASP_MIN_M_COST_KIB: u32 = 19 * 1024;
pub const OWASP_MIN_T_COST: u32 = 2;
pub const OWASP_MIN_P_COST: u32 = 1;
/// Passwords longer than this are refused before hashing (they only cost time).
pub const MAX_PASSWORD_LEN: usize = 1024;
/// Longest normalised user name, in bytes.
pub const MAX_USER_NAME_LEN: usize = 128;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordError {
    #[error("Argon2 parameters m={m} KiB, t={t}, p={p} are below the OWASP minimum (19456, 2, 1)")]
    WeakParameters { m: u32, t: u32, p: u32 },
    #[error("the stored hash is not a valid PHC string")]
    MalformedHash,
    #[error("the password is longer than {MAX_PASSWORD_LEN} bytes")]
    TooLong,
    #[error("the password is empty")]
    Empty,
    #[error("hashing failed: {0}")]
    Hashing(String),
    #[error(transparent)]
    Random(#[from] RandomError),
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UserNameError {
    #[error("the user name is empty")]
    Empty,
    #[error("the user name is longer than {MAX_USER_NAME_LEN} bytes")]
    TooLong,
    #[error("the user name contains whitespace or control characters")]
    BadCharacter,
}

/// Normalises a user name for lookup and lockout: Unicode NFKC, then lower case, so that
/// `Ａｌｉｃｅ` and `alice` are one account and one lockout key.
pub fn normalize_user_name(name: &str) -> Result<String, UserNameError> {
    let normalized: String = name.trim().nfkc().collect::<String>().to_lowercase();
    // Lower-casing can produce characters that NFKC would fold again; run it once more.
    let normalized: String = normalized.nfkc().collect();
    if normalized.is_empty() {
        return Err(UserNameError::Empty);
    }
    if normalized.len() > MAX_USER_NAME_LEN {
        return Err(UserNameError::TooLong);
    }
    if normalized
        .chars()
        .any(|c| c.is_whitespace() || c.is_control())
    {
        return Err(UserNameError::BadCharacter);
    }
    Ok(normalized)
}

/// Argon2id cost parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct PasswordParams {
    pub m_cost_kib: u32,
    pub t_cost: u32,
    pub p_cost: u32,
}

impl Default for PasswordParams {
    fn default() -> Self {
        Self {
            m_cost_kib: OWASP_MIN_M_COST_KIB,
            t_cost: OWASP_MIN_T_COST,
            p_cost: OWASP_MIN_P_COST,
        }
    }
}

/// The result of checking a password against a stored hash.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PasswordCheck {
    pub matched: bool,
    /// The hash uses other parameters than the current ones; store a new hash after a match.
    pub needs_rehash: bool,
}

/// Hashes and verifies passwords with fixed Argon2id parameters.
pub struct PasswordHasher {
    params: PasswordParams,
    argon2: Argon2<'static>,
    /// A hash of a random password made with the current parameters at construction, for
    /// unknown users.
    dummy: String,
}

impl std::fmt::Debug for PasswordHasher {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PasswordHasher")
            .field("params", &self.params)
            .finish_non_exhaustive()
    }
}

impl PasswordHasher {
    /// Refuses parameters below the OWASP minimum. Computes one hash (the dummy).
    pub fn new(params: PasswordParams) -> Result<Self, PasswordError> {
        let weak = PasswordError::WeakParameters {
            m: params.m_cost_kib,
            t: params.t_cost,
            p: params.p_cost,
        };
        if params.m_cost_kib < OWASP_MIN_M_COST_KIB
            || params.t_cost < OWASP_MIN_T_COST
            || params.p_cost < OWASP_MIN_P_COST
        {
            return Err(weak);
        }
        let argon_params =
            Params::new(params.m_cost_kib, params.t_cost, params.p_cost, None).map_err(|_| weak)?;
        let argon2 = Argon2::new(Argon2Variant::Argon2id, Version::V0x13, argon_params);

        let mut hasher = Self {
            params,
            argon2,
            dummy: String::new(),
        };
        let filler = crate::jose::b64_encode(&random_bytes::<24>()?);
        hasher.dummy = hasher.hash(&SecretString::new(filler))?;
        Ok(hasher)
    }

    pub fn params(&self) -> PasswordParams {
        self.params
    }

    /// Hashes a password with a fresh 16-byte salt; returns the PHC string.
    pub fn hash(&self, password: &SecretString) -> Result<String, PasswordError> {
        check_length(password)?;
        let salt = random_bytes::<16>()?;
        let hash = self
            .argon2
            .hash_password_with_salt(password.expose().as_bytes(), &salt)
            .map_err(|e| PasswordError::Hashing(e.to_string()))?;
        Ok(hash.to_string())
    }

    /// Verifies a password against a stored PHC string.
    pub fn verify(
        &self,
        password: &SecretString,
        stored: &str,
    ) -> Result<PasswordCheck, PasswordError> {
        check_length(password)?;
        let parsed = PasswordHash::new(stored).map_err(|_| PasswordError::MalformedHash)?;
        let matched = self
            .argon2
            .verify_password(password.expose().as_bytes(), &parsed)
            .is_ok();
        Ok(PasswordCheck {
            matched,
            needs_rehash: self.parsed_needs_rehash(&parsed),
        })
    }

    /// Verifies against the stored hash, or against the dummy hash when there is none (unknown
    /// user, or a user without a password), so both paths do one full Argon2 computation. An
    /// unknown user never matches.
    pub fn verify_or_dummy(&self, password: &SecretString, stored: Option<&str>) -> PasswordCheck {
        let known = stored.is_some();
        let target = stored.unwrap_or(&self.dummy);
        let check = match self.verify(password, target) {
            Ok(check) => check,
            // A malformed stored hash still costs one hash, then fails.
            Err(_) => {
                let _ = self.verify(password, &self.dummy);
                PasswordCheck {
                    matched: false,
                    needs_rehash: known,
                }
            }
        };
        PasswordCheck {
            matched: known && check.matched,
            needs_rehash: known && check.needs_rehash,
        }
    }

    /// Whether a stored hash differs from the current algorithm, version or parameters.
    pub fn needs_rehash(&self, stored: &str) -> bool {
        match PasswordHash::new(stored) {
            Ok(parsed) => self.parsed_needs_rehash(&parsed),
            Err(_) => true,
        }
    }

    fn parsed_needs_rehash(&self, parsed: &PasswordHash) -> bool {
        let Ok(stored) = Params::try_from(parsed) else {
            return true;
        };
        parsed.algorithm.as_str() != "argon2id"
            || parsed.version != Some(Version::V0x13.into())
            || stored.m_cost() != self.params.m_cost_kib
            || stored.t_cost() != self.params.t_cost
            || stored.p_cost() != self.params.p_cost
            || parsed.hash.as_ref().map(|h| h.len()) != Some(Params::DEFAULT_OUTPUT_LEN)
    }
}

fn check_length(password: &SecretString) -> Result<(), PasswordError> {
    if password.expose().is_empty() {
        return Err(PasswordError::Empty);
    }
    if password.expose().len() > MAX_PASSWORD_LEN {
        return Err(PasswordError::TooLong);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn user_names_normalise() {
        assert_eq!(normalize_user_name("Alice").unwrap(), "alice");
        // Fullwidth letters fold to ASCII under NFKC.
        assert_eq!(normalize_user_name("Ａｌｉｃｅ").unwrap(), "alice");
        assert_eq!(normalize_user_name("  bob ").unwrap(), "bob");
        // The Kelvin sign folds to k.
        assert_eq!(normalize_user_name("\u{212A}arl").unwrap(), "karl");
        assert_eq!(normalize_user_name(""), Err(UserNameError::Empty));
        assert_eq!(normalize_user_name("a b"), Err(UserNameError::BadCharacter));
        assert_eq!(
            normalize_user_name("a\u{0}"),
            Err(UserNameError::BadCharacter)
        );
    }

    #[test]
    fn weak_parameters_are_refused() {
        let weak = PasswordParams {
            m_cost_kib: 4096,
            t_cost: 2,
            p_cost: 1,
        };
        assert!(matches!(
            PasswordHasher::new(weak),
            Err(PasswordError::WeakParameters { .. })
        ));
        let weak = PasswordParams {
            m_cost_kib: OWASP_MIN_M_COST_KIB,
            t_cost: 1,
            p_cost: 1,
        };
        assert!(matches!(
            PasswordHasher::new(weak),
            Err(PasswordError::WeakParameters { .. })
        ));
    }

    // One test for the Argon2 paths: each hash costs 19 MiB and two passes.
    #[test]
    fn hash_verify_rehash_and_dummy() {
        let hasher = PasswordHasher::new(PasswordParams::default()).unwrap();
        let password = SecretString::new("correct horse battery staple");
        let stored = hasher.hash(&password).unwrap();
        assert!(
            stored.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{stored}"
        );

        let ok = hasher.verify(&password, &stored).unwrap();
        assert_eq!(
            ok,
            PasswordCheck {
                matched: true,
                needs_rehash: false
            }
        );
        let wrong = hasher
            .verify(&SecretString::new("Tr0ub4dor&3"), &stored)
            .unwrap();
        assert!(!wrong.matched);

        // Unknown users never match, even with the password that made the dummy.
        assert!(!hasher.verify_or_dummy(&password, None).matched);
        assert!(hasher.verify_or_dummy(&password, Some(&stored)).matched);

        // Parameters above the current ones still verify but ask for a rehash.
        let stronger = "$argon2id$v=19$m=19457,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
        assert!(hasher.needs_rehash(stronger));
        assert!(!hasher.needs_rehash(&stored));
        assert!(hasher.needs_rehash("$argon2i$v=19$m=19456,t=2,p=1$c29tZXNhbHRzb21lc2FsdA$AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"));
        assert!(hasher.needs_rehash("not a hash"));
        assert_eq!(
            hasher.verify(&password, "not a hash"),
            Err(PasswordError::MalformedHash)
        );
    }
}
