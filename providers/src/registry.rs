//! Lookups in the one list of platforms ([`PROVIDERS`], declared in `lib.rs` with their
//! modules). A platform is served, configured, listed (`leadflow providers`) and checked by the
//! tests because it is on that list; nothing else names them all.

use crate::{Provider, PROVIDERS};

/// The platform named `name` (the path segment), if it is on the list.
pub fn find(name: &str) -> Option<&'static dyn Provider> {
    PROVIDERS.iter().copied().find(|p| p.name() == name)
}

/// A metric dimension value: the platform's name when it is on the list, else `(other)`, so
/// a request cannot mint metrics.
pub fn dimension(name: &str) -> &'static str {
    find(name).map_or(leadflow::limits::OTHER, |p| p.name())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::{Kind, Need, SHARED_VARIABLES};

    #[test]
    fn names_and_variables_are_unique_and_well_formed() {
        let mut names = std::collections::BTreeSet::new();
        let mut vars = std::collections::BTreeSet::new();
        for p in PROVIDERS {
            assert!(names.insert(p.name()), "{} listed twice", p.name());
            assert!(
                p.name()
                    .bytes()
                    .all(|b| b.is_ascii_lowercase() || b == b'-'),
                "{}",
                p.name()
            );
            assert!(
                p.variables().contains(&p.secret()),
                "{}: its secret is one of its variables",
                p.name()
            );
            assert_eq!(p.secret().need, Need::Required, "{}", p.name());
            assert_eq!(p.secret().kind, Kind::Secret, "{}", p.name());
            for v in p.variables() {
                assert!(vars.insert(v.name), "{} declared twice", v.name);
                assert!(!v.about.is_empty(), "{} says what it is", v.name);
            }
        }
        for v in SHARED_VARIABLES {
            assert!(vars.insert(v.name), "{} declared twice", v.name);
        }
        assert!(
            !names.contains("form"),
            "form is the web form's, not a platform"
        );
    }

    #[test]
    fn dimensions_are_known_names_only() {
        assert_eq!(dimension("google-ads"), "google-ads");
        assert_eq!(dimension("myspace"), "(other)");
        assert!(find("trustpilot").is_none());
    }
}
