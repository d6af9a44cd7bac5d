//! Social CRM without shadow profiles (issue 23, point 1): a customer's handles on social
//! platforms (profile data, sealed and blind-indexed like an e-mail address) and the events a
//! social connector reports. An event is kept only for a customer who has consented to social
//! listening; its location is coarsened to city and country before anything is stored.

use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::profile::{ProfileValue, ToText};
use crate::{Timestamp, ValidationError, normalize};

/// Most handles one customer holds.
const MAX_HANDLES: usize = 10;

/// A handle on a platform, normalised: the platform in lower case, the handle without its
/// leading `@`, NFKC and lower case (platforms treat handles case-insensitively).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SocialHandle {
    /// The platform, e.g. `instagram`, `x`, `tiktok`, `mastodon`.
    pub platform: String,
    /// The handle, without its `@` (masked for some readers).
    pub handle: String,
}

/// A handle as submitted in a list; a [`SocialHandle`] once normalised.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SocialHandleInput {
    /// The platform, e.g. `instagram`, `x`, `tiktok`, `mastodon`.
    #[schema(format = "platform")]
    pub platform: String,
    /// The handle, e.g. `@anna.muster` (`@` optional).
    #[schema(format = "handle")]
    pub handle: String,
}

impl SocialHandleInput {
    /// The platform and handle validated and normalised; errors name `field`.
    pub fn normalized(&self, field: &'static str) -> Result<SocialHandle, ValidationError> {
        Ok(SocialHandle {
            platform: platform(field, &self.platform)?,
            handle: handle(field, &self.handle)?,
        })
    }
}

impl SocialHandle {
    /// What the blind index is computed over: platform and handle on two lines.
    pub fn index_value(&self) -> String {
        format!("{}\n{}", self.platform, self.handle)
    }
}

/// A platform's name: 1 to 32 lower-case letters, digits, `.`, `_` or `-`.
pub fn platform(field: &'static str, raw: &str) -> Result<String, ValidationError> {
    let p = raw.trim().to_ascii_lowercase();
    if (1..=32).contains(&p.len())
        && p.bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
    {
        Ok(p)
    } else {
        Err(ValidationError::new(
            field,
            "a platform name such as instagram (letters, digits, . _ -)",
        ))
    }
}

/// A handle: 1 to 100 visible characters, no spaces, without its leading `@`, lower case.
pub fn handle(field: &'static str, raw: &str) -> Result<String, ValidationError> {
    let h = normalize::short_text(field, raw)?;
    let h = h.strip_prefix('@').unwrap_or(&h).to_lowercase();
    // No spaces, no invisible characters (a handle that looks like another must not index
    // apart from it), none of the separators of the one-line form.
    if h.is_empty()
        || h.chars().count() > 100
        || h.chars()
            .any(|c| c.is_whitespace() || normalize::is_invisible(c) || matches!(c, ',' | ';'))
    {
        return Err(ValidationError::new(
            field,
            "a handle such as @anna.muster (no spaces, at most 100 characters)",
        ));
    }
    Ok(h)
}

/// A customer's handles, normalised, sorted and without repeats (at least one).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
#[serde(transparent)]
pub struct SocialHandles(pub Vec<SocialHandle>);

/// Handles as submitted: a list, or one line (`instagram @anna, x @anna_m`) as an import's cell
/// or a form's field gives them.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(untagged)]
pub enum SocialHandlesInput {
    /// `[{"platform", "handle"}]`.
    List(Vec<SocialHandleInput>),
    /// `platform handle` (or `platform:handle`) pairs separated by commas or semicolons.
    #[schema(format = "handles-line")]
    Line(String),
}

impl From<String> for SocialHandlesInput {
    fn from(line: String) -> Self {
        SocialHandlesInput::Line(line)
    }
}

impl From<SocialHandles> for SocialHandlesInput {
    fn from(h: SocialHandles) -> Self {
        SocialHandlesInput::List(
            h.0.into_iter()
                .map(|h| SocialHandleInput {
                    platform: h.platform,
                    handle: h.handle,
                })
                .collect(),
        )
    }
}

impl ProfileValue for SocialHandles {
    fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
}

