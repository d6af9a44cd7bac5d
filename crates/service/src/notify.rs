//! Sending one-time codes to customers: by SMTP to a relay on this host (lettre), or, in
//! development, to a file (owner-only).

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

/// Delivers messages to customers' e-mail addresses: verification codes, and notices of changes.
pub trait Notifier: Send + Sync {
    /// Sends a message of `subject` and plain-text `body` to `to`. The error names no value (no
    /// address, no code).
    fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), &'static str>;

    /// Sends a sign-in or request verification `code` to `to`.
    fn send_code(&self, to: &str, code: &str) -> Result<(), &'static str> {
        self.send(to, CODE_SUBJECT, &code_body(code))
    }

    /// Hands a complete (signed) message to the mail server, to the addresses in its `To`. A
    /// notifier that carries only short texts refuses whole messages.
    fn deliver(&self, message: &lettre::Message) -> Handoff {
        let _ = message;
        Handoff::Refused
    }

    /// Whether the mail server answers now: a campaign waits rather than claims messages it
    /// could not hand over.
    fn ready(&self) -> bool {
        true
    }
}

/// What became of handing one message to the mail server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Handoff {
    /// The server accepted it (a 2xx after DATA).
    Accepted,
    /// The server refused it with a reply (4xx or 5xx): it did not take it.
    Refused,
    /// No reply to go by (the connection broke, a timeout): it may or may not have taken it, so
    /// it is never handed over again.
    Uncertain,
}

const CODE_SUBJECT: &str = "Your verification code";

/// The body of a code message; the code is on a line of its own.
fn code_body(code: &str) -> String {
    format!(
        "Your code for the privacy portal or your privacy request is:\n\n{code}\n\nIt works for 30 minutes. If you did not ask, ignore this message.\n"
    )
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

impl FileNotifier {
    fn append(&self, text: &[u8]) -> Result<(), &'static str> {
        let _held = self.lock.lock().map_err(|_| "the mail sink is poisoned")?;
        let mut o = std::fs::OpenOptions::new();
        o.create(true).append(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut o, 0o600);
        let mut f = o
            .open(&self.path)
            .map_err(|_| "the mail sink cannot be opened")?;
        f.write_all(text)
            .map_err(|_| "the mail sink cannot be written")
    }
}

impl Notifier for FileNotifier {
    fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), &'static str> {
        self.append(format!("To: {to}\nSubject: {subject}\n\n{body}\n.\n").as_bytes())
    }

    fn deliver(&self, message: &lettre::Message) -> Handoff {
        let mut text = message.formatted();
        text.extend_from_slice(b"\r\n.\r\n");
        match self.append(&text) {
            Ok(()) => Handoff::Accepted,
            Err(_) => Handoff::Refused,
        }
    }
}

/// Sends codes by SMTP to a relay on this host (`127.0.0.1`, `::1` or `localhost`), which
/// carries them on over TLS. Plain SMTP leaves the host only through that relay: this build has
/// no TLS stack of its own.
pub struct SmtpNotifier {
    transport: lettre::SmtpTransport,
    from: lettre::message::Mailbox,
}

impl SmtpNotifier {
    /// A notifier for `smtp://HOST:PORT` sending as `from` (`Name <address>` or an address).
    pub fn new(url: &str, from: &str) -> Result<Self, &'static str> {
        let rest = url
            .strip_prefix("smtp://")
            .ok_or("the SMTP URL must start with smtp://")?;
        let (host, port) = match rest.trim_end_matches('/').rsplit_once(':') {
            Some((h, p)) => (
                h,
                p.parse::<u16>()
                    .map_err(|_| "the SMTP port is not a number")?,
            ),
            None => (rest.trim_end_matches('/'), 25),
        };
        let host = host.trim_start_matches('[').trim_end_matches(']');
        let local = host == "localhost"
            || host
                .parse::<std::net::IpAddr>()
                .is_ok_and(|ip| ip.is_loopback());
        if !local {
            return Err("the SMTP relay must be on this host (plain SMTP carries the codes)");
        }
        let from = from
            .parse()
            .map_err(|_| "the sender is not an e-mail address")?;
        // A few connections kept open: a campaign hands messages over from several threads.
        let transport = lettre::SmtpTransport::builder_dangerous(host)
            .port(port)
            .timeout(Some(std::time::Duration::from_secs(10)))
            .pool_config(lettre::transport::smtp::PoolConfig::new().max_size(SMTP_CONNECTIONS))
            .build();
        Ok(Self { transport, from })
    }
}

/// Connections to the relay kept open at most (one per sending thread). Many, because lettre
/// 0.11.23 leaves Nagle's algorithm on: it writes a message's body and its final `.` apart, so
/// each message waits out the relay's delayed ACK (40 ms on Linux) and one connection carries
/// about 22 messages a second (lettre/lettre#1159 fixes it upstream, not yet released).
pub const SMTP_CONNECTIONS: u32 = 32;

impl Notifier for SmtpNotifier {
    fn deliver(&self, message: &lettre::Message) -> Handoff {
        use lettre::Transport;
        match self.transport.send(message) {
            Ok(_) => Handoff::Accepted,
            // A reply refused it: the server did not take the message.
            Err(e) if e.is_transient() || e.is_permanent() => Handoff::Refused,
            Err(_) => Handoff::Uncertain,
        }
    }

    fn ready(&self) -> bool {
        self.transport.test_connection().unwrap_or(false)
    }

    fn send(&self, to: &str, subject: &str, body: &str) -> Result<(), &'static str> {
        use lettre::Transport;
        let to: lettre::message::Mailbox = to
            .parse()
            .map_err(|_| "the recipient is not an e-mail address")?;
        let message = lettre::Message::builder()
            .from(self.from.clone())
            .to(to)
            .subject(subject)
            .body(body.to_owned())
            .map_err(|_| "the message could not be built")?;
        self.transport
            .send(&message)
            .map(|_| ())
            .map_err(|_| "the SMTP relay did not accept the message")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_relay_on_this_host_is_accepted() {
        assert!(SmtpNotifier::new("smtp://127.0.0.1:2525", "privacy@example.com").is_ok());
        assert!(SmtpNotifier::new("smtp://localhost", "privacy@example.com").is_ok());
        assert!(SmtpNotifier::new("smtp://[::1]:25", "Privacy <privacy@example.com>").is_ok());
        assert!(SmtpNotifier::new("smtp://mail.example.com:25", "privacy@example.com").is_err());
        assert!(SmtpNotifier::new("http://127.0.0.1", "privacy@example.com").is_err());
        assert!(SmtpNotifier::new("smtp://127.0.0.1:x", "privacy@example.com").is_err());
        assert!(SmtpNotifier::new("smtp://127.0.0.1", "not an address").is_err());
    }
}
