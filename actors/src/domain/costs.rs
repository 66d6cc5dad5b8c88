//! Imported ad spend (`cost_import`, docs/collector.md): one daily total of a
//! campaign's cost per (campaign, date), written by `POST /v1/collect/costs`
//! with the import time as the event time. Of several imports of one
//! (campaign, date) the one with the greatest (import time, event_id)
//! survives, whatever order they are applied in, so every node and the batch
//! reference agree exactly. Pure: the rule, the date check and the sum.

use super::Ts;
use serde::{Deserialize, Serialize};

/// One imported daily total (the body of a `cost_import` event).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CostImport {
    pub campaign_id: String,
    /// `YYYY-MM-DD`, a calendar date.
    pub date: String,
    /// The day's total cost (≥ 0), in `currency`.
    pub cost: f64,
    /// `[A-Z]{3}`.
    pub currency: String,
    pub source: Option<String>,
    pub medium: Option<String>,
    pub impressions: Option<f64>,
    pub clicks: Option<f64>,
}

/// The surviving import of one (campaign, date): the import and what decides.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct CostDay {
    /// The import time (the event's timestamp).
    pub imported_at: Ts,
    pub event_id: String,
    pub row: CostImport,
}

impl CostDay {
    /// Whether `self` supersedes `current`: a greater (import time, event_id).
    pub fn supersedes(&self, current: &CostDay) -> bool {
        (self.imported_at, self.event_id.as_bytes()) > (current.imported_at, current.event_id.as_bytes())
    }
}

/// `current` after applying `new` (the supersede rule: the latest import wins).
pub fn apply(current: Option<CostDay>, new: CostDay) -> CostDay {
    match current {
        Some(cur) if !new.supersedes(&cur) => cur,
        _ => new,
    }
}

/// Whether `s` is a `YYYY-MM-DD` calendar date.
pub fn valid_date(s: &str) -> bool {
    let b = s.as_bytes();
    if b.len() != 10 || b[4] != b'-' || b[7] != b'-' {
        return false;
    }
    let num = |r: std::ops::Range<usize>| -> Option<u32> { b[r].iter().try_fold(0u32, |n, c| c.is_ascii_digit().then(|| n * 10 + u32::from(c - b'0'))) };
    let (Some(y), Some(m), Some(d)) = (num(0..4), num(5..7), num(8..10)) else { return false };
    (1..=12).contains(&m) && d >= 1 && d <= super::timestamp::days_in_month(i64::from(y), m)
}

/// Imported spend of one campaign in `currency` (`None`: every currency):
/// the surviving days' costs summed in date order (the order of their keys),
/// so the sum is the same bits wherever it is computed. Also the number of
/// days left out for another currency.
pub fn spend<'a>(days: impl IntoIterator<Item = &'a CostDay>, currency: Option<&str>) -> ImportedSpend {
    let mut days: Vec<&CostDay> = days.into_iter().collect();
    days.sort_by(|a, b| a.row.date.cmp(&b.row.date));
    let mut out = ImportedSpend::default();
    for d in days {
        if currency.is_some_and(|c| c != d.row.currency) {
            out.other_currency_days += 1;
            continue;
        }
        out.days += 1;
        out.cost += d.row.cost;
        out.impressions += d.row.impressions.unwrap_or(0.0);
        out.clicks += d.row.clicks.unwrap_or(0.0);
    }
    out
}

