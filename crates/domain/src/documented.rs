//! What a checked value looks like, as JSON Schema for the OpenAPI document.
//!
//! A field of an input type names the check it goes through with
//! `#[schema(format = "short-text")]`; the document (`steward-api`'s `openapi.rs`) replaces that
//! name with the schema [`schema`] gives here. Each schema admits only values the check accepts —
//! the tests below generate values from the patterns and run them through the checks — so a
//! client generated from `/openapi.json` never sends what the server refuses. Where a check rests
//! on a registry (language subtags), the schema is the part of it that can be listed.

use serde_json::{Value, json};

use crate::normalize::{MAX_SHORT_CHARS, MAX_TEXT_CHARS};

/// No C0 or C1 control, no DEL and no bidirectional control (`normalize::short_text`).
const SHORT_CHAR: &str =
    r"[^\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]";
/// The same, and not white space: at least one of these makes a text non-blank.
const SHORT_VISIBLE: &str =
    r"[^\s\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]";
/// Long texts may also hold tabs and line breaks (`normalize::long_text`).
const LONG_CHAR: &str = r"[^\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]";
const LONG_VISIBLE: &str = r"[^\s\u0000-\u001f\u007f-\u009f]";

/// An e-mail address `normalize::email` accepts, in ASCII: dot-atoms, a dotted domain of
/// letter-digit-hyphen labels, the local part at most 64 characters.
const EMAIL: &str = r"^(?=[^@]{1,64}@)[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*@[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$";

/// A host name of letter-digit labels joined by single hyphens (a double one may start an
/// IDNA label, which must then decode), the last beginning with a letter (a host that ends in a
/// number is read as an IPv4 address by URL parsers).
const HOST: &str = r"([A-Za-z0-9]{1,20}(-[A-Za-z0-9]{1,20}){0,2}\.){0,4}[A-Za-z][A-Za-z0-9]{0,19}(-[A-Za-z0-9]{1,20}){0,2}";
/// A path without escapes, query or fragment.
const URL_PATH: &str = r"(/[A-Za-z0-9._~-]*)*";

/// ISO 639-1 language codes: every one is a registered BCP 47 language subtag.
const ISO_639_1: &str = "aa ab ae af ak am an ar as av ay az ba be bg bi bm bn bo br bs ca ce ch \
co cr cs cu cv cy da de dv dz ee el en eo es et eu fa ff fi fj fo fr fy ga gd gl gn gu gv ha he \
hi ho hr ht hu hy hz ia id ie ig ii ik io is it iu ja jv ka kg ki kj kk kl km kn ko kr ks ku kv kw \
ky la lb lg li ln lo lt lu lv mg mh mi mk ml mn mr ms mt my na nb nd ne ng nl nn no nr nv ny oc oj \
om or os pa pi pl ps pt qu rm rn ro ru rw sa sc sd se sg si sk sl sm sn so sq sr ss st su sv sw ta \
te tg th ti tk tl tn to tr ts tt tw ty ug uk ur uz ve vi vo wa wo xh yi yo za zh zu";

/// Regions commonly paired with a language (`fr-CH`); all assigned ISO 3166-1 codes.
const REGIONS: &str = "AT AU BE BR CA CH CN DE DK ES FI FR GB HK IE IN IT JP KR MX NL NO NZ PT SE \
SG TW US";

/// A text of at most `max` characters with at least one visible one.
fn text(max: usize, any: &str, visible: &str) -> Value {
    json!({
        "type": "string",
        "minLength": 1,
        "maxLength": max,
        "pattern": format!("^{any}*{visible}{any}*$"),
    })
}

