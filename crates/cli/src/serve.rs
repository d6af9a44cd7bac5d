//! `steward serve`.

use std::net::SocketAddr;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use steward_domain::Role;
use steward_service::TokenOwner;

use crate::{StoreArgs, open};

/// Options of `steward serve`.
#[derive(Args)]
pub struct ServeArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080", env = "STEWARD_LISTEN")]
    listen: SocketAddr,
    /// Serve HTTPS with this certificate chain (PEM), for a shop without a reverse proxy that
    /// terminates TLS; with --tls-key.
    #[arg(long, env = "STEWARD_TLS_CERT", requires = "tls_key")]
    tls_cert: Option<std::path::PathBuf>,
    /// The private key of --tls-cert (PEM: PKCS#8, PKCS#1 or SEC1). Readable by Steward only.
    #[arg(long, env = "STEWARD_TLS_KEY", requires = "tls_cert")]
    tls_key: Option<std::path::PathBuf>,
    /// Load the fictional demo data set (if the database is empty) and print a one-time admin token.
    #[arg(long)]
    demo: bool,
    /// Number of demo customers.
    #[arg(long, default_value_t = 1200, requires = "demo")]
    demo_customers: usize,
    /// Distinct customers a role may read per hour before it is refused and the DPO alerted,
    /// as ROLE=N or ROLE=none (repeatable). Default: sales_associate=200, store_manager=300,
    /// support_agent, marketing and dpo 500; only ROLE=none lifts a limit.
    #[arg(long = "bulk-limit", value_name = "ROLE=N")]
    bulk_limits: Vec<String>,
    /// Also serve `/metrics` without a token on this address (bind it where only the monitoring
    /// system reaches it). On the main address `/metrics` needs a `monitoring` (or admin) token.
    #[arg(long, env = "STEWARD_METRICS_LISTEN")]
    metrics_listen: Option<SocketAddr>,
    /// Log as JSON lines instead of text.
    #[arg(long)]
    log_json: bool,
    /// Days a data-subject request has until its deadline.
    #[arg(long, default_value_t = steward_service::rights::DEFAULT_DEADLINE_DAYS, env = "STEWARD_REQUEST_DEADLINE_DAYS",
          value_parser = clap::value_parser!(i64).range(1..=366))]
    request_deadline_days: i64,
    /// How long a staff sign-in session (`POST /v1/sessions`) lasts, in minutes.
    #[arg(long, default_value_t = 720)]
    session_minutes: i64,
    /// Development mail sink: one-time codes for data-subject requests are appended to this
    /// file (mode 0600) instead of being e-mailed. Without it, requests wait for the DPO to
    /// check the customer's identity in person.
    #[arg(long, env = "STEWARD_MAIL_SINK", conflicts_with = "smtp_url")]
    mail_sink: Option<std::path::PathBuf>,
    /// Send one-time codes by SMTP through a relay on this host, e.g. `smtp://127.0.0.1:25`
    /// (the relay carries them on over TLS).
    #[arg(long, env = "STEWARD_SMTP_URL")]
    smtp_url: Option<String>,
    /// Hours between retention runs (each purpose's retention period enforced); 0 turns the
    /// schedule off (`steward retention run` then does it).
    #[arg(long, default_value_t = 24, env = "STEWARD_RETENTION_EVERY_HOURS")]
    retention_every_hours: u64,
    /// A request rate per token, as ROLE=R/B (R requests a second, bursts of B) or
    /// default=R/B (repeatable). Default: 50/200 for every role.
    #[arg(long = "rate-limit", value_name = "ROLE=R/B")]
    rate_limits: Vec<String>,
    /// Bad tokens, session cookies, passwords or portal codes one client address may present a
    /// minute (and portal codes it may have sent) before it is refused (429) for the rest of the
    /// minute. It is the only limit on password guesses: raise it only for a test run that must
    /// not meet the brake.
    #[arg(long, default_value_t = steward_api::limits::FAILURES_ALLOWED,
          value_parser = clap::value_parser!(u32).range(1..))]
    failed_auth_limit: u32,
    /// Seconds a request may take, its body included, before it is cut off with 408.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3600))]
    request_timeout_secs: u64,
    /// The sender of one-time codes and campaign messages; its domain signs campaign mail
    /// (DKIM: `steward mail dkim-record` prints the record to publish).
    #[arg(
        long,
        env = "STEWARD_MAIL_FROM",
        default_value = "Privacy <privacy@localhost>"
    )]
    mail_from: String,
    /// The base of links in messages (one-click unsubscribe) as customers reach this server,
    /// e.g. `https://crm.example.com`. Campaigns are sent only when it is set (the demo uses
    /// this server's own address).
    #[arg(long, env = "STEWARD_PUBLIC_URL")]
    public_url: Option<String>,
    /// Most marketing messages a customer receives per purpose, as MESSAGES/DAYSd.
    #[arg(long, default_value = "3/7d", env = "STEWARD_MARKETING_CAP")]
    marketing_cap: steward_service::sending::MarketingCap,
    /// Seconds a campaign message may stay claimed, or handed over without an answer, before
    /// it is settled for a server that stopped: queued again if its hand-over never began,
    /// uncertain (never sent again) if it did. Keep it above the longest hand-over (the SMTP
    /// client waits up to 10 s a step); shorter only miscounts, it never sends twice. On
    /// PostgreSQL keep `synchronous_commit` on, so a committed claim survives a power loss.
    #[arg(long, default_value_t = 60, value_parser = clap::value_parser!(u64).range(1..=3600))]
    send_lease_secs: u64,
    /// Fewest distinct consenting customers an item must have been bought by before
    /// personalisation recommends it or recommends from it (at least 5): a recommendation never
    /// reveals another customer's rare purchase.
    #[arg(long, default_value_t = 5, env = "STEWARD_PERSONALISATION_K")]
    personalisation_k: u32,
    /// The privacy budget ε each analyst may spend per purpose and 30-day window on
    /// differentially private analytics (`POST /v1/analytics/queries`); at least 0.001.
    #[arg(long, default_value_t = 1.0, value_parser = parse_epsilon, env = "STEWARD_ANALYTICS_BUDGET")]
    analytics_budget: f64,
    /// Let recipients' webhooks be plain `http://` on the loopback address (tests only; every
    /// other receiver must be `https://`).
    #[arg(long)]
    allow_insecure_webhooks: bool,
    /// How long a notification to a recipient is retried before it is given up, in hours.
    #[arg(long, default_value_t = 72, value_parser = clap::value_parser!(i64).range(1..=8760))]
    webhook_retry_hours: i64,
    /// How long a claim on a notification lasts, in seconds: a notification a crashed server
    /// was delivering is sent again by another (or the restarted one) after this.
    #[arg(long, default_value_t = 30, value_parser = clap::value_parser!(i64).range(1..=3600))]
    webhook_lease_secs: i64,
    /// The domain of the reply addresses of staff messages (`reply-…@DOMAIN`) and of the bounce
    /// addresses of all mail (`bounce-…@DOMAIN`); the `--mail-from` domain if not set. Route its
    /// mail to `steward mail receive` or `POST /v1/inbound/email`.
    #[arg(long, env = "STEWARD_REPLY_DOMAIN")]
    reply_domain: Option<String>,
    /// The data protection officer's e-mail address: told (through the mail sink or SMTP relay)
    /// when a data-subject request arrives, an access alert is raised, or a request's deadline
    /// is three days away. The messages name no customer.
    #[arg(long, env = "STEWARD_DPO_EMAIL")]
    dpo_email: Option<String>,
    /// The IANA time zone the console and the portal show times in, e.g. `Europe/Zurich`
    /// (daylight saving included); UTC by default.
    #[arg(long, env = "STEWARD_TIME_ZONE")]
    time_zone: Option<String>,
    /// Segment sizes below this are shown as "fewer than N", so a segment cannot single out a
    /// few customers (at least 5).
    #[arg(long, default_value_t = steward_domain::segment::DEFAULT_SIZE_THRESHOLD, env = "STEWARD_SEGMENT_THRESHOLD",
          value_parser = clap::value_parser!(u64).range(5..))]
    segment_threshold: u64,
    /// Segment sizes (and campaign and survey sendings, which size their segment) one caller
    /// may ask for in an hour before the DPO is alerted and the caller refused (429): enough
    /// for a day's work, too few to difference customers out one rule at a time. Raise it only
    /// for a test run.
    #[arg(long, default_value_t = steward_service::EVALUATIONS_PER_HOUR,
          value_parser = clap::value_parser!(u32).range(1..))]
    segment_evaluations_per_hour: u32,
    #[command(flatten)]
    store: StoreArgs,
}

