//! Mapping a verified client certificate to a principal.
//!
//! rustls in the server verifies the chain against the configured CA; this module only reads
//! the subject common name and the subject alternative names (DNS, URI such as
//! `spiffe://...`, e-mail) and applies configured rules, first match wins.

use serde::{Deserialize, Serialize};
use x509_parser::extensions::GeneralName;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::principal::{PrincipalId, PrincipalIdError};

/// Which part of the certificate a rule reads.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CertificateField {
    SubjectCn,
    SanDns,
    SanUri,
    SanEmail,
}

/// One mapping rule.
///
/// `pattern` is an exact value, or a prefix followed by a single trailing `*`. `principal` is
/// a principal id in which `{value}` stands for the whole field value and `{suffix}` for the
/// part matched by `*`; for example `spiffe://maos.example/agent/*` → `agent:{suffix}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CertificateRule {
    pub field: CertificateField,
    pub pattern: String,
    pub principal: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum CertificateError {
    #[error("the certificate is not valid DER X.509")]
    Unparsable,
    #[error("the certificate has a malformed or repeated subject alternative name extension")]
    BadSubjectAltName,
    #[error("no rule maps this certificate to a principal")]
    NoMatch,
    #[error("rule {rule} produced an invalid principal id: {source}")]
    BadPrincipal {
        rule: usize,
        source: PrincipalIdError,
    },
    #[error("rule {0} has `*` somewhere other than at the end of its pattern")]
    BadPattern(usize),
}

/// The outcome of a mapping, with the evidence for the audit record.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CertificateMatch {
    pub principal: PrincipalId,
    pub rule: usize,
    pub field: CertificateField,
    pub value: String,
}

#[derive(Debug, Clone, Default)]
pub struct CertificateMapper {
    rules: Vec<CertificateRule>,
}

impl CertificateMapper {
    pub fn new(rules: Vec<CertificateRule>) -> Result<Self, CertificateError> {
        for (index, rule) in rules.iter().enumerate() {
            let stars = rule.pattern.matches('*').count();
            if stars > 1 || (stars == 1 && !rule.pattern.ends_with('*')) {
                return Err(CertificateError::BadPattern(index));
            }
        }
        Ok(Self { rules })
    }

    /// Maps a DER certificate (the leaf the server's TLS stack verified).
    pub fn map_der(&self, der: &[u8]) -> Result<CertificateMatch, CertificateError> {
        let (rest, cert) =
            X509Certificate::from_der(der).map_err(|_| CertificateError::Unparsable)?;
        if !rest.is_empty() {
            return Err(CertificateError::Unparsable);
        }

        let mut values: Vec<(CertificateField, String)> = Vec::new();
        for cn in cert.subject().iter_common_name() {
            // A CN that is not a string type is skipped rather than guessed at.
            if let Ok(text) = cn.as_str() {
                values.push((CertificateField::SubjectCn, text.to_owned()));
            }
        }
        let san = cert
            .subject_alternative_name()
            .map_err(|_| CertificateError::BadSubjectAltName)?;
        if let Some(san) = san {
            for name in &san.value.general_names {
                match name {
                    GeneralName::DNSName(dns) => {
                        values.push((CertificateField::SanDns, (*dns).to_owned()))
                    }
                    GeneralName::URI(uri) => {
                        values.push((CertificateField::SanUri, (*uri).to_owned()))
                    }
                    GeneralName::RFC822Name(mail) => {
                        values.push((CertificateField::SanEmail, (*mail).to_owned()));
                    }
                    _ => {}
                }
            }
        }

        for (index, rule) in self.rules.iter().enumerate() {
            for (field, value) in values.iter().filter(|(field, _)| *field == rule.field) {
                let Some(suffix) = match_pattern(&rule.pattern, value) else {
                    continue;
                };
                let id = rule
                    .principal
                    .replace("{value}", value)
                    .replace("{suffix}", suffix);
                let principal =
                    id.parse::<PrincipalId>()
                        .map_err(|source| CertificateError::BadPrincipal {
                            rule: index,
                            source,
                        })?;
                return Ok(CertificateMatch {
                    principal,
                    rule: index,
                    field: *field,
                    value: value.clone(),
                });
            }
        }
        Err(CertificateError::NoMatch)
    }
}

/// Returns the part matched by a trailing `*` (empty for an exact match), or `None`. A
/// wildcard must match at least one character.
fn match_pattern<'v>(pattern: &str, value: &'v str) -> Option<&'v str> {
    match pattern.strip_suffix('*') {
        Some(prefix) => value.strip_prefix(prefix).filter(|rest| !rest.is_empty()),
        None => (pattern == value).then_some(""),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn patterns() {
        assert_eq!(
            match_pattern("spiffe://x/agent/*", "spiffe://x/agent/etl"),
            Some("etl")
        );
        assert_eq!(
            match_pattern("spiffe://x/agent/*", "spiffe://x/agent/"),
            None
        );
        assert_eq!(match_pattern("a.example", "a.example"), Some(""));
        assert_eq!(match_pattern("a.example", "b.example"), None);
    }

    #[test]
    fn bad_patterns_are_refused() {
        let rule = |pattern: &str| CertificateRule {
            field: CertificateField::SanDns,
            pattern: pattern.into(),
            principal: "agent:{suffix}".into(),
        };
        assert!(CertificateMapper::new(vec![rule("*.example")]).is_err());
        assert!(CertificateMapper::new(vec![rule("a*b*")]).is_err());
        assert!(CertificateMapper::new(vec![rule("svc-*")]).is_ok());
        assert_eq!(
            CertificateMapper::default().map_der(b"junk"),
            Err(CertificateError::Unparsable)
        );
    }
}
