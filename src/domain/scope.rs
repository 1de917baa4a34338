//! The six scopes, sets of them, and who a valid token speaks for.

/// Every scope, in the order they are listed to clients.
pub const ALL_SCOPES: [&str; 6] = [
    "vouchers:read",
    "vouchers:write",
    "charges:read",
    "charges:write",
    "admin",
    "metrics",
];

pub const VOUCHERS_READ: &str = "vouchers:read";
pub const VOUCHERS_WRITE: &str = "vouchers:write";
pub const CHARGES_READ: &str = "charges:read";
pub const CHARGES_WRITE: &str = "charges:write";
pub const ADMIN: &str = "admin";
/// Scraping `/metrics` (every group's totals), and nothing else.
pub const METRICS: &str = "metrics";

/// A set of scopes as a bit set over [`ALL_SCOPES`].
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Scopes(u8);

impl Scopes {
    pub fn all() -> Scopes {
        Scopes((1 << ALL_SCOPES.len()) - 1)
    }

    /// Parses scopes separated by spaces or commas; an unknown one is returned as the error.
    pub fn parse(list: &str) -> Result<Scopes, String> {
        let mut set = 0u8;
        for name in list.split([' ', ',']).filter(|s| !s.is_empty()) {
            let bit = ALL_SCOPES
                .iter()
                .position(|s| *s == name)
                .ok_or_else(|| name.to_string())?;
            set |= 1 << bit;
        }
        Ok(Scopes(set))
    }

    pub fn from_names<'a>(names: impl IntoIterator<Item = &'a str>) -> Result<Scopes, String> {
        names.into_iter().try_fold(Scopes::default(), |acc, name| {
            Ok(Scopes(acc.0 | Scopes::parse(name)?.0))
        })
    }

    pub fn contains(self, scope: &str) -> bool {
        ALL_SCOPES
            .iter()
            .position(|s| *s == scope)
            .is_some_and(|bit| self.0 & (1 << bit) != 0)
    }

    pub fn is_subset_of(self, other: Scopes) -> bool {
        self.0 & !other.0 == 0
    }

    pub fn is_empty(self) -> bool {
        self.0 == 0
    }

    pub fn names(self) -> Vec<&'static str> {
        ALL_SCOPES
            .iter()
            .enumerate()
            .filter(|(bit, _)| self.0 & (1 << bit) != 0)
            .map(|(_, s)| *s)
            .collect()
    }

    /// Space-separated, as OAuth and the database write them.
    pub fn to_space_list(self) -> String {
        self.names().join(" ")
    }
}

/// A token as the database keeps it: its BLAKE2s-256 hash.
pub type TokenHash = [u8; 32];

/// Who a valid token speaks for.
#[derive(Clone, Debug)]
pub struct TokenInfo {
    pub client_id: String,
    pub group_id: String,
    pub scopes: Scopes,
    pub expires_at: i64,
    /// A dialect's own scope names granted with the token (the JTL dialect's), space-separated.
    pub dialect_scopes: Option<String>,
}

impl TokenInfo {
    pub fn is_admin(&self) -> bool {
        self.scopes.contains(ADMIN)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_parse_and_compare() {
        let read = Scopes::parse("vouchers:read").expect("known");
        let both = Scopes::parse("vouchers:read,charges:write").expect("known");
        assert!(read.is_subset_of(both) && !both.is_subset_of(read));
        assert!(both.contains("charges:write") && !both.contains("admin"));
        assert_eq!(both.to_space_list(), "vouchers:read charges:write");
        assert_eq!(Scopes::parse("vouchers:read nope"), Err("nope".into()));
        assert!(Scopes::parse("").expect("empty").is_empty());
        assert_eq!(Scopes::all().names().len(), 6);
    }
}
