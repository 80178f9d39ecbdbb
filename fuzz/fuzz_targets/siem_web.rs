//! Web server logs: access lines (combined and common), nginx and Apache error lines, and the
//! events made from them. Never a panic; the decoder agrees with the parser it dispatches to.
#![no_main]

use libfuzzer_sys::fuzz_target;
use maos_core::Timestamp;
use maos_siem::ingest::{InputFormat, LineDecoder, access_event, error_event};
use maos_siem::parse::sshd::SshdMode;
use maos_siem::parse::syslog::TimeContext;
use maos_siem::parse::web::{parse_access, parse_apache_error, parse_nginx_error};

fuzz_target!(|data: &[u8]| {
    let Ok(line) = std::str::from_utf8(data) else {
        return;
    };
    let ctx = TimeContext::new(Timestamp::from_unix_seconds(1_767_225_600));

    if let Ok(record) = parse_access(line) {
        let _ = access_event(&record, "fuzz".to_owned());
    }
    if let Ok(record) = parse_nginx_error(line, &ctx) {
        let _ = error_event(&record, "nginx", "fuzz".to_owned());
    }
    if let Ok(record) = parse_apache_error(line, &ctx) {
        let _ = error_event(&record, "apache", "fuzz".to_owned());
    }

    for format in [
        InputFormat::Access,
        InputFormat::NginxError,
        InputFormat::ApacheError,
    ] {
        let mut decoder = LineDecoder::new(format, ctx, SshdMode::Normal);
        let decoded = decoder.decode(line);
        let parsed = match format {
            InputFormat::Access => parse_access(line.trim_end_matches(['\r', '\n'])).is_ok(),
            InputFormat::NginxError => {
                parse_nginx_error(line.trim_end_matches(['\r', '\n']), &ctx).is_ok()
            }
            _ => parse_apache_error(line.trim_end_matches(['\r', '\n']), &ctx).is_ok(),
        };
        if parsed {
            assert!(
                decoded.is_ok(),
                "the decoder refused a line its parser accepts"
            );
        }
    }
});
