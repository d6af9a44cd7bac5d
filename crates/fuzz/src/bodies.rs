//! JSON request bodies, parsed exactly as the API's routes parse them (`steward_api::parse_json`)
//! and then validated as the service validates them.

use serde::de::DeserializeOwned;
use serde_json::Value;
use steward_api::bodies::{LegalHold, LookupRequest, OutletInput, StaffInput, VerifiedFields};
use steward_domain::analytics::{self, QueryInput};
use steward_domain::survey::SurveyInput;
use steward_domain::{
    ConsentInput, CustomerInput, CustomerPatch, InteractionInput, PurchaseInput, PurposeInput,
    PurposePatch, RequestInput, Timestamp,
};

/// What a body came to: accepted, or the error text a client would see (detail and field).
type Outcome = Result<(), String>;

fn parsed<T: DeserializeOwned>(body: &[u8], validate: impl FnOnce(T) -> Outcome) -> Outcome {
    match steward_api::parse_json::<T>(body) {
        Ok(v) => validate(v),
        Err(p) => Err(format!("{} {}", p.detail, p.field.unwrap_or_default())),
    }
}

fn invalid(e: steward_domain::ValidationError) -> String {
    format!("{} {}", e.reason, e.field)
}

/// Parses `body` as the route body `which` selects, and validates it.
fn outcome(which: u8, body: &[u8]) -> Outcome {
    let now = Timestamp(1_790_000_000_000);
    match which % ROUTES {
        0 => parsed(body, |c: CustomerInput| {
            c.validate().map(drop).map_err(invalid)
        }),
        1 => parsed(body, |p: CustomerPatch| {
            p.apply(steward_domain::NewCustomer::default())
                .map(drop)
                .map_err(invalid)
        }),
        2 => parsed(body, |i: InteractionInput| {
            i.validate(now).map(drop).map_err(invalid)
        }),
        3 => parsed(body, |i: PurchaseInput| {
            i.validate(now).map(drop).map_err(invalid)
        }),
        4 => parsed(body, |_: ConsentInput| Ok(())),
        5 => parsed(body, |i: PurposeInput| {
            i.validate().map(drop).map_err(invalid)
        }),
        6 => parsed(body, |p: PurposePatch| {
            let current = steward_domain::purpose::default_purposes()
                .into_iter()
                .next()
                .expect("default purposes");
            p.apply(&current).map(drop).map_err(invalid)
        }),
        7 => parsed(body, |r: RequestInput| {
            r.validate().map_err(invalid)?;
            r.patch().map(drop).map_err(invalid)
        }),
        8 => parsed(body, |_: OutletInput| Ok(())),
        9 => parsed(body, |_: StaffInput| Ok(())),
        10 => parsed(body, |_: LookupRequest| Ok(())),
        11 => parsed(body, |_: VerifiedFields| Ok(())),
        12 => parsed(body, |_: LegalHold| Ok(())),
        13 => parsed(body, |q: QueryInput| {
            // Validated as the service does, then every step that takes the query's values:
            // the canonical body, the rows a fact makes, the public groups.
            let q = q.validate().map_err(invalid)?;
            let _ = q.canonical();
            let values = |k| vec![format!("{k:?}"), "x".to_owned()];
            let _ = q.rows_of(&values, 1);
            analytics::public_domain(&q, &analytics::fixed_values).map_err(invalid)?;
            Ok(())
        }),
        _ => parsed(body, |s: SurveyInput| {
            s.validate().map(drop).map_err(invalid)
        }),
    }
}

/// How many route bodies [`outcome`] knows.
const ROUTES: u8 = 15;

/// Every string value (not key) in `v`.
fn strings<'a>(v: &'a Value, values: &mut Vec<&'a str>, keys: &mut Vec<&'a str>) {
    match v {
        Value::String(s) => values.push(s),
        Value::Array(a) => a.iter().for_each(|x| strings(x, values, keys)),
        Value::Object(o) => o.iter().for_each(|(k, x)| {
            keys.push(k);
            strings(x, values, keys)
        }),
        _ => {}
    }
}

/// A JSON body for one of the API's routes (the first byte picks which): parsing and validation
/// never panic, and an error never repeats a submitted value. A value that shows up in the error
/// text is checked by replacing it and parsing again: if it was the route's own wording (an
/// enumeration's name, say) it is still there; if it was echoed, it is gone.
pub fn json_body(data: &[u8]) {
    let Some((&which, body)) = data.split_first() else {
        return;
    };
    let Err(text) = outcome(which, body) else {
        return;
    };
    let Ok(tree) = serde_json::from_slice::<Value>(body) else {
        return;
    };
    let (mut values, mut keys) = (Vec::new(), Vec::new());
    strings(&tree, &mut values, &mut keys);
    for v in values {
        // Short values and key names legitimately appear (a field is named by its path).
        if v.chars().count() < 6 || keys.iter().any(|k| k.contains(v)) || !text.contains(v) {
            continue;
        }
        let literal = serde_json::to_string(v).expect("a string serializes");
        let fill = if v.contains('Q') { 'Z' } else { 'Q' };
        let other = serde_json::to_string(&fill.to_string().repeat(v.chars().count()))
            .expect("a string serializes");
        let raw = String::from_utf8_lossy(body);
        if !raw.contains(&literal) {
            continue;
        }
        let changed = raw.replace(&literal, &other);
        let again = outcome(which, changed.as_bytes()).err().unwrap_or_default();
        assert!(
            again.contains(v),
            "the error for route body {} repeats a submitted value: {text:?}",
            which % ROUTES
        );
    }
}
