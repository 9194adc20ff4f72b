//! Tables created from `template.yaml` itself, so local and test tables can never drift from
//! what is deployed: one definition, read here.
//!
//! Only the properties that shape a table are read: `KeySchema`, `AttributeDefinitions`,
//! `GlobalSecondaryIndexes`, `TimeToLiveSpecification` and `StreamSpecification` (DynamoDB
//! Local serves streams too: scripts/run-local feeds the lead stream to lead-events). They must be literal values in the
//! template; an intrinsic function there (`!Ref`, `!If`, `Fn::...`) is an error rather than a
//! silently different local table. Tags anywhere else in the template (`!Ref`, `!Sub`,
//! `!GetAtt`, ...) are fine: serde_norway yields them as tagged values and they are ignored.

use std::time::Duration;

use aws_sdk_dynamodb::error::DisplayErrorContext;
use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, IndexStatus, KeySchemaElement, KeyType,
    Projection, ProjectionType, ScalarAttributeType, StreamSpecification, StreamViewType,
    TableStatus, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;
use serde_norway::Value;

/// How long `create_table` waits for a new table (and its indexes) to become ACTIVE.
/// DynamoDB takes seconds to a few minutes for a new on-demand table; DynamoDB Local is immediate.
pub const ACTIVE_TIMEOUT: Duration = Duration::from_secs(300);

#[derive(Debug, Clone, PartialEq)]
pub struct TableSpec {
    pub logical_id: String,
    /// (attribute, HASH|RANGE), HASH first.
    pub key_schema: Vec<(String, String)>,
    /// (attribute, S|N|B)
    pub attributes: Vec<(String, String)>,
    pub gsis: Vec<GsiSpec>,
    /// The TTL attribute when `TimeToLiveSpecification.Enabled` is true.
    pub ttl_attribute: Option<String>,
    /// `StreamSpecification.StreamViewType` (NEW_AND_OLD_IMAGES, ...), when the table has a stream.
    pub stream_view_type: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GsiSpec {
    pub name: String,
    /// (attribute, HASH|RANGE), HASH first.
    pub key_schema: Vec<(String, String)>,
    /// ALL | KEYS_ONLY | INCLUDE
    pub projection: String,
    /// `Projection.NonKeyAttributes` (INCLUDE only).
    pub non_key_attributes: Vec<String>,
}

/// An intrinsic function: a YAML tag (`!Ref x`) or its long form (`{"Fn::If": ...}`, `{"Ref": x}`).
fn intrinsic_name(v: &Value) -> Option<String> {
    match v {
        Value::Tagged(t) => Some(t.tag.to_string()),
        Value::Mapping(m) if m.len() == 1 => m
            .keys()
            .next()
            .and_then(Value::as_str)
            .filter(|k| *k == "Ref" || k.starts_with("Fn::"))
            .map(str::to_string),
        _ => None,
    }
}

/// `v` itself and everything under it must be literal.
fn literal<'a>(v: &'a Value, path: &str) -> Result<&'a Value, String> {
    if let Some(f) = intrinsic_name(v) {
        return Err(format!(
            "{path} uses the intrinsic function {f}: keep the table's keys, indexes and TTL \
             literal in template.yaml (leadflow create-tables reads them)"
        ));
    }
    match v {
        Value::Sequence(seq) => {
            for (i, e) in seq.iter().enumerate() {
                literal(e, &format!("{path}[{i}]"))?;
            }
        }
        Value::Mapping(m) => {
            for (k, e) in m {
                literal(e, &format!("{path}.{}", k.as_str().unwrap_or("?")))?;
            }
        }
        _ => {}
    }
    Ok(v)
}

fn string(v: &Value, key: &str, path: &str) -> Result<String, String> {
    v.get(key)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("{path}: missing string {key}"))
}

fn one_of(value: String, allowed: &[&str], path: &str) -> Result<String, String> {
    if allowed.contains(&value.as_str()) {
        Ok(value)
    } else {
        Err(format!("{path}: {value:?} is not one of {allowed:?}"))
    }
}

fn key_schema(v: Option<&Value>, path: &str) -> Result<Vec<(String, String)>, String> {
    let seq = v
        .and_then(Value::as_sequence)
        .ok_or_else(|| format!("{path}: missing or not a list"))?;
    let mut keys = seq
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let p = format!("{path}[{i}]");
            Ok((
                string(e, "AttributeName", &p)?,
                one_of(string(e, "KeyType", &p)?, &["HASH", "RANGE"], &p)?,
            ))
        })
        .collect::<Result<Vec<_>, String>>()?;
    keys.sort_by_key(|(_, kind)| kind != "HASH");
    match keys.iter().map(|(_, k)| k.as_str()).collect::<Vec<_>>()[..] {
        ["HASH"] | ["HASH", "RANGE"] => Ok(keys),
        _ => Err(format!(
            "{path}: needs one HASH key and at most one RANGE key"
        )),
    }
}

