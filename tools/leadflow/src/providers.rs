//! `leadflow providers`: the platforms of the registry and the variables each reads, from the
//! provider modules themselves (the one place they are declared), for operators and scripts.
//!
//!   leadflow providers                 # a table: provider, variable, need, what it is
//!   leadflow providers --names         # the variable names, one a line
//!   leadflow providers --check FILE    # fails naming every declared secret FILE does not set

use leadflow_providers::{Kind, Need, Variable, PROVIDERS, SHARED_VARIABLES};

/// Every declared variable with the provider that reads it (`*` for the shared settings).
pub fn variables() -> Vec<(&'static str, &'static Variable)> {
    PROVIDERS
        .iter()
        .flat_map(|p| p.variables().iter().map(move |v| (p.name(), *v)))
        .chain(SHARED_VARIABLES.iter().map(|v| ("*", *v)))
        .collect()
}

/// The table `leadflow providers` prints.
pub fn table() -> String {
    let mut out = String::from("provider     variable                 need      what\n");
    for (provider, v) in variables() {
        let need = match (v.need, v.kind) {
            (Need::Required, _) => "required".to_string(),
            (Need::Optional, Kind::Secret) => "optional".to_string(),
            (Need::Optional, Kind::Setting { default }) => format!("default {default}"),
        };
        out.push_str(&format!(
            "{provider:<12} {:<24} {need:<9} {}\n",
            v.name, v.about
        ));
    }
    out
}

/// The declared secrets an env file (`NAME=value` lines, `#` comments) does not set.
pub fn missing_secrets(env_file: &str) -> Vec<&'static str> {
    let set: Vec<&str> = env_file
        .lines()
        .map(str::trim)
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split_once('='))
        .filter(|(_, value)| !value.trim().is_empty())
        .map(|(name, _)| name.trim())
        .collect();
    variables()
        .into_iter()
        .map(|(_, v)| v)
        .filter(|v| v.is_secret() && !set.contains(&v.name))
        .map(|v| v.name)
        .collect()
}

pub fn run(names: bool, check: Option<&str>) -> Result<(), String> {
    if let Some(path) = check {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{path}: {e}"))?;
        let missing = missing_secrets(&text);
        if !missing.is_empty() {
            return Err(format!("{path} sets no value for {}", missing.join(", ")));
        }
        println!("{path} sets every declared provider secret");
    } else if names {
        for (_, v) in variables() {
            println!("{}", v.name);
        }
    } else {
        print!("{}", table());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table_lists_every_provider_and_its_secret() {
        let table = table();
        for p in PROVIDERS {
            assert!(table.contains(p.name()), "{}", p.name());
            assert!(table.contains(p.secret().name), "{}", p.secret().name);
        }
        assert!(table.contains("PLATFORM_API_TIMEOUT_MS"));
    }

    #[test]
    fn a_check_names_what_is_missing() {
        let missing = missing_secrets("# comment\nTALLY_SECRET=x\nTYPEFORM_SECRET=\n");
        assert!(missing.contains(&"TYPEFORM_SECRET"), "{missing:?}");
        assert!(!missing.contains(&"TALLY_SECRET"));
        assert!(
            !missing.contains(&"GRAPH_API_URL"),
            "settings have defaults"
        );
    }

    /// events/local.env, the one file of local test values, covers every declared secret.
    #[test]
    fn local_env_covers_every_declared_secret() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../events/local.env");
        let text = std::fs::read_to_string(path).unwrap();
        assert_eq!(missing_secrets(&text), Vec::<&str>::new());
    }
}