/// The schema of a value that goes through the check named `kind`; `None` for a name that is
/// not one of Steward's.
pub fn schema(kind: &str) -> Option<Value> {
    Some(match kind {
        // Names, streets, subjects, sources: `normalize::short_text`. The limit counts
        // characters after NFKC normalisation, which can lengthen a few compatibility characters.
        "short-text" => text(MAX_SHORT_CHARS, SHORT_CHAR, SHORT_VISIBLE),
        // Notes, messages, notices: `normalize::long_text`.
        "long-text" => text(MAX_TEXT_CHARS, LONG_CHAR, LONG_VISIBLE),
        "email" => json!({"type": "string", "format": "email", "maxLength": 254, "pattern": EMAIL}),
        // International format, as kept (E.164): `normalize::phone` also takes separators.
        "phone" => json!({"type": "string", "pattern": r"^\+[1-9][0-9]{7,14}$"}),
        "language" => {
            let langs = ISO_639_1.split(' ').collect::<Vec<_>>().join("|");
            let regions = REGIONS.split(' ').collect::<Vec<_>>().join("|");
            json!({
                "type": "string",
                "pattern": format!("^({langs})(-({regions}))?$"),
                "description": "A BCP 47 tag registered with IANA; the pattern lists the common ones",
            })
        }
        "country" => json!({"type": "string", "pattern": "^[A-Za-z]{2}$"}),
        "currency" => json!({
            "type": "string",
            "enum": crate::normalize::ISO_4217.split(' ').collect::<Vec<_>>(),
        }),
        "date" => json!({
            "type": "string", "format": "date", "pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$",
        }),
        "purpose-key" => json!({"type": "string", "pattern": crate::PURPOSE_KEY_PATTERN}),
        // Social platforms and handles (`social::platform`, `social::handle`), and a handle
        // list written on one line (`platform handle, platform handle`).
        // An interaction's source system (`InteractionInput::validate`).
        "source" => json!({"type": "string", "pattern": "^[A-Za-z0-9_.:-]{1,64}$"}),
        "platform" => json!({"type": "string", "pattern": "^[A-Za-z0-9._-]{1,32}$"}),
        "handle" => json!({"type": "string", "pattern": "^@?[A-Za-z0-9._]{1,100}$"}),
        "handles-line" => json!({
            "type": "string",
            "pattern": "^[A-Za-z0-9._-]{1,32} @?[A-Za-z0-9._]{1,100}(, [A-Za-z0-9._-]{1,32} @?[A-Za-z0-9._]{1,100}){0,9}$",
        }),
        // A place kept from a social event: a city's name (`LocationInput::coarsen`).
        "city" => json!({"type": "string", "pattern": "^[A-Za-z][A-Za-z '.-]{0,63}$"}),
        // A platform's id of a post: 1 to 200 characters.
        "event-id" => text(200, SHORT_CHAR, SHORT_VISIBLE),
        // A post's address (checked, not kept) and a recipient's notification address.
        "http-url" => json!({
            "type": "string", "format": "uri", "maxLength": 2000,
            "pattern": format!("^https?://{HOST}{URL_PATH}$"),
        }),
        "https-url" => json!({
            "type": "string", "format": "uri", "maxLength": 2000,
            "pattern": format!("^https://{HOST}{URL_PATH}$"),
        }),
        // A purpose of the registry, or one of those that rest on consent: the served document
        // lists the registry's keys in these two components.
        "registered-purpose" => json!({"$ref": "#/components/schemas/PurposeKey"}),
        "consent-purpose" => json!({"$ref": "#/components/schemas/ConsentPurposeKey"}),
        // A fideslang data use under one of the taxonomy's top levels.
        "data-use" => json!({
            "type": "string", "maxLength": 200,
            "pattern": format!("^({})(\\.[a-z0-9_]+)*$", crate::purpose_change::DATA_USE_ROOTS.join("|")),
        }),
        // The roles that may declare a purpose: staff and service roles that read individuals.
        "declaring-roles" => json!({
            "minItems": 1,
            "items": {
                "type": "string",
                "enum": crate::Role::ALL
                    .iter()
                    .filter(|r| !matches!(r, crate::Role::Admin | crate::Role::Monitoring))
                    .map(|r| r.as_str())
                    .collect::<Vec<_>>(),
            },
        }),
        // Template texts (campaign subjects and bodies) without braces: placeholders such as
        // `{{first_name}}` are checked against the purpose, which the document cannot know.
        "template-short" => text(
            MAX_SHORT_CHARS,
            r"[^{}\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]",
            r"[^{}\s\u0000-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]",
        ),
        "template-long" => text(
            MAX_TEXT_CHARS,
            r"[^{}\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f-\u009f]",
            r"[^{}\s\u0000-\u001f\u007f-\u009f]",
        ),
        // The languages the PII detector knows (`pii::Detector::for_language`).
        "pii-language" => {
            json!({"type": "string", "enum": crate::pii::languages().collect::<Vec<_>>()})
        }
        // Profile fields by name (verified fields).
        "profile-fields" => json!({
            "uniqueItems": true,
            "items": {
                "type": "string",
                "enum": crate::ProfileField::ALL.iter().map(|f| f.name()).collect::<Vec<_>>(),
            },
        }),
        // The special categories of data (GDPR Art. 9) a purchase category can reveal.
        "special-category" => json!({
            "type": "string",
            "enum": crate::DataCategory::SPECIAL.iter().map(|c| c.as_str()).collect::<Vec<_>>(),
        }),
        "segment-rules" => segment_rules(),
        "sha256" => json!({"type": "string", "pattern": "^[0-9A-Fa-f]{64}$"}),
        _ => return None,
    })
}

