//! The password step of a login, in the order that keeps its security properties: normalise
//! the name, refuse while locked, verify (against the dummy hash for unknown users), count the
//! outcome. The server supplies the lookup and handles MFA, status and sessions afterwards.

use std::net::IpAddr;

use crate::lockout::{Locked, LockoutTracker};
use crate::password::{PasswordHasher, normalize_user_name};
use crate::secret::SecretString;

/// Why the password step refused. Callers answer `InvalidCredentials` and `BadUserName` with
/// the same message, so that neither reveals whether the account exists.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PasswordLoginError {
    #[error("too many failed attempts")]
    Locked(Locked),
    #[error("invalid user name or password")]
    InvalidCredentials,
    #[error("invalid user name or password")]
    BadUserName,
}

/// A passed password step.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordLoginSuccess {
    /// The normalised user name the lookup was done with.
    pub user: String,
    /// Store a new hash of the password (parameters changed).
    pub needs_rehash: bool,
}

/// Runs the password step. `lookup` receives the normalised user name and returns the stored
/// PHC hash, or `None` for an unknown user (or one without a password).
pub fn check_password(
    hasher: &PasswordHasher,
    lockout: &mut LockoutTracker,
    user: &str,
    ip: IpAddr,
    password: &SecretString,
    lookup: impl FnOnce(&str) -> Option<String>,
) -> Result<PasswordLoginSuccess, PasswordLoginError> {
    let Ok(user) = normalize_user_name(user) else {
        // Still one Argon2 computation, so a malformed name costs what a wrong password does.
        let _ = hasher.verify_or_dummy(password, None);
        return Err(PasswordLoginError::BadUserName);
    };

    lockout
        .check(&user, ip)
        .map_err(PasswordLoginError::Locked)?;

    let stored = lookup(&user);
    let check = hasher.verify_or_dummy(password, stored.as_deref());
    if check.matched {
        lockout.record_success(&user);
        Ok(PasswordLoginSuccess {
            user,
            needs_rehash: check.needs_rehash,
        })
    } else {
        // A lock caused by this failure applies from the next attempt on.
        let _ = lockout.record_failure(&user, ip);
        Err(PasswordLoginError::InvalidCredentials)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::clock::ManualClock;
    use crate::lockout::LockoutPolicy;
    use crate::password::PasswordParams;
    use std::net::Ipv4Addr;
    use std::time::Duration;

    #[test]
    fn password_step_order() {
        let clock = ManualClock::at(1_800_000_000);
        let hasher = PasswordHasher::new(PasswordParams::default()).unwrap();
        let stored = hasher
            .hash(&SecretString::new("s3cret-passphrase"))
            .unwrap();
        let policy = LockoutPolicy {
            user_free_attempts: 1,
            ..LockoutPolicy::default()
        };
        let mut lockout = LockoutTracker::new(policy, clock.clone());
        let ip = IpAddr::V4(Ipv4Addr::new(203, 0, 113, 9));
        let lookup = |name: &str| (name == "alice").then(|| stored.clone());

        // The name is normalised before lookup.
        let ok = check_password(
            &hasher,
            &mut lockout,
            "ＡＬＩＣＥ",
            ip,
            &SecretString::new("s3cret-passphrase"),
            lookup,
        )
        .unwrap();
        assert_eq!(ok.user, "alice");
        assert!(!ok.needs_rehash);

        let wrong = SecretString::new("guess");
        let err = check_password(&hasher, &mut lockout, "mallory", ip, &wrong, lookup).unwrap_err();
        assert_eq!(err, PasswordLoginError::InvalidCredentials);
        assert_eq!(
            check_password(&hasher, &mut lockout, "alice", ip, &wrong, lookup).unwrap_err(),
            PasswordLoginError::InvalidCredentials
        );
        assert_eq!(
            check_password(&hasher, &mut lockout, "alice", ip, &wrong, lookup).unwrap_err(),
            PasswordLoginError::InvalidCredentials
        );

        // Locked now: even the right password is refused until the delay has passed.
        let right = SecretString::new("s3cret-passphrase");
        let err = check_password(&hasher, &mut lockout, "alice", ip, &right, lookup).unwrap_err();
        assert!(matches!(err, PasswordLoginError::Locked(_)));
        clock.advance(Duration::from_secs(1));
        assert!(check_password(&hasher, &mut lockout, "alice", ip, &right, lookup).is_ok());

        assert_eq!(
            check_password(&hasher, &mut lockout, "", ip, &right, lookup).unwrap_err(),
            PasswordLoginError::BadUserName
        );
    }
}
