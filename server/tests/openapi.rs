//! docs/openapi.yaml holds the running server to it: every documented operation is called on the
//! real binary, every answer's status must be documented for its operation, and its body must
//! match the documented schema. A route the document lacks, or an answer it does not describe,
//! fails here.
#![allow(clippy::unwrap_used)]

use std::collections::BTreeSet;
use std::path::Path;

use roomcast_tests::client::Client;
use roomcast_tests::http::call;
use roomcast_tests::server::Server;
use serde_json::{Map, Value, json};
use yaml_rust2::{Yaml, YamlLoader};

const KEY: &str = "openapi-key";

/// The document, as JSON.
fn document() -> Value {
    let text =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../docs/openapi.yaml"))
            .unwrap();
    let docs = YamlLoader::load_from_str(&text).expect("docs/openapi.yaml is YAML");
    to_json(&docs[0])
}

fn to_json(yaml: &Yaml) -> Value {
    match yaml {
        Yaml::Real(text) => json!(text.parse::<f64>().unwrap()),
        Yaml::Integer(n) => json!(n),
        Yaml::String(s) => json!(s),
        Yaml::Boolean(b) => json!(b),
        Yaml::Array(items) => Value::Array(items.iter().map(to_json).collect()),
        Yaml::Hash(map) => Value::Object(
            map.iter()
                .map(|(k, v)| {
                    let key = match k {
                        Yaml::String(s) => s.clone(),
                        Yaml::Integer(n) => n.to_string(),
                        other => panic!("a map key that is not a string: {other:?}"),
                    };
                    (key, to_json(v))
                })
                .collect(),
        ),
        Yaml::Null => Value::Null,
        other => panic!("unsupported YAML: {other:?}"),
    }
}

/// Follows `$ref`s within the document.
fn resolve<'a>(doc: &'a Value, mut node: &'a Value) -> &'a Value {
    while let Some(reference) = node.get("$ref").and_then(Value::as_str) {
        let pointer = reference.strip_prefix('#').expect("a local reference");
        node = doc.pointer(pointer).unwrap_or_else(|| panic!("dangling {reference}"));
    }
    node
}

/// Checks `value` against `schema` (the JSON Schema keywords the document uses).
fn check(doc: &Value, schema: &Value, value: &Value, at: &str) -> Result<(), String> {
    let schema = resolve(doc, schema);
    let fail = |why: String| Err(format!("{at}: {why} (value {value})"));
    if let Some(alternatives) = schema.get("oneOf").and_then(Value::as_array) {
        let matching = alternatives.iter().filter(|s| check(doc, s, value, at).is_ok()).count();
        return if matching == 1 { Ok(()) } else { fail(format!("matches {matching} of oneOf")) };
    }
    if let Some(kind) = schema.get("type").and_then(Value::as_str) {
        let ok = match kind {
            "object" => value.is_object(),
            "array" => value.is_array(),
            "string" => value.is_string(),
            "integer" => value.is_i64() || value.is_u64(),
            "number" => value.is_number(),
            "boolean" => value.is_boolean(),
            "null" => value.is_null(),
            other => return fail(format!("unknown type {other}")),
        };
        if !ok {
            return fail(format!("not of type {kind}"));
        }
    }
    if let Some(allowed) = schema.get("enum").and_then(Value::as_array)
        && !allowed.contains(value)
    {
        return fail("not one of the enum".into());
    }
    if schema.get("format").and_then(Value::as_str) == Some("uuid")
        && value.as_str().and_then(|s| uuid::Uuid::parse_str(s).ok()).is_none()
    {
        return fail("not a UUID".into());
    }
    if let Some(min) = schema.get("minimum").and_then(Value::as_i64)
        && value.as_i64().is_some_and(|n| n < min)
    {
        return fail(format!("below {min}"));
    }
    if let Some(object) = value.as_object() {
        check_object(doc, schema, object, at)?;
    }
    if let (Some(items), Some(array)) = (schema.get("items"), value.as_array()) {
        for (i, item) in array.iter().enumerate() {
            check(doc, items, item, &format!("{at}[{i}]"))?;
        }
    }
    Ok(())
}

fn check_object(
    doc: &Value,
    schema: &Value,
    object: &Map<String, Value>,
    at: &str,
) -> Result<(), String> {
    let empty = Map::new();
    let properties = schema.get("properties").and_then(Value::as_object).unwrap_or(&empty);
    for name in schema.get("required").and_then(Value::as_array).into_iter().flatten() {
        let name = name.as_str().unwrap();
        if !object.contains_key(name) {
            return Err(format!("{at}: `{name}` is required"));
        }
    }
    for (name, field) in object {
        match properties.get(name) {
            Some(property) => check(doc, property, field, &format!("{at}.{name}"))?,
            None if schema.get("additionalProperties") == Some(&Value::Bool(false)) => {
                return Err(format!("{at}: `{name}` is not in the schema"));
            }
            None => {}
        }
    }
    Ok(())
}

