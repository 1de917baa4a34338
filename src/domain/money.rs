//! Exact money: integer minor units of an ISO 4217 currency.
//!
//! Amounts cross the wire as decimal strings (or JSON numbers, taken by their text) and are
//! parsed here once, into minor units, refusing more decimals than the currency has. Nothing in
//! vouchd ever holds money in a float.

use std::fmt;

/// The largest amount accepted anywhere, in major units: far above any voucher, far below i64.
pub const MAX_MAJOR: i64 = 1_000_000_000;

/// The most decimals any currency has (CLF's 4).
pub const MAX_EXPONENT: u8 = 4;

/// ISO 4217 codes with a minor-unit exponent other than 2. Every other code in [`CURRENCIES`]
/// has two decimals.
const EXPONENTS: &[(&str, u8)] = &[
    ("BHD", 3),
    ("BIF", 0),
    ("CLF", 4),
    ("CLP", 0),
    ("DJF", 0),
    ("GNF", 0),
    ("IQD", 3),
    ("ISK", 0),
    ("JOD", 3),
    ("JPY", 0),
    ("KMF", 0),
    ("KRW", 0),
    ("KWD", 3),
    ("LYD", 3),
    ("OMR", 3),
    ("PYG", 0),
    ("RWF", 0),
    ("TND", 3),
    ("UGX", 0),
    ("UYI", 0),
    ("UYW", 4),
    ("VND", 0),
    ("VUV", 0),
    ("XAF", 0),
    ("XOF", 0),
    ("XPF", 0),
];

/// Active ISO 4217 currency codes (funds and precious metals left out).
const CURRENCIES: &str = "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND \
    BOB BRL BSD BTN BWP BYN BZD CAD CDF CHF CLF CLP CNY COP CRC CUP CVE CZK DJF DKK DOP DZD EGP \
    ERN ETB EUR FJD FKP GBP GEL GHS GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK \
    JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK \
    MNT MOP MRU MUR MVR MWK MXN MYR MZN NAD NGN NIO NOK NPR NZD OMR PAB PEN PGK PHP PKR PLN PYG \
    QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN SVC SYP SZL THB TJS TMT \
    TND TOP TRY TTD TWD TZS UAH UGX USD UYI UYU UYW UZS VES VND VUV WST XAF XCD XOF XPF YER ZAR \
    ZMW ZWL";

/// A known ISO 4217 currency, stored as its three upper-case letters.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Currency([u8; 3]);

impl Currency {
    /// Parses a currency code; lower case is accepted and upper-cased.
    pub fn parse(text: &str) -> Option<Currency> {
        let upper = text.trim().to_ascii_uppercase();
        let bytes: [u8; 3] = upper.as_bytes().try_into().ok()?;
        if !bytes.iter().all(u8::is_ascii_uppercase) {
            return None;
        }
        CURRENCIES
            .split_ascii_whitespace()
            .any(|c| c == upper)
            .then_some(Currency(bytes))
    }

    pub fn as_str(&self) -> &str {
        // Only ever built from ASCII upper-case letters.
        std::str::from_utf8(&self.0).unwrap_or("XXX")
    }

    /// Number of decimals of the minor unit.
    pub fn exponent(&self) -> u8 {
        EXPONENTS
            .iter()
            .find(|(c, _)| *c == self.as_str())
            .map_or(2, |(_, e)| *e)
    }

    /// The largest amount accepted, in minor units.
    pub fn max_minor(&self) -> i64 {
        MAX_MAJOR * 10i64.pow(u32::from(self.exponent()))
    }
}

impl fmt::Debug for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl fmt::Display for Currency {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a decimal text is not an amount.
#[derive(Debug, PartialEq, Eq)]
pub enum AmountError {
    Malformed,
    TooManyDecimals(u8),
    Negative,
    TooLarge,
}

impl fmt::Display for AmountError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AmountError::Malformed => f.write_str("must be a decimal number such as \"10.50\""),
            AmountError::TooManyDecimals(0) => f.write_str("this currency has no decimals"),
            AmountError::TooManyDecimals(e) => write!(f, "at most {e} decimals for this currency"),
            AmountError::Negative => f.write_str("must not be negative"),
            AmountError::TooLarge => write!(f, "must not exceed {MAX_MAJOR}"),
        }
    }
}

