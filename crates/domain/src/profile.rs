//! The profile fields, declared once (issue 16, part 4).
//!
//! One line of [`profile_fields!`] per field gives its name (the wire name, the storage column
//! and the sealing label), its type as stored and as submitted, its data category, its label for
//! people, the CSV headers an import recognises, its validation, its masked form and a demo
//! value. From that line come the submitted, validated, patch, stored and viewed shapes of a
//! customer, and every layer that handles a profile (sealing, columns, views, export, import, the
//! console and the portal, demo data) walks [`ProfileField::ALL`] instead of naming fields. Adding
//! a field is one line here plus a migration pair adding its column; the access policy withholds
//! it from everyone until a policy names its `read_<field>` action (deny by default).

use serde::{Deserialize, Deserializer, Serialize};

use crate::customer::{date_of_birth, validate_address};
use crate::social::{SocialHandles, SocialHandlesInput, mask_handles, validate_handles};
use crate::view::{DecisionSummary, PurchaseSummary, mask_address, mask_email, mask_phone};
use crate::{
    Address, AddressInput, CustomerId, DataCategory, OutletId, Timestamp, ValidationError,
    normalize,
};

/// How a profile value becomes the bytes that are sealed, and back.
pub trait ProfileValue: Sized {
    /// The bytes to seal.
    fn to_bytes(&self) -> Vec<u8>;
    /// The value from opened bytes; `None` if they are not one.
    fn from_bytes(bytes: &[u8]) -> Option<Self>;
}

impl ProfileValue for String {
    fn to_bytes(&self) -> Vec<u8> {
        self.as_bytes().to_vec()
    }
    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        String::from_utf8(bytes.to_vec()).ok()
    }
}

impl ProfileValue for Address {
    fn to_bytes(&self) -> Vec<u8> {
        serde_json::to_vec(self).unwrap_or_default()
    }
    fn from_bytes(bytes: &[u8]) -> Option<Self> {
        serde_json::from_slice(bytes).ok()
    }
}

/// How much of a profile field a view shows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shown {
    /// The value.
    Full,
    /// Its masked form (nothing, for a field that has none).
    Masked,
    /// Nothing.
    Nothing,
}

/// Distinguishes an absent field (leave unchanged) from `null` (remove), as in JSON Merge Patch.
fn patch_field<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

/// A field's declared demo value for demo customer `n` (a function, so that the declaration can
/// give a closure).
fn demo_of<T>(demo: fn(usize) -> Option<T>, n: usize) -> Option<T> {
    demo(n)
}

