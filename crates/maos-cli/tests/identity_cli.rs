//! `maos user|agent|apikey|login` run as processes against a real server on an ephemeral port.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::path::Path;
use std::process::{Command, Output};

const ADMIN: &str = "cli-test-admin-token";

fn maos(url: &str, config_home: &Path, env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_maos"));
    command
        .args(args)
        .env("MAOS_URL", url)
        .env("XDG_CONFIG_HOME", config_home)
        .env_remove("MAOS_TOKEN")
        .env_remove("MAOS_PASSWORD");
    for (key, value) in env {
        command.env(key, value);
    }
    command.output().unwrap()
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn people_agents_keys_and_login_from_the_command_line() {
    let dir = tempfile::tempdir().unwrap();
    let config_home = tempfile::tempdir().unwrap();
    let mut config = maos_server::Config::default();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.server.data_dir = dir.path().to_path_buf();
    let server = maos_server::start(config, Some(ADMIN.into()))
        .await
        .unwrap();
    let url = format!("http://{}", server.http_addr);
    let home = config_home.path().to_path_buf();
    let admin = [("MAOS_TOKEN", ADMIN)];

    let run = |env: Vec<(&'static str, String)>, args: Vec<&'static str>| {
        let url = url.clone();
        let home = home.clone();
        tokio::task::spawn_blocking(move || {
            let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (*k, v.as_str())).collect();
            maos(&url, &home, &env, &args)
        })
    };
    let admin_env = || {
        admin
            .iter()
            .map(|(k, v)| (*k, (*v).to_owned()))
            .collect::<Vec<_>>()
    };

    // Without a credential: a usage error, exit 2.
    let out = run(vec![], vec!["user", "list"]).await.unwrap();
    assert_eq!(out.status.code(), Some(2), "{}", text(&out.stderr));

    let mut env = admin_env();
    env.push(("MAOS_PASSWORD", "dave's long passphrase".to_owned()));
    let out = run(
        env,
        vec!["user", "add", "dave", "--password", "--role", "maos-admin"],
    )
    .await
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));

    let out = run(
        admin_env(),
        vec![
            "agent", "add", "etl", "--role", "maos-pep", "--owner", "dave",
        ],
    )
    .await
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("user:dave"),
        "the owner attribute: {}",
        text(&out.stdout)
    );

    let out = run(
        admin_env(),
        vec!["apikey", "create", "agent:etl", "--scope", "maos-pep"],
    )
    .await
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let key = text(&out.stdout).trim().to_owned();
    assert!(key.starts_with("maos_") && key.len() == 86, "{key}");

    // A scope the agent does not hold: the server refuses, exit 1.
    let out = run(
        admin_env(),
        vec!["apikey", "create", "agent:etl", "--scope", "maos-admin"],
    )
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("scope_not_held"),
        "{}",
        text(&out.stderr)
    );

    // A malformed key id is a usage error.
    let out = run(admin_env(), vec!["apikey", "revoke", "agent:etl", "nothex"])
        .await
        .unwrap();
    assert_eq!(out.status.code(), Some(2));

    // Log in; the token is kept with mode 0600 and used by later commands.
    let out = run(
        vec![("MAOS_PASSWORD", "dave's long passphrase".to_owned())],
        vec!["login", "--user", "dave"],
    )
    .await
    .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let token_file = home.join("maos").join("token");
    let token = std::fs::read_to_string(&token_file).unwrap();
    assert_eq!(token.split('.').count(), 3);
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&token_file).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let out = run(vec![], vec!["user", "list"]).await.unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let listed = text(&out.stdout);
    assert!(listed.contains("agent:etl\tactive\tmaos-pep"), "{listed}");
    assert!(listed.contains("user:dave\tactive\tmaos-admin"), "{listed}");

    let out = run(vec![], vec!["user", "disable", "agent:etl"])
        .await
        .unwrap();
    assert!(out.status.success(), "{}", text(&out.stderr));
    let out = run(vec![], vec!["user", "list"]).await.unwrap();
    assert!(text(&out.stdout).contains("agent:etl\tdisabled"));

    let out = run(
        vec![("MAOS_PASSWORD", "wrong".to_owned())],
        vec!["login", "--user", "dave"],
    )
    .await
    .unwrap();
    assert_eq!(out.status.code(), Some(1));
    assert!(text(&out.stderr).contains("invalid_credentials"));
    server.shutdown().await;
}

