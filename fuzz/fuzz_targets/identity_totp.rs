//! TOTP codes as typed by a user, under any configuration: never a panic, malformed codes are
//! refused before any comparison, and an accepted code is the one for its step.
#![no_main]

use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use maos_identity::totp::{TotpAlgorithm, TotpConfig, TotpError, TotpSecret, totp_at, verify_totp};

fuzz_target!(|data: &[u8]| {
    let [algorithm, digits, period, skew, t0, t1, t2, t3, code @ ..] = data else {
        return;
    };
    let Ok(code) = std::str::from_utf8(code) else {
        return;
    };
    let config = TotpConfig {
        algorithm: match algorithm % 3 {
            0 => TotpAlgorithm::Sha1,
            1 => TotpAlgorithm::Sha256,
            _ => TotpAlgorithm::Sha512,
        },
        digits: *digits,
        period: u64::from(*period),
        skew: u64::from(*skew % 4),
    };
    let secret = TotpSecret::from_bytes(b"12345678901234567890".to_vec());
    let unix = u64::from(u32::from_le_bytes([*t0, *t1, *t2, *t3]));
    let now = SystemTime::UNIX_EPOCH + Duration::from_secs(unix);

    match verify_totp(&secret, &config, code, now, None) {
        Ok(step) => {
            let at = step.saturating_mul(config.period);
            let expected = totp_at(&secret, &config, at);
            assert_eq!(
                expected.map(|c| c.expose().to_owned()).ok().as_deref(),
                Some(code)
            );
            assert!(matches!(
                verify_totp(&secret, &config, code, now, Some(step)),
                Err(TotpError::Replayed)
            ));
        }
        Err(TotpError::Malformed(_)) => {
            assert!(
                code.len() != usize::from(config.digits)
                    || !code.bytes().all(|b| b.is_ascii_digit())
            );
        }
        Err(_) => {}
    }
});
