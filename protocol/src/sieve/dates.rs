//! Date parts for the `date` and `currentdate` tests (RFC 5260 §4.2).

/// A moment: seconds since the epoch (UTC) and the zone offset it is shown in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Moment {
    /// Seconds since 1970-01-01T00:00:00Z.
    pub utc: i64,
    /// Offset east of UTC, in seconds.
    pub offset: i64,
}

/// The date part `part` of `m`, as RFC 5260 §4.2 writes it; `None` for an unknown part.
pub fn part(m: Moment, part: &str) -> Option<String> {
    let local = m.utc + m.offset;
    let days = local.div_euclid(86400);
    let secs = local.rem_euclid(86400);
    let (y, mo, d) = civil_from_days(days);
    let (h, mi, s) = (secs / 3600, secs / 60 % 60, secs % 60);
    let zone = zone(m.offset);
    Some(match part.to_ascii_lowercase().as_str() {
        "year" => format!("{y:04}"),
        "month" => format!("{mo:02}"),
        "day" => format!("{d:02}"),
        "date" => format!("{y:04}-{mo:02}-{d:02}"),
        // Modified Julian Day: days since 1858-11-17 (RFC 5260 §4.2).
        "julian" => (days + 40587).to_string(),
        "hour" => format!("{h:02}"),
        "minute" => format!("{mi:02}"),
        "second" => format!("{s:02}"),
        "time" => format!("{h:02}:{mi:02}:{s:02}"),
        "iso8601" => {
            // RFC 3339 §5.6: "Z" for UTC.
            let z = if m.offset == 0 {
                "Z".to_string()
            } else {
                format!("{}:{}", &zone[..3], &zone[3..])
            };
            format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}{z}")
        }
        "std11" => {
            const WD: [&str; 7] = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
            const MN: [&str; 12] = [
                "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
            ];
            let wd = WD[weekday(days) as usize];
            let mn = MN[(mo - 1) as usize];
            format!("{wd}, {d:02} {mn} {y:04} {h:02}:{mi:02}:{s:02} {zone}")
        }
        "zone" => zone,
        "weekday" => weekday(days).to_string(),
        _ => return None,
    })
}

/// `+hhmm` / `-hhmm`.
pub fn zone(offset: i64) -> String {
    let sign = if offset < 0 { '-' } else { '+' };
    let a = offset.abs();
    format!("{sign}{:02}{:02}", a / 3600, a / 60 % 60)
}

/// 0 = Sunday (RFC 5260 §4.2 "weekday").
fn weekday(days: i64) -> i64 {
    (days + 4).rem_euclid(7)
}

/// The proleptic Gregorian date of a day number (days since 1970-01-01).
pub fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719468;
    let era = z.div_euclid(146097);
    let doe = z - era * 146097;
    let yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

/// A `Date:`-style header value as a moment in the zone it was written in (RFC 5322 §3.3).
pub fn parse(v: &[u8]) -> Option<Moment> {
    let (day, secs, offset) = crate::imap::mime::date_parts(v)?;
    Some(Moment {
        utc: day * 86400 + secs - offset,
        offset,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parts_of_a_date() {
        let m = parse(b"Sun, 25 Mar 2007 00:00:00 +0200").unwrap();
        assert_eq!(part(m, "date").unwrap(), "2007-03-25");
        assert_eq!(part(m, "weekday").unwrap(), "0");
        assert_eq!(part(m, "zone").unwrap(), "+0200");
        assert_eq!(part(m, "iso8601").unwrap(), "2007-03-25T00:00:00+02:00");
        assert_eq!(part(m, "std11").unwrap(), "Sun, 25 Mar 2007 00:00:00 +0200");
        let early = parse(b"Thu, 3 Dec 2026 10:00:00 +0000").unwrap();
        assert_eq!(
            part(early, "std11").unwrap(),
            "Thu, 03 Dec 2026 10:00:00 +0000"
        );
        assert_eq!(part(early, "iso8601").unwrap(), "2026-12-03T10:00:00Z");
        let utc = Moment {
            utc: m.utc,
            offset: 0,
        };
        assert_eq!(part(utc, "date").unwrap(), "2007-03-24");
        assert_eq!(part(utc, "hour").unwrap(), "22");
        // RFC 5260 §4.2: 1858-11-17 is MJD 0; 1970-01-01 is 40587.
        assert_eq!(
            part(Moment { utc: 0, offset: 0 }, "julian").unwrap(),
            "40587"
        );
        assert_eq!(zone(-(3 * 3600 + 30 * 60)), "-0330");
        assert!(part(m, "nosuch").is_none());
    }
}