fn gsi(g: &Value, path: &str) -> Result<GsiSpec, String> {
    let projection = g.get("Projection");
    let non_key_attributes = match projection.and_then(|p| p.get("NonKeyAttributes")) {
        None => Vec::new(),
        Some(v) => v
            .as_sequence()
            .ok_or_else(|| format!("{path}.Projection.NonKeyAttributes: not a list"))?
            .iter()
            .map(|a| {
                a.as_str().map(str::to_string).ok_or_else(|| {
                    format!("{path}.Projection.NonKeyAttributes: not a list of strings")
                })
            })
            .collect::<Result<_, String>>()?,
    };
    Ok(GsiSpec {
        name: string(g, "IndexName", path)?,
        key_schema: key_schema(g.get("KeySchema"), &format!("{path}.KeySchema"))?,
        projection: match projection {
            Some(p) => one_of(
                string(p, "ProjectionType", &format!("{path}.Projection"))?,
                &["ALL", "KEYS_ONLY", "INCLUDE"],
                &format!("{path}.Projection"),
            )?,
            None => "ALL".to_string(),
        },
        non_key_attributes,
    })
}

fn ttl_attribute(ttl: Option<&Value>, path: &str) -> Result<Option<String>, String> {
    let Some(ttl) = ttl else { return Ok(None) };
    // CloudFormation takes booleans as YAML booleans or as the strings "true"/"false".
    let enabled = match ttl.get("Enabled") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("true") => true,
        Some(Value::String(s)) if s.eq_ignore_ascii_case("false") => false,
        _ => return Err(format!("{path}.Enabled: must be true or false")),
    };
    if !enabled {
        return Ok(None);
    }
    string(ttl, "AttributeName", path).map(Some)
}

fn table_spec(id: &str, props: &Value) -> Result<TableSpec, String> {
    let prop = |name: &str| -> Result<Option<&Value>, String> {
        props
            .get(name)
            .map(|v| literal(v, &format!("{id}.{name}")))
            .transpose()
    };
    let attributes = prop("AttributeDefinitions")?
        .and_then(Value::as_sequence)
        .ok_or_else(|| format!("{id}.AttributeDefinitions: missing or not a list"))?
        .iter()
        .enumerate()
        .map(|(i, e)| {
            let p = format!("{id}.AttributeDefinitions[{i}]");
            Ok((
                string(e, "AttributeName", &p)?,
                one_of(string(e, "AttributeType", &p)?, &["S", "N", "B"], &p)?,
            ))
        })
        .collect::<Result<Vec<_>, String>>()?;
    let keys = key_schema(prop("KeySchema")?, &format!("{id}.KeySchema"))?;
    let gsis = match prop("GlobalSecondaryIndexes")? {
        None => Vec::new(),
        Some(v) => v
            .as_sequence()
            .ok_or_else(|| format!("{id}.GlobalSecondaryIndexes: not a list"))?
            .iter()
            .enumerate()
            .map(|(i, g)| gsi(g, &format!("{id}.GlobalSecondaryIndexes[{i}]")))
            .collect::<Result<_, String>>()?,
    };
    let ttl = ttl_attribute(
        prop("TimeToLiveSpecification")?,
        &format!("{id}.TimeToLiveSpecification"),
    )?;
    let stream_view_type = prop("StreamSpecification")?
        .map(|v| string(v, "StreamViewType", &format!("{id}.StreamSpecification")))
        .transpose()?;
    // DynamoDB rejects definitions of attributes that are no key, and keys without definitions.
    let mut used: Vec<&str> = keys.iter().map(|(a, _)| a.as_str()).collect();
    for g in &gsis {
        used.extend(g.key_schema.iter().map(|(a, _)| a.as_str()));
    }
    for a in &used {
        if !attributes.iter().any(|(d, _)| d == a) {
            return Err(format!(
                "{id}: key attribute {a} has no AttributeDefinitions entry"
            ));
        }
    }
    if let Some((a, _)) = attributes.iter().find(|(a, _)| !used.contains(&a.as_str())) {
        return Err(format!(
            "{id}: AttributeDefinitions entry {a} is not used by any key"
        ));
    }
    Ok(TableSpec {
        logical_id: id.to_string(),
        key_schema: keys,
        attributes,
        gsis,
        ttl_attribute: ttl,
        stream_view_type,
    })
}

