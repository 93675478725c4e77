//! Timestamps: stored as milliseconds since the Unix epoch (portable across
//! SQLite and PostgreSQL), rendered as RFC 3339 in the API.

use time::OffsetDateTime;

/// Milliseconds since the epoch on this process's clock. `REMORA_TEST_CLOCK_OFFSET_MS` (for
/// tests only: a process whose clock is off) is added to it.
pub fn now_ms() -> i64 {
    (OffsetDateTime::now_utc().unix_timestamp_nanos() / 1_000_000) as i64 + test_offset_ms()
}

fn test_offset_ms() -> i64 {
    static OFFSET: std::sync::OnceLock<i64> = std::sync::OnceLock::new();
    *OFFSET.get_or_init(|| {
        std::env::var("REMORA_TEST_CLOCK_OFFSET_MS")
            .ok()
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0)
    })
}

pub fn ms_to_rfc3339(ms: i64) -> String {
    let t = OffsetDateTime::from_unix_timestamp_nanos(ms as i128 * 1_000_000)
        .unwrap_or(OffsetDateTime::UNIX_EPOCH);
    t.format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

pub fn rfc3339_to_ms(s: &str) -> Option<i64> {
    let t = OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339).ok()?;
    Some((t.unix_timestamp_nanos() / 1_000_000) as i64)
}

pub mod opt_rfc3339 {
    //! serde helper: `Option<i64>` milliseconds as an RFC 3339 string or null.
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Option<i64>, D::Error> {
        let s: Option<String> = Option::deserialize(d)?;
        match s {
            None => Ok(None),
            Some(s) => super::rfc3339_to_ms(&s)
                .map(Some)
                .ok_or_else(|| serde::de::Error::custom(format!("bad timestamp {s}"))),
        }
    }
    pub fn serialize<S: Serializer>(v: &Option<i64>, s: S) -> Result<S::Ok, S::Error> {
        match v {
            Some(ms) => s.serialize_str(&super::ms_to_rfc3339(*ms)),
            None => s.serialize_none(),
        }
    }
}

pub mod rfc3339 {
    //! serde helper: `i64` milliseconds as an RFC 3339 string.
    use serde::{Deserialize, Deserializer, Serializer};
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<i64, D::Error> {
        let s = String::deserialize(d)?;
        super::rfc3339_to_ms(&s)
            .ok_or_else(|| serde::de::Error::custom(format!("bad timestamp {s}")))
    }
    pub fn serialize<S: Serializer>(v: &i64, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::ms_to_rfc3339(*v))
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn formats_epoch_millis() {
        assert_eq!(super::ms_to_rfc3339(1_500), "1970-01-01T00:00:01.5Z");
        assert_eq!(super::rfc3339_to_ms("1970-01-01T00:00:01.5Z"), Some(1_500));
    }
}
