//! The OpenAPI 3.1 document, generated from the handlers' annotations.

use std::sync::OnceLock;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use crate::routes::{self, PageOf};

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, doc: &mut utoipa::openapi::OpenApi) {
        if let Some(c) = doc.components.as_mut() {
            c.add_security_scheme(
                "bearer",
                SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
            );
        }
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "Steward", description = "A privacy-by-design CRM core. Every read of personal data declares `?purpose=`."),
    components(schemas(crate::Problem, PageOf<steward_domain::CustomerView>)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

/// Every operation object of the document, to change in place.
fn operations_mut(
    doc: &mut serde_json::Value,
) -> impl Iterator<Item = &mut serde_json::Map<String, serde_json::Value>> {
    doc.get_mut("paths")
        .and_then(|p| p.as_object_mut())
        .into_iter()
        .flat_map(|paths| paths.values_mut())
        .filter_map(|i| i.as_object_mut())
        .flat_map(|item| item.values_mut())
        .filter_map(|o| o.as_object_mut())
}

/// The media type of every error (RFC 9457).
const PROBLEM_JSON: &str = "application/problem+json";

/// Every error is `application/problem+json`, whatever its status: the handlers' annotations say
/// `body = Problem`, which utoipa documents as `application/json`, so the document is corrected
/// here, and each operation gets a `default` response for the statuses any request can meet
/// (401, 408, 413, 415, 429, …). Found by schemathesis's content-type check.
fn problems_as_problem_json(doc: &mut serde_json::Value) {
    let problem = serde_json::json!({"$ref": "#/components/schemas/Problem"});
    for op in operations_mut(doc) {
        let Some(responses) = op.get_mut("responses").and_then(|r| r.as_object_mut()) else {
            continue;
        };
        for response in responses.values_mut() {
            let Some(content) = response.get_mut("content").and_then(|c| c.as_object_mut()) else {
                continue;
            };
            let is_problem = content
                .get("application/json")
                .is_some_and(|c| c.get("schema") == Some(&problem));
            if is_problem && let Some(c) = content.remove("application/json") {
                content.insert(PROBLEM_JSON.into(), c);
            }
        }
        responses.entry("default").or_insert_with(|| {
            serde_json::json!({
                "description": "An error, as RFC 9457 problem details",
                "content": {PROBLEM_JSON: {"schema": problem}},
            })
        });
    }
}

/// Every query parameter checked by a shared extractor gets the schema of its check
/// ([`crate::extract::query_parameter_schema`]), whatever the handler's annotation said.
fn shared_query_parameters(doc: &mut serde_json::Value) {
    for op in operations_mut(doc) {
        let Some(params) = op.get_mut("parameters").and_then(|p| p.as_array_mut()) else {
            continue;
        };
        for param in params.iter_mut().filter_map(|p| p.as_object_mut()) {
            if param.get("in").and_then(|i| i.as_str()) != Some("query") {
                continue;
            }
            let name = param.get("name").and_then(|n| n.as_str()).unwrap_or("");
            if let Some(schema) = crate::extract::query_parameter_schema(name) {
                param.insert("schema".into(), schema);
            }
        }
    }
}

/// Replaces each Steward check named in a `format` (`#[schema(format = "short-text")]` on a
/// field) with the schema of that check ([`steward_domain::documented::schema`]), everywhere in
/// the document. A nullable field stays nullable.
fn documented_formats(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::Object(map) => {
            // A check of a whole list (`Vec<String>` with `format = "profile-fields"`) is
            // written by utoipa on the list's items: it belongs to the list.
            let of_list = map
                .get("items")
                .and_then(|i| i.get("format"))
                .and_then(|f| f.as_str())
                .and_then(steward_domain::documented::schema)
                .filter(|c| c.get("items").is_some());
            if let Some(serde_json::Value::Object(check)) = of_list {
                map.extend(check);
            }
            let check = map
                .get("format")
                .and_then(|f| f.as_str())
                .and_then(steward_domain::documented::schema);
            if let Some(serde_json::Value::Object(check)) = check {
                map.remove("format");
                let nullable = map
                    .get("type")
                    .and_then(|t| t.as_array())
                    .is_some_and(|t| t.iter().any(|t| t == "null"));
                if check.contains_key("$ref") {
                    // A reference replaces the type (null stays allowed where it was).
                    map.remove("type");
                    let target = serde_json::Value::Object(check);
                    if nullable {
                        map.insert(
                            "oneOf".into(),
                            serde_json::json!([{"type": "null"}, target]),
                        );
                    } else if let serde_json::Value::Object(t) = target {
                        map.extend(t);
                    }
                    return;
                }
                for (k, mut v) in check {
                    if k == "enum"
                        && nullable
                        && let Some(values) = v.as_array_mut()
                    {
                        values.push(serde_json::Value::Null);
                    }
                    // What the field itself states (a tighter `maxLength`, its description)
                    // stands; the check adds the rest.
                    if k == "type" || map.contains_key(&k) {
                        continue;
                    }
                    map.insert(k, v);
                }
            }
            map.values_mut().for_each(documented_formats);
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(documented_formats),
        _ => {}
    }
}

/// Rules across fields that the derived schemas cannot state, each the check of the type it
/// names: a new customer needs a name, an e-mail or a phone (`CustomerInput::validate`); a lookup
/// takes exactly one of e-mail or phone (`customers::lookup`); a verification a code or an
/// in-person check (`requests::verify`); a list of handles one to ten (`social::validate_handles`);
/// an agreement's purposes are registered ones.
fn cross_field_rules(doc: &mut serde_json::Value) {
    use serde_json::json;
    let one = |field: &str, others: &[&str]| {
        let mut props = serde_json::Map::new();
        props.insert(field.into(), json!({"type": "string"}));
        for o in others {
            props.insert((*o).into(), json!({"type": "null"}));
        }
        json!({"required": [field], "properties": props})
    };
    let declaring = steward_domain::documented::schema("declaring-roles")
        .and_then(|s| s.get("items").cloned())
        .unwrap_or_default();
    let rules = [
        (
            "/CustomerInput/anyOf",
            json!([one("name", &[]), one("email", &[]), one("phone", &[])]),
        ),
        (
            "/LookupRequest/oneOf",
            json!([one("email", &["phone"]), one("phone", &["email"])]),
        ),
        (
            "/Verification/oneOf",
            json!([
                one("code", &["identity_verified"]),
                {"required": ["identity_verified"],
                 "properties": {"identity_verified": {"const": "in_person"}, "code": {"type": "null"}}},
            ]),
        ),
        // Free-text questions are refused (`SurveyInput::validate`) and never stored: the
        // document offers choices (two to ten, distinct) and scales.
        ("/Question/oneOf", {
            let text = |max: usize| {
                json!({
                    "type": "string", "minLength": 1, "maxLength": max,
                    "pattern": "^[^\\s\\u0000-\\u001f\\u007f-\\u009f]([^\\u0000-\\u001f\\u007f-\\u009f]*[^\\s\\u0000-\\u001f\\u007f-\\u009f])?$",
                })
            };
            json!([
                {"type": "object", "required": ["kind", "text", "choices"], "additionalProperties": false,
                 "properties": {"kind": {"const": "choice"}, "text": text(300),
                     "choices": {"type": "array", "minItems": 2, "maxItems": 10, "uniqueItems": true, "items": text(100)}}},
                {"type": "object", "required": ["kind", "text"], "additionalProperties": false,
                 "properties": {"kind": {"const": "scale"}, "text": text(300)}},
            ])
        }),
        // What can be counted, grouped and filtered by what (`QueryInput::validate`): customers
        // by outlet, tier and segment; purchases by anything but channel, summed within bounds;
        // interactions by anything but category.
        ("/QueryInput/oneOf", {
            let keys = |not: &[&str]| {
                let all = ["outlet", "category", "month", "channel", "tier", "segment"];
                json!(all.iter().filter(|k| !not.contains(k)).collect::<Vec<_>>())
            };
            let of = |of: &str, not: &[&str], extra: serde_json::Value| {
                let mut filter = serde_json::Map::new();
                for k in not {
                    filter.insert((*k).into(), json!({"type": "null"}));
                }
                json!({"allOf": [{
                    "properties": {
                        "of": {"const": of},
                        "group_by": {"uniqueItems": true, "items": {"enum": keys(not)}},
                        "filter": {"properties": filter},
                    },
                }, extra]})
            };
            let count_only = json!({"properties": {
                "metric": {"const": "count"}, "bounds": {"type": "null"}, "currency": {"type": "null"},
            }});
            json!([
                of(
                    "customers",
                    &["category", "month", "channel"],
                    count_only.clone()
                ),
                of("interactions", &["category"], count_only),
                of(
                    "purchases",
                    &["channel"],
                    json!({"anyOf": [
                        {"properties": {"metric": {"const": "count"}, "bounds": {"type": "null"}}},
                        {"required": ["bounds"], "properties": {"metric": {"const": "sum"}, "bounds": {"type": "array"}}},
                    ]})
                ),
            ])
        }),
        // A segment's grammar (`steward_domain::documented`, beside the parser's rules).
        (
            "/SegmentInput/properties/rules/oneOf",
            steward_domain::documented::schema("segment-rules")
                .and_then(|s| s.get("oneOf").cloned())
                .unwrap_or_default(),
        ),
        // A pseudonymous agreement names no direct identifier (`AgreementInput::validate`).
        (
            "/AgreementInput/if",
            json!({"required": ["identity"], "properties": {"identity": {"const": "pseudonymous"}}}),
        ),
        (
            "/AgreementInput/then",
            json!({"properties": {"categories": {"items": {"not": {"enum":
            steward_domain::sharing::DIRECT_IDENTIFIERS.iter().map(|c| c.as_str()).collect::<Vec<_>>()}}}}}),
        ),
        // A patch names at least one field (utoipa's `min_properties` writes `maxProperties`).
        ("/CustomerPatch/minProperties", json!(1)),
        ("/PurposePatch/minProperties", json!(1)),
        ("/StaffPatch/minProperties", json!(1)),
        ("/Address/minProperties", json!(1)),
        // Staff record consent as given in the shop or through an integration; the portal, GPC
        // and rights requests record their own (`Vault::record_consent`).
        (
            "/ConsentInput/properties/source",
            json!({"type": "string", "enum": ["in_store", "api"]}),
        ),
        ("/PurposeInput/properties/roles/items", declaring.clone()),
        ("/PurposeInput/properties/roles/minItems", json!(1)),
        ("/PurposePatch/properties/roles/items", declaring.clone()),
        ("/PurposePatch/properties/roles/minItems", json!(1)),
        // Sum bounds lie within ±10^12 (`analytics::MAX_BOUND`).
        (
            "/QueryInput/properties/bounds/items",
            json!({
                "type": "integer",
                "minimum": -steward_domain::analytics::MAX_BOUND,
                "maximum": steward_domain::analytics::MAX_BOUND,
            }),
        ),
        ("/SocialHandlesInput/oneOf/0/minItems", json!(1)),
        ("/SocialHandlesInput/oneOf/0/maxItems", json!(10)),
        (
            "/AgreementInput/properties/purposes/items",
            json!({"$ref": "#/components/schemas/PurposeKey"}),
        ),
    ];
    for (pointer, value) in rules {
        let (parent, key) = pointer.rsplit_once('/').unwrap_or(("", pointer));
        if let Some(target) = doc
            .pointer_mut(&format!("/components/schemas{parent}"))
            .and_then(|t| t.as_object_mut())
        {
            target.insert(key.to_owned(), value);
        }
    }
}

/// Explicit OpenAPI links, so that a client (and a stateful fuzzer) can follow an operation's
/// result to the operations on what it made: every `POST` on a collection that answers with an
/// `id` links to every operation under `{collection}/{id}`; a customer lookup links to its
/// first match's; a new purpose to its change.
fn links(doc: &mut serde_json::Value) {
    let Some(paths) = doc.get("paths").and_then(|p| p.as_object()) else {
        return;
    };
    let mut found: Vec<(String, String, String, String)> = Vec::new();
    let mut link = |from: &str, status: &str, to: &str, param: &str, expr: &str| {
        let Some(item) = paths.get(to).and_then(|i| i.as_object()) else {
            return;
        };
        for (method, op) in item {
            if let Some(id) = op.get("operationId").and_then(|i| i.as_str()) {
                found.push((
                    from.into(),
                    status.into(),
                    id.into(),
                    format!("{method}|{param}|{expr}"),
                ));
            }
        }
    };
    for (path, item) in paths {
        let Some(post) = item.get("post") else {
            continue;
        };
        let answers_id = |status: &str| {
            post.pointer(&format!(
                "/responses/{status}/content/application~1json/schema/$ref"
            ))
            .and_then(|r| r.as_str())
            .is_some_and(|r| r.ends_with("/Created") || r.ends_with("/RequestView"))
        };
        let Some(status) = ["201", "200"].into_iter().find(|s| answers_id(s)) else {
            continue;
        };
        let prefix = format!("{path}/{{id}}");
        for to in paths
            .keys()
            .filter(|p| *p == &prefix || p.starts_with(&format!("{prefix}/")))
        {
            link(path, status, to, "path.id", "$response.body#/id");
        }
    }
    for to in paths.keys().filter(|p| p.starts_with("/v1/customers/{id}")) {
        link(
            "/v1/customers/lookup",
            "200",
            to,
            "path.id",
            "$response.body#/items/0/id",
        );
    }
    link(
        "/v1/purposes",
        "201",
        "/v1/purposes/{key}",
        "path.key",
        "$response.body#/key",
    );
    for (from, status, target, how) in found {
        let mut parts = how.splitn(3, '|');
        let (Some(method), Some(param), Some(expr)) = (parts.next(), parts.next(), parts.next())
        else {
            continue;
        };
        let pointer = format!(
            "/paths/{}/post/responses/{status}",
            from.replace('~', "~0").replace('/', "~1")
        );
        let Some(response) = doc.pointer_mut(&pointer).and_then(|r| r.as_object_mut()) else {
            continue;
        };
        let links = response
            .entry("links")
            .or_insert_with(|| serde_json::json!({}));
        if let Some(links) = links.as_object_mut() {
            links.insert(
                target.clone(),
                serde_json::json!({
                    "operationId": target,
                    "parameters": {param: expr},
                    "description": format!("The {method} operation on what this one answered"),
                }),
            );
        }
    }
}

/// OpenAPI requires operation ids unique in the document; utoipa names an operation after its
/// handler, and several modules have a `list` or a `create`. Those are prefixed with their tag
/// (`customers_list`), the rest keep their handler's name.
fn unique_operation_ids(doc: &mut serde_json::Value) {
    let mut seen = std::collections::HashMap::<String, usize>::new();
    for op in operations_mut(doc) {
        if let Some(id) = op.get("operationId").and_then(|i| i.as_str()) {
            *seen.entry(id.to_owned()).or_default() += 1;
        }
    }
    for op in operations_mut(doc) {
        let Some(id) = op.get("operationId").and_then(|i| i.as_str()) else {
            continue;
        };
        if seen.get(id).copied().unwrap_or(0) > 1 {
            let tag = op
                .get("tags")
                .and_then(|t| t.get(0))
                .and_then(|t| t.as_str())
                .unwrap_or("api");
            let unique = format!("{tag}_{id}");
            op.insert("operationId".into(), unique.into());
        }
    }
}

/// The document without the registry's purposes, built once.
fn base() -> &'static serde_json::Value {
    static DOC: OnceLock<serde_json::Value> = OnceLock::new();
    DOC.get_or_init(|| {
        let mut doc = ApiDoc::openapi();
        doc.merge(routes::api().into_openapi());
        let mut doc = serde_json::to_value(doc).unwrap_or_default();
        problems_as_problem_json(&mut doc);
        shared_query_parameters(&mut doc);
        documented_formats(&mut doc);
        cross_field_rules(&mut doc);
        unique_operation_ids(&mut doc);
        links(&mut doc);
        doc
    })
}