/// The resources of type `kind` of a parsed SAM/CloudFormation template, with their ids, in
/// template order (tables here; the tests' local API Gateway reads the functions).
pub fn resources_of_type<'a>(
    doc: &'a Value,
    kind: &'a str,
) -> Result<impl Iterator<Item = (&'a str, &'a Value)> + 'a, String> {
    let resources = doc
        .get("Resources")
        .and_then(Value::as_mapping)
        .ok_or("template.yaml has no Resources")?;
    Ok(resources
        .iter()
        .filter(move |(_, res)| res.get("Type").and_then(Value::as_str) == Some(kind))
        .filter_map(|(id, res)| Some((id.as_str()?, res))))
}

/// A template's text as YAML (tags such as `!Ref` kept as tagged values).
pub fn parse_template(template_yaml: &str) -> Result<Value, String> {
    serde_norway::from_str(template_yaml).map_err(|e| format!("template.yaml: {e}"))
}

/// Every `AWS::DynamoDB::Table` resource of a SAM/CloudFormation template, in template order.
pub fn table_specs(template_yaml: &str) -> Result<Vec<TableSpec>, String> {
    let doc = parse_template(template_yaml)?;
    let mut out = Vec::new();
    for (id, res) in resources_of_type(&doc, "AWS::DynamoDB::Table")? {
        let props = res
            .get("Properties")
            .ok_or_else(|| format!("{id}: no Properties"))?;
        out.push(table_spec(id, props)?);
    }
    Ok(out)
}

fn key_elements(keys: &[(String, String)]) -> Result<Vec<KeySchemaElement>, String> {
    keys.iter()
        .map(|(name, kind)| {
            KeySchemaElement::builder()
                .attribute_name(name)
                .key_type(KeyType::from(kind.as_str()))
                .build()
                .map_err(|e| e.to_string())
        })
        .collect()
}

/// Whether a table exists (DescribeTable).
pub async fn table_exists(client: &Client, table_name: &str) -> Result<bool, String> {
    match client.describe_table().table_name(table_name).send().await {
        Ok(_) => Ok(true),
        Err(e)
            if e.as_service_error()
                .is_some_and(|s| s.is_resource_not_found_exception()) =>
        {
            Ok(false)
        }
        Err(e) => Err(format!("{table_name}: {}", DisplayErrorContext(&e))),
    }
}

/// Creates the table on demand (PAY_PER_REQUEST) with its indexes, waits until the table and
/// its indexes are ACTIVE (at most [`ACTIVE_TIMEOUT`]; an error after that), and enables TTL
/// when the template does.
pub async fn create_table(
    client: &Client,
    spec: &TableSpec,
    table_name: &str,
) -> Result<(), String> {
    let err = |e: &dyn std::fmt::Display| format!("{table_name}: {e}");
    let mut req = client
        .create_table()
        .table_name(table_name)
        .billing_mode(BillingMode::PayPerRequest)
        .set_key_schema(Some(key_elements(&spec.key_schema)?));
    for (name, kind) in &spec.attributes {
        req = req.attribute_definitions(
            AttributeDefinition::builder()
                .attribute_name(name)
                .attribute_type(ScalarAttributeType::from(kind.as_str()))
                .build()
                .map_err(|e| err(&e))?,
        );
    }
    for g in &spec.gsis {
        let mut projection =
            Projection::builder().projection_type(ProjectionType::from(g.projection.as_str()));
        for a in &g.non_key_attributes {
            projection = projection.non_key_attributes(a);
        }
        req = req.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(&g.name)
                .set_key_schema(Some(key_elements(&g.key_schema)?))
                .projection(projection.build())
                .build()
                .map_err(|e| err(&e))?,
        );
    }
    if let Some(view) = &spec.stream_view_type {
        req = req.stream_specification(
            StreamSpecification::builder()
                .stream_enabled(true)
                .stream_view_type(StreamViewType::from(view.as_str()))
                .build()
                .map_err(|e| err(&e))?,
        );
    }
    req.send()
        .await
        .map_err(|e| err(&DisplayErrorContext(&e)))?;
    wait_until_active(client, table_name).await?;
    if let Some(attr) = &spec.ttl_attribute {
        client
            .update_time_to_live()
            .table_name(table_name)
            .time_to_live_specification(
                TimeToLiveSpecification::builder()
                    .attribute_name(attr)
                    .enabled(true)
                    .build()
                    .map_err(|e| err(&e))?,
            )
            .send()
            .await
            .map_err(|e| err(&DisplayErrorContext(&e)))?;
    }
    Ok(())
}

