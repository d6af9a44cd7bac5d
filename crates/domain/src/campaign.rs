//! Campaigns (issue 18, point 2): a message to a segment under a marketing purpose, written as a
//! template whose placeholders name profile fields. Validated here: the purpose must be one of
//! marketing communication on a basis that allows it, and every placeholder must be a field the
//! purpose may use, so a campaign can never put into a message what the customer did not agree to.

use crate::{DataCategory, LawfulBasis, ProfileField, Purpose, ValidationError, normalize};

/// Longest subject, in characters.
pub const MAX_SUBJECT_CHARS: usize = 200;
/// Longest body, in characters.
pub const MAX_BODY_CHARS: usize = 10_000;
/// Most placeholders in one template.
pub const MAX_PLACEHOLDERS: usize = 50;

/// A placeholder's value source: a profile field, or the first word of the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Placeholder {
    /// A profile field in full (`{{name}}`, `{{preferred_language}}`).
    Field(ProfileField),
    /// The name's first word (`{{first_name}}`).
    FirstName,
    /// The customer's recommendations (`{{recommendations}}`, body only): filled in only for a
    /// recipient who agreed to personalisation, decided under that purpose; empty for the
    /// others, who get the campaign without it.
    Recommendations,
}

impl Placeholder {
    /// The placeholder's name as written between the braces.
    pub fn name(self) -> &'static str {
        match self {
            Placeholder::Field(f) => f.name(),
            Placeholder::FirstName => "first_name",
            Placeholder::Recommendations => "recommendations",
        }
    }

    /// The data category its value belongs to under the campaign's own purpose: none for the
    /// recommendations, which are decided under `personalisation` for each recipient.
    pub fn category(self) -> Option<DataCategory> {
        match self {
            Placeholder::Field(f) => Some(f.category()),
            Placeholder::FirstName => Some(DataCategory::Name),
            Placeholder::Recommendations => None,
        }
    }

    fn parse(name: &str) -> Option<Self> {
        if name == "first_name" {
            return Some(Placeholder::FirstName);
        }
        if name == "recommendations" {
            return Some(Placeholder::Recommendations);
        }
        // A whole address or a date of birth in a marketing message is never what anyone means;
        // and an e-mail address is the envelope's, not the text's.
        ProfileField::parse(name)
            .filter(|f| matches!(f.category(), DataCategory::Name | DataCategory::Language))
            .map(Placeholder::Field)
    }
}

/// One piece of a parsed template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    /// Text as written.
    Text(String),
    /// A value filled in per customer.
    Value(Placeholder),
}

/// A validated template: text and placeholders.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template(pub Vec<Piece>);

impl Template {
    /// Parses `raw` (the request's `field`): `{{name}}` placeholders, `{{` written as is
    /// elsewhere is refused so that a typo is not sent to thousands of customers.
    pub fn parse(field: &'static str, raw: &str) -> Result<Template, ValidationError> {
        let mut pieces = Vec::new();
        let mut rest = raw;
        let mut count = 0;
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                pieces.push(Piece::Text(rest[..open].to_owned()));
            }
            let after = &rest[open + 2..];
            let Some(close) = after.find("}}") else {
                return Err(ValidationError::new(
                    field,
                    "a placeholder is not closed with }}",
                ));
            };
            let name = after[..close].trim();
            let placeholder = Placeholder::parse(name).ok_or_else(|| {
                ValidationError::new(
                    field,
                    "unknown placeholder: use {{first_name}}, {{name}}, {{preferred_language}} or (in the body) {{recommendations}}",
                )
            })?;
            count += 1;
            if count > MAX_PLACEHOLDERS {
                return Err(ValidationError::new(
                    field,
                    "too many placeholders (at most 50)",
                ));
            }
            pieces.push(Piece::Value(placeholder));
            rest = &after[close + 2..];
        }
        if rest.contains("}}") {
            return Err(ValidationError::new(field, "}} closes no placeholder"));
        }
        if !rest.is_empty() {
            pieces.push(Piece::Text(rest.to_owned()));
        }
        Ok(Template(pieces))
    }

    /// The placeholders used.
    pub fn placeholders(&self) -> impl Iterator<Item = Placeholder> + '_ {
        self.0.iter().filter_map(|p| match p {
            Piece::Value(v) => Some(*v),
            Piece::Text(_) => None,
        })
    }

    /// The text for one customer: `value` gives each placeholder's value (empty when absent).
    pub fn render(&self, value: impl Fn(Placeholder) -> Option<String>) -> String {
        self.0
            .iter()
            .map(|p| match p {
                Piece::Text(t) => t.clone(),
                Piece::Value(v) => value(*v).unwrap_or_default(),
            })
            .collect()
    }
}

/// The data categories a message of these templates uses: the address it goes to and each
/// placeholder's category, each once, in a stable order.
pub fn categories_used(subject: &Template, body: &Template) -> Vec<DataCategory> {
    let mut used = vec![DataCategory::Email];
    used.extend(
        subject
            .placeholders()
            .chain(body.placeholders())
            .filter_map(Placeholder::category),
    );
    used.sort_by_key(|c| c.as_str());
    used.dedup();
    used
}

/// A validated campaign, ready to store.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewCampaign {
    /// The subject line's template.
    pub subject: Template,
    /// The body's template.
    pub body: Template,
    /// The subject as validated (normalised), to store.
    pub subject_text: String,
    /// The body as validated, to store.
    pub body_text: String,
}

