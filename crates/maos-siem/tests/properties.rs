#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]
//! Property tests: no parser panics on any line, and parsed fields round-trip.

use std::net::IpAddr;

use maos_core::Timestamp;
use maos_siem::ingest::{InputFormat, LineDecoder};
use maos_siem::parse::cef::parse_cef;
use maos_siem::parse::host::parse_host_port;
use maos_siem::parse::sshd::{SshdMode, SshdParser};
use maos_siem::parse::syslog::{TimeContext, parse_rfc3164, parse_rfc5424, parse_syslog};
use maos_siem::parse::web::{parse_access, parse_apache_error, parse_nginx_error};
use proptest::prelude::*;

fn ctx() -> TimeContext {
    TimeContext::new(Timestamp::from_unix_seconds(1_800_000_000))
}

/// Lines that look like the real formats, so the fuzzing reaches past the first check.
fn line() -> impl Strategy<Value = String> {
    let prefixes = prop::sample::select(vec![
        "",
        "Jan  1 00:00:00 host sshd[1]: ",
        "Feb 29 23:59:59 sshd[2]: error: PAM: ",
        "<38>1 2019-07-08T17:40:16.954167-04:00 h sshd 1 - ",
        "2015-04-16T18:02:50.321974+00:00 host sshd-session[9]: ",
        "CEF:0|",
        "1.2.3.4 - - [20/Jan/2015:19:53:28 +0100] \"",
        "2012/04/09 11:53:29 [error] 1#0: *1 ",
        "[Thu Jul 11 01:21:41 2013] [error] [client ",
        "{\"type\":",
    ]);
    let words = prop::sample::select(vec![
        "Failed ",
        "password ",
        "for ",
        "invalid user ",
        "from ",
        "port ",
        "22 ",
        "ssh2",
        ": ",
        "[preauth]",
        "::ffff:1.2.3.4 ",
        "[2001:db8::1]:22 ",
        "Connection closed by ",
        "user ",
        "\"",
        "\\",
        "|",
        "=",
        "]",
        "[",
        " ",
        "Accepted ",
        "Disconnecting: ",
        "Received disconnect from ",
        "é",
        "\u{0}",
        "%",
        "1.2.3.4",
        "client: ",
    ]);
    (
        prefixes,
        prop::collection::vec(prop_oneof![words.prop_map(String::from), ".{0,8}"], 0..24),
    )
        .prop_map(|(p, parts)| format!("{p}{}", parts.concat()))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn no_parser_panics(l in line()) {
        let c = ctx();
        let _ = parse_syslog(&l, &c);
        let _ = parse_rfc5424(&l);
        let _ = parse_rfc3164(&l, &c);
        let _ = parse_cef(&l);
        let _ = parse_access(&l);
        let _ = parse_nginx_error(&l, &c);
        let _ = parse_apache_error(&l, &c);
        let _ = parse_host_port(&l);
        for mode in [SshdMode::Normal, SshdMode::Aggressive] {
            let mut p = SshdParser::new(mode, c);
            let _ = p.feed(&l);
            let _ = p.feed(&l);
        }
        let mut d = LineDecoder::new(InputFormat::Auto, c, SshdMode::Aggressive);
        let _ = d.decode(&l);
    }

    #[test]
    fn arbitrary_text_never_panics(l in "\\PC{0,200}") {
        let c = ctx();
        let _ = parse_syslog(&l, &c);
        let _ = parse_cef(&l);
        let _ = parse_access(&l);
        let mut p = SshdParser::new(SshdMode::Aggressive, c);
        let _ = p.feed(&l);
        let _ = Timestamp::parse_rfc3339(&l);
    }

    #[test]
    fn timestamps_round_trip(micros in -10_000_000_000_000_000i64..10_000_000_000_000_000i64) {
        let t = Timestamp::from_unix_micros(micros);
        prop_assert_eq!(Timestamp::parse_rfc3339(&t.to_string()).unwrap(), t);
    }

    #[test]
    fn addresses_round_trip(ip in any::<IpAddr>(), port in any::<u16>()) {
        let canonical = ip.to_canonical();
        let (host, p) = parse_host_port(&ip.to_string()).unwrap();
        prop_assert_eq!(host.ip(), Some(canonical));
        prop_assert_eq!(p, None);
        let with_port = match ip {
            IpAddr::V4(v4) => format!("{v4}:{port}"),
            IpAddr::V6(v6) => format!("[{v6}]:{port}"),
        };
        let (host, p) = parse_host_port(&with_port).unwrap();
        prop_assert_eq!(host.ip(), Some(canonical));
        prop_assert_eq!(p, Some(port));
    }

    #[test]
    fn sshd_failed_password_round_trips(
        user in "[a-zA-Z0-9_.-]{1,16}",
        ip in any::<IpAddr>(),
        port in 1u16..,
        invalid in any::<bool>(),
    ) {
        let inv = if invalid { "invalid user " } else { "" };
        let line = format!("Mar  7 18:53:20 bar sshd[1556]: Failed password for {inv}{user} from {ip} port {port} ssh2");
        let mut p = SshdParser::new(SshdMode::Normal, ctx());
        let e = p.feed(&line).expect("a failure");
        prop_assert!(e.failure);
        prop_assert_eq!(e.user.as_deref(), Some(user.as_str()));
        prop_assert_eq!(e.remote.ip(), Some(ip.to_canonical()));
        prop_assert_eq!(e.port, Some(port));
    }

    #[test]
    fn rfc5424_round_trips(
        host in "[a-z0-9][a-z0-9.-]{0,19}",
        app in "[a-z0-9_][a-z0-9_-]{0,11}",
        pid in 1u32..,
        value in "[ -~]{0,20}",
        msg in "[ -~]{0,40}",
    ) {
        let escaped = value.replace('\\', "\\\\").replace('"', "\\\"").replace(']', "\\]");
        let line = format!("<13>1 2024-01-02T03:04:05Z {host} {app} {pid} ID1 [ex@1 k=\"{escaped}\"] {msg}");
        let m = parse_rfc5424(&line).unwrap();
        prop_assert_eq!(m.hostname, Some(host.as_str()));
        prop_assert_eq!(m.app_name, Some(app.as_str()));
        let pid_text = pid.to_string();
        prop_assert_eq!(m.proc_id, Some(pid_text.as_str()));
        prop_assert_eq!(&m.structured_data["ex@1"]["k"], &value);
        prop_assert_eq!(m.message, msg.as_str());
    }

    #[test]
    fn cef_extensions_round_trip(
        name in "[ -~]{0,20}",
        value in "[a-zA-Z0-9 =\\\\.]{0,20}",
    ) {
        let header_name = name.replace('\\', "\\\\").replace('|', "\\|");
        let ext_value = value.replace('\\', "\\\\").replace('=', "\\=");
        let line = format!("CEF:0|V|P|1|42|{header_name}|5|act=block msg={ext_value}");
        let r = parse_cef(&line).unwrap();
        prop_assert_eq!(&r.name, &name);
        prop_assert_eq!(r.extensions.get("act").map(String::as_str), Some("block"));
        prop_assert_eq!(r.extensions.get("msg").map(String::as_str).unwrap_or(""), value.trim_end());
    }
}
