//! Shared helpers of the ExternalSecret integration tests: the moto server (AWS Secrets
//! Manager emulator) started on a free loopback port and killed on drop.
#![allow(dead_code, clippy::unwrap_used)]

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub struct Moto {
    child: Child,
    pub endpoint: String,
}

impl Drop for Moto {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn moto_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("MOTO_SERVER_BIN") {
        return PathBuf::from(p);
    }
    let home = std::env::var_os("PEERS_HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").unwrap_or_default())
                .join(".cache/gitops-secrets/peers")
        });
    home.join("venv/bin/moto_server")
}

impl Moto {
    /// Starts moto on 127.0.0.1 with a port it picks; panics with the install hint if missing.
    pub fn start() -> Moto {
        let bin = moto_bin();
        assert!(
            bin.exists(),
            "moto_server not found at {} (set MOTO_SERVER_BIN): run scripts/install-peers.sh",
            bin.display()
        );
        let mut child = Command::new(&bin)
            .args(["-H", "127.0.0.1", "-p", "0"])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn moto_server");
        let (tx, rx) = std::sync::mpsc::channel();
        for stream in [
            Box::new(child.stdout.take().unwrap()) as Box<dyn std::io::Read + Send>,
            Box::new(child.stderr.take().unwrap()),
        ] {
            let tx = tx.clone();
            std::thread::spawn(move || {
                for line in BufReader::new(stream).lines().map_while(Result::ok) {
                    if let Some(rest) = line.split("http://127.0.0.1:").nth(1) {
                        let port: String =
                            rest.chars().take_while(|c| c.is_ascii_digit()).collect();
                        let _ = tx.send(port);
                    }
                }
            });
        }
        let port = rx
            .recv_timeout(Duration::from_secs(30))
            .expect("moto_server did not print its port");
        let endpoint = format!("http://127.0.0.1:{port}");
        let moto = Moto { child, endpoint };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", port.parse::<u16>().unwrap())).is_err() {
            assert!(Instant::now() < deadline, "moto_server did not answer");
            std::thread::sleep(Duration::from_millis(50));
        }
        moto
    }

    /// An SDK client for seeding test data.
    pub async fn client(&self) -> aws_sdk_secretsmanager::Client {
        let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
            .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
            .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
                "test", "test", None, None, "test",
            ))
            .endpoint_url(&self.endpoint)
            .load()
            .await;
        aws_sdk_secretsmanager::Client::new(&conf)
    }
}

/// A tiny HTTP server answering every request with one canned response; counts requests.
pub struct Stub {
    pub endpoint: String,
    pub hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    _task: tokio::task::JoinHandle<()>,
}

impl Stub {
    pub async fn start(status: u16, body: &'static str) -> Stub {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let endpoint = format!("http://{}", listener.local_addr().unwrap());
        let hits = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counter = hits.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((mut sock, _)) = listener.accept().await else {
                    return;
                };
                let counter = counter.clone();
                tokio::spawn(async move {
                    let mut buf = vec![0u8; 65536];
                    let mut got = Vec::new();
                    // Read headers and the body announced by Content-Length.
                    loop {
                        let Ok(n) = sock.read(&mut buf).await else {
                            return;
                        };
                        if n == 0 {
                            return;
                        }
                        got.extend_from_slice(&buf[..n]);
                        let text = String::from_utf8_lossy(&got).to_string();
                        if let Some(end) = text.find("\r\n\r\n") {
                            let len = text
                                .lines()
                                .find_map(|l| {
                                    let l = l.to_ascii_lowercase();
                                    l.strip_prefix("content-length:")
                                        .map(|v| v.trim().parse::<usize>().unwrap_or(0))
                                })
                                .unwrap_or(0);
                            if got.len() >= end + 4 + len {
                                counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                                let resp = format!(
                                    "HTTP/1.1 {status} X\r\ncontent-type: application/x-amz-json-1.1\r\ncontent-length: {}\r\n\r\n{body}",
                                    body.len()
                                );
                                let _ = sock.write_all(resp.as_bytes()).await;
                                got.clear();
                            }
                        }
                    }
                });
            }
        });
        Stub {
            endpoint,
            hits,
            _task: task,
        }
    }
}
