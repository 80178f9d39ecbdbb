//! Time-based one-time passwords (RFC 6238) and recovery codes.
//!
//! HOTP/TOTP is implemented here over aws-lc's HMAC. A code is usable once: the verifier
//! returns the time step it matched, the server stores it, and later codes must match a later
//! step, so a code replayed within its own 30 seconds fails too.

use std::time::SystemTime;

use aws_lc_rs::{digest, hmac};
use serde::{Deserialize, Serialize};

use crate::jose::b64_encode;
use crate::jose::jwk::secrets_equal;
use crate::secret::{RandomError, SecretBytes, SecretString, random_bytes};
use crate::token::unix_seconds;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum TotpAlgorithm {
    #[serde(rename = "SHA1")]
    Sha1,
    #[serde(rename = "SHA256")]
    Sha256,
    #[serde(rename = "SHA512")]
    Sha512,
}

impl TotpAlgorithm {
    fn hmac(self) -> hmac::Algorithm {
        match self {
            Self::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
            Self::Sha256 => hmac::HMAC_SHA256,
            Self::Sha512 => hmac::HMAC_SHA512,
        }
    }

    /// The `algorithm` parameter of an `otpauth://` URI.
    pub fn uri_name(self) -> &'static str {
        match self {
            Self::Sha1 => "SHA1",
            Self::Sha256 => "SHA256",
            Self::Sha512 => "SHA512",
        }
    }

    /// A secret as long as the hash output (RFC 4226 recommends at least 160 bits).
    pub fn secret_len(self) -> usize {
        match self {
            Self::Sha1 => 20,
            Self::Sha256 => 32,
            Self::Sha512 => 64,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum TotpError {
    #[error("TOTP codes have 6 to 8 digits, not {0}")]
    BadDigits(u8),
    #[error("the TOTP period must be at least one second")]
    BadPeriod,
    #[error("the code is not {0} decimal digits")]
    Malformed(u8),
    #[error("the code is wrong")]
    Mismatch,
    #[error("the code was already used")]
    Replayed,
    #[error("the clock is before the Unix epoch")]
    ClockBeforeEpoch,
    #[error(transparent)]
    Random(#[from] RandomError),
}

/// TOTP parameters. The defaults are what authenticator apps expect.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct TotpConfig {
    pub algorithm: TotpAlgorithm,
    pub digits: u8,
    /// Time step in seconds.
    pub period: u64,
    /// Steps of clock difference accepted either side.
    pub skew: u64,
}

impl Default for TotpConfig {
    fn default() -> Self {
        Self {
            algorithm: TotpAlgorithm::Sha1,
            digits: 6,
            period: 30,
            skew: 1,
        }
    }
}

impl TotpConfig {
    fn check(&self) -> Result<(), TotpError> {
        if !(6..=8).contains(&self.digits) {
            return Err(TotpError::BadDigits(self.digits));
        }
        if self.period == 0 {
            return Err(TotpError::BadPeriod);
        }
        Ok(())
    }

    /// The time step at `unix_seconds`.
    pub fn step_at(&self, unix_seconds: u64) -> u64 {
        unix_seconds / self.period.max(1)
    }
}

/// The HOTP value (RFC 4226) of `counter`, as a zero-padded string of `digits` digits.
pub fn hotp(
    secret: &[u8],
    algorithm: TotpAlgorithm,
    digits: u8,
    counter: u64,
) -> Result<SecretString, TotpError> {
    if !(6..=8).contains(&digits) {
        return Err(TotpError::BadDigits(digits));
    }
    let key = hmac::Key::new(algorithm.hmac(), secret);
    let tag = hmac::sign(&key, &counter.to_be_bytes());
    let mac = tag.as_ref();

    // Dynamic truncation: the low nibble of the last byte picks four bytes.
    let offset = usize::from(mac.last().copied().unwrap_or(0) & 0x0f);
    let window: [u8; 4] = mac
        .get(offset..offset + 4)
        .and_then(|w| w.try_into().ok())
        .unwrap_or([0; 4]);
    let binary = u32::from_be_bytes(window) & 0x7fff_ffff;
    let modulus = 10u32.pow(u32::from(digits));
    Ok(SecretString::new(format!(
        "{:0width$}",
        binary % modulus,
        width = usize::from(digits)
    )))
}

/// The TOTP code at `unix_seconds`.
pub fn totp_at(
    secret: &TotpSecret,
    config: &TotpConfig,
    unix_seconds: u64,
) -> Result<SecretString, TotpError> {
    config.check()?;
    hotp(
        secret.0.expose(),
        config.algorithm,
        config.digits,
        config.step_at(unix_seconds),
    )
}

/// Checks a code at `now`. `last_used_step` is the step of the last accepted code for this
/// principal; steps at or before it are refused. On success returns the matched step, which
/// the caller must store as the new `last_used_step`.
pub fn verify_totp(
    secret: &TotpSecret,
    config: &TotpConfig,
    code: &str,
    now: SystemTime,
    last_used_step: Option<u64>,
) -> Result<u64, TotpError> {
    config.check()?;
    if code.len() != usize::from(config.digits) || !code.bytes().all(|b| b.is_ascii_digit()) {
        return Err(TotpError::Malformed(config.digits));
    }
    let now = u64::try_from(unix_seconds(now)).map_err(|_| TotpError::ClockBeforeEpoch)?;
    let current = config.step_at(now);

    // Every candidate step is computed and compared, so timing does not show which matched.
    let mut matched: Option<u64> = None;
    for step in current.saturating_sub(config.skew)..=current.saturating_add(config.skew) {
        let expected = hotp(secret.0.expose(), config.algorithm, config.digits, step)?;
        if secrets_equal(expected.expose().as_bytes(), code.as_bytes()) && matched.is_none() {
            matched = Some(step);
        }
    }
    match matched {
        None => Err(TotpError::Mismatch),
        Some(step) if last_used_step.is_some_and(|last| step <= last) => Err(TotpError::Replayed),
        Some(step) => Ok(step),
    }
}

/// A TOTP seed. Store it encrypted (it must be usable, so it cannot be hashed).
#[derive(Clone, PartialEq, Eq)]
pub struct TotpSecret(SecretBytes);

impl std::fmt::Debug for TotpSecret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TotpSecret([redacted])")
    }
}

