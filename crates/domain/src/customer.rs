//! Customers: the data subjects. Each profile field belongs to one data category; the fields are
//! declared once, in [`crate::profile`].

use serde::{Deserialize, Serialize};

use crate::{ValidationError, normalize};

/// A postal address. Every part is optional: collect only what the purpose needs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    /// Street and number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = "short-text", nullable = false)]
    pub street: Option<String>,
    /// City or town.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = "short-text", nullable = false)]
    pub city: Option<String>,
    /// Postal or ZIP code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = "short-text", nullable = false)]
    pub postal_code: Option<String>,
    /// Country name or code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schema(format = "short-text", nullable = false)]
    pub country: Option<String>,
}

/// An address as submitted: structured, or a single line (kept as the street).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum AddressInput {
    /// One free-form line.
    #[schema(format = "short-text")]
    Line(String),
    /// Structured parts.
    Parts(Address),
}

impl Address {
    /// The address on one line: street, postal code, city, country (the parts present).
    pub fn one_line(&self) -> String {
        [&self.street, &self.postal_code, &self.city, &self.country]
            .into_iter()
            .flatten()
            .cloned()
            .collect::<Vec<_>>()
            .join(", ")
    }
}

/// Validates an address as submitted: each part a short text, at least one part.
pub(crate) fn validate_address(input: &AddressInput) -> Result<Address, ValidationError> {
    input.validate()
}

impl AddressInput {
    fn validate(&self) -> Result<Address, ValidationError> {
        let parts = match self {
            AddressInput::Line(line) => Address {
                street: Some(line.clone()),
                ..Address::default()
            },
            AddressInput::Parts(a) => a.clone(),
        };
        let part =
            |field: &'static str, v: &Option<String>| -> Result<Option<String>, ValidationError> {
                v.as_deref()
                    .map(|s| normalize::short_text(field, s))
                    .transpose()
            };
        let a = Address {
            street: part("address.street", &parts.street)?,
            city: part("address.city", &parts.city)?,
            postal_code: part("address.postal_code", &parts.postal_code)?,
            country: part("address.country", &parts.country)?,
        };
        if a == Address::default() {
            return Err(ValidationError::new(
                "address",
                "must have at least one part",
            ));
        }
        Ok(a)
    }
}

/// A date of birth, `YYYY-MM-DD`, as given (trimmed).
pub(crate) fn date_of_birth(raw: &str) -> Result<String, ValidationError> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(raw.trim(), &fmt)
        .map(|_| raw.trim().to_owned())
        .map_err(|_| ValidationError::new("date_of_birth", "must be a date in the form YYYY-MM-DD"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{CustomerInput, CustomerPatch, NewCustomer};

    #[test]
    fn validates_and_normalises() {
        let input = CustomerInput {
            name: Some(" Jane Doe ".into()),
            email: Some("Jane@Example.com".into()),
            phone: Some("+44 20 7946 0958".into()),
            address: Some(AddressInput::Line("1 High St".into())),
            ..Default::default()
        };
        let c = input.validate().unwrap();
        assert_eq!(c.name.as_deref(), Some("Jane Doe"));
        assert_eq!(c.email.as_deref(), Some("jane@example.com"));
        assert_eq!(c.phone.as_deref(), Some("+442079460958"));
        assert_eq!(c.address.unwrap().street.as_deref(), Some("1 High St"));
    }

    #[test]
    fn names_the_field() {
        let e = CustomerInput {
            name: Some("x".into()),
            email: Some("nope".into()),
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.field, "email");
        let e = CustomerInput::default().validate().unwrap_err();
        assert_eq!(e.field, "name");
        let e = CustomerInput {
            name: Some("x".into()),
            date_of_birth: Some("1990-13-01".into()),
            ..Default::default()
        }
        .validate()
        .unwrap_err();
        assert_eq!(e.field, "date_of_birth");
    }

    #[test]
    fn patch_distinguishes_null_from_absent() {
        let p: CustomerPatch = serde_json::from_str(r#"{"email": null, "name": "New"}"#).unwrap();
        assert!(p.phone.is_none() && !p.is_empty());
        let base = NewCustomer {
            name: Some("Old".into()),
            email: Some("a@b.co".into()),
            phone: Some("+4420794609".into()),
            ..Default::default()
        };
        let c = p.apply(base).unwrap();
        assert_eq!(c.name.as_deref(), Some("New"));
        assert_eq!(c.email, None);
        assert_eq!(c.phone.as_deref(), Some("+4420794609"));
    }
}
