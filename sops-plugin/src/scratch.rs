//! The private scratch directory a kustomize render decrypts into: 0700 directories, 0600
//! files, removed when the render ends, when the process is told to stop (SIGTERM, SIGINT,
//! SIGHUP: what Argo CD and a terminal send), and, after a SIGKILL that nothing can catch, by the
//! next render, which sweeps scratch directories of processes that no longer exist.

use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicBool, AtomicI32, AtomicU32, Ordering};

use crate::error::{Error, Result};

const PREFIX: &str = "sops-plugin-";

/// Scratch directories that exist now (removed by the signal handler too).
static LIVE: Mutex<Vec<PathBuf>> = Mutex::new(Vec::new());
/// Set once a stop signal arrived: no new file is written after it.
static STOPPING: AtomicBool = AtomicBool::new(false);
/// The signal that arrived (0: none).
static SIGNAL: AtomicI32 = AtomicI32::new(0);
/// The kustomize child, stopped with us.
static CHILD: AtomicU32 = AtomicU32::new(0);

fn io(path: &Path, e: std::io::Error) -> Error {
    Error::Unsupported(format!("{}: {e}", path.display()))
}

/// A private directory under `$TMPDIR`, removed on drop.
#[derive(Debug)]
pub struct Scratch {
    root: PathBuf,
}

impl Scratch {
    /// Creates `$TMPDIR/sops-plugin-<pid>-<random>` (0700) after sweeping leftovers of killed
    /// renders.
    pub fn new() -> Result<Self> {
        let tmp = std::env::temp_dir();
        sweep(&tmp);
        let mut rnd = [0u8; 8];
        rand::RngCore::fill_bytes(&mut rand::rng(), &mut rnd);
        let root = tmp.join(format!(
            "{PREFIX}{}-{}",
            std::process::id(),
            hex::encode(rnd)
        ));
        // Registered before it exists, so a signal in between cannot leave it behind.
        if let Ok(mut live) = LIVE.lock() {
            live.push(root.clone());
        }
        let s = Scratch { root };
        s.check_running()?;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(&s.root)
            .map_err(|e| io(&s.root, e))?;
        Ok(s)
    }

    /// The directory.
    pub fn path(&self) -> &Path {
        &self.root
    }

    fn check_running(&self) -> Result<()> {
        if STOPPING.load(Ordering::SeqCst) {
            return Err(Error::Unsupported("stopped by a signal".into()));
        }
        Ok(())
    }

    /// Creates one directory (0700); its parent must exist, so nothing is re-created once the
    /// scratch directory was removed.
    pub fn create_dir(&self, path: &Path) -> Result<()> {
        self.check_running()?;
        std::fs::DirBuilder::new()
            .mode(0o700)
            .create(path)
            .map_err(|e| io(path, e))
    }

    /// Creates a new file (0600) with `data`.
    pub fn write(&self, path: &Path, data: &[u8]) -> Result<()> {
        let mut f = self.create(path)?;
        f.write_all(data).map_err(|e| io(path, e))
    }

    /// Creates a new file (0600) for writing.
    pub fn create(&self, path: &Path) -> Result<std::fs::File> {
        self.check_running()?;
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(path)
            .map_err(|e| io(path, e))
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.root);
        if let Ok(mut live) = LIVE.lock() {
            live.retain(|p| p != &self.root);
        }
    }
}

/// When a stop signal arrived, the main thread leaves the exit to the signal thread (which
/// removes the scratch directories first and exits with 128 + the signal number): it waits here.
pub fn wait_if_stopping() {
    if SIGNAL.load(Ordering::SeqCst) != 0 {
        loop {
            std::thread::park();
        }
    }
}

/// Records the running kustomize process (0: none), so a stop signal stops it too.
pub fn set_child(pid: Option<u32>) {
    CHILD.store(pid.unwrap_or(0), Ordering::SeqCst);
}

/// Removes `sops-plugin-<pid>-*` directories whose process is gone (a render killed with
/// SIGKILL). Only on Linux, where `/proc` tells which processes exist.
fn sweep(tmp: &Path) {
    if !Path::new("/proc/self").exists() {
        return;
    }
    let Ok(entries) = std::fs::read_dir(tmp) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix(PREFIX))
            .and_then(|rest| rest.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        let is_dir = e.file_type().map(|t| t.is_dir()).unwrap_or(false);
        if is_dir && pid != std::process::id() && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Makes SIGTERM, SIGINT and SIGHUP stop the kustomize child, remove every scratch directory and
/// exit with 128 + the signal number. Called once by the binary.
pub fn remove_on_signals() -> Result<()> {
    use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};
    let mut signals = signal_hook::iterator::Signals::new([SIGTERM, SIGINT, SIGHUP])
        .map_err(|e| Error::Unsupported(format!("cannot install signal handlers: {e}")))?;
    std::thread::Builder::new()
        .name("scratch-cleanup".into())
        .spawn(move || {
            if let Some(sig) = signals.forever().next() {
                SIGNAL.store(sig, Ordering::SeqCst);
                STOPPING.store(true, Ordering::SeqCst);
                let child = CHILD.load(Ordering::SeqCst);
                if let Some(pid) = rustix::process::Pid::from_raw(child as i32) {
                    let _ = rustix::process::kill_process(pid, rustix::process::Signal::TERM);
                }
                // The main thread may be creating a file right now: retry until the tree is gone
                // (nothing is created once STOPPING is set and the root is missing).
                let roots: Vec<PathBuf> = LIVE.lock().map(|l| l.clone()).unwrap_or_default();
                for root in roots {
                    for _ in 0..50 {
                        let _ = std::fs::remove_dir_all(&root);
                        if !root.exists() {
                            break;
                        }
                        std::thread::sleep(std::time::Duration::from_millis(10));
                    }
                }
                std::process::exit(128 + sig);
            }
        })
        .map_err(|e| Error::Unsupported(format!("cannot start the signal thread: {e}")))?;
    Ok(())
}