impl TotpSecret {
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        Self(SecretBytes::new(bytes))
    }

    pub fn generate(algorithm: TotpAlgorithm) -> Result<Self, RandomError> {
        let bytes: [u8; 64] = random_bytes()?;
        Ok(Self(SecretBytes::new(
            bytes
                .get(..algorithm.secret_len())
                .unwrap_or(&bytes)
                .to_vec(),
        )))
    }

    pub fn expose(&self) -> &[u8] {
        self.0.expose()
    }

    /// RFC 4648 base32 without padding, as authenticator apps take it.
    pub fn to_base32(&self) -> SecretString {
        SecretString::new(base32(self.0.expose()))
    }
}

/// What a user receives at enrolment: the seed (for manual entry) and the URI for a QR code.
#[derive(Debug)]
pub struct TotpEnrollment {
    pub secret: TotpSecret,
    pub uri: SecretString,
    pub config: TotpConfig,
}

/// Starts an enrolment. The caller confirms it with a first code before storing the secret.
pub fn enroll(
    issuer: &str,
    account: &str,
    config: TotpConfig,
) -> Result<TotpEnrollment, TotpError> {
    config.check()?;
    let secret = TotpSecret::generate(config.algorithm)?;
    let uri = otpauth_uri(issuer, account, &secret, &config);
    Ok(TotpEnrollment {
        secret,
        uri,
        config,
    })
}

/// `otpauth://totp/<issuer>:<account>?secret=...&issuer=...&algorithm=...&digits=...&period=...`
/// with issuer and account percent-encoded.
pub fn otpauth_uri(
    issuer: &str,
    account: &str,
    secret: &TotpSecret,
    config: &TotpConfig,
) -> SecretString {
    let issuer = percent_encode(issuer);
    SecretString::new(format!(
        "otpauth://totp/{issuer}:{account}?secret={secret}&issuer={issuer}&algorithm={alg}&digits={digits}&period={period}",
        account = percent_encode(account),
        secret = secret.to_base32().expose(),
        alg = config.algorithm.uri_name(),
        digits = config.digits,
        period = config.period,
    ))
}

fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}

const BASE32_ALPHABET: &[u8; 32] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

fn base32(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len().div_ceil(5) * 8);
    let mut buffer: u64 = 0;
    let mut bits = 0u32;
    for byte in bytes {
        buffer = (buffer << 8) | u64::from(*byte);
        bits += 8;
        while bits >= 5 {
            bits -= 5;
            let index = usize::try_from((buffer >> bits) & 0x1f).unwrap_or(0);
            out.push(char::from(
                BASE32_ALPHABET.get(index).copied().unwrap_or(b'A'),
            ));
        }
    }
    if bits > 0 {
        let index = usize::try_from((buffer << (5 - bits)) & 0x1f).unwrap_or(0);
        out.push(char::from(
            BASE32_ALPHABET.get(index).copied().unwrap_or(b'A'),
        ));
    }
    out
}

/// Number of recovery codes made at enrolment.
pub const RECOVERY_CODE_COUNT: usize = 10;

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecoveryError {
    #[error("the recovery code is wrong or already used")]
    Invalid,
}

/// Makes recovery codes: 128 random bits each, shown once (`codes`), stored as SHA-256 hashes
/// (`hashes`). SHA-256 suffices because the codes are random, not chosen by people.
pub fn generate_recovery_codes(
    count: usize,
) -> Result<(Vec<SecretString>, Vec<String>), RandomError> {
    let mut codes = Vec::with_capacity(count);
    let mut hashes = Vec::with_capacity(count);
    for _ in 0..count {
        let raw = base32(&random_bytes::<16>()?);
        let grouped: Vec<String> = raw
            .as_bytes()
            .chunks(5)
            .map(|chunk| chunk.iter().map(|b| char::from(*b)).collect())
            .collect();
        hashes.push(hash_recovery_code(&raw));
        codes.push(SecretString::new(grouped.join("-").to_ascii_lowercase()));
    }
    Ok((codes, hashes))
}

/// Uses a recovery code: on a match its hash is removed from `stored` (single use).
pub fn redeem_recovery_code(
    stored: &mut Vec<String>,
    presented: &str,
) -> Result<(), RecoveryError> {
    let normalized: String = presented
        .chars()
        .filter(|c| !matches!(c, '-' | ' '))
        .map(|c| c.to_ascii_uppercase())
        .collect();
    let hash = hash_recovery_code(&normalized);
    // Compare against every stored hash so timing does not reveal the position.
    let mut found = None;
    for (index, candidate) in stored.iter().enumerate() {
        if secrets_equal(candidate.as_bytes(), hash.as_bytes()) && found.is_none() {
            found = Some(index);
        }
    }
    let index = found.ok_or(RecoveryError::Invalid)?;
    stored.remove(index);
    Ok(())
}

