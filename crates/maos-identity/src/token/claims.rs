//! JWT claims checks (RFC 7519) shared by MAOS access tokens and federated ID tokens.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Map, Value};

use crate::jose::{ObjectError, Segment, TokenError, parse_unique_object};

/// Time and audience rules for a token's claims.
#[derive(Debug, Clone)]
pub struct ClaimRules {
    pub issuer: String,
    pub audience: String,
    /// Clock skew tolerated on `exp`, `nbf` and `iat`.
    pub leeway: Duration,
    /// Refuse tokens whose `iat` is older than this, if set.
    pub max_age: Option<Duration>,
}

/// Registered claims after validation, with the rest kept as JSON.
#[derive(Debug, Clone, PartialEq)]
pub struct ValidatedClaims {
    pub iss: String,
    pub sub: Option<String>,
    pub aud: Vec<String>,
    pub exp: i64,
    pub nbf: Option<i64>,
    pub iat: Option<i64>,
    pub jti: Option<String>,
    pub all: Map<String, Value>,
}

impl ValidatedClaims {
    pub fn string(&self, name: &str) -> Option<&str> {
        self.all.get(name).and_then(Value::as_str)
    }
}

/// Seconds since the Unix epoch, negative before it.
pub fn unix_seconds(time: SystemTime) -> i64 {
    match time.duration_since(UNIX_EPOCH) {
        Ok(after) => i64::try_from(after.as_secs()).unwrap_or(i64::MAX),
        Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
    }
}

/// Parses and checks claims. `now` comes from the caller's clock.
pub fn validate_claims(
    payload: &[u8],
    rules: &ClaimRules,
    now: SystemTime,
) -> Result<ValidatedClaims, TokenError> {
    let all = parse_unique_object(payload).map_err(|e| match e {
        ObjectError::Syntax(reason) => TokenError::Json {
            segment: Segment::Payload,
            reason,
        },
        ObjectError::Duplicate(name) => TokenError::DuplicateMember {
            segment: Segment::Payload,
            name,
        },
    })?;

    // Types first: a date given as a string is refused even when a lenient parser would read it.
    let exp = numeric_date(&all, "exp")?.ok_or(TokenError::MissingClaim("exp"))?;
    let nbf = numeric_date(&all, "nbf")?;
    let iat = numeric_date(&all, "iat")?;

    let now = unix_seconds(now);
    let leeway = i64::try_from(rules.leeway.as_secs()).unwrap_or(i64::MAX);
    if now.saturating_sub(leeway) >= exp {
        return Err(TokenError::Expired);
    }
    if let Some(nbf) = nbf
        && now.saturating_add(leeway) < nbf
    {
        return Err(TokenError::NotYetValid);
    }
    if let Some(iat) = iat {
        if now.saturating_add(leeway) < iat {
            return Err(TokenError::IssuedInFuture);
        }
        if let Some(max_age) = rules.max_age {
            let max_age = i64::try_from(max_age.as_secs()).unwrap_or(i64::MAX);
            if now.saturating_sub(iat) > max_age.saturating_add(leeway) {
                return Err(TokenError::TooOld);
            }
        }
    }

    let iss = match all.get("iss") {
        None => return Err(TokenError::MissingClaim("iss")),
        Some(Value::String(iss)) => iss.clone(),
        Some(_) => return Err(TokenError::ClaimType("iss")),
    };
    if iss != rules.issuer {
        return Err(TokenError::WrongIssuer(iss));
    }

    let aud = match all.get("aud") {
        None => return Err(TokenError::MissingClaim("aud")),
        Some(Value::String(aud)) => vec![aud.clone()],
        Some(Value::Array(list)) => list
            .iter()
            .map(|v| {
                v.as_str()
                    .map(str::to_owned)
                    .ok_or(TokenError::ClaimType("aud"))
            })
            .collect::<Result<_, _>>()?,
        Some(_) => return Err(TokenError::ClaimType("aud")),
    };
    if !aud.contains(&rules.audience) {
        return Err(TokenError::WrongAudience(rules.audience.clone()));
    }

    let sub = optional_string_claim(&all, "sub")?;
    let jti = optional_string_claim(&all, "jti")?;
    Ok(ValidatedClaims {
        iss,
        sub,
        aud,
        exp,
        nbf,
        iat,
        jti,
        all,
    })
}

/// A NumericDate must be a JSON number; fractions are truncated toward the past.
fn numeric_date(all: &Map<String, Value>, name: &'static str) -> Result<Option<i64>, TokenError> {
    match all.get(name) {
        None => Ok(None),
        Some(Value::Number(number)) => {
            if let Some(whole) = number.as_i64() {
                return Ok(Some(whole));
            }
            match number.as_f64() {
                Some(f) if f.is_finite() && f.abs() < 1e15 => Ok(Some(f.floor() as i64)),
                _ => Err(TokenError::ClaimNotNumeric(name)),
            }
        }
        Some(_) => Err(TokenError::ClaimNotNumeric(name)),
    }
}

fn optional_string_claim(
    all: &Map<String, Value>,
    name: &'static str,
) -> Result<Option<String>, TokenError> {
    match all.get(name) {
        None => Ok(None),
        Some(Value::String(value)) => Ok(Some(value.clone())),
        Some(_) => Err(TokenError::ClaimType(name)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules() -> ClaimRules {
        ClaimRules {
            issuer: "https://maos.example".into(),
            audience: "maos".into(),
            leeway: Duration::from_secs(30),
            max_age: None,
        }
    }

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn time_claims_with_leeway() {
        let payload =
            br#"{"iss":"https://maos.example","aud":"maos","exp":1000,"nbf":500,"iat":500}"#;
        assert!(validate_claims(payload, &rules(), at(1020)).is_ok());
        assert_eq!(
            validate_claims(payload, &rules(), at(1030)),
            Err(TokenError::Expired)
        );
        assert!(validate_claims(payload, &rules(), at(471)).is_ok());
        assert_eq!(
            validate_claims(payload, &rules(), at(469)),
            Err(TokenError::NotYetValid)
        );
    }

    #[test]
    fn fractional_dates_are_numbers() {
        let payload = br#"{"iss":"https://maos.example","aud":["x","maos"],"exp":1000.5}"#;
        let claims = validate_claims(payload, &rules(), at(900)).unwrap();
        assert_eq!(claims.exp, 1000);
        assert_eq!(claims.aud, vec!["x".to_owned(), "maos".to_owned()]);
    }

    #[test]
    fn unix_seconds_before_epoch() {
        assert_eq!(unix_seconds(UNIX_EPOCH - Duration::from_secs(5)), -5);
    }
}