/// A segment's rules (`segment::parse`): one rule — `all`, `any` or `not` over leaves, or one
/// leaf. The server takes nesting to eight levels and 64 rules; the document spells out two
/// levels (generators of JSON Schema do not follow recursive references). Which outlet exists
/// and which bounds lie in order is the data's, not the schema's.
fn segment_rules() -> Value {
    use crate::segment::MAX_DAYS;
    let days = json!({"type": "integer", "minimum": 0, "maximum": MAX_DAYS});
    let count = json!({"type": "integer", "minimum": 0, "maximum": 1_000_000});
    let minor = json!({"type": "integer", "minimum": 0, "maximum": 1_000_000_000_000_000_i64});
    let one = |name: &str, body: Value| {
        json!({"type": "object", "required": [name], "additionalProperties": false,
               "properties": {name: body}})
    };
    let object = |props: Value| json!({"type": "object", "additionalProperties": false, "properties": props});
    let mut spent = object(json!({
        "currency": schema("currency"), "within_days": days,
        "min_minor": minor, "max_minor": minor,
    }));
    spent["required"] = json!(["currency"]);
    spent["anyOf"] = json!([{"required": ["min_minor"]}, {"required": ["max_minor"]}]);
    let mut consent = object(json!({
        "purpose": schema("registered-purpose"),
        "state": {"type": "string", "enum": ["granted", "withdrawn", "none"]},
    }));
    consent["required"] = json!(["purpose", "state"]);
    let leaves = vec![
        one(
            "purchased",
            object(json!({
                "category": text(200, SHORT_CHAR, SHORT_VISIBLE), "within_days": days,
                "min_count": count, "max_count": count,
            })),
        ),
        one("spent", spent),
        one(
            "last_purchase",
            object(json!({"min_days": days, "max_days": days})),
        ),
        one("tier", json!({"type": "string", "enum": crate::TIERS})),
        one("outlet", json!({"type": "string", "format": "uuid"})),
        one(
            "interacted",
            object(json!({
                "channel": {"type": "string", "enum": ["email", "phone", "in_store", "web", "social"]},
                "within_days": days,
            })),
        ),
        one("consent", consent),
        one("language", schema("language").unwrap_or_default()),
    ];
    let leaf = json!({"oneOf": leaves});
    let list = json!({"type": "array", "maxItems": 8, "items": leaf});
    let mut rules = leaves.clone();
    rules.push(one("all", list.clone()));
    rules.push(one("any", list));
    rules.push(one("not", leaf));
    json!({"type": "object", "oneOf": rules})
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::normalize;
    use proptest::prelude::*;

    /// The pattern of `kind`, as Rust's regex syntax reads it (the same `\uXXXX` escapes as
    /// ECMA-262 and Python's `re`, which is what clients and fuzzers read).
    fn pattern(kind: &str) -> String {
        let s = schema(kind).unwrap();
        s["pattern"].as_str().unwrap().to_owned()
    }

    fn declaring_roles() -> Vec<String> {
        let s = schema("declaring-roles").unwrap();
        let roles = s["items"]["enum"].as_array().unwrap();
        roles
            .iter()
            .map(|r| r.as_str().unwrap().to_owned())
            .collect()
    }

    /// Values the document admits for `kind`, generated from its pattern.
    /// (Every pattern is anchored at both ends, so what lies between is the whole value.)
    fn admitted(kind: &str) -> impl Strategy<Value = String> + use<> {
        let p = pattern(kind);
        let body = p
            .strip_prefix('^')
            .and_then(|p| p.strip_suffix('$'))
            .unwrap();
        proptest::string::string_regex(body).unwrap()
    }

    #[test]
    fn every_listed_language_is_registered() {
        let s = schema("language").unwrap();
        let p = s["pattern"].as_str().unwrap();
        let (langs, regions) = (ISO_639_1.split(' '), REGIONS.split(' '));
        for l in langs {
            assert!(p.contains(l));
            assert!(normalize::language("l", l).is_ok(), "{l}");
        }
        for r in regions {
            assert!(
                normalize::language("l", &format!("en-{r}")).is_ok(),
                "en-{r}"
            );
        }
    }

    #[test]
    fn every_listed_currency_is_accepted() {
        for c in schema("currency").unwrap()["enum"].as_array().unwrap() {
            let c = c.as_str().unwrap();
            assert_eq!(normalize::currency("c", c).unwrap(), c);
        }
    }

    #[test]
    fn unknown_kinds_have_no_schema() {
        assert!(schema("uuid").is_none());
        assert!(schema("").is_none());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(400))]

        #[test]
        fn short_texts_the_document_admits_are_accepted(s in admitted("short-text")) {
            prop_assume!(s.chars().count() <= MAX_SHORT_CHARS);
            prop_assert!(normalize::short_text("f", &s).is_ok(), "{s:?}");
        }

        #[test]
        fn long_texts_the_document_admits_are_accepted(s in admitted("long-text")) {
            prop_assert!(normalize::long_text("f", &s).is_ok(), "{s:?}");
        }

        #[test]
        fn emails_the_document_admits_are_accepted(s in r"[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]{1,20}(\.[A-Za-z0-9_-]{1,10}){0,2}@[A-Za-z0-9]([A-Za-z0-9-]{0,10}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,10}[A-Za-z0-9])?){1,3}") {
            // The strategy is the pattern without its length look-ahead (which Rust's regex
            // lacks); it is checked here instead.
            let re = fancy_free_match(&pattern("email"), &s);
            prop_assert!(re, "the document should admit {s:?}");
            prop_assert!(normalize::email("f", &s).is_ok(), "{s:?}");
        }

        #[test]
        fn phones_the_document_admits_are_accepted(s in admitted("phone")) {
            prop_assert_eq!(normalize::phone("f", &s).unwrap(), s);
        }

        #[test]
        fn countries_and_dates_the_document_admits_are_accepted(
            c in admitted("country"), d in admitted("date"),
        ) {
            prop_assert!(normalize::country("f", &c).is_ok());
            // A date of the right shape is a real date only if its month and day exist; the
            // document says `format: date` for that.
            let real = time::Date::parse(&d, time::macros::format_description!("[year]-[month]-[day]")).is_ok();
            prop_assert_eq!(crate::customer::date_of_birth(&d).is_ok(), real);
        }

        #[test]
        fn social_values_the_document_admits_are_accepted(
            p in admitted("platform"), h in admitted("handle"), line in admitted("handles-line"),
            city in admitted("city"), id in admitted("event-id"), url in admitted("http-url"),
            hook in admitted("https-url"),
        ) {
            prop_assert!(crate::social::platform("p", &p).is_ok(), "{p:?}");
            prop_assert!(crate::social::handle("h", &h).is_ok(), "{h:?}");
            let listed = crate::social::validate_handles(&crate::social::SocialHandlesInput::Line(line.clone()));
            prop_assert!(listed.is_ok(), "{line:?}");
            let place = crate::social::LocationInput { city: Some(city.clone()), ..Default::default() };
            prop_assert!(place.coarsen().is_ok(), "{city:?}");
            let event = crate::social::SocialEventInput {
                platform: p, handle: h, event_id: id.clone(), text: "Hello".into(),
                url: Some(url.clone()), occurred_at: None, location: None,
            };
            prop_assert!(event.validate(crate::Timestamp::now()).is_ok(), "{id:?} {url:?}");
            prop_assert!(crate::sharing::webhook_url("w", &hook, false).is_ok(), "{hook:?}");
        }

        #[test]
        fn purposes_the_document_admits_are_accepted(
            k in admitted("purpose-key"), use_ in admitted("data-use"),
            roles in proptest::sample::subsequence(declaring_roles(), 1..=3),
        ) {
            prop_assume!(use_.len() <= 200);
            let input = crate::PurposeInput {
                key: k.clone(),
                lawful_basis: crate::LawfulBasis::Contract,
                data_use: use_.clone(),
                categories: vec![crate::DataCategory::Name],
                retention_days: 30,
                notice_text: "A notice".into(),
                roles: Some(roles.iter().map(|r| r.parse().unwrap()).collect()),
                pii_rule: None,
            };
            prop_assert!(input.validate().is_ok(), "{k} {use_} {roles:?}");
        }
    }

    /// Whether `s` matches the e-mail pattern, its look-ahead (which Rust's regex lacks)
    /// checked by hand.
    fn fancy_free_match(pattern: &str, s: &str) -> bool {
        let rest = pattern.replacen("(?=[^@]{1,64}@)", "", 1);
        let local_ok = s
            .split_once('@')
            .is_some_and(|(l, _)| (1..=64).contains(&l.len()));
        local_ok && regex::Regex::new(&rest).unwrap().is_match(s)
    }
}
