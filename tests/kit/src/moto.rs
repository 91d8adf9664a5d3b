//! moto's server (an AWS API emulator from PyPI, installed by scripts/install-peers.sh) on a
//! free loopback port, stopped on drop, with plain-HTTP calls to seed Secrets Manager.

use std::io::{BufRead as _, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `$MOTO_SERVER_BIN`, else the peers venv of scripts/install-peers.sh.
pub fn moto_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("MOTO_SERVER_BIN") {
        return PathBuf::from(p);
    }
    std::env::var_os("PEERS_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/gitops-secrets/peers")
        })
        .join("venv/bin/moto_server")
}

impl Moto {
    /// Starts moto on a port it picks; panics with the install hint when it is missing.
    pub fn start() -> Moto {
        let bin = moto_bin();
        let mut child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| {
                panic!(
                    "{}: {e} (set MOTO_SERVER_BIN or run scripts/install-peers.sh)",
                    bin.display()
                )
            });
        let (tx, rx) = std::sync::mpsc::channel();
        // It announces its port on one of its outputs; both are drained for its whole life.
        let outputs: [Option<Box<dyn std::io::Read + Send>>; 2] = [
            child.stdout.take().map(|s| Box::new(s) as _),
            child.stderr.take().map(|s| Box::new(s) as _),
        ];
        for output in outputs.into_iter().flatten() {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(output).lines().map_while(Result::ok) {
                    if let Some(rest) = line.split("http://127.0.0.1:").nth(1) {
                        let port: String =
                            rest.chars().take_while(|c| c.is_ascii_digit()).collect();
                        let _ = tx.send(port);
                    }
                }
            });
        }
        let port: u16 = rx
            .recv_timeout(Duration::from_secs(30))
            .ok()
            .and_then(|p| p.parse().ok())
            .unwrap_or_else(|| panic!("moto_server did not print its port"));
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not answer");
            std::thread::sleep(Duration::from_millis(50));
        }
        Moto {
            child,
            endpoint: format!("http://127.0.0.1:{port}"),
        }
    }

    /// Kills the server: every later call is refused, as in an outage.
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// One Secrets Manager call (JSON protocol); panics unless it succeeds.
    pub async fn call(&self, action: &str, body: serde_json::Value) -> serde_json::Value {
        let response = reqwest::Client::new()
            .post(&self.endpoint)
            .header("X-Amz-Target", format!("secretsmanager.{action}"))
            .header("Content-Type", "application/x-amz-json-1.1")
            // moto reads the region from the credential scope; it checks no signature.
            .header(
                "Authorization",
                "AWS4-HMAC-SHA256 Credential=test/20260101/us-east-1/secretsmanager/aws4_request, SignedHeaders=host, Signature=0",
            )
            .body(body.to_string())
            .send()
            .await
            .unwrap_or_else(|e| panic!("moto {action}: {e}"));
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        assert!(status.is_success(), "moto {action}: {status} {text}");
        serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
    }

    pub async fn create_secret(&self, name: &str, value: &str) {
        self.call(
            "CreateSecret",
            serde_json::json!({ "Name": name, "SecretString": value }),
        )
        .await;
    }

    pub async fn put_secret_value(&self, name: &str, value: &str) {
        self.call(
            "PutSecretValue",
            serde_json::json!({ "SecretId": name, "SecretString": value }),
        )
        .await;
    }
}
