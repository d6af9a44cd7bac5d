//! Customers: the data subjects. Each profile field belongs to one data category.

use serde::{Deserialize, Deserializer, Serialize};

use crate::{CustomerId, DataCategory, OutletId, Timestamp, ValidationError, normalize};

/// A postal address. Every part is optional: collect only what the purpose needs.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Address {
    /// Street and number.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub street: Option<String>,
    /// City or town.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub city: Option<String>,
    /// Postal or ZIP code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub postal_code: Option<String>,
    /// Country name or code.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub country: Option<String>,
}

/// An address as submitted: structured, or a single line (kept as the street).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum AddressInput {
    /// One free-form line.
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

/// The body of `POST /v1/customers`.
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerInput {
    /// Full name (`user.name`).
    #[serde(default)]
    pub name: Option<String>,
    /// E-mail address (`user.contact.email`).
    #[serde(default)]
    pub email: Option<String>,
    /// Phone number in international format (`user.contact.phone_number`).
    #[serde(default)]
    pub phone: Option<String>,
    /// Postal address (`user.contact.address`).
    #[serde(default)]
    pub address: Option<AddressInput>,
    /// Date of birth, `YYYY-MM-DD` (`user.demographic.date_of_birth`).
    #[serde(default)]
    pub date_of_birth: Option<String>,
    /// The outlet that registers the customer.
    #[serde(default)]
    pub outlet_id: Option<OutletId>,
}

/// A validated, normalised customer ready to be sealed and stored.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewCustomer {
    /// Full name.
    pub name: Option<String>,
    /// Normalised e-mail (lower case).
    pub email: Option<String>,
    /// Normalised phone (E.164).
    pub phone: Option<String>,
    /// Postal address.
    pub address: Option<Address>,
    /// Date of birth, `YYYY-MM-DD`.
    pub date_of_birth: Option<String>,
    /// The registering outlet.
    pub outlet_id: Option<OutletId>,
}

impl NewCustomer {
    /// The fields that hold a value (names only, for the audit log).
    pub fn field_names(&self) -> Vec<&'static str> {
        named([
            self.name.is_some(),
            self.email.is_some(),
            self.phone.is_some(),
            self.address.is_some(),
            self.date_of_birth.is_some(),
        ])
    }
}

/// The names of the profile fields flagged in `set` (in [`PROFILE_FIELDS`] order).
fn named(set: [bool; 5]) -> Vec<&'static str> {
    PROFILE_FIELDS
        .into_iter()
        .zip(set)
        .filter_map(|((n, _), s)| s.then_some(n))
        .collect()
}

fn date_of_birth(raw: &str) -> Result<String, ValidationError> {
    let fmt = time::macros::format_description!("[year]-[month]-[day]");
    time::Date::parse(raw.trim(), &fmt)
        .map(|_| raw.trim().to_owned())
        .map_err(|_| ValidationError::new("date_of_birth", "must be a date in the form YYYY-MM-DD"))
}

impl CustomerInput {
    /// Validates and normalises every field; the first error names its field.
    pub fn validate(&self) -> Result<NewCustomer, ValidationError> {
        let c = NewCustomer {
            name: self
                .name
                .as_deref()
                .map(|s| normalize::short_text("name", s))
                .transpose()?,
            email: self
                .email
                .as_deref()
                .map(|s| normalize::email("email", s))
                .transpose()?,
            phone: self
                .phone
                .as_deref()
                .map(|s| normalize::phone("phone", s))
                .transpose()?,
            address: self
                .address
                .as_ref()
                .map(AddressInput::validate)
                .transpose()?,
            date_of_birth: self
                .date_of_birth
                .as_deref()
                .map(date_of_birth)
                .transpose()?,
            outlet_id: self.outlet_id,
        };
        if c.name.is_none() && c.email.is_none() && c.phone.is_none() {
            return Err(ValidationError::new(
                "name",
                "a customer needs at least a name, an email or a phone",
            ));
        }
        Ok(c)
    }
}