/// Whether a campaign may be sent under `purpose`: marketing communication by e-mail, resting on
/// consent.
pub fn check_purpose(purpose: &Purpose) -> Result<(), ValidationError> {
    // Campaigns are e-mail: a purpose for marketing by another channel (SMS, post) is not one.
    if !matches!(
        purpose.data_use.as_str(),
        "marketing.communications" | "marketing.communications.email"
    ) {
        return Err(ValidationError::new(
            "purpose",
            "a campaign's purpose must be marketing communication by e-mail (data use marketing.communications.email)",
        ));
    }
    // Every campaign message must be revocable with one click, and a click withdraws consent:
    // a purpose on another basis (legitimate interest, where unsubscribing is an objection)
    // would need an objection ledger Steward does not keep yet.
    if purpose.lawful_basis != LawfulBasis::Consent {
        return Err(ValidationError::new(
            "purpose",
            "campaigns are sent only on consent: every message carries a one-click unsubscribe that withdraws it",
        ));
    }
    Ok(())
}

/// Validates a campaign's purpose, subject and body: the purpose must be marketing
/// communication by e-mail on consent, and every placeholder's category one the purpose covers.
pub fn validate(
    purpose: &Purpose,
    subject: &str,
    body: &str,
) -> Result<NewCampaign, ValidationError> {
    check_purpose(purpose)?;
    let subject_text = normalize::short_text("subject", subject)?;
    if subject_text.chars().count() > MAX_SUBJECT_CHARS || subject_text.contains('\n') {
        return Err(ValidationError::new(
            "subject",
            "one line of at most 200 characters",
        ));
    }
    let body_text = normalize::long_text("body", body)?;
    if body_text.chars().count() > MAX_BODY_CHARS {
        return Err(ValidationError::new("body", "at most 10,000 characters"));
    }
    let c = NewCampaign {
        subject: Template::parse("subject", &subject_text)?,
        body: Template::parse("body", &body_text)?,
        subject_text,
        body_text,
    };
    if c.subject
        .placeholders()
        .any(|p| p == Placeholder::Recommendations)
    {
        return Err(ValidationError::new(
            "subject",
            "{{recommendations}} goes in the body only",
        ));
    }
    for (field, t) in [("subject", &c.subject), ("body", &c.body)] {
        if t.placeholders()
            .filter_map(Placeholder::category)
            .any(|c| !purpose.categories.contains(&c))
        {
            return Err(ValidationError::new(
                field,
                "a placeholder names data the purpose does not cover (see the purpose's categories)",
            ));
        }
    }
    Ok(c)
}

/// The fictional customer every preview is rendered with: never a real one.
pub fn sample_value(p: Placeholder) -> Option<String> {
    Some(
        match p {
            Placeholder::FirstName => "Alex",
            Placeholder::Field(ProfileField::Name) => "Alex Example",
            Placeholder::Field(ProfileField::PreferredLanguage) => "en-GB",
            Placeholder::Recommendations => {
                "\n- Silver Chain (because you bought Silver Ring)\n- Leather Strap (because you bought Steel Watch)"
            }
            Placeholder::Field(_) => return None,
        }
        .to_owned(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::purpose::default_purposes;

    fn purpose(key: &str) -> Purpose {
        default_purposes()
            .into_iter()
            .find(|p| p.key == key)
            .unwrap()
    }

    #[test]
    fn templates_fill_in_only_known_placeholders() {
        let t = Template::parse(
            "body",
            "Dear {{ first_name }}, news in {{preferred_language}}.",
        )
        .unwrap();
        assert_eq!(t.render(sample_value), "Dear Alex, news in en-GB.");
        for bad in [
            "Hi {{email}}",
            "Hi {{phone}}",
            "Hi {{nickname}}",
            "Hi {{name",
            "Hi name}}",
        ] {
            assert_eq!(
                Template::parse("body", bad).unwrap_err().field,
                "body",
                "{bad}"
            );
        }
        assert_eq!(
            Template::parse("body", "No placeholder")
                .unwrap()
                .placeholders()
                .count(),
            0
        );
    }

    #[test]
    fn a_campaign_needs_a_marketing_purpose_that_covers_its_placeholders() {
        let m = purpose("marketing_email");
        assert!(validate(&m, "Hello {{first_name}}", "New watches, {{name}}.").is_ok());
        // Not marketing communication.
        assert_eq!(
            validate(&purpose("service"), "Hi", "Hi").unwrap_err().field,
            "purpose"
        );
        assert_eq!(
            validate(&purpose("personalisation"), "Hi", "Hi")
                .unwrap_err()
                .field,
            "purpose"
        );
        // A placeholder the purpose does not cover.
        let mut narrow = m.clone();
        narrow.categories.retain(|c| *c != DataCategory::Name);
        assert_eq!(
            validate(&narrow, "Hi", "Dear {{name}}").unwrap_err().field,
            "body"
        );
        // Recommendations: in the body, whatever the marketing purpose covers (they are decided
        // under personalisation per recipient); never in the subject.
        let c = validate(&narrow, "Hi", "Picked for you:{{recommendations}}").unwrap();
        assert_eq!(
            categories_used(&c.subject, &c.body),
            vec![DataCategory::Email]
        );
        assert_eq!(
            validate(&m, "{{recommendations}}", "b").unwrap_err().field,
            "subject"
        );
        // Sizes.
        assert_eq!(
            validate(&m, &"s".repeat(201), "b").unwrap_err().field,
            "subject"
        );
        assert_eq!(
            validate(&m, "s", &"b".repeat(10_001)).unwrap_err().field,
            "body"
        );
    }
}
