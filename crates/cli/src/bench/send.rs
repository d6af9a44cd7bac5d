//! `steward bench send`: a campaign sent by the real `steward serve` process (this binary, in
//! a child process) to an SMTP server on loopback, timed from `POST …/send` to `sent`, beside a
//! plain sender doing the same hand-over naively (the same number of messages, pre-written, no
//! database, no decision, no signature, as many connections), in alternating rounds; then
//! the one-click unsubscribe's latency as a mail provider would see it (sequential POSTs to the
//! links the messages carry). `scripts/bench-send` starts the SMTP server (aiosmtpd) and runs it.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use steward_domain::{ConsentAction, ConsentInput, ConsentSource, Role};
use steward_service::TokenOwner;

/// Options of `steward bench send`.
pub struct SendArgs {
    /// Consenting customers (each round sends to all).
    pub customers: usize,
    /// Rounds of each sender.
    pub rounds: usize,
    /// The SMTP server to hand messages to (`smtp://127.0.0.1:PORT`).
    pub smtp_url: String,
    /// Where that server keeps what it received (one file per message), for the links.
    pub smtp_dir: PathBuf,
}

/// One HTTP/1.1 request: status and body.
fn http(
    addr: SocketAddr,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<(&str, &str)>,
) -> anyhow::Result<(u16, String)> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(60)))?;
    let auth = token
        .map(|t| format!("Authorization: Bearer {t}\r\n"))
        .unwrap_or_default();
    let (ct, b) = body.unwrap_or(("application/json", ""));
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: bench\r\n{auth}Content-Type: {ct}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{b}",
        b.len()
    )?;
    let mut out = String::new();
    s.read_to_string(&mut out)?;
    let status = out
        .split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .context("no status")?;
    let body = out.split_once("\r\n\r\n").map(|(_, b)| b).unwrap_or("");
    Ok((status, body.to_owned()))
}

fn api(
    addr: SocketAddr,
    token: &str,
    method: &str,
    path: &str,
    body: Option<Value>,
) -> anyhow::Result<Value> {
    let text = body.map(|b| b.to_string());
    let (s, out) = http(
        addr,
        method,
        path,
        Some(token),
        text.as_deref().map(|t| ("application/json", t)),
    )?;
    if s >= 300 {
        bail!("{method} {path}: {s} {out}");
    }
    Ok(serde_json::from_str(&out)?)
}

/// Loads consenting customers into `dir` and returns a marketing token.
async fn load(dir: &Path, customers: usize) -> anyhow::Result<String> {
    let (vault, operator, _, _) = super::temp_vault(dir).await?;
    let bar = indicatif::ProgressBar::new(customers as u64);
    bar.set_message("consenting customers");
    let mut ids = Vec::new();
    for start in (0..customers).step_by(2_000) {
        let end = (start + 2_000).min(customers);
        let sealed = (start..end)
            .map(|n| {
                vault
                    .records()
                    .seal_new_customer(&super::generated(n), steward_domain::Timestamp::now())
            })
            .collect::<Result<Vec<_>, _>>()?;
        ids.extend(vault.records().insert_sealed(operator, sealed).await?);
        bar.set_position(end as u64);
    }
    let (_, support) = vault
        .identity()
        .create_token(operator, "bench", TokenOwner::Role(Role::SupportAgent))
        .await?;
    let support = vault
        .identity()
        .authenticate(&support)
        .await?
        .context("bench token")?;
    let grant = ConsentInput {
        purpose: "marketing_email".into(),
        action: ConsentAction::Grant,
        source: ConsentSource::InStore,
    };
    for id in ids {
        vault.record_consent(&support, id, &grant).await?;
    }
    bar.finish_and_clear();
    let (_, marketing) = vault
        .identity()
        .create_token(operator, "bench", TokenOwner::Role(Role::Marketing))
        .await?;
    vault.audit().flush().await?;
    Ok(marketing.to_string())
}

/// Starts `steward serve` on `dir`; its address.
fn serve(dir: &Path, smtp_url: &str) -> anyhow::Result<(super::Child, SocketAddr)> {
    let (child, addr, _) = super::serve_child(
        dir,
        &[
            "--smtp-url",
            smtp_url,
            "--mail-from",
            "Bench <news@bench.example>",
            "--public-url",
            "https://crm.bench.example",
            // Every round sends to everyone again: the cap would stop the second.
            "--marketing-cap",
            "1000/1d",
        ],
    )?;
    Ok((child, addr))
}

