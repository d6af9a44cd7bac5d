//! Sending campaigns (issue 18, points 2–4): the background sender that turns a campaign's
//! queued deliveries into signed messages, one recipient at a time, each decided at send time.
//!
//! A delivery is claimed (`queued` → `sending`, under a random claim id, committed) before its
//! recipient is looked at, then either skipped (no consent now, the policy refuses the sender,
//! the frequency cap, no address) or marked as being handed over (committed) and handed to the
//! mail server, then settled (`sent`, `failed`). Only the claim that holds a row marks, hands
//! over or settles it. A process that dies leaves its rows `sending`; once the lease has passed,
//! a row marked as handed over is `uncertain` and never handed over again, and one that was not
//! goes back to the queue (it certainly did not leave). So a kill at any moment cannot make a
//! customer receive a campaign twice; it can leave at most the batch being handed over
//! uncertain, counted as such.
//!
//! Per-recipient decisions are not one audit entry each: the start of a campaign is one entry
//! (campaign, purpose, recipients) and its end another (the counts), as a segment's evaluation
//! is; which customers a campaign reached is in the deliveries, which their export lists.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use lettre::message::header::{ContentType, HeaderName, HeaderValue};
use lettre::message::{Mailbox, dkim};
use steward_domain::campaign::{Placeholder, Template};
use steward_domain::{CustomerId, DataCategory, DeliveryId, ProfileField, Purpose, Timestamp};
use steward_policy::{ReadRequest, Subject};
use steward_store::{CampaignRow, DeliveryState, Outcome};

use super::Outreach;
use crate::door::About;
use crate::error::{ServiceError, ServiceResult};
use crate::notify::Handoff;
use crate::{Actor, Operator, Principal};

/// The DKIM selector: the DNS name under `_domainkey` that publishes the key.
pub const DKIM_SELECTOR: &str = "steward";

/// Deliveries claimed at a time: two per mail connection (each connection waits out the relay's
/// delayed ACK per message, and a batch waits for its slowest connection); a kill can leave at
/// most this batch uncertain (the one being handed over; the one prepared behind it was not
/// marked and goes back to the queue).
const BATCH: u32 = 2 * crate::notify::SMTP_CONNECTIONS;

/// What a batch's recipients are decided on besides their records: messages recently sent to
/// each (the frequency cap) and the addresses known to bounce.
struct BatchFacts {
    recent: HashMap<CustomerId, u64>,
    bounced: std::collections::HashSet<(CustomerId, Vec<u8>)>,
}

/// How often the sender looks for work when nothing wakes it.
const IDLE: Duration = Duration::from_secs(1);

/// A claim on a batch of deliveries: a random id only this sender's batch holds.
pub(crate) struct Claim([u8; 16]);

impl Claim {
    fn new() -> ServiceResult<Self> {
        let mut id = [0u8; 16];
        steward_crypto::random_bytes(&mut id)?;
        Ok(Self(id))
    }
}

/// At most so many messages per customer and purpose in so many days (`serve --marketing-cap`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MarketingCap {
    /// Messages.
    pub messages: u32,
    /// Days.
    pub days: u32,
}

impl Default for MarketingCap {
    fn default() -> Self {
        Self {
            messages: 3,
            days: 7,
        }
    }
}

impl std::str::FromStr for MarketingCap {
    type Err = &'static str;

    /// `3/7d`: three messages in seven days.
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        const FORM: &str = "write the cap as MESSAGES/DAYSd, e.g. 3/7d";
        let (n, d) = s.trim().split_once('/').ok_or(FORM)?;
        let messages: u32 = n.trim().parse().map_err(|_| FORM)?;
        let days: u32 = d
            .trim()
            .strip_suffix('d')
            .ok_or(FORM)?
            .parse()
            .map_err(|_| FORM)?;
        if messages == 0 || days == 0 || days > 366 {
            return Err("the cap needs at least one message over 1 to 366 days");
        }
        Ok(Self { messages, days })
    }
}