/// Distinguishes an absent field (leave unchanged) from `null` (remove), as in JSON Merge Patch.
fn patch_field<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// The body of `PATCH /v1/customers/{id}` (JSON Merge Patch: absent = unchanged, null = remove).
#[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CustomerPatch {
    /// New name, or null to remove.
    #[serde(default, deserialize_with = "patch_field")]
    #[schema(value_type = Option<String>)]
    pub name: Option<Option<String>>,
    /// New e-mail, or null to remove.
    #[serde(default, deserialize_with = "patch_field")]
    #[schema(value_type = Option<String>)]
    pub email: Option<Option<String>>,
    /// New phone, or null to remove.
    #[serde(default, deserialize_with = "patch_field")]
    #[schema(value_type = Option<String>)]
    pub phone: Option<Option<String>>,
    /// New address, or null to remove.
    #[serde(default, deserialize_with = "patch_field")]
    #[schema(value_type = Option<AddressInput>)]
    pub address: Option<Option<AddressInput>>,
    /// New date of birth, or null to remove.
    #[serde(default, deserialize_with = "patch_field")]
    #[schema(value_type = Option<String>)]
    pub date_of_birth: Option<Option<String>>,
}

impl CustomerPatch {
    /// Applies the patch to a current profile, validating each changed field.
    pub fn apply(&self, mut c: NewCustomer) -> Result<NewCustomer, ValidationError> {
        fn set<T>(
            slot: &mut Option<T>,
            p: &Option<Option<String>>,
            f: impl Fn(&str) -> Result<T, ValidationError>,
        ) -> Result<(), ValidationError> {
            match p {
                None => {}
                Some(None) => *slot = None,
                Some(Some(v)) => *slot = Some(f(v)?),
            }
            Ok(())
        }
        set(&mut c.name, &self.name, |s| {
            normalize::short_text("name", s)
        })?;
        set(&mut c.email, &self.email, |s| normalize::email("email", s))?;
        set(&mut c.phone, &self.phone, |s| normalize::phone("phone", s))?;
        set(&mut c.date_of_birth, &self.date_of_birth, date_of_birth)?;
        match &self.address {
            None => {}
            Some(None) => c.address = None,
            Some(Some(a)) => c.address = Some(a.validate()?),
        }
        if c.name.is_none() && c.email.is_none() && c.phone.is_none() {
            return Err(ValidationError::new(
                "name",
                "a customer needs at least a name, an email or a phone",
            ));
        }
        Ok(c)
    }

    /// True when the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.field_names().is_empty()
    }

    /// The fields the patch sets or removes (names only, for the audit log).
    pub fn field_names(&self) -> Vec<&'static str> {
        named([
            self.name.is_some(),
            self.email.is_some(),
            self.phone.is_some(),
            self.address.is_some(),
            self.date_of_birth.is_some(),
        ])
    }
}

/// A customer as read (after unsealing).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct Customer {
    /// The customer's id.
    pub id: CustomerId,
    /// The registering outlet.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub outlet_id: Option<OutletId>,
    /// Full name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// E-mail.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Phone (E.164).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phone: Option<String>,
    /// Postal address.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub address: Option<Address>,
    /// Date of birth.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub date_of_birth: Option<String>,
    /// When the customer was created.
    pub created_at: Timestamp,
    /// When the profile last changed.
    pub updated_at: Timestamp,
}

impl Customer {
    /// The profile part, for applying a patch.
    pub fn profile(&self) -> NewCustomer {
        NewCustomer {
            name: self.name.clone(),
            email: self.email.clone(),
            phone: self.phone.clone(),
            address: self.address.clone(),
            date_of_birth: self.date_of_birth.clone(),
            outlet_id: self.outlet_id,
        }
    }
}

/// The profile fields, each with its data category and storage column.
pub const PROFILE_FIELDS: [(&str, DataCategory); 5] = [
    ("name", DataCategory::Name),
    ("email", DataCategory::Email),
    ("phone", DataCategory::PhoneNumber),
    ("address", DataCategory::Address),
    ("date_of_birth", DataCategory::DateOfBirth),
];

#[cfg(test)]
mod tests {
    use super::*;

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
