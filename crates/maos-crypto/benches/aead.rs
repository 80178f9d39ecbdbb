//! AES-256-GCM on 4 KiB messages: through the key ring versus aws-lc-rs used directly.
//!
//! The raw baseline does what any correct caller must: a fresh random nonce per message, a new
//! output buffer, seal in place. The key ring adds the key lookup, the usage and lifecycle
//! checks, the associated-data binding and the versioned ciphertext. `*_text` also encodes or
//! parses the `maos:v<version>:<base64>` form, which the HTTP API needs.
//!
//! Run: `cargo bench -p maos-crypto --bench aead`

use std::hint::black_box;
use std::sync::Arc;

use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use maos_core::SystemClock;
use maos_crypto::{Ciphertext, CreateKeyOptions, FileKek, KekMechanism, KeyRing};

const SIZE: usize = 4096;

fn raw_seal(key: &LessSafeKey, plaintext: &[u8]) -> Vec<u8> {
    let mut nonce = [0u8; NONCE_LEN];
    aws_lc_rs::rand::fill(&mut nonce).unwrap_or_default();
    let mut out = Vec::with_capacity(NONCE_LEN + plaintext.len() + 16);
    out.extend_from_slice(&nonce);
    out.extend_from_slice(plaintext);
    let nonce = Nonce::assume_unique_for_key(nonce);
    if let Some(in_out) = out.get_mut(NONCE_LEN..)
        && let Ok(tag) = key.seal_in_place_separate_tag(nonce, Aad::from(b"aad"), in_out)
    {
        out.extend_from_slice(tag.as_ref());
    }
    out
}

fn raw_open(key: &LessSafeKey, sealed: &[u8]) -> usize {
    let (nonce, body) = sealed.split_at(NONCE_LEN);
    let Ok(nonce) = Nonce::try_assume_unique_for_key(nonce) else {
        return 0;
    };
    let mut buffer = body.to_vec();
    key.open_in_place(nonce, Aad::from(b"aad"), &mut buffer)
        .map(|p| p.len())
        .unwrap_or(0)
}

fn aes_gcm_4k(c: &mut Criterion) {
    let plaintext = vec![0x5au8; SIZE];

    let mut raw_key_bytes = [0u8; 32];
    aws_lc_rs::rand::fill(&mut raw_key_bytes).unwrap_or_default();
    let Ok(unbound) = UnboundKey::new(&AES_256_GCM, &raw_key_bytes) else {
        return;
    };
    let raw_key = LessSafeKey::new(unbound);

    let Ok(dir) = tempfile::tempdir() else { return };
    let Ok(kek) = FileKek::open_or_create(dir.path().join("kek"), KekMechanism::AesGcm) else {
        return;
    };
    let ring = KeyRing::new(Arc::new(kek), Arc::new(SystemClock));
    if ring.create("bench", CreateKeyOptions::default()).is_err() {
        return;
    }

    let mut group = c.benchmark_group("aes256gcm_4k");
    group.throughput(Throughput::Bytes(SIZE as u64));

    group.bench_function("encrypt/raw_aws_lc_rs", |b| {
        b.iter(|| raw_seal(&raw_key, black_box(&plaintext)))
    });
    group.bench_function("encrypt/key_ring", |b| {
        b.iter(|| {
            ring.encrypt("bench", black_box(&plaintext), b"aad")
                .map(Ciphertext::into_bytes)
        })
    });
    group.bench_function("encrypt/key_ring_text", |b| {
        b.iter(|| {
            ring.encrypt("bench", black_box(&plaintext), b"aad")
                .map(|ct| ct.to_string())
        })
    });

    let sealed = raw_seal(&raw_key, &plaintext);
    group.bench_function("decrypt/raw_aws_lc_rs", |b| {
        b.iter(|| raw_open(&raw_key, black_box(&sealed)))
    });

    let Ok(ciphertext) = ring.encrypt("bench", &plaintext, b"aad") else {
        return;
    };
    let text = ciphertext.to_string();
    group.bench_function("decrypt/key_ring", |b| {
        b.iter(|| {
            ring.decrypt("bench", black_box(&ciphertext), b"aad")
                .map(|p| p.len())
        })
    });
    group.bench_function("decrypt/key_ring_text", |b| {
        b.iter(|| {
            Ciphertext::parse(black_box(&text))
                .and_then(|ct| ring.decrypt("bench", &ct, b"aad"))
                .map(|p| p.len())
        })
    });
    group.finish();
}

criterion_group!(benches, aes_gcm_4k);
criterion_main!(benches);