/// How campaign mail leaves: the operator's settings.
#[derive(Debug, Clone)]
pub struct MailSettings {
    /// The base of links in messages (`serve --public-url`), e.g. `https://crm.example.com`.
    pub public_url: String,
    /// The sender (`serve --mail-from`), `Name <address@domain>`; its domain signs (DKIM).
    pub from: String,
    /// The frequency cap.
    pub cap: MarketingCap,
    /// How long a claimed message may stay unsettled before it counts as uncertain.
    pub lease: Duration,
    /// The domain of reply aliases and bounce addresses (`serve --reply-domain`); the sender's
    /// domain when `None`. Its mail must reach `steward mail receive` or the inbound endpoint.
    pub reply_domain: Option<String>,
}

/// The settings, parsed, with the signer.
pub(crate) struct Mail {
    public_url: String,
    pub(crate) from: Mailbox,
    pub(crate) domain: String,
    pub(crate) reply_domain: String,
    cap: MarketingCap,
    pub(crate) lease: Duration,
    pub(crate) dkim: dkim::DkimConfig,
    pub(crate) wake: tokio::sync::Notify,
}

/// A domain name as it may follow the `@` of an address: letters, digits, hyphens and dots,
/// lower-cased.
fn domain_name(raw: &str) -> Result<String, &'static str> {
    let d = raw.trim().trim_end_matches('.').to_ascii_lowercase();
    let labels_ok = d.split('.').all(|l| {
        !l.is_empty()
            && l.len() <= 63
            && !l.starts_with('-')
            && !l.ends_with('-')
            && l.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
    });
    if d.is_empty() || d.len() > 200 || !labels_ok {
        return Err("the reply domain must be a domain name such as reply.example.com");
    }
    Ok(d)
}

/// The domain of a mailbox's address.
fn domain_of(m: &Mailbox) -> String {
    m.email.domain().to_ascii_lowercase()
}

/// `https://…` or `http://` on loopback (a test or a machine behind a proxy), no query, no
/// fragment, without a trailing slash.
fn base_url(raw: &str) -> Result<String, &'static str> {
    let url = raw.trim().trim_end_matches('/');
    let rest = url
        .strip_prefix("https://")
        .or_else(|| {
            url.strip_prefix("http://").filter(|r| {
                let host = r.split(['/', ':']).next().unwrap_or("");
                host == "localhost" || host == "127.0.0.1" || r.starts_with("[::1]")
            })
        })
        .ok_or("the public URL must be https:// (http:// only on this host)")?;
    if rest.is_empty() || rest.contains(['?', '#', ' ', '"', '<', '>']) {
        return Err("the public URL must be a plain base such as https://crm.example.com");
    }
    Ok(url.to_owned())
}