/// Runs the server until Ctrl-C or SIGTERM.
pub async fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    open::init_logging(args.log_json);
    // Flags are checked before anything is opened.
    if let Some(zone) = &args.time_zone {
        steward_api::set_time_zone(zone).map_err(|e| anyhow::anyhow!("--time-zone: {e}"))?;
    }
    let mut limits = rate_limits(&args.rate_limits)?.with_failures_allowed(args.failed_auth_limit);
    if args.failed_auth_limit > steward_api::limits::FAILURES_ALLOWED {
        // It also bounds password guesses and portal code e-mails per address: say so loudly.
        tracing::warn!(
            per_minute = args.failed_auth_limit,
            "the brake on failed sign-ins, bad tokens and portal codes is raised above its default; \
             each client address may now guess this many passwords and send this many portal codes a minute"
        );
    }
    limits.request_timeout = std::time::Duration::from_secs(args.request_timeout_secs);
    // The operator's capability stays here: the HTTP API is given the vault alone.
    let (vault, operator) = open::vault_creating(&args.store).await?;
    vault
        .request_ledger()
        .set_request_deadline_days(args.request_deadline_days);
    vault.identity().set_session_minutes(args.session_minutes);
    vault
        .segments()
        .set_segment_threshold(operator, args.segment_threshold);
    vault
        .segments()
        .set_segment_evaluations_per_hour(operator, args.segment_evaluations_per_hour);
    // The demo sends codes (portal sign-in, requests) to a file unless mail is configured, so
    // that the privacy portal works out of the box.
    let mail_sink = args.mail_sink.clone().or_else(|| {
        (args.demo && args.smtp_url.is_none()).then(|| args.store.data_dir.join("demo-mail.txt"))
    });
    if let Some(path) = &mail_sink {
        if args.mail_sink.is_none() {
            eprintln!(
                "Demo: one-time codes (privacy portal, requests) are written to {}",
                path.display()
            );
        }
        vault.use_notifier(std::sync::Arc::new(
            steward_service::notify::FileNotifier::new(path.clone()),
        ));
    }
    if let Some(url) = &args.smtp_url {
        let smtp = steward_service::notify::SmtpNotifier::new(url, &args.mail_from)
            .map_err(|e| anyhow::anyhow!("--smtp-url: {e}"))?;
        vault.use_notifier(std::sync::Arc::new(smtp));
    }
    let public_url = args
        .public_url
        .clone()
        .or_else(|| args.demo.then(|| format!("http://{}", args.listen)));
    if let Some(url) = public_url {
        vault
            .outreach()
            .configure_mail(
                operator,
                steward_service::sending::MailSettings {
                    public_url: url,
                    from: args.mail_from.clone(),
                    cap: args.marketing_cap,
                    lease: std::time::Duration::from_secs(args.send_lease_secs),
                    reply_domain: args.reply_domain.clone(),
                },
            )
            .map_err(|e| anyhow::anyhow!("--public-url / --mail-from / --reply-domain: {e}"))?;
    }
    if let Some(address) = &args.dpo_email {
        vault
            .request_ledger()
            .set_dpo_address(operator, address)
            .map_err(|e| anyhow::anyhow!("--dpo-email: {}", e.reason))?;
        let vault = vault.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = vault.request_ledger().remind_due_requests().await {
                    tracing::warn!(error = %e, "reminding the DPO of deadlines failed; retried next hour");
                }
                tokio::time::sleep(std::time::Duration::from_secs(3600)).await;
            }
        });
    }
    // A database restored from a backup (or a crash between journal and database) must not
    // serve a customer the journal says is erased: replay before the first request.
    let again = vault
        .replay_erasures()
        .await
        .map_err(|e| anyhow::anyhow!("replaying the erasure journal: {e}"))?;
    if again > 0 {
        tracing::warn!(
            customers = again,
            "erased again from the erasure journal (a restored or older database)"
        );
    }
    // Personalisation's model, from the consenting customers' baskets, before the first
    // request (a grant or withdrawal from then on moves it as it happens).
    vault
        .analytics()
        .set_analytics_budget(operator, args.analytics_budget);
    vault
        .personalisation()
        .set_personalisation_k(operator, args.personalisation_k)
        .map_err(|e| anyhow::anyhow!("--personalisation-k: {e}"))?;
    let started = std::time::Instant::now();
    let modeller = operator.acting("personalisation_model");
    // A model that cannot be built leaves recommendations unavailable (409), not the server down.
    match vault.personalisation().build_recommender(modeller).await {
        Ok(model) => tracing::info!(
            customers = model.customers,
            items = model.items,
            ms = started.elapsed().as_millis() as u64,
            "personalisation model built"
        ),
        Err(e) => {
            tracing::warn!(error = %e, "the personalisation model could not be built; retried")
        }
    }
    // Rebuilt now and then: what another process changed (an import, `steward erase`, another
    // server) reaches this one's model within the interval.
    vault
        .personalisation()
        .rebuild_recommender_every(modeller, std::time::Duration::from_secs(600));
    // After the replay: a campaign left unfinished by a previous process resumes now.
    vault
        .outreach()
        .start_sender(operator.acting("campaign_sender"));
    // Notifications of changes to recipients, queued with the changes, leave from now on (and
    // what a previous process left pending or mid-delivery, after its lease).
    vault
        .webhooks()
        .allow_insecure(operator, args.allow_insecure_webhooks);
    vault
        .webhooks()
        .set_retry(operator, args.webhook_retry_hours);
    vault
        .webhooks()
        .set_lease(operator, args.webhook_lease_secs);
    {
        let vault = vault.clone();
        let sender = operator.acting("webhook_sender");
        tokio::spawn(async move { vault.webhooks().run(sender).await });
    }
    if args.retention_every_hours > 0 {
        let vault = vault.clone();
        let every = std::time::Duration::from_secs(args.retention_every_hours * 3600);
        tokio::spawn(async move {
            // The first run waits a minute, so a start is not slowed by it.
            tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            loop {
                match vault
                    .run_retention(operator.acting("retention"), false)
                    .await
                {
                    Ok(r) => tracing::info!(
                        interactions = r.interactions,
                        purchases = r.purchases,
                        customers = r.customers,
                        held = r.held,
                        sessions = r.sessions,
                        "retention run"
                    ),
                    Err(e) => tracing::warn!(error = %e, "retention run failed; retried next time"),
                }
                tokio::time::sleep(every).await;
            }
        });
    }
    // The policy this server decides by is on the record (by fingerprint): a change of policy
    // is a restart with another file, and shows in the log.
    let fingerprint = open::policy_fingerprint(&args.store)?;
    vault
        .record_operator(operator.acting("serve"), "load_policy", Some(&fingerprint))
        .await
        .map_err(|e| anyhow::anyhow!("recording the policy in the audit log: {e}"))?;
    // In the log before the first request, and the writer shown to reach it: `/readyz` answers
    // 200 from the start only if it does.
    vault
        .audit()
        .flush()
        .await
        .map_err(|e| anyhow::anyhow!("moving pending entries into the audit log: {e}"))?;
    for spec in &args.bulk_limits {
        let (role, n) = spec
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--bulk-limit {spec}: expected ROLE=N"))?;
        // `recipient` too: no token or staff member can be given that role, but its limit is
        // the operator's to set.
        let role: Role = match role {
            "recipient" => Role::Recipient,
            r => r.parse().map_err(|e: steward_domain::ValidationError| {
                anyhow::anyhow!("--bulk-limit {spec}: {}", e.reason)
            })?,
        };
        let limit =
            if n == "none" {
                None
            } else {
                Some(n.parse().map_err(|_| {
                    anyhow::anyhow!("--bulk-limit {spec}: N must be a number or none")
                })?)
            };
        vault.records().set_bulk_limit(operator, role, limit);
    }
    let mut token = None;
    let mut sample = None;
    let mut logins = Vec::new();
    if args.demo {
        if vault.records().count_customers().await? == 0 {
            eprintln!(
                "Loading the demo data set ({} fictional customers)…",
                args.demo_customers
            );
            let s =
                steward_service::demo::load(&vault, operator.acting("demo"), args.demo_customers)
                    .await?;
            eprintln!(
                "Loaded {} outlets, {} staff, {} customers, {} purchases, {} interactions.",
                s.outlets, s.staff, s.customers, s.purchases, s.interactions
            );
        }
        let admin = vault
            .identity()
            .create_token(
                operator.acting("token create"),
                "demo-admin",
                TokenOwner::Role(Role::Admin),
            )
            .await?
            .1;
        let support = vault
            .identity()
            .create_token(
                operator.acting("token create"),
                "demo-support",
                TokenOwner::Role(Role::SupportAgent),
            )
            .await?
            .1;
        token = Some((admin, support));
        sample = steward_service::demo::sample_email(&vault, operator.acting("demo")).await?;
        logins = steward_service::demo::logins(&vault, operator.acting("demo")).await?;
    }
    let tls = match (&args.tls_cert, &args.tls_key) {
        (Some(cert), Some(key)) => Some(crate::tls::acceptor(cert, key)?),
        _ => None,
    };
    let scheme = if tls.is_some() { "https" } else { "http" };
    let listener = tokio::net::TcpListener::bind(args.listen)
        .await
        .with_context(|| format!("binding {}", args.listen))?;
    let addr = listener.local_addr()?;
    tracing::info!(%addr, backend = vault.backend(), "steward listening");
    // The banner is written in one piece with the address line last, so whoever waits for that
    // line (scripts, tests, `steward bench`) has every token and address printed before it.
    let mut banner = String::new();
    if let Some((admin, support)) = token {
        banner.push_str(&format!(
            "One-time admin token (shown once; configures Steward, reads no customer data): {}\n",
            admin.as_str()
        ));
        banner.push_str(&format!(
            "Support-agent token (shown once; reads customers for a declared purpose): {}\n",
            support.as_str()
        ));
        banner.push_str(&format!(
            "Try: curl -H 'Authorization: Bearer {}' '{scheme}://{addr}/v1/customers?purpose=service&limit=2'\n",
            support.as_str()
        ));
        banner.push_str(&format!(
            "Staff console: {scheme}://{addr}/console — demo logins, one per role (demo mode only; new passwords at every start):\n"
        ));
        for l in &logins {
            banner.push_str(&format!(
                "demo login {}: {} / {}\n",
                l.role.as_str(),
                l.login,
                l.password.as_str()
            ));
        }
        if let Some(email) = sample {
            let codes = mail_sink
                .as_ref()
                .map(|p| format!("; its code is written to {}", p.display()))
                .unwrap_or_default();
            banner.push_str(&format!(
                "Privacy portal: {scheme}://{addr}/portal (try the fictional demo customer {email}{codes})\n"
            ));
        }
    }
    if let Some(at) = args.metrics_listen {
        let metrics = tokio::net::TcpListener::bind(at)
            .await
            .with_context(|| format!("binding the metrics address {at}"))?;
        let addr = metrics.local_addr()?;
        tracing::info!(%addr, "metrics listening");
        banner.push_str(&format!("Metrics (no token) on http://{addr}/metrics\n"));
        tokio::spawn(async move {
            if let Err(e) =
                crate::http::serve(metrics, steward_api::metrics_router(), shutdown()).await
            {
                tracing::error!(error = %e, "the metrics listener stopped");
            }
        });
    }
    banner.push_str(&format!("Steward is listening on {scheme}://{addr}\n"));
    {
        use std::io::Write;
        let mut out = std::io::stdout().lock();
        out.write_all(banner.as_bytes())
            .and_then(|()| out.flush())
            .context("writing the start-up banner")?;
    }
    let last = vault.clone();
    crate::http::serve_tls(
        listener,
        steward_api::router_with(vault, limits),
        tls,
        shutdown(),
    )
    .await?;
    // The audit entries of the last writes go into the log before the process ends, so that a
    // clean stop leaves nothing waiting in the outbox (an upgrade then finds it empty).
    // Bounded: writes of other servers on the same database could keep it busy for ever.
    match tokio::time::timeout(std::time::Duration::from_secs(10), last.audit().flush()).await {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "the audit outbox was not drained on the way out; the next start drains it");
        }
        Err(_) => tracing::warn!(
            "the audit outbox was still draining after 10 s on the way out; the next start (or another server) drains it"
        ),
    }
    Ok(ExitCode::SUCCESS)
}

