//! Presented API keys: the parser accepts exactly the issued format, and a key that parses is
//! checked against a stored record without a panic and never matches a record it was not
//! issued for.
#![no_main]

use std::sync::OnceLock;
use std::time::{Duration, SystemTime};

use libfuzzer_sys::fuzz_target;
use maos_identity::apikey::{
    API_KEY_LEN, API_KEY_PREFIX, ApiKeyRecord, ParsedApiKey, create_api_key,
};
use maos_identity::{Principal, PrincipalId};

fn issued() -> &'static (String, ApiKeyRecord) {
    static ISSUED: OnceLock<(String, ApiKeyRecord)> = OnceLock::new();
    ISSUED.get_or_init(|| {
        let id = PrincipalId::agent("fuzz").expect("a valid principal id");
        let principal = Principal::new(id).with_roles(["reader"]);
        let scopes = ["reader".to_owned()].into_iter().collect();
        let key = create_api_key(&principal, scopes, None, SystemTime::UNIX_EPOCH)
            .expect("a key is issued");
        (key.key.expose().to_owned(), key.record)
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let Ok(parsed) = ParsedApiKey::parse(text) else {
        return;
    };
    assert_eq!(text.len(), API_KEY_LEN);
    assert!(text.starts_with(API_KEY_PREFIX));
    assert!(
        text.contains(&format!("_{}_", parsed.id)),
        "the id is not the key's id part"
    );

    let (key, record) = issued();
    let verdict = record.verify(&parsed, SystemTime::UNIX_EPOCH + Duration::from_secs(60));
    assert_eq!(
        verdict.is_ok(),
        text == key,
        "a key verified against a foreign record"
    );
});
