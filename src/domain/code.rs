//! Voucher codes and ids: what a cashier types, and what the API names.
//!
//! A code is 4–8 characters `[A-Z0-9]`; input is normalised once (ASCII lower case upper-cased,
//! ASCII spaces and `-` dropped) by [`Code::parse`], the one reader of codes from outside.
//! Nothing else is mapped: no Unicode case folding (`ß` would become `SS`), no other white
//! space dropped (a trailing NBSP or newline is refused, not trimmed). Generated codes and ids
//! come from the OS-seeded CSPRNG over explicit alphabets.

use rand::Rng;
use std::fmt;

/// Characters of generated codes: digits and letters without the look-alikes `0 O 1 I L`.
pub const CODE_ALPHABET: &[u8] = b"23456789ABCDEFGHJKMNPQRSTUVWXYZ";
/// Characters of server-assigned ids.
pub const ID_ALPHABET: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
pub const ID_LEN: usize = 16;
pub const CODE_MIN: usize = 4;
pub const CODE_MAX: usize = 8;
pub const CODE_DEFAULT_LEN: usize = 8;

/// A normalised voucher code.
#[derive(Clone, PartialEq, Eq, Hash, Debug)]
pub struct Code(String);

/// Why a text is not a code.
#[derive(Debug, PartialEq, Eq)]
pub enum CodeError {
    Length,
    Characters,
}

impl fmt::Display for CodeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CodeError::Length => write!(f, "must be {CODE_MIN} to {CODE_MAX} characters"),
            CodeError::Characters => f.write_str("may hold only the letters A-Z and digits 0-9"),
        }
    }
}

/// Upper-cases ASCII letters and drops ASCII spaces and dashes, the way codes are typed at a
/// till. Any other character is kept as it is, for the check after this to refuse.
fn normalize_code(input: &str) -> String {
    input
        .chars()
        .filter(|c| !matches!(c, ' ' | '-'))
        .map(|c| c.to_ascii_uppercase())
        .collect()
}

impl Code {
    /// Normalises and checks a code from outside (a body, a query, a path, a CSV cell).
    pub fn parse(input: &str) -> Result<Code, CodeError> {
        let code = normalize_code(input);
        if !code
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            return Err(CodeError::Characters);
        }
        if !(CODE_MIN..=CODE_MAX).contains(&code.len()) {
            return Err(CodeError::Length);
        }
        Ok(Code(code))
    }

    /// A code from the database, trusted as already normalised.
    pub fn from_stored(code: String) -> Code {
        Code(code)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A checked request for generated codes: a prefix and a total length.
#[derive(Clone, Debug)]
pub struct CodeShape {
    pub prefix: String,
    pub length: usize,
}

impl CodeShape {
    /// Checks the length (4–8, the prefix included) and the prefix (normalised, `[A-Z0-9]`,
    /// leaving at least one generated character).
    pub fn new(
        prefix: Option<&str>,
        length: Option<usize>,
    ) -> Result<CodeShape, (&'static str, String)> {
        let length = length.unwrap_or(CODE_DEFAULT_LEN);
        if !(CODE_MIN..=CODE_MAX).contains(&length) {
            return Err(("code_length", format!("must be {CODE_MIN} to {CODE_MAX}")));
        }
        let prefix = normalize_code(prefix.unwrap_or(""));
        if !prefix
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
        {
            return Err(("code_prefix", CodeError::Characters.to_string()));
        }
        if prefix.len() >= length {
            return Err(("code_prefix", "must be shorter than code_length".into()));
        }
        Ok(CodeShape { prefix, length })
    }

    /// How many distinct codes this shape can make (saturating).
    pub fn space(&self) -> u64 {
        (CODE_ALPHABET.len() as u64).saturating_pow((self.length - self.prefix.len()) as u32)
    }

    pub fn generate(&self, rng: &mut impl Rng) -> Code {
        let mut code = self.prefix.clone();
        code.extend(random_chars(
            rng,
            CODE_ALPHABET,
            self.length - self.prefix.len(),
        ));
        Code(code)
    }
}

/// Most of a shape's space a batch may ask for: beyond half, collisions make generation slow.
pub fn fits_in_space(wanted: u64, space: u64, taken: u64) -> bool {
    wanted <= space.saturating_sub(taken) / 2
}

fn random_chars<'a>(
    rng: &'a mut impl Rng,
    alphabet: &'a [u8],
    n: usize,
) -> impl Iterator<Item = char> + 'a {
    (0..n).map(move |_| char::from(alphabet[rng.gen_range(0..alphabet.len())]))
}

/// Leading characters of an id that encode its creation time.
const ID_TIME_LEN: usize = 10;

/// Whether `text` has the shape of an id ([`new_id`]): 16 characters of `A–Z` and `0–9`.
pub fn looks_like_id(text: &str) -> bool {
    text.len() == 16
        && text
            .bytes()
            .all(|b| b.is_ascii_uppercase() || b.is_ascii_digit())
}

/// A fresh server-assigned id: 16 characters `[A-Z0-9]`: the microseconds since the Unix epoch
/// in base 36 (10 characters, good until the year 2084), then 6 random characters (31 bits).
/// Ids made later sort later, so inserts land at the end of their unique index instead of on
/// a random page, which keeps each write transaction's dirty pages few.
/// Within one process the time part strictly increases (a later id never reuses a
/// microsecond, even if the clock steps back), so ids made here cannot clash; the random part
/// separates them from ids another process (the CLI) makes at the same moment.
pub fn new_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static LAST: AtomicU64 = AtomicU64::new(0);
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    let previous = LAST
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |last| {
            Some(now.max(last.saturating_add(1)))
        })
        .unwrap_or(now);
    let micros = now.max(previous.saturating_add(1));
    id_at(u128::from(micros), &mut rand::thread_rng())
}

