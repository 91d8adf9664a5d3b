//! Shared helpers of the ExternalSecret integration tests: moto (the AWS Secrets Manager
//! emulator, launched by `test_kit::moto`) with an SDK client to seed it, and a canned-answer
//! HTTP stub.
#![allow(dead_code, clippy::unwrap_used)]

pub use test_kit::moto::Moto;

/// An AWS SDK client on `moto` (region us-east-1, dummy credentials) for seeding test data.
pub async fn sdk_client(moto: &Moto) -> aws_sdk_secretsmanager::Client {
    let conf = aws_config::defaults(aws_config::BehaviorVersion::latest())
        .region(aws_sdk_secretsmanager::config::Region::new("us-east-1"))
        .credentials_provider(aws_sdk_secretsmanager::config::Credentials::new(
            "test", "test", None, None, "test",
        ))
        .endpoint_url(&moto.endpoint)
        .load()
        .await;
    aws_sdk_secretsmanager::Client::new(&conf)
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
