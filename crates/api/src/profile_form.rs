//! The profile as an HTML form, for the console's create and edit pages and the portal's address
//! correction: one input per declared profile field (the address as its four parts), built from
//! [`ProfileField::ALL`] so a new field appears in every form without touching them.

use std::collections::HashMap;

use serde_json::{Map, Value};
use steward_domain::{CustomerView, ProfileField};

/// The parts of an address, as (form suffix and JSON key, label).
pub(crate) const ADDRESS_PARTS: [(&str, &str); 4] = [
    ("street", "Street and number"),
    ("city", "City or town"),
    ("postal_code", "Postal code"),
    ("country", "Country"),
];

/// One input of a profile form.
pub(crate) struct Input {
    /// Its form name (and id): the field's name, or `address_<part>`.
    pub name: String,
    /// Its label.
    pub label: String,
    /// The HTML input type.
    pub kind: &'static str,
    /// The autocomplete hint (WCAG 1.3.5: the purpose of fields about the user).
    pub autocomplete: &'static str,
    /// The value to show: what was typed, or the current value.
    pub value: String,
    /// For an edit, the value the form was first filled with (sent back hidden, so only what
    /// changed is patched).
    pub was: String,
}

fn kind_of(f: ProfileField) -> (&'static str, &'static str) {
    match f {
        ProfileField::Email => ("email", "email"),
        ProfileField::Phone => ("tel", "tel"),
        ProfileField::DateOfBirth => ("date", "bday"),
        ProfileField::Name => ("text", "name"),
        ProfileField::PreferredLanguage => ("text", "language"),
        _ => ("text", "on"),
    }
}

fn address_autocomplete(part: &str) -> &'static str {
    match part {
        "street" => "street-address",
        "city" => "address-level2",
        "postal_code" => "postal-code",
        _ => "country",
    }
}

/// The inputs of a profile form, each filled from `value` (by form name).
fn inputs(value: impl Fn(&str) -> String) -> Vec<Input> {
    let mut out = Vec::new();
    for &f in ProfileField::ALL {
        if f == ProfileField::Address {
            for (part, label) in ADDRESS_PARTS {
                let name = format!("address_{part}");
                out.push(Input {
                    value: value(&name),
                    was: String::new(),
                    name,
                    label: format!("Address: {}", label.to_lowercase()),
                    kind: "text",
                    autocomplete: address_autocomplete(part),
                });
            }
        } else {
            let (kind, autocomplete) = kind_of(f);
            out.push(Input {
                name: f.name().to_owned(),
                label: f.label().to_owned(),
                kind,
                autocomplete,
                value: value(f.name()),
                was: String::new(),
            });
        }
    }
    out
}

/// The inputs filled with what was typed (and, for an edit, what they were first filled with).
pub(crate) fn typed(form: &HashMap<String, String>) -> Vec<Input> {
    let mut v = inputs(|n| form.get(n).cloned().unwrap_or_default());
    for i in &mut v {
        i.was = form
            .get(&format!("was_{}", i.name))
            .cloned()
            .unwrap_or_default();
    }
    v
}

/// The inputs filled with a customer as the reader may see them: masked values are left empty
/// (a mask is not a value to send back).
pub(crate) fn current(view: &CustomerView) -> Vec<Input> {
    let masked = |f: &str| view.decision.masked.iter().any(|m| m == f);
    let texts: HashMap<&str, String> = view
        .texts()
        .into_iter()
        .filter(|(f, _)| !masked(f.name()))
        .filter_map(|(f, v)| Some((f.name(), v?)))
        .collect();
    let address = view.address.as_ref().filter(|_| !masked("address"));
    let mut v = inputs(|n| match n.strip_prefix("address_") {
        Some(part) => address
            .and_then(|a| match part {
                "street" => a.street.clone(),
                "city" => a.city.clone(),
                "postal_code" => a.postal_code.clone(),
                _ => a.country.clone(),
            })
            .unwrap_or_default(),
        None => texts.get(n).cloned().unwrap_or_default(),
    });
    for i in &mut v {
        i.was = i.value.clone();
    }
    v
}

/// The address typed in its four parts, as JSON: `None` if every part is empty.
pub(crate) fn address_json(form: &HashMap<String, String>) -> Option<Value> {
    let parts: Map<String, Value> = ADDRESS_PARTS
        .iter()
        .filter_map(|(part, _)| {
            let v = form.get(&format!("address_{part}"))?.trim();
            (!v.is_empty()).then(|| ((*part).to_owned(), Value::String(v.to_owned())))
        })
        .collect();
    (!parts.is_empty()).then_some(Value::Object(parts))
}

/// The fields typed (empty ones left out), as the JSON body of a create: `{"name": …,
/// "address": {…}, …}`.
pub(crate) fn typed_json(form: &HashMap<String, String>) -> Map<String, Value> {
    let mut out = Map::new();
    for &f in ProfileField::ALL {
        if f == ProfileField::Address {
            if let Some(a) = address_json(form) {
                out.insert("address".into(), a);
            }
        } else if let Some(v) = form
            .get(f.name())
            .map(|v| v.trim())
            .filter(|v| !v.is_empty())
        {
            out.insert(f.name().into(), Value::String(v.to_owned()));
        }
    }
    out
}

/// A merge patch from an edit form: the fields whose typed value differs from what the form
/// was filled with (`was_<name>`, sent back hidden); a field emptied is removed (`null`).
pub(crate) fn patch_json(form: &HashMap<String, String>) -> Map<String, Value> {
    let get = |k: &str| form.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
    let changed = |name: &str| get(name) != get(&format!("was_{name}"));
    let mut out = Map::new();
    for &f in ProfileField::ALL {
        if f == ProfileField::Address {
            if ADDRESS_PARTS
                .iter()
                .any(|(p, _)| changed(&format!("address_{p}")))
            {
                out.insert("address".into(), address_json(form).unwrap_or(Value::Null));
            }
        } else if changed(f.name()) {
            let v = get(f.name());
            out.insert(
                f.name().into(),
                if v.is_empty() {
                    Value::Null
                } else {
                    Value::String(v)
                },
            );
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    use crate::web::form_of as form;

    #[test]
    fn a_typed_form_becomes_a_body_with_a_structured_address() {
        let f = form(&[
            ("name", " Ada "),
            ("email", ""),
            ("address_city", "Zurich"),
            ("address_country", "CH"),
        ]);
        let body = Value::Object(typed_json(&f));
        assert_eq!(
            body,
            serde_json::json!({"name": "Ada", "address": {"city": "Zurich", "country": "CH"}})
        );
        let names: Vec<String> = typed(&f).into_iter().map(|i| i.name).collect();
        assert!(names.contains(&"address_postal_code".to_owned()));
        assert!(names.contains(&"preferred_language".to_owned()));
    }

    #[test]
    fn an_edit_sends_only_what_changed() {
        let f = form(&[
            ("name", "Ada King"),
            ("was_name", "Ada Lovelace"),
            ("email", "ada@example.com"),
            ("was_email", "ada@example.com"),
            ("phone", ""),
            ("was_phone", "+441234567890"),
            ("address_city", "London"),
            ("was_address_city", "Zurich"),
            ("address_street", "1 Main St"),
            ("was_address_street", "1 Main St"),
        ]);
        assert_eq!(
            Value::Object(patch_json(&f)),
            serde_json::json!({
                "name": "Ada King",
                "phone": null,
                "address": {"street": "1 Main St", "city": "London"},
            })
        );
    }
}
