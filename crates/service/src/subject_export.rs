//! The data-subject export (GDPR Articles 15 and 20, PDPA s.21): one ZIP with everything held
//! about a customer as JSON, a CSV per entity, and a manifest with the SHA-256 of every file.
//!
//! Built on demand and never stored: the ZIP holds the customer's values in clear.

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use serde::Serialize;
use serde_json::{Value, json};
use steward_domain::{AuditLeaf, Customer, CustomerId, DataCategory, Purpose, Timestamp};

use crate::auth::Actor;
use crate::door::About;
use crate::error::{ServiceError, ServiceResult};
use crate::vault::Vault;

/// The export's format name, in its manifest.
pub const SUBJECT_EXPORT_FORMAT: &str = "steward-subject-export/1";

const PAGE: u32 = 1_000;
/// How far back the record of use and disclosure goes.
const USAGE_WINDOW_MS: i64 = 366 * 24 * 3_600 * 1_000;
/// Most audit entries read for the record of use.
const USAGE_LIMIT: u32 = 100_000;

/// A finished export.
#[derive(Debug)]
pub struct SubjectExport {
    /// The ZIP file.
    pub zip: Vec<u8>,
    /// The files in it, with their sizes and SHA-256 (as in the manifest).
    pub files: Vec<ManifestFile>,
}

/// One file of an export, as the manifest lists it.
#[derive(Debug, Clone, Serialize)]
pub struct ManifestFile {
    /// Its name in the ZIP.
    pub name: String,
    /// Its length in bytes.
    pub bytes: usize,
    /// Hex SHA-256 of its content.
    pub sha256: String,
}

fn sha256_hex(bytes: &[u8]) -> String {
    steward_crypto::fingerprint(bytes)
        .trim_start_matches("sha256:")
        .to_owned()
}

/// The purposes that may use a category.
fn purposes_of(purposes: &[Purpose], c: DataCategory) -> Vec<String> {
    purposes
        .iter()
        .filter(|p| p.categories.contains(&c))
        .map(|p| p.key.clone())
        .collect()
}

fn profile_items(c: &Customer, purposes: &[Purpose]) -> Vec<Value> {
    let source = "recorded by the business (staff, import or API)";
    let mut items = Vec::new();
    let mut push = |field: &str, value: Value, cat: DataCategory| {
        items.push(json!({
            "field": field,
            "value": value,
            "category": cat.as_str(),
            "purposes": purposes_of(purposes, cat),
            "source": source,
            "created_at": c.created_at.to_rfc3339_millis(),
            "updated_at": c.updated_at.to_rfc3339_millis(),
        }));
    };
    for (f, value) in c.json_values() {
        push(f.name(), value, f.category());
    }
    items
}

