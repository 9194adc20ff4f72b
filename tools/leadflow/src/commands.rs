//! The `leadflow` subcommands that are not a module of their own: `main.rs` parses the
//! arguments and dispatches here, to `leads` (`list-leads`) and to `replay`
//! (`replay-quarantine`).

use std::collections::BTreeMap;

use aws_sdk_dynamodb::Client;

use crate::schema;

/// `--name LogicalId=physical-name` values, checked: each must be `A=B` with both sides set.
pub fn parse_table_names(values: &[String]) -> Result<BTreeMap<String, String>, String> {
    values
        .iter()
        .map(|v| match v.split_once('=') {
            Some((id, name)) if !id.is_empty() && !name.is_empty() => {
                Ok((id.to_string(), name.to_string()))
            }
            _ => Err(format!("--name takes LogicalId=physical-name, not {v:?}")),
        })
        .collect()
}

/// What `create_tables` did for one table.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TableOutcome {
    Created,
    Exists,
}

/// `leadflow create-tables`: every `AWS::DynamoDB::Table` of the template, named by `names`
/// (logical id -> physical name; default: the logical id). Tables that already exist are left
/// as they are. Prints one line per table and returns what it did.
pub async fn create_tables(
    client: &Client,
    template_yaml: &str,
    names: &BTreeMap<String, String>,
) -> Result<Vec<(String, TableOutcome)>, String> {
    let specs = schema::table_specs(template_yaml)?;
    if let Some(unknown) = names
        .keys()
        .find(|id| !specs.iter().any(|s| &s.logical_id == *id))
    {
        let known: Vec<&str> = specs.iter().map(|s| s.logical_id.as_str()).collect();
        return Err(format!(
            "--name {unknown}=...: the template has no table {unknown} (tables: {known:?})"
        ));
    }
    let mut done = Vec::new();
    for spec in &specs {
        let name = names
            .get(&spec.logical_id)
            .cloned()
            .unwrap_or_else(|| spec.logical_id.clone());
        let outcome = if schema::table_exists(client, &name).await? {
            println!("{} -> {name}: exists, left as it is", spec.logical_id);
            TableOutcome::Exists
        } else {
            schema::create_table(client, spec, &name).await?;
            let gsis: Vec<&str> = spec.gsis.iter().map(|g| g.name.as_str()).collect();
            println!(
                "{} -> {name}: created (indexes {gsis:?}, ttl {})",
                spec.logical_id,
                spec.ttl_attribute.as_deref().unwrap_or("off")
            );
            TableOutcome::Created
        };
        done.push((name, outcome));
    }
    if specs.is_empty() {
        println!("the template defines no AWS::DynamoDB::Table");
    }
    Ok(done)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_names() {
        let ok = parse_table_names(&["LeadsTable=leadflow-local".into(), "B=c=d".into()]).unwrap();
        assert_eq!(ok["LeadsTable"], "leadflow-local");
        assert_eq!(ok["B"], "c=d");
        for bad in ["LeadsTable", "=x", "LeadsTable="] {
            assert!(parse_table_names(&[bad.into()]).is_err(), "{bad}");
        }
    }
}
