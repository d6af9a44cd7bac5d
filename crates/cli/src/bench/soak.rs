//! `steward bench soak`: a real `steward serve` (this binary, in a child process, on the demo data)
//! under a steady mixed load at a fraction of its measured capacity for minutes: reads, writes,
//! look-ups. Every window it records the requests, the error responses, p50/p99 latency and the
//! server's resident memory, and at the end says whether memory grew by under 10 %, whether any
//! response was an error, and whether p99 stayed stable.
//!
//! The load is open-loop: request k is due at `k / rate` seconds, whether or not earlier answers
//! came back, and its latency counts from when it was due, so a stall shows up as latency instead
//! of quietly lowering the rate (coordinated omission).

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;

/// Marks the part of the benchmarks file this command owns.
const BEGIN: &str = "<!-- steward bench soak: begin (generated; edit outside these markers) -->";
const END: &str = "<!-- steward bench soak: end -->";

/// Options of one soak run.
pub struct SoakArgs {
    /// Seconds under load (after the capacity measurement).
    pub seconds: u64,
    /// Fraction of the measured capacity to run at.
    pub fraction: f64,
    /// A fixed rate instead (requests per second).
    pub rate: Option<f64>,
    /// Concurrent connections.
    pub connections: usize,
    /// Seconds per reported window.
    pub window: u64,
}

/// Starts `steward serve --demo` in `dir`; returns it, its address and the support-agent token.
fn start_server(dir: &Path) -> anyhow::Result<(super::Child, SocketAddr, String)> {
    let token_line = |l: &str| l.starts_with("Support-agent token");
    let (child, addr, lines) = super::serve_child(
        dir,
        // A load test reads every customer many times an hour, as no person does.
        &["--demo", "--bulk-limit", "support_agent=none"],
    )?;
    let token = lines
        .iter()
        .filter(|l| token_line(l))
        .find_map(|l| l.split_once("): "))
        .map(|(_, t)| t.trim().to_owned());
    match token {
        Some(t) => Ok((child, addr, t)),
        None => bail!("steward serve did not print its tokens"),
    }
}

/// The server's resident memory in MiB (Linux `/proc`).
fn rss_mib(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmRSS:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

/// One request of the mix.
#[derive(Clone)]
struct Call {
    method: hyper::Method,
    path: String,
    body: Option<Bytes>,
}

/// The mix, in order: of every 20 requests, 14 read a customer, 3 record an interaction, 2 look
/// one up by e-mail, 1 lists a customer's interactions.
fn mix(ids: &[String], emails: &[String]) -> Vec<Call> {
    let get = |path: String| Call {
        method: hyper::Method::GET,
        path,
        body: None,
    };
    let post = |path: String, body: String| Call {
        method: hyper::Method::POST,
        path,
        body: Some(Bytes::from(body)),
    };
    let mut calls = Vec::new();
    for (n, id) in ids.iter().enumerate() {
        let slot = n % 20;
        calls.push(match slot {
            0..14 => get(format!("/v1/customers/{id}?purpose=service")),
            14..17 => post(
                format!("/v1/customers/{id}/interactions"),
                r#"{"channel":"phone","text":"Soak test call about an order","source":"soak"}"#
                    .into(),
            ),
            17..19 if !emails.is_empty() => post(
                "/v1/customers/lookup?purpose=service".into(),
                serde_json::json!({ "email": emails[n % emails.len()] }).to_string(),
            ),
            _ => get(format!("/v1/customers/{id}/interactions?purpose=service")),
        });
    }
    calls
}

/// One connection's sender.
async fn connect(
    addr: SocketAddr,
) -> anyhow::Result<hyper::client::conn::http1::SendRequest<Full<Bytes>>> {
    let stream = tokio::net::TcpStream::connect(addr).await?;
    stream.set_nodelay(true)?;
    let (sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream)).await?;
    tokio::spawn(conn);
    Ok(sender)
}

/// Sends `call`; whether the answer was a success.
async fn send(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    call: &Call,
    token: &str,
) -> anyhow::Result<bool> {
    let mut req = hyper::Request::builder()
        .method(call.method.clone())
        .uri(call.path.as_str())
        .header("host", "soak")
        .header("authorization", format!("Bearer {token}"));
    if call.body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let res = sender
        .send_request(req.body(Full::new(call.body.clone().unwrap_or_default()))?)
        .await?;
    let ok = res.status().is_success();
    res.into_body().collect().await?;
    Ok(ok)
}