/// Declares the profile fields; see the module documentation.
macro_rules! profile_fields {
    ($(
        $(#[doc = $doc:literal])*
        $variant:ident $field:ident: $ty:ty, input $input:ty, schema($($schema:tt)*),
        category $category:ident, label $label:literal,
        headers [$($header:literal),* $(,)?],
        validate $validate:expr, mask $mask:expr, demo $demo:expr;
    )*) => {
        /// A profile field.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum ProfileField {
            $($(#[doc = $doc])* $variant,)*
        }

        impl ProfileField {
            /// Every profile field, in declaration order (the order of columns and views).
            pub const ALL: &'static [ProfileField] = &[$(ProfileField::$variant),*];

            /// The wire name, storage column and sealing label, e.g. `date_of_birth`.
            pub const fn name(self) -> &'static str {
                match self { $(ProfileField::$variant => stringify!($field),)* }
            }

            /// The data category.
            pub const fn category(self) -> DataCategory {
                match self { $(ProfileField::$variant => DataCategory::$category,)* }
            }

            /// The field as people read it, e.g. `Date of birth`.
            pub const fn label(self) -> &'static str {
                match self { $(ProfileField::$variant => $label,)* }
            }

            /// The CSV headers an import maps to this field (lower case, letters and digits only).
            pub const fn import_headers(self) -> &'static [&'static str] {
                match self { $(ProfileField::$variant => &[$($header),*],)* }
            }

            /// Whether the field has a masked form (a view may show it masked).
            pub fn maskable(self) -> bool {
                match self {
                    $(ProfileField::$variant => {
                        let mask: Option<fn(&$ty) -> $ty> = $mask;
                        mask.is_some()
                    })*
                }
            }

            /// The field of a wire name.
            pub fn parse(name: &str) -> Option<Self> {
                Self::ALL.iter().copied().find(|f| f.name() == name)
            }
        }

        /// The body of `POST /v1/customers`.
        #[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
        #[serde(deny_unknown_fields)]
        pub struct CustomerInput {
            $($(#[doc = $doc])* #[serde(default)] #[schema($($schema)*)] pub $field: Option<$input>,)*
            /// The outlet that registers the customer.
            #[serde(default)]
            pub outlet_id: Option<OutletId>,
            /// Create the customer even if another holds the same e-mail or phone (otherwise 409
            /// naming the field and the existing customer).
            #[serde(default)]
            pub allow_duplicate: bool,
        }

        impl CustomerInput {
            /// Validates and normalises each field; the first error names its field.
            fn validate_fields(&self) -> Result<NewCustomer, ValidationError> {
                Ok(NewCustomer {
                    $($field: self.$field.as_ref().map($validate).transpose()?,)*
                    outlet_id: self.outlet_id,
                })
            }

            /// Sets a field from one text value (an import's cell), as if submitted so.
            pub fn set_text(&mut self, field: ProfileField, text: String) {
                match field { $(ProfileField::$variant => self.$field = Some(<$input>::from(text)),)* }
            }
        }

        /// A validated, normalised customer ready to be sealed and stored.
        #[derive(Debug, Clone, Default, PartialEq, Eq)]
        pub struct NewCustomer {
            $($(#[doc = $doc])* pub $field: Option<$ty>,)*
            /// The registering outlet.
            pub outlet_id: Option<OutletId>,
        }

        impl NewCustomer {
            /// The fields that hold a value (names only, for the audit log).
            pub fn field_names(&self) -> Vec<&'static str> {
                let mut v = Vec::new();
                $(if self.$field.is_some() { v.push(stringify!($field)); })*
                v
            }

            /// Each field's value as the bytes to seal, in [`ProfileField::ALL`] order.
            pub fn to_bytes(&self) -> Vec<(ProfileField, Option<Vec<u8>>)> {
                vec![$((ProfileField::$variant, self.$field.as_ref().map(ProfileValue::to_bytes)),)*]
            }

            /// Sets a field from opened bytes; `false` if they are not a value of it.
            pub fn set_bytes(&mut self, field: ProfileField, bytes: Option<&[u8]>) -> bool {
                match field {
                    $(ProfileField::$variant => match bytes {
                        None => { self.$field = None; true }
                        Some(b) => match <$ty as ProfileValue>::from_bytes(b) {
                            Some(v) => { self.$field = Some(v); true }
                            None => false,
                        },
                    },)*
                }
            }

            /// The customer as it would be submitted (validating it again gives it back).
            pub fn as_input(&self) -> CustomerInput {
                CustomerInput {
                    $($field: self.$field.clone().map(<$input>::from),)*
                    outlet_id: self.outlet_id,
                    allow_duplicate: false,
                }
            }

            /// Gives each field that has no value the declared demo value of demo customer `n`
            /// (the demo generator sets the correlated ones, such as an e-mail made from the name).
            pub fn fill_demo(&mut self, n: usize) {
                $(if self.$field.is_none() {
                    self.$field = demo_of::<$ty>($demo, n);
                })*
            }
        }

        /// The body of `PATCH /v1/customers/{id}` (JSON Merge Patch: absent = unchanged, null =
        /// remove).
        #[derive(Debug, Clone, Default, Deserialize, utoipa::ToSchema)]
        #[serde(deny_unknown_fields)]
        pub struct CustomerPatch {
            $(
                $(#[doc = $doc])*
                #[serde(default, deserialize_with = "patch_field")]
                #[schema(value_type = Option<$input>, $($schema)*)]
                pub $field: Option<Option<$input>>,
            )*
        }

        impl CustomerPatch {
            /// Applies the changed fields to `c`, validating each.
            fn apply_fields(&self, c: &mut NewCustomer) -> Result<(), ValidationError> {
                $(match &self.$field {
                    None => {}
                    Some(None) => c.$field = None,
                    Some(Some(v)) => c.$field = Some(($validate)(v)?),
                })*
                Ok(())
            }

            /// The fields the patch sets or removes (names only, for the audit log).
            pub fn field_names(&self) -> Vec<&'static str> {
                let mut v = Vec::new();
                $(if self.$field.is_some() { v.push(stringify!($field)); })*
                v
            }

            /// A patch setting `field` to one text value, as if submitted so.
            pub fn set_text(field: ProfileField, text: Option<String>) -> Self {
                let mut p = CustomerPatch::default();
                match field { $(ProfileField::$variant => p.$field = Some(text.map(<$input>::from)),)* }
                p
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
            $(
                $(#[doc = $doc])*
                #[serde(skip_serializing_if = "Option::is_none")]
                pub $field: Option<$ty>,
            )*
            /// When the customer was created.
            pub created_at: Timestamp,
            /// When the profile last changed.
            pub updated_at: Timestamp,
        }

        impl Customer {
            /// The profile part, for applying a patch.
            pub fn profile(&self) -> NewCustomer {
                NewCustomer {
                    $($field: self.$field.clone(),)*
                    outlet_id: self.outlet_id,
                }
            }

            /// A customer of `id` with this profile.
            pub fn with_profile(
                id: CustomerId,
                p: NewCustomer,
                created_at: Timestamp,
                updated_at: Timestamp,
            ) -> Self {
                Customer {
                    id,
                    outlet_id: p.outlet_id,
                    $($field: p.$field,)*
                    created_at,
                    updated_at,
                }
            }

            /// Each field that holds a value, as one line of text for people (an address on one
            /// line), in [`ProfileField::ALL`] order.
            pub fn texts(&self) -> Vec<(ProfileField, Option<String>)> {
                vec![$((ProfileField::$variant, self.$field.as_ref().map(ToText::to_text)),)*]
            }

            /// Each field that holds a value, as JSON (an address as its object), in
            /// [`ProfileField::ALL`] order: what an export holds.
            pub fn json_values(&self) -> Vec<(ProfileField, serde_json::Value)> {
                let mut v = Vec::new();
                $(if let Some(x) = &self.$field {
                    v.push((ProfileField::$variant, serde_json::to_value(x).unwrap_or_default()));
                })*
                v
            }

            /// The view of this customer that shows each field as `shown` says: masked with the
            /// field's own mask, or nothing where it has none. Pure, so that "no view carries what
            /// its decision withheld or masked" is testable.
            pub fn shaped(
                self,
                shown: impl Fn(ProfileField) -> Shown,
                outlet_shown: bool,
                purchase_summary: Option<PurchaseSummary>,
                decision: DecisionSummary,
            ) -> CustomerView {
                CustomerView {
                    id: self.id,
                    outlet_id: self.outlet_id.filter(|_| outlet_shown),
                    $($field: match shown(ProfileField::$variant) {
                        Shown::Full => self.$field,
                        Shown::Masked => {
                            let mask: Option<fn(&$ty) -> $ty> = $mask;
                            mask.and_then(|m| self.$field.as_ref().map(m))
                        }
                        Shown::Nothing => None,
                    },)*
                    purchase_summary,
                    created_at: self.created_at,
                    updated_at: self.updated_at,
                    decision,
                }
            }
        }

        /// A customer as a decided read returns them.
        #[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
        pub struct CustomerView {
            /// Id.
            pub id: CustomerId,
            /// Registering outlet (shown only with the purchase history).
            #[serde(skip_serializing_if = "Option::is_none")]
            pub outlet_id: Option<OutletId>,
            $(
                $(#[doc = $doc])*
                #[serde(skip_serializing_if = "Option::is_none")]
                pub $field: Option<$ty>,
            )*
            /// Derived purchase facts, when the history itself is abstracted.
            #[serde(skip_serializing_if = "Option::is_none")]
            pub purchase_summary: Option<PurchaseSummary>,
            /// Created.
            pub created_at: Timestamp,
            /// Last changed.
            pub updated_at: Timestamp,
            /// What the policy decided.
            pub decision: DecisionSummary,
        }

        impl CustomerView {
            /// Each field the view holds, as one line of text for people, in
            /// [`ProfileField::ALL`] order.
            pub fn texts(&self) -> Vec<(ProfileField, Option<String>)> {
                vec![$((ProfileField::$variant, self.$field.as_ref().map(ToText::to_text)),)*]
            }
        }
    };
}

/// A profile value as one line of text for people.
pub trait ToText {
    /// The value on one line.
    fn to_text(&self) -> String;
}

impl ToText for String {
    fn to_text(&self) -> String {
        self.clone()
    }
}

impl ToText for Address {
    fn to_text(&self) -> String {
        self.one_line()
    }
}

impl From<Address> for AddressInput {
    /// An address in parts.
    fn from(parts: Address) -> Self {
        AddressInput::Parts(parts)
    }
}

impl From<String> for AddressInput {
    /// An address typed on one line.
    fn from(line: String) -> Self {
        AddressInput::Line(line)
    }
}

/// Demo preferred languages: the demo outlets' and their customers'.
const DEMO_LANGUAGES: [&str; 5] = ["en-GB", "fr-CH", "de-CH", "it-CH", "en-SG"];

profile_fields! {
    /// Full name (`user.name`).
    Name name: String, input String, schema(format = "short-text"),
        category Name, label "Name",
        headers ["name", "fullname", "contactname", "customername"],
        validate |s: &String| normalize::short_text("name", s),
        mask None, demo |_| None;
    /// E-mail address (`user.contact.email`), lower case.
    Email email: String, input String, schema(format = "email"),
        category Email, label "E-mail",
        headers ["email", "emailaddress", "email1", "primaryemail", "workemail", "emailaddress1"],
        validate |s: &String| normalize::email("email", s),
        mask Some(|e: &String| mask_email(e)), demo |_| None;
    /// Phone number (`user.contact.phone_number`): submitted in international format, kept in
    /// E.164.
    Phone phone: String, input String, schema(format = "phone"),
        category PhoneNumber, label "Phone",
        headers ["phone", "phonenumber", "mobile", "mobilephone", "mobilenumber", "telephone",
                 "tel", "primaryphone", "phone1"],
        validate |s: &String| normalize::phone("phone", s),
        mask Some(|p: &String| mask_phone(p)), demo |_| None;
    /// Postal address (`user.contact.address`): structured, or one line (kept as the street).
    Address address: Address, input AddressInput, schema(),
        category Address, label "Address",
        headers [],
        validate validate_address,
        mask Some(mask_address), demo |_| None;
    /// Date of birth, `YYYY-MM-DD` (`user.demographic.date_of_birth`).
    DateOfBirth date_of_birth: String, input String, schema(format = "date"),
        category DateOfBirth, label "Date of birth",
        headers ["dateofbirth", "birthdate", "birthday", "dob"],
        validate |s: &String| date_of_birth(s),
        mask None, demo |_| None;
    /// Preferred language, a BCP 47 tag such as `fr-CH` (`user.demographic.language`).
    PreferredLanguage preferred_language: String, input String, schema(format = "language"),
        category Language, label "Preferred language",
        headers ["language", "preferredlanguage", "languagecode", "locale"],
        validate |s: &String| normalize::language("preferred_language", s),
        mask None, demo |n| Some(DEMO_LANGUAGES[n % DEMO_LANGUAGES.len()].to_owned());
    /// Handles on social platforms (`user.social`): `[{"platform": "instagram", "handle":
    /// "@anna"}]`, each blind-indexed so a social event finds its customer (issue 23).
    SocialHandles social_handles: SocialHandles, input SocialHandlesInput, schema(),
        category Social, label "Social handles",
        headers ["socialhandles", "social", "socialmedia"],
        validate validate_handles,
        mask Some(mask_handles), demo |_| None;
}

impl CustomerInput {
    /// Validates and normalises every field; the first error names its field.
    pub fn validate(&self) -> Result<NewCustomer, ValidationError> {
        let c = self.validate_fields()?;
        needs_identity(&c)?;
        Ok(c)
    }
}

impl CustomerPatch {
    /// Applies the patch to a current profile, validating each changed field.
    pub fn apply(&self, mut c: NewCustomer) -> Result<NewCustomer, ValidationError> {
        self.apply_fields(&mut c)?;
        needs_identity(&c)?;
        Ok(c)
    }

    /// True when the patch changes nothing.
    pub fn is_empty(&self) -> bool {
        self.field_names().is_empty()
    }
}

/// The profile fields' names, for messages: `name, email, …`.
pub fn names() -> String {
    ProfileField::ALL
        .iter()
        .map(|f| f.name())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A customer is someone: a name, an e-mail or a phone.
fn needs_identity(c: &NewCustomer) -> Result<(), ValidationError> {
    if c.name.is_none() && c.email.is_none() && c.phone.is_none() {
        return Err(ValidationError::new(
            "name",
            "a customer needs at least a name, an email or a phone",
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> NewCustomer {
        let input: CustomerInput = serde_json::from_value(serde_json::json!({
            "name": "Ada Lovelace", "email": "Ada@Example.com", "phone": "+44 20 7946 0001",
            "address": {"street": "1 Demo Lane", "city": "London", "country": "GB"},
            "date_of_birth": "1815-12-10", "preferred_language": "en-gb",
            "social_handles": [{"platform": "Instagram", "handle": "@Ada.Lovelace"}],
        }))
        .unwrap();
        input.validate().unwrap()
    }

    /// Every declared field survives sealing's encoding and back, and is named in order.
    #[test]
    fn every_field_round_trips_through_its_bytes() {
        let c = full();
        let names: Vec<&str> = ProfileField::ALL.iter().map(|f| f.name()).collect();
        assert_eq!(c.field_names(), names);
        let mut back = NewCustomer::default();
        for (f, bytes) in c.to_bytes() {
            assert!(bytes.is_some(), "{f:?}");
            assert!(back.set_bytes(f, bytes.as_deref()), "{f:?}");
        }
        back.outlet_id = c.outlet_id;
        assert_eq!(back, c);
        assert_eq!(c.as_input().validate().unwrap(), c);
        assert!(!back.set_bytes(ProfileField::Address, Some(b"not json")));
    }

    /// A patch of one field changes that field only, validated as submitted; the view shows
    /// each field as told, masked by its own mask or not at all.
    #[test]
    fn patches_and_views_follow_the_declaration() {
        let c = full();
        let p = CustomerPatch::set_text(ProfileField::PreferredLanguage, Some("fr-ch".into()));
        assert_eq!(p.field_names(), vec!["preferred_language"]);
        let next = p.apply(c.clone()).unwrap();
        assert_eq!(next.preferred_language.as_deref(), Some("fr-CH"));
        assert_eq!(next.name, c.name);
        let bad = CustomerPatch::set_text(ProfileField::PreferredLanguage, Some("elvish".into()));
        assert_eq!(
            bad.apply(c.clone()).unwrap_err().field,
            "preferred_language"
        );

        let customer = Customer::with_profile(CustomerId::new(), c, Timestamp(0), Timestamp(0));
        let v = customer.clone().shaped(
            |f| match f {
                ProfileField::Email => Shown::Masked,
                ProfileField::PreferredLanguage => Shown::Masked,
                ProfileField::Name => Shown::Full,
                _ => Shown::Nothing,
            },
            false,
            None,
            DecisionSummary::default(),
        );
        assert_eq!(v.email.as_deref(), Some("a•••@example.com"));
        // No mask is declared for the language: masked means not shown.
        assert_eq!(v.preferred_language, None);
        assert_eq!(v.name, customer.name);
        assert_eq!((v.phone, v.address, v.outlet_id), (None, None, None));
    }
}
