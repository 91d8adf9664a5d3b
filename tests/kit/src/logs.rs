//! What the code under test logs, captured for the tests that check it (a secret value never
//! reaches the logs). One global subscriber per test binary, installed by the first test that
//! asks: a process has one global default, and other tests run on other threads at the same
//! time, so a thread-local one would miss callsites they reach first.
#![allow(clippy::unwrap_used)]

use std::sync::{Arc, Mutex, OnceLock};

/// Collects every log line written through it.
#[derive(Clone, Default)]
pub struct Captured(Arc<Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Captured {
    /// Everything logged (at every level) by every test of this binary since the capture began.
    pub fn text(&self) -> String {
        String::from_utf8(self.0.lock().unwrap().clone()).unwrap()
    }

    /// Panics when the canary was logged, raw or encoded; the message says where, not what.
    #[track_caller]
    pub fn assert_no_canary(&self) {
        canary::assert_absent("the logs", self.text());
    }
}

/// The binary's capture, installing it as the global subscriber on first use.
pub fn capture() -> Captured {
    static CAPTURED: OnceLock<Captured> = OnceLock::new();
    CAPTURED
        .get_or_init(|| {
            let captured = Captured::default();
            let sink = captured.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_max_level(tracing::Level::TRACE)
                .with_writer(move || sink.clone())
                .finish();
            tracing::subscriber::set_global_default(subscriber).unwrap();
            captured
        })
        .clone()
}