impl Outreach {
    /// Sets how campaign mail leaves (the operator's `serve` flags). Once per process.
    pub fn configure_mail(
        &self,
        _operator: Operator,
        settings: MailSettings,
    ) -> Result<(), &'static str> {
        let from: Mailbox = settings
            .from
            .parse()
            .map_err(|_| "the sender is not an e-mail address")?;
        let domain = domain_of(&from);
        let reply_domain = match &settings.reply_domain {
            Some(d) => domain_name(d)?,
            None => domain.clone(),
        };
        let key = dkim::DkimSigningKey::new(
            &self.dkim.seed_base64(),
            dkim::DkimSigningAlgorithm::Ed25519,
        )
        .map_err(|_| "the DKIM key does not load")?;
        // Every header a reader or a filter goes by is signed, the unsubscribe headers
        // included (RFC 8058 requires them covered).
        let headers = [
            "From",
            "To",
            "Subject",
            "Date",
            "Message-ID",
            "Reply-To",
            "References",
            "List-Unsubscribe",
            "List-Unsubscribe-Post",
            "MIME-Version",
            "Content-Type",
            "Content-Transfer-Encoding",
        ]
        .into_iter()
        .map(HeaderName::new_from_ascii_str)
        .collect();
        let dkim = dkim::DkimConfig::new(
            DKIM_SELECTOR.to_owned(),
            domain.clone(),
            key,
            headers,
            dkim::DkimCanonicalization {
                header: dkim::DkimCanonicalizationType::Relaxed,
                body: dkim::DkimCanonicalizationType::Relaxed,
            },
        );
        let mail = Mail {
            public_url: base_url(&settings.public_url)?,
            from,
            domain,
            reply_domain,
            cap: settings.cap,
            lease: settings.lease,
            dkim,
            wake: tokio::sync::Notify::new(),
        };
        self.mail
            .set(Arc::new(mail))
            .map_err(|_| "mail is configured already")
    }

    /// The DNS TXT record that publishes the DKIM key for the domain of `mail_from` (the
    /// operator's `steward mail dkim-record`).
    pub fn dkim_record(
        &self,
        _operator: Operator,
        mail_from: &str,
    ) -> Result<String, &'static str> {
        let from: Mailbox = mail_from
            .parse()
            .map_err(|_| "the sender is not an e-mail address")?;
        Ok(self.dkim.dns_record(DKIM_SELECTOR, &domain_of(&from)))
    }

    /// The frequency cap in force (the default when mail is not configured).
    pub fn marketing_cap(&self) -> MarketingCap {
        self.mail.get().map(|m| m.cap).unwrap_or_default()
    }

    /// The mail settings, or why campaigns cannot be sent.
    pub(crate) fn mail(&self) -> ServiceResult<Arc<Mail>> {
        if self.notifier.get().is_none() {
            return Err(ServiceError::WrongState(
                "no mail server is configured (serve --smtp-url)",
            ));
        }
        self.mail.get().cloned().ok_or(ServiceError::WrongState(
            "campaign mail is not configured (serve --public-url)",
        ))
    }

    /// Starts the background sender (the operator's `serve`): it sends the campaigns being
    /// sent, resuming any a previous process left unfinished.
    pub fn start_sender(&self, _operator: Operator) {
        let Ok(mail) = self.mail() else {
            return;
        };
        let vault = self.clone();
        tokio::spawn(async move {
            loop {
                if let Err(e) = vault.send_round(&mail).await {
                    tracing::warn!(error = %e, "campaign sending paused; retrying");
                }
                if let Err(e) = vault.sweep_messages(&mail).await {
                    tracing::warn!(error = %e, "sending staff messages paused; retrying");
                }
                tokio::select! {
                    () = mail.wake.notified() => {}
                    () = tokio::time::sleep(IDLE) => {}
                }
            }
        });
    }

    /// One pass over every campaign being sent.
    async fn send_round(&self, mail: &Mail) -> ServiceResult<()> {
        let store = &self.campaigns;
        let sending = store.campaigns_sending().await?;
        if sending.is_empty() {
            return Ok(());
        }
        let lease = i64::try_from(mail.lease.as_millis()).unwrap_or(i64::MAX);
        let (uncertain, requeued) = store
            .expire_claims(Timestamp::now().millis().saturating_sub(lease))
            .await?;
        if uncertain > 0 || requeued > 0 {
            tracing::warn!(
                uncertain,
                requeued,
                "campaign messages left by a stopped process: those being handed over are marked uncertain and will not be sent again, the others are queued again"
            );
        }
        for campaign in sending {
            // One batch is handed over while the next is claimed and prepared.
            let mut in_flight: Option<(Claim, tokio::task::JoinHandle<Vec<Outcome>>)> = None;
            let result = async {
                loop {
                    // Claim nothing the mail server could not take now: an outage costs at
                    // most the batch in flight, never the rest of the campaign.
                    if !self.mail_server_ready().await? {
                        return Err(ServiceError::WrongState("the mail server does not answer"));
                    }
                    let claim = Claim::new()?;
                    let claimed = store
                        .claim_deliveries(campaign.id, &claim.0, BATCH, Timestamp::now().millis())
                        .await?;
                    if claimed.is_empty() {
                        return Ok(());
                    }
                    let ready = self.prepare_batch(mail, &campaign, &claim, claimed).await?;
                    if let Some((c, h)) = in_flight.take() {
                        self.settle(&c, h).await?;
                    }
                    // Committed before the hand-over begins; only rows this claim still holds,
                    // for the customer they were prepared for.
                    let rows: Vec<(DeliveryId, CustomerId)> =
                        ready.iter().map(|(id, c, _)| (*id, *c)).collect();
                    let held = store
                        .mark_handed(&claim.0, &rows, Timestamp::now().millis())
                        .await?;
                    let ready: Vec<_> = ready
                        .into_iter()
                        .filter(|(id, ..)| held.contains(id))
                        .map(|(id, _, m)| (id, m))
                        .collect();
                    let vault = self.clone();
                    in_flight = Some((
                        claim,
                        tokio::spawn(async move { vault.hand_over(ready).await }),
                    ));
                }
            }
            .await;
            if let Some((c, h)) = in_flight.take() {
                self.settle(&c, h).await?;
            }
            result?;
            self.finish(&campaign).await?;
        }
        Ok(())
    }

    /// Whether the mail server answers (asked off the async threads).
    async fn mail_server_ready(&self) -> ServiceResult<bool> {
        let notifier = self.notifier()?;
        Ok(tokio::task::spawn_blocking(move || notifier.ready())
            .await
            .unwrap_or(false))
    }

    /// Records a batch's hand-over outcomes; an interrupted hand-over stops the round, so the
    /// next looks at the mail server before claiming more.
    async fn settle(
        &self,
        claim: &Claim,
        h: tokio::task::JoinHandle<Vec<Outcome>>,
    ) -> ServiceResult<()> {
        // A task that panicked settles nothing: its rows stay claimed and turn uncertain.
        let outcomes = h.await.unwrap_or_default();
        self.campaigns.record_outcomes(&claim.0, &outcomes).await?;
        if outcomes.iter().any(|o| o.state == DeliveryState::Uncertain) {
            return Err(ServiceError::WrongState(
                "a hand-over to the mail server was interrupted",
            ));
        }
        Ok(())
    }

    pub(crate) fn notifier(&self) -> ServiceResult<Arc<dyn crate::notify::Notifier>> {
        self.notifier
            .get()
            .cloned()
            .ok_or(ServiceError::WrongState("no mail server is configured"))
    }

    /// Marks a campaign sent once nothing is queued or claimed, with one audit entry of its
    /// counts.
    async fn finish(&self, campaign: &CampaignRow) -> ServiceResult<()> {
        let store = &self.campaigns;
        let counts = crate::campaigns::counts_of(&store.delivery_counts(campaign.id).await?);
        let id = campaign.id.to_string();
        let mut leaf = crate::door::leaf(
            self.door()
                .actor_parts(Actor::Operator(Operator::internal("campaign_sender"))),
            "campaign_sent",
            None,
            &[],
            About {
                subject: Some(&id),
                purpose: Some(&campaign.purpose),
            },
            "written",
            "done",
        );
        for (k, v) in [
            ("sent", counts.sent),
            ("skipped", counts.skipped),
            ("failed", counts.failed),
            ("uncertain", counts.uncertain),
        ] {
            leaf.categories.insert(k.to_owned(), v.to_string());
        }
        store
            .finish_campaign(
                campaign.id,
                Timestamp::now().millis(),
                &[crate::door::row_of(leaf)],
            )
            .await?;
        Ok(())
    }

    /// Decides and renders one batch of claimed deliveries: the refusals are settled, the
    /// messages to hand over returned.
    async fn prepare_batch(
        &self,
        mail: &Mail,
        campaign: &CampaignRow,
        claim: &Claim,
        claimed: Vec<(DeliveryId, Option<CustomerId>)>,
    ) -> ServiceResult<Vec<(DeliveryId, CustomerId, lettre::Message)>> {
        let store = &self.campaigns;
        let now = Timestamp::now();
        let skip = |id, reason| Outcome {
            id,
            state: DeliveryState::Skipped,
            reason: Some(reason),
            at: now.millis(),
        };
        // The purpose as it is now: one changed since (another basis, another channel) or
        // gone sends nothing more, and neither does a sender who may no longer act.
        let purpose = self
            .purposes()
            .get("purpose", &campaign.purpose)
            .ok()
            .filter(|p| steward_domain::campaign::check_purpose(p).is_ok());
        let principal = self.identity.sender_principal(campaign.sender).await?;
        let (Some(purpose), Some(principal), Ok((subject, body))) =
            (purpose, principal, crate::campaigns::templates(campaign))
        else {
            let outcomes: Vec<_> = claimed.iter().map(|(id, _)| skip(*id, "policy")).collect();
            store.record_outcomes(&claim.0, &outcomes).await?;
            return Ok(Vec::new());
        };
        // The address, and what the templates fill in.
        let categories = steward_domain::campaign::categories_used(&subject, &body);
        let customers: Vec<CustomerId> = claimed.iter().filter_map(|(_, c)| *c).collect();
        let window = i64::from(mail.cap.days) * 86_400_000;
        let batch = BatchFacts {
            recent: store
                .recent_messages(&customers, &purpose.key, now.millis() - window)
                .await?
                .into_iter()
                .collect(),
            bounced: self
                .messages
                .undeliverable(&customers)
                .await?
                .into_iter()
                .collect(),
        };
        let acknowledged = self.notices.acknowledged(&principal, now);
        let mut outcomes = Vec::new();
        let mut ready = Vec::new();
        for (id, customer) in claimed {
            let verdict = self
                .prepare(
                    mail,
                    campaign,
                    &purpose,
                    &principal,
                    acknowledged,
                    &categories,
                    (&subject, &body),
                    (id, customer),
                    &batch,
                    now,
                )
                .await;
            match (verdict, customer) {
                (Ok(Ok(message)), Some(c)) => ready.push((id, c, message)),
                (Ok(Ok(_)), None) => outcomes.push(skip(id, "erased")),
                (Ok(Err(reason)), _) => outcomes.push(skip(id, reason)),
                // One recipient's failure (a record that does not open) is theirs alone.
                (Err(e), _) => {
                    tracing::warn!(error = %e, "a campaign message could not be prepared; skipped");
                    outcomes.push(skip(id, "error"));
                }
            }
        }
        store.record_outcomes(&claim.0, &outcomes).await?;
        Ok(ready)
    }

    /// One recipient: the message to send, or why not.
    #[allow(clippy::too_many_arguments)]
    async fn prepare(
        &self,
        mail: &Mail,
        campaign: &CampaignRow,
        purpose: &Purpose,
        principal: &Principal,
        acknowledged: bool,
        categories: &[DataCategory],
        (subject, body): (&Template, &Template),
        (id, customer): (DeliveryId, Option<CustomerId>),
        batch: &BatchFacts,
        now: Timestamp,
    ) -> ServiceResult<Result<lettre::Message, &'static str>> {
        let Some(customer) = customer else {
            return Ok(Err("erased"));
        };
        let Some((row, key, facts)) = self.records.sealed_for_read(customer).await? else {
            return Ok(Err("erased"));
        };
        // Consent as it is now: a withdrawal since the campaign started is honoured.
        let consented = self.consents().active(customer, &purpose.key).await?;
        if !consented {
            return Ok(Err("consent"));
        }
        let req = ReadRequest {
            asker: principal.asker(),
            subject: Subject {
                id: customer,
                outlets: &facts.outlets,
                restricted: facts.restricted,
            },
            purpose,
            consented,
            has_reason: false,
            reason_length: 0,
            break_glass: false,
            acknowledged,
            now,
            // Not a recipient's act: no agreement (a recipient is refused by the policy).
            agreement: None,
        };
        if !self.door().policy().decide_use(&req, categories) {
            return Ok(Err("policy"));
        }
        // This delivery is claimed, so it is among the recent ones counted.
        if batch.recent.get(&customer).copied().unwrap_or(0) > u64::from(mail.cap.messages) {
            return Ok(Err("cap"));
        }
        let dk = self.keys().open(customer, &key)?;
        let c = crate::seal::open_customer_fields(&dk, &row, |f| {
            matches!(
                f,
                ProfileField::Email | ProfileField::Name | ProfileField::PreferredLanguage
            )
        })?;
        let Some((address, to)) = c
            .email
            .as_deref()
            .and_then(|e| Some((e, e.parse::<lettre::Address>().ok()?)))
        else {
            return Ok(Err("undeliverable"));
        };
        // An address a delivery status notification said fails is not tried again (a new
        // address is).
        if batch
            .bounced
            .contains(&(customer, self.door().mac("email", address).to_vec()))
        {
            return Ok(Err("undeliverable"));
        }
        // Recommendations only where the recipient agreed to personalisation; without them the
        // recipient gets the campaign anyway, or is skipped, as the campaign says.
        let recommendations = if body
            .placeholders()
            .any(|p| p == Placeholder::Recommendations)
        {
            let r = self
                .personalisation
                .campaign_recommendations(principal, customer)
                .await?;
            if r.is_none() && campaign.skip_without_recommendations {
                return Ok(Err("personalisation"));
            }
            r
        } else {
            None
        };
        let value = |p: Placeholder| match p {
            Placeholder::FirstName => c
                .name
                .as_deref()
                .and_then(|n| n.split_whitespace().next())
                .map(str::to_owned),
            Placeholder::Field(ProfileField::Name) => c.name.clone(),
            Placeholder::Field(ProfileField::PreferredLanguage) => c.preferred_language.clone(),
            Placeholder::Recommendations => recommendations.clone(),
            Placeholder::Field(_) => None,
        };
        let token = self.links.seal("unsubscribe", id.as_bytes())?;
        let link = format!("{}/unsubscribe/{token}", mail.public_url);
        let text = format!(
            "{}\r\n\r\n-- \r\nYou receive this because you agreed to {}. Unsubscribe: {link}\r\n",
            body.render(value),
            crate::campaigns::purpose_words(&campaign.purpose),
        );
        // Bounces come back to an address that names this delivery (and only it).
        let Some(envelope) = self
            .bounce_address(
                crate::messages::BOUNCE_DELIVERY,
                id.as_bytes(),
                &mail.reply_domain,
            )
            .parse()
            .ok()
            .and_then(|bounce| lettre::address::Envelope::new(Some(bounce), vec![to.clone()]).ok())
        else {
            return Ok(Err("undeliverable"));
        };
        let message = lettre::Message::builder()
            .from(mail.from.clone())
            .to(Mailbox::new(None, to.clone()))
            .subject(subject.render(value))
            .date_now()
            .message_id(Some(format!("<{}@{}>", id.0.simple(), mail.domain)))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe"),
                format!("<{link}>"),
            ))
            .raw_header(HeaderValue::new(
                HeaderName::new_from_ascii_str("List-Unsubscribe-Post"),
                "List-Unsubscribe=One-Click".to_owned(),
            ))
            .header(lettre::message::header::MIME_VERSION_1_0)
            .header(ContentType::TEXT_PLAIN)
            .envelope(envelope)
            .body(text);
        let Ok(mut message) = message else {
            return Ok(Err("undeliverable"));
        };
        dkim::dkim_sign(&mut message, &mail.dkim);
        Ok(Ok(message))
    }

    /// Hands messages to the mail server from several threads at once (one connection each).
    async fn hand_over(&self, ready: Vec<(DeliveryId, lettre::Message)>) -> Vec<Outcome> {
        let Ok(notifier) = self.notifier() else {
            return Vec::new();
        };
        let threads = crate::notify::SMTP_CONNECTIONS as usize;
        let per = ready.len().div_ceil(threads).max(1);
        let mut ready = ready;
        let mut handles = Vec::new();
        while !ready.is_empty() {
            let chunk: Vec<_> = ready.drain(..per.min(ready.len())).collect();
            let notifier = notifier.clone();
            handles.push(tokio::task::spawn_blocking(move || {
                chunk
                    .into_iter()
                    .map(|(id, m)| {
                        let (state, reason) = match notifier.deliver(&m) {
                            Handoff::Accepted => (DeliveryState::Sent, None),
                            Handoff::Refused => (DeliveryState::Failed, Some("refused")),
                            Handoff::Uncertain => (DeliveryState::Uncertain, None),
                        };
                        Outcome {
                            id,
                            state,
                            reason,
                            at: Timestamp::now().millis(),
                        }
                    })
                    .collect::<Vec<_>>()
            }));
        }
        let mut outcomes = Vec::new();
        for h in handles {
            // A thread that panicked settles nothing: its rows stay claimed and turn uncertain.
            if let Ok(done) = h.await {
                outcomes.extend(done);
            }
        }
        outcomes
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_reads_as_messages_per_days() {
        assert_eq!(
            "3/7d".parse::<MarketingCap>(),
            Ok(MarketingCap {
                messages: 3,
                days: 7
            })
        );
        assert_eq!(" 10 / 30d ".parse::<MarketingCap>().map(|c| c.days), Ok(30));
        for bad in ["3", "3/7", "0/7d", "3/0d", "x/7d", "3/400d", "-1/7d"] {
            assert!(bad.parse::<MarketingCap>().is_err(), "{bad}");
        }
    }

    #[test]
    fn links_start_from_a_plain_https_base() {
        assert_eq!(
            base_url("https://crm.example.com/").as_deref(),
            Ok("https://crm.example.com")
        );
        assert!(base_url("http://127.0.0.1:8080").is_ok());
        assert!(base_url("http://crm.example.com").is_err());
        assert!(base_url("https://crm.example.com/?x=1").is_err());
        assert!(base_url("ftp://x").is_err());
        assert!(base_url("https://").is_err());
    }
}