async fn wait_until_active(client: &Client, table_name: &str) -> Result<(), String> {
    let started = std::time::Instant::now();
    let mut delay = Duration::from_millis(50);
    loop {
        let d = client
            .describe_table()
            .table_name(table_name)
            .send()
            .await
            .map_err(|e| format!("{table_name}: {}", DisplayErrorContext(&e)))?;
        let table = d.table();
        let status = table.and_then(|t| t.table_status());
        let indexes_active = table
            .map(|t| t.global_secondary_indexes())
            .unwrap_or_default()
            .iter()
            .all(|g| matches!(g.index_status(), None | Some(IndexStatus::Active)));
        if status == Some(&TableStatus::Active) && indexes_active {
            return Ok(());
        }
        if started.elapsed() >= ACTIVE_TIMEOUT {
            return Err(format!(
                "{table_name}: not ACTIVE after {} s (table status {:?}, indexes active: \
                 {indexes_active})",
                ACTIVE_TIMEOUT.as_secs(),
                status.map(|s| s.as_str()),
            ));
        }
        tokio::time::sleep(delay).await;
        delay = (delay * 2).min(Duration::from_secs(2));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pair(a: &str, b: &str) -> (String, String) {
        (a.to_string(), b.to_string())
    }

    /// The CloudWatch dashboard's body (a `!Sub` string) is JSON once substituted, and every
    /// `${Resource}` / `${Resource.Attr}` it names is a resource of the template: a renamed
    /// queue or function cannot leave an empty graph behind (CloudFormation would accept it).
    #[test]
    fn the_operations_dashboard_names_real_resources_and_is_json() {
        let template = include_str!("../../../template.yaml");
        let doc: Value = serde_norway::from_str(template).unwrap();
        let resources = doc["Resources"].as_mapping().unwrap();
        let start = template
            .find("      DashboardBody: !Sub |\n")
            .expect("OperationsDashboard has a body");
        let body: String = template[start..]
            .lines()
            .skip(1)
            .take_while(|l| l.starts_with("          "))
            .map(|l| format!("{}\n", l.trim_start()))
            .collect();
        let mut substituted = String::new();
        let mut rest = body.as_str();
        while let Some(i) = rest.find("${") {
            substituted.push_str(&rest[..i]);
            let end = rest[i..].find('}').unwrap() + i;
            let name = &rest[i + 2..end];
            let resource = name.split('.').next().unwrap();
            assert!(
                name.starts_with("AWS::") || resources.contains_key(resource),
                "the dashboard names {name}, not a resource of the template"
            );
            substituted.push('x');
            rest = &rest[end + 1..];
        }
        substituted.push_str(rest);
        let dashboard: serde_json::Value = serde_json::from_str(&substituted).unwrap();
        let widgets = dashboard["widgets"].as_array().unwrap();
        assert!(widgets.len() >= 10, "{}", widgets.len());
        for w in widgets {
            assert!(w["properties"]["title"].is_string(), "{w}");
            assert!(
                !w["properties"]["metrics"].as_array().unwrap().is_empty(),
                "{w}"
            );
        }
    }

    #[test]
    fn reads_the_real_template() {
        let specs = table_specs(include_str!("../../../template.yaml")).unwrap();
        assert_eq!(specs.len(), 1, "one table: {specs:?}");
        let leads = &specs[0];
        assert_eq!(leads.logical_id, "LeadsTable");
        assert_eq!(
            leads.key_schema,
            vec![pair("pk", "HASH"), pair("sk", "RANGE")]
        );
        let mut attributes = leads.attributes.clone();
        attributes.sort();
        assert_eq!(
            attributes,
            vec![
                pair("gsi1pk", "S"),
                pair("gsi1sk", "S"),
                pair("gsi2pk", "S"),
                pair("gsi2sk", "S"),
                pair("pk", "S"),
                pair("sk", "S")
            ]
        );
        assert_eq!(leads.gsis.len(), 2);
        assert_eq!(
            leads.gsis[0],
            GsiSpec {
                name: "gsi1".into(),
                key_schema: vec![pair("gsi1pk", "HASH"), pair("gsi1sk", "RANGE")],
                projection: "ALL".into(),
                non_key_attributes: vec![],
            }
        );
        // The sharded day index projects exactly what the rollup reads.
        assert_eq!(leads.gsis[1].name, "gsi2");
        assert_eq!(leads.gsis[1].projection, "INCLUDE");
        assert_eq!(
            leads.gsis[1].non_key_attributes,
            leadflow::store::DAY_INDEX_PROJECTION
                .map(String::from)
                .to_vec()
        );
        assert_eq!(leads.ttl_attribute.as_deref(), Some("expires_at"));
        assert_eq!(
            leads.stream_view_type.as_deref(),
            Some("NEW_AND_OLD_IMAGES")
        );
    }

    const TAGGED: &str = r#"
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage: {Type: String, Default: dev}
Resources:
  Api:
    Type: AWS::Serverless::HttpApi
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      Environment:
        Variables:
          TABLE: !Ref Events
          ARN: !GetAtt Events.Arn
      Policies:
        - Statement:
            Resource: !Sub "${Events.Arn}/index/*"
  Events:
    Type: AWS::DynamoDB::Table
    Condition: Always
    Properties:
      TableName: !Sub "events-${Stage}"
      BillingMode: PAY_PER_REQUEST
      Tags:
        - Key: stage
          Value: !Ref Stage
      AttributeDefinitions:
        - {AttributeName: id, AttributeType: S}
        - {AttributeName: at, AttributeType: N}
      KeySchema:
        - {AttributeName: id, KeyType: HASH}
      GlobalSecondaryIndexes:
        - IndexName: by-time
          KeySchema:
            - {AttributeName: at, KeyType: RANGE}
            - {AttributeName: id, KeyType: HASH}
          Projection: {ProjectionType: INCLUDE, NonKeyAttributes: [kind]}
      TimeToLiveSpecification: {AttributeName: ttl, Enabled: "false"}
  Other:
    Type: AWS::DynamoDB::Table
    Properties:
      AttributeDefinitions: [{AttributeName: k, AttributeType: B}]
      KeySchema: [{AttributeName: k, KeyType: HASH}]
"#;

    #[test]
    fn tags_elsewhere_are_ignored() {
        let specs = table_specs(TAGGED).unwrap();
        assert_eq!(specs.len(), 2);
        let events = &specs[0];
        assert_eq!(events.logical_id, "Events");
        assert_eq!(events.key_schema, vec![pair("id", "HASH")]);
        // HASH first, whatever the template's order.
        assert_eq!(
            events.gsis[0].key_schema,
            vec![pair("id", "HASH"), pair("at", "RANGE")]
        );
        assert_eq!(events.gsis[0].projection, "INCLUDE");
        assert_eq!(events.gsis[0].non_key_attributes, vec!["kind".to_string()]);
        assert_eq!(events.ttl_attribute, None, "Enabled: \"false\"");
        assert_eq!(specs[1].logical_id, "Other");
        assert_eq!(specs[1].gsis, vec![]);
    }

    #[test]
    fn intrinsics_in_the_table_shape_are_rejected() {
        for (from, to) in [
            (
                "{AttributeName: id, KeyType: HASH}",
                "{AttributeName: !Ref Key, KeyType: HASH}",
            ),
            ("IndexName: by-time", "IndexName: !Sub \"${Stage}-by-time\""),
            (
                "{AttributeName: ttl, Enabled: \"false\"}",
                "{AttributeName: ttl, Enabled: {\"Fn::If\": [On, true, false]}}",
            ),
        ] {
            assert!(TAGGED.contains(from), "{from}");
            let err = table_specs(&TAGGED.replacen(from, to, 1)).unwrap_err();
            assert!(err.contains("intrinsic function"), "{err}");
            assert!(err.starts_with("Events."), "{err}");
        }
    }

    #[test]
    fn inconsistent_shapes_are_rejected() {
        let missing_def = TAGGED.replace("- {AttributeName: at, AttributeType: N}", "");
        assert!(table_specs(&missing_def)
            .unwrap_err()
            .contains("key attribute at has no AttributeDefinitions"));
        let two_hash = TAGGED.replace(
            "{AttributeName: at, KeyType: RANGE}",
            "{AttributeName: at, KeyType: HASH}",
        );
        assert!(table_specs(&two_hash).unwrap_err().contains("one HASH key"));
        let bad_type = TAGGED.replace("AttributeType: B", "AttributeType: X");
        assert!(table_specs(&bad_type)
            .unwrap_err()
            .contains("\"X\" is not one of"));
        assert!(table_specs("Resources: [").is_err());
        assert!(table_specs("Outputs: {}").is_err());
    }
}
