//! Secret byte buffers: zeroized on drop, redacted in `Debug`.

use std::fmt;
use std::sync::atomic::{Ordering, compiler_fence};

use zeroize::Zeroize;

/// Bytes that must not outlive their use or show up in logs: key material, decrypted
/// plaintext, derived keys. The buffer is overwritten with zeros when dropped and both `Debug`
/// and `Display` print `[redacted]`.
#[derive(Clone, Default, PartialEq, Eq)]
pub struct SecretBytes(Vec<u8>);

/// Overwrites `bytes` with zeros.
///
/// A plain `fill(0)` compiles to `memset`, which is an order of magnitude faster than the
/// byte-by-byte volatile writes of `zeroize` on large plaintexts (it dominated a 4 KiB
/// decryption). Handing the buffer to `black_box` afterwards, behind a compiler fence, makes the
/// zeros observable, so the optimiser cannot drop the store as dead.
fn wipe(bytes: &mut [u8]) {
    bytes.fill(0);
    std::hint::black_box(&mut *bytes);
    compiler_fence(Ordering::SeqCst);
}

impl Drop for SecretBytes {
    fn drop(&mut self) {
        // The spare capacity may hold bytes from an earlier, longer content (after `truncate`
        // those were wiped already); wipe the whole allocation anyway.
        let len = self.0.len();
        self.0.resize(self.0.capacity(), 0);
        wipe(&mut self.0);
        self.0.truncate(len);
    }
}

impl Zeroize for SecretBytes {
    fn zeroize(&mut self) {
        wipe(&mut self.0);
        self.0.clear();
    }
}

impl SecretBytes {
    /// Takes ownership of `bytes`; the caller's copy is the one that will be zeroized.
    pub fn new(bytes: Vec<u8>) -> Self {
        Self(bytes)
    }

    /// A zero-filled buffer of `len` bytes, to be filled in place.
    pub fn zeroed(len: usize) -> Self {
        Self(vec![0; len])
    }

    /// Copies `bytes` into a new secret buffer.
    pub fn copy_from(bytes: &[u8]) -> Self {
        Self(bytes.to_vec())
    }

    /// The secret bytes. Avoid copying them into buffers that are not zeroized.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }

    /// Mutable access to the bytes, for filling the buffer in place.
    pub fn expose_mut(&mut self) -> &mut [u8] {
        &mut self.0
    }

    /// Shortens the buffer (the cut-off part is zeroized first).
    pub fn truncate(&mut self, len: usize) {
        if let Some(tail) = self.0.get_mut(len..) {
            wipe(tail);
        }
        self.0.truncate(len);
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl fmt::Debug for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

impl fmt::Display for SecretBytes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("[redacted]")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debug_and_display_are_redacted() {
        let secret = SecretBytes::copy_from(b"hunter2");
        assert_eq!(format!("{secret:?}"), "[redacted]");
        assert_eq!(format!("{secret}"), "[redacted]");
        assert_eq!(secret.expose(), b"hunter2");
    }

    #[test]
    fn truncate_keeps_prefix() {
        let mut secret = SecretBytes::copy_from(b"abcdef");
        secret.truncate(3);
        assert_eq!(secret.expose(), b"abc");
        secret.truncate(10);
        assert_eq!(secret.len(), 3);
    }
}
