//! The text form of ciphertexts and signatures: `maos:v<version>:<base64>`.
//!
//! `<version>` is the key version in decimal (1 or more, no sign, no leading zeros) and
//! `<base64>` the standard alphabet with padding, canonical (no stray bits, no whitespace).
//! The parser is strict so that one value has exactly one spelling, and it never panics.

use std::fmt;
use std::str::FromStr;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;

use crate::error::CryptoError;

const PREFIX: &str = "maos:v";

/// Upper bound on the text accepted, so that a hostile string cannot make us allocate a lot.
pub const MAX_TEXT_LEN: usize = 64 * 1024 * 1024;

fn parse(text: &str) -> Result<(u32, Vec<u8>), CryptoError> {
    if text.len() > MAX_TEXT_LEN {
        return Err(CryptoError::MalformedCiphertext(
            "longer than the allowed maximum",
        ));
    }
    let rest = text
        .strip_prefix(PREFIX)
        .ok_or(CryptoError::MalformedCiphertext("missing `maos:v` prefix"))?;
    let (digits, payload) = rest
        .split_once(':')
        .ok_or(CryptoError::MalformedCiphertext(
            "missing `:` after the version",
        ))?;
    let version = parse_version(digits)?;
    if payload.is_empty() {
        return Err(CryptoError::MalformedCiphertext("empty payload"));
    }
    let bytes = STANDARD
        .decode(payload)
        .map_err(|_| CryptoError::MalformedCiphertext("payload is not canonical base64"))?;
    Ok((version, bytes))
}

fn parse_version(digits: &str) -> Result<u32, CryptoError> {
    let well_formed = !digits.is_empty()
        && digits.len() <= 10
        && digits.bytes().all(|b| b.is_ascii_digit())
        && !digits.starts_with('0');
    if !well_formed {
        return Err(CryptoError::MalformedCiphertext(
            "version is not a positive decimal number",
        ));
    }
    digits
        .parse::<u32>()
        .map_err(|_| CryptoError::MalformedCiphertext("version is out of range"))
}

fn write(f: &mut fmt::Formatter<'_>, version: u32, bytes: &[u8]) -> fmt::Result {
    write!(f, "{PREFIX}{version}:{}", STANDARD.encode(bytes))
}

macro_rules! versioned {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, PartialEq, Eq, Hash)]
        pub struct $name {
            version: u32,
            bytes: Vec<u8>,
        }

        impl $name {
            /// Wraps raw bytes produced by key `version`.
            pub fn new(version: u32, bytes: Vec<u8>) -> Self {
                Self { version, bytes }
            }

            /// Parses the text form `maos:v<version>:<base64>`.
            pub fn parse(text: &str) -> Result<Self, CryptoError> {
                let (version, bytes) = parse(text)?;
                Ok(Self { version, bytes })
            }

            /// The key version that produced this value.
            pub fn version(&self) -> u32 {
                self.version
            }

            /// The binary payload (without the version).
            pub fn as_bytes(&self) -> &[u8] {
                &self.bytes
            }

            pub fn into_bytes(self) -> Vec<u8> {
                self.bytes
            }

            /// The text form, `maos:v<version>:<base64>`.
            pub fn encode(&self) -> String {
                self.to_string()
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write(f, self.version, &self.bytes)
            }
        }

        impl fmt::Debug for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                write(f, self.version, &self.bytes)
            }
        }

        impl FromStr for $name {
            type Err = CryptoError;

            fn from_str(text: &str) -> Result<Self, Self::Err> {
                Self::parse(text)
            }
        }
    };
}

versioned!(
    /// A ciphertext produced by the key ring. For AEAD keys the payload is
    /// `nonce (12) || ciphertext || tag (16)`; for RSA keys it is one OAEP block. The key name,
    /// version and algorithm are bound into the associated data, so the version in the text
    /// cannot be changed and the value cannot be decrypted under another key.
    Ciphertext
);

versioned!(
    /// A signature or HMAC tag produced by key version `version`: `maos:v<version>:<base64>`.
    Signature
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let ct = Ciphertext::new(12, vec![0, 1, 2, 250]);
        let text = ct.to_string();
        assert_eq!(text, "maos:v12:AAEC+g==");
        assert_eq!(Ciphertext::parse(&text).unwrap(), ct);
    }

    #[test]
    fn rejects_non_canonical_forms() {
        for bad in [
            "",
            "maos:v1",
            "maos:v1:",
            "maos:v0:AAAA",
            "maos:v01:AAAA",
            "maos:v+1:AAAA",
            "maos:v-1:AAAA",
            "maos:v4294967296:AAAA",
            "maos:v1:AAA",
            "maos:v1:AAE=x",
            "maos:v1:AB==",
            "maos:v1: AAAA",
            "vault:v1:AAAA",
            "MAOS:v1:AAAA",
        ] {
            assert!(Ciphertext::parse(bad).is_err(), "accepted {bad:?}");
        }
        assert_eq!(
            Ciphertext::parse("maos:v4294967295:AAAA")
                .unwrap()
                .version(),
            u32::MAX
        );
    }
}
