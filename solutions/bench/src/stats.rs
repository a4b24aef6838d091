//! Repeated trials and their median: a small hand-rolled timer, no framework.

use crate::proc::Result;

/// The trials of one measurement, summarised. Values are in the measurement's unit (bytes per
/// second for throughput, seconds per round trip for latency).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sample {
    pub median: f64,
    pub min: f64,
    pub max: f64,
}

impl Sample {
    /// Summarises the trials; `None` if there were none (or one was not a number).
    pub fn of(values: &[f64]) -> Option<Sample> {
        if values.is_empty() || values.iter().any(|v| v.is_nan()) {
            return None;
        }
        let mut sorted = values.to_vec();
        sorted.sort_by(f64::total_cmp);
        let mid = sorted.len() / 2;
        let median = if sorted.len() % 2 == 1 {
            sorted[mid]
        } else {
            (sorted[mid - 1] + sorted[mid]) / 2.0
        };
        Some(Sample {
            median,
            min: sorted[0],
            max: sorted[sorted.len() - 1],
        })
    }
}

/// Runs one untimed warm-up (page faults, caches, lazy kernel allocations), then `n` trials,
/// and returns their median.
pub fn trials(n: usize, mut trial: impl FnMut() -> Result<f64>) -> Result<Sample> {
    trial()?;
    let values = (0..n).map(|_| trial()).collect::<Result<Vec<f64>>>()?;
    Ok(Sample::of(&values).expect("n > 0 trials of finite values"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn median_of_odd_and_even_counts() {
        assert_eq!(Sample::of(&[3.0, 1.0, 2.0]).unwrap().median, 2.0);
        assert_eq!(Sample::of(&[4.0, 1.0, 2.0, 3.0]).unwrap().median, 2.5);
    }

    #[test]
    fn no_trials_no_sample() {
        assert_eq!(Sample::of(&[]), None);
        assert_eq!(Sample::of(&[1.0, f64::NAN]), None);
    }
}