/// One campaign through the server: seconds from the send to `sent`, seconds until the send
/// was answered (the segment evaluated and the deliveries queued), and messages sent.
fn campaign(
    addr: SocketAddr,
    token: &str,
    segment: &str,
    round: usize,
) -> anyhow::Result<(f64, f64, u64)> {
    let c = api(
        addr,
        token,
        "POST",
        "/v1/campaigns",
        Some(json!({"segment_id": segment, "purpose": "marketing_email",
                    "subject": format!("Round {round}: news for {{{{first_name}}}}"),
                    "body": "Dear {{name}},\n\nour winter collection is in the shops now.\n"})),
    )?;
    let id = c["id"].as_str().context("campaign id")?.to_owned();
    let t = Instant::now();
    api(
        addr,
        token,
        "POST",
        &format!("/v1/campaigns/{id}/send"),
        None,
    )?;
    let started = t.elapsed().as_secs_f64();
    loop {
        let v = api(addr, token, "GET", &format!("/v1/campaigns/{id}"), None)?;
        if v["status"] == "sent" {
            let sent = v["counts"]["sent"].as_u64().unwrap_or(0);
            return Ok((t.elapsed().as_secs_f64(), started, sent));
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// The naive sender: `n` pre-written messages over as many pooled connections and threads as
/// Steward's sender uses.
fn plain(smtp_url: &str, n: usize) -> anyhow::Result<f64> {
    use lettre::Transport;
    let rest = smtp_url
        .strip_prefix("smtp://")
        .context("smtp://HOST:PORT")?;
    let (host, port) = rest.rsplit_once(':').context("smtp://HOST:PORT")?;
    let transport = lettre::SmtpTransport::builder_dangerous(host)
        .port(port.parse()?)
        .pool_config(
            lettre::transport::smtp::PoolConfig::new()
                .max_size(steward_service::notify::SMTP_CONNECTIONS),
        )
        .build();
    let messages = (0..n)
        .map(|k| {
            lettre::Message::builder()
                .from("Bench <news@bench.example>".parse()?)
                .to(format!("plain{k}@example.com").parse()?)
                .subject("News for you")
                .body("Dear customer,\n\nour winter collection is in the shops now.\n".to_owned())
                .map_err(anyhow::Error::from)
        })
        .collect::<anyhow::Result<Vec<_>>>()?;
    let t = Instant::now();
    std::thread::scope(|scope| {
        let handles: Vec<_> = messages
            .chunks(
                n.div_ceil(steward_service::notify::SMTP_CONNECTIONS as usize)
                    .max(1),
            )
            .map(|part| {
                let transport = &transport;
                scope.spawn(move || part.iter().filter(|m| transport.send(m).is_ok()).count())
            })
            .collect();
        let sent: usize = handles.into_iter().filter_map(|h| h.join().ok()).sum();
        if sent == n {
            Ok(t.elapsed().as_secs_f64())
        } else {
            Err(anyhow::anyhow!(
                "the plain sender handed over {sent} of {n}"
            ))
        }
    })
}

/// The unsubscribe links in the messages the SMTP server kept (paths, at most `n`).
fn links(dir: &Path, n: usize) -> anyhow::Result<Vec<String>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir)? {
        let text = std::fs::read_to_string(e?.path())?;
        if let Some(l) = text
            .lines()
            .find_map(|l| l.strip_prefix("List-Unsubscribe: <https://crm.bench.example"))
        {
            out.push(l.trim_end_matches('>').to_owned());
        }
        if out.len() == n {
            break;
        }
    }
    Ok(out)
}

fn percentile(sorted: &[f64], p: f64) -> f64 {
    sorted[((sorted.len() as f64 * p).ceil() as usize).clamp(1, sorted.len()) - 1]
}

/// Runs the benchmark.
pub async fn run(args: SendArgs) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    let token = load(dir.path(), args.customers).await?;
    let (server, addr) = serve(dir.path(), &args.smtp_url)?;
    let segment = api(
        addr,
        &token,
        "POST",
        "/v1/segments",
        Some(json!({"name": "Everyone", "rules": {"all": []}})),
    )?;
    let segment = segment["id"].as_str().context("segment id")?.to_owned();
    emit!(
        "| Campaign send, {} consenting customers, to aiosmtpd on loopback | messages/s | seconds | of which the send's answer (segment evaluated, deliveries queued) |",
        args.customers
    );
    emit!("|---|---|---|---|");
    for round in 0..args.rounds {
        let p = plain(&args.smtp_url, args.customers)?;
        emit!(
            "| plain sender (pre-written messages, no database, no DKIM), round {} | {:.0} | {p:.2} | – |",
            round + 1,
            args.customers as f64 / p
        );
        let (s, started, sent) = campaign(addr, &token, &segment, round)?;
        emit!(
            "| Steward (`steward serve`: consent, policy and cap per recipient, opened, rendered, DKIM-signed), round {} | {:.0} | {s:.2} | {started:.2} |",
            round + 1,
            sent as f64 / s
        );
    }
    // Unsubscribe: a mail provider's one-click POST, one after another.
    let paths = links(&args.smtp_dir, 200)?;
    let mut times = Vec::new();
    for p in &paths {
        let t = Instant::now();
        let (s, _) = http(
            addr,
            "POST",
            p,
            None,
            Some((
                "application/x-www-form-urlencoded",
                "List-Unsubscribe=One-Click",
            )),
        )?;
        times.push(t.elapsed().as_secs_f64() * 1000.0);
        if s != 200 {
            bail!("unsubscribe answered {s}");
        }
    }
    times.sort_by(f64::total_cmp);
    if !times.is_empty() {
        emit!("");
        emit!(
            "| One-click unsubscribe, {} sequential POSTs | p50 ms | p99 ms | max ms |",
            times.len()
        );
        emit!("|---|---|---|---|");
        emit!(
            "| withdrawal recorded with its signed receipt, 200 | {:.1} | {:.1} | {:.1} |",
            percentile(&times, 0.5),
            percentile(&times, 0.99),
            times[times.len() - 1]
        );
    }
    drop(server);
    Ok(())
}
