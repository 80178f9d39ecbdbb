//! The identity core of MAOS Security.
//!
//! Principals (people and agents), passwords, lockout, TOTP, API keys, signed access tokens
//! with JWKS, refresh-token families, OIDC federation and client-certificate mapping. Pure
//! logic: no storage, no network; time comes through [`maos_core::Clock`].

pub mod apikey;
pub mod certificate;
pub mod clock;
pub mod federation;
pub mod jose;
pub mod lockout;
pub mod login;
pub mod password;
pub mod principal;
pub mod secret;
pub mod token;
pub mod totp;

pub use clock::ManualClock;
pub use jose::{Algorithm, TokenError};
pub use principal::{Principal, PrincipalAttributes, PrincipalId, PrincipalKind, PrincipalStatus};
pub use secret::{RandomError, SecretBytes, SecretString};

#[cfg(test)]
pub(crate) mod test_clock {
    pub use crate::clock::ManualClock;
}