/// The document as JSON. For a caller who authenticated, `registry` is the purposes registered
/// now: `PurposeKey` lists them and `ConsentPurposeKey` those that rest on consent (what a read
/// may declare, or a consent name, is this installation's registry, not a fixed list). Without
/// one, both state only the shape of a key: the registry is not published to anyone who asks.
///
/// Built once per registry and kept (the route is public: a request must not cost a rebuild).
pub fn openapi_json(registry: Option<&[steward_domain::Purpose]>) -> std::sync::Arc<str> {
    use std::sync::{Arc, Mutex};
    type Keys = Vec<(String, bool)>;
    static PUBLIC: OnceLock<Arc<str>> = OnceLock::new();
    static LISTED: Mutex<Option<(Keys, Arc<str>)>> = Mutex::new(None);
    let Some(purposes) = registry else {
        return PUBLIC.get_or_init(|| build(None)).clone();
    };
    let keys: Keys = purposes
        .iter()
        .map(|p| {
            (
                p.key.clone(),
                p.lawful_basis == steward_domain::LawfulBasis::Consent,
            )
        })
        .collect();
    let Ok(mut cached) = LISTED.lock() else {
        return build(Some(&keys));
    };
    match cached.as_ref() {
        Some((k, doc)) if *k == keys => doc.clone(),
        _ => {
            let doc = build(Some(&keys));
            *cached = Some((keys, doc.clone()));
            doc
        }
    }
}