/// Parses a non-negative decimal (`"10"`, `"10.5"`, `"10.50"`) into units of `10^-scale`.
///
/// No exponent notation, no sign other than a leading `-` (refused as negative), no spaces.
/// The result is at most `MAX_MAJOR * 10^scale`.
pub fn parse_decimal(text: &str, scale: u8) -> Result<i64, AmountError> {
    let (negative, body) = match text.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, text),
    };
    let (int_part, frac_part) = match body.split_once('.') {
        Some((i, f)) => (i, Some(f)),
        None => (body, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if !digits(int_part) || frac_part.is_some_and(|f| !digits(f)) {
        return Err(AmountError::Malformed);
    }
    let frac = frac_part.unwrap_or("");
    let significant = frac.trim_end_matches('0');
    if significant.len() > usize::from(scale) {
        return Err(AmountError::TooManyDecimals(scale));
    }
    let int_digits = int_part.trim_start_matches('0');
    // MAX_MAJOR has 10 digits; anything longer is too large before any arithmetic.
    if int_digits.len() > 10 {
        return Err(if negative {
            AmountError::Negative
        } else {
            AmountError::TooLarge
        });
    }
    let major: i64 = if int_digits.is_empty() {
        0
    } else {
        int_digits.parse().map_err(|_| AmountError::Malformed)?
    };
    let mut minor_frac: i64 = 0;
    for i in 0..usize::from(scale) {
        let d = significant
            .as_bytes()
            .get(i)
            .map_or(0, |b| i64::from(b - b'0'));
        minor_frac = minor_frac * 10 + d;
    }
    let value = major * 10i64.pow(u32::from(scale)) + minor_frac;
    if negative && value != 0 {
        return Err(AmountError::Negative);
    }
    if value > MAX_MAJOR * 10i64.pow(u32::from(scale)) {
        return Err(AmountError::TooLarge);
    }
    Ok(value)
}

/// Renders units of `10^-scale` as a decimal with exactly `scale` decimals. Takes sums too:
/// an `i128` of minor units.
pub fn format_decimal(value: impl Into<i128>, scale: u8) -> String {
    let value: i128 = value.into();
    if scale == 0 {
        return value.to_string();
    }
    let sign = if value < 0 { "-" } else { "" };
    let abs = value.unsigned_abs();
    let pow = 10u128.pow(u32::from(scale));
    format!(
        "{sign}{}.{:0width$}",
        abs / pow,
        abs % pow,
        width = usize::from(scale)
    )
}

/// Renders a decimal with trailing zeros (and a bare point) dropped: `1900` at scale 2 → `"19"`.
pub fn format_decimal_trimmed(value: i64, scale: u8) -> String {
    let full = format_decimal(value, scale);
    if full.contains('.') {
        full.trim_end_matches('0').trim_end_matches('.').to_string()
    } else {
        full
    }
}

/// An amount of one currency in its minor units.
#[derive(Clone, Copy, PartialEq, Eq, Debug)]
pub struct Money {
    pub minor: i64,
    pub currency: Currency,
}

impl Money {
    pub fn parse(text: &str, currency: Currency) -> Result<Money, AmountError> {
        parse_decimal(text, currency.exponent()).map(|minor| Money { minor, currency })
    }

    /// The decimal text of this amount, e.g. `"10.50"`.
    pub fn to_decimal(self) -> String {
        format_decimal(self.minor, self.currency.exponent())
    }
}

/// `total × percent_hundredths / 10 000`, rounded half up to whole minor units.
///
/// `percent_hundredths` is a percentage with two decimals as an integer (`12.50 %` → `1250`).
pub fn percent_of(total_minor: i64, percent_hundredths: i64) -> i64 {
    let product = i128::from(total_minor) * i128::from(percent_hundredths);
    let rounded = (product + 5_000) / 10_000;
    // total ≤ MAX_MAJOR·10^4 and percent ≤ 10 000, so the quotient is ≤ total and fits.
    i64::try_from(rounded).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn eur() -> Currency {
        Currency::parse("EUR").expect("EUR is known")
    }

    const CLF_MAX_MINOR: i64 = MAX_MAJOR * 10_000;

    #[test]
    fn no_currency_has_more_decimals_than_max_exponent() {
        assert!(EXPONENTS.iter().all(|(_, e)| *e <= MAX_EXPONENT));
        assert!(EXPONENTS.iter().any(|(_, e)| *e == MAX_EXPONENT));
    }

    #[test]
    fn parses_decimals_exactly() {
        assert_eq!(parse_decimal("10.53", 2), Ok(1053));
        assert_eq!(parse_decimal("10.5", 2), Ok(1050));
        assert_eq!(parse_decimal("10", 2), Ok(1000));
        assert_eq!(parse_decimal("0.01", 2), Ok(1));
        assert_eq!(parse_decimal("10.500", 2), Ok(1050));
        assert_eq!(parse_decimal("007.10", 2), Ok(710));
        assert_eq!(parse_decimal("5", 0), Ok(5));
        assert_eq!(parse_decimal("1.234", 3), Ok(1234));
        assert_eq!(parse_decimal("-0", 2), Ok(0));
    }

    #[test]
    fn refuses_bad_decimals() {
        assert_eq!(
            parse_decimal("10.531", 2),
            Err(AmountError::TooManyDecimals(2))
        );
        assert_eq!(
            parse_decimal("1.5", 0),
            Err(AmountError::TooManyDecimals(0))
        );
        for bad in [
            "", ".", "1.", ".5", "1e3", "1,50", " 1", "1 ", "+1", "0x10", "1.2.3", "١٢",
        ] {
            assert_eq!(
                parse_decimal(bad, 2),
                Err(AmountError::Malformed),
                "{bad:?}"
            );
        }
        assert_eq!(parse_decimal("-1.00", 2), Err(AmountError::Negative));
        assert_eq!(
            parse_decimal("1000000000.01", 2),
            Err(AmountError::TooLarge)
        );
        assert_eq!(
            parse_decimal("99999999999999999999999999", 2),
            Err(AmountError::TooLarge)
        );
        assert_eq!(parse_decimal("1000000000", 2), Ok(100_000_000_000));
    }

    #[test]
    fn formats_with_the_currency_exponent() {
        assert_eq!(format_decimal(1053, 2), "10.53");
        assert_eq!(format_decimal(5, 2), "0.05");
        assert_eq!(format_decimal(0, 2), "0.00");
        assert_eq!(format_decimal(7, 0), "7");
        assert_eq!(format_decimal(1234, 3), "1.234");
        assert_eq!(format_decimal(-150, 2), "-1.50");
        // Sums beyond i64: ten million of the largest CLF amount.
        let sum = i128::from(CLF_MAX_MINOR) * 10_000_000;
        assert_eq!(format_decimal(sum, 4), "10000000000000000.0000");
        assert_eq!(format_decimal(sum + 1, 4), "10000000000000000.0001");
        assert_eq!(format_decimal(-sum - 5, 0), "-100000000000000000005");
        assert_eq!(format_decimal_trimmed(1900, 2), "19");
        assert_eq!(format_decimal_trimmed(750, 2), "7.5");
    }

    #[test]
    fn parse_and_format_round_trip_over_many_values() {
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for _ in 0..10_000 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            for scale in [0u8, 2, 3, 4] {
                let v = (x % (MAX_MAJOR as u64 * 10u64.pow(u32::from(scale)))) as i64;
                assert_eq!(parse_decimal(&format_decimal(v, scale), scale), Ok(v));
            }
        }
    }

    #[test]
    fn currencies_know_their_exponents() {
        assert_eq!(eur().exponent(), 2);
        assert_eq!(Currency::parse("jpy").map(|c| c.exponent()), Some(0));
        assert_eq!(Currency::parse("KWD").map(|c| c.exponent()), Some(3));
        assert!(Currency::parse("XYZ").is_none());
        assert!(Currency::parse("EURO").is_none());
        assert!(Currency::parse("").is_none());
        assert_eq!(
            Money::parse("10.5", eur()).map(Money::to_decimal),
            Ok("10.50".into())
        );
    }

    #[test]
    fn percentages_round_half_up() {
        assert_eq!(percent_of(5, 3300), 2); // 33 % of 0.05 = 0.0165 → 0.02
        assert_eq!(percent_of(4000, 1250), 500);
        assert_eq!(percent_of(1, 5000), 1); // 0.005 → 0.01
        assert_eq!(percent_of(1, 4999), 0);
        assert_eq!(percent_of(999, 10_000), 999);
        assert_eq!(percent_of(0, 10_000), 0);
    }
}