/// Which documented path template `path` is (`/api/rooms/lobby/publish` is
/// `/api/rooms/{room}/publish`), if any.
fn template<'a>(doc: &'a Value, path: &str) -> Option<&'a str> {
    let path = path.split('?').next().unwrap();
    let segments: Vec<&str> = path.split('/').collect();
    doc["paths"].as_object().unwrap().keys().map(String::as_str).find(|t| {
        let parts: Vec<&str> = t.split('/').collect();
        parts.len() == segments.len()
            && parts.iter().zip(&segments).all(|(p, s)| p.starts_with('{') || p == s)
    })
}

#[tokio::test(flavor = "multi_thread")]
async fn every_documented_operation_answers_as_the_openapi_document_says() {
    let doc = document();
    assert_eq!(doc["openapi"], "3.1.0");
    let program = Path::new(env!("CARGO_BIN_EXE_roomcast"));
    // `lobby` keeps a history, so that the history routes answer.
    let dir = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("openapi");
    std::fs::create_dir_all(&dir).unwrap();
    let rules = dir.join("rooms.toml");
    let rule = "[[rooms]]\npattern = \"lobby\"\nhistory_size = 10\nhistory_ttl = \"1m\"\n";
    std::fs::write(&rules, rule).unwrap();
    let rules = rules.to_str().unwrap().to_owned();
    let args = ["--api-key", KEY, "--api-max-body-bytes", "4096", "--config", &rules];
    let server = tokio::task::block_in_place(|| Server::spawn(program, &args, &[]));
    let mut a = Client::connected(server.addr).await;
    a.join(&["lobby"]).await;
    let b = Client::connected(server.addr).await;
    let (a_id, b_id) = (a.id.clone().unwrap(), b.id.clone().unwrap());
    let unknown = "00000000-0000-4000-8000-000000000000";
    let big = format!(r#"{{"event":"x","data":"{}"}}"#, "x".repeat(8000));
    let publish = r#"{"event":"news","data":{"n":1}}"#;
    let batch = json!({"commands":[
        {"method":"publish","params":{"room":"lobby","event":"x"}},
        {"method":"join","params":{"room":"lobby","conn":b_id}},
        {"method":"send","params":{"user":"nobody"}},
    ]})
    .to_string();
    let calls: Vec<(&str, String, Option<&str>, Option<String>)> = vec![
        ("POST", "/api/rooms/lobby/publish".into(), Some(KEY), Some(publish.into())),
        ("POST", "/api/rooms/lobby/publish".into(), Some(KEY), Some(r#"{"event":1}"#.into())),
        ("POST", "/api/rooms/lobby/publish".into(), None, Some(publish.into())),
        ("POST", "/api/rooms/lobby/publish".into(), Some(KEY), Some(big)),
        ("POST", "/api/rooms/other/publish".into(), Some(KEY), Some(publish.into())),
        ("GET", "/api/rooms/lobby/history?since=0&limit=5".into(), Some(KEY), None),
        ("GET", "/api/rooms/empty/history".into(), Some(KEY), None),
        ("GET", "/api/rooms/lobby/history?since=-1".into(), Some(KEY), None),
        ("DELETE", "/api/rooms/lobby/history".into(), Some(KEY), None),
        ("DELETE", "/api/rooms/other/history".into(), Some(KEY), None),
        (
            "POST",
            "/api/publish".into(),
            Some(KEY),
            Some(r#"{"rooms":["lobby","x"],"event":"e"}"#.into()),
        ),
        ("POST", "/api/publish".into(), Some(KEY), Some(r#"{"rooms":[],"event":"e"}"#.into())),
        ("POST", "/api/broadcast".into(), Some(KEY), Some(publish.into())),
        ("GET", "/api/broadcast".into(), Some(KEY), None),
        ("POST", "/api/users/ann/send".into(), Some(KEY), Some(publish.into())),
        ("POST", format!("/api/connections/{a_id}/send"), Some(KEY), Some(publish.into())),
        ("POST", "/api/connections/nope/send".into(), Some(KEY), Some(publish.into())),
        ("POST", "/api/batch".into(), Some(KEY), Some(batch)),
        ("POST", "/api/batch".into(), Some(KEY), Some("[".into())),
        ("GET", "/api/info".into(), Some(KEY), None),
        ("GET", "/api/count".into(), Some(KEY), None),
        ("GET", "/api/rooms".into(), Some(KEY), None),
        ("GET", "/api/rooms/lobby/members?timeout_ms=200".into(), Some(KEY), None),
        ("GET", "/api/users/ann/sessions".into(), Some(KEY), None),
        ("GET", "/api/connections".into(), Some(KEY), None),
        ("GET", "/api/connections?filter=%7B%7D".into(), Some(KEY), None),
        ("GET", "/api/connections?filter=nope".into(), Some(KEY), None),
        ("GET", format!("/api/connections/{a_id}"), Some(KEY), None),
        ("GET", format!("/api/connections/{unknown}"), Some(KEY), None),
        ("POST", format!("/api/rooms/lobby/join?conn={b_id}"), Some(KEY), None),
        ("POST", "/api/rooms/lobby/join".into(), Some(KEY), None),
        ("POST", format!("/api/rooms/lobby/leave?conn={b_id}"), Some(KEY), None),
        ("POST", "/api/rooms/lobby/leave?user=a&conn=b".into(), Some(KEY), None),
        ("POST", "/api/users/ann/disconnect".into(), Some(KEY), None),
        ("POST", format!("/api/connections/{b_id}/disconnect"), Some(KEY), None),
        ("POST", "/api/connections/x/disconnect".into(), Some(KEY), None),
        ("GET", "/api/info".into(), Some("wrong"), None),
    ];
    let mut succeeded = BTreeSet::new();
    for (method, path, key, body) in calls {
        let answer =
            tokio::task::block_in_place(|| call(server.addr, method, &path, key, body.as_deref()))
                .expect("an answer");
        let what = format!("{method} {path} -> {}: {}", answer.status, answer.body);
        let template =
            template(&doc, &path).unwrap_or_else(|| panic!("undocumented route: {what}"));
        let operation = &doc["paths"][template][method.to_lowercase()];
        let body: Value =
            serde_json::from_str(&answer.body).unwrap_or_else(|_| panic!("not JSON: {what}"));
        if !operation.is_object() {
            // Not an operation: a method the route does not have, answered with the error shape.
            assert_eq!(answer.status, 405, "undocumented method: {what}");
            let error = json!({"$ref": "#/components/schemas/Error"});
            check(&doc, &error, &body, "body").unwrap_or_else(|e| panic!("{what}\n{e}"));
            continue;
        }
        let response = operation["responses"].get(answer.status.to_string()).unwrap_or_else(|| {
            panic!("undocumented status: {what}");
        });
        let response = resolve(&doc, response);
        let schema = &response["content"]["application/json"]["schema"];
        if let Err(e) = check(&doc, schema, &body, "body") {
            panic!("{what}\n{e}");
        }
        if answer.status == 200 {
            succeeded.insert((template.to_owned(), method.to_lowercase()));
        }
    }
    let documented: BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| {
            ops.as_object().unwrap().keys().map(move |m| (path.clone(), m.clone()))
        })
        .collect();
    let never: Vec<_> = documented.difference(&succeeded).collect();
    assert!(never.is_empty(), "documented operations never called with success: {never:?}");
}

#[test]
fn the_validator_catches_what_it_claims_to() {
    let doc = document();
    let member = json!({"$ref": "#/components/schemas/Member"});
    let good = json!({"serverId":"s","conn":"00000000-0000-4000-8000-000000000000"});
    assert!(check(&doc, &member, &good, "m").is_ok());
    let extra = json!({"serverId":"s","conn":"00000000-0000-4000-8000-000000000000","x":1});
    assert!(check(&doc, &member, &extra, "m").is_err(), "additionalProperties: false");
    assert!(check(&doc, &member, &json!({"serverId":"s"}), "m").is_err(), "required");
    assert!(
        check(
            &doc,
            &member,
            &json!({"serverId":1,"conn":"00000000-0000-4000-8000-000000000000"}),
            "m"
        )
        .is_err(),
        "type"
    );
    assert!(check(&doc, &member, &json!({"serverId":"s","conn":"nope"}), "m").is_err(), "uuid");
    let error = json!({"$ref": "#/components/schemas/Error"});
    assert!(
        check(&doc, &error, &json!({"error":{"code":"teapot","message":""}}), "e").is_err(),
        "enum"
    );
    let result = json!({"$ref": "#/components/schemas/Result"});
    assert!(check(&doc, &result, &json!({}), "r").is_ok());
    assert!(check(&doc, &result, &json!({"affected":1,"missing":[]}), "r").is_ok());
    assert!(check(&doc, &result, &json!({"affected":-1,"missing":[]}), "r").is_err(), "minimum");
    assert_eq!(template(&doc, "/api/rooms/a/publish?x=1"), Some("/api/rooms/{room}/publish"));
    assert_eq!(template(&doc, "/api/teleport"), None);
}
