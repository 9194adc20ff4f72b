//! Enums whose values travel as text (JSON bodies, DynamoDB attributes, metric names, query
//! parameters) are declared with [`named_enum!`]: each variant's name is written once, and
//! `as_str`, `parse`, `ALL` and the serde impls all come from it, so they cannot drift apart.

/// Declares an enum with one text name per variant:
///
/// ```
/// leadflow::named_enum! {
///     /// How warm a lead is.
///     #[derive(Hash)]
///     pub enum Warmth {
///         Cold = "cold", Hot = "hot",
///     }
/// }
/// assert_eq!(Warmth::parse("hot"), Some(Warmth::Hot));
/// assert_eq!(Warmth::Cold.as_str(), "cold");
/// assert_eq!(Warmth::ALL, [Warmth::Cold, Warmth::Hot]);
/// assert_eq!(serde_json::to_string(&Warmth::Hot).unwrap(), "\"hot\"");
/// ```
///
/// The enum always derives `Debug, Clone, Copy, PartialEq, Eq` (a name is a small value: `as_str`
/// takes `self`); further derives go on the declaration as usual.
///
/// The enum gets `ALL` (declaration order), `as_str`, `parse` (exact names only) and
/// `Serialize`/`Deserialize` as its names (an unknown name is serde's `unknown variant` error,
/// listing the names).
#[macro_export]
macro_rules! named_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        $vis enum $name {
            $($(#[$vmeta])* $variant),+
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: [$name; [$($text),+].len()] = [$($name::$variant),+];
            const NAMES: &'static [&'static str] = &[$($text),+];

            /// The value's name, as stored and sent.
            pub fn as_str(self) -> &'static str {
                match self {
                    $($name::$variant => $text),+
                }
            }

            /// The value named `s` (exactly), if any.
            pub fn parse(s: &str) -> Option<$name> {
                match s {
                    $($text => Some($name::$variant),)+
                    _ => None,
                }
            }
        }

        impl ::serde::Serialize for $name {
            fn serialize<S: ::serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }

        impl<'de> ::serde::Deserialize<'de> for $name {
            fn deserialize<D: ::serde::Deserializer<'de>>(d: D) -> Result<$name, D::Error> {
                let text = <::std::borrow::Cow<'de, str> as ::serde::Deserialize>::deserialize(d)?;
                $name::parse(&text).ok_or_else(|| {
                    <D::Error as ::serde::de::Error>::unknown_variant(&text, $name::NAMES)
                })
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use crate::metrics::GroupBy;
    use crate::model::{
        Channel, Direction, IngestStatus, ReviewPlatform, Stage, Temperature, TouchKind,
    };
    use crate::sales::SalesEventKind;
    use crate::store::ReviewStatus;

    /// Every value's name parses back to it and is what serde writes and reads.
    fn round_trips<T>(all: &[T], as_str: fn(T) -> &'static str, parse: fn(&str) -> Option<T>)
    where
        T: Copy + PartialEq + std::fmt::Debug + serde::Serialize + serde::de::DeserializeOwned,
    {
        for v in all {
            let name = as_str(*v);
            assert_eq!(parse(name), Some(*v));
            let json = serde_json::to_string(v).unwrap();
            assert_eq!(json, format!("\"{name}\""));
            assert_eq!(serde_json::from_str::<T>(&json).unwrap(), *v);
        }
        assert_eq!(parse("no-such-name"), None);
        let err = serde_json::from_str::<T>("\"no-such-name\"").unwrap_err();
        assert!(err.to_string().contains("unknown variant"), "{err}");
    }

    #[test]
    fn every_named_enum_round_trips() {
        round_trips(&Channel::ALL, Channel::as_str, Channel::parse);
        round_trips(&Direction::ALL, Direction::as_str, Direction::parse);
        round_trips(&TouchKind::ALL, TouchKind::as_str, TouchKind::parse);
        round_trips(
            &IngestStatus::ALL,
            IngestStatus::as_str,
            IngestStatus::parse,
        );
        round_trips(&Stage::ALL, Stage::as_str, Stage::parse);
        round_trips(&Temperature::ALL, Temperature::as_str, Temperature::parse);
        round_trips(
            &ReviewPlatform::ALL,
            ReviewPlatform::as_str,
            ReviewPlatform::parse,
        );
        round_trips(
            &SalesEventKind::ALL,
            SalesEventKind::as_str,
            SalesEventKind::parse,
        );
        round_trips(&GroupBy::ALL, GroupBy::as_str, GroupBy::parse);
        round_trips(
            &ReviewStatus::ALL,
            ReviewStatus::as_str,
            ReviewStatus::parse,
        );
    }

    #[test]
    fn names_are_the_documented_snake_case() {
        assert_eq!(Channel::PaidSearch.as_str(), "paid_search");
        assert_eq!(TouchKind::MeetingCanceled.as_str(), "meeting_canceled");
        assert_eq!(ReviewPlatform::G2.as_str(), "g2");
        assert_eq!(
            Stage::ALL,
            [Stage::Lead, Stage::Mql, Stage::Sql, Stage::Customer]
        );
    }
}