fn id_at(micros: u128, rng: &mut impl Rng) -> String {
    let mut time = [b'0'; ID_TIME_LEN];
    let mut rest = micros;
    for slot in time.iter_mut().rev() {
        *slot = ID_ALPHABET[(rest % 36) as usize];
        rest /= 36;
    }
    let mut id: String = time.iter().map(|&b| char::from(b)).collect();
    id.extend(random_chars(rng, ID_ALPHABET, ID_LEN - ID_TIME_LEN));
    id
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_sort_by_creation_time_and_keep_their_shape() {
        let mut rng = rand::thread_rng();
        let early = id_at(1_700_000_000_000_000, &mut rng);
        let later = id_at(1_700_000_000_000_001, &mut rng);
        let much_later = id_at(3_500_000_000_000_000, &mut rng);
        assert!(early < later && later < much_later);
        for id in [&early, &later, &much_later] {
            assert_eq!(id.len(), ID_LEN);
            assert!(id.bytes().all(|b| ID_ALPHABET.contains(&b)), "{id}");
        }
        assert_eq!(&id_at(0, &mut rng)[..ID_TIME_LEN], "0000000000");
        let many: Vec<String> = (0..1000).map(|_| new_id()).collect();
        assert!(many
            .windows(2)
            .all(|w| w[0][..ID_TIME_LEN] < w[1][..ID_TIME_LEN]));
    }

    #[test]
    fn codes_are_normalised_then_checked() {
        assert_eq!(
            Code::parse("wq4m-m3").map(Code::into_string),
            Ok("WQ4MM3".into())
        );
        assert_eq!(
            Code::parse(" ab cd ").map(Code::into_string),
            Ok("ABCD".into())
        );
        assert_eq!(Code::parse("abc"), Err(CodeError::Length));
        assert_eq!(Code::parse("ABCDEFGHI"), Err(CodeError::Length));
        assert_eq!(Code::parse("AB_CD"), Err(CodeError::Characters));
        assert_eq!(Code::parse("ÄBCD"), Err(CodeError::Characters));
        assert_eq!(Code::parse(""), Err(CodeError::Length));
    }

    #[test]
    fn codes_get_no_unicode_case_mapping_and_no_other_white_space_dropped() {
        for (input, why) in [
            ("straße", "ß upper-cases to SS"),
            ("ﬁRST", "the ligature ﬁ upper-cases to FI"),
            ("ABCD\u{a0}", "a trailing no-break space"),
            ("ABCD\n", "a trailing newline"),
            ("AB\tCD", "a tab"),
            ("\u{2003}ABCD", "an em space"),
            ("ABCＤ", "a full-width letter"),
            ("ABCD\u{2010}", "a Unicode hyphen"),
            ("ıJKL", "a dotless i"),
        ] {
            assert_eq!(
                Code::parse(input),
                Err(CodeError::Characters),
                "{input:?}: {why}"
            );
        }
        assert_eq!(
            Code::parse("-a b-c d-").map(Code::into_string),
            Ok("ABCD".into())
        );
        // Every ASCII character: only letters, digits, space and `-` make a code.
        for b in 0u8..128 {
            let c = char::from(b);
            let parsed = Code::parse(&format!("ABC{c}")).map(Code::into_string);
            let want = match c {
                'a'..='z' => Ok(format!("ABC{}", c.to_ascii_uppercase())),
                'A'..='Z' | '0'..='9' => Ok(format!("ABC{c}")),
                ' ' | '-' => Err(CodeError::Length),
                _ => Err(CodeError::Characters),
            };
            assert_eq!(parsed, want, "{b:#04x}");
        }
    }

    #[test]
    fn generated_codes_use_the_alphabet_and_the_shape() {
        let shape = CodeShape::new(Some("xm-"), Some(6)).expect("valid shape");
        let mut rng = rand::thread_rng();
        for _ in 0..2_000 {
            let code = shape.generate(&mut rng);
            assert_eq!(code.as_str().len(), 6);
            assert!(code.as_str().starts_with("XM"));
            assert!(code.as_str()[2..]
                .bytes()
                .all(|b| CODE_ALPHABET.contains(&b)));
            assert_eq!(Code::parse(code.as_str()).as_ref(), Ok(&code));
        }
        for look_alike in b"0O1IL" {
            assert!(!CODE_ALPHABET.contains(look_alike));
        }
    }

    #[test]
    fn shapes_are_checked() {
        assert!(CodeShape::new(None, Some(3)).is_err());
        assert!(CodeShape::new(None, Some(9)).is_err());
        assert!(CodeShape::new(Some("ABCD"), Some(4)).is_err());
        assert!(CodeShape::new(Some("A_"), Some(6)).is_err());
        assert_eq!(
            CodeShape::new(None, None).map(|s| s.space()),
            Ok(31u64.pow(8))
        );
        assert_eq!(
            CodeShape::new(Some("ABC"), Some(4)).map(|s| s.space()),
            Ok(31)
        );
    }

    #[test]
    fn space_check_leaves_room() {
        assert!(fits_in_space(15, 31, 0));
        assert!(!fits_in_space(16, 31, 0));
        assert!(!fits_in_space(10, 31, 20));
        assert!(fits_in_space(100_000, 31u64.pow(4), 0));
    }

    #[test]
    fn ids_are_sixteen_of_the_id_alphabet() {
        let id = new_id();
        assert_eq!(id.len(), ID_LEN);
        assert!(id.bytes().all(|b| ID_ALPHABET.contains(&b)));
        assert_ne!(new_id(), new_id());
    }
}