/// What [`spend`] sums.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ImportedSpend {
    pub cost: f64,
    pub impressions: f64,
    pub clicks: f64,
    pub days: u64,
    pub other_currency_days: u64,
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;
    use std::collections::BTreeMap;

    fn day(campaign: &str, date: &str, at: i64, id: &str, cost: f64) -> CostDay {
        CostDay { imported_at: Ts::new(at, 0), event_id: id.into(), row: CostImport { campaign_id: campaign.into(), date: date.into(), cost, currency: "USD".into(), ..Default::default() } }
    }

    #[test]
    fn the_latest_import_wins_ties_by_event_id() {
        let old = day("c", "2026-01-01", 10, "b", 5.0);
        let new = day("c", "2026-01-01", 20, "a", 7.0);
        assert_eq!(apply(Some(old.clone()), new.clone()), new);
        assert_eq!(apply(Some(new.clone()), old.clone()), new, "an older import arriving late changes nothing");
        let tie = day("c", "2026-01-01", 20, "b", 9.0);
        assert_eq!(apply(Some(new.clone()), tie.clone()), tie);
        assert_eq!(apply(Some(tie.clone()), new), tie);
        assert_eq!(apply(Some(tie.clone()), tie.clone()), tie, "a repeat is a no-op");
    }

    #[test]
    fn dates_are_calendar_dates() {
        for ok in ["2026-01-31", "2024-02-29", "0001-12-01"] {
            assert!(valid_date(ok), "{ok}");
        }
        for bad in ["2026-02-29", "2026-13-01", "2026-00-10", "2026-01-00", "2026-1-01", "2026/01/01", "2026-01-01T00", "", "20260101", "2026-0a-01"] {
            assert!(!valid_date(bad), "{bad}");
        }
    }

    #[test]
    fn spend_keeps_one_currency_and_counts_the_rest() {
        let mut eur = day("c", "2026-01-02", 1, "x", 4.0);
        eur.row.currency = "EUR".into();
        let s = spend(&[day("c", "2026-01-03", 1, "y", 1.5), eur.clone(), day("c", "2026-01-01", 1, "z", 2.0)], Some("USD"));
        assert_eq!((s.cost, s.days, s.other_currency_days), (3.5, 2, 1));
        assert_eq!(spend(&[eur], None).cost, 4.0);
    }

    /// Imports of a few (campaign, date) keys at a few times (ties included);
    /// an event_id names one content, as the dedup guarantees.
    fn imports() -> impl Strategy<Value = Vec<CostDay>> {
        let one = (0..3usize, 0..4usize, 0..5i64, 0..3usize, 0..1_000_000u32).prop_map(|(c, d, at, id, cents)| {
            day(&format!("c{c}"), &format!("2026-03-0{}", d + 1), at, &format!("e{id}-{c}{d}-{cents}"), f64::from(cents) / 100.0)
        });
        proptest::collection::vec(one, 0..40)
    }

    proptest! {
        /// Any order of the same imports leaves the same record per (campaign,
        /// date), and the same per-campaign spend to the bit.
        #[test]
        fn any_order_gives_the_same_totals(imports in imports(), seed in any::<u64>()) {
            let fold = |list: &[CostDay]| {
                let mut m: BTreeMap<(String, String), CostDay> = BTreeMap::new();
                for d in list {
                    let k = (d.row.campaign_id.clone(), d.row.date.clone());
                    let cur = m.remove(&k);
                    m.insert(k, apply(cur, d.clone()));
                }
                m
            };
            let mut shuffled = imports.clone();
            let mut rng = seed;
            for i in (1..shuffled.len()).rev() {
                rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                shuffled.swap(i, (rng >> 33) as usize % (i + 1));
            }
            let (a, b) = (fold(&imports), fold(&shuffled));
            prop_assert_eq!(&a, &b);
            // Each survivor is the greatest (time, id) of its key.
            for ((c, d), rec) in &a {
                let best = imports.iter().filter(|x| &x.row.campaign_id == c && &x.row.date == d).max_by(|x, y| (x.imported_at, x.event_id.as_bytes()).cmp(&(y.imported_at, y.event_id.as_bytes()))).unwrap();
                prop_assert_eq!((rec.imported_at, &rec.event_id), (best.imported_at, &best.event_id));
            }
            let by_campaign = |m: &BTreeMap<(String, String), CostDay>| -> BTreeMap<String, u64> {
                let mut out: BTreeMap<String, Vec<CostDay>> = BTreeMap::new();
                for ((c, _), d) in m.iter().rev() {
                    out.entry(c.clone()).or_default().push(d.clone());
                }
                out.into_iter().map(|(c, ds)| (c, spend(&ds, Some("USD")).cost.to_bits())).collect()
            };
            prop_assert_eq!(by_campaign(&a), by_campaign(&b));
        }
    }
}
