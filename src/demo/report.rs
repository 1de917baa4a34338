//! What `vouchd demo` prints: a summary, each new client's id and secret (shown this once, as
//! shell variables so they can be pasted), and curl commands that use those variables against
//! a voucher that exists in the demo.

use super::Filled;
use crate::store::clients::Client;
use std::fmt::Write;
use std::path::Path;
use std::time::Duration;

/// The client whose token the printed commands use.
const EXAMPLE_CLIENT: &str = "till-1";

/// `till-1` → `TILL_1`: the stem of a client's shell variables.
pub fn variable(name: &str) -> String {
    name.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() {
                c.to_ascii_uppercase()
            } else {
                '_'
            }
        })
        .collect()
}

/// A path as one shell word.
fn shell_word(text: &str) -> String {
    if !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "_./-+:=@,".contains(c))
    {
        text.to_string()
    } else {
        format!("'{}'", text.replace('\'', r"'\''"))
    }
}

fn client_lines(out: &mut String, client: &Client, secret: &str, about: &str) {
    let v = variable(&client.name);
    let _ = writeln!(
        out,
        "  # {} (group {}): {about}",
        client.name, client.group_name
    );
    let _ = writeln!(out, "  {v}_ID={}  {v}_SECRET={secret}", client.id);
}

/// The whole report. `admin` is the admin client if this run created it; `vouchd` is how the
/// printed commands call vouchd (`vouchd` when installed, else the executable's path).
pub fn render(
    filled: &Filled,
    admin: Option<&(Client, String)>,
    db: &Path,
    listen: &str,
    vouchd: &str,
    elapsed: Duration,
) -> String {
    let t = &filled.tally;
    let mut out = String::new();
    let _ = writeln!(
        out,
        "vouchd demo: filled {} in {:.2} s with a small shop's last thirteen months:",
        crate::store::shown(db),
        elapsed.as_secs_f64()
    );
    let owners: Vec<String> = filled
        .groups
        .iter()
        .zip(&t.per_owner)
        .map(|(g, n)| format!("{}: {n} vouchers", g.name))
        .collect();
    let currencies: Vec<&str> = t.currencies.iter().map(String::as_str).collect();
    let _ = writeln!(out, "  {}", owners.join("; "));
    let _ = writeln!(
        out,
        "  {} gift cards ({}) and {} discount vouchers; {} expired, {} not valid yet, \
         {} inactive, {} cancelled",
        t.gift_cards,
        currencies.join(", "),
        t.discount_vouchers,
        t.expired,
        t.not_yet_valid,
        t.inactive,
        t.cancelled
    );
    let _ = writeln!(
        out,
        "  {} ledger entries: {} charges, {} refunds, {} uses of discount vouchers",
        t.charges + t.refunds + t.uses,
        t.charges,
        t.refunds,
        t.uses
    );
    let _ = writeln!(
        out,
        "\nClients. Their secrets are shown only this once (vouchd keeps argon2id hashes), as\n\
         shell variables to paste into the terminal you will use curl in. A client signs in\n\
         with its id (the _ID value), not its name:\n"
    );
    let vouchd = shell_word(vouchd);
    let db_flag = if db == Path::new("./vouchd.db") {
        String::new()
    } else {
        // A PostgreSQL URL without its password (the reader adds theirs).
        format!(" --db {}", shell_word(&crate::store::shown(db)))
    };
    match admin {
        Some((client, secret)) => client_lines(
            &mut out,
            client,
            secret,
            "every scope; sees every group's vouchers",
        ),
        None => {
            let _ = writeln!(
                out,
                "  # admin: created earlier; its secret was shown then and is not kept. Another\n  \
                 # client that sees every group (it prints its client_id and client_secret):\n  \
                 #   {vouchd} client create admin-2 --group admin{db_flag}"
            );
        }
    }
    for (client, secret) in &filled.clients {
        client_lines(&mut out, client, secret, &client.scopes.to_space_list());
    }

    let serve = format!("{vouchd} serve{db_flag}");
    let base = format!("http://{listen}");
    let v = variable(EXAMPLE_CLIENT);
    let (id, code) = (&filled.example_id, &filled.example_code);
    let _ = writeln!(
        out,
        "\nStart the server:\n\n  {serve}\n\n\
         Then, in another terminal, with the variables above pasted:\n\n  \
         # 1. a token for {EXAMPLE_CLIENT} of Main Street Shop\n  \
         TOKEN=$(curl -s -u \"${v}_ID:${v}_SECRET\" -d grant_type=client_credentials \\\n      \
         {base}/oauth/token | sed 's/.*\"access_token\":\"\\([^\"]*\\)\".*/\\1/')\n  \
         # 2. the shop's vouchers, newest first (-w ends each answer with a line break,\n  \
         #    -g keeps curl off the brackets)\n  \
         curl -s -w '\\n' -g -H \"Authorization: Bearer $TOKEN\" '{base}/v1/vouchers?per_page=5'\n  \
         # 3. a partly spent gift card, looked up by its code\n  \
         curl -s -w '\\n' -g -H \"Authorization: Bearer $TOKEN\" '{base}/v1/vouchers?filter[code]={code}'\n  \
         # 4. its ledger: charges and refunds\n  \
         curl -s -w '\\n' -H \"Authorization: Bearer $TOKEN\" {base}/v1/vouchers/{id}/charges"
    );
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn variables_and_words_are_shell_safe() {
        assert_eq!(variable("till-1"), "TILL_1");
        assert_eq!(variable("checkout"), "CHECKOUT");
        assert_eq!(shell_word("./vouchd.db"), "./vouchd.db");
        assert_eq!(shell_word("/tmp/my shop.db"), "'/tmp/my shop.db'");
        assert_eq!(shell_word("it's.db"), r"'it'\''s.db'");
    }
}
