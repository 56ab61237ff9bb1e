//! Agreeing on the time from several sources, some of which may be wrong or lying.
//!
//! Each source gives an offset (how far our board clock is from it) and a root
//! distance (how wrong that offset can be: half the round trip plus what the source
//! admits about its own error). Read as intervals, honest sources all contain the true
//! offset, so they overlap; a wrong source lies outside. [`select`] finds the smallest
//! number of "falsetickers" f (f < n/2) for which at least n - f intervals share a
//! common part (Marzullo's algorithm, as NTP's selection does), keeps the sources
//! that touch it, drops offsets more than two standard deviations from their median,
//! and answers the median of the rest, clamped into the common part. So a minority of
//! wrong sources never moves the answer, and with no majority there is no answer.

/// One source's opinion.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Candidate {
    /// Correction the source suggests (true time minus board time), nanoseconds.
    pub offset: i64,
    /// How wrong `offset` may be (root distance), nanoseconds, non-negative.
    pub distance: i64,
}

/// The agreed correction.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verdict {
    /// The correction, nanoseconds.
    pub offset: i64,
    /// Half-width of the interval the true offset lies in if the majority is honest.
    pub error: i64,
    /// The largest distance of an included offset from the answer: how well the
    /// sources that count agree with each other.
    pub spread: i64,
    /// Per candidate (same order): whether it counted.
    pub included: Vec<bool>,
}

/// The agreed correction of `candidates`, or `None` without a majority.
pub fn select(candidates: &[Candidate]) -> Option<Verdict> {
    let n = candidates.len();
    let (low, high) = (0..n.div_ceil(2)).find_map(|f| intersection(candidates, n - f))?;
    let mut included: Vec<bool> = candidates
        .iter()
        .map(|c| c.offset.saturating_sub(c.distance) <= high && c.offset.saturating_add(c.distance) >= low)
        .collect();
    reject_outliers(candidates, &mut included);
    let kept_candidates: Vec<Candidate> =
        candidates.iter().zip(&included).filter(|(_, k)| **k).map(|(c, _)| *c).collect();
    // The common part of the sources that still count, if they all overlap (dropping an
    // outlier can only widen it).
    let (low, high) = intersection(&kept_candidates, kept_candidates.len()).unwrap_or((low, high));
    let mut kept: Vec<i64> = kept_candidates.iter().map(|c| c.offset).collect();
    let middle = median(&mut kept)?;
    let offset = middle.clamp(low, high);
    let error = offset.saturating_sub(low).max(high.saturating_sub(offset));
    let spread = kept.iter().map(|k| k.saturating_sub(offset).saturating_abs()).max().unwrap_or(0);
    Some(Verdict { offset, error, spread, included })
}

/// The part of the line covered by at least `needed` intervals, as (low, high).
fn intersection(candidates: &[Candidate], needed: usize) -> Option<(i64, i64)> {
    // (value, +1 for a low end / -1 for a high end); low ends first on ties, so
    // intervals that touch count as overlapping.
    let mut ends: Vec<(i64, i32)> = candidates
        .iter()
        .flat_map(|c| {
            let d = c.distance.max(0);
            [(c.offset.saturating_sub(d), 1), (c.offset.saturating_add(d), -1)]
        })
        .collect();
    ends.sort_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)));
    let needed = needed as i32;
    let mut count = 0;
    let low = ends.iter().find_map(|&(v, step)| {
        count += step;
        (count >= needed).then_some(v)
    })?;
    count = 0;
    let high = ends.iter().rev().find_map(|&(v, step)| {
        count -= step;
        (count >= needed).then_some(v)
    })?;
    (low <= high).then_some((low, high))
}

/// Drops included offsets more than two standard deviations from their median (with
/// three or more left, since two points have no meaningful spread), unless they are
/// within their own distance of it: jitter smaller than a source's stated error is
/// noise, not a sign of a wrong clock.
fn reject_outliers(candidates: &[Candidate], included: &mut [bool]) {
    let mut kept: Vec<i64> =
        candidates.iter().zip(included.iter()).filter(|(_, k)| **k).map(|(c, _)| c.offset).collect();
    if kept.len() < 3 {
        return;
    }
    let Some(center) = median(&mut kept) else { return };
    let mean = kept.iter().map(|&v| v as f64).sum::<f64>() / kept.len() as f64;
    let variance = kept.iter().map(|&v| (v as f64 - mean).powi(2)).sum::<f64>() / kept.len() as f64;
    let limit = 2.0 * variance.sqrt();
    if limit == 0.0 {
        return;
    }
    for (c, keep) in candidates.iter().zip(included.iter_mut()) {
        let deviation = ((c.offset as f64) - (center as f64)).abs();
        if *keep && deviation > limit && deviation > c.distance as f64 {
            *keep = false;
        }
    }
}

