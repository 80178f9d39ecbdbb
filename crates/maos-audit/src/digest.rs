//! SHA-256 digests as they appear in records and checkpoints.

use std::fmt;

use aws_lc_rs::digest::{self, SHA256};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Length of a SHA-256 digest in bytes.
pub const DIGEST_LEN: usize = 32;

/// A SHA-256 digest. Written as 64 lowercase hexadecimal characters; parsing refuses any other
/// spelling, so one digest has exactly one text form and an edited export cannot hide behind an
/// equivalent spelling.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; DIGEST_LEN]);

/// A digest whose text form was not 64 lowercase hexadecimal characters.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("digest `{text}` is not 64 lowercase hexadecimal characters")]
pub struct DigestParseError {
    text: String,
}

impl Digest {
    /// All zero bytes: the previous-record hash of the genesis record and the previous-checkpoint
    /// hash of the first checkpoint.
    pub const ZERO: Digest = Digest([0; DIGEST_LEN]);

    pub const fn from_bytes(bytes: [u8; DIGEST_LEN]) -> Self {
        Digest(bytes)
    }

    pub const fn as_bytes(&self) -> &[u8; DIGEST_LEN] {
        &self.0
    }

    /// SHA-256 of `data`.
    pub fn of(data: &[u8]) -> Self {
        Self::from_aws(digest::digest(&SHA256, data))
    }

    /// SHA-256 over the concatenation of `parts`, without building the concatenation.
    pub fn of_parts(parts: &[&[u8]]) -> Self {
        let mut context = digest::Context::new(&SHA256);
        for part in parts {
            context.update(part);
        }
        Self::from_aws(context.finish())
    }

    fn from_aws(value: digest::Digest) -> Self {
        let mut bytes = [0u8; DIGEST_LEN];
        // SHA-256 always yields 32 bytes; copying through an iterator keeps this free of any
        // length assertion.
        for (out, byte) in bytes.iter_mut().zip(value.as_ref()) {
            *out = *byte;
        }
        Digest(bytes)
    }

    pub fn to_hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Parses the 64-character lowercase hexadecimal form.
    pub fn from_hex(text: &str) -> Result<Self, DigestParseError> {
        let error = || DigestParseError {
            text: text.chars().take(80).collect(),
        };
        let well_formed = text.len() == DIGEST_LEN * 2
            && text
                .bytes()
                .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b));
        if !well_formed {
            return Err(error());
        }
        let mut bytes = [0u8; DIGEST_LEN];
        hex::decode_to_slice(text, &mut bytes).map_err(|_| error())?;
        Ok(Digest(bytes))
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Digest({})", self.to_hex())
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.to_hex())
    }
}

impl Serialize for Digest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(&self.to_hex())
    }
}

impl<'de> Deserialize<'de> for Digest {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = <std::borrow::Cow<'de, str>>::deserialize(deserializer)?;
        Digest::from_hex(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sha256_of_empty_input_is_the_known_value() {
        assert_eq!(
            Digest::of(b"").to_hex(),
            "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
        );
    }

    #[test]
    fn parts_hash_like_their_concatenation() {
        assert_eq!(Digest::of_parts(&[b"ab", b"", b"c"]), Digest::of(b"abc"));
    }

    #[test]
    fn hex_round_trips_and_refuses_other_spellings() {
        let digest = Digest::of(b"x");
        assert_eq!(Digest::from_hex(&digest.to_hex()), Ok(digest));
        assert!(Digest::from_hex(&digest.to_hex().to_uppercase()).is_err());
        assert!(Digest::from_hex(&digest.to_hex()[..62]).is_err());
        assert!(Digest::from_hex("zz").is_err());
        assert!(Digest::from_hex(&format!("{}00", digest.to_hex())).is_err());
    }
}
