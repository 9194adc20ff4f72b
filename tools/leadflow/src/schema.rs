//! Tables created from `template.yaml` itself, so local and test tables can never drift from
//! what is deployed: one definition, read here.

use std::time::Duration;

use aws_sdk_dynamodb::types::{
    AttributeDefinition, BillingMode, GlobalSecondaryIndex, KeySchemaElement, KeyType, Projection,
    ProjectionType, ScalarAttributeType, TimeToLiveSpecification,
};
use aws_sdk_dynamodb::Client;
use serde_norway::Value;

#[derive(Debug, Clone, PartialEq)]
pub struct TableSpec {
    pub logical_id: String,
    /// (attribute, HASH|RANGE)
    pub key_schema: Vec<(String, String)>,
    /// (attribute, S|N|B)
    pub attributes: Vec<(String, String)>,
    pub gsis: Vec<GsiSpec>,
    pub ttl_attribute: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct GsiSpec {
    pub name: String,
    pub key_schema: Vec<(String, String)>,
    pub projection: String,
}

fn untag(v: &Value) -> &Value {
    match v {
        Value::Tagged(t) => &t.value,
        other => other,
    }
}

fn str_of(v: &Value, key: &str) -> Result<String, String> {
    untag(v)
        .get(key)
        .map(untag)
        .and_then(Value::as_str)
        .map(str::to_string)
        .ok_or_else(|| format!("missing string {key}"))
}

fn pairs(v: Option<&Value>, a: &str, b: &str) -> Result<Vec<(String, String)>, String> {
    let Some(seq) = v.map(untag).and_then(Value::as_sequence) else {
        return Ok(Vec::new());
    };
    seq.iter()
        .map(|e| Ok((str_of(e, a)?, str_of(e, b)?)))
        .collect()
}

/// Every `AWS::DynamoDB::Table` resource of a SAM/CloudFormation template. Intrinsic-function
/// tags elsewhere in the template (`!Ref`, `!Sub`...) are tolerated.
pub fn table_specs(template_yaml: &str) -> Result<Vec<TableSpec>, String> {
    let doc: Value =
        serde_norway::from_str(template_yaml).map_err(|e| format!("template.yaml: {e}"))?;
    let resources = doc
        .get("Resources")
        .and_then(Value::as_mapping)
        .ok_or("template.yaml has no Resources")?;
    let mut out = Vec::new();
    for (id, res) in resources {
        if res.get("Type").and_then(Value::as_str) != Some("AWS::DynamoDB::Table") {
            continue;
        }
        let id = id.as_str().unwrap_or_default().to_string();
        let props = res
            .get("Properties")
            .ok_or_else(|| format!("{id}: no Properties"))?;
        let gsis = match props
            .get("GlobalSecondaryIndexes")
            .and_then(Value::as_sequence)
        {
            None => Vec::new(),
            Some(seq) => seq
                .iter()
                .map(|g| {
                    Ok(GsiSpec {
                        name: str_of(g, "IndexName")?,
                        key_schema: pairs(g.get("KeySchema"), "AttributeName", "KeyType")?,
                        projection: g
                            .get("Projection")
                            .map(|p| str_of(p, "ProjectionType"))
                            .transpose()?
                            .unwrap_or_else(|| "ALL".to_string()),
                    })
                })
                .collect::<Result<_, String>>()?,
        };
        let ttl_attribute = props
            .get("TimeToLiveSpecification")
            .filter(|t| t.get("Enabled").and_then(Value::as_bool).unwrap_or(false))
            .map(|t| str_of(t, "AttributeName"))
            .transpose()?;
        out.push(TableSpec {
            key_schema: pairs(props.get("KeySchema"), "AttributeName", "KeyType")
                .map_err(|e| format!("{id}: {e}"))?,
            attributes: pairs(
                props.get("AttributeDefinitions"),
                "AttributeName",
                "AttributeType",
            )
            .map_err(|e| format!("{id}: {e}"))?,
            logical_id: id,
            gsis,
            ttl_attribute,
        });
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
        Err(e) => Err(aws_sdk_dynamodb::error::DisplayErrorContext(&e).to_string()),
    }
}

/// Creates the table on demand with its indexes, waits until it is ACTIVE (bounded), and
/// enables TTL when the template does.
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
        req = req.global_secondary_indexes(
            GlobalSecondaryIndex::builder()
                .index_name(&g.name)
                .set_key_schema(Some(key_elements(&g.key_schema)?))
                .projection(
                    Projection::builder()
                        .projection_type(ProjectionType::from(g.projection.as_str()))
                        .build(),
                )
                .build()
                .map_err(|e| err(&e))?,
        );
    }
    req.send()
        .await
        .map_err(|e| err(&aws_sdk_dynamodb::error::DisplayErrorContext(&e)))?;
    for _ in 0..300 {
        let d = client
            .describe_table()
            .table_name(table_name)
            .send()
            .await
            .map_err(|e| err(&aws_sdk_dynamodb::error::DisplayErrorContext(&e)))?;
        if d.table().and_then(|t| t.table_status()).map(|s| s.as_str()) == Some("ACTIVE") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
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
            .map_err(|e| err(&aws_sdk_dynamodb::error::DisplayErrorContext(&e)))?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_the_real_template() {
        let specs = table_specs(include_str!("../../../template.yaml")).unwrap();
        let leads = specs.iter().find(|s| s.logical_id == "LeadsTable").unwrap();
        assert_eq!(
            leads.key_schema,
            vec![("pk".into(), "HASH".into()), ("sk".into(), "RANGE".into())]
        );
        assert_eq!(leads.gsis[0].name, "gsi1");
        assert_eq!(leads.ttl_attribute.as_deref(), Some("expires_at"));
    }
}