/// The median (mean of the middle two for an even count).
fn median(values: &mut [i64]) -> Option<i64> {
    if values.is_empty() {
        return None;
    }
    values.sort_unstable();
    let mid = values.len() / 2;
    Some(match values.len() % 2 {
        1 => values[mid],
        _ => ((values[mid - 1] as i128 + values[mid] as i128) / 2) as i64,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const MS: i64 = 1_000_000;
    const HOUR: i64 = 3_600_000 * MS;

    fn c(offset: i64, distance: i64) -> Candidate {
        Candidate { offset, distance }
    }

    #[test]
    fn jitter_within_the_stated_error_is_kept() {
        let v = select(&[c(0, MS), c(10_000, MS), c(-10_000, MS), c(300_000, MS)]).unwrap();
        assert_eq!(v.included, vec![true; 4], "{v:?}");
        assert_eq!(v.spread, 295_000);
    }

    #[test]
    fn honest_sources_agree() {
        let v = select(&[c(10 * MS, 2 * MS), c(11 * MS, 2 * MS), c(9 * MS, 2 * MS)]).unwrap();
        assert_eq!(v.offset, 10 * MS);
        assert!(v.error <= 2 * MS, "{v:?}");
        assert_eq!(v.included, vec![true; 3]);
    }

    #[test]
    fn a_liar_is_outvoted() {
        let v = select(&[c(0, MS), c(MS / 2, MS), c(-MS / 2, MS), c(HOUR, MS)]).unwrap();
        assert_eq!(v.included, vec![true, true, true, false]);
        assert!(v.offset.abs() <= MS / 2);
    }

    #[test]
    fn one_against_one_has_no_majority() {
        assert_eq!(select(&[c(0, MS), c(HOUR, MS)]), None);
        assert_eq!(select(&[]), None);
        assert_eq!(select(&[c(5, 1)]).unwrap().offset, 5, "a single source is its own majority");
    }

    #[test]
    fn two_liars_of_five_are_outvoted_but_three_win() {
        let honest = [c(0, MS), c(MS, MS), c(-MS, MS)];
        let mut five = honest.to_vec();
        five.extend([c(HOUR, MS), c(HOUR + MS, MS)]);
        assert!(select(&five).unwrap().offset.abs() <= MS);
        let mut flipped = vec![c(0, MS), c(MS, MS)];
        flipped.extend([c(HOUR, MS), c(HOUR, MS), c(HOUR - MS, MS)]);
        assert!((select(&flipped).unwrap().offset - HOUR).abs() <= MS, "a majority is a majority");
    }

    #[test]
    fn wide_outlier_inside_the_intersection_is_dropped_by_the_spread_rule() {
        // Overlapping intervals, but one offset far from the rest (farther than it
        // claims it can be wrong).
        let v =
            select(&[c(0, 10 * MS), c(0, 10 * MS), c(MS / 10, 10 * MS), c(0, 10 * MS), c(15 * MS, 5 * MS)])
                .unwrap();
        assert!(!v.included[4], "{v:?}");
        assert_eq!(v.offset, 0);
    }

    proptest! {
        #[test]
        fn a_minority_never_moves_the_answer_far(
            honest in proptest::collection::vec(-5i64..5, 3..8),
            liars in proptest::collection::vec(-1_000_000i64..1_000_000, 0..3),
        ) {
            prop_assume!(liars.len() * 2 < honest.len() + liars.len());
            let mut all: Vec<Candidate> = honest.iter().map(|&o| c(o * MS, 5 * MS)).collect();
            all.extend(liars.iter().map(|&o| c(o * MS, MS)));
            let v = select(&all).unwrap();
            prop_assert!(v.offset.abs() <= 10 * MS, "{:?}", v);
        }

        #[test]
        fn select_never_panics(raw in proptest::collection::vec((any::<i64>(), any::<i64>()), 0..12)) {
            let all: Vec<Candidate> = raw.iter().map(|&(o, d)| c(o, d)).collect();
            let _ = select(&all);
        }
    }
}
