//! The arguments of `vouchd webhook add|list|remove` (run by `commands`), and the `serve`
//! flags of webhook delivery (`--webhook-retry-for`, `--webhook-first-retry`).

use super::spec::Spec;
use super::{db_path, none, one, option};
use crate::domain::webhook::EventType;
use crate::ops::webhooks::Settings;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug)]
pub enum WebhookCommand {
    Add {
        db: PathBuf,
        group: String,
        url: String,
        events: String,
    },
    List {
        db: PathBuf,
    },
    Remove {
        db: PathBuf,
        id: String,
    },
}

pub(super) fn build(
    spec: &Spec,
    pos: Vec<String>,
    opts: &[(String, String)],
) -> Result<WebhookCommand, String> {
    let db = db_path(opts);
    Ok(match spec.words {
        ["webhook", "add"] => WebhookCommand::Add {
            db,
            url: one(spec, pos)?,
            group: option(opts, "group").unwrap_or_default(),
            events: option(opts, "events").unwrap_or_else(|| "*".into()),
        },
        ["webhook", "list"] => {
            none(spec, &pos)?;
            WebhookCommand::List { db }
        }
        ["webhook", "remove"] => WebhookCommand::Remove {
            db,
            id: one(spec, pos)?,
        },
        _ => return Err(format!("{} is listed but not handled", spec.name())),
    })
}

/// Event types from a comma-separated list; `*` is all of them.
pub(crate) fn parse_events(list: &str) -> Result<Vec<EventType>, String> {
    let mut types = Vec::new();
    for name in list.split([',', ' ']).filter(|s| !s.is_empty()) {
        if name == "*" {
            return Ok(EventType::ALL.to_vec());
        }
        let t = EventType::parse(name).ok_or_else(|| {
            let known: Vec<&str> = EventType::ALL.iter().map(|t| t.as_str()).collect();
            format!("unknown event type {name:?}; known: {}", known.join(", "))
        })?;
        if !types.contains(&t) {
            types.push(t);
        }
    }
    if types.is_empty() {
        return Err("--events must name at least one event type".into());
    }
    Ok(types)
}

/// The webhook flags of `serve`.
pub(super) fn serve_settings(opts: &[(String, String)]) -> Result<Settings, String> {
    let mut settings = Settings::default();
    if let Some(text) = option(opts, "webhook-retry-for") {
        settings.retry_for = parse_duration(&text)
            .filter(|d| *d >= Duration::from_secs(1) && *d <= Duration::from_secs(30 * 86400))
            .ok_or("--webhook-retry-for must be 1s to 30d, like 90s, 30m, 24h or 7d")?;
    }
    if let Some(text) = option(opts, "webhook-first-retry") {
        settings.first_retry = parse_duration(&text)
            .filter(|d| *d >= Duration::from_millis(100) && *d <= Duration::from_secs(3600))
            .ok_or("--webhook-first-retry must be 100ms to 1h, like 5s")?;
    }
    Ok(settings)
}

/// A whole number with a unit: `ms`, `s`, `m`, `h` or `d`.
fn parse_duration(text: &str) -> Option<Duration> {
    let split = text.find(|c: char| !c.is_ascii_digit())?;
    let (digits, unit) = text.split_at(split);
    let n: u64 = digits.parse().ok()?;
    let ms = match unit {
        "ms" => 1,
        "s" => 1000,
        "m" => 60_000,
        "h" => 3_600_000,
        "d" => 86_400_000,
        _ => return None,
    };
    n.checked_mul(ms).map(Duration::from_millis)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_need_a_unit_and_fit() {
        assert_eq!(parse_duration("24h"), Some(Duration::from_secs(86400)));
        assert_eq!(parse_duration("250ms"), Some(Duration::from_millis(250)));
        assert_eq!(parse_duration("7d"), Some(Duration::from_secs(7 * 86400)));
        for bad in [
            "",
            "5",
            "s",
            "5 s",
            "-5s",
            "5w",
            "1.5h",
            "99999999999999999999d",
        ] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn events_are_known_types_or_a_star() {
        assert_eq!(parse_events("*").unwrap().len(), EventType::ALL.len());
        assert_eq!(
            parse_events("charge.created,refund.created,charge.created").unwrap(),
            vec![EventType::ChargeCreated, EventType::RefundCreated]
        );
        assert!(parse_events("charge.made").is_err());
        assert!(parse_events(",").is_err());
    }
}