fn hash_recovery_code(normalized: &str) -> String {
    b64_encode(digest::digest(&digest::SHA256, normalized.as_bytes()).as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, UNIX_EPOCH};

    fn seed(len: usize) -> TotpSecret {
        // RFC 6238 Appendix B: the ASCII digits "1234567890" repeated to the key length.
        TotpSecret::from_bytes(b"1234567890".iter().cycle().take(len).copied().collect())
    }

    #[test]
    fn rfc6238_appendix_b() {
        let vectors: [(u64, &str, &str, &str); 6] = [
            (59, "94287082", "46119246", "90693936"),
            (1111111109, "07081804", "68084774", "25091201"),
            (1111111111, "14050471", "67062674", "99943326"),
            (1234567890, "89005924", "91819424", "93441116"),
            (2000000000, "69279037", "90698825", "38618901"),
            (20000000000, "65353130", "77737706", "47863826"),
        ];
        for (time, sha1, sha256, sha512) in vectors {
            for (algorithm, len, expected) in [
                (TotpAlgorithm::Sha1, 20, sha1),
                (TotpAlgorithm::Sha256, 32, sha256),
                (TotpAlgorithm::Sha512, 64, sha512),
            ] {
                let config = TotpConfig {
                    algorithm,
                    digits: 8,
                    period: 30,
                    skew: 1,
                };
                let code = totp_at(&seed(len), &config, time).unwrap();
                assert_eq!(code.expose(), expected, "{algorithm:?} at {time}");
            }
        }
    }

    #[test]
    fn a_code_works_once_even_within_its_step() {
        let secret = seed(20);
        let config = TotpConfig::default();
        let now = UNIX_EPOCH + Duration::from_secs(1_111_111_111);
        let code = totp_at(&secret, &config, 1_111_111_111).unwrap();

        let step = verify_totp(&secret, &config, code.expose(), now, None).unwrap();
        assert_eq!(step, 1_111_111_111 / 30);
        // Same code, same step, a second later: refused.
        let later = now + Duration::from_secs(1);
        assert_eq!(
            verify_totp(&secret, &config, code.expose(), later, Some(step)),
            Err(TotpError::Replayed)
        );
        // The previous step's code (within skew) is refused too once a later step was used.
        let previous = totp_at(&secret, &config, 1_111_111_111 - 30).unwrap();
        assert_eq!(
            verify_totp(&secret, &config, previous.expose(), later, Some(step)),
            Err(TotpError::Replayed)
        );
        // The next step's code is fine.
        let next = totp_at(&secret, &config, 1_111_111_111 + 30).unwrap();
        assert_eq!(
            verify_totp(&secret, &config, next.expose(), later, Some(step)),
            Ok(step + 1)
        );
    }

    #[test]
    fn skew_and_malformed_codes() {
        let secret = seed(20);
        let config = TotpConfig::default();
        let now = UNIX_EPOCH + Duration::from_secs(1_000_000);
        let two_steps_ago = totp_at(&secret, &config, 1_000_000 - 60).unwrap();
        assert!(verify_totp(&secret, &config, two_steps_ago.expose(), now, None).is_err());
        assert_eq!(
            verify_totp(&secret, &config, "12345", now, None),
            Err(TotpError::Malformed(6))
        );
        assert_eq!(
            verify_totp(&secret, &config, "12345a", now, None),
            Err(TotpError::Malformed(6))
        );
        let bad = TotpConfig {
            digits: 9,
            ..config
        };
        assert_eq!(
            verify_totp(&secret, &bad, "123456789", now, None),
            Err(TotpError::BadDigits(9))
        );
    }

    #[test]
    fn enrolment_uri() {
        let config = TotpConfig::default();
        let enrollment = enroll("MAOS Security", "alice@example.com", config).unwrap();
        let uri = enrollment.uri.expose();
        assert!(
            uri.starts_with("otpauth://totp/MAOS%20Security:alice%40example.com?secret="),
            "{uri}"
        );
        assert!(uri.contains("&issuer=MAOS%20Security&algorithm=SHA1&digits=6&period=30"));
        assert_eq!(enrollment.secret.expose().len(), 20);
        assert_eq!(base32(b"foobar"), "MZXW6YTBOI");
    }

    #[test]
    fn recovery_codes_are_single_use() {
        let (codes, mut stored) = generate_recovery_codes(RECOVERY_CODE_COUNT).unwrap();
        assert_eq!(codes.len(), 10);
        assert!(!stored.iter().any(|h| codes.iter().any(|c| c.expose() == h)));
        let code = codes[3].expose().to_owned();
        assert_eq!(code.replace('-', "").len(), 26);
        redeem_recovery_code(&mut stored, &code.to_uppercase()).unwrap();
        assert_eq!(stored.len(), 9);
        assert_eq!(
            redeem_recovery_code(&mut stored, &code),
            Err(RecoveryError::Invalid)
        );
        assert_eq!(
            redeem_recovery_code(&mut stored, "nope"),
            Err(RecoveryError::Invalid)
        );
    }
}