impl ToText for SocialHandles {
    fn to_text(&self) -> String {
        self.0
            .iter()
            .map(|h| format!("{} @{}", h.platform, h.handle))
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Validates submitted handles (the profile field's validation).
pub fn validate_handles(input: &SocialHandlesInput) -> Result<SocialHandles, ValidationError> {
    const FIELD: &str = "social_handles";
    let mut v = match input {
        SocialHandlesInput::List(list) => list
            .iter()
            .map(|h| h.normalized(FIELD))
            .collect::<Result<Vec<_>, _>>()?,
        SocialHandlesInput::Line(line) => line
            .split([',', ';'])
            .filter(|part| !part.trim().is_empty())
            .map(|part| {
                let part = part.trim();
                let (p, h) = part
                    .split_once(':')
                    .or_else(|| part.split_once(char::is_whitespace))
                    .ok_or_else(|| {
                        ValidationError::new(
                            FIELD,
                            "write each as platform and handle, e.g. instagram @anna",
                        )
                    })?;
                SocialHandleInput {
                    platform: p.into(),
                    handle: h.trim().into(),
                }
                .normalized(FIELD)
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    v.sort();
    v.dedup();
    if v.is_empty() || v.len() > MAX_HANDLES {
        return Err(ValidationError::new(
            FIELD,
            "one to ten handles (null removes them all)",
        ));
    }
    Ok(SocialHandles(v))
}

/// Handles masked: the platform and the handle's first character.
pub fn mask_handles(h: &SocialHandles) -> SocialHandles {
    SocialHandles(
        h.0.iter()
            .map(|x| SocialHandle {
                platform: x.platform.clone(),
                handle: format!("{}•••", x.handle.chars().next().unwrap_or('•')),
            })
            .collect(),
    )
}

/// Where a social event happened, as a connector may report it; only the city and the country
/// are kept.
#[derive(Debug, Clone, Default, Deserialize, ToSchema)]
pub struct LocationInput {
    /// The city or town.
    #[serde(default)]
    #[schema(format = "city")]
    pub city: Option<String>,
    /// The country, ISO 3166-1 alpha-2.
    #[serde(default)]
    #[schema(format = "country")]
    pub country: Option<String>,
    /// Dropped: coordinates, street and postcode are never stored.
    #[serde(default)]
    #[schema(value_type = Option<f64>)]
    pub latitude: Option<serde_json::Value>,
    /// Dropped.
    #[serde(default)]
    #[schema(value_type = Option<f64>)]
    pub longitude: Option<serde_json::Value>,
    /// Dropped.
    #[serde(default)]
    pub street: Option<String>,
    /// Dropped.
    #[serde(default)]
    pub postal_code: Option<String>,
}

/// A location coarsened to city and country (ABSTRACT: no coordinates, no street).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Coarse {
    /// The city, if given.
    pub city: Option<String>,
    /// The country code, if given.
    pub country: Option<String>,
}

impl Coarse {
    /// `Zurich, CH`.
    pub fn line(&self) -> String {
        [self.city.as_deref(), self.country.as_deref()]
            .into_iter()
            .flatten()
            .collect::<Vec<_>>()
            .join(", ")
    }
}

impl LocationInput {
    /// The city and country; everything finer is dropped.
    pub fn coarsen(&self) -> Result<Option<Coarse>, ValidationError> {
        let city = self
            .city
            .as_deref()
            .filter(|c| !c.trim().is_empty())
            .map(|c| normalize::short_text("location.city", c))
            .transpose()?;
        // A city's name, not a street or coordinates passed in its place.
        if let Some(c) = &city
            && (c.chars().count() > 64
                || !c
                    .chars()
                    .all(|ch| ch.is_alphabetic() || matches!(ch, ' ' | '-' | '\'' | '.')))
        {
            return Err(ValidationError::new(
                "location.city",
                "a city's name: letters, spaces, - ' . (at most 64)",
            ));
        }
        let country = self
            .country
            .as_deref()
            .filter(|c| !c.trim().is_empty())
            .map(|c| normalize::country("location.country", c))
            .transpose()?;
        Ok((city.is_some() || country.is_some()).then_some(Coarse { city, country }))
    }
}

/// The body of `POST /v1/social/events`.
#[derive(Debug, Clone, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct SocialEventInput {
    /// The platform, e.g. `instagram`.
    #[schema(format = "platform")]
    pub platform: String,
    /// The author's handle on it.
    #[schema(format = "handle")]
    pub handle: String,
    /// The platform's id of the post or message (repeats are ignored).
    #[schema(format = "event-id")]
    pub event_id: String,
    /// What was written.
    #[schema(format = "long-text")]
    pub text: String,
    /// Where it is, on the platform: checked, not kept (it names the author's handle).
    #[serde(default)]
    #[schema(format = "http-url")]
    pub url: Option<String>,
    /// When it was written (RFC 3339); now if absent.
    #[serde(default)]
    pub occurred_at: Option<Timestamp>,
    /// Where it was written; kept only as city and country.
    #[serde(default)]
    pub location: Option<LocationInput>,
}

/// A validated social event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewSocialEvent {
    /// Who wrote it, normalised.
    pub author: SocialHandle,
    /// The platform's id.
    pub event_id: String,
    /// What was written.
    pub text: String,
    /// When.
    pub occurred_at: Timestamp,
    /// City and country, if given.
    pub location: Option<Coarse>,
}

impl SocialEventInput {
    /// Validates the event, defaulting the time to `now`.
    pub fn validate(&self, now: Timestamp) -> Result<NewSocialEvent, ValidationError> {
        let event_id = self.event_id.trim();
        if event_id.is_empty() || event_id.chars().count() > 200 {
            return Err(ValidationError::new("event_id", "1 to 200 characters"));
        }
        // Checked, then not kept: a post's address names its author's handle (and may carry
        // a place), which readers of the text need not learn.
        if let Some(u) = self.url.as_deref().map(str::trim).filter(|u| !u.is_empty())
            && !url::Url::parse(u)
                .is_ok_and(|p| matches!(p.scheme(), "https" | "http") && u.len() <= 2048)
        {
            return Err(ValidationError::new(
                "url",
                "an http(s) URL of at most 2048 characters",
            ));
        }
        let occurred_at = self.occurred_at.unwrap_or(now);
        if occurred_at.millis() > now.millis() + 3_600_000 {
            return Err(ValidationError::new("occurred_at", "not in the future"));
        }
        Ok(NewSocialEvent {
            author: SocialHandle {
                platform: platform("platform", &self.platform)?,
                handle: handle("handle", &self.handle)?,
            },
            event_id: event_id.to_owned(),
            text: normalize::long_text("text", &self.text)?,
            occurred_at,
            location: self
                .location
                .as_ref()
                .map(LocationInput::coarsen)
                .transpose()?
                .flatten(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handles_are_normalised_sorted_and_deduplicated() {
        let h = validate_handles(&SocialHandlesInput::Line(
            "Instagram @Anna.Muster; x:anna_m, instagram anna.muster".into(),
        ))
        .unwrap();
        assert_eq!(h.to_text(), "instagram @anna.muster, x @anna_m");
        assert_eq!(mask_handles(&h).to_text(), "instagram @a•••, x @a•••");
        assert!(validate_handles(&SocialHandlesInput::Line("instagram".into())).is_err());
        assert!(validate_handles(&SocialHandlesInput::List(vec![])).is_err());
        let bytes = h.to_bytes();
        assert_eq!(SocialHandles::from_bytes(&bytes), Some(h));
    }

    #[test]
    fn locations_keep_only_city_and_country() {
        let e: SocialEventInput = serde_json::from_value(serde_json::json!({
            "platform": "Instagram", "handle": "@Anna", "event_id": "p1", "text": "Love the new shop!",
            "location": {"city": "Zürich", "country": "ch", "latitude": 47.3769, "longitude": 8.5417,
                         "street": "Bahnhofstrasse 1", "postal_code": "8001"}
        }))
        .unwrap();
        let v = e.validate(Timestamp(0)).unwrap();
        assert_eq!(v.author.index_value(), "instagram\nanna");
        let loc = v.location.unwrap();
        assert_eq!(loc.line(), "Zürich, CH");
    }
}
