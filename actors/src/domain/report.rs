//! Report rows: summing per-conversion credit into `(key, credit, value)` rows and
//! ordering them as attribution.md says (zero-credit rows left out; credit
//! descending, then key in code-point order).
//!
//! Sums are exact: each cell keeps a Shewchuk expansion ([`ExactSum`], the
//! algorithm of Python's `math.fsum`) and reports the correctly rounded total.
//! This is the strongest form of compensated summation: the result does not
//! depend on the order of additions at all, so a streamed report equals a batch
//! one bit for bit, and a credit that was added and later retracted (identity
//! merges re-attribute conversions) leaves exactly `0.0`, not rounding residue.

use serde::{Deserialize, Serialize};
use std::collections::HashMap;

/// One report row (http-api.md `rows`).
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Row {
    pub key: String,
    pub credit: f64,
    pub value: f64,
}

/// An order-independent, exactly rounded running sum of `f64`s.
///
/// Keeps the sum as non-overlapping partials in increasing magnitude (usually one
/// to three of them); [`ExactSum::value`] is the sum of all inputs correctly
/// rounded to `f64`, whatever the order of [`ExactSum::add`] calls. Inputs should
/// be finite; a non-finite input makes the value non-finite like plain addition
/// would (`inf`, `-inf`, or NaN).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct ExactSum {
    partials: Vec<f64>,
    /// Sum of the non-finite inputs (0 while there are none).
    special: f64,
}

impl ExactSum {
    pub fn new() -> ExactSum {
        ExactSum::default()
    }

    pub fn add(&mut self, x: f64) {
        if !x.is_finite() {
            self.special += x;
            return;
        }
        let mut x = x;
        let mut i = 0;
        for j in 0..self.partials.len() {
            let mut y = self.partials[j];
            if x.abs() < y.abs() {
                std::mem::swap(&mut x, &mut y);
            }
            let hi = x + y;
            let lo = y - (hi - x);
            if lo != 0.0 {
                self.partials[i] = lo;
                i += 1;
            }
            x = hi;
        }
        self.partials.truncate(i);
        self.partials.push(x);
    }

    /// The correctly rounded sum of every input so far (`0.0` when none; an
    /// exact cancellation gives `+0.0`).
    pub fn value(&self) -> f64 {
        if self.special != 0.0 || self.special.is_nan() {
            return self.special;
        }
        let p = &self.partials;
        let mut n = p.len();
        if n == 0 {
            return 0.0;
        }
        n -= 1;
        let mut hi = p[n];
        let mut lo = 0.0;
        while n > 0 {
            let x = hi;
            n -= 1;
            let y = p[n];
            hi = x + y;
            let yr = hi - x;
            lo = y - yr;
            if lo != 0.0 {
                break;
            }
        }
        // Round half to even across the remaining partials (as `math.fsum`).
        if n > 0 && ((lo < 0.0 && p[n - 1] < 0.0) || (lo > 0.0 && p[n - 1] > 0.0)) {
            let y = lo * 2.0;
            let x = hi + y;
            let yr = x - hi;
            if y == yr {
                hi = x;
            }
        }
        hi + 0.0
    }

    /// Adds every input of `other`.
    pub fn merge(&mut self, other: &ExactSum) {
        for &p in &other.partials {
            self.add(p);
        }
        self.special += other.special;
    }
}

/// Per-key running `(credit, value)` sums of one report.
#[derive(Clone, Debug, Default)]
pub struct Accumulator {
    cells: HashMap<String, (ExactSum, ExactSum)>,
}

impl Accumulator {
    pub fn new() -> Accumulator {
        Accumulator::default()
    }

    /// Adds `credit` and `value` (negative to retract) to `key`'s row.
    pub fn add(&mut self, key: &str, credit: f64, value: f64) {
        let cell = match self.cells.get_mut(key) {
            Some(c) => c,
            None => self.cells.entry(key.to_string()).or_default(),
        };
        cell.0.add(credit);
        cell.1.add(value);
    }

    /// Adds every cell of `other`.
    pub fn merge(&mut self, other: &Accumulator) {
        for (k, (c, v)) in &other.cells {
            let cell = self.cells.entry(k.clone()).or_default();
            cell.0.merge(c);
            cell.1.merge(v);
        }
    }

    /// Number of keys touched so far (including ones that sum to zero).
    pub fn len(&self) -> usize {
        self.cells.len()
    }

    pub fn is_empty(&self) -> bool {
        self.cells.is_empty()
    }

    /// The report rows: rows whose credit is exactly zero (`0.0` or `-0.0`) are
    /// left out; the rest sort by credit descending, then key ascending in code
    /// point order (= UTF-8 byte order, `String`'s `Ord`).
    pub fn into_rows(self) -> Vec<Row> {
        let mut rows: Vec<Row> = self
            .cells
            .into_iter()
            .map(|(key, (c, v))| Row { key, credit: c.value(), value: v.value() })
            .filter(|r| r.credit != 0.0)
            .collect();
        sort_rows(&mut rows);
        rows
    }
}

/// Credits equal to 12 significant digits sort as ties: `0.8` and
/// `0.7999999999999999` are the same credit reached by different float paths
/// (a batch program and a stream must order them identically).
pub fn sort_credit(x: f64) -> f64 {
    if x == 0.0 || !x.is_finite() {
        return x;
    }
    format!("{x:.11e}").parse().unwrap_or(x)
}

/// Sorts rows by credit descending (ties to 12 significant digits), then key
/// ascending (code point order).
pub fn sort_rows(rows: &mut [Row]) {
    rows.sort_by(|a, b| sort_credit(b.credit).total_cmp(&sort_credit(a.credit)).then_with(|| a.key.cmp(&b.key)));
}

#[cfg(test)]
#[path = "report_tests.rs"]
mod tests;