async fn shutdown() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        if let Ok(mut s) = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())
        {
            s.recv().await;
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}

/// The abuse limits from `--rate-limit` specs.
fn rate_limits(specs: &[String]) -> anyhow::Result<steward_api::limits::Limits> {
    use steward_api::limits::{Limits, Rate};
    let mut default = Rate::DEFAULT;
    let mut per_role = std::collections::HashMap::new();
    for spec in specs {
        let (who, rate) = spec
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("--rate-limit {spec}: expected ROLE=R/B"))?;
        let rate = Rate::parse(rate).ok_or_else(|| {
            anyhow::anyhow!("--rate-limit {spec}: R/B must be two positive numbers, B at least 1")
        })?;
        if who == "default" {
            default = rate;
        } else {
            let role: Role = who.parse().map_err(|e: steward_domain::ValidationError| {
                anyhow::anyhow!("--rate-limit {spec}: {}", e.reason)
            })?;
            per_role.insert(role, rate);
        }
    }
    Ok(Limits::new(default, per_role))
}

/// An ε for `--analytics-budget`: a finite number from 0.001 to 1000.
fn parse_epsilon(s: &str) -> Result<f64, String> {
    match s.parse::<f64>() {
        Ok(e) if e.is_finite() && (0.001..=1000.0).contains(&e) => Ok(e),
        _ => Err("a number from 0.001 to 1000".to_owned()),
    }
}