/// RFC 4648 base32 without padding, as `otpauth://` URIs carry the seed.
fn base32_decode(text: &str) -> Vec<u8> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";
    let mut out = Vec::new();
    let (mut buffer, mut bits) = (0u64, 0u32);
    for c in text.bytes() {
        let value = ALPHABET.iter().position(|a| *a == c).unwrap() as u64;
        buffer = (buffer << 5) | value;
        bits += 5;
        if bits >= 8 {
            bits -= 8;
            out.push((buffer >> bits) as u8);
        }
    }
    out
}

fn code_at(seed: &[u8], offset_seconds: u64) -> String {
    use maos_identity::totp::{TotpConfig, TotpSecret, totp_at};
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    let secret = TotpSecret::from_bytes(seed.to_vec());
    totp_at(&secret, &TotpConfig::default(), now + offset_seconds)
        .unwrap()
        .expose()
        .to_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn mfa_enroll_then_login_with_a_code() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;

    let dir = tempfile::tempdir().unwrap();
    let config_home = tempfile::tempdir().unwrap();
    let mut config = maos_server::Config::default();
    config.server.listen = "127.0.0.1:0".parse().unwrap();
    config.server.data_dir = dir.path().to_path_buf();
    let server = maos_server::start(config, Some(ADMIN.into()))
        .await
        .unwrap();
    let url = format!("http://{}", server.http_addr);
    let home = config_home.path().to_path_buf();

    let (url2, home2) = (url.clone(), home.clone());
    let added = tokio::task::spawn_blocking(move || {
        maos(
            &url2,
            &home2,
            &[
                ("MAOS_TOKEN", ADMIN),
                ("MAOS_PASSWORD", "erin's passphrase"),
            ],
            &["user", "add", "erin", "--password"],
        )
    })
    .await
    .unwrap();
    assert!(added.status.success(), "{}", text(&added.stderr));

    // `maos mfa enroll` prints the URI, reads the first code from stdin, prints recovery codes.
    let (url2, home2) = (url.clone(), home.clone());
    let (seed, recovery) = tokio::task::spawn_blocking(move || {
        let mut child = Command::new(env!("CARGO_BIN_EXE_maos"))
            .args(["mfa", "enroll", "user:erin"])
            .env("MAOS_URL", &url2)
            .env("MAOS_TOKEN", ADMIN)
            .env("XDG_CONFIG_HOME", &home2)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        let mut uri = String::new();
        stdout.read_line(&mut uri).unwrap();
        assert!(uri.starts_with("otpauth://totp/"), "{uri}");
        let secret = uri
            .split(['?', '&'])
            .find_map(|part| part.strip_prefix("secret="))
            .unwrap()
            .trim()
            .to_owned();
        let seed = base32_decode(&secret);
        let mut stdin = child.stdin.take().unwrap();
        writeln!(stdin, "{}", code_at(&seed, 0)).unwrap();
        drop(stdin);
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut stdout, &mut rest).unwrap();
        let status = child.wait().unwrap();
        assert!(status.success());
        (seed, rest.lines().count())
    })
    .await
    .unwrap();
    assert_eq!(recovery, 10);

    // Without a code the login is refused; with the next step's code it succeeds.
    let (url2, home2) = (url.clone(), home.clone());
    let refused = tokio::task::spawn_blocking(move || {
        maos(
            &url2,
            &home2,
            &[("MAOS_PASSWORD", "erin's passphrase")],
            &["login", "--user", "erin"],
        )
    })
    .await
    .unwrap();
    assert_eq!(refused.status.code(), Some(1));
    assert!(
        text(&refused.stderr).contains("mfa_required"),
        "{}",
        text(&refused.stderr)
    );

    let code = code_at(&seed, 30);
    let logged_in = tokio::task::spawn_blocking(move || {
        maos(
            &url,
            &home,
            &[("MAOS_PASSWORD", "erin's passphrase")],
            &["login", "--user", "erin", "--totp", &code],
        )
    })
    .await
    .unwrap();
    assert!(logged_in.status.success(), "{}", text(&logged_in.stderr));
    let token = std::fs::read_to_string(config_home.path().join("maos").join("token")).unwrap();
    assert_eq!(token.split('.').count(), 3);
    server.shutdown().await;
}
