//! `steward import --social FILE.csv`: social events from a file (a platform's export), taken
//! like `POST /v1/social/events` — kept only for consenting customers, the rest dropped and
//! counted. Headers: `platform, handle, event_id, text, url, occurred_at, city, country` (the last
//! four optional).

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;

use anyhow::Context;
use steward_domain::social::{LocationInput, SocialEventInput};
use steward_domain::{Timestamp, ValidationError};
use steward_service::{Actor, Operator, Vault};

/// Reads every row first (a bad row stops the import before anything is taken, unless
/// `skip_invalid`), then takes each event; prints what became of them, by outcome.
pub async fn run(
    vault: &Vault,
    operator: Operator,
    file: &Path,
    skip_invalid: bool,
) -> anyhow::Result<ExitCode> {
    let mut reader =
        csv::Reader::from_path(file).with_context(|| format!("opening {}", file.display()))?;
    let headers: Vec<String> = reader
        .headers()
        .with_context(|| format!("reading {}", file.display()))?
        .iter()
        .map(|h| h.trim_start_matches('\u{feff}').trim().to_ascii_lowercase())
        .collect();
    for required in ["platform", "handle", "event_id", "text"] {
        if !headers.iter().any(|h| h == required) {
            anyhow::bail!("{}: no `{required}` column", file.display());
        }
    }
    let now = Timestamp::now();
    let mut events = Vec::new();
    let mut errors = 0;
    for (n, record) in reader.records().enumerate() {
        let line = n + 2;
        let record = record.with_context(|| format!("reading line {line}"))?;
        let cell = |name: &str| {
            headers
                .iter()
                .position(|h| h == name)
                .and_then(|i| record.get(i))
                .map(str::trim)
                .filter(|v| !v.is_empty())
                .map(str::to_owned)
        };
        let parsed = (|| -> Result<_, ValidationError> {
            let occurred_at = cell("occurred_at")
                .map(|t| {
                    Timestamp::parse_rfc3339(&t)
                        .ok_or_else(|| ValidationError::new("occurred_at", "an RFC 3339 time"))
                })
                .transpose()?;
            let (city, country) = (cell("city"), cell("country"));
            SocialEventInput {
                platform: cell("platform").unwrap_or_default(),
                handle: cell("handle").unwrap_or_default(),
                event_id: cell("event_id").unwrap_or_default(),
                text: cell("text").unwrap_or_default(),
                url: cell("url"),
                occurred_at,
                location: (city.is_some() || country.is_some()).then(|| LocationInput {
                    city,
                    country,
                    ..Default::default()
                }),
            }
            .validate(now)
        })();
        match parsed {
            Ok(e) => events.push(e),
            Err(e) => {
                // The field and why, never the value.
                eprintln!("line {line}: {}: {}", e.field, e.reason);
                errors += 1;
            }
        }
    }
    if errors > 0 && !skip_invalid {
        eprintln!("{errors} invalid rows; nothing was taken. Fix them, or pass --skip-invalid.");
        return Ok(ExitCode::from(2));
    }
    let mut outcomes: BTreeMap<&'static str, usize> = BTreeMap::new();
    for e in &events {
        let outcome = vault
            .records()
            .ingest_social(Actor::Operator(operator.acting("import_social")), e)
            .await?;
        *outcomes.entry(outcome.as_str()).or_default() += 1;
    }
    let summary: Vec<String> = outcomes.iter().map(|(k, v)| format!("{k} {v}")).collect();
    println!(
        "{} events read: {}",
        events.len(),
        if summary.is_empty() {
            "none".to_owned()
        } else {
            summary.join(", ")
        }
    );
    Ok(ExitCode::SUCCESS)
}