/// Per window: latencies (µs) and error responses.
type Windows = Vec<(Vec<u32>, u64)>;

/// Runs the mix for `seconds`: closed-loop when `rate` is `None` (as fast as answers come),
/// else open-loop at `rate` requests per second across all connections.
async fn drive(
    addr: SocketAddr,
    token: Arc<str>,
    calls: Arc<Vec<Call>>,
    connections: usize,
    rate: Option<f64>,
    seconds: u64,
    window: u64,
) -> anyhow::Result<Windows> {
    let windows = (seconds.div_ceil(window.max(1))) as usize;
    let start = Instant::now() + Duration::from_millis(200);
    let end = start + Duration::from_secs(seconds);
    let mut tasks = Vec::new();
    for c in 0..connections {
        let (token, calls) = (token.clone(), calls.clone());
        tasks.push(tokio::spawn(async move {
            let mut sender = connect(addr).await?;
            let mut out: Windows = vec![(Vec::new(), 0); windows];
            let mut k = c;
            tokio::time::sleep_until(start.into()).await;
            loop {
                let due = match rate {
                    Some(r) => start + Duration::from_secs_f64(k as f64 / r),
                    None => Instant::now(),
                };
                if due >= end {
                    break;
                }
                tokio::time::sleep_until(due.into()).await;
                let ok = send(&mut sender, &calls[k % calls.len()], &token).await?;
                let w = ((due - start).as_secs() / window.max(1)) as usize;
                if let Some((lat, errors)) = out.get_mut(w) {
                    lat.push(due.elapsed().as_micros().min(u32::MAX as u128) as u32);
                    *errors += u64::from(!ok);
                }
                k += if rate.is_some() { connections } else { 1 };
            }
            anyhow::Ok(out)
        }));
    }
    let mut all: Windows = vec![(Vec::new(), 0); windows];
    for t in tasks {
        for (w, (lat, errors)) in t.await??.into_iter().enumerate() {
            all[w].0.extend(lat);
            all[w].1 += errors;
        }
    }
    for (lat, _) in &mut all {
        lat.sort_unstable();
    }
    Ok(all)
}

fn pct(sorted: &[u32], p: f64) -> f64 {
    let i = ((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1));
    sorted.get(i).copied().unwrap_or(0) as f64 / 1000.0
}

/// Fetches customer ids and e-mails to address the mix at.
async fn targets(addr: SocketAddr, token: &str) -> anyhow::Result<(Vec<String>, Vec<String>)> {
    let mut sender = connect(addr).await?;
    let req = hyper::Request::get("/v1/customers?purpose=service&limit=500")
        .header("host", "soak")
        .header("authorization", format!("Bearer {token}"))
        .body(Full::new(Bytes::new()))?;
    let res = sender.send_request(req).await?;
    anyhow::ensure!(
        res.status().is_success(),
        "listing customers: {}",
        res.status()
    );
    let body: serde_json::Value =
        serde_json::from_slice(&res.into_body().collect().await?.to_bytes())?;
    let items = body["items"].as_array().context("no items")?;
    let ids = items
        .iter()
        .filter_map(|c| c["id"].as_str().map(str::to_owned))
        .collect::<Vec<_>>();
    let emails = items
        .iter()
        .filter_map(|c| c["email"].as_str().filter(|e| !e.contains('•')))
        .map(str::to_owned)
        .collect();
    anyhow::ensure!(!ids.is_empty(), "the demo data has no customers");
    Ok((ids, emails))
}

