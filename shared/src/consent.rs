//! Consent evidence (GDPR Art. 7(1): the controller must be able to show that the person
//! consented). Every explicit opt-in and opt-out is kept as it came, append-only, in the lead's
//! partition (`CONSENT#<at>#<touch_id>`, written in the same transaction as the touch): when,
//! through which platform and form, on which page, with which wording, and from which IP.
//!
//! The IP is kept only as a keyed hash, HMAC-SHA256 with a secret pepper
//! (`CONSENT_IP_PEPPER`): it proves "the same address as in our records" when the address is
//! presented, but cannot be turned back into an address, unlike a plain hash of the 2^32 IPv4
//! addresses. Without a pepper configured, no IP is stored at all.

use crate::privacy::Pepper;

pub use crate::privacy::MIN_PEPPER_BYTES;

/// The consent IP pepper, when configured (`CONSENT_IP_PEPPER`). `Debug` never prints it.
#[derive(Clone, Default, Debug)]
pub struct IpPepper(Pepper);

impl IpPepper {
    /// Reads `CONSENT_IP_PEPPER`; a pepper shorter than [`MIN_PEPPER_BYTES`] is refused
    /// (configuration error) rather than silently used.
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Result<IpPepper, String> {
        Pepper::from_lookup("CONSENT_IP_PEPPER", get).map(IpPepper)
    }

    pub fn is_set(&self) -> bool {
        self.0.is_set()
    }

    /// `hmac-sha256:<hex HMAC(pepper, ip)>` of a trimmed, lowercased address; `None` without a
    /// pepper or an address.
    pub fn hash(&self, ip: Option<&str>) -> Option<String> {
        let ip = ip.map(str::trim).filter(|ip| !ip.is_empty())?;
        let mac = self.0.mac_hex(&ip.to_ascii_lowercase())?;
        Some(format!("hmac-sha256:{mac}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pepper(p: &str) -> IpPepper {
        IpPepper::from_lookup(|k| (k == "CONSENT_IP_PEPPER").then(|| p.to_string())).unwrap()
    }

    #[test]
    fn ip_is_keyed_and_never_stored_without_a_pepper() {
        let none = IpPepper::from_lookup(|_| None).unwrap();
        assert_eq!(none.hash(Some("203.0.113.7")), None);
        let a = pepper("a-long-random-pepper-1");
        let b = pepper("a-long-random-pepper-2");
        let ha = a.hash(Some("203.0.113.7")).unwrap();
        assert!(ha.starts_with("hmac-sha256:"));
        assert!(!ha.contains("203.0.113.7"));
        assert_eq!(a.hash(Some(" 203.0.113.7 ")).unwrap(), ha, "stable");
        assert_ne!(b.hash(Some("203.0.113.7")).unwrap(), ha, "keyed");
        assert_eq!(a.hash(None), None);
        assert!(!format!("{a:?}").contains("pepper"));
    }

    #[test]
    fn short_peppers_are_refused() {
        assert!(IpPepper::from_lookup(|_| Some("short".into())).is_err());
    }
}