/// A cell as a spreadsheet may safely open it: one that begins with `=`, `+`, `-`, `@`, a tab or
/// a carriage return would be read as a formula, so it is prefixed with `'` (OWASP's advice on CSV
/// injection). The JSON files keep every value as it is.
fn safe_cell(s: &str) -> std::borrow::Cow<'_, str> {
    if s.starts_with(['=', '+', '-', '@', '\t', '\r']) {
        std::borrow::Cow::Owned(format!("'{s}"))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// Flattens JSON objects into CSV: one column per (dotted) key, in first-seen order; arrays
/// are written as JSON text.
fn to_csv(rows: &[Value]) -> ServiceResult<Vec<u8>> {
    fn flatten(prefix: &str, v: &Value, out: &mut Vec<(String, String)>) {
        match v {
            Value::Object(m) => {
                for (k, v) in m {
                    let key = if prefix.is_empty() {
                        k.clone()
                    } else {
                        format!("{prefix}.{k}")
                    };
                    flatten(&key, v, out);
                }
            }
            Value::String(s) => out.push((prefix.to_owned(), s.clone())),
            Value::Null => out.push((prefix.to_owned(), String::new())),
            other => out.push((prefix.to_owned(), other.to_string())),
        }
    }
    let flat: Vec<Vec<(String, String)>> = rows
        .iter()
        .map(|r| {
            let mut out = Vec::new();
            flatten("", r, &mut out);
            out
        })
        .collect();
    let mut columns: Vec<String> = Vec::new();
    for row in &flat {
        for (k, _) in row {
            if !columns.contains(k) {
                columns.push(k.clone());
            }
        }
    }
    let mut w = csv::Writer::from_writer(Vec::new());
    let fail = |_| ServiceError::Export("a CSV file could not be written");
    w.write_record(&columns).map_err(fail)?;
    for row in &flat {
        // Rows have a dozen columns at most: a scan beats building a map per row.
        w.write_record(columns.iter().map(|c| {
            safe_cell(
                row.iter()
                    .find(|(k, _)| k == c)
                    .map_or("", |(_, v)| v.as_str()),
            )
            .into_owned()
        }))
        .map_err(fail)?;
    }
    w.into_inner()
        .map_err(|_| ServiceError::Export("a CSV file could not be written"))
}

/// One interaction in the export.
#[derive(Serialize)]
struct InteractionOut {
    id: String,
    channel: &'static str,
    text: String,
    source: String,
    occurred_at: String,
    category: &'static str,
    purposes: Arc<[String]>,
}

/// One purchase in the export.
#[derive(Serialize)]
struct PurchaseOut {
    id: String,
    item: String,
    product_category: String,
    outlet_id: String,
    seller_id: Option<String>,
    amount_minor: i64,
    currency: String,
    occurred_at: String,
    source: &'static str,
    category: &'static str,
    purposes: Arc<[String]>,
}

/// One use of the customer's data, from the audit log.
#[derive(Serialize)]
struct UsageOut<'a> {
    index: u64,
    time: String,
    action: &'a str,
    by: &'a str,
    roles: Vec<&'static str>,
    outlets: Vec<String>,
    purpose: Option<&'a str>,
    categories: &'a BTreeMap<String, String>,
    outcome: &'a str,
}

/// CSV of typed rows: `fields` gives each row's cells in `header` order.
fn csv_of<T>(
    header: &[&str],
    rows: &[T],
    fields: impl Fn(&T) -> Vec<String>,
) -> ServiceResult<Vec<u8>> {
    let fail = |_| ServiceError::Export("a CSV file could not be written");
    let mut w = csv::Writer::from_writer(Vec::new());
    w.write_record(header).map_err(fail)?;
    for r in rows {
        w.write_record(fields(r).iter().map(|c| safe_cell(c).into_owned()))
            .map_err(fail)?;
    }
    w.into_inner()
        .map_err(|_| ServiceError::Export("a CSV file could not be written"))
}

