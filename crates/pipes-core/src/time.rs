//! Timestamps: stored as milliseconds since the epoch, shown as ISO-8601 UTC with millis.

use chrono::{DateTime, SecondsFormat, TimeZone, Utc};

/// Milliseconds since the Unix epoch, as stored.
pub type Millis = i64;

/// Now, in milliseconds.
pub fn now_ms() -> Millis {
    Utc::now().timestamp_millis()
}

/// A duration in milliseconds (saturating), to add to a [`Millis`].
pub fn millis(d: std::time::Duration) -> Millis {
    Millis::try_from(d.as_millis()).unwrap_or(Millis::MAX)
}

/// `2026-01-15T12:00:00.000Z`: the only form the API emits.
pub fn format_ms(ms: Millis) -> String {
    Utc.timestamp_millis_opt(ms)
        .single()
        .unwrap_or(DateTime::<Utc>::UNIX_EPOCH)
        .to_rfc3339_opts(SecondsFormat::Millis, true)
}

/// Parses any RFC 3339 timestamp (offsets allowed) into UTC milliseconds.
pub fn parse_rfc3339(s: &str) -> Option<Millis> {
    DateTime::parse_from_rfc3339(s)
        .ok()
        .map(|t| t.with_timezone(&Utc).timestamp_millis())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_with_three_fraction_digits_and_z() {
        assert_eq!(format_ms(1_768_478_400_000), "2026-01-15T12:00:00.000Z");
        assert_eq!(parse_rfc3339("2026-01-15T13:00:00.000+01:00"), Some(1_768_478_400_000));
        assert_eq!(parse_rfc3339("yesterday"), None);
    }
}
