//! `maos.toml` text: reading, locating errors, `MAOS_*` overrides and validation never panic,
//! and a configuration that loads writes back to TOML that loads.
#![no_main]

use libfuzzer_sys::fuzz_target;
use maos_server::config::Config;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let overrides = |name: &str| match name {
        "MAOS_SERVER_LISTEN" => Some("127.0.0.1:0".to_owned()),
        "MAOS_SERVER_MAX_BATCH" => Some(" 7 ".to_owned()),
        _ => None,
    };
    let _ = Config::from_toml("fuzz.toml", text, overrides);

    let Ok(config) = Config::from_toml("fuzz.toml", text, |_| None) else {
        return;
    };
    let written = match toml::to_string(&config) {
        Ok(written) => written,
        Err(e) => panic!("a loaded configuration does not write as TOML: {e}"),
    };
    if let Err(e) = Config::from_toml("written.toml", &written, |_| None) {
        panic!("a loaded configuration writes back to TOML that does not load: {e}\n{written}");
    }
});