/// The record of use and disclosure: the customer's audit entries of the past year, and who
/// (by role and outlet) was shown their data.
fn usage_items(leaves: &[(u64, AuditLeaf)]) -> (Vec<UsageOut<'_>>, Vec<Value>) {
    let mut recipients: BTreeMap<(Vec<&'static str>, Vec<String>), u64> = BTreeMap::new();
    let items = leaves
        .iter()
        .map(|(index, l)| {
            let roles: Vec<&'static str> = l.roles.iter().map(|r| r.as_str()).collect();
            let outlets: Vec<String> = l.outlets.iter().map(|o| o.to_string()).collect();
            if l.action == "read" && l.outcome == "allow" {
                *recipients
                    .entry((roles.clone(), outlets.clone()))
                    .or_default() += 1;
            }
            UsageOut {
                index: *index,
                time: l.time.to_rfc3339_millis(),
                action: &l.action,
                by: &l.principal,
                roles,
                outlets,
                purpose: l.purpose.as_deref(),
                categories: &l.categories,
                outcome: &l.outcome,
            }
        })
        .collect();
    let recipients = recipients
        .into_iter()
        .map(
            |((roles, outlets), reads)| json!({"roles": roles, "outlets": outlets, "reads": reads}),
        )
        .collect();
    (items, recipients)
}

impl Vault {
    /// A customer's data-subject export for the operator (`steward export --customer`), if the
    /// policy lets the operator export them (`export_customer`).
    pub async fn operator_export_subject(
        &self,
        operator: crate::Operator,
        id: CustomerId,
    ) -> ServiceResult<SubjectExport> {
        let actor = Actor::Operator(operator);
        self.door()
            .authorize_actor(
                actor,
                steward_policy::Action::ExportCustomer,
                Some(id),
                false,
            )
            .await?;
        self.export_subject(actor, id).await
    }

    /// Everything held about a customer as a ZIP (JSON, CSV per entity, manifest), recorded in
    /// the audit log as an `export_subject` entry before it is returned; the caller has decided
    /// (a fulfilled request, the customer in the portal, the operator).
    pub(crate) async fn export_subject(
        &self,
        actor: Actor<'_>,
        id: CustomerId,
    ) -> ServiceResult<SubjectExport> {
        let customer = self.records().get_customer(id).await?;
        let purposes = self.purposes().all();
        let now = Timestamp::now();
        let since = now.millis() - USAGE_WINDOW_MS;
        let uses = |c: DataCategory| -> Arc<[String]> { purposes_of(&purposes, c).into() };
        let (talk, bought) = (
            uses(DataCategory::Communications),
            uses(DataCategory::PurchaseHistory),
        );
        // Independent reads, overlapped: the customer's history, consents and audit entries.
        let (interactions, purchases, consents, changes, leaves, deliveries) = tokio::try_join!(
            async {
                let mut out = Vec::new();
                let mut after = None;
                loop {
                    let page = self.records().list_interactions(id, after, PAGE).await?;
                    after = page.last().map(|i| i.id.0);
                    let full = page.len() as u32 == PAGE;
                    out.extend(page.into_iter().map(|i| InteractionOut {
                        id: i.id.0.to_string(),
                        channel: i.channel.as_str(),
                        text: i.text,
                        source: i.source,
                        occurred_at: i.occurred_at.to_rfc3339_millis(),
                        category: DataCategory::Communications.as_str(),
                        purposes: talk.clone(),
                    }));
                    if !full {
                        return Ok::<_, ServiceError>(out);
                    }
                }
            },
            async {
                let mut out = Vec::new();
                let mut after = None;
                loop {
                    let page = self.records().list_purchases(id, after, PAGE).await?;
                    after = page.last().map(|p| p.id.0);
                    let full = page.len() as u32 == PAGE;
                    out.extend(page.into_iter().map(|p| PurchaseOut {
                        id: p.id.0.to_string(),
                        item: p.item,
                        product_category: p.category,
                        outlet_id: p.outlet_id.to_string(),
                        seller_id: p.seller_id.map(|s| s.to_string()),
                        amount_minor: p.amount_minor,
                        currency: p.currency,
                        occurred_at: p.occurred_at.to_rfc3339_millis(),
                        source: "point of sale",
                        category: DataCategory::PurchaseHistory.as_str(),
                        purposes: bought.clone(),
                    }));
                    if !full {
                        return Ok::<_, ServiceError>(out);
                    }
                }
            },
            self.consents().ledger(id),
            self.records().profile_changes(id),
            async { self.audit().customer_leaves(id, since, USAGE_LIMIT).await },
            self.outreach().deliveries_of(id),
        )?;
        // Staff messages to this customer and their replies, by thread.
        let threads = self.outreach().threads_of(id).await?;
        // Surveys they were asked to answer: that they were asked and whether they took their
        // token; their answers were never kept under their name, so they cannot be listed.
        let surveys = self.surveys().asked(id).await?;
        // The campaigns this customer was a recipient of: what was sent (the business's
        // template, never filled in again here), under which purpose, what became of it.
        let campaigns: Vec<Value> = deliveries
            .iter()
            .map(|(c, d, sent_at)| {
                // The address, and the fields the templates fill in.
                let used: Vec<&str> = crate::campaigns::templates(c)
                    .map(|(subject, body)| {
                        steward_domain::campaign::categories_used(&subject, &body)
                    })
                    .unwrap_or_else(|_| vec![DataCategory::Email])
                    .iter()
                    .map(|c| c.as_str())
                    .collect();
                json!({
                    "campaign_id": c.id.to_string(),
                    "purpose": c.purpose,
                    "subject": c.subject,
                    "body": c.body,
                    "state": d.state.as_str(),
                    "sent_at": sent_at.map(|t| Timestamp(t).to_rfc3339_millis()),
                    "unsubscribed_at": d.unsubscribed_at.map(|t| Timestamp(t).to_rfc3339_millis()),
                    "categories_used": used,
                })
            })
            .collect();
        let (usage, recipients) = usage_items(&leaves);
        // Who outside the business received their data, under which agreement (issue 22).
        let disclosures = self.sharing().disclosures_unrecorded(id).await?;
        let consent_history: Vec<Value> = consents
            .history
            .iter()
            .map(|e| serde_json::to_value(e).unwrap_or(Value::Null))
            .collect();
        let profile = profile_items(&customer, &purposes);
        let join = |v: &[String]| v.join(";");

        // Compact JSON: machine-readable is the point, and pretty printing costs time.
        fn json<T: Serialize + ?Sized>(v: &T) -> ServiceResult<Vec<u8>> {
            serde_json::to_vec(v).map_err(|_| ServiceError::Export("JSON"))
        }
        let mut files: Vec<(String, Vec<u8>)> = vec![
            (
                "profile.json".into(),
                json(&json!({"customer_id": id.to_string(), "items": profile}))?,
            ),
            ("profile.csv".into(), to_csv(&profile)?),
            ("changes.json".into(), json(&changes)?),
            ("interactions.json".into(), json(&interactions)?),
            (
                "interactions.csv".into(),
                csv_of(
                    &[
                        "id",
                        "channel",
                        "text",
                        "source",
                        "occurred_at",
                        "category",
                        "purposes",
                    ],
                    &interactions,
                    |i| {
                        vec![
                            i.id.clone(),
                            i.channel.to_owned(),
                            i.text.clone(),
                            i.source.clone(),
                            i.occurred_at.clone(),
                            i.category.to_owned(),
                            join(&i.purposes),
                        ]
                    },
                )?,
            ),
            ("purchases.json".into(), json(&purchases)?),
            (
                "purchases.csv".into(),
                csv_of(
                    &[
                        "id",
                        "item",
                        "product_category",
                        "outlet_id",
                        "seller_id",
                        "amount_minor",
                        "currency",
                        "occurred_at",
                        "source",
                        "category",
                        "purposes",
                    ],
                    &purchases,
                    |p| {
                        vec![
                            p.id.clone(),
                            p.item.clone(),
                            p.product_category.clone(),
                            p.outlet_id.clone(),
                            p.seller_id.clone().unwrap_or_default(),
                            p.amount_minor.to_string(),
                            p.currency.clone(),
                            p.occurred_at.clone(),
                            p.source.to_owned(),
                            p.category.to_owned(),
                            join(&p.purposes),
                        ]
                    },
                )?,
            ),
            ("consents.json".into(), json(&consents)?),
            ("consents.csv".into(), to_csv(&consent_history)?),
            ("purposes.json".into(), json(&purposes)?),
            ("usage.json".into(), json(&usage)?),
            (
                "usage.csv".into(),
                csv_of(
                    &[
                        "index",
                        "time",
                        "action",
                        "by",
                        "roles",
                        "outlets",
                        "purpose",
                        "categories",
                        "outcome",
                    ],
                    &usage,
                    |u| {
                        vec![
                            u.index.to_string(),
                            u.time.clone(),
                            u.action.to_owned(),
                            u.by.to_owned(),
                            u.roles.join(";"),
                            u.outlets.join(";"),
                            u.purpose.unwrap_or_default().to_owned(),
                            u.categories
                                .iter()
                                .map(|(k, v)| format!("{k}={v}"))
                                .collect::<Vec<_>>()
                                .join(";"),
                            u.outcome.to_owned(),
                        ]
                    },
                )?,
            ),
            (
                "campaigns.json".into(),
                json(&json!({
                    "note": "Marketing e-mails sent to you, or meant for you and not sent (state skipped): the text as the business wrote it, before your details were filled in, and the data each used.",
                    "campaigns": campaigns,
                }))?,
            ),
            (
                "messages.json".into(),
                json(&json!({
                    "note": "E-mails the business's staff wrote to you through Steward, and your replies to them, by conversation. Replies are kept with your own e-mail address and phone number removed; sent messages show whether they reached your mail server.",
                    "threads": threads,
                }))?,
            ),
            (
                "surveys.json".into(),
                json(&json!({
                    "note": "Anonymous surveys you were asked to answer, and whether you took your one-time response token. Your answers, if you gave any, were kept without your name, so they cannot be listed here or linked to you.",
                    "surveys": surveys,
                }))?,
            ),
            (
                "recipients.json".into(),
                json(&json!({
                    "note": "Who received your data through Steward: the business's own staff, by role and outlet, as recorded in the audit log (recipients); and the processors and third parties outside the business, each under a written agreement, with what they received, when and for which purpose (disclosures).",
                    "recipients": recipients,
                    "disclosures": disclosures,
                }))?,
            ),
        ];
        let manifest_files: Vec<ManifestFile> = files
            .iter()
            .map(|(name, bytes)| ManifestFile {
                name: name.clone(),
                bytes: bytes.len(),
                sha256: sha256_hex(bytes),
            })
            .collect();
        let manifest = json!({
            "format": SUBJECT_EXPORT_FORMAT,
            "customer_id": id.to_string(),
            "generated_at": now.to_rfc3339_millis(),
            "usage_since": Timestamp(since).to_rfc3339_millis(),
            "files": manifest_files,
        });
        files.push(("manifest.json".into(), json(&manifest)?));

        let zip = write_zip(&files)?;
        let entry = self.door().write_entry_marked(
            actor,
            "export_subject",
            Some(id),
            &[
                "profile",
                "interactions",
                "purchases",
                "consents",
                "usage",
                "campaigns",
                "messages",
            ],
            About::default(),
            "disclosed",
        );
        self.door().record(&[entry]).await?;
        Ok(SubjectExport {
            zip,
            files: manifest_files,
        })
    }
}

fn write_zip(files: &[(String, Vec<u8>)]) -> ServiceResult<Vec<u8>> {
    let fail = |_| ServiceError::Export("the ZIP could not be written");
    let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    // Fast deflate: exports are built on demand, and the manifest, not compression, is the point.
    let opts = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .compression_level(Some(1));
    for (name, bytes) in files {
        zip.start_file(name.as_str(), opts).map_err(fail)?;
        zip.write_all(bytes)
            .map_err(|_| ServiceError::Export("the ZIP could not be written"))?;
    }
    Ok(zip.finish().map_err(fail)?.into_inner())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn csv_flattens_nested_objects_and_keeps_every_column() {
        let rows = vec![
            json!({"a": 1, "b": {"c": "x, y"}}),
            json!({"a": 2, "d": ["p", "q"]}),
        ];
        let text = String::from_utf8(to_csv(&rows).unwrap()).unwrap();
        assert_eq!(text, "a,b.c,d\n1,\"x, y\",\n2,,\"[\"\"p\"\",\"\"q\"\"]\"\n");
    }

    /// Issue 15, finding 12: formulas in a customer's data reached the export's CSV unchanged.
    #[test]
    fn csv_cells_cannot_be_formulas() {
        let evil = [
            "=HYPERLINK(\"http://x.example\",\"y\")",
            "=cmd|' /C calc'!A0",
            "+watches",
            "-2+3",
            "@SUM(A1)",
            "\tindent",
            "\rreturn",
        ];
        let rows: Vec<Value> = evil.iter().map(|e| json!({ "text": e })).collect();
        let typed = csv_of(&["text"], &evil, |e| vec![(*e).to_owned()]).unwrap();
        for bytes in [to_csv(&rows).unwrap(), typed] {
            let mut r = csv::Reader::from_reader(bytes.as_slice());
            let cells: Vec<String> = r.records().map(|rec| rec.unwrap()[0].to_owned()).collect();
            assert_eq!(cells.len(), evil.len());
            for (cell, e) in cells.iter().zip(evil) {
                assert_eq!(cell, &format!("'{e}"));
            }
        }
        assert_eq!(safe_cell("Ada = Lovelace"), "Ada = Lovelace");
    }
}