/// The document with `PurposeKey` and `ConsentPurposeKey` listing `keys` (key, rests on consent),
/// or without lists.
fn build(keys: Option<&[(String, bool)]>) -> std::sync::Arc<str> {
    let mut doc = base().clone();
    let listed = |consent_only: bool| -> Option<Vec<&str>> {
        keys.map(|keys| {
            keys.iter()
                .filter(|(_, consent)| !consent_only || *consent)
                .map(|(k, _)| k.as_str())
                .collect()
        })
    };
    if let Some(schemas) = doc
        .pointer_mut("/components/schemas")
        .and_then(|s| s.as_object_mut())
    {
        for (name, what, consent_only) in [
            (
                "PurposeKey",
                "A registered purpose's key (`GET /v1/purposes`)",
                false,
            ),
            (
                "ConsentPurposeKey",
                "The key of a registered purpose that rests on consent",
                true,
            ),
        ] {
            let mut schema = serde_json::json!({
                "type": "string",
                "description": what,
                "pattern": steward_domain::PURPOSE_KEY_PATTERN,
            });
            if let Some(keys) = listed(consent_only) {
                schema["enum"] = serde_json::json!(keys);
            }
            schemas.insert(name.into(), schema);
        }
    }
    serde_json::to_string_pretty(&doc)
        .unwrap_or_else(|_| "{}".into())
        .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::Value;

    fn document() -> Value {
        serde_json::from_str(&openapi_json(Some(&[]))).unwrap()
    }

    /// The registry's keys are listed only for a caller who authenticated.
    #[test]
    fn the_registry_is_listed_only_for_a_caller_who_authenticated() {
        let public: Value = serde_json::from_str(&openapi_json(None)).unwrap();
        let key = &public["components"]["schemas"]["PurposeKey"];
        assert!(key.get("enum").is_none() && key["pattern"].is_string());
        let registry = steward_domain::purpose::default_purposes();
        let listed: Value = serde_json::from_str(&openapi_json(Some(&registry))).unwrap();
        let schemas = &listed["components"]["schemas"];
        assert_eq!(
            schemas["PurposeKey"]["enum"].as_array().unwrap().len(),
            registry.len()
        );
        for k in schemas["ConsentPurposeKey"]["enum"].as_array().unwrap() {
            let p = registry.iter().find(|p| p.key == *k).unwrap();
            assert_eq!(p.lawful_basis, steward_domain::LawfulBasis::Consent);
        }
    }

    fn operations(doc: &Value) -> Vec<(String, String, Value)> {
        let mut out = Vec::new();
        for (path, item) in doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                out.push((path.clone(), method.clone(), op.clone()));
            }
        }
        out
    }

    /// Every `format` and `$ref` anywhere under `v`.
    fn walk<'a>(v: &'a Value, formats: &mut Vec<&'a str>, refs: &mut Vec<&'a str>) {
        match v {
            Value::Object(m) => {
                if let Some(f) = m.get("format").and_then(|f| f.as_str()) {
                    formats.push(f);
                }
                if let Some(r) = m.get("$ref").and_then(|r| r.as_str()) {
                    refs.push(r);
                }
                m.values().for_each(|x| walk(x, formats, refs));
            }
            Value::Array(a) => a.iter().for_each(|x| walk(x, formats, refs)),
            _ => {}
        }
    }

    #[test]
    fn operation_ids_are_unique() {
        let doc = document();
        let mut ids: Vec<String> = operations(&doc)
            .iter()
            .map(|(_, _, op)| op["operationId"].as_str().unwrap().to_owned())
            .collect();
        let n = ids.len();
        ids.sort();
        ids.dedup();
        assert_eq!(ids.len(), n, "duplicate operationIds");
        assert!(ids.contains(&"customers_list".to_owned()));
    }

    /// No Steward check is left by name: each was replaced by its schema (a misspelt one would
    /// stay a format no client knows), and every reference resolves.
    #[test]
    fn every_check_is_spelled_out_and_every_reference_resolves() {
        let doc = document();
        let (mut formats, mut refs) = (Vec::new(), Vec::new());
        walk(&doc, &mut formats, &mut refs);
        let standard = [
            "uuid",
            "date-time",
            "date",
            "email",
            "uri",
            "int32",
            "int64",
            "double",
            "float",
            "password",
        ];
        for f in &formats {
            assert!(standard.contains(f), "format {f:?} is not a standard one");
        }
        for r in refs {
            let name = r.strip_prefix("#/components/schemas/").unwrap();
            assert!(
                doc["components"]["schemas"][name].is_object(),
                "{r} does not resolve"
            );
        }
        // The checks are in place where the server applies them.
        let s = &doc["components"]["schemas"];
        assert!(s["CustomerInput"]["properties"]["email"]["pattern"].is_string());
        assert_eq!(
            s["PurchaseInput"]["properties"]["currency"]["enum"][0],
            "AED"
        );
        assert_eq!(s["CustomerPatch"]["minProperties"], 1);
        assert!(s["CustomerPatch"].get("maxProperties").is_none());
        assert_eq!(s["LookupRequest"]["oneOf"].as_array().unwrap().len(), 2);
        assert_eq!(
            s["ConsentInput"]["properties"]["purpose"]["$ref"],
            "#/components/schemas/ConsentPurposeKey"
        );
        let declaring = &s["PurposeInput"]["properties"]["roles"]["items"]["enum"];
        assert!(
            !declaring
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r == "admin" || r == "monitoring")
        );
    }

    /// Each shared query parameter has the schema of its check, on every operation.
    #[test]
    fn shared_query_parameters_state_their_checks() {
        let doc = document();
        let mut seen = 0;
        for (path, method, op) in operations(&doc) {
            for p in op["parameters"].as_array().into_iter().flatten() {
                let name = p["name"].as_str().unwrap();
                match (p["in"].as_str(), name) {
                    (Some("query"), "purpose") => {
                        seen += 1;
                        assert_eq!(
                            p["schema"]["$ref"], "#/components/schemas/PurposeKey",
                            "{method} {path}"
                        );
                    }
                    (Some("query"), "limit") => {
                        assert!(p["schema"]["maximum"].is_number(), "{method} {path} limit");
                        assert_eq!(p["schema"]["minimum"], 1, "{method} {path} limit");
                    }
                    (Some("path"), "id") => {
                        assert_eq!(p["schema"]["format"], "uuid", "{method} {path}");
                    }
                    _ => {}
                }
            }
        }
        assert!(seen >= 10, "{seen} operations declare a purpose");
    }

    /// Creating something links to every operation on what was created.
    #[test]
    fn creations_link_to_their_operations() {
        let doc = document();
        let ids: Vec<String> = operations(&doc)
            .iter()
            .map(|(_, _, op)| op["operationId"].as_str().unwrap().to_owned())
            .collect();
        let links = &doc["paths"]["/v1/customers"]["post"]["responses"]["201"]["links"];
        let linked: Vec<&str> = links
            .as_object()
            .unwrap()
            .values()
            .map(|l| l["operationId"].as_str().unwrap())
            .collect();
        for (path, _, op) in operations(&doc) {
            if path.starts_with("/v1/customers/{id}") {
                assert!(
                    linked.contains(&op["operationId"].as_str().unwrap()),
                    "{path}"
                );
            }
        }
        for (path, method, op) in operations(&doc) {
            for response in op["responses"].as_object().unwrap().values() {
                for l in response["links"]
                    .as_object()
                    .into_iter()
                    .flatten()
                    .map(|(_, l)| l)
                {
                    let target = l["operationId"].as_str().unwrap();
                    assert!(
                        ids.contains(&target.to_owned()),
                        "{method} {path} links to {target}"
                    );
                }
            }
        }
        for from in [
            "/v1/segments",
            "/v1/campaigns",
            "/v1/surveys",
            "/v1/requests",
            "/v1/agreements",
        ] {
            assert!(
                doc["paths"][from]["post"]["responses"]["201"]["links"].is_object(),
                "{from}"
            );
        }
    }
}
