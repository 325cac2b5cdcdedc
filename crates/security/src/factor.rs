//! Authentication factors and sets of them.
//!
//! A factor is one kind of proof: a verified client certificate, a
//! password (plain in CONNECT or proven through SCRAM), or a TOTP code.
//! Identities, roles and listeners each name the set they require; the
//! broker admits a client only when the factors it proved cover the union.

use std::fmt;

/// One kind of proof of identity.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Factor {
    /// A client certificate verified by the TLS layer whose identity is the
    /// claimed one.
    Certificate,
    /// The identity's password, in CONNECT or through SCRAM-SHA-256.
    Password,
    /// A fresh RFC 6238 code from the identity's authenticator.
    Totp,
}

impl Factor {
    pub const ALL: [Factor; 3] = [Factor::Certificate, Factor::Password, Factor::Totp];

    /// The name used in files and logs.
    pub fn name(self) -> &'static str {
        match self {
            Factor::Certificate => "certificate",
            Factor::Password => "password",
            Factor::Totp => "totp",
        }
    }

    /// The inverse of [`Factor::name`].
    pub fn parse(s: &str) -> Option<Factor> {
        Factor::ALL.into_iter().find(|f| f.name() == s)
    }

    fn bit(self) -> u8 {
        match self {
            Factor::Certificate => 1,
            Factor::Password => 2,
            Factor::Totp => 4,
        }
    }
}

impl fmt::Display for Factor {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A set of factors.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct FactorSet(u8);

impl FactorSet {
    pub const EMPTY: FactorSet = FactorSet(0);
    pub const CERTIFICATE: FactorSet = FactorSet(1);
    pub const PASSWORD: FactorSet = FactorSet(2);
    pub const TOTP: FactorSet = FactorSet(4);

    pub fn of(factor: Factor) -> FactorSet {
        FactorSet(factor.bit())
    }

    /// Parses names such as `["certificate", "password"]`; the error is the
    /// first unknown name.
    pub fn parse<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<FactorSet, String> {
        let mut set = FactorSet::EMPTY;
        for n in names {
            let f = Factor::parse(n).ok_or_else(|| n.to_owned())?;
            set = set.with(f);
        }
        Ok(set)
    }

    pub fn with(self, factor: Factor) -> FactorSet {
        FactorSet(self.0 | factor.bit())
    }

    pub fn has(self, factor: Factor) -> bool {
        self.0 & factor.bit() != 0
    }

    /// Whether every factor of `other` is in `self`.
    pub fn contains(self, other: FactorSet) -> bool {
        self.0 & other.0 == other.0
    }

    pub fn union(self, other: FactorSet) -> FactorSet {
        FactorSet(self.0 | other.0)
    }

    /// The factors of `self` that are not in `other`.
    pub fn without(self, other: FactorSet) -> FactorSet {
        FactorSet(self.0 & !other.0)
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn iter(self) -> impl Iterator<Item = Factor> {
        Factor::ALL.into_iter().filter(move |f| self.has(*f))
    }
}

impl std::ops::BitOr for FactorSet {
    type Output = FactorSet;
    fn bitor(self, rhs: FactorSet) -> FactorSet {
        self.union(rhs)
    }
}

impl From<Factor> for FactorSet {
    fn from(f: Factor) -> FactorSet {
        FactorSet::of(f)
    }
}

/// `certificate+password`, or `none`.
impl fmt::Display for FactorSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.is_empty() {
            return f.write_str("none");
        }
        for (i, factor) in self.iter().enumerate() {
            if i > 0 {
                f.write_str("+")?;
            }
            f.write_str(factor.name())?;
        }
        Ok(())
    }
}

impl fmt::Debug for FactorSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "FactorSet({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets() {
        let s = FactorSet::parse(["password", "totp"]).unwrap();
        assert_eq!(s, FactorSet::PASSWORD | FactorSet::TOTP);
        assert_eq!(s.to_string(), "password+totp");
        assert!(s.contains(FactorSet::TOTP));
        assert!(!s.contains(FactorSet::CERTIFICATE));
        assert_eq!(s.without(FactorSet::PASSWORD), FactorSet::TOTP);
        assert_eq!(FactorSet::EMPTY.to_string(), "none");
        assert_eq!(FactorSet::parse(["pin"]), Err("pin".to_owned()));
    }
}