/// Runs the soak; writes its table into `docs` unless it is `None`.
pub async fn run(args: SoakArgs, docs: Option<&Path>) -> anyhow::Result<()> {
    let dir = tempfile::tempdir()?;
    eprintln!("Starting steward serve --demo…");
    let (server, addr, token) = start_server(dir.path())?;
    let pid = server.0.id();
    let (ids, emails) = targets(addr, &token).await?;
    let calls = Arc::new(mix(&ids, &emails));
    let token: Arc<str> = token.into();

    let rate = match args.rate {
        Some(r) => r,
        None => {
            eprintln!(
                "Measuring capacity (20 s, closed loop, {} connections)…",
                args.connections
            );
            let w = drive(
                addr,
                token.clone(),
                calls.clone(),
                args.connections,
                None,
                20,
                20,
            )
            .await?;
            let capacity = w[0].0.len() as f64 / 20.0;
            eprintln!(
                "Capacity: {capacity:.0} req/s; soaking at {:.0} %.",
                args.fraction * 100.0
            );
            capacity * args.fraction
        }
    };

    // Sample memory at each window's end while the load runs.
    let sampler = tokio::spawn({
        let (window, windows) = (args.window, args.seconds.div_ceil(args.window));
        async move {
            let mut samples = Vec::new();
            let mut tick = tokio::time::interval(Duration::from_secs(window));
            tick.tick().await;
            samples.push(rss_mib(pid));
            for _ in 0..windows {
                tick.tick().await;
                samples.push(rss_mib(pid));
            }
            samples
        }
    });
    eprintln!(
        "Soaking at {rate:.0} req/s for {} s ({} connections)…",
        args.seconds, args.connections
    );
    let windows = drive(
        addr,
        token,
        calls,
        args.connections,
        Some(rate),
        args.seconds,
        args.window,
    )
    .await?;
    let rss = sampler.await?;
    drop(server);

    let mut lines = vec![
        format!("| minute | requests/s | errors | p50 | p99 | server RSS |"),
        "| --- | --- | --- | --- | --- | --- |".to_owned(),
    ];
    for (w, (lat, errors)) in windows.iter().enumerate() {
        lines.push(format!(
            "| {:.1} | {:.0} | {errors} | {:.2} ms | {:.2} ms | {:.1} MiB |",
            ((w as u64 + 1) * args.window) as f64 / 60.0,
            lat.len() as f64 / args.window as f64,
            pct(lat, 0.5),
            pct(lat, 0.99),
            rss.get(w + 1).copied().unwrap_or(0.0)
        ));
    }
    let errors: u64 = windows.iter().map(|w| w.1).sum();
    let requests: usize = windows.iter().map(|w| w.0.len()).sum();
    // Growth from the end of the first window (warmed up) to the end of the run.
    let (first, last) = (
        rss.get(1).copied().unwrap_or(0.0),
        rss.last().copied().unwrap_or(0.0),
    );
    let growth = if first > 0.0 {
        (last / first - 1.0) * 100.0
    } else {
        f64::NAN
    };
    let p99s: Vec<f64> = windows.iter().map(|w| pct(&w.0, 0.99)).collect();
    let (p99_min, p99_max) = p99s.iter().fold((f64::INFINITY, 0.0f64), |(lo, hi), &p| {
        (lo.min(p), hi.max(p))
    });
    let p99_last_vs_first =
        p99s.last().copied().unwrap_or(0.0) / p99s.first().copied().unwrap_or(1.0).max(1e-9);
    let verdict = |ok: bool| if ok { "yes" } else { "**no**" };
    let summary = [
        format!(
            "- rate: {rate:.0} requests/s target, {requests} requests in {} s",
            args.seconds
        ),
        format!("- error responses: {errors} ({})", verdict(errors == 0)),
        format!(
            "- server RSS: {first:.1} MiB after the first window, {last:.1} MiB at the end: {growth:+.1} % (under 10 %: {})",
            verdict(growth < 10.0)
        ),
        format!(
            "- p99 per window from {p99_min:.2} to {p99_max:.2} ms; last window / first window: {p99_last_vs_first:.2} (stable, within 2×: {})",
            verdict(p99_last_vs_first <= 2.0 && p99_max <= 2.0 * p99_min.max(1.0))
        ),
    ];
    for l in lines.iter().chain(&summary) {
        println!("{l}");
    }
    if let Some(path) = docs {
        let section = format!(
            "## Latest `steward bench soak`\n\nMachine: {}. Date: {}. `steward serve --demo` (SQLite) in its own process; per {} requests: 14 customer reads, 3 interactions recorded, 2 look-ups by e-mail, 1 interaction list; {} connections, open loop.\n\n{}\n\n{}\n",
            super::all::machine(),
            time::OffsetDateTime::now_utc().date(),
            20,
            args.connections,
            lines.join("\n"),
            summary.join("\n")
        );
        let text = std::fs::read_to_string(path).unwrap_or_default();
        std::fs::write(path, super::all::splice(&text, BEGIN, END, &section))
            .with_context(|| format!("writing {}", path.display()))?;
        eprintln!("Wrote the soak table into {}.", path.display());
    }
    anyhow::ensure!(errors == 0, "{errors} error responses during the soak");
    Ok(())
}
