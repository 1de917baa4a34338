//! Webhooks as rules: the event types a receiver can ask for, the signature a receiver checks,
//! the retry schedule, and which receiver URLs are acceptable. No HTTP client, no SQL.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use std::time::Duration;

/// What happened, as a receiver filters and reads it (`type` in the body).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EventType {
    VoucherCreated,
    VoucherUpdated,
    VoucherDeleted,
    /// A charge, a discount use or a captured reservation.
    ChargeCreated,
    RefundCreated,
    ReservationCreated,
    ReservationReleased,
    ReservationExpired,
    ImportCompleted,
}

impl EventType {
    pub const ALL: [EventType; 9] = [
        EventType::VoucherCreated,
        EventType::VoucherUpdated,
        EventType::VoucherDeleted,
        EventType::ChargeCreated,
        EventType::RefundCreated,
        EventType::ReservationCreated,
        EventType::ReservationReleased,
        EventType::ReservationExpired,
        EventType::ImportCompleted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            EventType::VoucherCreated => "voucher.created",
            EventType::VoucherUpdated => "voucher.updated",
            EventType::VoucherDeleted => "voucher.deleted",
            EventType::ChargeCreated => "charge.created",
            EventType::RefundCreated => "refund.created",
            EventType::ReservationCreated => "reservation.created",
            EventType::ReservationReleased => "reservation.released",
            EventType::ReservationExpired => "reservation.expired",
            EventType::ImportCompleted => "import.completed",
        }
    }

    pub fn parse(text: &str) -> Option<EventType> {
        EventType::ALL.into_iter().find(|t| t.as_str() == text)
    }
}

/// The `Vouchd-Signature` header's value for `body` sent at unix second `t`:
/// `t=<t>,v1=<hex HMAC-SHA256 of "<t>.<body>" keyed with the secret>`.
pub fn signature(secret: &str, t: i64, body: &[u8]) -> String {
    // HMAC takes a key of any length, so this cannot fail.
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret.as_bytes()) {
        Ok(mac) => mac,
        Err(_) => return format!("t={t},v1="),
    };
    mac.update(t.to_string().as_bytes());
    mac.update(b".");
    mac.update(body);
    let digest = mac.finalize().into_bytes();
    let mut hex = String::with_capacity(64);
    for byte in digest {
        hex.push_str(&format!("{byte:02x}"));
    }
    format!("t={t},v1={hex}")
}

/// The longest wait between two attempts, however many failed.
pub const MAX_RETRY_DELAY: Duration = Duration::from_secs(3600);

/// How long to wait after the `failed`-th failed attempt (1 for the first): `first`, then
/// doubling up to [`MAX_RETRY_DELAY`], each scaled by 0.75 to 1.25 after `jitter` (0 ≤ jitter
/// < 1) so that receivers coming back up are not hit by every sender at the same instant.
pub fn retry_delay(failed: u32, first: Duration, jitter: f64) -> Duration {
    let doublings = failed.saturating_sub(1).min(30);
    let base = first.saturating_mul(1u32 << doublings).min(MAX_RETRY_DELAY);
    base.mul_f64(0.75 + 0.5 * jitter.clamp(0.0, 1.0))
}

/// Checks a receiver URL: `http://` or `https://`, a host, no user name or password in it,
/// no spaces or control characters, at most 2 000 characters.
pub fn check_url(url: &str) -> Result<(), String> {
    if url.len() > 2000 {
        return Err("must be at most 2000 characters".into());
    }
    if url.chars().any(|c| c.is_control() || c.is_whitespace()) {
        return Err("must not hold spaces or control characters".into());
    }
    let lower = url.to_ascii_lowercase();
    let rest = if let Some(rest) = lower.strip_prefix("https://") {
        rest
    } else if let Some(rest) = lower.strip_prefix("http://") {
        rest
    } else {
        return Err("must be an http:// or https:// URL".into());
    };
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    if authority.contains('@') {
        return Err("must not hold a user name or password".into());
    }
    let host = match authority.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(""),
        None => authority.split(':').next().unwrap_or(""),
    };
    if host.is_empty() {
        return Err("must name a host".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_type_parses_back_from_its_name() {
        for t in EventType::ALL {
            assert_eq!(EventType::parse(t.as_str()), Some(t));
        }
        assert_eq!(EventType::parse("charge.deleted"), None);
    }

    #[test]
    fn the_signature_is_rfc_4231_hmac_sha256_of_t_dot_body() {
        // The signed text is "t.body", the MAC keyed with the secret as given.
        let sig = signature("Jefe", 12, b"body");
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"12.body");
        let expected: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(sig, format!("t=12,v1={expected}"));
        // And the primitive itself is HMAC-SHA256 (RFC 4231, test case 2).
        let mut mac = Hmac::<Sha256>::new_from_slice(b"Jefe").unwrap();
        mac.update(b"what do ya want for nothing?");
        let known: String = mac
            .finalize()
            .into_bytes()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(
            known,
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn a_different_secret_time_or_body_changes_the_signature() {
        let base = signature("s", 1, b"{}");
        assert_ne!(base, signature("t", 1, b"{}"));
        assert_ne!(base, signature("s", 2, b"{}"));
        assert_ne!(base, signature("s", 1, b"{ }"));
    }

    #[test]
    fn retries_start_at_the_first_delay_and_double_within_the_jitter_band() {
        let first = Duration::from_secs(5);
        for failed in 1..=40u32 {
            let base = first
                .saturating_mul(1 << failed.saturating_sub(1).min(30))
                .min(MAX_RETRY_DELAY);
            for step in 0..100 {
                let jitter = f64::from(step) / 100.0;
                let d = retry_delay(failed, first, jitter);
                assert!(d >= base.mul_f64(0.75), "{failed} {jitter}: {d:?}");
                assert!(d <= base.mul_f64(1.25), "{failed} {jitter}: {d:?}");
            }
        }
        assert_eq!(retry_delay(1, first, 0.5), first);
        assert_eq!(retry_delay(2, first, 0.5), first * 2);
        assert_eq!(retry_delay(40, first, 0.5), MAX_RETRY_DELAY);
        // Out-of-range jitter is clamped, never a longer or negative wait.
        assert_eq!(retry_delay(1, first, 7.0), first.mul_f64(1.25));
        assert_eq!(retry_delay(1, first, -1.0), first.mul_f64(0.75));
    }

    #[test]
    fn only_http_and_https_urls_with_a_host_are_receivers() {
        for good in [
            "http://127.0.0.1:8080/hook",
            "https://books.example.com/vouchd?x=1",
            "HTTPS://EXAMPLE.COM",
            "http://[::1]:9000/",
            "http://backroom-laptop.local/",
        ] {
            assert_eq!(check_url(good), Ok(()), "{good}");
        }
        for bad in [
            "ftp://example.com/",
            "file:///etc/passwd",
            "gopher://x",
            "example.com/hook",
            "http://",
            "http:///path",
            "http://user:pw@example.com/",
            "http://exa mple.com/",
            "http://example.com/\n",
            "",
        ] {
            assert!(check_url(bad).is_err(), "{bad}");
        }
        assert!(check_url(&format!("http://e.com/{}", "a".repeat(2000))).is_err());
    }
}
