//! JTL's seven scopes and how they map onto vouchd's: a client may be granted a JTL scope when
//! its own scopes (its group's, or the subset it was created with) hold every vouchd scope that
//! JTL scope needs. A JTL token keeps the JTL names it was granted and works on `/jtl` only; a
//! native token is taken to hold every JTL scope its vouchd scopes allow. Adding credit
//! (`recharge`) and changing a voucher's status (under `use`) need `vouchers:write`, as on the
//! native API, so a till credential holding only `charges:write` gains neither.

use crate::api::oauth::Grant;
use crate::auth::scope::{Scopes, CHARGES_READ, CHARGES_WRITE, VOUCHERS_READ, VOUCHERS_WRITE};
use crate::auth::token::TokenInfo;

/// `(JTL scope, the vouchd scopes it needs)`, in JTL's order.
pub const MAPPING: [(&str, &[&str]); 7] = [
    ("read", &[VOUCHERS_READ]),
    ("read-lists", &[VOUCHERS_READ, CHARGES_READ]),
    ("read-secrets", &[VOUCHERS_READ, VOUCHERS_WRITE]),
    ("use", &[CHARGES_WRITE]),
    ("manage", &[VOUCHERS_WRITE]),
    ("update", &[VOUCHERS_WRITE]),
    ("recharge", &[CHARGES_WRITE, VOUCHERS_WRITE]),
];

pub const READ: &str = "read";
pub const READ_LISTS: &str = "read-lists";
pub const READ_SECRETS: &str = "read-secrets";
pub const USE: &str = "use";
pub const MANAGE: &str = "manage";
pub const UPDATE: &str = "update";
pub const RECHARGE: &str = "recharge";

/// The vouchd scopes a JTL scope needs; `None` for a name JTL does not have.
fn needs(jtl: &str) -> Option<Scopes> {
    MAPPING
        .iter()
        .find(|(name, _)| *name == jtl)
        .and_then(|(_, needed)| Scopes::from_names(needed.iter().copied()).ok())
}

/// The JTL scopes these vouchd scopes allow, in JTL's order.
pub fn allowed_by(scopes: Scopes) -> Vec<&'static str> {
    MAPPING
        .iter()
        .filter(|(name, _)| needs(name).is_some_and(|n| n.is_subset_of(scopes)))
        .map(|(name, _)| *name)
        .collect()
}

/// The token endpoint's rule: the JTL scopes asked for (space- or comma-separated), each
/// allowed by the client's scopes, or all it is allowed when none are asked for. The token
/// holds the vouchd scopes those JTL scopes need, plus `vouchers:write` with `use` when the
/// client has it (the status change); it is refused on the native routes all the same.
pub fn grant(asked: Option<&str>, client: Scopes) -> Option<Grant> {
    let names: Vec<&'static str> = match asked {
        Some(list) => {
            let mut names = Vec::new();
            for name in list.split([' ', ',']).filter(|s| !s.is_empty()) {
                let (known, _) = MAPPING.iter().find(|(n, _)| *n == name)?;
                if !needs(known)?.is_subset_of(client) {
                    return None;
                }
                if !names.contains(known) {
                    names.push(*known);
                }
            }
            if names.is_empty() {
                return None;
            }
            names
        }
        None => allowed_by(client),
    };
    let mut scopes = Scopes::default();
    for name in &names {
        let mut needed = needs(name)?;
        if *name == USE && client.contains(VOUCHERS_WRITE) {
            needed = Scopes::from_names(needed.names().into_iter().chain([VOUCHERS_WRITE]))
                .unwrap_or(needed);
        }
        scopes =
            Scopes::from_names(scopes.names().into_iter().chain(needed.names())).unwrap_or(scopes);
    }
    let list = names.join(" ");
    Some(Grant {
        scopes,
        dialect_scopes: Some(list.clone()),
        scope: list,
    })
}

/// Whether the token may activate or deactivate vouchers: JTL's `use`, and `vouchers:write`
/// as a status change needs on the native API.
pub fn may_change_status(token: &TokenInfo) -> bool {
    holds(token, USE) && token.scopes.contains(VOUCHERS_WRITE)
}

/// Whether the token holds the JTL scope `jtl`.
pub fn holds(token: &TokenInfo, jtl: &str) -> bool {
    match &token.dialect_scopes {
        Some(list) => list.split(' ').any(|s| s == jtl),
        None => allowed_by(token.scopes).contains(&jtl),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scopes(list: &str) -> Scopes {
        Scopes::parse(list).expect("known scopes")
    }

    #[test]
    fn a_till_group_gets_the_till_scopes_and_not_the_issuing_ones() {
        let till = scopes("vouchers:read charges:read charges:write");
        assert_eq!(allowed_by(till), vec!["read", "read-lists", "use"]);
        assert!(
            grant(Some("recharge"), till).is_none(),
            "recharge adds credit"
        );
        let g = grant(Some("read use"), till).expect("allowed");
        assert_eq!(g.scope, "read use");
        assert_eq!(g.dialect_scopes.as_deref(), Some("read use"));
        assert_eq!(g.scopes, scopes("vouchers:read charges:write"));
        assert!(grant(Some("manage"), till).is_none());
        assert!(grant(Some("read bogus"), till).is_none());
        assert!(grant(Some("vouchers:read"), till).is_none());
        assert!(grant(Some(" "), till).is_none());
    }

    #[test]
    fn without_a_scope_every_allowed_one_is_granted() {
        let all = Scopes::all();
        let g = grant(None, all).expect("granted");
        assert_eq!(
            g.scope,
            "read read-lists read-secrets use manage update recharge"
        );
        assert!(!g.scopes.contains("admin"), "JTL tokens never carry admin");
    }

    #[test]
    fn tokens_hold_their_granted_names_or_what_their_vouchd_scopes_allow() {
        let mut token = TokenInfo {
            client_id: "C".into(),
            group_id: "G".into(),
            scopes: scopes("charges:write"),
            expires_at: 0,
            dialect_scopes: Some("use".into()),
        };
        assert!(holds(&token, USE));
        assert!(!holds(&token, RECHARGE), "same vouchd scope, not granted");
        assert!(!may_change_status(&token), "use without vouchers:write");
        token.dialect_scopes = None;
        assert!(
            !holds(&token, RECHARGE),
            "charges:write alone adds no credit"
        );
        assert!(!holds(&token, READ));
        token.scopes = scopes("charges:write vouchers:write");
        assert!(holds(&token, RECHARGE));
        assert!(may_change_status(&token));
        let g = grant(Some("use"), scopes("charges:write vouchers:write")).expect("allowed");
        assert_eq!(g.scopes, scopes("charges:write vouchers:write"));
    }
}
