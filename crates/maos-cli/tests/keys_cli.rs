//! `maos keys` and `maos secrets` against a real `maos serve` process on loopback, including a
//! server killed with SIGKILL in the middle of a re-encryption job.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Output, Stdio};

const TOKEN: &str = "maos_cli_test_admin_token_0123456789";

struct Served {
    child: Child,
    base: String,
}

impl Served {
    /// Starts `maos serve` on an ephemeral port and waits for its "listening on" line.
    fn start(data: &Path, chunk: u32) -> Served {
        let mut child = Command::new(env!("CARGO_BIN_EXE_maos"))
            .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
            .arg(data)
            .env("MAOS_ADMIN_TOKEN", TOKEN)
            .env("MAOS_LOG_LEVEL", "warn")
            .env("MAOS_SECRETS_REWRAP_CHUNK", chunk.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        let mut lines = BufReader::new(stdout).lines();
        let base = loop {
            let line = lines
                .next()
                .expect("maos serve printed its address")
                .unwrap();
            if let Some(url) = line.strip_prefix("maos serve: listening on ") {
                break url.to_owned();
            }
        };
        // Keep draining stdout so the server never blocks on a full pipe.
        std::thread::spawn(move || for _ in lines {});
        Served { child, base }
    }

    fn maos(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_maos"))
            .args(args)
            .env("MAOS_SERVER", &self.base)
            .env("MAOS_TOKEN", TOKEN)
            .output()
            .unwrap()
    }

    fn ok(&self, args: &[&str]) -> String {
        let output = self.maos(args);
        assert!(
            output.status.success(),
            "maos {args:?}: {}\n{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    }

    fn kill(mut self) {
        // SIGKILL: no graceful shutdown, no chance to finish a transaction.
        self.child.kill().unwrap();
        self.child.wait().unwrap();
    }
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[test]
fn keys_commands_encrypt_decrypt_and_rotate() {
    let dir = tempfile::tempdir().unwrap();
    let server = Served::start(&dir.path().join("data"), 100);

    let created = server.ok(&["keys", "create", "payments"]);
    assert!(created.contains("\"latest_version\": 1"), "{created}");
    let ciphertext = server.ok(&[
        "keys",
        "encrypt",
        "payments",
        "4111 1111",
        "--aad",
        "order=7",
    ]);
    let ciphertext = ciphertext.trim();
    assert!(ciphertext.starts_with("maos:v1:"), "{ciphertext}");
    let plaintext = server.ok(&[
        "keys", "decrypt", "payments", ciphertext, "--aad", "order=7",
    ]);
    assert_eq!(plaintext.trim(), "4111 1111");

    // Wrong associated data: refused by the server, exit 2 with its error code.
    let refused = server.maos(&[
        "keys", "decrypt", "payments", ciphertext, "--aad", "order=8",
    ]);
    assert_eq!(refused.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("decryption_failed"));

    let rotated = server.ok(&["keys", "rotate", "payments"]);
    assert!(rotated.contains("\"latest_version\": 2"), "{rotated}");
    let v2 = server.ok(&["keys", "encrypt", "payments", "x"]);
    assert!(v2.starts_with("maos:v2:"), "{v2}");
    let listed = server.ok(&["keys", "list"]);
    assert!(
        listed.contains("payments\taes256-gcm\tv2\tenabled"),
        "{listed}"
    );

    server.ok(&["keys", "create", "signer", "--type", "ed25519"]);
    let signature = server.ok(&["keys", "sign", "signer", "hello"]);
    assert_eq!(
        server
            .ok(&["keys", "verify", "signer", "hello", signature.trim()])
            .trim(),
        "valid"
    );
    let forged = server.maos(&["keys", "verify", "signer", "hullo", signature.trim()]);
    assert_eq!(forged.status.code(), Some(1));

    // Bad input on the command line: exit 2 before anything is sent.
    let bad = server.maos(&["keys", "encrypt", "payments", "***", "--base64"]);
    assert_eq!(bad.status.code(), Some(2));
    let no_token = Command::new(env!("CARGO_BIN_EXE_maos"))
        .args(["keys", "list", "--server", &server.base])
        .env_remove("MAOS_TOKEN")
        .output()
        .unwrap();
    assert_eq!(no_token.status.code(), Some(2), "401 is a refusal");
}

#[test]
fn rewrap_survives_a_killed_server() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let server = Served::start(&data, 1);
    let count = 120;
    for n in 0..count {
        server.ok(&[
            "secrets",
            "put",
            &format!("fleet/{n:03}"),
            &format!("value-{n}"),
        ]);
    }
    server.ok(&["keys", "rotate", "maos-secrets"]);
    // Killed while the job re-encrypts one secret per transaction.
    server.kill();

    let server = Served::start(&data, 7);
    let output = server.ok(&["secrets", "rewrap"]);
    assert!(
        output.contains(&format!("{count} of {count} secrets handled, 0 failed")),
        "{output}"
    );
    for n in [0, 60, count - 1] {
        let value = server.ok(&["secrets", "get", &format!("fleet/{n:03}"), "--json"]);
        assert!(
            value.contains(&format!("\"value\": \"value-{n}\"")),
            "{value}"
        );
        assert!(value.contains("\"key_version\": 2"), "{value}");
    }
}
