//! Sending one-time codes to customers. The development sink writes each message to a file
//! (owner-only); an SMTP notifier is the production one (see the issue notes: not built yet).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

/// Delivers a verification code to a customer's recorded e-mail address.
pub trait Notifier: Send + Sync {
    /// Sends `code` to `to`. The error names no value (no address, no code).
    fn send_code(&self, to: &str, code: &str) -> Result<(), &'static str>;
}

/// A development sink: appends each message, as a small RFC 5322 text, to a file.
pub struct FileNotifier {
    path: PathBuf,
    lock: Mutex<()>,
}

impl FileNotifier {
    /// Writes messages to `path` (created 0600).
    pub fn new(path: PathBuf) -> Self {
        Self {
            path,
            lock: Mutex::new(()),
        }
    }
}

/// The message a customer receives; the code is on a line of its own.
pub fn code_message(code: &str) -> String {
    format!(
        "Subject: Your verification code\n\nYour code to confirm your privacy request is:\n\n{code}\n\nIt works for 30 minutes. If you did not ask, ignore this message.\n"
    )
}

impl Notifier for FileNotifier {
    fn send_code(&self, to: &str, code: &str) -> Result<(), &'static str> {
        let _held = self.lock.lock().map_err(|_| "the mail sink is poisoned")?;
        let mut o = std::fs::OpenOptions::new();
        o.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        let mut f = o
            .open(&self.path)
            .map_err(|_| "the mail sink cannot be opened")?;
        let text = format!("To: {to}\n{}\n.\n", code_message(code));
        f.write_all(text.as_bytes())
            .map_err(|_| "the mail sink cannot be written")
    }
}
