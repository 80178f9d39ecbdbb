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
