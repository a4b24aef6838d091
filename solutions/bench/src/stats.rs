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

/// Trials of two measurements taken in turns (a b, b a, a b, …), each after one untimed
/// warm-up: whatever else the machine does meanwhile weighs on both alike, which is what a
/// ratio of the two needs. A failure of one stops its trials and leaves the other's going.
pub fn paired_trials(
    n: usize,
    mut a: impl FnMut() -> Result<f64>,
    mut b: impl FnMut() -> Result<f64>,
) -> (Result<Sample>, Result<Sample>) {
    let mut values = [Ok(Vec::new()), Ok(Vec::new())];
    let mut take = |which: usize, trial: &mut dyn FnMut() -> Result<f64>, keep: bool| {
        if let Ok(list) = &mut values[which] {
            match trial() {
                Ok(v) if keep => list.push(v),
                Ok(_) => {}
                Err(e) => values[which] = Err(e),
            }
        }
    };
    take(0, &mut a, false);
    take(1, &mut b, false);
    for i in 0..n {
        if i % 2 == 0 {
            take(0, &mut a, true);
            take(1, &mut b, true);
        } else {
            take(1, &mut b, true);
            take(0, &mut a, true);
        }
    }
    let [a, b] = values.map(|v| v.map(|v| Sample::of(&v).expect("n > 0 trials of finite values")));
    (a, b)
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
    fn paired_trials_take_turns_and_keep_one_side_going_when_the_other_fails() {
        let order = std::cell::RefCell::new(String::new());
        let (a, b) = paired_trials(
            3,
            || {
                order.borrow_mut().push('a');
                Ok(1.0)
            },
            || {
                order.borrow_mut().push('b');
                Ok(2.0)
            },
        );
        // The warm-ups, then the trials in turns.
        assert_eq!(order.borrow().as_str(), "ababbaab");
        assert_eq!((a.unwrap().median, b.unwrap().median), (1.0, 2.0));
        let (a, b) = paired_trials(
            3,
            || Err(crate::proc::Error::BadEcho { what: "a" }),
            || Ok(2.0),
        );
        assert!(a.is_err());
        assert_eq!(b.unwrap().median, 2.0);
    }

    #[test]
    fn no_trials_no_sample() {
        assert_eq!(Sample::of(&[]), None);
        assert_eq!(Sample::of(&[1.0, f64::NAN]), None);
    }
}
